//! Half-close semantics through the relay, which sends a client's first
//! bytes together with the connection to the real server, and passes a
//! FIN on together with the last bytes before it: a FIN from one side never
//! stops the other side from sending, every byte arrives exactly once and
//! in order, and the table sees each FIN.

mod common;
use common::*;
use rvs_proxy::{EngineConfig, RelayMethod};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn config(relay: RelayMethod) -> EngineConfig {
    EngineConfig {
        workers: 2,
        relay,
        ..Default::default()
    }
}

/// A real server for one connection that runs `f` on it and reports what
/// `f` returns.
async fn one_shot_rs<F, Fut>(f: F) -> (SocketAddr, oneshot::Receiver<Vec<u8>>)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Vec<u8>> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let _ = tx.send(f(s).await);
    });
    (addr, rx)
}

async fn read_all(s: &mut (impl AsyncReadExt + Unpin)) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("end of stream within 10 s")
        .unwrap();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_real_servers_fin_the_client_still_sends() {
    for relay in [RelayMethod::Auto, RelayMethod::Copy, RelayMethod::Splice] {
        let lvs = Lvs::new(config(relay));
        // The real server answers the request with its last bytes and a
        // FIN at once, then goes on reading until the client's FIN.
        let (rs, from_client) = one_shot_rs(|mut s| async move {
            let mut req = [0u8; 4];
            s.read_exact(&mut req).await.unwrap();
            s.write_all(b"answer").await.unwrap();
            s.shutdown().await.unwrap();
            let mut got = req.to_vec();
            got.extend(read_all(&mut s).await);
            got
        })
        .await;
        let vip = free_addr("127.0.0.1");
        let key = tcp(vip);
        lvs.add_service(key, "rr");
        lvs.add_rs(key, rs, 1);

        let mut c = TcpStream::connect(vip).await.unwrap();
        c.write_all(b"req\n").await.unwrap();
        assert_eq!(read_all(&mut c).await, b"answer", "{relay:?}");
        eventually(5, "FIN_WAIT (the real server closed)", || {
            lvs.conns().iter().any(|e| e.state == "FIN_WAIT")
        })
        .await;
        // Half-closed, not closed: the client's bytes still reach the server.
        c.write_all(b"after the server's FIN").await.unwrap();
        c.shutdown().await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), from_client)
            .await
            .expect("the real server saw the client's FIN")
            .unwrap();
        assert_eq!(got, b"req\nafter the server's FIN", "{relay:?}");
        eventually(5, "TIME_WAIT", || {
            let e = lvs.conns();
            e.len() == 1 && e[0].state == "TIME_WAIT"
        })
        .await;
        eventually(5, "closed", || lvs.engine().connections() == 0).await;
        eventually(5, "counted", || {
            let st = lvs.service(key).stats;
            st.inbytes == 26 && st.outbytes == 6
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_and_finishes_at_once_gets_its_answer() {
    for relay in [RelayMethod::Auto, RelayMethod::Copy] {
        let lvs = Lvs::new(config(relay));
        // The real server reads to the client's FIN, then answers and closes.
        let (rs, from_client) = one_shot_rs(|mut s| async move {
            let got = read_all(&mut s).await;
            s.write_all(format!("{} bytes", got.len()).as_bytes())
                .await
                .unwrap();
            got
        })
        .await;
        let vip = free_addr("127.0.0.1");
        let key = tcp(vip);
        lvs.add_service(key, "rr");
        lvs.add_rs(key, rs, 1);

        let mut c = TcpStream::connect(vip).await.unwrap();
        // Request and FIN are in the socket before the engine reads it.
        c.write_all(&[7u8; 3000]).await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(read_all(&mut c).await, b"3000 bytes", "{relay:?}");
        let got = from_client.await.unwrap();
        assert!(got.len() == 3000 && got.iter().all(|&b| b == 7));
        eventually(5, "TIME_WAIT", || {
            let e = lvs.conns();
            e.len() == 1 && e[0].state == "TIME_WAIT"
        })
        .await;
        eventually(5, "closed", || lvs.engine().connections() == 0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_closes_without_sending_closes_the_real_server_side() {
    let lvs = Lvs::new(config(RelayMethod::Auto));
    let (rs, from_client) = one_shot_rs(|mut s| async move { read_all(&mut s).await }).await;
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs, 1);

    let mut c = TcpStream::connect(vip).await.unwrap();
    c.shutdown().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), from_client)
        .await
        .expect("the real server saw the FIN")
        .unwrap();
    assert!(got.is_empty());
    assert!(read_all(&mut c).await.is_empty());
    eventually(5, "closed", || lvs.engine().connections() == 0).await;
    let e = lvs.conns();
    assert!(e.len() == 1 && e[0].state == "TIME_WAIT", "{e:?}");
}

/// The client sends at once; whether its bytes were read before the engine
/// connected depends on timing, and the answer is a reset either way (it
/// may even come before the client sees its connection up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_resets_the_client() {
    let lvs = Lvs::new(config(RelayMethod::Auto));
    // A port nobody listens on.
    let rs = free_addr("127.0.0.1");
    let vip = free_addr("127.0.0.1");
    let key = tcp(vip);
    lvs.add_service(key, "rr");
    lvs.add_rs(key, rs, 1);

    let is_reset = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionReset;
    let outcome: std::io::Result<usize> = async {
        let mut c = TcpStream::connect(vip).await?;
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
        let mut b = [0u8; 16];
        tokio::time::timeout(Duration::from_secs(10), c.read(&mut b))
            .await
            .expect("the engine answers within 10 s")
    }
    .await;
    assert!(matches!(&outcome, Err(e) if is_reset(e)), "{outcome:?}");
    eventually(5, "closed", || lvs.engine().connections() == 0).await;
    let e = lvs.conns();
    assert!(e.len() == 1 && e[0].state == "CLOSE", "{e:?}");
}
