//! The alert store: one alert per dedup key, with how often and when it was seen, an
//! optional time to live, and dismissal.
//!
//! Events are many, alerts are few: a detector that fails 4,000 times is one alert seen
//! 4,000 times. The pipeline tallies a batch's events per key in memory ([`Tally`]) and
//! writes one row per key in the commit that stores the batch, so the counts are exactly
//! as durable as the checkpoint. An alert that was dismissed, or whose `ttl` ran out,
//! starts afresh when its key is seen again.

pub mod holds;
pub mod hours;
pub mod page;
pub mod summary;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

pub use crate::event::alert::{Alert, Escalation, MAX_TTL_S, actions_json};
use crate::event::{Action, Details, Event, Message, Severity};
use crate::messengers::runtime;
use crate::store::{Store, StoreError, Tx};

/// How long `__snooze` silences an alert whose data names no `snooze_s`.
pub const DEFAULT_SNOOZE_S: u64 = 3600;

/// How long a script's message stays among the active alerts after it was last seen.
/// "Sample 3 done" is news, not an alarm: an hour is long enough to see it on coming
/// back to the screen, short enough that a night of them does not pile up above the
/// alarms; afterwards it is in the history as expired.
pub const SCRIPT_MESSAGE_TTL_S: u64 = 3600;

/// The time to live of the alert an event makes when its sender set none: a message
/// that a script handed in (`send-message`, `POST /api/notify`, BEC) ends by itself
/// unless its event is an alarm (`alarm_*`, `scan_interlock`), and so does any event
/// named `message`; a protocol line's alarm stays until it is dismissed.
pub fn default_ttl_s(event: &str, handed_in: bool) -> Option<u64> {
    use crate::event::names;
    let alarm = event.starts_with("alarm_") || event == names::SCAN_INTERLOCK;
    ((handed_in && !alarm) || event == names::MESSAGE).then_some(SCRIPT_MESSAGE_TTL_S)
}

/// Dismissed and expired alerts are deleted after this long.
pub const KEEP_INACTIVE_MS: i64 = 7 * 24 * 3600 * 1000;

/// What an operator can do with an alert from a protocol line, as OnTakt's buttons:
/// acknowledge it ("I'm on it"), dismiss it, silence its key for an hour, or send it
/// again.
const PROTOCOL_ACTIONS: &str = r#"{"Acknowledge":"__ack","Dismiss":"__dismiss","Snooze 1h":"__snooze","Send again":"__resend"}"#;
const PROTOCOL_DATA: &str = r#"{"snooze_s":3600}"#;

/// What a batch saw of one key: its latest event and how often.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Shared with the throttle window that counted it, when one did.
    pub event: Arc<Event>,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub ttl_s: Option<u64>,
    /// Its events per hour and severity, for the console's chart: almost always one
    /// entry, as a key's events come within the hour of their batch.
    pub hours: hours::Counts,
}

/// A batch's events counted per key, in the order keys first appeared.
#[derive(Default)]
pub struct Tally {
    index: HashMap<String, usize>,
    seen: Vec<Seen>,
}

impl Tally {
    pub fn add(&mut self, event: &Event, ttl_s: Option<u64>) {
        let mut event = event.clone();
        event.message.attachments.clear();
        self.add_shared(Arc::new(event), ttl_s);
    }

    /// [`Tally::add`] for an event the caller shares (with the throttle, which keeps the
    /// latest occurrence too): kept without a copy. In a burst that is almost every event.
    pub fn add_shared(&mut self, mut event: Arc<Event>, ttl_s: Option<u64>) {
        // Attachments belong to the delivery, not to the alert's record.
        if !event.message.attachments.is_empty() {
            let mut bare = (*event).clone();
            bare.message.attachments.clear();
            event = Arc::new(bare);
        }
        let at = event.time.timestamp_millis();
        if let Some(&i) = self.index.get(&event.key) {
            let s = &mut self.seen[i];
            s.count += 1;
            s.first_ms = s.first_ms.min(at);
            s.last_ms = s.last_ms.max(at);
            s.hours.add(at, event.severity);
            s.event = event;
            s.ttl_s = ttl_s;
            return;
        }
        self.index.insert(event.key.clone(), self.seen.len());
        let mut hours = hours::Counts::default();
        hours.add(at, event.severity);
        self.seen.push(Seen {
            event,
            count: 1,
            first_ms: at,
            last_ms: at,
            ttl_s,
            hours,
        });
    }

