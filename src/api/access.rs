//! Who may use the API, checked before any handler runs.
//!
//! The listener is on loopback, but loopback is not private on a shared PC: every user
//! logged in can connect, and so can every web page open in a browser there. So:
//! - **a token on every call** (`Authorization: Bearer …`, 401 with
//!   `WWW-Authenticate` without it), except `GET /healthz` and `GET /metrics`, which hold
//!   no secrets and change nothing, the console's page, sign-in and assets, which
//!   hold no data, and `GET /api/hello`, where the agent proves it knows the token
//!   (see `hello`);
//! - or, from the console, its **session** (the `X-Protowatch-Session` header, see
//!   `session`) in place of the token; then a request that changes something must also
//!   carry the browser's `Origin`, and it must be this API's own. There is no cookie:
//!   cookies are not port-scoped, and any server on 127.0.0.1 would receive it;
//! - **`Host`** must name this API: an IP address, `localhost`, this PC's name or one of
//!   `api.hosts`. A page on an attacker's domain that re-points its name at 127.0.0.1
//!   (DNS rebinding) still sends its own name, and is refused;
//! - **`Origin`**, when a browser sends one with a request that changes something, must
//!   be this API's own: another page cannot make the browser act (CSRF), even if it
//!   guessed the token;
//! - **bodies** are limited by their declared length before they are read;
//! - every request that changes something leaves an **audit line**: method, endpoint,
//!   peer, status and which token (`configured` or `generated`), never the token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, ApiState};

/// Bodies of `POST /api/notify` may carry files: 10 MB in all, base64 (4/3) in JSON.
pub const MAX_NOTIFY_BODY: usize = 15 * 1024 * 1024;
/// Where the console's assets are served: public, like the page. Access owns the list
/// of public paths, so the prefix is declared here and the console serves under it.
pub const ASSETS: &str = "/console/";

/// Any other body: an alert is at most a few dozen KiB.
pub const MAX_BODY: usize = 256 * 1024;

fn is_public(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET => {
            matches!(path, "/healthz" | "/metrics" | "/" | "/api/hello") || path.starts_with(ASSETS)
        }
        Method::POST => matches!(path, "/signin" | "/signout"),
        _ => false,
    }
}

/// How a caller proved that it may make a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// Nothing to prove: a public endpoint.
    Public,
    /// `Authorization: Bearer` with the token in force.
    Token,
    /// The console's session header (with a same-origin `Origin` for a change).
    Session,
}

impl Caller {
    /// Who acted, as an alert's `dismissed_by`/`snoozed_by` records it: the console's
    /// buttons apart from scripts and clients of the API.
    pub fn actor(self) -> &'static str {
        match self {
            Caller::Session => "console",
            Caller::Public | Caller::Token => "api",
        }
    }
}

fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn body_limit(path: &str) -> usize {
    if path == "/api/notify" {
        MAX_NOTIFY_BODY
    } else {
        MAX_BODY
    }
}

/// The host part of a `Host` or `Origin` authority, lower-cased, without the port.
fn host_of(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    a.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(a.clone(), |(h, _)| h.to_string())
}

/// Whether `Host` names this API and not someone else's domain.
pub fn host_allowed(host: &str, configured: &[String]) -> bool {
    let h = host_of(host);
    if h.parse::<std::net::IpAddr>().is_ok() || h == "localhost" || h.ends_with(".localhost") {
        return true;
    }
    let own = hostname::get()
        .ok()
        .and_then(|n| n.into_string().ok())
        .map(|n| n.to_ascii_lowercase());
    own.as_deref() == Some(h.as_str()) || configured.iter().any(|c| c.eq_ignore_ascii_case(&h))
}

/// Whether a browser's `Origin` is this API's own address (`http://` + `Host`).
pub fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some(host) = host else { return false };
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let authority = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => return false,
    };
    url.scheme() == "http" && authority.eq_ignore_ascii_case(host.trim())
}

/// What the checks say of a request from a client without a session (the fuzz target
/// drives this).
pub fn verdict(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    hosts: &[String],
    token_ok: impl FnOnce(&str) -> bool,
) -> Result<(), ApiError> {
    verdict_with_session(method, path, headers, hosts, token_ok, |_| false).map(|_| ())
}

