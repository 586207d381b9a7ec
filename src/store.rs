//! The SQLite state under `state_dir`: file checkpoints, events and the outbox, with a
//! schema version and its migrations.
//!
//! One database holds all three so that one transaction can store what a batch of lines
//! produced — the events, one outbox row per destination — and advance the file's
//! checkpoint past those lines. A crash before the commit loses nothing (the lines are
//! read again); a crash after it repeats nothing (the checkpoint moved). WAL mode lets
//! the delivery workers read and update the outbox while the pipeline writes.
//!
//! A database from a newer protowatch, or one that is not a database at all, is refused
//! at start with a message saying so: never silently recreated, which would lose the
//! outbox and re-read every file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::config::Destination;
use crate::event::Event;

/// The schema this build writes. Each entry of [`MIGRATIONS`] moves a database from
/// version `index` to `index + 1`.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const MIGRATIONS: &[&str] = &[
    // 1: checkpoints, events, outbox.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE files (
         device INTEGER NOT NULL,
         inode INTEGER NOT NULL,
         created INTEGER NOT NULL,
         fingerprint BLOB NOT NULL,
         path TEXT NOT NULL,
         offset INTEGER NOT NULL,
         updated_at INTEGER NOT NULL,
         PRIMARY KEY (device, inode)
     );
     CREATE TABLE events (
         id INTEGER PRIMARY KEY,
         created_at INTEGER NOT NULL,
         name TEXT NOT NULL,
         severity TEXT NOT NULL,
         key TEXT NOT NULL,
         body TEXT NOT NULL
     );
     CREATE TABLE outbox (
         id INTEGER PRIMARY KEY,
         destination TEXT NOT NULL,
         event_id INTEGER NOT NULL REFERENCES events(id),
         created_at INTEGER NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0,
         next_attempt_at INTEGER NOT NULL,
         last_error TEXT,
         dead INTEGER NOT NULL DEFAULT 0
     );
     CREATE INDEX outbox_queue ON outbox (destination, dead, id);",
    // 2: alerts, throttle windows, repeat summaries, attachments; events are kept only
    // while a delivery needs them.
    "CREATE TABLE alerts (
         id INTEGER PRIMARY KEY,
         key TEXT NOT NULL UNIQUE,
         event TEXT NOT NULL,
         severity TEXT NOT NULL,
         source TEXT,
         message TEXT NOT NULL,
         details TEXT,
         first_seen INTEGER NOT NULL,
         last_seen INTEGER NOT NULL,
         times_seen INTEGER NOT NULL,
         ttl_s INTEGER,
         dismissed_at INTEGER,
         machine_id TEXT,
         actions TEXT NOT NULL DEFAULT '[]',
         data TEXT NOT NULL DEFAULT '{}'
     );
     CREATE TABLE throttle (
         destination TEXT NOT NULL,
         key TEXT NOT NULL,
         window_start INTEGER NOT NULL,
         suppressed INTEGER NOT NULL,
         first_suppressed INTEGER,
         last_event TEXT,
         PRIMARY KEY (destination, key)
     );
     ALTER TABLE outbox ADD COLUMN repeat_count INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE outbox ADD COLUMN repeat_since INTEGER;
     ALTER TABLE events ADD COLUMN attachments INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX outbox_event ON outbox (event_id);
     DELETE FROM events WHERE id NOT IN (SELECT event_id FROM outbox);",
    // 3: messages handed to a running agent by another process (`send-message`), and
    // what became of their deliveries, for the sender to report.
    "CREATE TABLE inbox (
         id INTEGER PRIMARY KEY,
         created_at INTEGER NOT NULL,
         body TEXT NOT NULL,
         accepted_at INTEGER,
         sent_to INTEGER,
         counted INTEGER
     );
     ALTER TABLE outbox ADD COLUMN request INTEGER;
     CREATE TABLE receipts (
         request INTEGER NOT NULL,
         destination TEXT NOT NULL,
         ok INTEGER NOT NULL,
         error TEXT,
         at INTEGER NOT NULL
     );
     CREATE INDEX receipts_request ON receipts (request);",
    // 4: an alert's repeats may be snoozed (the API's `__snooze` action).
    "ALTER TABLE alerts ADD COLUMN snoozed_until INTEGER;",
    // 5: OnTakt's alert model. `actions` becomes OnTakt's object (label → action; a
    // stored list becomes the object whose labels are the actions), `machine_id` an
    // integer (a stored id that is not one moves to `data.machine_id`, so nothing is
    // lost), and `details` HTML (a protocol alert's traceback escaped into `<pre>`).
    "UPDATE alerts SET actions = (SELECT json_group_object(value, value)
                                  FROM json_each(alerts.actions))
         WHERE json_valid(actions) AND json_type(actions) = 'array';
     UPDATE alerts SET actions = '{}' WHERE NOT json_valid(actions)
         OR json_type(actions) <> 'object';
     UPDATE alerts SET details = '<pre>' || replace(replace(replace(details,
             '&', '&amp;'), '<', '&lt;'), '>', '&gt;') || '</pre>'
         WHERE details IS NOT NULL AND key NOT LIKE 'custom|%';
     ALTER TABLE alerts ADD COLUMN machine INTEGER;
     UPDATE alerts SET machine = CAST(machine_id AS INTEGER)
         WHERE machine_id IS NOT NULL
           AND CAST(CAST(machine_id AS INTEGER) AS TEXT) = trim(machine_id);
     UPDATE alerts SET data = json_set(CASE WHEN json_valid(data)
                                            AND json_type(data) = 'object'
                                       THEN data ELSE '{}' END,
                                       '$.machine_id', machine_id)
         WHERE machine_id IS NOT NULL AND machine IS NULL;
     ALTER TABLE alerts DROP COLUMN machine_id;
     ALTER TABLE alerts RENAME COLUMN machine TO machine_id;",
    // 6: the checkpoint of a file that went away is kept until `forget_at` (ms), so a
    // file that comes back resumes there; NULL for the files followed now.
    "ALTER TABLE files ADD COLUMN forget_at INTEGER;",
    // 7: the console. An alert keeps the protocol file it came from; events are counted
    // per hour and severity for its chart (see `alerts::hours`); its pages of alerts
    // are read in `last_seen` order.
    "ALTER TABLE alerts ADD COLUMN origin TEXT;
     CREATE TABLE event_hours (
         hour INTEGER NOT NULL,
         severity TEXT NOT NULL,
         count INTEGER NOT NULL,
         PRIMARY KEY (hour, severity)
     ) WITHOUT ROWID;
     CREATE INDEX alerts_last_seen ON alerts (last_seen DESC, id DESC);",
    // 8: Telegram both ways. Who dismissed or snoozed an alert (the message edited in
    // place says so), and each alert's messages per chat: what to edit as the alert
    // changes, and the nonce its buttons carry (a press on another message does
    // nothing). The `getUpdates` offset lives in `meta`.
    "ALTER TABLE alerts ADD COLUMN dismissed_by TEXT;
     ALTER TABLE alerts ADD COLUMN snoozed_by TEXT;
     CREATE TABLE telegram_messages (
         chat_id INTEGER NOT NULL,
         message_id INTEGER NOT NULL,
         alert_id INTEGER NOT NULL,
         nonce TEXT NOT NULL,
         open INTEGER NOT NULL DEFAULT 1,
         shown TEXT NOT NULL DEFAULT '',
         sent_at INTEGER NOT NULL,
         edited_at INTEGER NOT NULL,
         PRIMARY KEY (chat_id, message_id)
     );
     CREATE INDEX telegram_messages_alert ON telegram_messages (alert_id, open);",
    // 9: the undismissed alerts by themselves, so that counting the active ones (the
    // public `/metrics`) reads those and not the week of dismissed history.
    "CREATE INDEX alerts_open ON alerts (last_seen) WHERE dismissed_at IS NULL;",
    // 10: the console's sessions (see `api::session`), kept so that a restart of the
    // agent does not sign every console out; by the digest of the id, never the id.
    "CREATE TABLE console_sessions (
         id_digest BLOB PRIMARY KEY,
         token_digest BLOB NOT NULL,
         created_ms INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 11: a BEC session's messages sent straight to a service. A request may name its
    // destinations (JSON list of `service:scope`; NULL: routed by its event's name), and
    // the BEC stream reader keeps how far it read (`bec::stream`), written in the
    // transaction of the requests an entry made.
    "ALTER TABLE inbox ADD COLUMN destinations TEXT;
     CREATE TABLE bec_stream (
         stream TEXT PRIMARY KEY,
         last_id TEXT NOT NULL,
         added INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
     ) WITHOUT ROWID;",
];

