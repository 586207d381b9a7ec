//! The console: a web page on the API's listener showing the instrument's alerts, the
//! files followed, the outbox, the routes and a chart, live.
//!
//! It is one HTML page, a stylesheet and a script, compiled into the binary (no build
//! step, nothing fetched from elsewhere: the instrument network may have no Internet).
//! The page holds no data; it asks the JSON endpoints of `data` with the session that
//! signing in here gives (see `session`: a header, never a cookie), and refetches what
//! it shows when `live` says that the store changed. What it does to alerts goes through the same
//! endpoints and functions as every other surface (`api::alerts`, `alerts::dismiss`,
//! `alerts::snooze`, `api::oncall` for acknowledging and silences, the outbox's
//! `queue::revive`).
//!
//! Who may use what: `GET /`, the sign-in and the assets are public (they hold no
//! data); everything under `/api/` needs the token or the session (`access`). Every
//! page answer forbids framing, inline script and referrers to other sites.

mod chart;
mod data;
pub mod live;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiState;
pub use super::access::ASSETS;
use super::session;

const PAGE: &str = include_str!("assets/console.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// No inline script or style, nothing from elsewhere, no framing (clickjacking), no
/// form posted elsewhere. Images also from `blob:`: the charts are fetched with the
/// session header and shown from memory.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<Arc<ApiState>> {
    Router::new()
        .route("/", get(page))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/api/console/alerts", get(data::alerts))
        .route("/api/console/history", get(data::history))
        .route("/api/console/files", get(data::files))
        .route("/api/console/outbox", get(data::outbox))
        .route("/api/console/routes", get(data::routes))
        .route("/api/console/status", get(data::status))
        .route("/api/console/silences", get(data::silences))
        .route("/api/console/chart.svg", get(chart::svg))
        .route("/api/console/events", get(live::events))
        .route("/api/alerts/{id}/snooze", post(data::snooze))
        .route("/api/outbox/{id}/retry", post(data::retry))
}

/// The headers of every page and asset.
fn secure(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Not `no-referrer`: under it a browser sends `Origin: null` with the page's own
    // form posts (sign-in, sign-out), which `access` rightly refuses. `same-origin`
    // gives no other site a referrer either (and the alerts' links are `noreferrer`).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn html(status: StatusCode, body: String) -> Response {
    secure((status, body).into_response(), "text/html; charset=utf-8")
}

/// Whether `given` is the token in force; a wrong one is in the audit log, with the
/// peer it came from.
fn token_ok(st: &ApiState, given: &str, peer: &str) -> bool {
    let ok = st
        .tokens
        .check(st.config().api.token.as_ref(), given)
        .is_some();
    if !ok {
        tracing::warn!(target: "protowatch::audit", endpoint = "/signin", %peer,
            "console sign-in refused: wrong token");
    }
    ok
}

/// `GET /`: the page, the same for everyone (it holds no data). Its script signs in
/// (with the form, or `?token=` once) and keeps the session in `sessionStorage`.
async fn page() -> Response {
    html(StatusCode::OK, PAGE.to_string())
}

/// `POST /signin {"token"}` → `{"session"}`, or 401.
async fn sign_in(
    State(st): State<Arc<ApiState>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    body: Bytes,
) -> Response {
    let peer = peer.map(|p| p.0.0.to_string()).unwrap_or_default();
    let given = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["token"].as_str().map(|t| t.trim().to_string()))
        .unwrap_or_default();
    if given.is_empty() || !token_ok(&st, &given, &peer) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "That token is not this agent's API token."}),
        );
    }
    let config = st.config();
    let Some(token) = st.tokens.in_force(config.api.token.as_ref()) else {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "the agent has no API token"}),
        );
    };
    let me = st.clone();
    let session = st
        .db(move |s| s.with_conn(|c| Ok(me.sessions.issue(c, token.expose()))))
        .await
        .ok()
        .flatten();
    match session {
        Some(id) => {
            tracing::info!(target: "protowatch::audit", endpoint = "/signin", %peer, "console signed in");
            json(StatusCode::OK, serde_json::json!({"session": id}))
        }
        None => json(
            StatusCode::SERVICE_UNAVAILABLE,
            serde_json::json!({"error": "the agent cannot make a session now"}),
        ),
    }
}

/// `POST /signout`: ends the session the request carries, at once.
async fn sign_out(State(st): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    if let Some(id) = session::from_headers(&headers).map(str::to_string) {
        let me = st.clone();
        let _ = st
            .db(move |s| s.with_conn(|c| Ok(me.sessions.end(c, &id))))
            .await;
    }
    secure(
        StatusCode::NO_CONTENT.into_response(),
        "text/plain; charset=utf-8",
    )
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    secure((status, v.to_string()).into_response(), "application/json")
}

async fn script() -> Response {
    secure(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    secure(STYLE.into_response(), "text/css; charset=utf-8")
}
