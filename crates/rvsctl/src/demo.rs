//! Demo real servers: one thread per listener, each connection or datagram
//! answered with the server's own address so a client sees which real
//! server the director chose.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

/// Serves every address on TCP and UDP until the process is killed.
pub fn serve(addrs: &[SocketAddr]) -> Result<(), String> {
    let mut threads = Vec::new();
    for &a in addrs {
        let tcp = TcpListener::bind(a).map_err(|e| format!("tcp {a}: {e}"))?;
        let udp = UdpSocket::bind(a).map_err(|e| format!("udp {a}: {e}"))?;
        threads.push(std::thread::spawn(move || serve_tcp(tcp, a)));
        threads.push(std::thread::spawn(move || serve_udp(udp, a)));
        println!("demo real server on {a} (tcp, udp)");
    }
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn serve_tcp(l: TcpListener, me: SocketAddr) {
    for conn in l.incoming() {
        let Ok(mut s) = conn else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        std::thread::spawn(move || {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let body = format!("real server {me}\n");
            let reply = if buf[..n].starts_with(b"GET ") || buf[..n].starts_with(b"HEAD ") {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                body
            };
            let _ = s.write_all(reply.as_bytes());
        });
    }
}

fn serve_udp(s: UdpSocket, me: SocketAddr) {
    let mut buf = [0u8; 2048];
    loop {
        if let Ok((_, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(format!("real server {me}\n").as_bytes(), from);
        }
    }
}
