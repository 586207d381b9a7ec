//! The state of the link to BEC's Redis, for `/healthz` and `/metrics`.
//!
//! Counters and times are process-wide atomics, like the rest of the metrics: one agent
//! runs one bridge. While the link is down BEC's notifications are lost by BEC's design
//! (a PUBLISH nobody hears), so the time it was down is what an operator needs.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::store::now_ms;

static CONFIGURED: AtomicBool = AtomicBool::new(false);
static UP: AtomicBool = AtomicBool::new(false);
/// When the link went up or down last (ms since the epoch).
static SINCE_MS: AtomicI64 = AtomicI64::new(0);
static LAST_MESSAGE_MS: AtomicI64 = AtomicI64::new(0);
static RECEIVED: AtomicU64 = AtomicU64::new(0);
static UNDECODABLE: AtomicU64 = AtomicU64::new(0);
static CONNECTS: AtomicU64 = AtomicU64::new(0);
/// Milliseconds the link was down since start, periods that ended.
static DOWN_MS: AtomicU64 = AtomicU64::new(0);
static ADDRESS: Mutex<String> = Mutex::new(String::new());
/// The message stream's reader (`bec::stream`), when `publish_services` runs it.
static STREAM_ON: AtomicBool = AtomicBool::new(false);
static STREAM_READING: AtomicBool = AtomicBool::new(false);
static STREAM_MESSAGES: AtomicU64 = AtomicU64::new(0);
static STREAM_MISSED: AtomicU64 = AtomicU64::new(0);
static STREAM_REFUSED: AtomicU64 = AtomicU64::new(0);
static STREAM_STATE: Mutex<StreamState> = Mutex::new(StreamState {
    last_missed: None,
    refused: Vec::new(),
    error: None,
});
/// The most (service, scope) pairs `/healthz` lists as refused; the rest are counted.
const REFUSED_SHOWN: usize = 20;

struct StreamState {
    /// The last report of missed entries: how many, between which times (ms).
    last_missed: Option<(u64, u64, u64)>,
    /// (service, scope, how many times) refused.
    refused: Vec<(String, Option<String>, u64)>,
    error: Option<String>,
}
static LAST_ERROR: Mutex<Option<String>> = Mutex::new(None);

/// The bridge runs, towards `address`; the link is down until [`up`].
pub fn configured(address: &str) {
    *ADDRESS.lock().unwrap_or_else(|p| p.into_inner()) = address.to_string();
    CONFIGURED.store(true, Ordering::SeqCst);
    SINCE_MS.store(now_ms(), Ordering::SeqCst);
}

/// Subscribed. Returns how long the link was down before, if it was up once already.
pub fn up() -> Option<u64> {
    let now = now_ms();
    let since = SINCE_MS.swap(now, Ordering::SeqCst);
    UP.store(true, Ordering::SeqCst);
    *LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner()) = None;
    let again = CONNECTS.fetch_add(1, Ordering::SeqCst) > 0;
    let down = (now - since).max(0) as u64;
    if again {
        DOWN_MS.fetch_add(down, Ordering::SeqCst);
        Some(down)
    } else {
        None
    }
}

/// Lost or not reached, and why (never a secret: the bridge passes Redis' own words
/// scrubbed of the password).
pub fn down(why: &str) {
    if UP.swap(false, Ordering::SeqCst) {
        SINCE_MS.store(now_ms(), Ordering::SeqCst);
    }
    *LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
}

pub fn received() {
    RECEIVED.fetch_add(1, Ordering::Relaxed);
    LAST_MESSAGE_MS.store(now_ms(), Ordering::Relaxed);
}

pub fn undecodable() {
    UNDECODABLE.fetch_add(1, Ordering::Relaxed);
}

/// The stream reader runs (`publish_services`).
pub fn stream_started() {
    STREAM_ON.store(true, Ordering::SeqCst);
}

/// The reader reads (`true`) or lost its connection.
pub fn stream_reading(on: bool) {
    STREAM_READING.store(on, Ordering::SeqCst);
    if on {
        STREAM_STATE.lock().unwrap_or_else(|p| p.into_inner()).error = None;
    }
}

pub fn stream_error(why: &str) {
    STREAM_READING.store(false, Ordering::SeqCst);
    STREAM_STATE.lock().unwrap_or_else(|p| p.into_inner()).error = Some(why.to_string());
}

pub fn stream_message() {
    STREAM_MESSAGES.fetch_add(1, Ordering::Relaxed);
    LAST_MESSAGE_MS.store(now_ms(), Ordering::Relaxed);
}

/// `count` entries, sent after `after_ms` and until `until_ms`, were gone unread.
pub fn stream_missed(count: u64, after_ms: u64, until_ms: u64) {
    STREAM_MISSED.fetch_add(count, Ordering::SeqCst);
    STREAM_STATE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .last_missed = Some((count, after_ms, until_ms));
}

