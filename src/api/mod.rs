//! The local HTTP API (axum): OnTakt's alert endpoints, BEC's notify, health and
//! metrics, for scripts and dashboards on the instrument PC.
//!
//! It runs inside the agent on its own connection to the state database, so everything
//! it accepts is durable before it answers: an alert is a row, a notification is an
//! inbox request that the pipeline routes, throttles and queues like a protocol event.
//! Who may call it is `access` (a token on every call, `Host` and `Origin` checks) with
//! the token from `token`; what a caller can make it hold is bounded here (connections,
//! header and idle timeouts) and in the handlers (attachments, sizes, alert count).
//! Every error is JSON `{"error": "…"}` naming what was wrong.

pub(crate) mod access;
mod alerts;
pub mod console;
pub mod hello;
pub mod oncall;
mod refusals;
pub mod session;
mod shed;
mod status;
pub mod token;

// The body readers need no server, only the JSON: public for the fuzz targets (see
// `fuzz/`), not as an API of the crate.
#[doc(hidden)]
pub use access::verdict;
#[doc(hidden)]
pub use alerts::{NotifyBody, new_alert, notify_body};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::outbox::Outbox;
use crate::store::{Store, StoreError};

pub use access::{MAX_BODY, MAX_NOTIFY_BODY};

/// Connections served at once; more wait in the kernel's queue, holding no descriptor
/// of the agent's (the watcher needs its own).
pub const MAX_CONNECTIONS: usize = 256;

/// A client that has not sent a whole request head within this time is dropped: a
/// request trickled in, or a kept-alive connection left idle.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A request whose handler takes longer than this is answered 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The file in the state folder where the running agent writes the address its API
/// listens on, so that commands find their own agent (and not another one).
pub const ADDR_FILE: &str = "api.addr";

/// The config the API answers from; the agent swaps it when it applies an edited file.
pub type SharedConfig = Arc<std::sync::RwLock<Arc<Config>>>;

pub use crate::event::Wake;

/// What the API shows of the running agent: the health of the watcher and of BEC's
/// link, and BEC's routes as last received. The agent makes each and hands it to the
/// part that writes it and here (docs/ARCHITECTURE.md, "Shutdown and shared state").
#[derive(Clone)]
pub struct Shown {
    pub watch: crate::watcher::health::WatchHealth,
    pub bec: crate::bec::BecHealth,
    pub bec_routes: crate::bec::RoutesRx,
}

pub struct ApiState {
    store: Mutex<Store>,
    shared_config: SharedConfig,
    outbox: Outbox,
    tokens: token::Tokens,
    wake: Wake,
    /// The console's sessions (see `session`).
    sessions: session::Sessions,
    live: Arc<console::live::Live>,
    /// Refusals' audit lines, limited (see `refusals`).
    refusals: Arc<refusals::Refusals>,
    /// Room for request bodies, in KiB (see [`BODIES_IN_FLIGHT`]).
    bodies: Arc<tokio::sync::Semaphore>,
    shown: Shown,
}

impl ApiState {
    /// The config in force now.
    fn config(&self) -> Arc<Config> {
        self.shared_config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether `headers` carry a console session made under the token in force.
    fn session_ok(&self, config: &Config, headers: &axum::http::HeaderMap) -> bool {
        let Some(id) = session::from_headers(headers) else {
            return false;
        };
        self.tokens
            .in_force(config.api.token.as_ref())
            .is_some_and(|t| self.sessions.check(id, t.expose()))
    }

    /// Whether a request with `headers`, accepted earlier, would be accepted now: the
    /// check of a long-lived stream against a rotated token or an expired session.
    fn still_allowed(&self, headers: &axum::http::HeaderMap) -> bool {
        let config = self.config();
        access::verdict_with_session(
            &axum::http::Method::GET,
            "/api/console/events",
            headers,
            &config.api.hosts,
            |given| {
                self.tokens
                    .check(config.api.token.as_ref(), given)
                    .is_some()
            },
            |h| self.session_ok(&config, h),
        )
        .is_ok()
    }

    /// Runs a store call off the async threads: SQLite may wait for the write lock.
    async fn db<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = me.store.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut store)
        })
        .await
        .map_err(|e| ApiError::internal(format!("store task failed: {e}")))?
        .map_err(|e| ApiError::unavailable(e.to_string()))
    }
}

/// An error answer: a status and `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(r.status(), r.body_text())
    }
}

/// The running server.
pub struct Api {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    /// A child of the agent's stop signal: cancelled with it, or alone by [`Api::stop`].
    stop: CancellationToken,
}

