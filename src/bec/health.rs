//! The state of the link to BEC's Redis, for `/healthz` and `/metrics`.
//!
//! One [`BecHealth`] per agent, made by whoever starts the bridge and handed to the
//! bridge, its stream reader and the readers (`/healthz`, `/metrics`): nothing global,
//! so two agents in one process (the tests) each see their own link. While the link is
//! down BEC's notifications are lost by BEC's design (a PUBLISH nobody hears), so the
//! time it was down is what an operator needs.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::store::now_ms;

/// The link's state, shared by its writers and readers (cheap to clone).
#[derive(Clone, Default)]
pub struct BecHealth(Arc<Inner>);

#[derive(Default)]
struct Inner {
    configured: AtomicBool,
    up: AtomicBool,
    /// When the link went up or down last (ms since the epoch).
    since_ms: AtomicI64,
    last_message_ms: AtomicI64,
    received: AtomicU64,
    undecodable: AtomicU64,
    connects: AtomicU64,
    /// Milliseconds the link was down since start, periods that ended.
    down_ms: AtomicU64,
    address: Mutex<String>,
    /// The message stream's reader (`bec::stream`), when `publish_services` runs it.
    stream_on: AtomicBool,
    stream_reading: AtomicBool,
    stream_messages: AtomicU64,
    stream_missed: AtomicU64,
    stream_refused: AtomicU64,
    stream_state: Mutex<StreamState>,
    last_error: Mutex<Option<String>>,
}

/// The most (service, scope) pairs `/healthz` lists as refused; the rest are counted.
const REFUSED_SHOWN: usize = 20;

#[derive(Default)]
struct StreamState {
    /// The last report of missed entries: how many, between which times (ms).
    last_missed: Option<(u64, u64, u64)>,
    /// (service, scope, how many times) refused.
    refused: Vec<(String, Option<String>, u64)>,
    error: Option<String>,
}

