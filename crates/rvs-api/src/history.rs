//! The rate history behind the status page's charts: for every service and
//! every real server, the last [`HistoryConfig::capacity`] samples of the
//! five `--rate` estimates, taken once per estimator tick (2 s), so a page
//! opened just now can draw the last minutes.
//!
//! It performs no I/O and reads no clock: the daemon calls
//! [`RateHistory::record_table`] (or [`RateHistory::record`]) right after
//! each estimator tick with the wall-clock time of the sample, and the API
//! reads it with [`RateHistory::view`]. Samples are numbered from 0; a
//! client asks for the samples from a number on (the `next` of its last
//! answer) and so fetches only what is new. A series is kept while its
//! service or real server exists: one that disappears from a sample is
//! forgotten, and one that (re)appears starts empty. The number of series
//! is capped ([`HistoryConfig::max_series`]) so memory stays bounded on a
//! table of thousands of services; what is over the cap is left out and the
//! view says so.

use crate::view::{addr_port, service_name};
use rvs_core::table::ServiceTable;
use rvs_core::{Rates, ServiceKey};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// How much history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Samples kept per series (300 × 2 s = 10 minutes).
    pub capacity: usize,
    /// Most series (services plus real servers) kept; 40 bytes a sample,
    /// so the default bounds the history at about 12 MB.
    pub max_series: usize,
    /// The interval the daemon records at, in milliseconds (reported to
    /// clients; the history itself takes whatever times it is given).
    pub period_ms: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            capacity: 300,
            max_series: 1024,
            period_ms: rvs_core::stats::ESTIMATOR_PERIOD_MS,
        }
    }
}

/// The samples of one series, the newest last; the newest is always the
/// history's newest sample (a series missing from a sample is dropped).
type Ring = VecDeque<Rates>;

/// A real server's identity within its service.
type DestId = (IpAddr, u16);

struct ServiceSeries {
    key: ServiceKey,
    rates: Ring,
    dests: Vec<(DestId, Ring)>,
}

/// Fixed-size rings of rate samples per service and real server.
pub struct RateHistory {
    cfg: HistoryConfig,
    /// The number the next sample gets.
    next: u64,
    /// Unix time (ms) of each kept sample, oldest first.
    times: VecDeque<u64>,
    /// In the order of the last sample.
    services: Vec<ServiceSeries>,
    /// Whether the last sample left series out (over `max_series`).
    truncated: bool,
}

fn push(ring: &mut Ring, r: Rates, capacity: usize) {
    if ring.len() == capacity {
        ring.pop_front();
    }
    ring.push_back(r);
}

impl RateHistory {
    /// An empty history; a capacity or series cap of 0 is taken as 1.
    pub fn new(cfg: HistoryConfig) -> RateHistory {
        let cfg = HistoryConfig {
            capacity: cfg.capacity.max(1),
            max_series: cfg.max_series.max(1),
            ..cfg
        };
        RateHistory {
            cfg,
            next: 0,
            times: VecDeque::with_capacity(cfg.capacity),
            services: Vec::new(),
            truncated: false,
        }
    }

    pub fn config(&self) -> HistoryConfig {
        self.cfg
    }

    /// Records one sample taken at `at_ms` (Unix time, ms): every service
    /// with its rates and its real servers' rates, in the order given.
    pub fn record<S, D>(&mut self, at_ms: u64, services: S)
    where
        S: IntoIterator<Item = (ServiceKey, Rates, D)>,
        D: IntoIterator<Item = (DestId, Rates)>,
    {
        let cap = self.cfg.capacity;
        self.next += 1;
        if self.times.len() == cap {
            self.times.pop_front();
        }
        self.times.push_back(at_ms);
        let mut old: HashMap<ServiceKey, ServiceSeries> = std::mem::take(&mut self.services)
            .into_iter()
            .map(|s| (s.key, s))
            .collect();
        let mut budget = self.cfg.max_series;
        self.truncated = false;
        for (key, rates, dests) in services {
            if budget == 0 {
                self.truncated = true;
                break;
            }
            budget -= 1;
            let mut s = old.remove(&key).unwrap_or_else(|| ServiceSeries {
                key,
                rates: Ring::new(),
                dests: Vec::new(),
            });
            push(&mut s.rates, rates, cap);
            let mut old_dests: HashMap<DestId, Ring> =
                std::mem::take(&mut s.dests).into_iter().collect();
            for (id, r) in dests {
                if budget == 0 {
                    self.truncated = true;
                    break;
                }
                budget -= 1;
                let mut ring = old_dests.remove(&id).unwrap_or_default();
                push(&mut ring, r, cap);
                s.dests.push((id, ring));
            }
            self.services.push(s);
        }
    }

    /// Records the rates the table's estimators hold now (call it right
    /// after `tick_estimators`).
    pub fn record_table(&mut self, at_ms: u64, table: &ServiceTable) {
        self.record(
            at_ms,
            table.services().iter().map(|s| {
                (
                    s.key,
                    s.stats.rates(),
                    s.dests
                        .iter()
                        .map(|d| ((d.config.addr, d.config.port), d.stats.rates())),
                )
            }),
        );
    }

