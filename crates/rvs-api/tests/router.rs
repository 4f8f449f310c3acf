//! The API's routes against a real director (real schedulers and
//! connection table), driven with `tower::ServiceExt::oneshot`.

use axum::body::Body;
use axum::http::{header, Method, Request as HttpRequest, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use rvs_api::{router, ApiOptions, Control};
use rvs_conn::{Packet, ProxyEvent};
use rvs_core::service::SVC_F_PERSISTENT;
use rvs_core::{Af, DestConfig, DestStore, FwdMethod, Protocol, ServiceConfig, ServiceKey};
use rvs_ctl::{Request, Response};
use rvs_director::{Director, DirectorOptions, Rules};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-token";

struct TestControl {
    d: Mutex<Director>,
}

impl Control for TestControl {
    fn call(&self, req: Request) -> Response {
        self.d.lock().unwrap().apply(&req, 0)
    }
    fn engine(&self) -> String {
        "proxy".into()
    }
}

impl TestControl {
    fn rules(&self) -> Rules {
        self.d.lock().unwrap().rules()
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

fn fwm() -> ServiceKey {
    ServiceKey::Fwmark {
        mark: 7,
        af: Af::Inet,
    }
}

fn masq(addr: &str, port: u16, weight: i32) -> DestConfig {
    DestConfig {
        fwd: FwdMethod::Masq,
        weight,
        ..DestConfig::new(ip(addr), port)
    }
}

/// `TCP 10.0.0.1:80 wlc` with 10.0.0.2:8080 (weight 3, thresholds 100/10)
/// and 10.0.0.3:8080 (weight 1); `FWM 7 rr` persistent 300 s with
/// 10.0.0.4:0; traffic counted on 10.0.0.2.
fn control() -> Arc<TestControl> {
    let mut d = Director::new(DirectorOptions {
        schedulers: Box::new(rvs_sched::new_scheduler),
        interfaces: Box::new(|_| None),
        local_broadcast: Box::new(|_| false),
        sysctls: Default::default(),
        conn_seed: 1,
    });
    let mut rs1 = masq("10.0.0.2", 8080, 3);
    rs1.u_threshold = 100;
    rs1.l_threshold = 10;
    let reqs = [
        Request::AddService {
            key: vip(),
            config: ServiceConfig::defaults(Af::Inet),
        },
        Request::AddDest {
            service: vip(),
            dest: rs1,
        },
        Request::AddDest {
            service: vip(),
            dest: masq("10.0.0.3", 8080, 1),
        },
        Request::AddService {
            key: fwm(),
            config: ServiceConfig {
                scheduler: "rr".into(),
                flags: SVC_F_PERSISTENT,
                timeout: 300,
                ..ServiceConfig::defaults(Af::Inet)
            },
        },
        Request::AddDest {
            service: fwm(),
            dest: DestConfig::new(ip("10.0.0.4"), 0),
        },
    ];
    for r in &reqs {
        assert_eq!(d.apply(r, 0), Response::Ok, "{r:?}");
    }
    let id = d
        .table()
        .service(&vip())
        .unwrap()
        .dests
        .iter()
        .find(|x| x.config.port == 8080 && x.config.addr == ip("10.0.0.2"))
        .unwrap()
        .id;
    let t = d.table_mut();
    for _ in 0..5 {
        t.count_conn(id);
    }
    t.count_in_n(id, 40, 4000);
    t.count_out_n(id, 30, 90000);
    Arc::new(TestControl { d: Mutex::new(d) })
}

/// Opens `n` established connections to the TCP service.
fn connect(ctl: &TestControl, n: u16) {
    let mut d = ctl.d.lock().unwrap();
    for i in 0..n {
        let (table, conns) = d.tables_mut();
        let (svc, totals) = table.service_and_totals_mut(&vip()).unwrap();
        let pkt = Packet::new(
            Protocol::Tcp,
            ip("192.0.2.9"),
            40000 + i,
            ip("10.0.0.1"),
            80,
        );
        let id = conns.schedule(svc, &pkt, 0, totals).expect("scheduled");
        conns.proxy_event(id, ProxyEvent::Established, 0, table);
    }
}

fn app(ctl: &Arc<TestControl>, reads_need_token: bool) -> Router {
    router(
        ctl.clone(),
        ApiOptions {
            token: Some(TOKEN.into()),
            reads_need_token,
        },
    )
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, String, axum::http::HeaderMap) {
    let mut b = HttpRequest::builder().method(method).uri(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if !body.is_empty() {
        b = b.header(header::CONTENT_TYPE, "application/json");
    }
    let resp = app
        .clone()
        .oneshot(b.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap(), headers)
}

async fn get(app: &Router, uri: &str) -> (StatusCode, String) {
    let (s, b, _) = send(app, Method::GET, uri, None, "").await;
    (s, b)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn error_of(body: &str) -> String {
    json(body)["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error field: {body}"))
        .to_string()
}

const RS1: &str = r#"service="TCP 10.0.0.1:80",protocol="TCP",address="10.0.0.1",port="80",real_server="10.0.0.2:8080",real_address="10.0.0.2",real_port="8080""#;
const SVC: &str = r#"service="TCP 10.0.0.1:80",protocol="TCP",address="10.0.0.1",port="80""#;

/// Checks the exposition's grammar: every sample belongs to a family
/// declared once with HELP then TYPE, before its samples, with a valid
/// name, and a value that parses.
fn check_exposition(text: &str) {
    let mut declared: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    let valid = |n: &str| {
        !n.is_empty()
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !n.starts_with(|c: char| c.is_ascii_digit())
    };
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(valid(name), "bad name in {line}");
            assert!(!declared.iter().any(|d| d == name), "{name} declared twice");
            let next = lines.get(i + 1).copied().unwrap_or("");
            assert!(
                next.starts_with(&format!("# TYPE {name} ")),
                "HELP without TYPE: {line}"
            );
            declared.push(name.to_string());
            current = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap(), it.next().unwrap());
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert_eq!(Some(name), current.as_deref());
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter without _total: {name}");
            }
        } else {
            let name_end = line.find(['{', ' ']).unwrap();
            let name = &line[..name_end];
            assert_eq!(
                Some(name),
                current.as_deref(),
                "sample outside its family: {line}"
            );
            let value = line.rsplit(' ').next().unwrap();
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad value: {line}"));
            if line[name_end..].starts_with('{') {
                assert!(line.contains("} "), "unterminated labels: {line}");
            }
        }
    }
}