    /// How many keys the batch saw.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn take(&mut self) -> Vec<Seen> {
        self.index.clear();
        std::mem::take(&mut self.seen)
    }
}

/// Writes a batch's tally: a new key inserts an alert, a known active one counts up, a
/// dismissed or expired one starts again. The protocol file of its latest event is kept
/// (the console shows where an alert came from), and the events are counted per hour.
/// Written in the pipeline's commit of the batch, so that the counts are exactly as
/// durable as the checkpoint.
pub fn record(tx: &Tx<'_>, seen: &[Seen]) -> rusqlite::Result<()> {
    if seen.is_empty() {
        return Ok(());
    }
    hours::record(tx, seen.iter().map(|s| &s.hours))?;
    // An alert that was dismissed or ran out of its ttl starts afresh when seen again:
    // its count, acknowledgement, escalation and held-back news begin anew. The test is
    // written once and put into every column it decides.
    macro_rules! afresh {
        ($new:literal, $column:literal) => {
            concat!(
                $column,
                " = CASE WHEN alerts.dismissed_at IS NOT NULL
                     OR alerts.last_seen + alerts.ttl_s * 1000 < excluded.first_seen
                 THEN ",
                $new,
                " ELSE alerts.",
                $column,
                " END"
            )
        };
    }
    let mut up = tx.prepare_cached(concat!(
        "INSERT INTO alerts (key, event, severity, source, message, details, first_seen,
                             last_seen, times_seen, ttl_s, actions, data, origin)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (key) DO UPDATE SET
             times_seen = CASE WHEN alerts.dismissed_at IS NOT NULL
                     OR alerts.last_seen + alerts.ttl_s * 1000 < excluded.first_seen
                 THEN excluded.times_seen ELSE alerts.times_seen + excluded.times_seen END, ",
        afresh!("excluded.first_seen", "first_seen"),
        ",
             last_seen = MAX(alerts.last_seen, excluded.last_seen),
             event = excluded.event, severity = excluded.severity, source = excluded.source,
             message = excluded.message, details = excluded.details, ttl_s = excluded.ttl_s,
             origin = COALESCE(excluded.origin, alerts.origin), dismissed_at = NULL, ",
        afresh!("NULL", "acknowledged_at"),
        ", ",
        afresh!("NULL", "acknowledged_by"),
        ", ",
        afresh!("NULL", "escalation_since"),
        ", ",
        afresh!("NULL", "escalation"),
        ", ",
        afresh!("0", "escalation_fired"),
        ", ",
        afresh!("NULL", "escalation_next"),
        ", ",
        afresh!("NULL", "held_since"),
    ))?;
    for s in seen {
        let e = &s.event;
        up.execute(params![
            e.key,
            e.name,
            e.severity.as_str(),
            e.source,
            serde_json::to_string(&e.message).unwrap_or_default(),
            e.details.as_ref().map(Details::to_html),
            s.first_ms,
            s.last_ms,
            s.count as i64,
            s.ttl_s.map(|t| t as i64),
            PROTOCOL_ACTIONS,
            PROTOCOL_DATA,
            e.origin.as_ref().map(|o| o.file.to_string_lossy()),
        ])?;
    }
    Ok(())
}

