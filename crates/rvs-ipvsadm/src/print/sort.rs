//! The listing order: glibc `qsort` (a stable top-down merge sort) with
//! libipvs's comparators, which subtract unsigned 32-bit fields and read
//! the difference as a signed `int`.
//!
//! Those comparators are not transitive when values lie 2^31 or more
//! apart (large fwmarks, far-apart IPv4 addresses), so the result depends
//! on the input order and on the exact merge shape; both are reproduced.

use rvs_ctl::{DestEntry, ServiceEntry};
use std::net::IpAddr;

/// glibc's `msort_with_tmp`: left half `n/2` elements, right half the rest,
/// the merge takes from the left while `cmp(left, right) <= 0`.
pub fn msort<T: Clone>(v: &mut [T], cmp: &impl Fn(&T, &T) -> i32) {
    let n = v.len();
    if n <= 1 {
        return;
    }
    let n1 = n / 2;
    msort(&mut v[..n1], cmp);
    msort(&mut v[n1..], cmp);
    let mut tmp = Vec::with_capacity(n);
    let (mut i, mut j) = (0, n1);
    while i < n1 && j < n {
        if cmp(&v[i], &v[j]) <= 0 {
            tmp.push(v[i].clone());
            i += 1;
        } else {
            tmp.push(v[j].clone());
            j += 1;
        }
    }
    tmp.extend_from_slice(&v[i..n1]);
    tmp.extend_from_slice(&v[j..n]);
    v.clone_from_slice(&tmp);
}