#[tokio::test]
async fn metrics_expose_counters_rates_weights_per_service_and_real_server() {
    let ctl = control();
    let app = app(&ctl, false);
    let (status, body, headers) = send(&app, Method::GET, "/metrics", None, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    check_exposition(&body);
    for want in [
        "rvs_up 1".to_string(),
        "rvs_engine_info{engine=\"proxy\"} 1".into(),
        "rvs_services 2".into(),
        format!("rvs_service_connections_total{{{SVC}}} 5"),
        format!("rvs_service_packets_total{{{SVC},direction=\"in\"}} 40"),
        format!("rvs_service_packets_total{{{SVC},direction=\"out\"}} 30"),
        format!("rvs_service_bytes_total{{{SVC},direction=\"in\"}} 4000"),
        format!("rvs_service_bytes_total{{{SVC},direction=\"out\"}} 90000"),
        format!("rvs_service_real_servers{{{SVC}}} 2"),
        format!("rvs_real_server_connections_total{{{RS1}}} 5"),
        format!("rvs_real_server_packets_total{{{RS1},direction=\"in\"}} 40"),
        format!("rvs_real_server_bytes_total{{{RS1},direction=\"out\"}} 90000"),
        format!("rvs_real_server_weight{{{RS1}}} 3"),
        format!("rvs_real_server_active_connections{{{RS1}}} 0"),
        format!("rvs_real_server_connection_rate{{{RS1}}} 0"),
        "rvs_real_server_weight{service=\"FWM 7\",protocol=\"FWM\",fwmark=\"7\",family=\"inet\",real_server=\"10.0.0.4:0\",real_address=\"10.0.0.4\",real_port=\"0\"} 1".into(),
    ] {
        assert!(body.lines().any(|l| l == want), "missing `{want}` in\n{body}");
    }
    // The estimator's rates show up once it has ticked over the traffic.
    {
        let mut d = ctl.d.lock().unwrap();
        d.tick_estimators();
        let id = d.table().service(&vip()).unwrap().dests[1].id;
        let t = d.table_mut();
        t.count_in_n(id, 2000, 200_000);
        d.tick_estimators();
    }
    let (_, body) = get(&app, "/metrics").await;
    let rate = body
        .lines()
        .find(|l| {
            l.starts_with(&format!(
                "rvs_service_packet_rate{{{SVC},direction=\"in\"}}"
            ))
        })
        .unwrap();
    let v: u64 = rate.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(v > 0, "{rate}");
    // Active connections come from the connection table.
    connect(&ctl, 3);
    let (_, body) = get(&app, "/metrics").await;
    assert!(
        body.lines()
            .any(|l| l == format!("rvs_service_active_connections{{{SVC}}} 3")),
        "{body}"
    );
}

#[tokio::test]
async fn services_listing_and_lookup() {
    let ctl = control();
    let app = app(&ctl, false);
    let (status, body) = get(&app, "/api/v1/services").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["TCP 10.0.0.1:80", "FWM 7"]);
    let (status, body) = get(&app, "/api/v1/services/tcp/10.0.0.1/80").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let s = json(&body);
    assert_eq!(s["scheduler"], "wlc");
    assert_eq!(s["stats"]["connections"], 5);
    assert_eq!(s["stats"]["bytes_out"], 90000);
    let rs = s["real_servers"].as_array().unwrap();
    assert_eq!(rs.len(), 2);
    let rs1 = rs.iter().find(|r| r["name"] == "10.0.0.2:8080").unwrap();
    assert_eq!(rs1["forward"], "Masq");
    assert_eq!(rs1["weight"], 3);
    assert_eq!(rs1["drained"], false);
    assert_eq!(rs1["stats"]["packets_in"], 40);
    let (status, body) = get(&app, "/api/v1/services/fwmark/7").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let f = json(&body);
    assert_eq!(f["persistent"], true);
    assert_eq!(f["persistence_timeout"], 300);
    assert_eq!(f["real_servers"][0]["forward"], "Route");
    let (status, body) = get(
        &app,
        "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.3/8080",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["weight"], 1);

    for (uri, status, msg) in [
        (
            "/api/v1/services/udp/10.0.0.1/80",
            StatusCode::NOT_FOUND,
            "No such service",
        ),
        (
            "/api/v1/services/fwmark/8",
            StatusCode::NOT_FOUND,
            "No such service",
        ),
        (
            "/api/v1/services/fwmark/7?family=inet6",
            StatusCode::NOT_FOUND,
            "No such service",
        ),
        (
            "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.9/1",
            StatusCode::NOT_FOUND,
            "No such destination",
        ),
        (
            "/api/v1/services/icmp/10.0.0.1/80",
            StatusCode::BAD_REQUEST,
            "invalid protocol `icmp' (tcp, udp, sctp or fwmark)",
        ),
        (
            "/api/v1/services/tcp/10.0.0.300/80",
            StatusCode::BAD_REQUEST,
            "invalid service address `10.0.0.300'",
        ),
        (
            "/api/v1/services/tcp/10.0.0.1/65536",
            StatusCode::BAD_REQUEST,
            "invalid service port `65536'",
        ),
        (
            "/api/v1/services/fwmark/x",
            StatusCode::BAD_REQUEST,
            "invalid fwmark `x'",
        ),
        ("/api/v1/nothing", StatusCode::NOT_FOUND, "no such endpoint"),
    ] {
        let (s, body) = get(&app, uri).await;
        assert_eq!(s, status, "{uri}: {body}");
        assert_eq!(error_of(&body), msg, "{uri}");
    }
}

