//! The pool rules of the health monitor, driven with scripted results and
//! a scripted clock: quiesce and removal, weights restored, check-set
//! weights, quorum with hysteresis and the fallback server, and reloads
//! that keep unchanged checks' state.

use rvs_check::{CheckResult, Health, Reason};
use rvs_config::{parse, Config};
use rvs_core::Time;
use rvs_ctl::Request;
use rvs_health::{HealthState, Monitor, Notice, ServerId};
use std::net::IpAddr;

fn cfg(text: &str) -> Config {
    parse(text, "test.toml").unwrap_or_else(|e| panic!("{e:?}"))
}

fn id(m: &Monitor, svc: usize, rs: &str) -> ServerId {
    let s = &m.config().services[svc];
    let (addr, port) = rvs_config::parse_endpoint(rs).unwrap();
    ServerId {
        service: s.key,
        addr,
        port: port.unwrap_or(s.key.port()),
    }
}

/// Runs every due check at `now` with `verdict(server)` until `until`,
/// stepping the clock to each wakeup; returns the notices.
fn drive(
    m: &mut Monitor,
    from: Time,
    until: Time,
    verdict: &dyn Fn(&ServerId) -> CheckResult,
) -> Vec<Notice> {
    let mut now = from;
    let mut out = Vec::new();
    while now <= until {
        out.extend(m.expire(now));
        for r in m.start_due(now) {
            out.extend(m.finish(&r, now + 1, verdict(&r.server)));
        }
        match m.next_wakeup() {
            Some(t) if t > now => now = t,
            Some(_) => now += 1,
            None => break,
        }
    }
    out
}

/// The real servers of service `svc` in the effective table as
/// `(address:port, weight)`.
fn table(m: &Monitor, svc: usize) -> Vec<(String, i32)> {
    m.effective().services[svc]
        .real_servers
        .iter()
        .map(|r| {
            (
                rvs_config::format_endpoint(&r.dest.addr, r.dest.port),
                r.dest.weight,
            )
        })
        .collect()
}

fn refused() -> CheckResult {
    CheckResult::fail(Reason::Refused)
}

const TWO: &str = r#"
[[service]]
tcp = "198.18.0.1:80"
scheduler = "wrr"
[[service.check]]
type = "tcp"
interval = 1
timeout = 0.5
fall = 2
rise = 3
[[service.real_server]]
address = "198.18.1.1:80"
weight = 5
[[service.real_server]]
address = "198.18.1.2:80"
weight = 2
"#;

#[test]
fn a_failing_server_is_quiesced_within_interval_times_fall_and_restored() {
    let mut m = Monitor::new(cfg(TWO), 0);
    assert!(m.take_dirty(), "the first table must be applied");
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 5), ("198.18.1.2:80".into(), 2)]
    );
    let a = id(&m, 0, "198.18.1.1:80");
    let dead = |s: &ServerId| {
        if *s == a {
            refused()
        } else {
            CheckResult::pass()
        }
    };
    let n = drive(&mut m, 0, 2_500, &dead);
    let down: Vec<Time> = n
        .iter()
        .filter_map(|n| match n {
            Notice::Server { server, transition } if *server == a => {
                assert_eq!(transition.to, Health::Down);
                assert_eq!(transition.reason, Reason::Refused);
                Some(transition.at)
            }
            _ => None,
        })
        .collect();
    assert_eq!(down.len(), 1, "{n:#?}");
    // First run within [0, interval), so down by interval × fall + timeout.
    assert!(down[0] <= 1_000 * 2 + 500, "{down:?}");
    assert!(m.take_dirty());
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 0), ("198.18.1.2:80".into(), 2)]
    );
    assert_eq!(m.health(&a), Some(Health::Down));

    // It recovers: three passes (rise) bring back its configured weight.
    let n = drive(&mut m, 2_501, 6_000, &|_| CheckResult::pass());
    let up: Vec<Time> = n
        .iter()
        .filter_map(|n| match n {
            Notice::Server { transition, .. } if transition.to == Health::Up => Some(transition.at),
            _ => None,
        })
        .collect();
    assert_eq!(up.len(), 1);
    assert!(up[0] - 2_501 <= 3 * 1_000 + 1, "{up:?}");
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 5), ("198.18.1.2:80".into(), 2)]
    );
}

