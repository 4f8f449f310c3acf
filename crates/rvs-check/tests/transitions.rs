//! Real servers stopped and started by the test drive real checkers through
//! the state machine: the server leaves within interval × fall (+ timeout)
//! and comes back within interval × rise, and is up only while every check
//! passes.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rvs_check::state::identity_key;
use rvs_check::{
    CheckTiming, Checker, Event, Health, HttpCheck, MiscCheck, Reason, ServerChecks, TcpCheck,
    UdpCheck,
};
use rvs_core::Time;

/// Scheduling slack on a loaded 2-core machine (CI runs other test
/// binaries' servers and builds beside this one).
const SLACK: Time = 500;

fn server_events(events: &[(Time, Event)]) -> Vec<(Time, Health, Reason)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Server(tr) => Some((*t, tr.to, tr.reason.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn http_server_stopped_and_started_leaves_and_rejoins_in_time() {
    let (interval, timeout, fall, rise) = (200, 100, 3, 2);
    let timing = CheckTiming::new(interval, timeout, fall, rise).unwrap();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, h) = http_server("127.0.0.1:0".parse().unwrap(), seen.clone()).await;
    let mut check = HttpCheck::new(addr, "/ok");
    check.receive = Some("alive".into());
    let checkers: Vec<Box<dyn Checker>> = vec![Box::new(check)];
    let t0 = Instant::now();
    let mut s = ServerChecks::new(
        &[timing],
        Health::Up,
        identity_key(addr.to_string().as_bytes()),
        0,
    );
    let ms = move || t0.elapsed().as_millis() as Time;
    let control = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        h.abort();
        let _ = h.await;
        let stopped = ms();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (_, h2) = http_server(addr, seen.clone()).await;
        let started = ms();
        (stopped, started, h2)
    };
    let (events, (stopped, started, h2)) =
        tokio::join!(drive(&mut s, &checkers, t0, 4000), control);
    h2.abort();
    let ev = server_events(&events);
    eprintln!(
        "stopped at {stopped} ms, down at {} ms; started at {started} ms, up at {} ms",
        ev[0].0, ev[1].0
    );
    assert_eq!(ev.len(), 2, "{events:?}");
    let (down_at, health, reason) = ev[0].clone();
    assert_eq!((health, reason), (Health::Down, Reason::Refused));
    assert!(down_at >= stopped, "{ev:?} stopped {stopped}");
    assert!(
        down_at <= stopped + interval * Time::from(fall) + timeout + SLACK,
        "{ev:?} stopped {stopped}"
    );
    let (up_at, health, reason) = ev[1].clone();
    assert_eq!((health, reason), (Health::Up, Reason::Passed));
    assert!(up_at >= started, "{ev:?} started {started}");
    assert!(
        up_at <= started + interval * Time::from(rise) + SLACK,
        "{ev:?} started {started}"
    );
    assert_eq!(s.health(), Health::Up);
}

#[tokio::test]
async fn up_only_while_every_check_passes() {
    // TCP and UDP on the same port number; only the UDP side is stopped.
    let timing = CheckTiming::new(100, 80, 2, 2).unwrap();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let (addr, tcp) = http_server("127.0.0.1:0".parse().unwrap(), seen).await;
    let (_, udp) = udp_echo(addr).await;
    let checkers: Vec<Box<dyn Checker>> = vec![
        Box::new(TcpCheck::new(addr)),
        Box::new(UdpCheck::new(addr, b"x")),
    ];
    let t0 = Instant::now();
    // alpha: start down, come up after `rise` passes of both checks.
    let mut s = ServerChecks::new(&[timing, timing], Health::Down, identity_key(b"both"), 0);
    let control = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        udp.abort();
        let _ = udp.await;
        tokio::time::sleep(Duration::from_millis(700)).await;
        udp_echo(addr).await
    };
    let (events, (_, udp2)) = tokio::join!(drive(&mut s, &checkers, t0, 2200), control);
    udp2.abort();
    tcp.abort();
    let ev = server_events(&events);
    let states: Vec<Health> = ev.iter().map(|e| e.1).collect();
    assert_eq!(
        states,
        vec![Health::Up, Health::Down, Health::Up],
        "{events:?}"
    );
    assert!(ev[0].0 <= 100 * 2 + SLACK, "{ev:?}");
    assert_eq!(ev[1].2, Reason::Refused);
    // Only check 1 (UDP) ever went down.
    assert!(events.iter().all(|(_, e)| !matches!(e, Event::Check { check: 0, transition } if transition.to == Health::Down)));
}

#[tokio::test]
async fn a_flapping_misc_check_is_damped_and_sets_the_weight() {
    // The script alternates fail/pass on every run: with fall 2 a server
    // that was up never goes down.
    let dir = std::env::temp_dir().join(format!("rvs-check-flap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let counter = dir.join("n");
    std::fs::write(&counter, "0").unwrap();
    let script = dir.join("flap.sh");
    std::fs::write(&script, "#!/bin/sh\nn=$(cat \"$1\")\necho $((n+1)) > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"\nif [ $((n % 2)) = 0 ]; then exit 1; fi\nexit 12\n").unwrap();
    let mut m = MiscCheck::new(
        "/bin/sh",
        &[script.to_str().unwrap(), counter.to_str().unwrap()],
    );
    m.dynamic = true;
    let checkers: Vec<Box<dyn Checker>> = vec![Box::new(m)];
    // Generous timing: a run killed by its timeout under a loaded CI box
    // would be a second failure in a row and defeat the point of the test.
    let timing = CheckTiming::new(200, 200, 2, 2).unwrap();
    let mut s = ServerChecks::new(&[timing], Health::Up, 1, 0);
    let events = drive(&mut s, &checkers, Instant::now(), 3000).await;
    let runs: u32 = std::fs::read_to_string(&counter)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(runs >= 10, "only {runs} runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(server_events(&events).is_empty(), "{events:?}");
    assert_eq!(s.health(), Health::Up);
    // Passing runs exit 12: weight 10 from misc_dynamic; failing runs carry none.
    assert!(
        events.iter().any(|(_, e)| *e == Event::Weight(Some(10))),
        "{events:?}"
    );
}
