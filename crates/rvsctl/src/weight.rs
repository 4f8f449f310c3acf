//! `rvsctl drain` and `rvsctl weight`: change one real server's weight by
//! naming it, without restating its other attributes as `rvsadm -e` must.
//! Services are written `tcp:ADDR:PORT`, `udp:...`, `sctp:...` (IPv6 in
//! brackets) or `fwmark:MARK` / `fwmark6:MARK`; real servers `ADDR[:PORT]`
//! (the service's port when left out).

use rvs_core::ServiceKey;
use rvs_ctl::{Client, DestEntry, Request, Response};
use std::net::IpAddr;
use std::path::Path;

/// Parses `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwmark:5`, `fwmark6:5`.
pub fn parse_service(s: &str) -> Result<ServiceKey, String> {
    rvs_config::parse_service_name(s)
}

/// Parses a real server `ADDR[:PORT]` of `svc`.
pub fn parse_real_server(s: &str, svc: &ServiceKey) -> Result<(IpAddr, u16), String> {
    let (addr, port) = rvs_config::parse_endpoint(s).map_err(|e| format!("`{s}`: {e}"))?;
    Ok((addr, port.unwrap_or(svc.port())))
}

fn client(socket: &Path) -> Result<Client, String> {
    Client::connect(socket).map_err(|e| format!("cannot reach rvsd at {}: {e}", socket.display()))
}

/// Sets the weight of one real server; returns its entry before the change.
pub fn set_weight(
    socket: &Path,
    service: &str,
    real: &str,
    weight: i32,
) -> Result<DestEntry, String> {
    let key = parse_service(service)?;
    let (addr, port) = parse_real_server(real, &key)?;
    let mut c = client(socket)?;
    let entry = match c
        .call(&Request::GetService { key })
        .map_err(|e| e.to_string())?
    {
        Response::Service(s) => s,
        Response::Err(_) => return Err(format!("{service}: no such service")),
        other => return Err(format!("unexpected answer from rvsd: {other:?}")),
    };
    let dest = entry
        .dests
        .iter()
        .find(|d| d.config.addr == addr && d.config.port == port)
        .ok_or_else(|| format!("{real}: not a real server of {service}"))?
        .clone();
    let mut config = dest.config.clone();
    config.weight = weight;
    match c
        .call(&Request::EditDest {
            service: key,
            dest: config,
        })
        .map_err(|e| e.to_string())?
    {
        Response::Ok => Ok(dest),
        Response::Err(e) => Err(format!("rvsd refused the change: {e:?}")),
        Response::Refused(m) | Response::BadRequest(m) => Err(m),
        other => Err(format!("unexpected answer from rvsd: {other:?}")),
    }
}

/// `rvsctl drain` / `rvsctl weight`: prints what changed.
pub fn run(socket: &Path, service: &str, real: &str, weight: i32) -> Result<(), String> {
    let before = set_weight(socket, service, real, weight)?;
    let what = if weight == 0 { "drained" } else { "weight set" };
    println!(
        "{real} of {service}: {what} (weight {} -> {weight}; {} active, {} inactive connections continue)",
        before.config.weight, before.activeconns, before.inactconns
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Af, Protocol};

    #[test]
    fn services_and_real_servers_parse() {
        let k = parse_service("tcp:10.0.0.1:80").unwrap();
        assert_eq!(
            k,
            ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: "10.0.0.1".parse().unwrap(),
                port: 80
            }
        );
        let k6 = parse_service("udp:[2001:db8::1]:53").unwrap();
        assert_eq!(k6.port(), 53);
        assert_eq!(
            parse_service("fwmark6:7").unwrap(),
            ServiceKey::Fwmark {
                mark: 7,
                af: Af::Inet6
            }
        );
        assert_eq!(parse_real_server("10.0.0.2", &k).unwrap().1, 80);
        assert_eq!(parse_real_server("10.0.0.2:8080", &k).unwrap().1, 8080);
        for bad in [
            "tcp:10.0.0.1",
            "http:1.2.3.4:80",
            "fwmark:0",
            "10.0.0.1:80",
            "tcp:x:80",
        ] {
            assert!(parse_service(bad).is_err(), "{bad}");
        }
    }
}