/// An outbox row as `outbox_rows` and `dead_rows` select it, with its event's name and key.
fn outbox_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxEntry> {
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

/// Inbox rows and receipts are kept this long after their message was taken, for a
/// sender that polls late.
const KEEP_RECEIPTS_MS: i64 = 24 * 3600 * 1000;

pub const DB_FILE: &str = "protowatch.db";

/// A message handed in ([`Store::submit`]) and not yet taken by the pipeline.
#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    pub event: Event,
    /// The destinations its sender named; `None`: routed by the event's name.
    pub to: Option<Vec<Destination>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} was written by a newer protowatch (schema version {found}; this one knows up to {SCHEMA_VERSION}); \
         run the newer version, or move the state folder away to start afresh",
        path.display()
    )]
    Newer { path: PathBuf, found: i64 },
    #[error(
        "{} is not a usable protowatch database ({detail}); move it away to start afresh \
         (files will then be read again from their checkpoints' start)",
        path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "another protowatch agent is running with the state folder {} (it holds {}); \
         stop it first, or give this config its own state_dir",
        path.display(), LOCK_FILE
    )]
    Locked { path: PathBuf },
    /// The state folder is someone else's, or anyone's (see `private::check_trusted`).
    #[error("the state folder cannot be trusted: {0}")]
    Untrusted(String),
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// The file a running agent keeps locked in its state folder.
pub const LOCK_FILE: &str = "agent.lock";

