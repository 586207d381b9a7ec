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
use crate::watcher::identity::FileId;

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
    #[error("state database {}: {source}", path.display())]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

/// Where one file was read to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub id: FileId,
    /// The first bytes of the file (up to [`crate::watcher::follow::FINGERPRINT_LEN`]).
    pub fingerprint: Vec<u8>,
    pub path: PathBuf,
    /// The offset just after the last line whose events are stored.
    pub offset: u64,
}

/// One queued delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event: Event,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
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
        let mut store = Store { conn, path };
        store.migrate(version)?;
        Ok(store)
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
            tracing::info!(db = %self.path.display(), version = i + 1, "state database migrated");
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

    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT device, inode, created, fingerprint, path, offset FROM files")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Checkpoint {
                    id: FileId {
                        device: r.get::<_, i64>(0)? as u64,
                        index: r.get::<_, i64>(1)? as u64,
                        created: r.get::<_, i64>(2)? as u64,
                    },
                    fingerprint: r.get(3)?,
                    path: PathBuf::from(r.get::<_, String>(4)?),
                    offset: r.get::<_, i64>(5)? as u64,
                })
            })
            .map_err(self.sql())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.sql())
    }

    /// Stores `events` with one outbox row per destination, and moves the checkpoint,
    /// all in one transaction.
    pub fn commit(
        &mut self,
        checkpoint: Option<&Checkpoint>,
        forget: Option<&FileId>,
        events: &[(Event, Vec<Destination>)],
    ) -> Result<(), StoreError> {
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
                    "INSERT INTO events (created_at, name, severity, key, body) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(sql)?;
            let mut ins_out = tx
                .prepare_cached(
                    "INSERT INTO outbox (destination, event_id, created_at, next_attempt_at) VALUES (?1, ?2, ?3, ?3)",
                )
                .map_err(sql)?;
            for (event, destinations) in events {
                if destinations.is_empty() {
                    continue;
                }
                let body = serde_json::to_string(event).unwrap_or_default();
                ins_event
                    .execute(params![
                        now,
                        event.name,
                        event.severity.as_str(),
                        event.key,
                        body
                    ])
                    .map_err(sql)?;
                let event_id = tx.last_insert_rowid();
                for d in destinations {
                    ins_out
                        .execute(params![d.to_string(), event_id, now])
                        .map_err(sql)?;
                }
            }
            if let Some(cp) = checkpoint {
                tx.prepare_cached(
                    "INSERT INTO files (device, inode, created, fingerprint, path, offset, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (device, inode) DO UPDATE SET created = ?3, fingerprint = ?4,
                         path = ?5, offset = ?6, updated_at = ?7",
                )
                .map_err(sql)?
                .execute(params![
                    cp.id.device as i64,
                    cp.id.index as i64,
                    cp.id.created as i64,
                    cp.fingerprint,
                    cp.path.to_string_lossy(),
                    cp.offset as i64,
                    now
                ])
                .map_err(sql)?;
            }
            if let Some(id) = forget {
                tx.execute(
                    "DELETE FROM files WHERE device = ?1 AND inode = ?2",
                    params![id.device as i64, id.index as i64],
                )
                .map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    /// The oldest live row for `destination`, if any.
    pub fn next_pending(&self, destination: &str) -> Result<Option<OutboxRow>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT o.id, e.body, o.created_at, o.attempts, o.next_attempt_at
                 FROM outbox o JOIN events e ON e.id = o.event_id
                 WHERE o.destination = ?1 AND o.dead = 0 ORDER BY o.id LIMIT 1",
            )
            .map_err(self.sql())?
            .query_row([destination], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
            .map_err(self.sql())?;
        let Some((id, body, created_at_ms, attempts, next_attempt_at_ms)) = row else {
            return Ok(None);
        };
        match serde_json::from_str::<Event>(&body) {
            Ok(event) => Ok(Some(OutboxRow {
                id,
                event,
                created_at_ms,
                attempts,
                next_attempt_at_ms,
            })),
            Err(e) => {
                // Cannot happen for rows this build wrote; keep the row for inspection.
                self.mark_dead(id, &format!("unreadable event: {e}"))?;
                self.next_pending(destination)
            }
        }
    }

    pub fn delivered(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn retry_later(&self, id: i64, at_ms: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at_ms, error],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn mark_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE outbox SET dead = 1, attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                params![id, error],
            )
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
        let rows = stmt
            .query_map([], |r| {
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
            })
            .map_err(self.sql())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Service;
    use crate::event::{Message, Severity};

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
        let events: Vec<_> = (0..3)
            .map(|i| {
                (
                    Event::message("message", Severity::Info, Message::plain(format!("m{i}"))),
                    vec![d.clone()],
                )
            })
            .collect();
        s.commit(Some(&cp), None, &events).unwrap();
        drop(s);

        let s = Store::open(dir.path()).unwrap();
        assert!(s.has_started_before().unwrap());
        assert_eq!(s.checkpoints().unwrap(), vec![cp.clone()]);
        let key = d.to_string();
        for i in 0..3 {
            let row = s.next_pending(&key).unwrap().unwrap();
            assert_eq!(row.event.message.text(), format!("m{i}"));
            s.delivered(row.id).unwrap();
        }
        assert!(s.next_pending(&key).unwrap().is_none());
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
}
