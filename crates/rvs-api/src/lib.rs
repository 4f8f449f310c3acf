//! rvsd's HTTP API and Prometheus metrics.
//!
//! This crate owns the HTTP face of the daemon: `GET /metrics` (the
//! Prometheus text exposition of every service's and real server's
//! `--stats` counters, `--rate` estimates, connection counts and weights,
//! read at scrape time), and a JSON API under `/api/v1` that reads the table
//! and the connection table and changes real servers' weights (set, drain),
//! the live status page at `/` (one self-contained HTML file, `status.html`)
//! and the rate history its charts draw ([`history`], `/api/v1/history`).
//! It knows nothing of the daemon's internals: every read and write goes
//! through the [`Control`] trait as an `rvs-ctl` [`Request`], so a change
//! made here is validated, persisted and handed to the engine exactly like
//! one from `rvsadm`, and a request that fails validation changes nothing.
//! Writes need a bearer token; reads are open only when the listener is on
//! loopback, unless the operator opened them ([`ApiOptions`]).

pub mod history;
mod metrics;
pub mod view;

pub use metrics::{render as render_metrics, ProxyInfo, CONTENT_TYPE as METRICS_CONTENT_TYPE};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rvs_core::{Af, Errno, Protocol, ServiceKey};
use rvs_ctl::{Request, Response, ServiceEntry};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use view::{ConnPage, ConnView, RealServerView, ServiceView};

/// What the API needs from the daemon.
pub trait Control: Send + Sync + 'static {
    /// Applies one request as the control socket would (validation,
    /// persistence, engine sync) and returns the answer. Called on a
    /// blocking thread, never on the async runtime.
    fn call(&self, req: Request) -> Response;
    /// The data path's name (`proxy`, `none`), for `rvs_engine_info`.
    fn engine(&self) -> String;
    /// The proxy engine's relay and its gauges; `None` for other engines.
    fn proxy(&self) -> Option<ProxyInfo> {
        None
    }
    /// The rate history from sample `from` on ([`history::RateHistory::view`]),
    /// or `None` if the daemon keeps none (`/api/v1/history` then answers 404).
    fn history(&self, from: Option<u64>) -> Option<history::HistoryView> {
        let _ = from;
        None
    }
}

/// Who may do what.
#[derive(Debug, Clone, Default)]
pub struct ApiOptions {
    /// The bearer token writes need; without one, writes are refused (403).
    pub token: Option<String>,
    /// Whether reads (the listings and `/metrics`) need the token too.
    pub reads_need_token: bool,
}

impl ApiOptions {
    /// The policy for a listener bound to `addr`: reads are open on a
    /// loopback address, and elsewhere only with `public_reads`.
    pub fn for_listener(addr: SocketAddr, token: Option<String>, public_reads: bool) -> Self {
        ApiOptions {
            token,
            reads_need_token: !addr.ip().is_loopback() && !public_reads,
        }
    }
}

/// Most connections one page returns, and the default page size.
pub const MAX_PAGE: usize = 10_000;
pub const DEFAULT_PAGE: usize = 100;

#[derive(Clone)]
struct AppState {
    ctl: Arc<dyn Control>,
    opts: Arc<ApiOptions>,
}

/// The API's routes over `ctl`.
pub fn router(ctl: Arc<dyn Control>, opts: ApiOptions) -> Router {
    const SVC: &str = "/api/v1/services/{proto}/{addr}/{port}";
    const FWM: &str = "/api/v1/services/fwmark/{mark}";
    const RS: &str = "/real-servers/{raddr}/{rport}";
    Router::new()
        .route("/", get(status_page))
        .route("/status", get(status_page))
        .route("/metrics", get(metrics))
        .route("/api/v1/history", get(history))
        .route("/api/v1/health", get(health))
        .route("/api/v1/status", get(daemon_status))
        .route("/api/v1/services", get(services))
        .route(SVC, get(service))
        .route(FWM, get(service))
        .route(&format!("{SVC}{RS}"), get(real_server))
        .route(&format!("{FWM}{RS}"), get(real_server))
        .route(&format!("{SVC}{RS}/weight"), put(set_weight))
        .route(&format!("{FWM}{RS}/weight"), put(set_weight))
        .route(&format!("{SVC}{RS}/drain"), post(drain))
        .route(&format!("{FWM}{RS}/drain"), post(drain))
        .route("/api/v1/connections", get(connections))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this endpoint",
            )
        })
        .with_state(AppState {
            ctl,
            opts: Arc::new(opts),
        })
}

