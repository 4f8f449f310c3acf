//! The status page and the rate history endpoint against a real director:
//! traffic counted on a real server, the estimators ticked, the table's
//! rates recorded into the history as rvsd's ticker does.

use axum::body::Body;
use axum::http::{header, Request as HttpRequest, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use rvs_api::history::{HistoryConfig, HistoryView, RateHistory};
use rvs_api::{router, ApiOptions, Control};
use rvs_core::{Af, DestConfig, DestStore, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::{Request, Response};
use rvs_director::{Director, DirectorOptions};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

/// The daemon's side as rvsd has it: the director and the history the
/// ticker fills.
struct Daemon {
    d: Mutex<Director>,
    h: Mutex<RateHistory>,
}

impl Control for Daemon {
    fn call(&self, req: Request) -> Response {
        self.d.lock().unwrap().apply(&req, 0)
    }
    fn engine(&self) -> String {
        "proxy".into()
    }
    fn history(&self, from: Option<u64>) -> Option<HistoryView> {
        Some(self.h.lock().unwrap().view(from))
    }
}

/// A daemon that keeps no history (the trait's default).
struct NoHistory(Mutex<Director>);

impl Control for NoHistory {
    fn call(&self, req: Request) -> Response {
        self.0.lock().unwrap().apply(&req, 0)
    }
    fn engine(&self) -> String {
        "none".into()
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn vip() -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip("10.0.0.1"),
        port: 80,
    }
}

/// `TCP 10.0.0.1:80` with real servers 10.0.0.2:8080 and 10.0.0.3:8080.
fn director() -> Director {
    let mut d = Director::new(DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    });
    let mut reqs = vec![Request::AddService {
        key: vip(),
        config: ServiceConfig::defaults(Af::Inet),
    }];
    for a in ["10.0.0.2", "10.0.0.3"] {
        reqs.push(Request::AddDest {
            service: vip(),
            dest: DestConfig {
                fwd: FwdMethod::Masq,
                ..DestConfig::new(ip(a), 8080)
            },
        });
    }
    for r in &reqs {
        assert_eq!(d.apply(r, 0), Response::Ok, "{r:?}");
    }
    d
}

/// Counts 2 s of traffic on 10.0.0.2 (`conns` connections, 100 packets
/// and 10 kB each way per connection), ticks the estimators and records
/// the sample at `at_ms`, as rvsd's ticker does.
fn tick(daemon: &Daemon, conns: u64, at_ms: u64) {
    let mut d = daemon.d.lock().unwrap();
    let id = d
        .table()
        .service(&vip())
        .unwrap()
        .dests
        .iter()
        .find(|x| x.config.addr == ip("10.0.0.2"))
        .unwrap()
        .id;
    let t = d.table_mut();
    for _ in 0..conns {
        t.count_conn(id);
        t.count_in_n(id, 100, 10_000);
        t.count_out_n(id, 100, 10_000);
    }
    d.tick_estimators();
    daemon.h.lock().unwrap().record_table(at_ms, d.table());
}

fn daemon() -> Arc<Daemon> {
    Arc::new(Daemon {
        d: Mutex::new(director()),
        h: Mutex::new(RateHistory::new(HistoryConfig::default())),
    })
}

fn app(ctl: Arc<dyn Control>, reads_need_token: bool) -> Router {
    router(
        ctl,
        ApiOptions {
            token: Some("tok".into()),
            reads_need_token,
        },
    )
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let resp = app
        .clone()
        .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap(), headers)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test]
async fn the_page_is_served_self_contained_at_root_and_status() {
    let app = app(daemon(), false);
    for path in ["/", "/status"] {
        let (status, body, headers) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
        assert!(body.starts_with("<!doctype html>"), "{path}");
        assert!(body.contains("/api/v1/services") && body.contains("/api/v1/history"));
        // Nothing is loaded from elsewhere: the only URL is the SVG namespace.
        let urls = body.matches("http://").count() + body.matches("https://").count();
        let svg_ns = body.matches("http://www.w3.org/2000/svg").count();
        assert_eq!(urls, svg_ns, "the page names an external URL");
        assert!(!body.contains(" src="), "the page loads a resource");
    }
}

