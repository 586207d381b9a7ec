//! The local HTTP API (axum): OnTakt's alert endpoints, BEC's notify, health and
//! metrics, for scripts and dashboards on the instrument PC.
//!
//! It runs inside the agent on its own connection to the state database, so everything
//! it accepts is durable before it answers: an alert is a row, a notification is an
//! inbox request that the pipeline routes, throttles and queues like a protocol event.
//! Loopback by default; any other address needs `api.token` (the config refuses it
//! otherwise), and with a token every request must carry it. Every error is JSON
//! `{"error": "…"}` naming what was wrong.

mod alerts;
mod status;

// The body readers need no server, only the JSON: public for the fuzz targets (see
// `fuzz/`), not as an API of the crate.
#[doc(hidden)]
pub use alerts::{NotifyBody, new_alert, notify_body};

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use crate::config::{Config, Secret};
use crate::outbox::Outbox;
use crate::store::{Store, StoreError};

/// Bodies above this are refused with 413: attachments are at most 5 MB, but come as
/// paths, or base64 through `/api/notify`, which has its own limit.
pub const MAX_BODY: usize = 1024 * 1024;

/// The file in the state folder where the running agent writes the address its API
/// listens on, so that commands find their own agent (and not another one).
pub const ADDR_FILE: &str = "api.addr";

/// The config the API answers from; the agent swaps it when it applies an edited file.
pub type SharedConfig = Arc<std::sync::RwLock<Arc<Config>>>;

pub struct ApiState {
    store: Mutex<Store>,
    shared_config: SharedConfig,
    outbox: Outbox,
}

impl ApiState {
    /// The config in force now.
    fn config(&self) -> Arc<Config> {
        self.shared_config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
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
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    /// Binds `api.listen` and serves until [`Api::stop`]. The bound address is written
    /// to the state folder for the commands of this installation.
    pub async fn start(shared_config: SharedConfig, outbox: Outbox) -> Result<Api, String> {
        let config = shared_config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let store = Store::open(&config.state_dir).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(config.api.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.api.listen))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {}: {e}", config.api.listen))?;
        write_addr(&config.state_dir, addr);
        let token = config.api.token.clone();
        let state = Arc::new(ApiState {
            store: Mutex::new(store),
            shared_config,
            outbox,
        });
        let app = router(state, token);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the HTTP API stopped");
            }
        });
        tracing::info!(%addr, "HTTP API listening");
        Ok(Api { addr, task, stop })
    }

    pub async fn stop(self, state_dir: &Path) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let _ = std::fs::remove_file(state_dir.join(ADDR_FILE));
    }
}

fn write_addr(state_dir: &Path, addr: SocketAddr) {
    if let Err(e) = std::fs::write(state_dir.join(ADDR_FILE), addr.to_string()) {
        tracing::warn!(error = %e, "cannot write the API's address to the state folder");
    }
}

/// The address the agent of `state_dir` serves its API on, if it runs.
pub fn running_addr(state_dir: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(state_dir.join(ADDR_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn router(state: Arc<ApiState>, token: Option<Secret>) -> Router {
    Router::new()
        .route("/api/alerts", get(alerts::list).put(alerts::put))
        .route("/api/alerts/clear", post(alerts::clear))
        .route("/api/alerts/{id}", delete(alerts::dismiss))
        .route("/api/alerts/{id}/action/{action}", post(alerts::action))
        .route("/api/notify", post(alerts::notify))
        .route("/api/notify/{id}", get(alerts::notify_status))
        .route("/api/channels", get(status::channels))
        .route("/api/routes", get(status::routes))
        .route("/healthz", get(status::healthz))
        .route("/metrics", get(status::metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(move |req, next| {
            check_request(token.clone(), req, next)
        }))
        .with_state(state)
}

/// The token, compared in constant time, and the body size by its declared length
/// (a chunked body is cut at the same limit by the extractors).
async fn check_request(token: Option<Secret>, req: Request, next: Next) -> Response {
    if let Some(token) = &token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong Authorization: Bearer token",
            )
            .into_response();
        }
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than {MAX_BODY} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Equal-length inputs take the same time whatever their content; a length mismatch
/// says only that the length is wrong.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
