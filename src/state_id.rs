//! The state folder's identity: `<state_dir>/state-id`, a random id also stored in the
//! database, so that a database that went missing, was emptied or was swapped is noticed
//! instead of silently replaced.
//!
//! SQLite opens an empty or missing file as a new, empty database. Without this marker an
//! agent whose `protowatch.db` was truncated by a disk tool or replaced by a restore would
//! start fresh: its queued deliveries gone, the lines written while it was down skipped
//! (`start: end`) or everything read again. The marker says "this folder was used": then
//! the database must be there and carry the same id, or the start is refused with what to
//! do (`run --reset-state` to start fresh on purpose). A first start writes both.

use std::path::{Path, PathBuf};

use crate::store::{DB_FILE, Store, StoreError};

/// The marker file in the state folder.
pub const STATE_ID_FILE: &str = "state-id";

const META_KEY: &str = "state_id";

#[derive(Debug, thiserror::Error)]
pub enum StateIdError {
    #[error(
        "the state folder {folder} was used before (it holds {marker}), but its database {db} is {what}: \
         the checkpoints and queued deliveries it held are not there. Restore {db} from a backup, \
         or start fresh on purpose with `protowatch run --reset-state` (queued deliveries are then \
         lost, and files are taken up as at a first start)",
        folder = folder.display(), marker = STATE_ID_FILE, db = db.display()
    )]
    Missing {
        folder: PathBuf,
        db: PathBuf,
        what: &'static str,
    },
    #[error(
        "{db} is not the database of the state folder {folder} (its state-id is {found}, the folder's is {expected}): \
         it was replaced or copied from elsewhere. Put the right database back, or start fresh on purpose \
         with `protowatch run --reset-state`",
        folder = folder.display(), db = db.display(),
        found = found.as_deref().unwrap_or("missing")
    )]
    Different {
        folder: PathBuf,
        db: PathBuf,
        expected: String,
        found: Option<String>,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The marker's id, if the folder has one.
fn read_marker(state_dir: &Path) -> Result<Option<String>, StateIdError> {
    let path = state_dir.join(STATE_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim().to_string()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateIdError::Read { path, source }),
    }
}

/// Writes the marker whole or not at all.
fn write_marker(state_dir: &Path, id: &str) -> Result<(), StateIdError> {
    let path = state_dir.join(STATE_ID_FILE);
    let tmp = state_dir.join(format!("{STATE_ID_FILE}.tmp"));
    let write = |source| StateIdError::Write {
        path: path.clone(),
        source,
    };
    std::fs::write(&tmp, format!("{id}\n")).map_err(write)?;
    std::fs::rename(&tmp, &path).map_err(write)
}

fn new_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

fn db_id(store: &Store) -> Result<Option<String>, StoreError> {
    store.with_conn(|c| {
        use rusqlite::OptionalExtension;
        c.query_row("SELECT value FROM meta WHERE key = ?1", [META_KEY], |r| {
            r.get(0)
        })
        .optional()
    })
}

fn set_db_id(store: &Store, id: &str) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = ?2",
            [META_KEY, id],
        )
        .map(|_| ())
    })
}

/// Checks that `state_dir`'s database is the one this folder has been using, before the
/// agent opens it for good; on a first start (or a folder from before the marker) writes
/// the marker and the id. Call with the agent's lock held.
pub fn check(state_dir: &Path) -> Result<(), StateIdError> {
    let db = state_dir.join(DB_FILE);
    let marker = read_marker(state_dir)?;
    let len = match std::fs::metadata(&db) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(StateIdError::Read { path: db, source }),
    };
    if let Some(expected) = &marker {
        let what = match len {
            None => Some("missing"),
            Some(0) => Some("empty"),
            Some(_) => None,
        };
        if let Some(what) = what {
            return Err(StateIdError::Missing {
                folder: state_dir.to_path_buf(),
                db,
                what,
            });
        }
        let store = Store::open(state_dir)?;
        let found = db_id(&store)?;
        if found.as_deref() != Some(expected.as_str()) {
            return Err(StateIdError::Different {
                folder: state_dir.to_path_buf(),
                db,
                expected: expected.clone(),
                found,
            });
        }
        return Ok(());
    }
    // No marker: a first start, or a folder from a version before it. The database's own
    // id (if the marker alone was lost) or a new one is written to both.
    let store = Store::open(state_dir)?;
    let id = match db_id(&store)? {
        Some(id) => id,
        None => {
            let id = new_id();
            set_db_id(&store, &id)?;
            id
        }
    };
    drop(store);
    write_marker(state_dir, &id)?;
    tracing::info!(folder = %state_dir.display(), "state folder marked with its state-id");
    Ok(())
}

/// `run --reset-state`: moves the database (if any) aside as `protowatch.db.<time>.bak`,
/// and starts a new one with a new id. Nothing is deleted.
pub fn reset(state_dir: &Path) -> Result<(), StateIdError> {
    std::fs::create_dir_all(state_dir).map_err(|source| StateIdError::Write {
        path: state_dir.to_path_buf(),
        source,
    })?;
    let db = state_dir.join(DB_FILE);
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    for suffix in ["", "-wal", "-shm"] {
        let from = state_dir.join(format!("{DB_FILE}{suffix}"));
        if from.exists() {
            let to = state_dir.join(format!("{DB_FILE}.{stamp}.bak{suffix}"));
            std::fs::rename(&from, &to).map_err(|source| StateIdError::Write {
                path: from.clone(),
                source,
            })?;
            if suffix.is_empty() {
                tracing::warn!(from = %from.display(), to = %to.display(), "--reset-state: the old database is kept aside; starting with a new one");
            }
        }
    }
    if !db.exists() {
        let _ = std::fs::remove_file(state_dir.join(STATE_ID_FILE));
    }
    check(state_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_marks_then_a_lost_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        check(state).unwrap();
        let id = read_marker(state).unwrap().unwrap();
        assert_eq!(db_id(&Store::open(state).unwrap()).unwrap(), Some(id));
        check(state).unwrap();

        std::fs::write(state.join(DB_FILE), b"").unwrap();
        let e = check(state).unwrap_err().to_string();
        assert!(e.contains("is empty") && e.contains("--reset-state"), "{e}");
        std::fs::remove_file(state.join(DB_FILE)).unwrap();
        let e = check(state).unwrap_err().to_string();
        assert!(e.contains("is missing"), "{e}");

        // Another state folder's database.
        let other = tempfile::tempdir().unwrap();
        check(other.path()).unwrap();
        std::fs::copy(other.path().join(DB_FILE), state.join(DB_FILE)).unwrap();
        let e = check(state).unwrap_err().to_string();
        assert!(e.contains("not the database of"), "{e}");

        reset(state).unwrap();
        check(state).unwrap();
        let kept = std::fs::read_dir(state)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
            .count();
        assert_eq!(kept, 1);
    }

    #[test]
    fn a_folder_from_before_the_marker_is_adopted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.mark_started().unwrap();
        drop(store);
        check(dir.path()).unwrap();
        assert!(read_marker(dir.path()).unwrap().is_some());
        // The marker alone lost: taken from the database again.
        let id = read_marker(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(STATE_ID_FILE)).unwrap();
        check(dir.path()).unwrap();
        assert_eq!(read_marker(dir.path()).unwrap(), id);
    }
}