/// Serves `app` on `listener` on a current-thread tokio runtime; returns
/// only if the runtime cannot start or the listener fails.
pub fn serve_blocking(listener: std::net::TcpListener, app: Router) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(l, app).await
    })
}

/// An error answer: `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"rvsd\""),
            );
        }
        r
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// Compares in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

impl AppState {
    fn authorize(&self, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
        if access == Access::Read && !self.opts.reads_need_token {
            return Ok(());
        }
        let Some(token) = &self.opts.token else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "this API is read-only: rvsd was started without --api-token-file",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            });
        match given {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <token>)",
            )),
            Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong bearer token",
            )),
        }
    }

    async fn call(&self, req: Request) -> Result<Response, ApiError> {
        let ctl = self.ctl.clone();
        tokio::task::spawn_blocking(move || ctl.call(req))
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }

    async fn service(&self, key: ServiceKey) -> Result<ServiceEntry, ApiError> {
        match self.call(Request::GetService { key }).await? {
            Response::Service(s) => Ok(s),
            other => Err(failure(other, Op::GetService)),
        }
    }
}

/// The control operation an errno came back from (ipvsadm words the same
/// errno differently per operation).
#[derive(Clone, Copy)]
enum Op {
    GetService,
    EditDest,
    Other,
}

/// libipvs's `ipvs_strerror` for the operations the API performs.
fn errno_message(op: Op, e: Errno) -> &'static str {
    match (op, e) {
        (Op::GetService, Errno::Srch) => "No such service",
        (Op::EditDest, Errno::Srch) => "Service not defined",
        (Op::EditDest, Errno::NoEnt) => "No such destination",
        (_, Errno::Perm) => "Permission denied (you must be root)",
        (_, Errno::Inval) => {
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        }
        (_, Errno::NoMem) => "Memory allocation problem",
        (_, e) => e.strerror(),
    }
}

fn errno_status(e: Errno) -> StatusCode {
    match e {
        Errno::Srch | Errno::NoEnt => StatusCode::NOT_FOUND,
        Errno::Exist => StatusCode::CONFLICT,
        Errno::Perm => StatusCode::FORBIDDEN,
        Errno::Io | Errno::NoMem => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    }
}

/// A control answer that is not the one asked for, as an error.
fn failure(r: Response, op: Op) -> ApiError {
    match r {
        Response::Err(e) => ApiError::new(errno_status(e), errno_message(op, e)),
        Response::BadRequest(m) => ApiError::bad(m),
        Response::Refused(m) => ApiError::new(StatusCode::CONFLICT, m),
        other => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected answer from rvsd: {other:?}"),
        ),
    }
}

fn parse_addr(s: &str, what: &str) -> Result<IpAddr, ApiError> {
    let t = s.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    t.unwrap_or(s)
        .parse()
        .map_err(|_| ApiError::bad(format!("invalid {what} `{s}'")))
}

fn parse_port(s: &str, what: &str) -> Result<u16, ApiError> {
    s.parse()
        .map_err(|_| ApiError::bad(format!("invalid {what} `{s}'")))
}

/// The service a path names: `{proto}/{addr}/{port}` or `fwmark/{mark}`
/// (`?family=inet6` for an IPv6 mark service).
fn service_key(
    p: &HashMap<String, String>,
    q: &HashMap<String, String>,
) -> Result<ServiceKey, ApiError> {
    if let Some(mark) = p.get("mark") {
        let mark: u32 = mark
            .parse()
            .ok()
            .filter(|m| *m != 0)
            .ok_or_else(|| ApiError::bad(format!("invalid fwmark `{mark}'")))?;
        let af = match q.get("family").map(String::as_str) {
            None | Some("inet") => Af::Inet,
            Some("inet6") => Af::Inet6,
            Some(f) => return Err(ApiError::bad(format!("invalid family `{f}'"))),
        };
        return Ok(ServiceKey::Fwmark { mark, af });
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let proto = match get("proto").to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        other => {
            return Err(ApiError::bad(format!(
                "invalid protocol `{other}' (tcp, udp, sctp or fwmark)"
            )))
        }
    };
    Ok(ServiceKey::Addr {
        proto,
        addr: parse_addr(get("addr"), "service address")?,
        port: parse_port(get("port"), "service port")?,
    })
}