#[tokio::test]
async fn writes_need_the_bearer_token() {
    let ctl = control();
    let app = app(&ctl, false);
    let before = ctl.rules();
    let uri = "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/8080/weight";
    for token in [None, Some("wrong"), Some("s3cret-token-"), Some("")] {
        let (s, body, h) = send(&app, Method::PUT, uri, token, r#"{"weight": 9}"#).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer realm=\"rvsd\"");
        assert!(error_of(&body).contains("token"), "{body}");
    }
    let (s, body, _) = send(
        &app,
        Method::POST,
        &uri.replace("weight", "drain"),
        Some("nope"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(ctl.rules(), before, "a refused write changed the table");
    // Reads stay open on loopback.
    assert_eq!(get(&app, "/metrics").await.0, StatusCode::OK);

    let (s, body, _) = send(&app, Method::PUT, uri, Some(TOKEN), r#"{"weight": 9}"#).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["weight"], 9);
    let d = ctl.d.lock().unwrap();
    let rs = d
        .table()
        .service(&vip())
        .unwrap()
        .dests
        .iter()
        .find(|x| x.config.addr == ip("10.0.0.2"))
        .unwrap()
        .config
        .clone();
    assert_eq!(rs.weight, 9);
}

#[tokio::test]
async fn reads_need_the_token_when_not_on_loopback() {
    let ctl = control();
    let app = app(&ctl, true);
    for uri in [
        "/metrics",
        "/api/v1/services",
        "/api/v1/connections",
        "/api/v1/services/fwmark/7",
    ] {
        let (s, body, _) = send(&app, Method::GET, uri, None, "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        let (s, _, _) = send(&app, Method::GET, uri, Some("wrong"), "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{uri}");
        let (s, body, _) = send(&app, Method::GET, uri, Some(TOKEN), "").await;
        assert_eq!(s, StatusCode::OK, "{uri}: {body}");
    }
}

#[tokio::test]
async fn without_a_token_file_the_api_is_read_only() {
    let ctl = control();
    let app = router(ctl.clone(), ApiOptions::default());
    let before = ctl.rules();
    let (s, body, _) = send(
        &app,
        Method::POST,
        "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/8080/drain",
        Some("anything"),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert!(error_of(&body).contains("--api-token-file"));
    assert_eq!(ctl.rules(), before);
    assert_eq!(get(&app, "/api/v1/services").await.0, StatusCode::OK);
}

#[tokio::test]
async fn bad_writes_change_nothing() {
    let ctl = control();
    let app = app(&ctl, false);
    let before = ctl.rules();
    let w = "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/8080/weight";
    for (uri, body, status, msg) in [
        (w, "", StatusCode::BAD_REQUEST, "invalid JSON body"),
        (w, "{", StatusCode::BAD_REQUEST, "invalid JSON body"),
        (
            w,
            r#"{"weight": "9"}"#,
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            w,
            r#"{"weight": 1.5}"#,
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            w,
            r#"{"weight": 2, "fwd": "route"}"#,
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            w,
            r#"{"weight": -1}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "illegal weight specified",
        ),
        (
            w,
            r#"{"weight": 2147483648}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "illegal weight specified",
        ),
        (
            "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.9/8080/weight",
            r#"{"weight": 2}"#,
            StatusCode::NOT_FOUND,
            "No such destination",
        ),
        (
            "/api/v1/services/tcp/10.0.0.1/81/real-servers/10.0.0.2/8080/weight",
            r#"{"weight": 2}"#,
            StatusCode::NOT_FOUND,
            "No such service",
        ),
        (
            "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/x/weight",
            r#"{"weight": 2}"#,
            StatusCode::BAD_REQUEST,
            "invalid real server port `x'",
        ),
    ] {
        let (s, resp, _) = send(&app, Method::PUT, uri, Some(TOKEN), body).await;
        assert_eq!(s, status, "{uri} {body}: {resp}");
        assert!(error_of(&resp).starts_with(msg), "{uri} {body}: {resp}");
    }
    let (s, resp, _) = send(
        &app,
        Method::POST,
        "/api/v1/services/fwmark/7/real-servers/10.0.0.9/0/drain",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(
        (s, error_of(&resp).as_str()),
        (StatusCode::NOT_FOUND, "No such destination")
    );
    let (s, resp, _) = send(&app, Method::DELETE, w, Some(TOKEN), "").await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{resp}");
    assert_eq!(ctl.rules(), before, "a malformed request changed the table");
}

#[tokio::test]
async fn drain_sets_weight_zero_and_keeps_the_rest() {
    let ctl = control();
    let app = app(&ctl, false);
    let before = ctl.rules();
    let (s, body, _) = send(
        &app,
        Method::POST,
        "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/8080/drain",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let v = json(&body);
    assert_eq!(
        (v["weight"].as_i64(), v["drained"].as_bool()),
        (Some(0), Some(true))
    );
    assert_eq!(v["upper_threshold"], 100);
    assert_eq!(v["lower_threshold"], 10);
    // Exactly one field of one real server changed.
    let mut want = before.clone();
    for d in &mut want.services[0].dests {
        if d.addr == ip("10.0.0.2") {
            d.weight = 0;
        }
    }
    assert_eq!(ctl.rules(), want);
    // A fwmark service's real server drains through the fwmark form.
    let (s, body, _) = send(
        &app,
        Method::POST,
        "/api/v1/services/fwmark/7/real-servers/10.0.0.4/0/drain",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(json(&body)["forward"], "Route");
    let (_, m) = get(&app, "/metrics").await;
    assert!(
        m.lines()
            .any(|l| l == format!("rvs_real_server_weight{{{RS1}}} 0")),
        "{m}"
    );
}

#[tokio::test]
async fn connections_are_paged() {
    let ctl = control();
    let app = app(&ctl, false);
    let (s, body) = get(&app, "/api/v1/connections").await;
    assert_eq!(s, StatusCode::OK);
    let v = json(&body);
    assert_eq!(
        (v["total"].as_u64(), v["limit"].as_u64()),
        (Some(0), Some(100))
    );
    connect(&ctl, 5);
    let (_, body) = get(&app, "/api/v1/connections").await;
    let all = json(&body);
    assert_eq!(all["total"], 5);
    let all = all["connections"].as_array().unwrap().clone();
    assert_eq!(all.len(), 5);
    assert!(all
        .iter()
        .all(|c| c["state"] == "ESTABLISHED" && c["virtual_server"] == "10.0.0.1:80"));
    let (_, body) = get(&app, "/api/v1/connections?offset=2&limit=2").await;
    let page = json(&body);
    assert_eq!(page["total"], 5);
    assert_eq!(page["connections"].as_array().unwrap()[..], all[2..4]);
    let (_, body) = get(&app, "/api/v1/connections?offset=4&limit=2").await;
    assert_eq!(json(&body)["connections"].as_array().unwrap()[..], all[4..]);
    let (_, body) = get(&app, "/api/v1/connections?offset=9").await;
    assert_eq!(json(&body)["connections"].as_array().unwrap().len(), 0);
    for q in ["limit=0", "limit=10001", "offset=-1", "limit=x"] {
        let (s, body) = get(&app, &format!("/api/v1/connections?{q}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert!(error_of(&body).starts_with("invalid"), "{body}");
    }
}

#[tokio::test]
async fn ipv6_services_are_named_with_or_without_brackets() {
    let ctl = control();
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip("2001:db8::1"),
        port: 53,
    };
    for r in [
        Request::AddService {
            key,
            config: ServiceConfig::defaults(Af::Inet6),
        },
        Request::AddDest {
            service: key,
            dest: masq("2001:db8::2", 5353, 2),
        },
    ] {
        assert_eq!(ctl.call(r), Response::Ok);
    }
    let app = app(&ctl, false);
    for uri in [
        "/api/v1/services/udp/2001:db8::1/53",
        "/api/v1/services/UDP/[2001:db8::1]/53",
    ] {
        let (s, body) = get(&app, uri).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {body}");
        let v = json(&body);
        assert_eq!(v["name"], "UDP [2001:db8::1]:53");
        assert_eq!(v["family"], "inet6");
        assert_eq!(v["real_servers"][0]["name"], "[2001:db8::2]:5353");
    }
    let (s, body, _) = send(
        &app,
        Method::POST,
        "/api/v1/services/udp/2001:db8::1/53/real-servers/[2001:db8::2]/5353/drain",
        Some(TOKEN),
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, m) = get(&app, "/metrics").await;
    assert!(
        m.lines().any(|l| l
            == "rvs_real_server_weight{service=\"UDP [2001:db8::1]:53\",protocol=\"UDP\",address=\"2001:db8::1\",port=\"53\",real_server=\"[2001:db8::2]:5353\",real_address=\"2001:db8::2\",real_port=\"5353\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn axums_own_rejections_are_json_too() {
    let ctl = control();
    let app = app(&ctl, false);
    let before = ctl.rules();
    for uri in [
        "/api/v1/services/tcp/%FF/80",
        "/api/v1/connections?limit=%FF",
    ] {
        let (s, body) = get(&app, uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert!(!error_of(&body).is_empty());
    }
    let huge = format!("{{\"weight\": 1, \"pad\": \"{}\"}}", "x".repeat(3 << 20));
    let (s, body, _) = send(
        &app,
        Method::PUT,
        "/api/v1/services/tcp/10.0.0.1/80/real-servers/10.0.0.2/8080/weight",
        Some(TOKEN),
        &huge,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(!error_of(&body).is_empty());
    assert_eq!(ctl.rules(), before);
}