#[test]
fn remove_takes_the_server_out_and_adds_it_back() {
    let text = TWO.replace(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\non_failure = \"remove\"",
    );
    let mut st = HealthState::new(cfg(&text), 0);
    let load = st.sync();
    assert_eq!(load.len(), 3, "-A and two -a: {load:?}");
    let a = id(st.monitor(), 0, "198.18.1.1:80");
    drive(st.monitor_mut(), 0, 3_000, &|s| {
        if *s == a {
            refused()
        } else {
            CheckResult::pass()
        }
    });
    let reqs = st.sync();
    assert!(
        matches!(&reqs[..], [Request::DelDest { addr, port: 80, .. }] if *addr == a.addr),
        "{reqs:?}"
    );
    assert!(st.sync().is_empty(), "nothing new");
    drive(st.monitor_mut(), 3_001, 8_000, &|_| CheckResult::pass());
    let reqs = st.sync();
    assert!(
        matches!(&reqs[..], [Request::AddDest { dest, .. }] if dest.addr == a.addr && dest.weight == 5),
        "{reqs:?}"
    );
}

#[test]
fn a_single_failure_below_fall_changes_nothing() {
    let mut m = Monitor::new(cfg(TWO), 0);
    m.take_dirty();
    let a = id(&m, 0, "198.18.1.1:80");
    // Fail one run of a, then pass: a flap shorter than `fall` is damped.
    let mut failed = false;
    let mut now = 0;
    while now < 5_000 {
        m.expire(now);
        for r in m.start_due(now) {
            let res = if r.server == a && !failed {
                failed = true;
                refused()
            } else {
                CheckResult::pass()
            };
            let n = m.finish(&r, now, res);
            assert!(
                !n.iter().any(|n| matches!(n, Notice::Server { .. })),
                "{n:?}"
            );
        }
        now = m.next_wakeup().unwrap().max(now + 1);
    }
    assert!(failed);
    assert!(!m.take_dirty());
    assert_eq!(
        m.status()[0].checks[0].last.as_ref().unwrap().1,
        CheckResult::pass()
    );
}

#[test]
fn a_run_past_its_deadline_is_a_timeout() {
    let mut m = Monitor::new(cfg(TWO), 0);
    let a = id(&m, 0, "198.18.1.1:80");
    let mut now = 0;
    let mut notices = Vec::new();
    for _ in 0..40 {
        notices.extend(m.expire(now));
        for r in m.start_due(now) {
            if r.server != a {
                m.finish(&r, now, CheckResult::pass());
            } // a's runs never answer
        }
        now = m.next_wakeup().unwrap().max(now + 1);
    }
    let down = notices.iter().find_map(|n| match n {
        Notice::Server { server, transition } if *server == a => Some(transition.clone()),
        _ => None,
    });
    assert_eq!(down.map(|t| t.reason), Some(Reason::Timeout));
    let st = &m.status()[0].checks[0];
    assert_eq!(st.duration, Some(500), "a timed-out run lasted the timeout");
}

const FALLBACK: &str = r#"
[[service]]
tcp = "198.18.0.1:80"
quorum_down = ["/bin/true"]
[[service.check]]
type = "tcp"
interval = 1
fall = 1
rise = 1
timeout = 1
[service.fallback]
address = "127.0.0.1:8080"
[[service.real_server]]
address = "198.18.1.1:80"
[[service.real_server]]
address = "198.18.1.2:80"
"#;

#[test]
fn the_fallback_is_in_while_every_server_is_down() {
    let mut m = Monitor::new(cfg(FALLBACK), 0);
    m.take_dirty();
    let a = id(&m, 0, "198.18.1.1:80");
    // One down: the other carries on, no fallback.
    drive(&mut m, 0, 1_500, &|s| {
        if *s == a {
            refused()
        } else {
            CheckResult::pass()
        }
    });
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 0), ("198.18.1.2:80".into(), 1)]
    );
    assert!(m.quorum(&m.config().services[0].key));
    // Both down: quorum lost, the fallback comes in.
    let n = drive(&mut m, 1_501, 3_000, &|_| refused());
    assert!(
        n.iter().any(|n| matches!(
            n,
            Notice::Quorum {
                up: false,
                live_weight: 0,
                ..
            }
        )),
        "{n:#?}"
    );
    assert_eq!(
        table(&m, 0),
        [
            ("198.18.1.1:80".into(), 0),
            ("198.18.1.2:80".into(), 0),
            ("127.0.0.1:8080".into(), 1)
        ]
    );
    // One returns: the fallback leaves.
    let n = drive(&mut m, 3_001, 4_500, &|s| {
        if *s == a {
            CheckResult::pass()
        } else {
            refused()
        }
    });
    assert!(n.iter().any(|n| matches!(
        n,
        Notice::Quorum {
            up: true,
            live_weight: 1,
            ..
        }
    )));
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 1), ("198.18.1.2:80".into(), 0)]
    );
}