/// What the checks say of a request, apart from the handler; `session_ok` says whether
/// the request carries a valid console session.
pub fn verdict_with_session(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    hosts: &[String],
    token_ok: impl FnOnce(&str) -> bool,
    session_ok: impl FnOnce(&HeaderMap) -> bool,
) -> Result<Caller, ApiError> {
    // A request without a readable `Host` is no browser's: it would skip the check
    // that stops DNS rebinding, so it is refused like a wrong one.
    let Some(host) = headers.get(header::HOST).map(|v| v.to_str()) else {
        return Err(ApiError::bad_request("Host: missing"));
    };
    let Ok(h) = host else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "Host: not a readable name",
        ));
    };
    if !host_allowed(h, hosts) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Host: {h:?} is not this API's name (add it to api.hosts if it is)"),
        ));
    }
    if changes_something(method)
        && let Some(origin) = headers.get(header::ORIGIN)
    {
        let origin = origin.to_str().unwrap_or("");
        if !same_origin(origin, Some(h)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("Origin: {origin:?} may not change anything here"),
            ));
        }
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(path);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body: larger than {limit} bytes"),
        ));
    }
    if is_public(method, path) {
        return Ok(Caller::Public);
    }
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer token (see `protowatch api-token`)",
        )
    };
    if let Some(given) = headers.get(header::AUTHORIZATION) {
        // A bearer header decides alone: a wrong token is not rescued by a session.
        let given = given
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        return if !given.is_empty() && token_ok(given) {
            Ok(Caller::Token)
        } else {
            Err(refused())
        };
    }
    if !session_ok(headers) {
        return Err(refused());
    }
    // Same-origin was checked above when `Origin` is there; here it must be there.
    if changes_something(method) && !headers.contains_key(header::ORIGIN) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "a change made with the console's session needs the browser's Origin header",
        ));
    }
    Ok(Caller::Session)
}

/// The middleware: the checks above, then the handler, then the audit line.
pub async fn check(State(st): State<Arc<ApiState>>, mut req: Request, next: Next) -> Response {
    let config = st.config();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_default();
    let mut who = None;
    let checked = verdict_with_session(
        &method,
        &path,
        req.headers(),
        &config.api.hosts,
        |given| {
            who = st.tokens.check(config.api.token.as_ref(), given);
            who.is_some()
        },
        |headers| st.session_ok(&config, headers),
    );
    let caller = match checked {
        Ok(c) => c,
        Err(e) => {
            if (e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN)
                && st.refusals.admit()
            {
                tracing::warn!(target: "protowatch::audit", %method, endpoint = %path, %peer,
                status = e.status.as_u16(), "API request refused: {}", e.message);
            }
            let mut resp = e.into_response();
            if resp.status() == StatusCode::UNAUTHORIZED {
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"protowatch\""),
                );
            }
            return resp;
        }
    };
    req.extensions_mut().insert(caller);
    let resp = next.run(req).await;
    if changes_something(&method) {
        let token = match caller {
            Caller::Session => "session",
            _ => who.map_or("none", |o| o.label()),
        };
        tracing::info!(target: "protowatch::audit", %method, endpoint = %path, %peer,
            %token, status = resp.status().as_u16(), "API request");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_name_this_api() {
        for ok in [
            "127.0.0.1:8767",
            "localhost:8767",
            "[::1]:8767",
            "LOCALHOST",
            "10.1.2.3",
        ] {
            assert!(host_allowed(ok, &[]), "{ok}");
        }
        for bad in [
            "evil.example.org:8767",
            "attacker.test",
            "127.0.0.1.nip.io:8767",
        ] {
            assert!(!host_allowed(bad, &[]), "{bad}");
        }
        assert!(host_allowed(
            "in5-pc.psi.ch:8767",
            &["in5-pc.psi.ch".into()]
        ));
    }

    #[test]
    fn origins_must_be_the_apis_own() {
        assert!(same_origin("http://127.0.0.1:8767", Some("127.0.0.1:8767")));
        assert!(!same_origin(
            "http://evil.example.org",
            Some("127.0.0.1:8767")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:8767")));
        assert!(!same_origin(
            "https://127.0.0.1:8767",
            Some("127.0.0.1:8767")
        ));
        assert!(!same_origin("http://127.0.0.1:8767", None));
    }
}