const COLUMNS: &str = "id, key, event, severity, source, message, details, first_seen, last_seen,
                       times_seen, ttl_s, dismissed_at, machine_id, actions, data, origin,
                       dismissed_by, snoozed_until, snoozed_by, acknowledged_by, acknowledged_at,
                       escalation, escalation_fired, escalation_next, held_since,
                       escalation_since";

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Alert> {
    let text = |i: usize| -> rusqlite::Result<String> { r.get(i) };
    Ok(Alert {
        id: r.get(0)?,
        key: r.get(1)?,
        event: r.get(2)?,
        severity: text(3)?.parse().unwrap_or(Severity::Info),
        source: r.get(4)?,
        message: serde_json::from_str(&text(5)?).unwrap_or_default(),
        details: r.get(6)?,
        first_seen_ms: r.get(7)?,
        last_seen_ms: r.get(8)?,
        times_seen: r.get::<_, i64>(9)? as u64,
        ttl_s: r.get::<_, Option<i64>>(10)?.map(|t| t as u64),
        dismissed: r.get::<_, Option<i64>>(11)?.is_some(),
        dismissed_at_ms: r.get(11)?,
        machine_id: r.get(12)?,
        actions: actions_from_json(&text(13)?),
        data: serde_json::from_str(&text(14)?).unwrap_or_default(),
        origin: r.get(15)?,
        dismissed_by: r.get(16)?,
        snoozed_until_ms: r.get(17)?,
        snoozed_by: r.get(18)?,
        acknowledged_by: r.get(19)?,
        acknowledged_at_ms: r.get(20)?,
        escalation: r.get::<_, Option<String>>(21)?.map(|policy| Escalation {
            policy,
            fired: r
                .get::<_, i64>(22)
                .unwrap_or(0)
                .clamp(0, i64::from(u32::MAX)) as u32,
            next_at_ms: r.get(23).unwrap_or(None),
            since_ms: r.get::<_, Option<i64>>(25).ok().flatten().unwrap_or(0),
        }),
        held_since_ms: r.get(24)?,
        silenced_by: Vec::new(),
    })
}

/// OnTakt's `actions` object as stored, in its order.
fn actions_from_json(s: &str) -> Vec<Action> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(s) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(label, v)| {
            v.as_str().map(|a| Action {
                label,
                action: a.to_string(),
            })
        })
        .collect()
}

/// Every alert, newest activity first; only the active ones unless `all`.
pub fn list(store: &Store, now_ms: i64, all: bool) -> Result<Vec<Alert>, StoreError> {
    let alerts = store.with_conn(|c: &Connection| {
        let mut stmt = c.prepare(&format!(
            "SELECT {COLUMNS} FROM alerts ORDER BY last_seen DESC, id DESC"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(alerts
        .into_iter()
        .filter(|a| all || a.is_active(now_ms))
        .collect())
}

pub fn get(store: &Store, id: i64) -> Result<Option<Alert>, StoreError> {
    store.with_conn(|c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
            [id],
            from_row,
        )
        .optional()
    })
}

/// The alert of a dedup key, if there is one.
pub fn by_key(store: &Store, key: &str) -> Result<Option<Alert>, StoreError> {
    store.with_conn(|c| {
        c.query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1"),
            [key],
            from_row,
        )
        .optional()
    })
}

/// Dismisses one alert on behalf of `by` (`api`, `cli`, `telegram:@anna (42)`); `false`
/// if there is no undismissed alert with that id. The one way to dismiss a single alert
/// — from the API, the CLI, the console or Telegram — and so the one audit line for it.
pub fn dismiss(store: &Store, id: i64, now_ms: i64, by: &str) -> Result<bool, StoreError> {
    let done = store.with_conn(|c| {
        c.execute(
            "UPDATE alerts SET dismissed_at = ?2, dismissed_by = ?3
             WHERE id = ?1 AND dismissed_at IS NULL",
            params![id, now_ms, by],
        )
        .map(|n| n == 1)
    })?;
    if done {
        tracing::info!(target: "protowatch::audit", alert = id, by, "alert dismissed");
    }
    Ok(done)
}

/// Acknowledges one active alert on behalf of `by` ("I'm on it"): it stays active and
/// keeps counting, its escalation stops (until the policy's `ack_timeout`), and its
/// repeats are not sent until it clears or is dismissed. `false` if there is no active
/// alert with that id. As [`dismiss`], the one way to do it from every surface, with its
/// audit line; a second acknowledgement records the newer one (someone took over).
pub fn acknowledge(store: &Store, id: i64, now_ms: i64, by: &str) -> Result<bool, StoreError> {
    let done = store.with_conn(|c| {
        c.execute(
            "UPDATE alerts SET acknowledged_at = ?2, acknowledged_by = ?3
             WHERE id = ?1 AND dismissed_at IS NULL
               AND (ttl_s IS NULL OR last_seen + ttl_s * 1000 >= ?2)",
            params![id, now_ms, by],
        )
        .map(|n| n == 1)
    })?;
    if done {
        tracing::info!(target: "protowatch::audit", alert = id, by, "alert acknowledged");
    }
    Ok(done)
}

/// Keys of the active alerts someone acknowledged: their repeats are held back.
pub fn acknowledged(store: &Store, now_ms: i64) -> Result<HashSet<String>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT key FROM alerts WHERE acknowledged_at IS NOT NULL AND dismissed_at IS NULL
               AND (ttl_s IS NULL OR last_seen + ttl_s * 1000 >= ?1)",
        )?;
        let rows = stmt.query_map([now_ms], |r| r.get(0))?;
        rows.collect()
    })
}