#[test]
fn quorum_hysteresis_pulls_live_servers_and_damps_the_return() {
    // Weights 3+2+1; quorum 4 ± 1: lost below 3, regained at 5.
    let text = r#"
[[service]]
tcp = "198.18.0.1:80"
scheduler = "wrr"
on_failure = "remove"
quorum = 4
quorum_hysteresis = 1
[[service.check]]
type = "tcp"
interval = 1
timeout = 1
fall = 1
rise = 1
[service.fallback]
address = "198.18.9.9:80"
[[service.real_server]]
address = "198.18.1.1:80"
weight = 3
[[service.real_server]]
address = "198.18.1.2:80"
weight = 2
[[service.real_server]]
address = "198.18.1.3:80"
weight = 1
"#;
    let mut m = Monitor::new(cfg(text), 0);
    let key = m.config().services[0].key;
    let [a, b, c] = ["198.18.1.1:80", "198.18.1.2:80", "198.18.1.3:80"].map(|s| id(&m, 0, s));
    let verdict = |down: Vec<ServerId>| {
        move |s: &ServerId| {
            if down.contains(s) {
                refused()
            } else {
                CheckResult::pass()
            }
        }
    };
    // c down: live 5 ≥ 3, quorum kept.
    drive(&mut m, 0, 1_500, &verdict(vec![c]));
    assert!(m.quorum(&key));
    // b down too: live 3, not below 3, kept.
    drive(&mut m, 1_501, 3_000, &verdict(vec![b, c]));
    assert!(m.quorum(&key));
    assert_eq!(table(&m, 0), [("198.18.1.1:80".into(), 3)]);
    // a down: live 0: lost; only the fallback remains.
    drive(&mut m, 3_001, 4_500, &verdict(vec![a, b, c]));
    assert!(!m.quorum(&key));
    assert_eq!(table(&m, 0), [("198.18.9.9:80".into(), 1)]);
    // a back: live 3 < 5: still lost, and a is pulled (keepalived).
    drive(&mut m, 4_501, 6_000, &verdict(vec![b, c]));
    assert!(!m.quorum(&key));
    assert_eq!(table(&m, 0), [("198.18.9.9:80".into(), 1)]);
    // b back: live 5: regained.
    drive(&mut m, 6_001, 7_500, &verdict(vec![c]));
    assert!(m.quorum(&key));
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 3), ("198.18.1.2:80".into(), 2)]
    );
}

#[test]
fn initial_down_starts_out_of_the_pool() {
    let text = TWO.replace(
        "scheduler = \"wrr\"",
        "scheduler = \"wrr\"\ninitial = \"down\"",
    );
    let mut m = Monitor::new(cfg(&text), 0);
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 0), ("198.18.1.2:80".into(), 0)]
    );
    drive(&mut m, 0, 4_000, &|_| CheckResult::pass());
    assert_eq!(
        table(&m, 0),
        [("198.18.1.1:80".into(), 5), ("198.18.1.2:80".into(), 2)]
    );
}

#[test]
fn a_dynamic_weight_replaces_the_configured_one_while_up() {
    let text = r#"
[[service]]
tcp = "198.18.0.1:80"
[[service.real_server]]
address = "198.18.1.1:80"
weight = 10
[[service.real_server.check]]
type = "command"
command = ["/bin/true"]
dynamic_weight = true
interval = 1
timeout = 1
"#;
    let mut m = Monitor::new(cfg(text), 0);
    m.take_dirty();
    let w = |code: i32| CheckResult {
        ok: true,
        reason: Reason::Exit(code),
        weight: Some(code - 2),
    };
    let n = drive(&mut m, 0, 1_500, &|_| w(9));
    assert!(n.iter().any(|n| matches!(
        n,
        Notice::Weight {
            weight: Some(7),
            ..
        }
    )));
    assert!(m.take_dirty());
    assert_eq!(table(&m, 0), [("198.18.1.1:80".into(), 7)]);
}

