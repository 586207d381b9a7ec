//! The outbox's rows: one per event and destination in `outbox`, the event they send in
//! `events`.
//!
//! The outbox owns these tables because it alone decides when a row is sent, tried
//! again or given up. Rows are added with [`enqueue`] inside the commit that the
//! pipeline assembles, so that they are stored with the checkpoint of the lines they
//! came from (see "Data flow" in docs/ARCHITECTURE.md); the delivery workers take them
//! with [`batch`] and record each attempt's end with [`finish`].

use rusqlite::params;

use crate::config::Destination;
use crate::event::{Event, Repeat};
use crate::store::{Store, StoreError, Tx, now_ms};

// A row and an attempt's outcome are named by every delivery worker, also a service's
// own (Alertmanager's): they are defined with the services' runtime, below the outbox
// (docs/ARCHITECTURE.md, "Layers").
pub use crate::messengers::runtime::{OutboxRow, Outcome};

/// One event to send to some destinations.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    pub to: Vec<Destination>,
    pub repeat: Option<Repeat>,
    /// The inbox request it came from.
    pub request: Option<i64>,
}

/// One outbox row as `protowatch outbox list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub destination: String,
    pub event: String,
    pub key: String,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_error: Option<String>,
    pub dead: bool,
}

/// An outbox row as [`list`] and [`dead`] select it, with its event's name and key.
fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: r.get(0)?,
        destination: r.get(1)?,
        event: r.get(2)?,
        key: r.get(3)?,
        created_at_ms: r.get(4)?,
        attempts: r.get(5)?,
        next_attempt_at_ms: r.get(6)?,
        last_error: r.get(7)?,
        dead: r.get::<_, i64>(8)? != 0,
    })
}

/// Stores each delivery's event once, with one row per destination, in a commit the
/// caller assembles.
pub fn enqueue(tx: &Tx<'_>, deliveries: &[Delivery], now_ms: i64) -> rusqlite::Result<()> {
    let mut ins_event = tx.prepare_cached(
        "INSERT INTO events (created_at, name, severity, key, body, attachments)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut ins_out = tx.prepare_cached(
        "INSERT INTO outbox (destination, event_id, created_at, next_attempt_at, repeat_count,
                             repeat_since, request)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
    )?;
    for d in deliveries {
        if d.to.is_empty() {
            continue;
        }
        let event = &d.event;
        let body = serde_json::to_string(event).unwrap_or_default();
        ins_event.execute(params![
            now_ms,
            event.name,
            event.severity.as_str(),
            event.key,
            body,
            !event.message.attachments.is_empty()
        ])?;
        let event_id = tx.last_insert_rowid();
        let (count, since) = d
            .repeat
            .map_or((0, None), |r| (r.count as i64, Some(r.since_ms)));
        for to in &d.to {
            ins_out.execute(params![
                to.to_string(),
                event_id,
                now_ms,
                count,
                since,
                d.request
            ])?;
        }
    }
    Ok(())
}

/// Queues deliveries in a transaction of their own: a resend, a new API alert's first
/// message, which no file's checkpoint waits for.
pub fn send(store: &mut Store, deliveries: &[Delivery]) -> Result<(), StoreError> {
    let now = now_ms();
    store.write(|tx| enqueue(tx, deliveries, now))
}

/// The oldest live rows for `destination`, in order: at most `max_rows`, the first
/// `shown` of them with their whole event. A row with attachments is sent alone
/// (its files are the point of it), so the batch ends before one, or is just it.
pub fn batch(
    store: &Store,
    destination: &str,
    max_rows: usize,
    shown: usize,
) -> Result<Vec<OutboxRow>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT o.id, o.event_id, e.name, o.created_at, o.attempts, o.next_attempt_at,
                    o.repeat_count, o.repeat_since, e.attachments, e.body, o.request
             FROM outbox o JOIN events e ON e.id = o.event_id
             WHERE o.destination = ?1 AND o.dead = 0 ORDER BY o.id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![destination, max_rows as i64])?;
        let mut out: Vec<OutboxRow> = Vec::new();
        let mut unreadable = Vec::new();
        while let Some(r) = rows.next()? {
            let has_attachments = r.get::<_, i64>(8)? != 0;
            if has_attachments && !out.is_empty() {
                break;
            }
            let id: i64 = r.get(0)?;
            let event = if out.len() < shown {
                let body: String = r.get(9)?;
                match serde_json::from_str::<Event>(&body) {
                    Ok(e) => Some(e),
                    Err(e) => {
                        // Cannot happen for rows this build wrote; keep it for inspection.
                        unreadable.push((id, format!("unreadable event: {e}")));
                        continue;
                    }
                }
            } else {
                None
            };
            let count: i64 = r.get(6)?;
            let since: Option<i64> = r.get(7)?;
            out.push(OutboxRow {
                id,
                event,
                event_id: r.get(1)?,
                event_name: r.get(2)?,
                created_at_ms: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt_at_ms: r.get(5)?,
                repeat: since.filter(|_| count > 0).map(|since_ms| Repeat {
                    count: count as u64,
                    since_ms,
                }),
                has_attachments,
                request: r.get(10)?,
            });
            if has_attachments {
                break;
            }
        }
        drop(rows);
        drop(stmt);
        for (id, error) in unreadable {
            c.execute(
                "UPDATE outbox SET dead = 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )?;
        }
        Ok(out)
    })
}