/// Marks the alerts of `keys` as holding news a silence or maintenance window kept back
/// (the first time only), in the batch's transaction, after [`record`].
pub fn mark_held(tx: &Tx<'_>, keys: &[String], now_ms: i64) -> rusqlite::Result<()> {
    let mut st = tx
        .prepare_cached("UPDATE alerts SET held_since = COALESCE(held_since, ?2) WHERE key = ?1")?;
    for k in keys {
        st.execute(params![k, now_ms])?;
    }
    Ok(())
}

/// Active alerts whose news was held back, oldest first: to send once when nothing
/// holds them any more.
pub fn held(store: &Store, now_ms: i64) -> Result<Vec<Alert>, StoreError> {
    let alerts = store.with_conn(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE held_since IS NOT NULL AND dismissed_at IS NULL
             ORDER BY held_since, id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    })?;
    Ok(alerts.into_iter().filter(|a| a.is_active(now_ms)).collect())
}

/// The held news of these alerts was sent (or is no longer news): in the transaction
/// that queues it.
pub fn release_held(tx: &Tx<'_>, ids: &[i64]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached("UPDATE alerts SET held_since = NULL WHERE id = ?1")?;
    for id in ids {
        st.execute([id])?;
    }
    Ok(())
}

/// Starts the escalation of the alerts of these keys that have none running. In the batch's
/// transaction, after [`record`] (which ends the escalation of an alert that starts
/// afresh).
pub fn start_escalation(tx: &Tx<'_>, start: &[EscalationStart]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "UPDATE alerts SET escalation = ?2, escalation_fired = 0,
                           escalation_since = COALESCE(?4, first_seen),
                           escalation_next = COALESCE(?4, first_seen) + ?3
         WHERE key = ?1 AND escalation IS NULL AND dismissed_at IS NULL",
    )?;
    for s in start {
        st.execute(params![s.key, s.policy, s.first_step_ms, s.since_ms])?;
    }
    Ok(())
}

/// An escalation to start for an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationStart {
    pub key: String,
    pub policy: String,
    /// The first step's delay.
    pub first_step_ms: i64,
    /// What the steps count from; `None`: the alert's creation.
    pub since_ms: Option<i64>,
}

/// Active alerts whose next escalation step is due at `now_ms`.
pub fn escalation_due(store: &Store, now_ms: i64) -> Result<Vec<Alert>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts
             WHERE escalation_next IS NOT NULL AND escalation_next <= ?1 AND dismissed_at IS NULL
             ORDER BY escalation_next LIMIT 1000"
        ))?;
        let rows = stmt.query_map([now_ms], from_row)?;
        rows.collect()
    })
}

/// Where an alert's escalation stands after this batch: step firings so far and the
/// next due time (`None`: it is over). In the transaction that queues the steps.
pub fn advance_escalation(tx: &Tx<'_>, moves: &[(i64, u32, Option<i64>)]) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "UPDATE alerts SET escalation_fired = ?2, escalation_next = ?3 WHERE id = ?1",
    )?;
    for (id, fired, next) in moves {
        st.execute(params![id, fired, next])?;
    }
    Ok(())
}

/// `__resend`: the alert again, as an event through its event's routes now, queued in
/// the outbox. Returns the destinations to wake; none when no route takes the event.
/// The one resend whatever the surface (API, console, Telegram).
pub fn resend(
    store: &mut Store,
    alert: &Alert,
    config: &crate::config::Config,
) -> Result<Vec<crate::config::Destination>, StoreError> {
    let event = alert.to_event();
    let to = crate::routing::Router::new(config)
        .route(&event.name)
        .to_vec();
    if to.is_empty() {
        return Ok(to);
    }
    crate::outbox::queue::send(
        store,
        &[crate::outbox::queue::Delivery {
            event,
            to: to.clone(),
            repeat: None,
            request: None,
        }],
    )?;
    Ok(to)
}