impl Api {
    /// Binds `api.listen` and serves until `stop` is cancelled or [`Api::stop`]. The
    /// bound address is written to the state folder for the commands of this
    /// installation, and without a configured token the generated one is made there.
    pub async fn start(
        shared_config: SharedConfig,
        outbox: Outbox,
        wake: Wake,
        shown: Shown,
        stop: CancellationToken,
    ) -> Result<Api, String> {
        let config = shared_config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let generated = token::at_start(&config).map_err(|e| e.to_string())?;
        let store = Store::open(&config.state_dir).map_err(|e| e.to_string())?;
        // An address left by an agent that was killed names a port anyone may take now:
        // gone before anything else, so that no command is sent there meanwhile.
        let _ = std::fs::remove_file(config.state_dir.join(ADDR_FILE));
        let (listeners, addr) = bind(config.api.listen).await?;
        write_addr(&config.state_dir, addr);
        let stop = stop.child_token();
        let stopped = stop.clone();
        let sessions = session::Sessions::load(&store).map_err(|e| e.to_string())?;
        let state = Arc::new(ApiState {
            store: Mutex::new(store),
            shared_config,
            outbox,
            tokens: token::Tokens::new(&config.state_dir, generated),
            wake,
            sessions,
            live: Arc::new(console::live::Live::new(
                config.state_dir.clone(),
                stopped.clone(),
            )),
            refusals: Arc::default(),
            bodies: Arc::new(tokio::sync::Semaphore::new(BODIES_IN_FLIGHT as usize)),
            shown,
        });
        let app = router(state);
        let also: Vec<String> = listeners
            .iter()
            .skip(1)
            .filter_map(|l| l.local_addr().ok().map(|a| a.to_string()))
            .collect();
        let task = tokio::spawn(serve(listeners, app, stopped));
        tracing::info!(%addr, also = ?also, "HTTP API listening");
        Ok(Api { addr, task, stop })
    }

    pub async fn stop(self, state_dir: &Path) {
        self.stop.cancel();
        let _ = self.task.await;
        let _ = std::fs::remove_file(state_dir.join(ADDR_FILE));
    }
}

/// Binds `listen`; for `127.0.0.1` also `[::1]` on the same port, since a browser's
/// `localhost` may be either: a port of ours left free on `::1` is one another local
/// user could take to receive what was meant for us. A machine without IPv6 loopback
/// does without it; `::1` held by someone else fails the start. The first address is
/// the one commands use.
async fn bind(listen: SocketAddr) -> Result<(Vec<tokio::net::TcpListener>, SocketAddr), String> {
    let refused = |a: SocketAddr, e: std::io::Error| format!("cannot listen on {a}: {e}");
    // A port chosen by the system for 127.0.0.1 may be taken on ::1: choose again.
    for _ in 0..20 {
        let v4 = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| refused(listen, e))?;
        let addr = v4.local_addr().map_err(|e| refused(listen, e))?;
        if listen.ip() != std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) {
            return Ok((vec![v4], addr));
        }
        let v6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()));
        match tokio::net::TcpListener::bind(v6).await {
            Ok(l) => return Ok((vec![v4, l], addr)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && listen.port() == 0 => continue,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(format!(
                    "{}; another program holds the same port on IPv6, where a browser's `localhost` may reach it instead of this agent",
                    refused(v6, e)
                ));
            }
            Err(e) => {
                // No IPv6 loopback here (EAFNOSUPPORT, EADDRNOTAVAIL): nobody can take
                // it either.
                tracing::info!(error = %e, "no IPv6 loopback: listening on 127.0.0.1 only");
                return Ok((vec![v4], addr));
            }
        }
    }
    Err(format!(
        "cannot listen on {listen}: no port free on both 127.0.0.1 and ::1"
    ))
}

