//! The configuration file as rvsd uses it: loading, turning it into engine
//! options, and reloading it as a diff on SIGHUP.

use rvs_config::{Config, ProxyProtocol};
use rvs_proxy::{ClientAddressing, ProxyOptions};
use std::net::SocketAddr;
use std::path::Path;

/// Loads and validates `path`; every error as `path:line:col: message`.
pub fn load(path: &Path) -> Result<Config, String> {
    rvs_config::load(path).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn pp(p: ProxyProtocol) -> rvs_proxy::ProxyProtocol {
    match p {
        ProxyProtocol::None => rvs_proxy::ProxyProtocol::None,
        ProxyProtocol::V1 => rvs_proxy::ProxyProtocol::V1,
        ProxyProtocol::V2 => rvs_proxy::ProxyProtocol::V2,
    }
}

/// How each service and real server of `c` learns the client's address.
pub fn proxy_options(c: &Config) -> ProxyOptions {
    let mut o = ProxyOptions::default();
    for (key, opts) in c.proxy_options() {
        if let Some(p) = opts.tproxy_port {
            o.tproxy_ports.insert(key, p);
        }
        o.services.insert(
            key,
            ClientAddressing {
                proxy_protocol: pp(opts.proxy_protocol),
                transparent: opts.transparent,
            },
        );
    }
    for (key, addr, port, proto) in c.proxy_protocols() {
        let transparent = o.services.get(&key).is_some_and(|a| a.transparent);
        o.real_servers.insert(
            (key, SocketAddr::new(addr, port)),
            ClientAddressing {
                proxy_protocol: pp(proto),
                transparent,
            },
        );
    }
    o
}

/// The xdp engine's firewall-mark classification: every fwmark service's
/// `match` entries, with its mark.
pub fn mark_rules(c: &Config) -> Vec<rvs_xdp::MarkRule> {
    c.matches
        .iter()
        .filter_map(|(key, ms)| match key {
            rvs_core::ServiceKey::Fwmark { mark, .. } => Some((*mark, ms)),
            _ => None,
        })
        .flat_map(|(mark, ms)| {
            ms.iter().map(move |m| rvs_xdp::MarkRule {
                mark,
                proto: m.proto as u8,
                net: m.net,
                prefix: m.prefix,
                lo: m.lo,
                hi: m.hi,
            })
        })
        .collect()
}
