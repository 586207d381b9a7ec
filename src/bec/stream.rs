//! What a BEC session sends straight to a service: the stream
//! `internal/message_service/queue`, read while protowatch is BEC's messaging backend
//! (`publish_services`).
//!
//! `bec.messaging.teams.new("Sample changed").send()` does not notify: bec_lib XADDs a
//! `MessagingServiceMessage {service_name, message, scope}` to this stream (MAXLEN ~50,
//! the key expiring 1000 s after the last send), which only Atlas reads otherwise. A
//! service we offer as enabled must not lose what is sent through it, so this module
//! owns reading that stream: where we are in it (the table `bec_stream`, written in the
//! transaction of the inbox rows an entry made — nothing handled twice after a restart
//! or a reconnect, nothing skipped while the agent ran), what was trimmed or expired
//! before we read it (counted from Redis 7's `XINFO STREAM`, warned about and shown in
//! `/healthz`), and which of our destinations BEC's service and scope name.
//!
//! Each message is then an event like any other, handed to the inbox with the
//! destinations it named ([`crate::inbox::submit`]), and from there takes the
//! path of every event: alerts, throttle, outbox.
//!
//! The reader has a connection of its own, blocked in `XREAD` for at most
//! [`BLOCK`]: Redis' `timeout` never closes a blocked client, and between two reads it
//! is not idle. Should the connection go anyway, the reader opens another at once,
//! quietly, from where it was.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use redis::Value;
use rusqlite::{OptionalExtension, params};
use tokio_util::sync::CancellationToken;

use crate::event::{Event, Severity};
use crate::messengers::signal::number;
use crate::messengers::{Destination, Service};

use super::codec::{self, ServiceMessage};
use super::{BecHealth, Served, notification};

/// The stream bec_lib's `MessagingService.send` writes (`message_service_queue`).
pub const STREAM: &str = "internal/message_service/queue";
/// The event a session's message is; its source is BEC's, as for notifications.
pub const EVENT: &str = "message";
/// The longest an `XREAD` waits for an entry; also how often the reader looks whether
/// the stream expired meanwhile.
pub const BLOCK: Duration = Duration::from_secs(10);
/// Entries read at once: each may carry files of up to 5 MB.
const COUNT: usize = 16;
/// The calling code of bec_lib's default region (`CH`) for a national number.
pub const DEFAULT_COUNTRY: &str = "41";
/// How many phone numbers the stream may name in one run: each is a delivery worker,
/// and the stream is written by whoever reaches Redis.
const MAX_NUMBERS: usize = 100;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    #[error("no answer within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    #[error("an answer of an unexpected shape to {0}")]
    Shape(&'static str),
}

/// A stream entry id, `<ms>-<seq>`: ordered, and the time it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    pub fn parse(text: &str) -> Option<EntryId> {
        let (ms, seq) = text.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Where the reader is: the last entry handled, and how many entries the stream had
/// had added up to it (Redis' `entries-added` then), to tell how many were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub last: EntryId,
    pub added: u64,
}

/// The reader's state as kept in the store.
pub fn load(store: &crate::store::Store) -> Result<Option<Cursor>, crate::store::StoreError> {
    let row: Option<(String, i64)> = store.with_conn(|c| {
        c.query_row(
            "SELECT last_id, added FROM bec_stream WHERE stream = ?1",
            [STREAM],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
    })?;
    Ok(row.and_then(|(id, added)| {
        Some(Cursor {
            last: EntryId::parse(&id)?,
            added: added.max(0) as u64,
        })
    }))
}

/// Writes the cursor; called inside the transaction of the entry's inbox rows.
pub fn save(store: &crate::store::Store, c: &Cursor) -> Result<(), crate::store::StoreError> {
    store.with_conn(|conn| {
        conn.execute(
            "INSERT INTO bec_stream (stream, last_id, added, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (stream) DO UPDATE SET last_id = ?2, added = ?3, updated_at = ?4",
            params![
                STREAM,
                c.last.to_string(),
                c.added as i64,
                crate::store::now_ms()
            ],
        )
        .map(drop)
    })
}

/// What one stream entry made: its requests, and the cursor past it. An entry that
/// made none (refused, undecodable) still moves the cursor.
#[derive(Debug)]
pub struct Handled {
    pub cursor: Cursor,
    pub requests: Vec<(Event, Vec<Destination>)>,
}

/// A service or scope of a message that we do not serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub service: String,
    /// `None`: no scope named, and the service has no default.
    pub scope: Option<String>,
    pub why: String,
}

