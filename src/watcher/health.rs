//! What each `watch` entry cannot see right now, for `/healthz`.
//!
//! A folder away, unreadable or out of file descriptors is not an error that stops
//! anything: the watcher keeps its files' checkpoints and waits. That is right for the
//! data and invisible to the operator, so each watcher thread publishes here what it
//! cannot see and since when, and the API shows it. One map behind a mutex, written once
//! per scan and only when something changed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use super::WatchId;

/// One `watch` entry's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WatchHealth {
    /// The glob.
    pub path: String,
    /// Files followed now.
    pub files: usize,
    /// Files followed before that cannot be seen now (they keep their checkpoints).
    pub unknown_files: usize,
    /// What cannot be looked at, with why and since when.
    pub unseen: Vec<Unseen>,
    /// The glob matches more files than `max_files`: only that many are followed.
    pub over_max_files: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unseen {
    /// A folder (or file) that could not be listed or looked at.
    pub path: String,
    pub error: String,
    /// Seconds since the epoch.
    pub since: u64,
}

static HEALTH: Mutex<BTreeMap<WatchId, WatchHealth>> = Mutex::new(BTreeMap::new());

/// Publishes one entry's view (when it changed).
pub fn set(watch: WatchId, health: WatchHealth) {
    let mut h = HEALTH.lock().unwrap_or_else(|p| p.into_inner());
    if h.get(&watch) != Some(&health) {
        h.insert(watch, health);
    }
}

/// The entry's thread ended.
pub fn remove(watch: WatchId) {
    HEALTH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&watch);
}

/// Every running entry's view.
pub fn snapshot() -> Vec<WatchHealth> {
    HEALTH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .cloned()
        .collect()
}

/// Whether some entry cannot see all it should.
pub fn degraded() -> bool {
    HEALTH
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .values()
        .any(|h| !h.unseen.is_empty() || h.over_max_files)
}

pub fn epoch_s(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