#[test]
fn reload_keeps_unchanged_checks_and_restarts_changed_ones() {
    let mut st = HealthState::new(cfg(TWO), 0);
    st.sync();
    let a = id(st.monitor(), 0, "198.18.1.1:80");
    drive(st.monitor_mut(), 0, 3_000, &|s| {
        if *s == a {
            refused()
        } else {
            CheckResult::pass()
        }
    });
    st.sync();
    assert_eq!(st.monitor().health(&a), Some(Health::Down));

    // Same checks, a new weight for the down server and a new real server:
    // a stays down (no flap), its new weight waits for its return, the new
    // server is added.
    let text = TWO.replace("weight = 5", "weight = 6")
        + "[[service.real_server]]\naddress = \"198.18.1.3:80\"\n";
    let (summary, reqs) = st.reload(cfg(&text), 3_001);
    assert_eq!((summary.kept, summary.fresh, summary.dropped), (2, 1, 0));
    assert_eq!(st.monitor().health(&a), Some(Health::Down));
    assert!(
        matches!(&reqs[..], [Request::AddDest { dest, .. }] if dest.addr.to_string() == "198.18.1.3"),
        "{reqs:?}"
    );
    let last = st.monitor().status()[0].checks[0].last.clone();
    assert_eq!(
        last.map(|l| l.1),
        Some(refused()),
        "the last result is kept"
    );

    // A changed check starts afresh from the initial state (up).
    let text2 = text.replace("rise = 3", "rise = 1");
    let (summary, reqs) = st.reload(cfg(&text2), 3_002);
    assert_eq!((summary.kept, summary.fresh), (0, 3));
    assert_eq!(st.monitor().health(&a), Some(Health::Up));
    assert!(
        matches!(&reqs[..], [Request::EditDest { dest, .. }] if dest.addr == a.addr && dest.weight == 6),
        "{reqs:?}"
    );
}

#[test]
fn servers_without_checks_are_always_up_and_untouched() {
    let text = r#"
[[service]]
tcp = "198.18.0.1:80"
[[service.real_server]]
address = "198.18.1.1:80"
"#;
    let mut st = HealthState::new(cfg(text), 0);
    assert_eq!(st.sync().len(), 2);
    assert_eq!(st.monitor().next_wakeup(), None);
    assert_eq!(st.monitor().check_count(), 0);
    let addr: IpAddr = "198.18.1.1".parse().unwrap();
    assert_eq!(
        st.monitor().effective().services[0].real_servers[0]
            .dest
            .addr,
        addr
    );
}

#[test]
fn first_runs_are_spread_over_the_interval() {
    let mut text = String::from(
        "[[service]]\ntcp = \"198.18.0.1:80\"\n[[service.check]]\ntype = \"tcp\"\ninterval = 1\ntimeout = 1\n",
    );
    for i in 0..1000 {
        text += &format!(
            "[[service.real_server]]\naddress = \"198.18.{}.{}:80\"\n",
            2 + i / 250,
            1 + i % 250
        );
    }
    let mut m = Monitor::new(cfg(&text), 0);
    // Count first runs per 100 ms slot of the first interval.
    let mut slots = [0usize; 10];
    let mut now = 0;
    while now < 1_000 {
        for r in m.start_due(now) {
            slots[(now / 100) as usize] += 1;
            let _ = r;
        }
        now = match m.next_wakeup() {
            Some(t) if t > now => t,
            _ => now + 1,
        };
    }
    assert_eq!(slots.iter().sum::<usize>(), 1000);
    for (i, n) in slots.iter().enumerate() {
        assert!((50..=150).contains(n), "slot {i}: {n} of 1000 ({slots:?})");
    }
}

#[test]
fn a_result_in_flight_across_a_reload_reaches_its_own_check() {
    let two = |first: &str, second: &str| {
        format!(
            "[[service]]\ntcp = \"198.18.0.1:80\"\n[[service.real_server]]\naddress = \"198.18.1.1:80\"\n\
             [[service.real_server.check]]\n{first}\ninterval = 1\ntimeout = 1\nfall = 1\n\
             [[service.real_server.check]]\n{second}\ninterval = 1\ntimeout = 1\nfall = 1\n"
        )
    };
    let tcp = "type = \"tcp\"";
    let http = "type = \"http\"";
    let mut m = Monitor::new(cfg(&two(tcp, http)), 0);
    // Start both checks' first runs.
    let mut runs = Vec::new();
    let mut now = 0;
    while runs.len() < 2 {
        runs.extend(m.start_due(now));
        now += 1;
    }
    // Swap the two checks: both keep their state (and their runs).
    let s = m.reload(cfg(&two(http, tcp)), now);
    assert_eq!((s.kept, s.fresh), (2, 0));
    // The tcp run fails: the tcp check (now second) goes down, not http.
    let tcp_run = runs.iter().find(|r| r.check == 0).unwrap();
    m.finish(tcp_run, now, refused());
    let st = &m.status()[0];
    assert_eq!(st.checks[0].spec.kind.name(), "http");
    assert_eq!(st.checks[0].health, Health::Up);
    assert_eq!(st.checks[1].health, Health::Down);
    // A run of a check a reload dropped goes nowhere.
    let http_run = runs.iter().find(|r| r.check == 1).unwrap().clone();
    m.reload(cfg(&two(tcp, "type = \"udp\"")), now);
    assert!(m.finish(&http_run, now, refused()).is_empty());
}
