//! Messages handed to the running agent by another process or surface (`send-message`,
//! the API, the BEC bridge), and what became of their deliveries: the `inbox` and
//! `receipts` tables.
//!
//! The inbox sits below everything that writes to it and the pipeline that takes from
//! it, so that each of them reaches it without reaching the others. The pipeline marks a
//! request taken with [`accept`] in the commit that queues its deliveries; the outbox
//! writes a [`receipts`] row when a delivery a sender waits for ends.

use rusqlite::{OptionalExtension, params};

use crate::event::Event;
use crate::messengers::Destination;
use crate::store::{Store, StoreError, Tx, now_ms};

/// Inbox rows and receipts are kept this long after their message was taken, for a
/// sender that polls late.
const KEEP_RECEIPTS_MS: i64 = 24 * 3600 * 1000;

/// A message handed in ([`submit`]) and not yet taken by the pipeline.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    pub event: Event,
    /// The destinations its sender named; `None`: routed by the event's name.
    pub to: Option<Vec<Destination>>,
}

/// What became of a message handed to the running agent.
#[derive(Debug, Clone, Default)]
pub struct RequestStatus {
    /// The agent took it from the inbox.
    pub accepted: bool,
    /// Destinations it went to, and where it was counted as a repeat instead.
    pub sent_to: u32,
    pub counted: u32,
    /// Destination, whether it was delivered, the error if not.
    pub receipts: Vec<(String, bool, Option<String>)>,
    /// Deliveries still queued: destination and the last error.
    pub queued: Vec<(String, Option<String>)>,
}

/// Hands a message to the running agent; returns the request id to follow it by.
/// `to`: the destinations its sender named (a BEC session's `send()`); `None`: it is
/// routed by its event's name, as every other event.
pub fn submit(store: &Store, event: &Event, to: Option<&[Destination]>) -> Result<i64, StoreError> {
    let body = serde_json::to_string(event).unwrap_or_default();
    let to = to.map(|to| {
        serde_json::to_string(&to.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    store.with_conn(|c| {
        c.execute(
            "INSERT INTO inbox (created_at, body, destinations) VALUES (?1, ?2, ?3)",
            params![now_ms(), body, to],
        )?;
        Ok(c.last_insert_rowid())
    })
}

/// Messages handed in and not yet taken, oldest first: as many as fit in
/// `max_bytes` of their stored form, and always at least one. The pipeline takes the
/// inbox a bounded piece at a time, because a message carries its files: a queue of
/// hundreds of large `/api/notify` messages read whole held gigabytes at once.
pub fn take(store: &Store, max_bytes: usize) -> Result<Vec<Request>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(
            "SELECT id, body, destinations FROM inbox WHERE accepted_at IS NULL ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            // Measured before it is read: a message that would overrun the piece waits
            // for the next one, unless it is the first.
            let len = row.get_ref(1)?.as_bytes().map_or(0, <[u8]>::len);
            if !out.is_empty() && bytes + len > max_bytes {
                break;
            }
            let to: Option<String> = row.get(2)?;
            let to = match to.as_deref().map(serde_json::from_str::<Vec<String>>) {
                None => None,
                Some(Ok(list)) => Some(list.iter().filter_map(|d| Destination::parse(d)).collect()),
                Some(Err(e)) => {
                    tracing::error!(request = id, error = %e, "unreadable destinations in the inbox; skipped");
                    continue;
                }
            };
            let body: String = row.get(1)?;
            match serde_json::from_str(&body) {
                Ok(event) => {
                    bytes += len;
                    out.push(Request { id, event, to });
                }
                Err(e) => {
                    tracing::error!(request = id, error = %e, "unreadable message in the inbox; skipped")
                }
            }
        }
        Ok(out)
    })
}

/// Marks requests taken, in the commit that queues their deliveries: id, destinations
/// sent to now, destinations where it was counted as a repeat.
pub fn accept(tx: &Tx<'_>, accepted: &[(i64, u32, u32)], now_ms: i64) -> rusqlite::Result<()> {
    for (id, sent_to, counted) in accepted {
        // The files now travel with the event's deliveries; the request keeps
        // only what its sender may ask about.
        tx.execute(
            "UPDATE inbox SET accepted_at = ?2, sent_to = ?3, counted = ?4,
                 body = json_remove(body, '$.message.attachments') WHERE id = ?1",
            params![id, now_ms, sent_to, counted],
        )?;
    }
    Ok(())
}

/// Records the end of deliveries that a sender is waiting for: one row per request.
pub fn receipts(
    tx: &Tx<'_>,
    destination: &str,
    requests: &[i64],
    error: Option<&str>,
) -> rusqlite::Result<()> {
    let now = now_ms();
    for request in requests {
        tx.prepare_cached(
            "INSERT INTO receipts (request, destination, ok, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![request, destination, error.is_none(), error, now])?;
    }
    Ok(())
}

/// What became of a message handed in with [`submit`].
pub fn status(store: &Store, id: i64) -> Result<RequestStatus, StoreError> {
    store.with_conn(|c| {
        let head: Option<(Option<i64>, Option<i64>, Option<i64>)> = c
            .query_row(
                "SELECT accepted_at, sent_to, counted FROM inbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((accepted_at, sent_to, counted)) = head else {
            return Ok(RequestStatus::default());
        };
        let mut status = RequestStatus {
            accepted: accepted_at.is_some(),
            sent_to: sent_to.unwrap_or(0) as u32,
            counted: counted.unwrap_or(0) as u32,
            ..RequestStatus::default()
        };
        let mut stmt =
            c.prepare_cached("SELECT destination, ok, error FROM receipts WHERE request = ?1")?;
        status.receipts = stmt
            .query_map([id], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt = c.prepare_cached(
            "SELECT destination, last_error FROM outbox WHERE request = ?1 AND dead = 0",
        )?;
        status.queued = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(status)
    })
}

/// Forgets inbox requests and receipts nobody will ask about any more.
pub fn purge(store: &Store, now_ms: i64) -> Result<(), StoreError> {
    let cutoff = now_ms - KEEP_RECEIPTS_MS;
    store.with_conn(|c| {
        c.execute("DELETE FROM inbox WHERE accepted_at < ?1", [cutoff])?;
        c.execute("DELETE FROM receipts WHERE at < ?1", [cutoff])?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Message, Severity};

    /// The pipeline reads the inbox a bounded piece at a time, oldest first, always at
    /// least one message; an unreadable row neither counts nor stops what is behind it.
    #[test]
    fn the_inbox_is_read_in_bounded_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let big = |i: usize| {
            Event::message(
                "message",
                Severity::Info,
                Message::plain(format!("{i} {}", "x".repeat(1000))),
            )
        };
        let first = submit(&s, &big(0), None).unwrap();
        s.with_conn(|c| {
            c.execute(
                "INSERT INTO inbox (created_at, body) VALUES (0, 'not json')",
                [],
            )
        })
        .unwrap();
        for i in 1..5 {
            submit(&s, &big(i), None).unwrap();
        }
        // Less than one message: still one.
        let one = take(&s, 10).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, first);
        // Room for two and a half: two, the unreadable row skipped between them.
        let each: i64 = s
            .with_conn(|c| {
                c.query_row(
                    "SELECT length(body) FROM inbox WHERE id = ?1",
                    [first],
                    |r| r.get(0),
                )
            })
            .unwrap();
        let two = take(&s, each as usize * 5 / 2).unwrap();
        assert_eq!(two.len(), 2);
        assert!(two[1].id > first + 1);
        assert_eq!(take(&s, usize::MAX).unwrap().len(), 5);
    }
}