pub fn stream_refused(service: &str, scope: Option<&str>) {
    STREAM_REFUSED.fetch_add(1, Ordering::Relaxed);
    let mut st = STREAM_STATE.lock().unwrap_or_else(|p| p.into_inner());
    let scope = scope.map(str::to_string);
    let full = st.refused.len() >= REFUSED_SHOWN;
    match st
        .refused
        .iter_mut()
        .find(|(s, sc, _)| s == service && *sc == scope)
    {
        Some((_, _, n)) => *n += 1,
        None if !full => st.refused.push((service.to_string(), scope, 1)),
        None => {}
    }
}

/// The `stream` object of `/healthz`'s `bec`; null when the reader does not run.
fn stream_snapshot() -> Value {
    if !STREAM_ON.load(Ordering::SeqCst) {
        return Value::Null;
    }
    let st = STREAM_STATE.lock().unwrap_or_else(|p| p.into_inner());
    let secs = |ms: u64| ms as f64 / 1000.0;
    json!({
        "stream": super::stream::STREAM,
        "reading": STREAM_READING.load(Ordering::SeqCst),
        "messages": STREAM_MESSAGES.load(Ordering::Relaxed),
        "missed": STREAM_MISSED.load(Ordering::SeqCst),
        "last_missed": st.last_missed.map(|(count, after, until)| json!({
            "count": count, "sent_after": secs(after), "sent_until": secs(until)})),
        "refused": STREAM_REFUSED.load(Ordering::Relaxed),
        "refused_by": st.refused.iter().map(|(service, scope, n)| json!({
            "service": service, "scope": scope, "count": n})).collect::<Vec<_>>(),
        "error": st.error,
    })
}

pub fn is_up() -> bool {
    UP.load(Ordering::SeqCst)
}

/// The `bec` object of `/healthz`; `None` without a bridge.
pub fn snapshot() -> Option<Value> {
    if !CONFIGURED.load(Ordering::SeqCst) {
        return None;
    }
    let now = now_ms();
    let up = is_up();
    let since = SINCE_MS.load(Ordering::SeqCst);
    let last = LAST_MESSAGE_MS.load(Ordering::Relaxed);
    Some(json!({
        "redis": *ADDRESS.lock().unwrap_or_else(|p| p.into_inner()),
        "link": if up { "up" } else { "down" },
        "since": since / 1000,
        "down_for_s": if up { 0 } else { (now - since).max(0) / 1000 },
        "last_message": (last > 0).then_some(last / 1000),
        "notifications_received": RECEIVED.load(Ordering::Relaxed),
        "undecodable": UNDECODABLE.load(Ordering::Relaxed),
        "connects": CONNECTS.load(Ordering::SeqCst),
        "error": *LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner()),
        "routes_from_bec": super::routes::current().map_or(0, |r| r.values().map(Vec::len).sum::<usize>()),
        "stream": stream_snapshot(),
    }))
}

/// The link's lines of `/metrics`; nothing without a bridge.
pub fn metrics(out: &mut String) {
    if !CONFIGURED.load(Ordering::SeqCst) {
        return;
    }
    let mut metric = |name: &str, kind: &str, help: &str, v: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    metric(
        "protowatch_bec_link_up",
        "gauge",
        "1 while subscribed to BEC's Redis.",
        u8::from(is_up()).to_string(),
    );
    metric(
        "protowatch_bec_notifications_total",
        "counter",
        "BEC notifications received since start.",
        RECEIVED.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "protowatch_bec_undecodable_total",
        "counter",
        "BEC messages that could not be decoded since start.",
        UNDECODABLE.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "protowatch_bec_connects_total",
        "counter",
        "Subscriptions to BEC's Redis made since start.",
        CONNECTS.load(Ordering::SeqCst).to_string(),
    );
    let down_now = if is_up() {
        0
    } else {
        (now_ms() - SINCE_MS.load(Ordering::SeqCst)).max(0) as u64
    };
    metric(
        "protowatch_bec_link_down_seconds_total",
        "counter",
        "Time the link to BEC's Redis was down since start; BEC's notifications of that time are lost.",
        format!(
            "{:.3}",
            (DOWN_MS.load(Ordering::SeqCst) + down_now) as f64 / 1000.0
        ),
    );
    if STREAM_ON.load(Ordering::SeqCst) {
        metric(
            "protowatch_bec_stream_messages_total",
            "counter",
            "Messages a BEC session sent straight to a service, read from BEC's message stream since start.",
            STREAM_MESSAGES.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "protowatch_bec_stream_missed_total",
            "counter",
            "Messages of BEC's message stream that were trimmed or expired before they were read.",
            STREAM_MISSED.load(Ordering::SeqCst).to_string(),
        );
        metric(
            "protowatch_bec_stream_refused_total",
            "counter",
            "Messages (per service and scope named) refused because we do not serve that service or scope.",
            STREAM_REFUSED.load(Ordering::Relaxed).to_string(),
        );
    }
    let last = LAST_MESSAGE_MS.load(Ordering::Relaxed);
    if last > 0 {
        metric(
            "protowatch_bec_last_message_timestamp_seconds",
            "gauge",
            "When the last BEC notification arrived.",
            format!("{:.3}", last as f64 / 1000.0),
        );
    }
}
