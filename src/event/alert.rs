//! An alert as it is stored and shown: the record that the alert store keeps, the API
//! and the CLI list, and the services render (Telegram's message of an alert, the
//! alert Alertmanager is told about).
//!
//! It lives here, below both the alert store (`alerts`, a pipeline stage) and the
//! services, because both name it: a type two stages share goes down to `event`
//! (docs/ARCHITECTURE.md, "Layers"). Reading and writing it stays in `alerts`, which
//! owns its table.

use serde::Serialize;

use super::{Action, Details, Event, Message, Severity};

/// A longer `ttl` is taken as this (ten years): no alert lasts longer, and times stay
/// within what clocks and Alertmanager can write.
pub const MAX_TTL_S: u64 = 10 * 365 * 24 * 3600;

/// An alert as `protowatch alerts list` and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: i64,
    pub key: String,
    pub event: String,
    pub severity: Severity,
    pub source: Option<String>,
    pub message: Message,
    /// HTML, as OnTakt's `details`: a traceback is kept escaped in `<pre>`.
    pub details: Option<String>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub times_seen: u64,
    pub ttl_s: Option<u64>,
    pub dismissed: bool,
    /// When it was dismissed, for Alertmanager's `endsAt`.
    #[serde(skip)]
    pub dismissed_at_ms: Option<i64>,
    pub machine_id: Option<i64>,
    /// OnTakt's buttons, in the order given.
    pub actions: Vec<Action>,
    pub data: serde_json::Value,
    /// The protocol file its latest event came from; `None` for the API's and scripts'.
    pub origin: Option<String>,
    /// Who dismissed it (`api`, `cli`, `telegram:@anna (42)`), for the message that is
    /// edited to say so.
    #[serde(skip)]
    pub dismissed_by: Option<String>,
    /// Until when its messages are held back, and who asked.
    #[serde(skip)]
    pub snoozed_until_ms: Option<i64>,
    #[serde(skip)]
    pub snoozed_by: Option<String>,
    /// Who said "I'm on it" (`telegram:@anna (42)`), and when: escalation stops and its
    /// repeats wait, until it clears or is dismissed.
    pub acknowledged_by: Option<String>,
    #[serde(skip)]
    pub acknowledged_at_ms: Option<i64>,
    /// The escalation policy it follows and where it stands in it.
    pub escalation: Option<Escalation>,
    /// When its news was first held back by a silence or maintenance window; sent once
    /// when they end and it is still active.
    #[serde(skip)]
    pub held_since_ms: Option<i64>,
    /// The silences (their ids) and maintenance windows (their names) holding it back
    /// now; filled by whoever shows it, from the holds in force (`oncall`).
    pub silenced_by: Vec<String>,
}

/// Where an alert stands in its escalation policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Escalation {
    pub policy: String,
    /// Step firings so far, repeats of the last step included.
    pub fired: u32,
    /// When the next step is due (ms), if one will be.
    pub next_at_ms: Option<i64>,
    /// What its steps count from: the alert's creation, or the end of the silence that
    /// held it back.
    #[serde(skip)]
    pub since_ms: i64,
}

impl Alert {
    /// The alert as OnTakt's clients read it: OnTakt's `PersistentAlert`, field for
    /// field, with protowatch's own `event`, `level` and `source` beside them. What the
    /// API answers and `alerts list --json` prints.
    pub fn to_ontakt(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "key": self.key,
            "message": self.message.text(),
            "details": self.details.as_deref().unwrap_or(""),
            "severity": self.severity.ontakt_class(),
            "timestamp": epoch_seconds(self.first_seen_ms),
            "last_seen": epoch_seconds(self.last_seen_ms),
            "times_seen": self.times_seen,
            "ttl": self.ttl_s,
            "machine_id": self.machine_id,
            "actions": actions_json(&self.actions),
            "data": self.data,
            "event": self.event,
            "level": self.severity.as_str(),
            "source": self.source,
            "acknowledged_by": self.acknowledged_by,
            "acknowledged_at": self.acknowledged_at_ms.map(epoch_seconds),
            "escalation": self.escalation.as_ref().map(|e| serde_json::json!({
                "policy": e.policy,
                "step": e.fired + 1,
                "next_at": e.next_at_ms.map(epoch_seconds),
            })),
            "silenced_by": self.silenced_by,
        })
    }

    /// The alert as an event to deliver again (`__resend`, `?notify`): its text, its
    /// details as HTML, its buttons.
    pub fn to_event(&self) -> Event {
        let mut event = Event::message(&self.event, self.severity, self.message.clone());
        event.details = self.details.clone().map(|html| Details::Html { html });
        event.actions = self.actions.clone();
        event.source = self.source.clone();
        event.key = self.key.clone();
        event
    }

    /// When it ended, or will end by its `ttl`; `None` while it has no end.
    pub fn ends_at_ms(&self) -> Option<i64> {
        self.dismissed_at_ms.or_else(|| {
            self.ttl_s.map(|t| {
                self.last_seen_ms
                    .saturating_add((t.min(MAX_TTL_S) as i64) * 1000)
            })
        })
    }

    /// Still to be looked at: neither dismissed nor past its time to live.
    pub fn is_active(&self, now_ms: i64) -> bool {
        !self.dismissed && self.ends_at_ms().is_none_or(|end| end >= now_ms)
    }
}

/// Epoch seconds as OnTakt writes them: a whole number when the time is one (so a
/// `timestamp` given as `1692300658` reads back as exactly that), else with the
/// milliseconds as a fraction.
fn epoch_seconds(ms: i64) -> serde_json::Value {
    if ms % 1000 == 0 {
        serde_json::json!(ms / 1000)
    } else {
        serde_json::json!(ms as f64 / 1000.0)
    }
}

/// Actions as OnTakt's object: label → action string, in order.
pub fn actions_json(actions: &[Action]) -> serde_json::Value {
    serde_json::Value::Object(
        actions
            .iter()
            .map(|a| (a.label.clone(), serde_json::Value::String(a.action.clone())))
            .collect(),
    )
}