/// Our destinations for BEC's service and scopes, as BEC's own rules give them: the
/// service through `bec.services`; each scope by its name, a Signal scope that is a
/// phone number (normalised as bec_lib does) as that number; no scope: our default
/// scope of that service, which is what we publish as BEC's default.
pub fn destinations(
    served: &Served,
    service: &str,
    scopes: &[String],
) -> Vec<Result<Destination, Refused>> {
    let refuse = |scope: Option<&str>, why: String| Refused {
        service: service.to_string(),
        scope: scope.map(str::to_string),
        why,
    };
    let Some(ours) = served.service(service) else {
        let why = format!("no service of ours serves BEC's {service:?} (bec.services)");
        return if scopes.is_empty() {
            vec![Err(refuse(None, why))]
        } else {
            scopes
                .iter()
                .map(|s| Err(refuse(Some(s), why.clone())))
                .collect()
        };
    };
    let known = served.scopes(ours).unwrap_or_default();
    if scopes.is_empty() {
        return vec![match served.default_scope(ours) {
            Some(s) if known.contains(&s) => Ok(Destination {
                service: ours,
                scope: s.to_string(),
            }),
            _ => Err(refuse(
                None,
                format!("no scope named, and {ours} has no default scope"),
            )),
        }];
    }
    let mut out: Vec<Result<Destination, Refused>> = Vec::new();
    for scope in scopes {
        let result = if known.contains(&scope.as_str()) {
            Ok(Destination {
                service: ours,
                scope: scope.clone(),
            })
        } else if ours == Service::Signal
            && let Some(n) = number::to_e164(scope, DEFAULT_COUNTRY)
        {
            Ok(Destination {
                service: ours,
                scope: known
                    .iter()
                    .find(|k| **k == n)
                    .map_or(n.clone(), |k| k.to_string()),
            })
        } else {
            Err(refuse(
                Some(scope),
                format!("{ours} has no scope {scope:?}"),
            ))
        };
        match result {
            Ok(d) if out.iter().any(|o| o.as_ref() == Ok(&d)) => {}
            other => out.push(other),
        }
    }
    out
}

/// A session's message as our event: BEC's contents with their HTML kept (SciLog shows
/// it as written), sent at the entry's time.
pub fn to_event(id: EntryId, m: ServiceMessage) -> Event {
    let message = notification::message(EVENT, m.items, true);
    let mut e = Event::message(EVENT, Severity::Info, message);
    e.source = Some(notification::SOURCE.to_string());
    if let Some(t) = chrono::DateTime::from_timestamp_millis(id.ms.min(i64::MAX as u64) as i64) {
        e.time = t;
    }
    e
}

/// What `XINFO STREAM` says about the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    pub length: u64,
    pub added: u64,
    pub last_generated: EntryId,
    pub max_deleted: EntryId,
    /// `None`: empty.
    pub first: Option<EntryId>,
}

/// Entries added after the cursor that are gone: their count and the ids around them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    pub count: u64,
    /// The last entry handled before them (their time is after its).
    pub after: EntryId,
    /// The newest of them, as far as Redis knows (`max-deleted-entry-id`), else the
    /// first entry still there (their time is before its).
    pub until: EntryId,
}