    /// The samples numbered `from` and later (all kept samples without
    /// `from`). A `from` older than the oldest kept sample, or ahead of the
    /// newest (the client saw an earlier daemon), answers everything kept:
    /// the answer's `first` tells the client which case it is in.
    pub fn view(&self, from: Option<u64>) -> HistoryView {
        let oldest = self.next - self.times.len() as u64;
        let first = match from {
            Some(f) if f >= oldest && f <= self.next => f,
            _ => oldest,
        };
        let n = (self.next - first) as usize;
        let skip = self.times.len() - n;
        let series = |name: String, ring: &Ring| {
            // The ring covers the newest `ring.len()` samples.
            let missing = n.saturating_sub(ring.len());
            let tail = ring.iter().skip(ring.len().saturating_sub(n));
            let col = |f: fn(&Rates) -> u64| -> Vec<Option<u64>> {
                std::iter::repeat_n(None, missing)
                    .chain(tail.clone().map(|r| Some(f(r))))
                    .collect()
            };
            SeriesView {
                name,
                connections_per_second: col(|r| r.cps),
                packets_in_per_second: col(|r| r.inpps),
                packets_out_per_second: col(|r| r.outpps),
                bytes_in_per_second: col(|r| r.inbps),
                bytes_out_per_second: col(|r| r.outbps),
            }
        };
        HistoryView {
            period_ms: self.cfg.period_ms,
            capacity: self.cfg.capacity,
            first,
            next: self.next,
            truncated: self.truncated,
            times: self.times.iter().skip(skip).copied().collect(),
            services: self
                .services
                .iter()
                .map(|s| ServiceHistoryView {
                    series: series(service_name(&s.key), &s.rates),
                    real_servers: s
                        .dests
                        .iter()
                        .map(|((a, p), ring)| series(addr_port(a, *p), ring))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// One series: the five rates, each aligned with [`HistoryView::times`];
/// `null` where the service or real server did not exist yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesView {
    /// `TCP 10.0.0.1:80` for a service, `10.0.0.2:8080` for a real server.
    pub name: String,
    pub connections_per_second: Vec<Option<u64>>,
    pub packets_in_per_second: Vec<Option<u64>>,
    pub packets_out_per_second: Vec<Option<u64>>,
    pub bytes_in_per_second: Vec<Option<u64>>,
    pub bytes_out_per_second: Vec<Option<u64>>,
}

/// A service's series and its real servers'.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceHistoryView {
    #[serde(flatten)]
    pub series: SeriesView,
    pub real_servers: Vec<SeriesView>,
}

/// The answer of `GET /api/v1/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryView {
    /// How often samples are taken, in milliseconds.
    pub period_ms: u64,
    /// Samples kept per series.
    pub capacity: usize,
    /// The number of the first sample in this answer.
    pub first: u64,
    /// The number the next sample will get: ask `?from=` it next time.
    pub next: u64,
    /// Whether series were left out (more than the daemon keeps).
    pub truncated: bool,
    /// Unix time (ms) of each sample in this answer, oldest first.
    pub times: Vec<u64>,
    pub services: Vec<ServiceHistoryView>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::Protocol;

    fn svc(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port,
        }
    }

    fn rs(last: u8) -> DestId {
        (format!("10.0.0.{last}").parse().unwrap(), 8080)
    }

    /// Rates whose every field is `v` (conns/s), `10v`, `20v`, `100v`, `200v`.
    fn r(v: u64) -> Rates {
        Rates {
            cps: v,
            inpps: 10 * v,
            outpps: 20 * v,
            inbps: 100 * v,
            outbps: 200 * v,
        }
    }

    fn small(capacity: usize, max_series: usize) -> RateHistory {
        RateHistory::new(HistoryConfig {
            capacity,
            max_series,
            period_ms: 2000,
        })
    }

    type Sample = Vec<(ServiceKey, Rates, Vec<(DestId, Rates)>)>;

    #[test]
    fn empty_history_answers_nothing() {
        let h = small(4, 10);
        let v = h.view(None);
        assert_eq!((v.first, v.next), (0, 0));
        assert!(v.times.is_empty() && v.services.is_empty());
        assert_eq!(h.view(Some(7)).first, 0);
    }

    #[test]
    fn the_ring_keeps_the_newest_capacity_samples() {
        let mut h = small(3, 10);
        for i in 0..5u64 {
            let s: Sample = vec![(svc(80), r(i), vec![(rs(2), r(i + 100))])];
            h.record(1000 * i, s);
        }
        let v = h.view(None);
        assert_eq!((v.first, v.next), (2, 5));
        assert_eq!(v.times, [2000, 3000, 4000]);
        let s = &v.services[0];
        assert_eq!(s.series.name, "TCP 10.0.0.1:80");
        assert_eq!(s.series.connections_per_second, [Some(2), Some(3), Some(4)]);
        assert_eq!(
            s.series.packets_in_per_second,
            [Some(20), Some(30), Some(40)]
        );
        assert_eq!(
            s.series.packets_out_per_second,
            [Some(40), Some(60), Some(80)]
        );
        assert_eq!(
            s.series.bytes_in_per_second,
            [Some(200), Some(300), Some(400)]
        );
        assert_eq!(
            s.series.bytes_out_per_second,
            [Some(400), Some(600), Some(800)]
        );
        assert_eq!(s.real_servers[0].name, "10.0.0.2:8080");
        assert_eq!(
            s.real_servers[0].connections_per_second,
            [Some(102), Some(103), Some(104)]
        );
    }

    #[test]
    fn from_returns_only_newer_samples() {
        let mut h = small(10, 10);
        for i in 0..4u64 {
            let s: Sample = vec![(svc(80), r(i), vec![])];
            h.record(i, s);
        }
        let v = h.view(Some(2));
        assert_eq!((v.first, v.next), (2, 4));
        assert_eq!(v.times, [2, 3]);
        assert_eq!(
            v.services[0].series.connections_per_second,
            [Some(2), Some(3)]
        );
        // Up to date: nothing new, but the series are still named.
        let v = h.view(Some(4));
        assert_eq!((v.first, v.next), (4, 4));
        assert!(v.times.is_empty());
        assert!(v.services[0].series.connections_per_second.is_empty());
        // Ahead (a restarted daemon) or too old: everything kept.
        assert_eq!(h.view(Some(99)).first, 0);
        let mut h = small(2, 10);
        for i in 0..5u64 {
            let s: Sample = vec![(svc(80), r(i), vec![])];
            h.record(i, s);
        }
        let v = h.view(Some(1));
        assert_eq!((v.first, v.times.len()), (3, 2));
    }

    #[test]
    fn late_series_are_padded_and_vanished_ones_forgotten() {
        let mut h = small(10, 10);
        h.record(0, vec![(svc(80), r(1), vec![(rs(2), r(1))])]);
        h.record(
            1,
            vec![
                (svc(80), r(2), vec![(rs(3), r(7)), (rs(2), r(2))]),
                (svc(81), r(5), vec![]),
            ],
        );
        let v = h.view(None);
        assert_eq!(v.services.len(), 2);
        let names: Vec<_> = v.services[0]
            .real_servers
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["10.0.0.3:8080", "10.0.0.2:8080"]);
        assert_eq!(
            v.services[0].real_servers[0].connections_per_second,
            [None, Some(7)]
        );
        assert_eq!(
            v.services[0].real_servers[1].connections_per_second,
            [Some(1), Some(2)]
        );
        assert_eq!(v.services[1].series.connections_per_second, [None, Some(5)]);
        // 10.0.0.2 deleted, then added back: its old samples are gone.
        h.record(2, vec![(svc(80), r(3), vec![(rs(3), r(8))])]);
        h.record(3, vec![(svc(80), r(4), vec![(rs(3), r(9)), (rs(2), r(4))])]);
        let v = h.view(None);
        assert_eq!(v.services.len(), 1, "service :81 was deleted");
        let rs2 = &v.services[0].real_servers[1];
        assert_eq!(rs2.connections_per_second, [None, None, None, Some(4)]);
        let rs3 = &v.services[0].real_servers[0];
        assert_eq!(
            rs3.connections_per_second,
            [None, Some(7), Some(8), Some(9)]
        );
    }

