//! What the services reached by plain HTTP (webhooks, Alertmanager, SciLog, Signal)
//! share: their client, and how an answer is judged.

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

/// An HTTP client whose every request is bounded by `timeout`. Every service reached by
/// plain HTTP shares one connection pool and one parsed copy of the system's CA store
/// (each client of its own held a copy: about 0.6 MB each in an idle agent), and each
/// keeps its own timeout.
#[derive(Clone)]
pub struct Client {
    shared: reqwest::Client,
    timeout: Duration,
}

impl Client {
    pub fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.shared.get(url).timeout(self.timeout)
    }

    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.shared.post(url).timeout(self.timeout)
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> reqwest::RequestBuilder {
        self.shared.request(method, url).timeout(self.timeout)
    }
}

/// The client of the services reached by plain HTTP, made at the first use; `timeout`
/// bounds each of the caller's requests.
pub fn client(timeout: Duration) -> Result<Client, String> {
    static SHARED: std::sync::OnceLock<Result<reqwest::Client, String>> =
        std::sync::OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        reqwest::Client::builder()
            .pool_idle_timeout(POOL_IDLE)
            // A redirect would turn the POST into a GET that answers 200: a message lost
            // as delivered, and headers sent to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("protowatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))
    });
    Ok(Client {
        shared: shared.clone()?,
        timeout,
    })
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
