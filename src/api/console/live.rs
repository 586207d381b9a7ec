//! Live updates for the console: `GET /api/console/events`, server-sent events saying
//! "the store changed", after which the page fetches again what it shows.
//!
//! One poller for all open pages looks at SQLite's `PRAGMA data_version` on a
//! connection of its own, which changes whenever another connection commits — the
//! pipeline storing lines, the outbox delivering, the API dismissing. It runs only
//! while at least one page listens: an agent nobody looks at gets no timer wake-ups
//! from the console. The stream tells the browser to reconnect after `retry`
//! milliseconds, so a page comes back by itself after the agent restarts.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::api::{ApiError, ApiState};
use crate::store::Store;

/// How often the poller looks at the store while pages listen: a change reaches the
/// page within this and one fetch.
pub const POLL: Duration = Duration::from_millis(250);

/// A comment line this often keeps proxies and the browser from calling a quiet
/// stream dead.
const KEEP_ALIVE: Duration = Duration::from_secs(25);

/// Pages listening at once; each holds a connection of the listener's
/// [`crate::api::MAX_CONNECTIONS`].
pub const MAX_LISTENERS: usize = 32;

/// What a browser waits before it reconnects, in milliseconds.
const RETRY_MS: u64 = 2000;

pub struct Live {
    state_dir: PathBuf,
    /// A counter of changes seen; each listener has a receiver.
    changes: watch::Sender<u64>,
    running: AtomicBool,
    /// Held while the poller starts, so that two pages do not start two.
    starting: tokio::sync::Mutex<()>,
    listeners: Arc<AtomicUsize>,
    /// Streams per caller (see [`MAX_PER_CALLER`]).
    per_caller: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    /// The poller's own connection, opened when the first page listens.
    conn: Arc<Mutex<Option<Store>>>,
    /// The API stops: streams end, so that the listener's graceful stop is quick.
    stopped: CancellationToken,
}

impl Live {
    pub fn new(state_dir: PathBuf, stopped: CancellationToken) -> Live {
        Live {
            state_dir,
            changes: watch::channel(0).0,
            running: AtomicBool::new(false),
            starting: tokio::sync::Mutex::new(()),
            listeners: Arc::new(AtomicUsize::new(0)),
            per_caller: Arc::default(),
            conn: Arc::new(Mutex::new(None)),
            stopped,
        }
    }

    /// The store's `data_version` on the poller's connection (opened at the first call).
    async fn version(&self) -> Option<i64> {
        let conn = self.conn.clone();
        let dir = self.state_dir.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(Store::open(&dir)?);
            }
            let mut v = 0;
            if let Some(s) = guard.as_ref() {
                s.changed_elsewhere(&mut v)?;
            }
            Ok::<_, crate::store::StoreError>(v)
        })
        .await;
        match read {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the console cannot look at the store");
                None
            }
            Err(_) => None,
        }
    }

    /// Starts the poller unless it runs, and returns once it knows the store's state:
    /// a page fetches what it shows after this, so a commit in between is a change the
    /// poller will see, not its starting point. The poller ends when nobody listens.
    async fn ensure_poller(self: &Arc<Self>) {
        let _starting = self.starting.lock().await;
        if self.running.load(Ordering::SeqCst) {
            return;
        }
        let mut last = self.version().await;
        self.running.store(true, Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if me.changes.receiver_count() == 0 {
                    me.running.store(false, Ordering::SeqCst);
                    // A page that came meanwhile found it running: take it back.
                    if me.changes.receiver_count() == 0 || me.running.swap(true, Ordering::SeqCst) {
                        break;
                    }
                }
                tokio::time::sleep(POLL).await;
                match me.version().await {
                    Some(v) => {
                        if last != Some(v) {
                            me.changes.send_modify(|n| *n = n.wrapping_add(1));
                        }
                        last = Some(v);
                    }
                    None => tokio::time::sleep(Duration::from_secs(5)).await,
                }
            }
        });
    }
}

/// Streams one caller (a console session, or the bearer token) may hold at once: a
/// few tabs, not every slot.
pub const MAX_PER_CALLER: usize = 4;

/// Counts a listener, in all and for its caller, while its stream lives.
struct Listening {
    all: Arc<AtomicUsize>,
    per_caller: Arc<Mutex<std::collections::HashMap<String, usize>>>,
    caller: String,
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.all.fetch_sub(1, Ordering::SeqCst);
        let mut m = self.per_caller.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.caller) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.caller);
            }
        }
    }
}

/// `GET /api/console/events`: `event: change` each time the store changed.
///
/// A stream lives for hours while the page is open, longer than the session it was
/// opened with may be valid: the request's credentials are checked again every
/// [`RECHECK`], and a rotated token or an expired session ends the stream. The browser
/// then reconnects, is refused, and the page asks for the token again instead of
/// showing "live" for data it may no longer read.
pub async fn events(
    State(st): State<Arc<ApiState>>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let live = st.live.clone();
    if live.listeners.fetch_add(1, Ordering::SeqCst) >= MAX_LISTENERS {
        live.listeners.fetch_sub(1, Ordering::SeqCst);
        return Err(ApiError::unavailable(format!(
            "{MAX_LISTENERS} consoles are open; close one"
        )));
    }
    // The caller: its session, or the bearer token (by digest: nothing secret is kept).
    let caller = crate::api::session::from_headers(&headers)
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    crate::api::token::hex(
                        ring::digest::digest(&ring::digest::SHA256, v.as_bytes()).as_ref(),
                    )
                })
        })
        .unwrap_or_default();
    {
        let mut m = live.per_caller.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(caller.clone()).or_default();
        if *n >= MAX_PER_CALLER {
            drop(m);
            live.listeners.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::unavailable(format!(
                "{MAX_PER_CALLER} live streams are open with these credentials; close one"
            )));
        }
        *n += 1;
    }
    let guard = Listening {
        all: live.listeners.clone(),
        per_caller: live.per_caller.clone(),
        caller,
    };
    let rx = live.changes.subscribe();
    live.ensure_poller().await;
    let allowed = move || st.still_allowed(&headers);
    let stream = stream(rx, live.stopped.clone(), KEEP_ALIVE, allowed, guard);
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// How often an open stream checks that its caller may still read.
const RECHECK: Duration = Duration::from_secs(5);