    #[test]
    fn series_over_the_cap_are_left_out_and_said_so() {
        let mut h = small(4, 3);
        let sample = || -> Sample {
            vec![
                (svc(80), r(1), vec![(rs(2), r(1)), (rs(3), r(1))]),
                (svc(81), r(1), vec![(rs(4), r(1))]),
            ]
        };
        h.record(0, sample());
        let v = h.view(None);
        assert!(v.truncated);
        assert_eq!(v.services.len(), 1);
        assert_eq!(v.services[0].real_servers.len(), 2);
        let mut h = small(4, 5);
        h.record(0, sample());
        assert!(!h.view(None).truncated);
        assert_eq!(h.view(None).services.len(), 2);
    }

    #[test]
    fn zero_sizes_are_taken_as_one() {
        let mut h = small(0, 0);
        h.record(5, vec![(svc(80), r(1), vec![(rs(2), r(1))])]);
        h.record(6, vec![(svc(80), r(2), vec![(rs(2), r(1))])]);
        let v = h.view(None);
        assert_eq!(v.times, [6]);
        assert_eq!(v.services[0].series.connections_per_second, [Some(2)]);
        assert!(v.truncated);
    }

    #[test]
    fn the_view_serialises_with_flat_service_series() {
        let mut h = small(4, 10);
        h.record(
            1_700_000_000_000,
            vec![(svc(80), r(1), vec![(rs(2), r(2))])],
        );
        let j = serde_json::to_value(h.view(None)).unwrap();
        assert_eq!(j["services"][0]["name"], "TCP 10.0.0.1:80");
        assert_eq!(j["services"][0]["bytes_out_per_second"][0], 200);
        assert_eq!(
            j["services"][0]["real_servers"][0]["packets_in_per_second"][0],
            20
        );
        assert_eq!(j["times"][0], 1_700_000_000_000u64);
        assert_eq!(j["period_ms"], 2000);
    }
}