/// Dismisses every active alert on behalf of `by`; returns how many.
pub fn dismiss_all(store: &Store, now_ms: i64, by: &str) -> Result<u64, StoreError> {
    let n = store.with_conn(|c| {
        c.execute(
            "UPDATE alerts SET dismissed_at = ?1, dismissed_by = ?2 WHERE dismissed_at IS NULL",
            params![now_ms, by],
        )
        .map(|n| n as u64)
    })?;
    if n > 0 {
        tracing::info!(target: "protowatch::audit", alerts = n, by, "alerts cleared");
        store.with_conn(trim_dismissed)?;
    }
    Ok(n)
}

/// Dismissed alerts kept for the history, at most: the newest are kept. Without a
/// bound, alerts made and cleared again and again would pile up for the week that
/// dismissed alerts are kept.
pub const MAX_DISMISSED: i64 = 10_000;

/// Deletes the dismissed alerts beyond the newest [`MAX_DISMISSED`].
fn trim_dismissed(c: &Connection) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM alerts WHERE id IN (
             SELECT id FROM alerts WHERE dismissed_at IS NOT NULL
             ORDER BY dismissed_at DESC, id DESC LIMIT -1 OFFSET ?1)",
        [MAX_DISMISSED],
    )
    .map(|_| ())
}

/// How many alerts are active, without reading them: `/metrics` is public, and must
/// cost the same whatever the table holds.
pub fn count_active(store: &Store, now_ms: i64) -> Result<u64, StoreError> {
    store.with_conn(|c| {
        c.query_row(
            "SELECT count(*) FROM alerts WHERE dismissed_at IS NULL
               AND (ttl_s IS NULL OR last_seen + min(ttl_s, ?2) * 1000 >= ?1)",
            params![now_ms, MAX_TTL_S as i64],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n.max(0) as u64)
    })
}

/// The alerts of `keys` (those that exist), and every alert dismissed after `since_ms`:
/// what changed for Alertmanager since it was last told.
pub fn touched(store: &Store, keys: &[String], since_ms: i64) -> Result<Vec<Alert>, StoreError> {
    store.with_conn(|c| {
        let mut out: Vec<Alert> = Vec::new();
        let mut dismissed = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alerts WHERE dismissed_at > ?1"
        ))?;
        for a in dismissed.query_map([since_ms], from_row)? {
            out.push(a?);
        }
        let mut by_key =
            c.prepare_cached(&format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1"))?;
        for k in keys {
            if out.iter().any(|a| &a.key == k) {
                continue;
            }
            if let Some(a) = by_key.query_row([k], from_row).optional()? {
                out.push(a);
            }
        }
        Ok(out)
    })
}

/// Keys dismissed after `since_ms`: their throttle windows end, so that the next
/// occurrence is news again.
pub fn dismissed_since(store: &Store, since_ms: i64) -> Result<Vec<String>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached("SELECT key FROM alerts WHERE dismissed_at > ?1")?;
        let rows = stmt.query_map([since_ms], |r| r.get(0))?;
        rows.collect()
    })
}

/// Deletes alerts dismissed or expired more than [`KEEP_INACTIVE_MS`] ago, and hourly
/// counts older than the chart shows.
pub fn purge(store: &Store, now_ms: i64) -> Result<u64, StoreError> {
    let cutoff = now_ms - KEEP_INACTIVE_MS;
    store.with_conn(|c| {
        hours::purge(c, now_ms)?;
        let n = c.execute(
            "DELETE FROM alerts WHERE dismissed_at < ?1 OR last_seen + ttl_s * 1000 < ?1",
            [cutoff],
        )?;
        trim_dismissed(c)?;
        Ok(n as u64)
    })
}

/// An alert put through the API (OnTakt's `PUT /api/alerts`).
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub key: String,
    pub message: String,
    pub details: Option<String>,
    pub severity: Severity,
    pub ttl_s: Option<u64>,
    pub machine_id: Option<i64>,
    pub actions: Vec<Action>,
    pub data: serde_json::Value,
    /// OnTakt's `timestamp`: when the condition began, if the client says so.
    pub timestamp_ms: Option<i64>,
}

