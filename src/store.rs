//! The SQLite state under `state_dir`: the connection, its pragmas, the schema version
//! and its migrations, and the transactions that the modules above write their tables
//! in.
//!
//! One database holds every table so that one transaction can store what a batch of
//! lines produced — the events, one outbox row per destination, alerts, throttle
//! windows — and advance the file's checkpoint past those lines. A crash before the
//! commit loses nothing (the lines are read again); a crash after it repeats nothing
//! (the checkpoint moved). WAL mode lets the delivery workers read and update the
//! outbox while the pipeline writes.
//!
//! The store knows no table but its own `meta`: each module owns its tables' SQL (the
//! watcher its checkpoints, the outbox its rows, `alerts`, `routing` the throttle
//! windows, the inbox, Telegram its ledger, the BEC bridge its stream cursor) and is
//! handed a [`Tx`] or a connection to run it. That keeps the store at the bottom: it
//! imports nothing of the crate's but the folder checks, so every module may use it.
//! The schema history stays here in one ordered list, because a database must be
//! brought up one version at a time whoever owns the table.
//!
//! A database from a newer protowatch, or one that is not a database at all, is refused
//! at start with a message saying so: never silently recreated, which would lose the
//! outbox and re-read every file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

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
    // 12: on call. Who acknowledged an alert and when; the escalation policy it follows,
    // the step firings so far and when the next is due (the timer reads the index, so a
    // restart finds what fell due while it was down); when its news was first held back
    // by a silence or maintenance window (sent once when they end). Silences, made and
    // ended by operators, and events held back per hour for the digest. Steps count from
    // `escalation_since`: the alert's creation, or the end of the silence that held it.
    "ALTER TABLE alerts ADD COLUMN acknowledged_at INTEGER;
     ALTER TABLE alerts ADD COLUMN acknowledged_by TEXT;
     ALTER TABLE alerts ADD COLUMN escalation TEXT;
     ALTER TABLE alerts ADD COLUMN escalation_since INTEGER;
     ALTER TABLE alerts ADD COLUMN escalation_fired INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE alerts ADD COLUMN escalation_next INTEGER;
     ALTER TABLE alerts ADD COLUMN held_since INTEGER;
     CREATE INDEX alerts_escalation ON alerts (escalation_next)
         WHERE escalation_next IS NOT NULL AND dismissed_at IS NULL;
     CREATE INDEX alerts_acknowledged ON alerts (key)
         WHERE acknowledged_at IS NOT NULL AND dismissed_at IS NULL;
     CREATE INDEX alerts_held ON alerts (held_since)
         WHERE held_since IS NOT NULL AND dismissed_at IS NULL;
     CREATE TABLE silences (
         id INTEGER PRIMARY KEY,
         matchers TEXT NOT NULL,
         starts_at INTEGER NOT NULL,
         ends_at INTEGER NOT NULL,
         created_by TEXT NOT NULL,
         comment TEXT NOT NULL,
         expired_by TEXT,
         held INTEGER NOT NULL DEFAULT 0
     );
     CREATE TABLE held_hours (
         hour INTEGER PRIMARY KEY,
         count INTEGER NOT NULL
     ) WITHOUT ROWID;",
];

pub const DB_FILE: &str = "protowatch.db";

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

    /// Runs the queries of a module that owns its tables' SQL, with this store's error
    /// context.
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
        self.run(rusqlite::TransactionBehavior::Deferred, f)
    }

    /// Runs `f` in one write transaction (taken at once, so that what it reads stays
    /// true until it commits): for a module's check-then-write.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.run(rusqlite::TransactionBehavior::Immediate, f)
    }

    fn run<T>(
        &mut self,
        behavior: rusqlite::TransactionBehavior,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let sql = |source| StoreError::Sql {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction_with_behavior(behavior).map_err(sql)?;
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
}
#[cfg(test)]
mod tests {
    use super::*;

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
}