/// Records how an attempt at `rows` ended, for all of them in one transaction. A
/// delivered row is deleted, and its event with it once no other row needs it.
pub fn finish(
    store: &mut Store,
    destination: &str,
    rows: &[OutboxRow],
    outcome: Outcome<'_>,
) -> Result<(), StoreError> {
    let with_files = rows.iter().any(|r| r.has_attachments);
    store.write(|tx| {
        match outcome {
            Outcome::Delivered => {
                let mut del = tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?;
                let mut gc = tx.prepare_cached(
                    "DELETE FROM events WHERE id = ?1
                     AND NOT EXISTS (SELECT 1 FROM outbox WHERE event_id = ?1)",
                )?;
                for r in rows {
                    del.execute([r.id])?;
                    gc.execute([r.event_id])?;
                }
                crate::inbox::receipts(tx, destination, &requests(rows), None)?;
            }
            Outcome::Retry { at_ms, error } => {
                let mut up = tx.prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                     last_error = ?3 WHERE id = ?1",
                )?;
                for r in rows {
                    up.execute(params![r.id, at_ms, error])?;
                }
            }
            Outcome::Dead { error } => {
                let mut up = tx.prepare_cached(
                    "UPDATE outbox SET dead = 1, attempts = attempts + 1, last_error = ?2
                     WHERE id = ?1",
                )?;
                for r in rows {
                    up.execute(params![r.id, error])?;
                }
                crate::inbox::receipts(tx, destination, &requests(rows), Some(error))?;
            }
        }
        // A file leaves the database once no delivery will send it any more: the
        // event of a delivered row is gone above; one that only dead rows keep
        // (for `outbox list --dead` and a retry) keeps its text, not its files.
        if !matches!(outcome, Outcome::Retry { .. }) {
            let mut strip = tx.prepare_cached(
                "UPDATE events SET body = json_remove(body, '$.message.attachments'),
                     attachments = 0
                 WHERE id = ?1 AND attachments <> 0
                   AND NOT EXISTS (SELECT 1 FROM outbox WHERE event_id = ?1 AND dead = 0)",
            )?;
            for r in rows {
                strip.execute([r.event_id])?;
            }
        }
        Ok(())
    })?;
    if with_files {
        // The WAL still holds the pages as they were, files and all, until they are
        // copied back: done now, and the WAL emptied, so that a delivered file is
        // in neither. Best effort: a reader that holds an old snapshot lets it wait
        // for the next checkpoint.
        let _ = store.with_conn(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())));
    }
    Ok(())
}

/// The inbox requests that `rows` answer, in order.
fn requests(rows: &[OutboxRow]) -> Vec<i64> {
    rows.iter().filter_map(|r| r.request).collect()
}

/// The destinations that have rows still to be sent: a worker is needed for each,
/// also for one no route names any more (a BEC session's direct recipient).
pub fn pending_destinations(store: &Store) -> Result<Vec<Destination>, StoreError> {
    let rows = store.with_conn(|c| {
        let mut stmt =
            c.prepare_cached("SELECT DISTINCT destination FROM outbox WHERE dead = 0")?;
        stmt.query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()
    })?;
    Ok(rows.iter().filter_map(|d| Destination::parse(d)).collect())
}

/// Every row, oldest first, for `protowatch outbox list`.
pub fn list(store: &Store) -> Result<Vec<OutboxEntry>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare(
            "SELECT o.id, o.destination, e.name, e.key, o.created_at, o.attempts,
                    o.next_attempt_at, o.last_error, o.dead
             FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id",
        )?;
        let rows = stmt.query_map([], entry)?;
        rows.collect()
    })
}