/// The accept loop: at most [`MAX_CONNECTIONS`] at once, each with the header timeout.
/// A failed accept (out of descriptors) waits a moment instead of spinning, and says so
/// once a minute at most.
async fn serve(listeners: Vec<tokio::net::TcpListener>, app: Router, stopped: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let conn_states = shed::Conns::default();
    let mut conns = tokio::task::JoinSet::new();
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        // No slot free: the connection that has waited longest without a request gives
        // way (see `shed`), once a second at most while none has waited long enough.
        if slots.available_permits() == 0 && !conn_states.shed_one() {
            tokio::select! {
                _ = stopped.cancelled() => break,
                _ = tokio::time::sleep(shed::SHED_AFTER / 4) => {}
                p = slots.clone().acquire_owned() => drop(p),
            }
            continue;
        }
        let permit = tokio::select! {
            _ = stopped.cancelled() => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accept_any =
            futures_util::future::select_all(listeners.iter().map(|l| Box::pin(l.accept())));
        let accepted = tokio::select! {
            _ = stopped.cancelled() => break,
            (a, _, _) = accept_any => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "the HTTP API cannot accept a connection");
                    last_warning = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        let local = stream.local_addr().ok();
        let app = app.clone();
        let stop = stopped.clone();
        let state = conn_states.open();
        conns.spawn(async move {
            let _permit = permit;
            let closing = state.clone();
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    if let Some(local) = local {
                        req.extensions_mut().insert(hello::LocalAddr(local));
                    }
                    req.extensions_mut().insert(state.clone());
                    let app = app.clone();
                    let state = state.clone();
                    async move {
                        let resp =
                            tower::ServiceExt::oneshot(app, req.map(axum::body::Body::new)).await;
                        // Answered: waiting for the next request of a kept-alive
                        // connection.
                        state.waiting();
                        Ok::<_, std::convert::Infallible>(resp.unwrap_or_else(|e| match e {}))
                    }
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                // Shed for a caller that sends its request (see `shed`).
                _ = closing.close.notified() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
    // In-flight requests end (graceful shutdown above); nothing new is taken.
    while conns.join_next().await.is_some() {}
}

/// Written whole or not at all (a temporary file renamed over it): a command that reads
/// it while the agent starts never finds it empty or half written.
fn write_addr(state_dir: &Path, addr: SocketAddr) {
    let tmp = state_dir.join(format!("{ADDR_FILE}.{}", std::process::id()));
    let written = std::fs::write(&tmp, addr.to_string())
        .and_then(|()| std::fs::rename(&tmp, state_dir.join(ADDR_FILE)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(error = %e, "cannot write the API's address to the state folder");
    }
}

/// The address the agent of `state_dir` serves its API on, if it runs. A file that does
/// not hold an address yet (written by a release that wrote it in place) is read again
/// for a moment.
pub fn running_addr(state_dir: &Path) -> Option<SocketAddr> {
    let path = state_dir.join(ADDR_FILE);
    for _ in 0..10 {
        let text = std::fs::read_to_string(&path).ok()?;
        if let Ok(addr) = text.trim().parse() {
            return Some(addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/alerts", get(alerts::list).put(alerts::put))
        .route("/api/alerts/clear", post(alerts::clear))
        .route("/api/alerts/{id}", delete(alerts::dismiss))
        .route("/api/alerts/{id}/action/{action}", post(alerts::action))
        .route("/api/alerts/{id}/ack", post(oncall::ack))
        .route("/api/silences", get(oncall::list).post(oncall::add))
        .route("/api/silences/{id}", delete(oncall::expire))
        .route(
            "/api/notify",
            post(alerts::notify).layer(DefaultBodyLimit::max(MAX_NOTIFY_BODY)),
        )
        .route("/api/notify/{id}", get(alerts::notify_status))
        .route("/api/channels", get(status::channels))
        .route("/api/routes", get(status::routes))
        .route("/api/hello", get(hello::hello))
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(status::metrics))
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), read_body))
        .layer(middleware::from_fn_with_state(state.clone(), access::check))
        .layer(middleware::from_fn(timeout))
        .with_state(state)
}

/// Request bodies held at once, in KiB: four of the largest `/api/notify` bodies. Each
/// is parsed and its files decoded while it is held, so this bounds what callers with
/// the token can make the agent hold (24 notifies of 13 MB at once took 978 MB).
pub const BODIES_IN_FLIGHT: u32 = 4 * (MAX_NOTIFY_BODY as u32 / 1024);

/// How long a request body may take to arrive, whole. A body trickled in a byte at a
/// time held a connection for as long as its sender liked.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the body (within [`BODY_TIMEOUT`] and the route's limit) before the handler
/// runs; until then the connection counts as waiting, and may be closed for another
/// (see `shed`). Runs after the access check: nobody makes the agent hold a body
/// before they showed the token, except for the few public routes' small ones.
///
/// The bodies being read and handled at once are bounded as a whole
/// ([`BODIES_IN_FLIGHT`]): each takes its declared length (or its route's limit) from
/// the budget until its answer is made, and waits for room within the body's time.
async fn read_body(
    axum::extract::State(st): axum::extract::State<Arc<ApiState>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let limit = access::body_limit(req.uri().path());
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(limit)
        .min(limit);
    let kib = u32::try_from(declared.div_ceil(1024)).unwrap_or(u32::MAX);
    let room = tokio::time::timeout(BODY_TIMEOUT, st.bodies.clone().acquire_many_owned(kib)).await;
    let Ok(Ok(_room)) = room else {
        return ApiError::unavailable("too many large requests at once; try again").into_response();
    };
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await;
    let bytes = match read {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body: larger than {limit} bytes, or broken off"),
            )
            .into_response();
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                format!("body: not whole within {} s", BODY_TIMEOUT.as_secs()),
            )
            .into_response();
        }
    };
    if let Some(conn) = parts.extensions.get::<Arc<shed::Conn>>() {
        conn.busy();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// A handler stuck on the database answers 503 instead of holding its connection.
async fn timeout(req: axum::extract::Request, next: middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::unavailable("the request took too long").into_response(),
    }
}