/// Compares the cursor with the stream: entries are trimmed from the head only and a
/// stream expires whole, so when the first entry left is past the cursor, every entry
/// between is gone, and `entries-added` tells how many. A counter lower than ours is a
/// stream made anew after the old one expired: its own entries are counted (those of
/// the old one that we never read cannot be). Returns the cursor to read on from.
pub fn compare(cursor: Cursor, info: &Info) -> (Cursor, Option<Missed>) {
    let first = info.first.unwrap_or(EntryId {
        ms: u64::MAX,
        seq: u64::MAX,
    });
    if first <= cursor.last {
        return (cursor, None);
    }
    let since = if info.added >= cursor.added {
        info.added - cursor.added
    } else {
        info.added
    };
    let count = since.saturating_sub(info.length);
    let next = Cursor {
        last: cursor.last,
        added: info.added.saturating_sub(info.length),
    };
    if count == 0 {
        return (next, None);
    }
    let until = if info.max_deleted > cursor.last {
        info.max_deleted
    } else {
        info.first.unwrap_or(info.last_generated)
    };
    (
        next,
        Some(Missed {
            count,
            after: cursor.last,
            until,
        }),
    )
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<u64> {
    match v {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => text(other)?.parse().ok(),
    }
}

/// The key/value pairs of a RESP2 flat list or a RESP3 map.
fn pairs(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|kv| match kv {
                [k, v] => Some((text(k)?, v)),
                _ => None,
            })
            .collect(),
        Value::Map(items) => items.iter().map(|(k, v)| Some((text(k)?, v))).collect(),
        _ => None,
    }
}

/// Reads `XINFO STREAM`'s answer.
pub fn parse_info(v: &Value) -> Option<Info> {
    let p = pairs(v)?;
    let get = |name: &str| p.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let id = |name: &str| get(name).and_then(text).and_then(|t| EntryId::parse(&t));
    let first = match get("first-entry") {
        Some(Value::Array(e)) => e.first().and_then(text).and_then(|t| EntryId::parse(&t)),
        _ => None,
    };
    Some(Info {
        length: get("length").and_then(int)?,
        added: get("entries-added").and_then(int)?,
        last_generated: id("last-generated-id").unwrap_or(EntryId::ZERO),
        max_deleted: id("max-deleted-entry-id").unwrap_or(EntryId::ZERO),
        first,
    })
}

/// One entry of an `XREAD` answer: its id and its `data` field (bec_lib's message).
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: EntryId,
    /// `None`: no `data` field.
    pub data: Option<Vec<u8>>,
}

/// Reads `XREAD`'s answer for [`STREAM`]; `None` when it is not one.
pub fn parse_read(v: &Value) -> Option<Vec<Entry>> {
    let streams: Vec<&Value> = match v {
        Value::Nil => return Some(Vec::new()),
        Value::Array(s) => s.iter().collect(),
        Value::Map(m) => m.iter().map(|(_, v)| v).collect(),
        _ => return None,
    };
    let mut out = Vec::new();
    for s in streams {
        let entries = match s {
            Value::Array(kv) if kv.len() == 2 => &kv[1],
            other => other,
        };
        let Value::Array(entries) = entries else {
            return None;
        };
        for e in entries {
            let Value::Array(parts) = e else { return None };
            let [id, fields] = parts.as_slice() else {
                return None;
            };
            let id = EntryId::parse(&text(id)?)?;
            let data = match fields {
                Value::Array(f) => f.chunks(2).find_map(|kv| match kv {
                    [k, Value::BulkString(v)] if text(k).as_deref() == Some("data") => {
                        Some(v.clone())
                    }
                    _ => None,
                }),
                _ => None,
            };
            out.push(Entry { id, data });
        }
    }
    Some(out)
}

/// What the reader hands to the recorder.
pub type Sink = std_mpsc::Sender<super::bridge::Record>;

/// The reader: a tokio task beside the link.
pub struct Reader {
    pub client: redis::Client,
    /// What BEC's services and scopes may name.
    pub served: Arc<Served>,
    pub health: BecHealth,
    pub tx: Sink,
    /// Where the last run left off; `None` at the very first start.
    pub cursor: Option<Cursor>,
    /// The password, to keep out of what is logged.
    pub scrub: Box<dyn Fn(&str) -> String + Send + Sync>,
}

/// Once per (service, scope): the log line of a refusal.
#[derive(Default)]
struct Refusals {
    logged: HashSet<(String, Option<String>)>,
    numbers: HashSet<String>,
}

