//! Where each followed file was read to: the `files` table.
//!
//! The watcher owns these rows because it alone knows what a file is (its
//! [`FileId`]) and where a line ends. The pipeline writes a file's checkpoint with
//! [`save`] inside the transaction that stores what that file's lines produced: a crash
//! before the commit re-reads the lines, one after it repeats nothing (see "Data flow"
//! in docs/ARCHITECTURE.md).

use std::path::PathBuf;

use rusqlite::params;

use crate::store::{Store, StoreError, Tx};
use crate::watcher::identity::FileId;

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

/// A checkpoint from the first six columns of a `files` row, in table order.
fn checkpoint(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
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
}

/// Each followed file's checkpoint with when it last moved (a line was stored), in
/// path order: the console's file list.
pub fn states(store: &Store) -> Result<Vec<(Checkpoint, i64)>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare(
            "SELECT device, inode, created, fingerprint, path, offset, updated_at
             FROM files WHERE forget_at IS NULL ORDER BY path",
        )?;
        let rows = stmt.query_map([], |r| Ok((checkpoint(r)?, r.get(6)?)))?;
        rows.collect()
    })
}

/// The checkpoints of the files followed at the last run.
pub fn followed(store: &Store) -> Result<Vec<Checkpoint>, StoreError> {
    Ok(all(store)?
        .into_iter()
        .filter(|(_, keep)| keep.is_none())
        .map(|(c, _)| c)
        .collect())
}

/// Every checkpoint: the files followed at the last run, and those let go, with
/// until when each of these is kept (ms since the epoch).
pub fn all(store: &Store) -> Result<Vec<(Checkpoint, Option<i64>)>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare(
            "SELECT device, inode, created, fingerprint, path, offset, forget_at FROM files",
        )?;
        let rows = stmt.query_map([], |r| Ok((checkpoint(r)?, r.get::<_, Option<i64>>(6)?)))?;
        rows.collect()
    })
}

/// Forgets the checkpoints of files let go whose keeping time is over.
pub fn purge(store: &Store, now_ms: i64) -> Result<usize, StoreError> {
    store.with_conn(|c| {
        c.execute(
            "DELETE FROM files WHERE forget_at IS NOT NULL AND forget_at < ?1",
            [now_ms],
        )
    })
}

/// Moves a file's checkpoint in the commit of its lines. `keep_until_ms`: the file was
/// let go, and its checkpoint is kept until then to know the file again.
pub fn save(
    tx: &Tx<'_>,
    cp: &Checkpoint,
    keep_until_ms: Option<i64>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO files (device, inode, created, fingerprint, path, offset, updated_at,
                            forget_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (device, inode) DO UPDATE SET created = ?3, fingerprint = ?4,
             path = ?5, offset = ?6, updated_at = ?7, forget_at = ?8",
    )?
    .execute(params![
        cp.id.device as i64,
        cp.id.index as i64,
        cp.id.created as i64,
        cp.fingerprint,
        cp.path.to_string_lossy(),
        cp.offset as i64,
        now_ms,
        keep_until_ms
    ])?;
    Ok(())
}

/// Forgets a file's checkpoint in the commit of its last lines.
pub fn forget(tx: &Tx<'_>, id: &FileId) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM files WHERE device = ?1 AND inode = ?2",
        params![id.device as i64, id.index as i64],
    )?;
    Ok(())
}