/// The latest dead rows, newest first, at most `limit`: what the console lists
/// with a Retry button.
pub fn dead(store: &Store, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT o.id, o.destination, e.name, e.key, o.created_at, o.attempts,
                    o.next_attempt_at, o.last_error, o.dead
             FROM outbox o JOIN events e ON e.id = o.event_id
             WHERE o.dead = 1 ORDER BY o.id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], entry)?;
        rows.collect()
    })
}

/// Makes a dead row live again, due now. `false`: no dead row with that id.
pub fn revive(store: &Store, id: i64) -> Result<bool, StoreError> {
    let n = store.with_conn(|c| {
        c.execute(
            "UPDATE outbox SET dead = 0, next_attempt_at = ?2, created_at = ?2 WHERE id = ?1 AND dead = 1",
            params![id, now_ms()],
        )
    })?;
    Ok(n == 1)
}

/// Live rows per destination with the oldest one's creation time.
pub fn depth(store: &Store) -> Result<Vec<(String, u64, i64)>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT destination, COUNT(*), MIN(created_at) FROM outbox WHERE dead = 0
             GROUP BY destination ORDER BY destination",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
        })?;
        rows.collect()
    })
}

/// What one destination has queued, as the console's Outbox shows it: how much, since
/// when, and about the row at its head (the oldest, which the worker sends first and
/// whose retry time holds the rest back): how often it was tried, why it failed, when
/// it is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub destination: String,
    pub queued: u64,
    pub oldest_ms: i64,
    pub attempts: u64,
    pub last_error: Option<String>,
    pub next_attempt_ms: i64,
}

/// Per destination with rows queued (not dead), in its name's order.
pub fn pending(store: &Store) -> Result<Vec<Pending>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT o.destination, COUNT(*), MIN(o.created_at),
                    h.attempts, h.next_attempt_at, h.last_error
               FROM outbox o
               JOIN outbox h ON h.id = (SELECT MIN(x.id) FROM outbox x
                                         WHERE x.destination = o.destination AND x.dead = 0)
              WHERE o.dead = 0 GROUP BY o.destination ORDER BY o.destination",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Pending {
                destination: r.get(0)?,
                queued: r.get::<_, i64>(1)?.max(0) as u64,
                oldest_ms: r.get(2)?,
                attempts: r.get::<_, i64>(3)?.max(0) as u64,
                next_attempt_ms: r.get(4)?,
                last_error: r.get(5)?,
            })
        })?;
        rows.collect()
    })
}

/// Per destination, the last error of a live row that failed: what is retrying.
pub fn last_errors(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare(
            "SELECT destination, last_error FROM outbox
             WHERE dead = 0 AND last_error IS NOT NULL GROUP BY destination",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })
}

/// Deliveries given up for good that were queued from `since_ms` on, per destination
/// (for the handover digest).
pub fn dead_since(store: &Store, since_ms: i64) -> Result<Vec<(String, u64)>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare(
            "SELECT destination, COUNT(*) FROM outbox WHERE dead = 1 AND created_at >= ?1
             GROUP BY destination ORDER BY destination",
        )?;
        let rows = stmt.query_map([since_ms], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?;
        rows.collect()
    })
}

pub fn dead_count(store: &Store) -> Result<u64, StoreError> {
    store
        .with_conn(|c| {
            c.query_row("SELECT COUNT(*) FROM outbox WHERE dead = 1", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as u64)
}

/// Live rows per destination, for status and tests.
pub fn pending_count(store: &Store, destination: &str) -> Result<u64, StoreError> {
    store
        .with_conn(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE destination = ?1 AND dead = 0",
                [destination],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Service;
    use crate::event::{Message, Severity};

    #[test]
    fn a_row_with_attachments_is_sent_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let d = Destination {
            service: Service::Mail,
            scope: "default".into(),
        };
        let mut with_file = Message::plain("plot");
        with_file.attachments =
            vec![crate::event::Attachment::new("a.png", vec![1, 2, 3]).unwrap()];
        let deliveries: Vec<_> = ["a", "b", "plot", "c"]
            .iter()
            .map(|t| Delivery {
                event: Event::message(
                    "message",
                    Severity::Info,
                    if *t == "plot" {
                        with_file.clone()
                    } else {
                        Message::plain(*t)
                    },
                ),
                to: vec![d.clone()],
                repeat: None,
                request: None,
            })
            .collect();
        send(&mut s, &deliveries).unwrap();
        let key = d.to_string();
        let sizes: Vec<usize> = (0..3)
            .map(|_| {
                let rows = batch(&s, &key, 100, 100).unwrap();
                finish(&mut s, &key, &rows, Outcome::Delivered).unwrap();
                rows.len()
            })
            .collect();
        assert_eq!(sizes, vec![2, 1, 1]);
    }
}