/// Held by the running agent: one agent per state folder (two would read every file
/// twice), and how `send-message` knows to hand its message to the agent.
pub struct AgentLock {
    _file: std::fs::File,
}

impl AgentLock {
    pub fn acquire(state_dir: &Path) -> Result<AgentLock, StoreError> {
        crate::private::check_trusted(state_dir).map_err(StoreError::Untrusted)?;
        let fresh = !state_dir.exists();
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Folder {
            path: state_dir.to_path_buf(),
            source,
        })?;
        if fresh {
            // Private before anything is put in it.
            crate::private::secure_dir(state_dir);
        }
        let path = state_dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| StoreError::Lock {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(AgentLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
                path: state_dir.to_path_buf(),
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Lock { path, source }),
        }
    }

    /// Whether an agent holds the lock of `state_dir` now. A folder this user may not
    /// look into is an error, not "no agent": a command must not go around an agent
    /// that it cannot see.
    pub fn is_held(state_dir: &Path) -> std::io::Result<bool> {
        let file = match std::fs::File::open(state_dir.join(LOCK_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        Ok(matches!(
            file.try_lock(),
            Err(std::fs::TryLockError::WouldBlock)
        ))
    }
}

/// One queued delivery as a worker reads it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: i64,
    /// The whole event; only for the rows a message shows (see [`Store::batch`]).
    pub event: Option<Event>,
    pub event_name: String,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    /// A repeat summary: the event happened this many more times since `repeat_since`.
    pub repeat: Option<Repeat>,
    pub has_attachments: bool,
    /// The inbox request this delivery answers, if another process is waiting for it.
    pub request: Option<i64>,
}

/// Repeats of one alert that throttling counted instead of sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub count: u64,
    pub since_ms: i64,
}

/// What one commit stores: a batch of lines' worth of deliveries, alert updates and
/// throttle state, with the file's new checkpoint.
#[derive(Default)]
pub struct Batch<'a> {
    pub checkpoint: Option<&'a crate::watcher::checkpoints::Checkpoint>,
    /// The file of `checkpoint` was let go: its checkpoint is kept until then (ms since
    /// the epoch) to know the file again, then forgotten.
    pub keep_until_ms: Option<i64>,
    pub forget: Option<&'a crate::watcher::identity::FileId>,
    pub deliveries: Vec<Delivery>,
    pub alerts: Vec<crate::alerts::Seen>,
    pub throttle: Vec<crate::routing::throttle::Change>,
    /// Inbox requests taken in this batch: id, destinations sent to now, destinations
    /// where it was counted as a repeat.
    pub accepted: Vec<(i64, u32, u32)>,
}

/// One event to send to some destinations.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    pub to: Vec<Destination>,
    pub repeat: Option<Repeat>,
    /// The inbox request it came from.
    pub request: Option<i64>,
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

