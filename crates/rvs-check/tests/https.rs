//! The HTTPS checker against a real TLS server on 127.0.0.1 (rustls, with a
//! certificate made by the `openssl` command for `rvs.test` and 127.0.0.1).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
use rvs_check::{
    run_check, CheckResult, Checker, HttpCheck, HttpsCheck, Reason, TlsOptions, Verify,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const T: Duration = Duration::from_secs(3);

fn make_cert() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("rvs-check-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=rvs.test",
            "-addext",
            "subjectAltName=DNS:rvs.test,IP:127.0.0.1",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    (key, cert)
}

/// A TLS server answering every request with 200 "secure"; records the SNI
/// of each handshake.
async fn tls_server(
    cert: &PathBuf,
    key: &PathBuf,
    sni: Arc<Mutex<Vec<Option<String>>>>,
) -> SocketAddr {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let sni = sni.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                sni.lock()
                    .unwrap()
                    .push(tls.get_ref().1.server_name().map(str::to_string));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn https_with_and_without_verification_and_sni() {
    let (key, cert) = make_cert();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let addr = tls_server(&cert, &key, sni.clone()).await;
    let mut http = HttpCheck::new(addr, "/");
    http.receive = Some("secure".into());

    // keepalived SSL_GET default: no verification, no name: no SNI.
    let c = HttpsCheck::new(http.clone(), TlsOptions::default()).unwrap();
    assert_eq!(c.describe(), format!("SSL_GET {addr}/"));
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    // sni_name: sent as SNI, and any name passes without verification.
    let opts = |name: Option<&str>, verify: Verify| TlsOptions {
        server_name: name.map(str::to_string),
        enable_sni: true,
        verify,
    };
    let c = HttpsCheck::new(http.clone(), opts(Some("other.test"), Verify::Off)).unwrap();
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    assert_eq!(
        *sni.lock().unwrap(),
        vec![None, Some("other.test".to_string())]
    );

    // Verification against the certificate as root.
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let roots = Arc::new(roots);
    for name in [Some("rvs.test"), None] {
        let c = HttpsCheck::new(http.clone(), opts(name, Verify::Roots(roots.clone()))).unwrap();
        assert_eq!(run_check(&c, T).await, CheckResult::pass(), "{name:?}");
    }
    let c = HttpsCheck::new(
        http.clone(),
        opts(Some("other.test"), Verify::Roots(roots.clone())),
    )
    .unwrap();
    let r = run_check(&c, T).await;
    assert!(
        matches!(&r.reason, Reason::Error(e) if e.starts_with("TLS")),
        "{r:?}"
    );
    let c = HttpsCheck::new(
        http.clone(),
        opts(
            Some("rvs.test"),
            Verify::Roots(Arc::new(RootCertStore::empty())),
        ),
    )
    .unwrap();
    assert!(!run_check(&c, T).await.ok);
    // The HTTP judgement still applies over TLS.
    let mut wrong = http.clone();
    wrong.receive = Some("plain".into());
    let c = HttpsCheck::new(wrong, TlsOptions::default()).unwrap();
    assert!(matches!(run_check(&c, T).await.reason, Reason::Mismatch(_)));
    // SNI off: nothing sent even with a name.
    let before = sni.lock().unwrap().len();
    let mut o = opts(Some("rvs.test"), Verify::Roots(roots));
    o.enable_sni = false;
    let c = HttpsCheck::new(http.clone(), o).unwrap();
    assert_eq!(run_check(&c, T).await, CheckResult::pass());
    assert_eq!(sni.lock().unwrap()[before..].last().unwrap(), &None);
    assert!(HttpsCheck::new(http, opts(Some("bad name!"), Verify::Off)).is_err());
    let _ = std::fs::remove_dir_all(key.parent().unwrap());
}