impl Reader {
    pub async fn run(mut self, stop: CancellationToken) {
        let mut refusals = Refusals::default();
        let mut backoff = BACKOFF_FIRST;
        let mut failures = 0u32;
        loop {
            let result = self.session(&stop, &mut refusals, &mut failures).await;
            if stop.is_cancelled() {
                return;
            }
            failures += 1;
            let why = match result {
                Ok(()) => return,
                Err(e) => (self.scrub)(&e.to_string()),
            };
            self.health.stream_error(&why);
            // The first loss is a connection Redis or the network closed: reconnected
            // at once, quietly. Failing again is worth a line, unless the link is down
            // and says so itself.
            if failures == 1 {
                tracing::debug!(error = %why, "BEC message stream: reading again on a new connection");
                backoff = BACKOFF_FIRST;
                continue;
            }
            if failures == 2 && self.health.is_up() {
                tracing::warn!(error = %why, "BEC message stream cannot be read; trying again");
            } else {
                tracing::debug!(error = %why, "BEC message stream not read");
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn session(
        &mut self,
        stop: &CancellationToken,
        refusals: &mut Refusals,
        failures: &mut u32,
    ) -> Result<(), StreamError> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(BLOCK + CONNECT_TIMEOUT));
        let mut conn = tokio::select! {
            c = self.client.get_multiplexed_async_connection_with_config(&config) => c?,
            _ = stop.cancelled() => return Ok(()),
        };
        let mut cursor = match self.cursor {
            Some(c) => self.check(&mut conn, c).await?,
            None => self.begin(&mut conn).await?,
        };
        self.cursor = Some(cursor);
        self.health.stream_reading(true);
        loop {
            let mut xread = redis::cmd("XREAD");
            xread
                .arg("COUNT")
                .arg(COUNT)
                .arg("BLOCK")
                .arg(BLOCK.as_millis() as u64)
                .arg("STREAMS")
                .arg(STREAM)
                .arg(cursor.last.to_string());
            let read = xread.query_async::<Value>(&mut conn);
            let answer = tokio::select! {
                a = read => a,
                _ = stop.cancelled() => return Ok(()),
            };
            let answer = match answer {
                Ok(a) => a,
                Err(e) => {
                    self.health.stream_reading(false);
                    return Err(e.into());
                }
            };
            *failures = 0;
            let entries = parse_read(&answer).ok_or(StreamError::Shape("XREAD"))?;
            if entries.is_empty() {
                // Quiet: a stream that expired starts counting again when it is made
                // anew, and so must we.
                let exists: bool = redis::cmd("EXISTS")
                    .arg(STREAM)
                    .query_async(&mut conn)
                    .await?;
                if !exists && cursor.added > 0 {
                    cursor.added = 0;
                    self.cursor = Some(cursor);
                    self.hand(Handled {
                        cursor,
                        requests: Vec::new(),
                    });
                }
                continue;
            }
            let full = entries.len() >= COUNT;
            for entry in entries {
                cursor = Cursor {
                    last: entry.id,
                    added: cursor.added + 1,
                };
                let requests = self.requests(&entry, refusals);
                self.hand(Handled { cursor, requests });
            }
            self.cursor = Some(cursor);
            // A full read may have more behind it, which a busy stream can trim
            // before we get there: counted, not passed over.
            if full {
                cursor = self.check(&mut conn, cursor).await?;
                self.cursor = Some(cursor);
            }
        }
    }

    /// The very first start: the stream's entries of before are left to whoever wrote
    /// them for (an Atlas may have delivered them); we read what comes after.
    async fn begin(
        &mut self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> Result<Cursor, StreamError> {
        let cursor = match self.info(conn).await? {
            Some(info) => {
                if info.length > 0 {
                    tracing::info!(
                        entries = info.length,
                        "BEC message stream: reading from its end at the first start; the {} entries already there are left as they are",
                        info.length
                    );
                }
                Cursor {
                    last: info.last_generated,
                    added: info.added,
                }
            }
            None => Cursor {
                last: EntryId::ZERO,
                added: 0,
            },
        };
        self.hand(Handled {
            cursor,
            requests: Vec::new(),
        });
        Ok(cursor)
    }

    /// Compares the cursor with the stream, reports what was missed, and keeps the
    /// cursor that counts them as passed.
    async fn check(
        &mut self,
        conn: &mut redis::aio::MultiplexedConnection,
        cursor: Cursor,
    ) -> Result<Cursor, StreamError> {
        let Some(info) = self.info(conn).await? else {
            // No stream: it expired (or Redis restarted empty), and the next one counts
            // its entries from the start.
            if cursor.added == 0 {
                return Ok(cursor);
            }
            let next = Cursor { added: 0, ..cursor };
            self.hand(Handled {
                cursor: next,
                requests: Vec::new(),
            });
            return Ok(next);
        };
        let (next, missed) = compare(cursor, &info);
        if let Some(m) = missed {
            let at = |id: EntryId| {
                chrono::DateTime::from_timestamp_millis(id.ms.min(i64::MAX as u64) as i64)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                    .unwrap_or_default()
            };
            tracing::warn!(
                missed = m.count,
                after = %at(m.after),
                until = %at(m.until),
                "BEC message stream: {} messages sent between {} and {} were trimmed or expired before they were read; they are not delivered",
                m.count,
                at(m.after),
                at(m.until)
            );
            self.health.stream_missed(m.count, m.after.ms, m.until.ms);
        }
        if next != cursor {
            self.hand(Handled {
                cursor: next,
                requests: Vec::new(),
            });
        }
        Ok(next)
    }

    async fn info(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> Result<Option<Info>, StreamError> {
        let exists: bool = redis::cmd("EXISTS").arg(STREAM).query_async(conn).await?;
        if !exists {
            return Ok(None);
        }
        let v: Value = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(STREAM)
            .query_async(conn)
            .await?;
        parse_info(&v)
            .map(Some)
            .ok_or(StreamError::Shape("XINFO STREAM"))
    }

    fn hand(&self, h: Handled) {
        if self.tx.send(super::bridge::Record::Stream(h)).is_err() {
            tracing::error!(
                "BEC message read while stopping; not stored (read again at the next start)"
            );
        }
    }

    /// The requests an entry makes: its event, with the destinations we serve.
    fn requests(&self, entry: &Entry, refusals: &mut Refusals) -> Vec<(Event, Vec<Destination>)> {
        let Some(data) = &entry.data else {
            self.health.undecodable();
            tracing::warn!(stream = STREAM, id = %entry.id, "a BEC message without a \"data\" field; dropped");
            return Vec::new();
        };
        let m = match codec::decode_service_message(data) {
            Ok(m) => m,
            Err(e) => {
                self.health.undecodable();
                tracing::warn!(stream = STREAM, id = %entry.id, bytes = data.len(), error = %e, "a BEC message could not be decoded; dropped");
                return Vec::new();
            }
        };
        self.health.stream_message();
        let mut to = Vec::new();
        for d in destinations(&self.served, &m.service_name, &m.scopes) {
            match d {
                Ok(d) if self.is_new_number(&d, refusals) => {
                    if refusals.numbers.len() >= MAX_NUMBERS {
                        self.refuse(
                            Refused {
                                service: m.service_name.clone(),
                                scope: Some(d.scope.clone()),
                                why: format!(
                                    "more than {MAX_NUMBERS} phone numbers named since start"
                                ),
                            },
                            refusals,
                        );
                        continue;
                    }
                    refusals.numbers.insert(d.scope.clone());
                    to.push(d);
                }
                Ok(d) => to.push(d),
                Err(r) => self.refuse(r, refusals),
            }
        }
        if to.is_empty() {
            return Vec::new();
        }
        let e = to_event(entry.id, m);
        tracing::debug!(id = %entry.id, to = ?to.iter().map(ToString::to_string).collect::<Vec<_>>(), "BEC message");
        vec![(e, to)]
    }

    /// A Signal destination that is a phone number no scope of ours names.
    fn is_new_number(&self, d: &Destination, refusals: &Refusals) -> bool {
        d.service == Service::Signal
            && number::is_e164(&d.scope)
            && !self
                .served
                .scopes(Service::Signal)
                .unwrap_or_default()
                .contains(&d.scope.as_str())
            && !refusals.numbers.contains(&d.scope)
    }

    fn refuse(&self, r: Refused, refusals: &mut Refusals) {
        self.health.stream_refused(&r.service, r.scope.as_deref());
        if refusals.logged.insert((r.service.clone(), r.scope.clone())) {
            tracing::warn!(
                service = %r.service,
                scope = r.scope.as_deref().unwrap_or("(none)"),
                why = %r.why,
                "a BEC message for a service or scope we do not serve is refused (logged once for this service and scope, counted each time)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> EntryId {
        EntryId { ms, seq }
    }

    #[test]
    fn nothing_missed_while_the_first_entry_is_ours() {
        let c = Cursor {
            last: id(100, 0),
            added: 10,
        };
        let info = Info {
            length: 5,
            added: 12,
            last_generated: id(120, 0),
            max_deleted: id(50, 0),
            first: Some(id(90, 0)),
        };
        assert_eq!(compare(c, &info), (c, None));
    }

    #[test]
    fn trimmed_entries_are_counted_with_their_span() {
        // 300 sent after ours, about 50 left.
        let c = Cursor {
            last: id(100, 0),
            added: 10,
        };
        let info = Info {
            length: 52,
            added: 310,
            last_generated: id(400, 0),
            max_deleted: id(347, 0),
            first: Some(id(348, 0)),
        };
        let (next, missed) = compare(c, &info);
        assert_eq!(
            missed,
            Some(Missed {
                count: 248,
                after: id(100, 0),
                until: id(347, 0)
            })
        );
        // Reading on from the same id, the 52 left bring the count to 310.
        assert_eq!(
            next,
            Cursor {
                last: id(100, 0),
                added: 258
            }
        );
    }

    #[test]
    fn a_stream_made_anew_counts_its_own() {
        let c = Cursor {
            last: id(100, 0),
            added: 500,
        };
        let info = Info {
            length: 40,
            added: 60,
            last_generated: id(9000, 0),
            max_deleted: id(8000, 0),
            first: Some(id(8001, 0)),
        };
        assert_eq!(compare(c, &info).1.map(|m| m.count), Some(20));
        // All there: nothing missed, the count follows the new stream.
        let all = Info { length: 60, ..info };
        assert_eq!(
            compare(c, &all),
            (
                Cursor {
                    last: id(100, 0),
                    added: 0
                },
                None
            )
        );
    }

    #[test]
    fn answers_of_the_wrong_shape_are_none_not_a_panic() {
        assert_eq!(parse_read(&Value::Nil), Some(Vec::new()));
        assert_eq!(parse_read(&Value::Int(3)), None);
        assert_eq!(parse_read(&Value::Array(vec![Value::Int(1)])), None);
        let good = Value::Array(vec![Value::Array(vec![
            Value::BulkString(STREAM.into()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"17-2".to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"data".to_vec()),
                    Value::BulkString(vec![0xc1]),
                ]),
            ])]),
        ])]);
        assert_eq!(
            parse_read(&good),
            Some(vec![Entry {
                id: id(17, 2),
                data: Some(vec![0xc1])
            }])
        );
        assert_eq!(parse_info(&Value::Array(vec![Value::Int(1)])), None);
        assert_eq!(EntryId::parse("x-1"), None);
        assert_eq!(EntryId::parse("5-1"), Some(id(5, 1)));
    }

    #[test]
    fn services_and_scopes_as_bec_names_them() {
        // SciLog with its default; Signal's `oncall` (no default); a webhook `teams`;
        // BEC's `scilog` and `signal` mapped, `teams` not.
        let c = Served::default()
            .map("scilog", Service::Scilog)
            .map("signal", Service::Signal)
            .scopes_of(Service::Scilog, &["default"], Some("default"))
            .scopes_of(Service::Signal, &["oncall"], None)
            .scopes_of(Service::Webhook, &["teams"], None);
        let shown = |service: &str, scopes: &[&str]| -> Vec<String> {
            let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
            destinations(&c, service, &scopes)
                .into_iter()
                .map(|d| match d {
                    Ok(d) => d.to_string(),
                    Err(r) => format!("refused {} {:?}", r.service, r.scope),
                })
                .collect()
        };
        assert_eq!(shown("scilog", &[]), ["scilog:default"]);
        assert_eq!(shown("signal", &["079 123 45 67"]), ["signal:+41791234567"]);
        assert_eq!(
            shown("signal", &["oncall", "nope", "+41791234567", "0791234567"]),
            [
                "signal:oncall",
                "refused signal Some(\"nope\")",
                "signal:+41791234567"
            ]
        );
        // Without a default scope of ours, nothing named is refused.
        assert_eq!(shown("signal", &[]), ["refused signal None"]);
        // teams is not mapped here.
        assert_eq!(
            shown("teams", &["teams"]),
            ["refused teams Some(\"teams\")"]
        );
    }
}