/// How an attempt at a batch of rows ended.
pub enum Outcome<'a> {
    Delivered,
    Retry { at_ms: i64, error: &'a str },
    Dead { error: &'a str },
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

/// A write transaction of the store, handed to the module that owns a table so that it
/// writes its rows into a commit the pipeline assembles (see [`Store::write`]).
pub type Tx<'c> = rusqlite::Transaction<'c>;

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A connection to the state database. Each component that writes opens its own.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `state_dir/protowatch.db` and brings it to
    /// [`SCHEMA_VERSION`].
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Folder {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let corrupt = |e: rusqlite::Error| StoreError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        };
        let conn = Connection::open(&path).map_err(corrupt)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(corrupt)?;
        // The first real read: a file that is not SQLite fails here.
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Newer {
                path,
                found: version,
            });
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path,
                detail: check,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(corrupt)?;
        // In WAL mode NORMAL survives a process crash; a power cut may lose the last
        // commits, and then checkpoints and outbox roll back together (lines re-read).
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(corrupt)?;
        // Deleted content is overwritten, not left in free pages: a delivered file, a
        // queued message, a session's digest leave the database file when they leave
        // its tables.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(corrupt)?;
        let mut store = Store { conn, path };
        store.migrate(version)?;
        Ok(store)
    }

    /// Narrows the state folder and the database files to the agent's user (and the
    /// group `protowatch`): they hold queued messages and their files.
    pub fn make_private(&self) {
        if let Some(dir) = self.path.parent() {
            crate::private::secure_dir(dir);
        }
        let name = self.path.as_os_str().to_owned();
        for suffix in ["", "-wal", "-shm"] {
            let mut f = name.clone();
            f.push(suffix);
            let f = PathBuf::from(f);
            if f.exists()
                && let Err(e) = crate::private::secure_file(&f)
            {
                tracing::warn!(path = %f.display(), error = %e, "cannot restrict the permissions of the state database");
            }
        }
    }

    fn sql(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sql {
            path: self.path.clone(),
            source,
        }
    }

    fn migrate(&mut self, from: i64) -> Result<(), StoreError> {
        for (i, step) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let path = self.path.clone();
            let sql = |source| StoreError::Sql {
                path: path.clone(),
                source,
            };
            let tx = self.conn.transaction().map_err(sql)?;
            tx.execute_batch(step).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        // One line for what happened, not one per step.
        if from == 0 {
            tracing::info!(db = %self.path.display(), schema = SCHEMA_VERSION, "created the state database");
        } else if from < SCHEMA_VERSION {
            tracing::info!(db = %self.path.display(), from, to = SCHEMA_VERSION, "state database migrated");
        }
        Ok(())
    }

    /// Whether the agent has started with this state before (`start: end` skips the
    /// history of existing files only at the very first start).
    pub fn has_started_before(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'started'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        Ok(v.is_some())
    }

    pub fn mark_started(&self) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('started', ?1)",
                [chrono::Utc::now().to_rfc3339()],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Stores a batch — events with one outbox row per destination, alert updates,
    /// throttle state — and moves the checkpoint, all in one transaction.
    pub fn commit(&mut self, batch: &Batch<'_>) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let now = now_ms();
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut ins_event = tx
                .prepare_cached(
                    "INSERT INTO events (created_at, name, severity, key, body, attachments)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            let mut ins_out = tx
                .prepare_cached(
                    "INSERT INTO outbox (destination, event_id, created_at, next_attempt_at, repeat_count,
                                         repeat_since, request)
                     VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6)",
                )
                .map_err(sql)?;
            for d in &batch.deliveries {
                if d.to.is_empty() {
                    continue;
                }
                let event = &d.event;
                let body = serde_json::to_string(event).unwrap_or_default();
                ins_event
                    .execute(params![
                        now,
                        event.name,
                        event.severity.as_str(),
                        event.key,
                        body,
                        !event.message.attachments.is_empty()
                    ])
                    .map_err(sql)?;
                let event_id = tx.last_insert_rowid();
                let (count, since) = d
                    .repeat
                    .map_or((0, None), |r| (r.count as i64, Some(r.since_ms)));
                for to in &d.to {
                    ins_out
                        .execute(params![
                            to.to_string(),
                            event_id,
                            now,
                            count,
                            since,
                            d.request
                        ])
                        .map_err(sql)?;
                }
            }
            crate::alerts::record(&tx, &batch.alerts).map_err(sql)?;
            for (id, sent_to, counted) in &batch.accepted {
                // The files now travel with the event's deliveries; the request keeps
                // only what its sender may ask about.
                tx.execute(
                    "UPDATE inbox SET accepted_at = ?2, sent_to = ?3, counted = ?4,
                         body = json_remove(body, '$.message.attachments') WHERE id = ?1",
                    params![id, now, sent_to, counted],
                )
                .map_err(sql)?;
            }
            crate::routing::throttle::save(&tx, &batch.throttle).map_err(sql)?;
            if let Some(cp) = batch.checkpoint {
                crate::watcher::checkpoints::save(&tx, cp, batch.keep_until_ms, now)
                    .map_err(sql)?;
            }
            if let Some(id) = batch.forget {
                crate::watcher::checkpoints::forget(&tx, id).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The oldest live rows for `destination`, in order: at most `max_rows`, the first
    /// `shown` of them with their whole event. A row with attachments is sent alone
    /// (its files are the point of it), so the batch ends before one, or is just it.
    pub fn batch(
        &self,
        destination: &str,
        max_rows: usize,
        shown: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.event_id, e.name, o.created_at, o.attempts, o.next_attempt_at,
                        o.repeat_count, o.repeat_since, e.attachments, e.body, o.request
                 FROM outbox o JOIN events e ON e.id = o.event_id
                 WHERE o.destination = ?1 AND o.dead = 0 ORDER BY o.id LIMIT ?2",
            )
            .map_err(self.sql())?;
        let mut rows = stmt
            .query(params![destination, max_rows as i64])
            .map_err(self.sql())?;
        let mut out: Vec<OutboxRow> = Vec::new();
        let mut unreadable = Vec::new();
        while let Some(r) = rows.next().map_err(self.sql())? {
            let has_attachments = r.get::<_, i64>(8).map_err(self.sql())? != 0;
            if has_attachments && !out.is_empty() {
                break;
            }
            let id: i64 = r.get(0).map_err(self.sql())?;
            let event = if out.len() < shown {
                let body: String = r.get(9).map_err(self.sql())?;
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
            let count: i64 = r.get(6).map_err(self.sql())?;
            let since: Option<i64> = r.get(7).map_err(self.sql())?;
            out.push(OutboxRow {
                id,
                event,
                event_id: r.get(1).map_err(self.sql())?,
                event_name: r.get(2).map_err(self.sql())?,
                created_at_ms: r.get(3).map_err(self.sql())?,
                attempts: r.get(4).map_err(self.sql())?,
                next_attempt_at_ms: r.get(5).map_err(self.sql())?,
                repeat: since.filter(|_| count > 0).map(|since_ms| Repeat {
                    count: count as u64,
                    since_ms,
                }),
                has_attachments,
                request: r.get(10).map_err(self.sql())?,
            });
            if has_attachments {
                break;
            }
        }
        drop(rows);
        drop(stmt);
        for (id, error) in unreadable {
            self.conn
                .execute(
                    "UPDATE outbox SET dead = 1, last_error = ?2 WHERE id = ?1",
                    params![id, error],
                )
                .map_err(self.sql())?;
        }
        Ok(out)
    }

    /// Records how an attempt at `rows` ended, for all of them in one transaction. A
    /// delivered row is deleted, and its event with it once no other row needs it.
    pub fn finish(
        &mut self,
        destination: &str,
        rows: &[OutboxRow],
        outcome: Outcome<'_>,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let with_files = rows.iter().any(|r| r.has_attachments);
        let tx = self.conn.transaction().map_err(sql)?;
        {
            match outcome {
                Outcome::Delivered => {
                    let mut del = tx
                        .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                        .map_err(sql)?;
                    let mut gc = tx
                        .prepare_cached(
                            "DELETE FROM events WHERE id = ?1
                             AND NOT EXISTS (SELECT 1 FROM outbox WHERE event_id = ?1)",
                        )
                        .map_err(sql)?;
                    for r in rows {
                        del.execute([r.id]).map_err(sql)?;
                        gc.execute([r.event_id]).map_err(sql)?;
                    }
                    receipts(&tx, destination, rows, None).map_err(sql)?;
                }
                Outcome::Retry { at_ms, error } => {
                    let mut up = tx
                        .prepare_cached(
                            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                             last_error = ?3 WHERE id = ?1",
                        )
                        .map_err(sql)?;
                    for r in rows {
                        up.execute(params![r.id, at_ms, error]).map_err(sql)?;
                    }
                }
                Outcome::Dead { error } => {
                    let mut up = tx
                        .prepare_cached(
                            "UPDATE outbox SET dead = 1, attempts = attempts + 1, last_error = ?2
                             WHERE id = ?1",
                        )
                        .map_err(sql)?;
                    for r in rows {
                        up.execute(params![r.id, error]).map_err(sql)?;
                    }
                    receipts(&tx, destination, rows, Some(error)).map_err(sql)?;
                }
            }
            // A file leaves the database once no delivery will send it any more: the
            // event of a delivered row is gone above; one that only dead rows keep
            // (for `outbox list --dead` and a retry) keeps its text, not its files.
            if !matches!(outcome, Outcome::Retry { .. }) {
                let mut strip = tx
                    .prepare_cached(
                        "UPDATE events SET body = json_remove(body, '$.message.attachments'),
                             attachments = 0
                         WHERE id = ?1 AND attachments <> 0
                           AND NOT EXISTS (SELECT 1 FROM outbox WHERE event_id = ?1 AND dead = 0)",
                    )
                    .map_err(sql)?;
                for r in rows {
                    strip.execute([r.event_id]).map_err(sql)?;
                }
            }
        }
        tx.commit().map_err(sql)?;
        if with_files {
            // The WAL still holds the pages as they were, files and all, until they are
            // copied back: done now, and the WAL emptied, so that a delivered file is
            // in neither. Best effort: a reader that holds an old snapshot lets it wait
            // for the next checkpoint.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(())
    }

    /// Runs queries of a module that owns its tables' SQL (alerts), with this store's
    /// error context.
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        f(&self.conn).map_err(self.sql())
    }

    /// Runs `f` in one write transaction that takes the write lock at its first write:
    /// how the pipeline commits a batch from the parts each module writes, and how the
    /// outbox records a delivery's end. Nothing it reads must stay true until the
    /// commit, so it waits for no other writer before it starts.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        let out = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// Runs `f` in one write transaction (taken at once, so that what it reads stays
    /// true until it commits): for a module's check-then-write.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(sql)?;
        let out = f(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }

    /// Whether another connection (another process: `protowatch outbox retry`,
    /// `send-message`) committed since the last call.
    pub fn changed_elsewhere(&self, last: &mut i64) -> Result<bool, StoreError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(self.sql())?;
        let changed = v != *last;
        *last = v;
        Ok(changed)
    }

    /// Hands a message to the running agent; returns the request id to follow it by.
    /// `to`: the destinations its sender named (a BEC session's `send()`); `None`: it is
    /// routed by its event's name, as every other event.
    pub fn submit(&self, event: &Event, to: Option<&[Destination]>) -> Result<i64, StoreError> {
        let body = serde_json::to_string(event).unwrap_or_default();
        let to = to.map(|to| {
            serde_json::to_string(&to.iter().map(|d| d.to_string()).collect::<Vec<_>>())
                .unwrap_or_default()
        });
        self.conn
            .execute(
                "INSERT INTO inbox (created_at, body, destinations) VALUES (?1, ?2, ?3)",
                params![now_ms(), body, to],
            )
            .map_err(self.sql())?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Messages handed in and not yet taken, oldest first: as many as fit in
    /// `max_bytes` of their stored form, and always at least one. The pipeline takes the
    /// inbox a bounded piece at a time, because a message carries its files: a queue of
    /// hundreds of large `/api/notify` messages read whole held gigabytes at once.
    pub fn inbox(&self, max_bytes: usize) -> Result<Vec<Request>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, body, destinations FROM inbox WHERE accepted_at IS NULL ORDER BY id",
            )
            .map_err(self.sql())?;
        let mut rows = stmt.query([]).map_err(self.sql())?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next().map_err(self.sql())? {
            let id: i64 = row.get(0).map_err(self.sql())?;
            // Measured before it is read: a message that would overrun the piece waits
            // for the next one, unless it is the first.
            let len = row
                .get_ref(1)
                .map_err(self.sql())?
                .as_bytes()
                .map_or(0, <[u8]>::len);
            if !out.is_empty() && bytes + len > max_bytes {
                break;
            }
            let to: Option<String> = row.get(2).map_err(self.sql())?;
            let to = match to.as_deref().map(serde_json::from_str::<Vec<String>>) {
                None => None,
                Some(Ok(list)) => Some(list.iter().filter_map(|d| Destination::parse(d)).collect()),
                Some(Err(e)) => {
                    tracing::error!(request = id, error = %e, "unreadable destinations in the inbox; skipped");
                    continue;
                }
            };
            let body: String = row.get(1).map_err(self.sql())?;
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
    }

    /// The destinations that have rows still to be sent: a worker is needed for each,
    /// also for one no route names any more (a BEC session's direct recipient).
    pub fn pending_destinations(&self) -> Result<Vec<Destination>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT destination FROM outbox WHERE dead = 0")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        Ok(rows.iter().filter_map(|d| Destination::parse(d)).collect())
    }

    /// What became of a message handed in with [`Store::submit`].
    pub fn request_status(&self, id: i64) -> Result<RequestStatus, StoreError> {
        let head: Option<(Option<i64>, Option<i64>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT accepted_at, sent_to, counted FROM inbox WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.sql())?;
        let Some((accepted_at, sent_to, counted)) = head else {
            return Ok(RequestStatus::default());
        };
        let mut status = RequestStatus {
            accepted: accepted_at.is_some(),
            sent_to: sent_to.unwrap_or(0) as u32,
            counted: counted.unwrap_or(0) as u32,
            ..RequestStatus::default()
        };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT destination, ok, error FROM receipts WHERE request = ?1")
            .map_err(self.sql())?;
        status.receipts = stmt
            .query_map([id], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?))
            })
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT destination, last_error FROM outbox WHERE request = ?1 AND dead = 0",
            )
            .map_err(self.sql())?;
        status.queued = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        Ok(status)
    }

    /// Forgets inbox requests and receipts nobody will ask about any more.
    pub fn purge_requests(&self, now_ms: i64) -> Result<(), StoreError> {
        let cutoff = now_ms - KEEP_RECEIPTS_MS;
        self.conn
            .execute("DELETE FROM inbox WHERE accepted_at < ?1", [cutoff])
            .map_err(self.sql())?;
        self.conn
            .execute("DELETE FROM receipts WHERE at < ?1", [cutoff])
            .map_err(self.sql())?;
        Ok(())
    }

    /// Every row, oldest first, for `protowatch outbox list`.
    pub fn outbox_rows(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT o.id, o.destination, e.name, e.key, o.created_at, o.attempts,
                        o.next_attempt_at, o.last_error, o.dead
                 FROM outbox o JOIN events e ON e.id = o.event_id ORDER BY o.id",
            )
            .map_err(self.sql())?;
        let rows = stmt.query_map([], outbox_entry).map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// The latest dead rows, newest first, at most `limit`: what the console lists
    /// with a Retry button.
    pub fn dead_rows(&self, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT o.id, o.destination, e.name, e.key, o.created_at, o.attempts,
                        o.next_attempt_at, o.last_error, o.dead
                 FROM outbox o JOIN events e ON e.id = o.event_id
                 WHERE o.dead = 1 ORDER BY o.id DESC LIMIT ?1",
            )
            .map_err(self.sql())?;
        let rows = stmt.query_map([limit], outbox_entry).map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Makes a dead row live again, due now. `false`: no dead row with that id.
    pub fn revive(&self, id: i64) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE outbox SET dead = 0, next_attempt_at = ?2, created_at = ?2 WHERE id = ?1 AND dead = 1",
                params![id, now_ms()],
            )
            .map_err(self.sql())?;
        Ok(n == 1)
    }

    /// Live rows per destination with the oldest one's creation time.
    pub fn outbox_depth(&self) -> Result<Vec<(String, u64, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT destination, COUNT(*), MIN(created_at) FROM outbox WHERE dead = 0
                 GROUP BY destination ORDER BY destination",
            )
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
            })
            .map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    pub fn dead_count(&self) -> Result<u64, StoreError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM outbox WHERE dead = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(self.sql())
    }

    /// Live rows per destination, for status and tests.
    pub fn pending_count(&self, destination: &str) -> Result<u64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE destination = ?1 AND dead = 0",
                [destination],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(self.sql())
    }
}