fn real_server_id(p: &HashMap<String, String>) -> Result<(IpAddr, u16), ApiError> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    Ok((
        parse_addr(get("raddr"), "real server address")?,
        parse_port(get("rport"), "real server port")?,
    ))
}

/// Path parameters, or axum's rejection (bad percent-encoding ...).
type Params = Result<Path<HashMap<String, String>>, PathRejection>;
/// Query parameters, or axum's rejection.
type QueryMap = Result<Query<HashMap<String, String>>, QueryRejection>;
/// The request body, or axum's rejection (too large ...).
type Body = Result<Bytes, BytesRejection>;

/// axum's own rejections answered as JSON errors like the others.
macro_rules! accept {
    ($e:expr) => {
        $e.map_err(|r| ApiError::new(r.status(), r.body_text()))?
    };
}

async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    let services = match st.call(Request::GetServices).await? {
        Response::Services(s) => Some(s),
        _ => None,
    };
    let ctl = st.ctl.clone();
    let (engine, proxy) = tokio::task::spawn_blocking(move || (ctl.engine(), ctl.proxy()))
        .await
        .unwrap_or_default();
    let mut body = metrics::render(&engine, proxy.as_ref(), services.as_deref());
    if let Ok(h) = health_report(&st).await {
        metrics::render_health(&mut body, &h);
    }
    if let Ok(Response::Status(d)) = st.call(Request::GetStatus).await {
        metrics::render_daemon(&mut body, &d);
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response())
}

/// The status page: one self-contained HTML file (inline CSS and script,
/// no external resources) that reads `/api/v1/services` and
/// `/api/v1/history` every two seconds. It holds no data itself, so it is
/// served to anyone; its reads follow the read rules like any client's.
pub const STATUS_PAGE: &str = include_str!("status.html");

async fn status_page() -> HttpResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; \
                     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; \
                     frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                ),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

async fn history(State(st): State<AppState>, headers: HeaderMap, q: QueryMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    let Query(q) = accept!(q);
    let from = match q.get("from") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad(format!("invalid from `{v}'")))?,
        ),
    };
    let ctl = st.ctl.clone();
    match tokio::task::spawn_blocking(move || ctl.history(from))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    {
        Some(h) => Ok(Json(h).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this daemon keeps no rate history",
        )),
    }
}

/// The health report, or an empty one if the daemon has none.
async fn health_report(st: &AppState) -> Result<rvs_ctl::HealthReport, ApiError> {
    Ok(match st.call(Request::GetHealth).await? {
        Response::Health(h) => h,
        _ => rvs_ctl::HealthReport::default(),
    })
}

/// A service's view with its real servers' health.
fn service_view(s: &ServiceEntry, health: &rvs_ctl::HealthReport) -> ServiceView {
    let mut v = ServiceView::from(s);
    view::attach_health(&mut v, &s.key, health);
    v
}

async fn services(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    match st.call(Request::GetServices).await? {
        Response::Services(s) => {
            let h = health_report(&st).await?;
            Ok(Json(s.iter().map(|s| service_view(s, &h)).collect::<Vec<_>>()).into_response())
        }
        other => Err(failure(other, Op::Other)),
    }
}

async fn daemon_status(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    match st.call(Request::GetStatus).await? {
        Response::Status(d) => Ok(Json(d).into_response()),
        other => Err(failure(other, Op::Other)),
    }
}

async fn health(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    Ok(Json(health_report(&st).await?).into_response())
}

async fn service(
    State(st): State<AppState>,
    headers: HeaderMap,
    p: Params,
    q: QueryMap,
) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    let (Path(p), Query(q)) = (accept!(p), accept!(q));
    let key = service_key(&p, &q)?;
    let s = st.service(key).await?;
    let h = health_report(&st).await?;
    Ok(Json(service_view(&s, &h)).into_response())
}

