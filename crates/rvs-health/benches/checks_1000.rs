//! 1,000 real servers, each TCP-checked every second by the real driver
//! (`rvs_health::spawn`), against 1,000 listeners on loopback. Measures the
//! CPU the checker thread uses and how regularly each real server is
//! checked: the gap between two consecutive checks of one server as its
//! listener sees them (ideal: exactly the interval), and how evenly the
//! checks are spread over each second (no lockstep).
//!
//!   cargo bench -p rvs-health --bench checks_1000 -- [SECONDS] [SERVERS]
//!
//! Not a pass/fail test: it prints numbers for BENCHMARKS.md.

use rvs_health::HealthState;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (utime, stime) of the thread named `name`, in seconds.
fn thread_cpu(name: &str) -> Option<(f64, f64)> {
    let tick = 100.0; // USER_HZ on Linux
    for t in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = t.ok()?.path();
        let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let after = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = after.split_whitespace().collect();
        let ut: f64 = f.get(11)?.parse().ok()?;
        let st: f64 = f.get(12)?.parse().ok()?;
        return Some((ut / tick, st / tick));
    }
    None
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(20);
    let servers: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);

    // The real servers: one listener each, accepts recorded with their time.
    let t0 = Instant::now();
    let accepts: Arc<Mutex<Vec<Vec<f64>>>> = Arc::new(Mutex::new(vec![Vec::new(); servers]));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut ports = Vec::new();
    let listeners: Vec<tokio::net::TcpListener> = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..servers {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            ports.push(l.local_addr().unwrap().port());
            v.push(l);
        }
        v
    });
    let acc = accepts.clone();
    std::thread::Builder::new()
        .name("servers".into())
        .spawn(move || {
            rt.block_on(async move {
                for (i, l) in listeners.into_iter().enumerate() {
                    let acc = acc.clone();
                    tokio::spawn(async move {
                        while let Ok((s, _)) = l.accept().await {
                            acc.lock().unwrap()[i].push(t0.elapsed().as_secs_f64());
                            drop(s);
                        }
                    });
                }
                std::future::pending::<()>().await;
            })
        })
        .unwrap();

    let mut text = String::from(
        "[[service]]\ntcp = \"198.18.0.1:80\"\n[[service.check]]\ntype = \"tcp\"\ninterval = 1\ntimeout = 0.5\n",
    );
    for p in &ports {
        text += &format!("[[service.real_server]]\naddress = \"127.0.0.1:{p}\"\n");
    }
    let config = rvs_config::parse(&text, "bench.toml").unwrap();
    let mut st = HealthState::new(config, 0);
    st.sync();
    let state = Arc::new(Mutex::new(st));
    let changes = Arc::new(Mutex::new(0usize));
    let ch = changes.clone();
    let epoch = t0;
    rvs_health::spawn(
        state.clone(),
        epoch,
        Box::new(move |_, reqs| *ch.lock().unwrap() += reqs.len()),
    )
    .unwrap();

    // Warm up one interval, then measure.
    std::thread::sleep(Duration::from_secs(2));
    let (u0, s0) = thread_cpu("rvsd-health").unwrap_or((f64::NAN, f64::NAN));
    let w0 = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(seconds));
    let (u1, s1) = thread_cpu("rvsd-health").unwrap_or((f64::NAN, f64::NAN));
    let w1 = t0.elapsed().as_secs_f64();

    let acc = accepts.lock().unwrap();
    let mut gaps = Vec::new();
    let mut buckets = [0usize; 10];
    let mut checks = 0usize;
    for times in acc.iter() {
        let inside: Vec<f64> = times
            .iter()
            .copied()
            .filter(|t| *t >= w0 && *t < w1)
            .collect();
        checks += inside.len();
        for w in inside.windows(2) {
            gaps.push((w[1] - w[0]) * 1000.0);
        }
        for t in &inside {
            buckets[((t.fract()) * 10.0) as usize % 10] += 1;
        }
    }
    let mut dev: Vec<f64> = gaps.iter().map(|g| (g - 1000.0).abs()).collect();
    let cpu = (u1 - u0) + (s1 - s0);
    let wall = w1 - w0;
    println!("servers {servers}, interval 1 s, timeout 0.5 s, measured {wall:.1} s");
    println!(
        "checks run: {checks} ({:.0}/s; expected {servers}/s); table changes: {}",
        checks as f64 / wall,
        changes.lock().unwrap()
    );
    println!(
        "checker thread CPU: {:.3} s (user {:.3}, system {:.3}) over {wall:.1} s = {:.2} % of one core ({:.1} µs per check)",
        cpu,
        u1 - u0,
        s1 - s0,
        cpu / wall * 100.0,
        cpu / checks.max(1) as f64 * 1e6
    );
    println!(
        "gap between two checks of one server: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (ideal 1000)",
        percentile(&mut gaps.clone(), 0.5),
        percentile(&mut gaps.clone(), 0.99),
        gaps.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "|gap - interval|: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(&mut dev.clone(), 0.5),
        percentile(&mut dev, 0.99),
        gaps.iter().map(|g| (g - 1000.0).abs()).fold(0.0, f64::max)
    );
    let (lo, hi) = (buckets.iter().min().unwrap(), buckets.iter().max().unwrap());
    println!("checks per 100 ms slot of the second: min {lo}, max {hi} ({buckets:?})");
}