/// The address as the four host-order words of `union nf_inet_addr`.
fn words(a: &IpAddr) -> [u32; 4] {
    match a {
        IpAddr::V4(v4) => [u32::from(*v4), 0, 0, 0],
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

/// `(int)(a - b)` on unsigned 32-bit values.
fn sub32(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The address comparison of both comparators: four words when the first
/// operand is IPv6, else the first word only.
fn cmp_addr(first_is_v6: bool, a: &[u32; 4], b: &[u32; 4]) -> i32 {
    if first_is_v6 {
        let mut r = 0;
        for i in 0..4 {
            r = sub32(a[i], b[i]);
            if r != 0 {
                break;
            }
        }
        r
    } else {
        sub32(a[0], b[0])
    }
}

/// `ipvs_cmp_services`: fwmark, address family, protocol, address, port.
pub fn cmp_services(s1: &ServiceEntry, s2: &ServiceEntry) -> i32 {
    let r = sub32(s1.key.fwmark(), s2.key.fwmark());
    if r != 0 {
        return r;
    }
    let (af1, af2) = (s1.key.af().number() as i32, s2.key.af().number() as i32);
    if af1 != af2 {
        return af1 - af2;
    }
    let r = s1.key.protocol().number() as i32 - s2.key.protocol().number() as i32;
    if r != 0 {
        return r;
    }
    let addr = |s: &ServiceEntry| match s.key {
        rvs_core::ServiceKey::Addr { addr, .. } => words(&addr),
        rvs_core::ServiceKey::Fwmark { .. } => [0; 4],
    };
    let r = cmp_addr(s1.key.af() == rvs_core::Af::Inet6, &addr(s1), &addr(s2));
    if r != 0 {
        return r;
    }
    s1.key.port() as i32 - s2.key.port() as i32
}

/// `ipvs_cmp_dests`: address (as the first operand's family reads it), port.
pub fn cmp_dests(d1: &DestEntry, d2: &DestEntry) -> i32 {
    let (a1, a2) = (&d1.config.addr, &d2.config.addr);
    let r = cmp_addr(a1.is_ipv6(), &words(a1), &words(a2));
    if r != 0 {
        return r;
    }
    d1.config.port as i32 - d2.config.port as i32
}

/// Sorts services and each service's real servers as `-L` does.
pub fn sort_services(services: &mut [ServiceEntry]) {
    msort(services, &cmp_services);
}

/// Sorts one service's real servers as `-L` does.
pub fn sort_dests(dests: &mut [DestEntry]) {
    msort(dests, &cmp_dests);
}

#[cfg(test)]
mod tests {
    use super::*;

    use rvs_core::{Af, Counters, DestConfig, Protocol, Rates, ServiceConfig, ServiceKey};

    /// "TCP 10.0.0.1:80", "UDP [2001:db8::1]:53", "FWM -255 IPv6" -> a service.
    fn svc(spec: &str) -> ServiceEntry {
        let w: Vec<&str> = spec.split_whitespace().collect();
        let key = if w[0] == "FWM" {
            let af = if w.get(2) == Some(&"IPv6") {
                Af::Inet6
            } else {
                Af::Inet
            };
            ServiceKey::Fwmark {
                mark: w[1].parse::<i32>().unwrap() as u32,
                af,
            }
        } else {
            let proto = match w[0] {
                "TCP" => Protocol::Tcp,
                "UDP" => Protocol::Udp,
                _ => Protocol::Sctp,
            };
            let (a, p) = w[1].rsplit_once(':').unwrap();
            let addr = a
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .unwrap();
            ServiceKey::Addr {
                proto,
                addr,
                port: p.parse().unwrap(),
            }
        };
        ServiceEntry {
            key,
            config: ServiceConfig::defaults(key.af()),
            stats: Counters::default(),
            rates: Rates::default(),
            dests: Vec::new(),
        }
    }

    fn sorted(kernel_order: &[&str]) -> Vec<String> {
        let mut v: Vec<ServiceEntry> = kernel_order.iter().map(|s| svc(s)).collect();
        sort_services(&mut v);
        let back: std::collections::HashMap<String, &str> = kernel_order
            .iter()
            .map(|s| (format!("{:?}", svc(s).key), *s))
            .collect();
        v.iter()
            .map(|e| back[&format!("{:?}", e.key)].to_string())
            .collect()
    }

    // The kernel orders and ipvsadm results of tests/golden/cases/sorting.out.
    #[test]
    fn golden_fwmark_order() {
        let got = sorted(&[
            "UDP 10.0.0.22:80",
            "TCP 10.0.0.1:80",
            "FWM -255 IPv6",
            "FWM 1 IPv6",
            "FWM -2147483647 IPv6",
            "FWM -1294967295",
            "FWM 257",
            "FWM -255",
            "FWM -2147483647",
            "FWM 1",
        ]);
        assert_eq!(
            got,
            [
                "FWM -2147483647",
                "FWM -1294967295",
                "FWM -255",
                "FWM -255 IPv6",
                "TCP 10.0.0.1:80",
                "UDP 10.0.0.22:80",
                "FWM 1",
                "FWM 1 IPv6",
                "FWM 257",
                "FWM -2147483647 IPv6",
            ]
        );
    }

    #[test]
    fn golden_far_apart_ipv4_orders() {
        let want = [
            "TCP 100.0.0.1:80",
            "TCP 127.255.255.1:80",
            "TCP 128.0.0.1:80",
            "TCP 150.0.0.1:80",
            "TCP 200.1.1.1:80",
            "TCP 250.0.0.1:80",
            "TCP 1.2.3.1:80",
            "TCP 10.0.0.1:80",
        ];
        let a = [
            "TCP 127.255.255.1:80",
            "TCP 128.0.0.1:80",
            "TCP 250.0.0.1:80",
            "TCP 1.2.3.1:80",
            "TCP 150.0.0.1:80",
            "TCP 100.0.0.1:80",
            "TCP 200.1.1.1:80",
            "TCP 10.0.0.1:80",
        ];
        assert_eq!(sorted(&a), want);
        let b: Vec<&str> = a.iter().rev().copied().collect();
        assert_eq!(sorted(&b), want);
    }

    #[test]
    fn golden_ipv6_words() {
        let got = sorted(&[
            "TCP [f001:db8::1]:80",
            "TCP [1:db8::1]:80",
            "TCP [8001:db8::1]:80",
            "TCP [2001:db8::8000:0:0:1]:80",
            "TCP [a001:db8::1]:80",
            "TCP [2001:db8::1]:80",
        ]);
        assert_eq!(
            got,
            [
                "TCP [f001:db8::1]:80",
                "TCP [1:db8::1]:80",
                "TCP [2001:db8::8000:0:0:1]:80",
                "TCP [8001:db8::1]:80",
                "TCP [a001:db8::1]:80",
                "TCP [2001:db8::1]:80",
            ]
        );
    }

    fn dest(s: &str) -> DestEntry {
        let (a, p) = s.rsplit_once(':').unwrap();
        let a = a.trim_start_matches('[').trim_end_matches(']');
        DestEntry {
            config: DestConfig::new(a.parse().unwrap(), p.parse().unwrap()),
            activeconns: 0,
            inactconns: 0,
            persistconns: 0,
            stats: Counters::default(),
            rates: Rates::default(),
        }
    }

    fn sorted_dests(kernel_order: &[&str]) -> Vec<String> {
        let mut v: Vec<DestEntry> = kernel_order.iter().map(|s| dest(s)).collect();
        sort_dests(&mut v);
        v.iter()
            .map(|d| match d.config.addr {
                IpAddr::V4(a) => format!("{a}:{}", d.config.port),
                IpAddr::V6(a) => format!("[{a}]:{}", d.config.port),
            })
            .collect()
    }

    #[test]
    fn golden_dest_orders() {
        assert_eq!(
            sorted_dests(&[
                "200.0.0.1:81",
                "127.255.255.1:80",
                "128.0.0.1:80",
                "223.0.0.1:80",
                "1.0.0.1:80",
                "150.0.0.1:80",
                "100.0.0.1:80",
                "200.0.0.1:80",
                "10.0.0.1:80",
            ]),
            [
                "100.0.0.1:80",
                "127.255.255.1:80",
                "128.0.0.1:80",
                "150.0.0.1:80",
                "200.0.0.1:80",
                "200.0.0.1:81",
                "223.0.0.1:80",
                "1.0.0.1:80",
                "10.0.0.1:80",
            ]
        );
        // Mixed families (listing-edges.out): newest first in, as listed out.
        assert_eq!(
            sorted_dests(&[
                "10.0.0.1:443",
                "[::1.2.3.4]:443",
                "[2001:db8::5]:443",
                "192.168.50.1:443"
            ]),
            [
                "192.168.50.1:443",
                "[::102:304]:443",
                "10.0.0.1:443",
                "[2001:db8::5]:443"
            ]
        );
    }

    #[test]
    fn msort_is_stable_and_shaped_like_glibc() {
        // Sorting pairs by the first field keeps equal keys in input order.
        let mut v = vec![(2, 'a'), (1, 'b'), (2, 'c'), (1, 'd'), (0, 'e')];
        msort(&mut v, &|a: &(i32, char), b: &(i32, char)| a.0 - b.0);
        assert_eq!(v, vec![(0, 'e'), (1, 'b'), (1, 'd'), (2, 'a'), (2, 'c')]);
    }

    #[test]
    fn non_transitive_comparator_depends_on_merge_shape() {
        // a=10.0.0.1, b=200.1.1.1 (2^31+ apart: b "<" a), c=100.0.0.1.
        let a = u32::from(std::net::Ipv4Addr::new(10, 0, 0, 1));
        let b = u32::from(std::net::Ipv4Addr::new(200, 1, 1, 1));
        let c = u32::from(std::net::Ipv4Addr::new(100, 0, 0, 1));
        let cmp = |x: &u32, y: &u32| sub32(*x, *y);
        assert!(cmp(&b, &a) < 0 && cmp(&a, &c) < 0 && cmp(&c, &b) < 0);
        let mut v = vec![a, b, c];
        msort(&mut v, &cmp);
        // left [a], right [b, c] -> sorted right: cmp(b,c) > 0 -> [c, b];
        // merge: cmp(a,c) < 0 -> a; then c, b.
        assert_eq!(v, vec![a, c, b]);
        let mut v = vec![c, a, b];
        msort(&mut v, &cmp);
        // left [c], right [a, b] -> [b, a]; merge: cmp(c,b) < 0 -> c, b, a.
        assert_eq!(v, vec![c, b, a]);
    }

    #[test]
    fn large_fwmarks_sort_first() {
        assert!(sub32(u32::MAX, 0) < 0);
        assert!(sub32(1, 0) > 0);
        assert!(sub32(0x8000_0000, 0) < 0);
        assert!(sub32(0x8000_0000, 5) > 0, "2^31 - 5 wraps to positive");
        assert_eq!(sub32(3, 3), 0);
    }
}
