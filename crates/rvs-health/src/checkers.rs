//! Turning a check table of rvs.toml into a running checker of
//! `rvs-check`, aimed at its real server.

use rvs_check::{
    Checker, DnsCheck, HttpCheck, HttpsCheck, MiscCheck, TcpCheck, TlsOptions, UdpCheck, Verify,
};
use rvs_config::{Check, CheckKind, HttpProbe, RealServer, Service};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

/// Where a check connects: its own address and port, else the real
/// server's. `None` when that leaves port 0 (a fwmark service's real server
/// checked without `port`) for a check that needs a port.
pub fn target(rs: &RealServer, check: &Check) -> Option<SocketAddr> {
    let addr = check.address.unwrap_or(rs.dest.addr);
    let port = check.port.unwrap_or(rs.dest.port);
    if port == 0 && !matches!(check.kind, CheckKind::Command { .. }) {
        return None;
    }
    Some(SocketAddr::new(addr, port))
}

fn http_check(target: SocketAddr, p: &HttpProbe) -> Result<HttpCheck, String> {
    let mut h = HttpCheck::new(target, &p.path);
    h.host = p.host.clone();
    h.status = p.status.iter().map(|&(a, b)| a..=b).collect();
    h.receive = p.expect.clone();
    h.regex = match &p.regex {
        Some(r) => Some(regex_lite::Regex::new(r).map_err(|e| format!("regex: {e}"))?),
        None => None,
    };
    h.regex_no_match = p.regex_no_match;
    h.digest = p.digest.clone();
    Ok(h)
}

/// The system's trust roots (Debian's /etc/ssl/certs), loaded once.
fn system_roots() -> Result<Arc<rustls::RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<rustls::RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = rustls::RootCertStore::empty();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(format!(
                    "no trusted root certificates found on this system ({} errors); \
                     install ca-certificates or set verify = false",
                    found.errors.len()
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
}

/// Replaces `{vip}` `{vport}` `{rip}` `{rport}` in a command argument.
pub fn expand(arg: &str, service: &Service, rs: &RealServer) -> String {
    let (vip, vport) = match service.key {
        rvs_core::ServiceKey::Addr { addr, port, .. } => (addr.to_string(), port.to_string()),
        rvs_core::ServiceKey::Fwmark { mark, .. } => (mark.to_string(), "0".to_string()),
    };
    arg.replace("{vip}", &vip)
        .replace("{vport}", &vport)
        .replace("{rip}", &rs.dest.addr.to_string())
        .replace("{rport}", &rs.dest.port.to_string())
}

/// The checker for `check` of real server `rs` of `service`.
pub fn build(
    service: &Service,
    rs: &RealServer,
    check: &Check,
) -> Result<Box<dyn Checker>, String> {
    let need_target = || {
        target(rs, check).ok_or_else(|| {
            format!(
                "the {} check of {} needs a port (the real server's port is 0)",
                check.kind.name(),
                rs.dest.addr
            )
        })
    };
    Ok(match &check.kind {
        CheckKind::Tcp => Box::new(TcpCheck::new(need_target()?)),
        CheckKind::Http(p) => Box::new(http_check(need_target()?, p)?),
        CheckKind::Https { http, sni, verify } => {
            let verify = if *verify {
                Verify::Roots(system_roots()?)
            } else {
                Verify::Off
            };
            let tls = TlsOptions {
                server_name: sni.clone().or_else(|| {
                    http.host
                        .clone()
                        .filter(|h| h.parse::<std::net::IpAddr>().is_err())
                }),
                enable_sni: true,
                verify,
            };
            Box::new(HttpsCheck::new(http_check(need_target()?, http)?, tls)?)
        }
        CheckKind::Udp { payload, expect } => {
            let mut u = UdpCheck::new(need_target()?, payload);
            u.expect = expect.clone();
            Box::new(u)
        }
        CheckKind::Dns { name, query_type } => {
            let qtype = rvs_check::dns::qtype_by_name(query_type)
                .ok_or_else(|| format!("unknown DNS query type {query_type}"))?;
            let mut d = DnsCheck::new(need_target()?, name, qtype);
            // keepalived's DNS_CHECK only requires NOERROR.
            d.require_answer = false;
            Box::new(d)
        }
        CheckKind::Command {
            argv,
            dynamic_weight,
        } => {
            let argv: Vec<String> = argv.iter().map(|a| expand(a, service, rs)).collect();
            let (program, args) = argv.split_first().ok_or("empty command")?;
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut m = MiscCheck::new(program, &args);
            m.dynamic = *dynamic_weight;
            Box::new(m)
        }
    })
}