impl std::fmt::Debug for BecHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BecHealth")
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl BecHealth {
    /// The bridge runs, towards `address`; the link is down until [`up`](Self::up).
    pub fn configured(&self, address: &str) {
        *self.0.address.lock().unwrap_or_else(|p| p.into_inner()) = address.to_string();
        self.0.configured.store(true, Ordering::SeqCst);
        self.0.since_ms.store(now_ms(), Ordering::SeqCst);
    }

    /// Subscribed. Returns how long the link was down before, if it was up once already.
    pub fn up(&self) -> Option<u64> {
        let now = now_ms();
        let since = self.0.since_ms.swap(now, Ordering::SeqCst);
        self.0.up.store(true, Ordering::SeqCst);
        *self.0.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
        let again = self.0.connects.fetch_add(1, Ordering::SeqCst) > 0;
        let down = (now - since).max(0) as u64;
        if again {
            self.0.down_ms.fetch_add(down, Ordering::SeqCst);
            Some(down)
        } else {
            None
        }
    }

    /// Lost or not reached, and why (never a secret: the bridge passes Redis' own words
    /// scrubbed of the password).
    pub fn down(&self, why: &str) {
        if self.0.up.swap(false, Ordering::SeqCst) {
            self.0.since_ms.store(now_ms(), Ordering::SeqCst);
        }
        *self.0.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
    }

    pub fn received(&self) {
        self.0.received.fetch_add(1, Ordering::Relaxed);
        self.0.last_message_ms.store(now_ms(), Ordering::Relaxed);
    }

    pub fn undecodable(&self) {
        self.0.undecodable.fetch_add(1, Ordering::Relaxed);
    }

    /// The stream reader runs (`publish_services`).
    pub fn stream_started(&self) {
        self.0.stream_on.store(true, Ordering::SeqCst);
    }

    /// The reader reads (`true`) or lost its connection.
    pub fn stream_reading(&self, on: bool) {
        self.0.stream_reading.store(on, Ordering::SeqCst);
        if on {
            self.0
                .stream_state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .error = None;
        }
    }

    pub fn stream_error(&self, why: &str) {
        self.0.stream_reading.store(false, Ordering::SeqCst);
        self.0
            .stream_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error = Some(why.to_string());
    }

    pub fn stream_message(&self) {
        self.0.stream_messages.fetch_add(1, Ordering::Relaxed);
        self.0.last_message_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// `count` entries, sent after `after_ms` and until `until_ms`, were gone unread.
    pub fn stream_missed(&self, count: u64, after_ms: u64, until_ms: u64) {
        self.0.stream_missed.fetch_add(count, Ordering::SeqCst);
        self.0
            .stream_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_missed = Some((count, after_ms, until_ms));
    }

    pub fn stream_refused(&self, service: &str, scope: Option<&str>) {
        self.0.stream_refused.fetch_add(1, Ordering::Relaxed);
        let mut st = self
            .0
            .stream_state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
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
    fn stream_snapshot(&self) -> Value {
        if !self.0.stream_on.load(Ordering::SeqCst) {
            return Value::Null;
        }
        let st = self
            .0
            .stream_state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let secs = |ms: u64| ms as f64 / 1000.0;
        json!({
            "stream": super::stream::STREAM,
            "reading": self.0.stream_reading.load(Ordering::SeqCst),
            "messages": self.0.stream_messages.load(Ordering::Relaxed),
            "missed": self.0.stream_missed.load(Ordering::SeqCst),
            "last_missed": st.last_missed.map(|(count, after, until)| json!({
                "count": count, "sent_after": secs(after), "sent_until": secs(until)})),
            "refused": self.0.stream_refused.load(Ordering::Relaxed),
            "refused_by": st.refused.iter().map(|(service, scope, n)| json!({
                "service": service, "scope": scope, "count": n})).collect::<Vec<_>>(),
            "error": st.error,
        })
    }

    pub fn is_up(&self) -> bool {
        self.0.up.load(Ordering::SeqCst)
    }

    /// The `bec` object of `/healthz`, with how many targets BEC's routes name now;
    /// `None` without a bridge.
    pub fn snapshot(&self, routes_from_bec: usize) -> Option<Value> {
        if !self.0.configured.load(Ordering::SeqCst) {
            return None;
        }
        let now = now_ms();
        let up = self.is_up();
        let since = self.0.since_ms.load(Ordering::SeqCst);
        let last = self.0.last_message_ms.load(Ordering::Relaxed);
        Some(json!({
            "redis": *self.0.address.lock().unwrap_or_else(|p| p.into_inner()),
            "link": if up { "up" } else { "down" },
            "since": since / 1000,
            "down_for_s": if up { 0 } else { (now - since).max(0) / 1000 },
            "last_message": (last > 0).then_some(last / 1000),
            "notifications_received": self.0.received.load(Ordering::Relaxed),
            "undecodable": self.0.undecodable.load(Ordering::Relaxed),
            "connects": self.0.connects.load(Ordering::SeqCst),
            "error": *self.0.last_error.lock().unwrap_or_else(|p| p.into_inner()),
            "routes_from_bec": routes_from_bec,
            "stream": self.stream_snapshot(),
        }))
    }

    /// The link's lines of `/metrics`; nothing without a bridge.
    pub fn metrics(&self, out: &mut String) {
        if !self.0.configured.load(Ordering::SeqCst) {
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
            u8::from(self.is_up()).to_string(),
        );
        metric(
            "protowatch_bec_notifications_total",
            "counter",
            "BEC notifications received since start.",
            self.0.received.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "protowatch_bec_undecodable_total",
            "counter",
            "BEC messages that could not be decoded since start.",
            self.0.undecodable.load(Ordering::Relaxed).to_string(),
        );
        metric(
            "protowatch_bec_connects_total",
            "counter",
            "Subscriptions to BEC's Redis made since start.",
            self.0.connects.load(Ordering::SeqCst).to_string(),
        );
        let down_now = if self.is_up() {
            0
        } else {
            (now_ms() - self.0.since_ms.load(Ordering::SeqCst)).max(0) as u64
        };
        metric(
            "protowatch_bec_link_down_seconds_total",
            "counter",
            "Time the link to BEC's Redis was down since start; BEC's notifications of that time are lost.",
            format!(
                "{:.3}",
                (self.0.down_ms.load(Ordering::SeqCst) + down_now) as f64 / 1000.0
            ),
        );
        if self.0.stream_on.load(Ordering::SeqCst) {
            metric(
                "protowatch_bec_stream_messages_total",
                "counter",
                "Messages a BEC session sent straight to a service, read from BEC's message stream since start.",
                self.0.stream_messages.load(Ordering::Relaxed).to_string(),
            );
            metric(
                "protowatch_bec_stream_missed_total",
                "counter",
                "Messages of BEC's message stream that were trimmed or expired before they were read.",
                self.0.stream_missed.load(Ordering::SeqCst).to_string(),
            );
            metric(
                "protowatch_bec_stream_refused_total",
                "counter",
                "Messages (per service and scope named) refused because we do not serve that service or scope.",
                self.0.stream_refused.load(Ordering::Relaxed).to_string(),
            );
        }
        let last = self.0.last_message_ms.load(Ordering::Relaxed);
        if last > 0 {
            metric(
                "protowatch_bec_last_message_timestamp_seconds",
                "gauge",
                "When the last BEC notification arrived.",
                format!("{:.3}", last as f64 / 1000.0),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bridge_has_a_health_of_its_own() {
        let (a, b) = (BecHealth::default(), BecHealth::default());
        a.configured("127.0.0.1:6379");
        assert_eq!(a.up(), None);
        a.received();
        assert!(b.snapshot(0).is_none(), "another agent's link is not ours");
        let s = a.snapshot(3).expect("a bridge runs");
        assert_eq!(s["link"], "up");
        assert_eq!(s["notifications_received"], 1);
        assert_eq!(s["routes_from_bec"], 3);
        a.down("connection refused");
        assert!(!a.is_up());
        assert!(a.up().is_some(), "back up, after a time down");
        let mut out = String::new();
        b.metrics(&mut out);
        assert!(out.is_empty());
        a.metrics(&mut out);
        assert!(out.contains("\nprotowatch_bec_connects_total 2\n"), "{out}");
    }
}