fn find_dest(s: &ServiceEntry, addr: IpAddr, port: u16) -> Result<&rvs_ctl::DestEntry, ApiError> {
    s.dests
        .iter()
        .find(|d| d.config.addr == addr && d.config.port == port)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                errno_message(Op::EditDest, Errno::NoEnt),
            )
        })
}

async fn real_server(
    State(st): State<AppState>,
    headers: HeaderMap,
    p: Params,
    q: QueryMap,
) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    let (Path(p), Query(q)) = (accept!(p), accept!(q));
    let key = service_key(&p, &q)?;
    let (addr, port) = real_server_id(&p)?;
    let s = st.service(key).await?;
    Ok(Json(RealServerView::from(find_dest(&s, addr, port)?)).into_response())
}

/// The body of `PUT .../weight`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: i64,
}

async fn set_weight(
    State(st): State<AppState>,
    headers: HeaderMap,
    p: Params,
    q: QueryMap,
    body: Body,
) -> ApiResult {
    st.authorize(&headers, Access::Write)?;
    let (Path(p), Query(q)) = (accept!(p), accept!(q));
    let key = service_key(&p, &q)?;
    let rs = real_server_id(&p)?;
    let body = accept!(body);
    let body: WeightBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("invalid JSON body (want {{\"weight\": N}}): {e}")))?;
    // rvsadm's range for -w (Debian's ipvsadm: 0..INT_MAX).
    let weight = i32::try_from(body.weight)
        .ok()
        .filter(|w| *w >= 0)
        .ok_or_else(|| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "illegal weight specified")
        })?;
    edit_weight(&st, key, rs, weight).await
}

async fn drain(
    State(st): State<AppState>,
    headers: HeaderMap,
    p: Params,
    q: QueryMap,
) -> ApiResult {
    st.authorize(&headers, Access::Write)?;
    let (Path(p), Query(q)) = (accept!(p), accept!(q));
    let key = service_key(&p, &q)?;
    let rs = real_server_id(&p)?;
    edit_weight(&st, key, rs, 0).await
}

/// `EditDest` with only the weight changed; answers with the real server
/// as it now is.
async fn edit_weight(
    st: &AppState,
    key: ServiceKey,
    (addr, port): (IpAddr, u16),
    weight: i32,
) -> ApiResult {
    let s = st.service(key).await?;
    let mut dest = find_dest(&s, addr, port)?.config.clone();
    dest.weight = weight;
    match st
        .call(Request::EditDest {
            service: key,
            dest: dest.clone(),
        })
        .await?
    {
        Response::Ok => {}
        other => return Err(failure(other, Op::EditDest)),
    }
    let s = st.service(key).await?;
    Ok(Json(RealServerView::from(find_dest(&s, addr, port)?)).into_response())
}

fn page_param(q: &HashMap<String, String>, name: &str, default: usize) -> Result<usize, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::bad(format!("invalid {name} `{v}'"))),
    }
}

async fn connections(State(st): State<AppState>, headers: HeaderMap, q: QueryMap) -> ApiResult {
    st.authorize(&headers, Access::Read)?;
    let Query(q) = accept!(q);
    let offset = page_param(&q, "offset", 0)?;
    let limit = page_param(&q, "limit", DEFAULT_PAGE)?;
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad(format!(
            "invalid limit {limit} (1..={MAX_PAGE})"
        )));
    }
    match st.call(Request::GetConns).await? {
        Response::Conns(c) => Ok(Json(ConnPage {
            total: c.len(),
            offset,
            limit,
            connections: c
                .iter()
                .skip(offset)
                .take(limit)
                .map(ConnView::from)
                .collect(),
        })
        .into_response()),
        other => Err(failure(other, Op::Other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn loopback_listeners_open_reads() {
        let lo: SocketAddr = "127.0.0.1:9100".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:9100".parse().unwrap();
        assert!(!ApiOptions::for_listener(lo, None, false).reads_need_token);
        assert!(ApiOptions::for_listener(any, None, false).reads_need_token);
        assert!(!ApiOptions::for_listener(any, None, true).reads_need_token);
        let lo6: SocketAddr = "[::1]:9100".parse().unwrap();
        assert!(!ApiOptions::for_listener(lo6, None, false).reads_need_token);
    }
}
