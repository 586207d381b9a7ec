//! The console: a web page on the API's listener showing the instrument's alerts, the
//! files followed, the outbox, the routes and a chart, live.
//!
//! It is one HTML page, a stylesheet and a script, compiled into the binary (no build
//! step, nothing fetched from elsewhere: the instrument network may have no Internet).
//! The page holds no data; it asks the JSON endpoints of `data` with the session
//! cookie that signing in here sets (see `session`), and refetches what it shows when
//! `live` says that the store changed. What it does to alerts goes through the same
//! endpoints and functions as every other surface (`api::alerts`, `alerts::dismiss`,
//! `alerts::snooze`, the store's `revive`).
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
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiState;
use super::session;

/// Where the page's assets are served: public, like the page.
pub const ASSETS: &str = "/console/";

const PAGE: &str = include_str!("assets/console.html");
const SIGN_IN: &str = include_str!("assets/signin.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// No inline script or style, nothing from elsewhere, no framing (clickjacking), no
/// form posted elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
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

/// The sign-in form, with what went wrong (escaped) if something did.
fn sign_in_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    html(status, SIGN_IN.replace("{{error}}", &error))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A new session for this browser, and off to the page without the token in the
/// address bar (303: the browser follows with a GET and keeps no history entry of the
/// address with the token).
fn signed_in(st: &ApiState) -> Response {
    let config = st.config();
    let Some(token) = st.tokens.in_force(config.api.token.as_ref()) else {
        return sign_in_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Some("the agent has no API token"),
        );
    };
    let now = chrono::Utc::now().timestamp();
    let cookie = session::set_cookie(&st.cookie, &session::issue(token.expose(), now));
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    secure(resp, "text/plain; charset=utf-8")
}

/// Whether `given` is the token in force; a wrong one is in the audit log.
fn token_ok(st: &ApiState, given: &str, endpoint: &'static str) -> bool {
    let ok = st
        .tokens
        .check(st.config().api.token.as_ref(), given)
        .is_some();
    if !ok {
        tracing::warn!(target: "protowatch::audit", endpoint,
            "console sign-in refused: wrong token");
    }
    ok
}

#[derive(serde::Deserialize)]
pub struct PageQuery {
    token: Option<String>,
}

/// `GET /`: the console for a browser with a session; `?token=` signs in; without
/// either, the sign-in form.
async fn page(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(given) = q.token {
        return if token_ok(&st, &given, "/?token") {
            signed_in(&st)
        } else {
            sign_in_page(
                StatusCode::UNAUTHORIZED,
                Some("That token is not this agent's API token."),
            )
        };
    }
    if st.session_ok(&st.config(), &headers) {
        html(StatusCode::OK, PAGE.to_string())
    } else {
        sign_in_page(StatusCode::OK, None)
    }
}

/// `POST /signin` with the form's `token`.
async fn sign_in(State(st): State<Arc<ApiState>>, body: Bytes) -> Response {
    let given = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    if !given.is_empty() && token_ok(&st, &given, "/signin") {
        signed_in(&st)
    } else {
        sign_in_page(
            StatusCode::UNAUTHORIZED,
            Some("That token is not this agent's API token."),
        )
    }
}

/// `POST /signout`: forgets the session in this browser.
async fn sign_out(State(st): State<Arc<ApiState>>) -> Response {
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(&st.cookie)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    secure(resp, "text/plain; charset=utf-8")
}

async fn script() -> Response {
    secure(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    secure(STYLE.into_response(), "text/css; charset=utf-8")
}