/// Creates the alert, or replaces the one with the same key (its id stays, it counts as
/// seen once more); returns it as stored. Its `timestamp` is the one given, else now;
/// `last_seen` is now, and a `ttl` counts from it (an alert reported now with a
/// timestamp of last year has not expired).
pub fn put(store: &Store, a: &NewAlert, now_ms: i64) -> Result<Alert, StoreError> {
    store.with_conn(|c| put_in(c, a, now_ms))
}

fn put_in(c: &Connection, a: &NewAlert, now_ms: i64) -> rusqlite::Result<Alert> {
    {
        let mut seen = hours::Counts::default();
        seen.add(now_ms, a.severity);
        hours::record(c, [&seen])?;
        c.execute(
            "INSERT INTO alerts (key, event, severity, source, message, details, first_seen,
                                 last_seen, times_seen, ttl_s, machine_id, actions, data)
             VALUES (?1, 'alert', ?2, NULL, ?3, ?4, ?10, ?5, 1, ?6, ?7, ?8, ?9)
             ON CONFLICT (key) DO UPDATE SET
                 first_seen = CASE WHEN ?11 IS NOT NULL THEN ?11
                     WHEN alerts.dismissed_at IS NOT NULL
                         OR alerts.last_seen + alerts.ttl_s * 1000 < excluded.last_seen
                     THEN excluded.first_seen ELSE alerts.first_seen END,
                 times_seen = CASE WHEN alerts.dismissed_at IS NOT NULL
                         OR alerts.last_seen + alerts.ttl_s * 1000 < excluded.last_seen
                     THEN 1 ELSE alerts.times_seen + 1 END,
                 severity = excluded.severity, message = excluded.message,
                 details = excluded.details, last_seen = excluded.last_seen,
                 ttl_s = excluded.ttl_s, machine_id = excluded.machine_id,
                 actions = excluded.actions, data = excluded.data, dismissed_at = NULL",
            params![
                a.key,
                a.severity.as_str(),
                serde_json::to_string(&Message::plain(a.message.clone())).unwrap_or_default(),
                a.details,
                now_ms,
                a.ttl_s.map(|t| t as i64),
                a.machine_id,
                actions_json(&a.actions).to_string(),
                a.data.to_string(),
                a.timestamp_ms.unwrap_or(now_ms),
                a.timestamp_ms,
            ],
        )?;
        c.query_row(
            &format!("SELECT {COLUMNS} FROM alerts WHERE key = ?1"),
            [&a.key],
            from_row,
        )
    }
}

/// [`put`], unless `max` API alerts are active and this key is not one of them:
/// `None` then. Counted in the same transaction, so concurrent writers cannot pass it.
pub fn put_bounded(
    store: &mut Store,
    a: &NewAlert,
    now_ms: i64,
    max: usize,
) -> Result<Option<Alert>, StoreError> {
    store.transaction(|tx| {
        let active: i64 = tx.query_row(
            "SELECT COUNT(*) FROM alerts WHERE key LIKE 'custom|%' AND key <> ?1
                 AND dismissed_at IS NULL
                 AND (ttl_s IS NULL OR last_seen + ttl_s * 1000 >= ?2)",
            params![a.key, now_ms],
            |r| r.get(0),
        )?;
        if active as usize >= max {
            return Ok(None);
        }
        Ok(Some(put_in(tx, a, now_ms)?))
    })
}

/// Snoozes an alert on behalf of `by`: no messages for its key until `until_ms`. As
/// [`dismiss`], the one way to do it, with its audit line.
pub fn snooze(store: &Store, id: i64, until_ms: i64, by: &str) -> Result<bool, StoreError> {
    let done = store.with_conn(|c| {
        c.execute(
            "UPDATE alerts SET snoozed_until = ?2, snoozed_by = ?3 WHERE id = ?1",
            params![id, until_ms, by],
        )
        .map(|n| n == 1)
    })?;
    if done {
        tracing::info!(target: "protowatch::audit", alert = id, by, until_ms, "alert snoozed");
    }
    Ok(done)
}