#[tokio::test]
async fn the_page_is_served_even_when_reads_need_the_token() {
    let app = app(daemon(), true);
    assert_eq!(get(&app, "/").await.0, StatusCode::OK);
    let (status, body, _) = get(&app, "/api/v1/history").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn history_follows_the_estimators() {
    let daemon = daemon();
    let app = app(daemon.clone(), false);
    let (status, body, _) = get(&app, "/api/v1/history").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(
        (v["first"].as_u64(), v["next"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(v["period_ms"], 2000);
    assert_eq!(v["capacity"], 300);

    for (i, conns) in [40u64, 40, 0].into_iter().enumerate() {
        tick(&daemon, conns, 1_000 + 2_000 * i as u64);
    }
    let v = json(&get(&app, "/api/v1/history").await.1);
    assert_eq!(v["times"], serde_json::json!([1000, 3000, 5000]));
    assert_eq!(v["next"], 3);
    let svc = &v["services"][0];
    assert_eq!(svc["name"], "TCP 10.0.0.1:80");
    // The real servers in the order the listing has them.
    let names = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let listing = json(&get(&app, "/api/v1/services").await.1);
    let rs = names(&svc["real_servers"]);
    assert_eq!(rs, names(&listing[0]["real_servers"]));
    let busy_at = rs.iter().position(|n| n == "10.0.0.2:8080").unwrap();
    let cps = |s: &Value| -> Vec<u64> {
        s["connections_per_second"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap())
            .collect()
    };
    // The kernel's EWMA over 20 conn/s: it climbs, then decays when idle.
    let busy = cps(&svc["real_servers"][busy_at]);
    assert!(
        busy[0] > 0 && busy[1] > busy[0] && busy[2] < busy[1],
        "{busy:?}"
    );
    assert_eq!(cps(svc), busy, "the service total is its one busy server");
    assert_eq!(cps(&svc["real_servers"][1 - busy_at]), [0, 0, 0]);
    assert!(svc["bytes_out_per_second"][1].as_u64().unwrap() > 0);
    assert!(svc["packets_in_per_second"][1].as_u64().unwrap() > 0);

    // Only what is new.
    let v = json(&get(&app, "/api/v1/history?from=2").await.1);
    assert_eq!(v["times"], serde_json::json!([5000]));
    assert_eq!(
        v["services"][0]["connections_per_second"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let v = json(&get(&app, "/api/v1/history?from=3").await.1);
    assert_eq!(v["times"], serde_json::json!([]));
    assert_eq!(v["services"][0]["name"], "TCP 10.0.0.1:80");

    // A real server added later has no samples before it existed.
    daemon.d.lock().unwrap().apply(
        &Request::AddDest {
            service: vip(),
            dest: DestConfig::new(ip("10.0.0.9"), 8080),
        },
        0,
    );
    tick(&daemon, 0, 7_000);
    let v = json(&get(&app, "/api/v1/history?from=2").await.1);
    let new = v["services"][0]["real_servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "10.0.0.9:8080")
        .expect("the new real server has a series");
    assert_eq!(new["connections_per_second"], serde_json::json!([null, 0]));
}

#[tokio::test]
async fn history_errors() {
    let app_ = app(daemon(), false);
    for bad in ["x", "-1", "1.5"] {
        let (status, body, _) = get(&app_, &format!("/api/v1/history?from={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(json(&body)["error"], format!("invalid from `{bad}'"));
    }
    let none = app(Arc::new(NoHistory(Mutex::new(director()))), false);
    let (status, body, _) = get(&none, "/api/v1/history").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json(&body)["error"], "this daemon keeps no rate history");
}