/// The text of a stream: `hello`, then `change` for each change, a comment after
/// `keep_alive` without one, and the end when the API stops or `allowed` says no.
/// `hold` lives as long as the stream (it counts the listener).
fn stream<H: Send + 'static>(
    rx: watch::Receiver<u64>,
    stopped: CancellationToken,
    keep_alive: Duration,
    allowed: impl Fn() -> bool + Send + 'static,
    hold: H,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let first = format!(
        "retry: {RETRY_MS}\nevent: hello\ndata: {}\n\n",
        *rx.borrow()
    );
    let quiet_since = tokio::time::Instant::now();
    futures_util::stream::unfold(
        (Some(first), rx, stopped, quiet_since, allowed, hold),
        move |(pending, mut rx, stopped, mut quiet_since, allowed, hold)| async move {
            if let Some(text) = pending {
                return Some((
                    Ok::<_, Infallible>(Bytes::from(text)),
                    (None, rx, stopped, quiet_since, allowed, hold),
                ));
            }
            loop {
                if stopped.is_cancelled() || !allowed() {
                    return None;
                }
                let comment_at = quiet_since + keep_alive;
                let wake = comment_at.min(tokio::time::Instant::now() + RECHECK);
                // Biased: a change that is there is sent before a comment that is due.
                let text = tokio::select! {
                    biased;
                    _ = stopped.cancelled() => return None,
                    changed = rx.changed() => match changed {
                        Ok(()) => format!("event: change\ndata: {}\n\n", *rx.borrow_and_update()),
                        Err(_) => return None,
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        if tokio::time::Instant::now() < comment_at {
                            continue;
                        }
                        ": still here\n\n".to_string()
                    }
                };
                quiet_since = tokio::time::Instant::now();
                return Some((
                    Ok(Bytes::from(text)),
                    (None, rx, stopped, quiet_since, allowed, hold),
                ));
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::sync::atomic::AtomicBool;

    /// An hour without a change (in tokio's paused clock): a comment at least every
    /// 30 s keeps proxies from closing the stream, and nothing else is sent.
    #[tokio::test(start_paused = true)]
    async fn an_hour_without_news_is_kept_alive_by_comments() {
        let (_tx, rx) = watch::channel(0u64);
        let stopped = CancellationToken::new();
        let mut s = Box::pin(stream(rx, stopped, KEEP_ALIVE, || true, ()));
        let hello = s.next().await.unwrap().unwrap();
        assert!(hello.starts_with(b"retry: "));
        let start = tokio::time::Instant::now();
        let mut last = start;
        let mut comments = 0;
        while last - start < Duration::from_secs(3600) {
            let item = s.next().await.unwrap().unwrap();
            assert_eq!(&item[..], b": still here\n\n");
            let now = tokio::time::Instant::now();
            assert!(now - last <= Duration::from_secs(30), "{:?}", now - last);
            last = now;
            comments += 1;
        }
        assert!(comments >= 120, "{comments}");
    }

    /// A change is sent at once, and the keep-alive counts from it.
    #[tokio::test(start_paused = true)]
    async fn a_change_is_sent_at_once() {
        let (tx, rx) = watch::channel(0u64);
        let stopped = CancellationToken::new();
        let mut s = Box::pin(stream(rx, stopped, KEEP_ALIVE, || true, ()));
        s.next().await;
        tokio::time::sleep(Duration::from_secs(600)).await;
        tx.send_replace(7);
        let t = tokio::time::Instant::now();
        let item = s.next().await.unwrap().unwrap();
        assert_eq!(&item[..], b"event: change\ndata: 7\n\n");
        assert_eq!(tokio::time::Instant::now(), t);
    }

    /// Credentials that stop being valid (a token rotated) end the stream within
    /// [`RECHECK`], even with nothing else happening.
    #[tokio::test(start_paused = true)]
    async fn a_rotated_token_ends_the_stream() {
        let (_tx, rx) = watch::channel(0u64);
        let stopped = CancellationToken::new();
        let valid = Arc::new(AtomicBool::new(true));
        let v = valid.clone();
        let mut s = Box::pin(stream(
            rx,
            stopped,
            KEEP_ALIVE,
            move || v.load(Ordering::SeqCst),
            (),
        ));
        s.next().await;
        tokio::time::sleep(Duration::from_secs(60)).await;
        valid.store(false, Ordering::SeqCst);
        let t = tokio::time::Instant::now();
        // Comments may still come until the next check; then the end.
        while s.next().await.is_some() {}
        assert!(tokio::time::Instant::now() - t <= RECHECK);
    }
}