/// Keys snoozed beyond `now_ms`, with the end of their snooze.
pub fn snoozed(store: &Store, now_ms: i64) -> Result<HashMap<String, i64>, StoreError> {
    store.with_conn(|c| {
        let mut stmt =
            c.prepare_cached("SELECT key, snoozed_until FROM alerts WHERE snoozed_until > ?1")?;
        let rows = stmt.query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })
}

/// The alert store as a service's running side reaches it ([`runtime::Alerts`]): each
/// method the one function above that every surface uses.
pub struct Actions;

impl runtime::Alerts for Actions {
    fn get(&self, store: &Store, id: i64) -> Result<Option<Alert>, StoreError> {
        get(store, id)
    }

    fn by_key(&self, store: &Store, key: &str) -> Result<Option<Alert>, StoreError> {
        by_key(store, key)
    }

    fn list(&self, store: &Store, now_ms: i64, all: bool) -> Result<Vec<Alert>, StoreError> {
        list(store, now_ms, all)
    }

    fn touched(
        &self,
        store: &Store,
        keys: &[String],
        since_ms: i64,
    ) -> Result<Vec<Alert>, StoreError> {
        touched(store, keys, since_ms)
    }

    fn dismiss(&self, store: &Store, id: i64, now_ms: i64, by: &str) -> Result<bool, StoreError> {
        dismiss(store, id, now_ms, by)
    }

    fn snooze(&self, store: &Store, id: i64, until_ms: i64, by: &str) -> Result<bool, StoreError> {
        snooze(store, id, until_ms, by)
    }

    fn acknowledge(
        &self,
        store: &Store,
        id: i64,
        now_ms: i64,
        by: &str,
    ) -> Result<bool, StoreError> {
        acknowledge(store, id, now_ms, by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A script's news ends by itself; alarms, from a script or a protocol line, do not.
    #[test]
    fn script_messages_end_by_themselves_and_alarms_do_not() {
        let hour = Some(SCRIPT_MESSAGE_TTL_S);
        assert_eq!(default_ttl_s("message", true), hour);
        assert_eq!(default_ttl_s("message", false), hour);
        assert_eq!(default_ttl_s("sample_done", true), hour);
        assert_eq!(default_ttl_s("scan_completed", true), hour);
        assert_eq!(default_ttl_s("alarm_major", true), None);
        assert_eq!(default_ttl_s("scan_interlock", true), None);
        assert_eq!(default_ttl_s("alarm_minor", false), None);
        assert_eq!(default_ttl_s("sample_done", false), None);
    }

    /// Alerts made and cleared again and again keep at most [`MAX_DISMISSED`] rows, the
    /// newest; the active ones are counted without being read.
    #[test]
    fn dismissed_alerts_are_bounded_and_active_ones_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let n = MAX_DISMISSED + 50;
        store
            .with_conn(|c| {
                c.execute_batch("BEGIN")?;
                for i in 0..n {
                    c.execute(
                        "INSERT INTO alerts (key, event, severity, message, first_seen, last_seen,
                                             times_seen, dismissed_at)
                         VALUES (?1, 'e', 'info', 'm', ?2, ?2, 1, ?2)",
                        params![format!("k{i}"), i],
                    )?;
                }
                for (i, ttl) in [(0, None), (1, Some(1_000_000)), (2, Some(1))] {
                    c.execute(
                        "INSERT INTO alerts (key, event, severity, message, first_seen, last_seen,
                                             times_seen, ttl_s)
                         VALUES (?1, 'e', 'info', 'm', 0, ?2, 1, ?3)",
                        params![format!("open{i}"), 100_000, ttl],
                    )?;
                }
                c.execute_batch("COMMIT")
            })
            .unwrap();
        // Active at 200 s: no ttl, and a ttl not yet run out; not the one of 1 s.
        assert_eq!(count_active(&store, 200_000).unwrap(), 2);
        dismiss_all(&store, n + 1, "test").unwrap();
        let (kept, oldest): (i64, i64) = store
            .with_conn(|c| {
                c.query_row(
                    "SELECT count(*), min(dismissed_at) FROM alerts WHERE dismissed_at IS NOT NULL",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .unwrap();
        assert_eq!(kept, MAX_DISMISSED);
        assert!(oldest > 50, "the oldest went first: {oldest}");
        assert_eq!(count_active(&store, 200_000).unwrap(), 0);
    }
}
