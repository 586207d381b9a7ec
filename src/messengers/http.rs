//! What the services reached by plain HTTP (webhooks, Alertmanager) share: how their
//! client is built, and how an answer is judged.

use std::time::Duration;

use reqwest::header::RETRY_AFTER;

use super::SendError;

/// How long a connection is kept for the next request. Shorter than the shortest idle
/// timeout of common servers (Apache's and Node's 5 s): a pooled connection that the
/// server closes while idle is found closed when it is next taken and replaced, but one
/// closed *while* a request is written on it fails that request. Messages come minutes
/// or hours apart, so a longer pool would save nothing and keep that race open
/// (docs/ARCHITECTURE.md, "Connections that outlive a request").
pub const POOL_IDLE: Duration = Duration::from_secs(4);

/// An HTTP client whose every request is bounded by `timeout`.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_idle_timeout(POOL_IDLE)
        // A redirect would turn the POST into a GET that answers 200: a message lost as
        // delivered, and headers sent to another host.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("protowatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// 2xx is done; 408, 429 and 5xx may pass later (429 after `Retry-After`); any other
/// answer will be the same next time.
pub async fn classify(what: &str, response: reqwest::Response) -> Result<(), SendError> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = response.text().await.unwrap_or_default();
    let excerpt: String = text.trim().chars().take(200).collect();
    let message = format!("{what}: HTTP {status}: {excerpt}");
    let mut e = if status.is_server_error()
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
    {
        SendError::transient(message)
    } else {
        SendError::permanent(message)
    };
    e.retry_after = retry_after;
    Err(e)
}