/// Records the end of deliveries that a sender is waiting for.
fn receipts(
    tx: &rusqlite::Transaction<'_>,
    destination: &str,
    rows: &[OutboxRow],
    error: Option<&str>,
) -> rusqlite::Result<()> {
    let now = now_ms();
    for r in rows {
        if let Some(request) = r.request {
            tx.prepare_cached(
                "INSERT INTO receipts (request, destination, ok, error, at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![request, destination, error.is_none(), error, now])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Service;
    use crate::event::{Message, Severity};
    use crate::watcher::checkpoints::Checkpoint;
    use crate::watcher::identity::FileId;

    #[test]
    fn commit_and_drain_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert!(!s.has_started_before().unwrap());
        s.mark_started().unwrap();
        let d = Destination {
            service: Service::Mail,
            scope: "default".into(),
        };
        let cp = Checkpoint {
            id: FileId {
                device: 1,
                index: 2,
                created: 3,
            },
            fingerprint: b"head".to_vec(),
            path: "/p/a.log".into(),
            offset: 42,
        };
        let deliveries: Vec<_> = (0..5)
            .map(|i| Delivery {
                event: Event::message("message", Severity::Info, Message::plain(format!("m{i}"))),
                to: vec![d.clone()],
                request: None,
                repeat: (i == 4).then_some(Repeat {
                    count: 7,
                    since_ms: 1,
                }),
            })
            .collect();
        s.commit(&Batch {
            checkpoint: Some(&cp),
            deliveries,
            ..Batch::default()
        })
        .unwrap();
        drop(s);

        let mut s = Store::open(dir.path()).unwrap();
        assert!(s.has_started_before().unwrap());
        assert_eq!(
            crate::watcher::checkpoints::followed(&s).unwrap(),
            vec![cp.clone()]
        );
        let key = d.to_string();
        // Two shown in full, the rest by name only; in order.
        let rows = s.batch(&key, 3, 2).unwrap();
        let texts: Vec<_> = rows
            .iter()
            .map(|r| r.event.as_ref().map(|e| e.message.text()))
            .collect();
        assert_eq!(texts, vec![Some("m0".into()), Some("m1".into()), None]);
        s.finish(&key, &rows, Outcome::Delivered).unwrap();
        let rows = s.batch(&key, 10, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].repeat.map(|r| r.count), Some(7));
        s.finish(
            &key,
            &rows,
            Outcome::Retry {
                at_ms: 5,
                error: "x",
            },
        )
        .unwrap();
        let rows = s.batch(&key, 10, 10).unwrap();
        assert_eq!((rows[0].attempts, rows[0].next_attempt_at_ms), (1, 5));
        s.finish(&key, &rows, Outcome::Delivered).unwrap();
        assert!(s.batch(&key, 10, 10).unwrap().is_empty());
        // Delivered rows take their events with them.
        let left: i64 = s
            .with_conn(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(left, 0);
    }

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
        let deliveries = ["a", "b", "plot", "c"]
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
        s.commit(&Batch {
            deliveries,
            ..Batch::default()
        })
        .unwrap();
        let key = d.to_string();
        let sizes: Vec<usize> = (0..3)
            .map(|_| {
                let rows = s.batch(&key, 100, 100).unwrap();
                s.finish(&key, &rows, Outcome::Delivered).unwrap();
                rows.len()
            })
            .collect();
        assert_eq!(sizes, vec![2, 1, 1]);
    }

    #[test]
    fn refuses_newer_and_corrupt_databases() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("newer protowatch") && e.contains("99"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![b'x'; 8192]).unwrap();
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("not a usable protowatch database"), "{e}");
    }

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
        let first = s.submit(&big(0), None).unwrap();
        s.conn
            .execute(
                "INSERT INTO inbox (created_at, body) VALUES (0, 'not json')",
                [],
            )
            .unwrap();
        for i in 1..5 {
            s.submit(&big(i), None).unwrap();
        }
        // Less than one message: still one.
        let one = s.inbox(10).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, first);
        // Room for two and a half: two, the unreadable row skipped between them.
        let each: i64 = s
            .conn
            .query_row(
                "SELECT length(body) FROM inbox WHERE id = ?1",
                [first],
                |r| r.get(0),
            )
            .unwrap();
        let two = s.inbox(each as usize * 5 / 2).unwrap();
        assert_eq!(two.len(), 2);
        assert!(two[1].id > first + 1);
        assert_eq!(s.inbox(usize::MAX).unwrap().len(), 5);
    }
}
