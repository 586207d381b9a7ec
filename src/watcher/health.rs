//! What each `watch` entry cannot see or keep up with right now, for `/healthz`.
//!
//! A folder away, unreadable or out of file descriptors is not an error that stops
//! anything: the watcher keeps its files' checkpoints and waits. That is right for the
//! data and invisible to the operator, so each watcher thread publishes what it cannot
//! see and since when to a [`WatchHealth`] registry, and the API shows it. The agent
//! makes the one registry and hands it to the watcher and to the API: nothing global,
//! so a watcher made alone (a test) has its own. One map behind a mutex, written once
//! per scan and only when something changed.
//!
//! A thread that is stuck cannot say so itself, so it also notes here when a pass
//! starts and ends and which file it is reading ([`WatchHealth::pass_started`],
//! [`WatchHealth::reading`], [`WatchHealth::pass_done`]); whoever asks for the health compares those times with the clock.
//! A pass running for longer than [`PASS_LIMIT`], or one file's read for longer than
//! [`READ_LIMIT`], makes the entry *stalled*, and so does a file that has not been read
//! to its end for [`BEHIND_LIMIT`] (it grows faster than it can be read): `/healthz`
//! says "degraded" and names the entry and the file.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::WatchId;

/// One `watch` entry's view.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EntryHealth {
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
    /// Files not read to their end at the end of the last pass: each file is read at
    /// most [`READ_BUDGET_BYTES`](super::READ_BUDGET_BYTES) per pass, so that one huge,
    /// sparse or endless file cannot hold back the others.
    pub behind: Vec<Behind>,
    /// Set when the thread seems stuck; filled in by [`WatchHealth::snapshot`], not by the thread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stalled: Option<Stalled>,
}

/// A file that was left with more to read at the end of a pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behind {
    pub path: String,
    /// Since when (seconds since the epoch) it has not been read to its end.
    pub since: u64,
    /// Bytes left by the length the file had at its last read (0 where the length says
    /// nothing, as for files of `/proc`).
    pub unread_bytes: u64,
}

/// Why an entry counts as stuck.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stalled {
    /// What is wrong, in words.
    pub reason: String,
    /// The file concerned, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Since when (seconds since the epoch).
    pub since: u64,
}

/// A pass (the glob expanded, each file read in its turn) that has not ended after this
/// long means the thread is stuck: a share that does not answer, a read that waits.
pub const PASS_LIMIT: Duration = Duration::from_secs(30);
/// One file's turn takes a quarter of a second at most by design
/// ([`READ_BUDGET_TIME`](super::READ_BUDGET_TIME), checked between batches); one that
/// lasts this long is a read that does not return.
pub const READ_LIMIT: Duration = Duration::from_secs(10);
/// A file still not read to its end after this long is written faster than it can be
/// read (or is endless): its alarms come late, which the operator must see.
pub const BEHIND_LIMIT: Duration = Duration::from_secs(30);

/// What a thread is doing now: since when its pass runs, which file it reads.
#[derive(Debug, Clone, Default)]
struct Activity {
    pass_since: Option<SystemTime>,
    reading: Option<(String, SystemTime)>,
}

/// Why `h` (with the thread's `activity`) counts as stuck at `now`, if it does.
fn stalled(h: &EntryHealth, activity: Option<&Activity>, now: SystemTime) -> Option<Stalled> {
    let age = |t: SystemTime| now.duration_since(t).unwrap_or_default();
    if let Some(a) = activity {
        if let Some((file, since)) = &a.reading
            && age(*since) >= READ_LIMIT
        {
            return Some(Stalled {
                reason: format!(
                    "reading one file has taken more than {} s",
                    READ_LIMIT.as_secs()
                ),
                file: Some(file.clone()),
                since: epoch_s(*since),
            });
        }
        if let Some(since) = a.pass_since
            && age(since) >= PASS_LIMIT
        {
            return Some(Stalled {
                reason: format!("no pass completed for {} s", PASS_LIMIT.as_secs()),
                file: a.reading.as_ref().map(|(f, _)| f.clone()),
                since: epoch_s(since),
            });
        }
    }
    let now_s = epoch_s(now);
    h.behind
        .iter()
        .filter(|b| now_s.saturating_sub(b.since) >= BEHIND_LIMIT.as_secs())
        .min_by_key(|b| b.since)
        .map(|b| Stalled {
            reason: format!(
                "a file not read to its end for {} s: it grows faster than it can be read",
                BEHIND_LIMIT.as_secs()
            ),
            file: Some(b.path.clone()),
            since: b.since,
        })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unseen {
    /// A folder (or file) that could not be listed or looked at.
    pub path: String,
    pub error: String,
    /// Seconds since the epoch.
    pub since: u64,
    /// For a folder that does not exist and never did (a typo in the path): "not
    /// watching anything under …: it does not exist".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub never_there: Option<String>,
    /// The same with the nearest existing folder and what it holds, for the console
    /// only: `/healthz` is open to every user of this PC, and those names were read with
    /// the agent's rights.
    #[serde(skip)]
    pub never_there_nearby: Option<String>,
}

/// Every entry's view and what its thread is doing: shared by the watcher threads that
/// write it and the API that reads it (cheap to clone).
#[derive(Debug, Clone, Default)]
pub struct WatchHealth(Arc<Registry>);

#[derive(Debug, Default)]
struct Registry {
    health: Mutex<BTreeMap<WatchId, EntryHealth>>,
    activity: Mutex<BTreeMap<WatchId, Activity>>,
}

impl WatchHealth {
    fn activity(&self, watch: WatchId, f: impl FnOnce(&mut Activity)) {
        let mut a = self.0.activity.lock().unwrap_or_else(|p| p.into_inner());
        f(a.entry(watch).or_default());
    }

    /// The entry's thread starts a pass.
    pub fn pass_started(&self, watch: WatchId) {
        self.activity(watch, |a| {
            a.pass_since = Some(SystemTime::now());
            a.reading = None;
        });
    }

    /// The entry's thread reads `file` now (`None`: done with it).
    pub fn reading(&self, watch: WatchId, file: Option<&std::path::Path>) {
        self.activity(watch, |a| {
            a.reading = file.map(|f| (f.display().to_string(), SystemTime::now()));
        });
    }

    /// The entry's thread ended a pass.
    pub fn pass_done(&self, watch: WatchId) {
        self.activity(watch, |a| *a = Activity::default());
    }

    /// Publishes one entry's view (when it changed).
    pub fn set(&self, watch: WatchId, health: EntryHealth) {
        let mut h = self.0.health.lock().unwrap_or_else(|p| p.into_inner());
        if h.get(&watch) != Some(&health) {
            h.insert(watch, health);
        }
    }

    /// The entry's thread ended.
    pub fn remove(&self, watch: WatchId) {
        self.0
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&watch);
        self.0
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&watch);
    }

    /// Every running entry's view, with whether it is stuck now.
    pub fn snapshot(&self) -> Vec<EntryHealth> {
        let now = SystemTime::now();
        let activity = self
            .0
            .activity
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.0
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(watch, h)| {
                let mut h = h.clone();
                h.stalled = stalled(&h, activity.get(watch), now);
                h
            })
            .collect()
    }

    /// What each entry with a folder that was never there says ("not watching anything
    /// under …", with the nearest existing folder's names), for the console's status
    /// line, which only the API token's holder sees.
    pub fn never_there(&self) -> Vec<String> {
        self.0
            .health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|h| h.unseen.iter().filter_map(|u| u.never_there_nearby.clone()))
            .collect()
    }

    /// Whether some entry cannot see all it should, or does not keep up.
    pub fn degraded(&self) -> bool {
        self.snapshot()
            .iter()
            .any(|h| !h.unseen.is_empty() || h.over_max_files || h.stalled.is_some())
    }
}

pub fn epoch_s(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_pass_a_long_read_or_a_file_long_behind_is_stalled() {
        let now = SystemTime::now();
        let ago = |s: u64| now - Duration::from_secs(s);
        let mut h = EntryHealth {
            path: "/p/*.log".into(),
            ..EntryHealth::default()
        };
        let busy = |pass: u64, read: Option<u64>| Activity {
            pass_since: Some(ago(pass)),
            reading: read.map(|r| ("/p/big.log".to_string(), ago(r))),
        };
        assert_eq!(stalled(&h, None, now), None);
        assert_eq!(stalled(&h, Some(&busy(5, Some(1))), now), None);
        let s = stalled(&h, Some(&busy(40, None)), now).map(|s| s.reason);
        assert!(s.is_some_and(|r| r.contains("no pass completed")));
        let s = stalled(&h, Some(&busy(12, Some(11))), now);
        assert_eq!(s.and_then(|s| s.file).as_deref(), Some("/p/big.log"));
        h.behind.push(Behind {
            path: "/p/sparse.log".into(),
            since: epoch_s(ago(5)),
            unread_bytes: 1,
        });
        assert_eq!(stalled(&h, None, now), None);
        h.behind[0].since = epoch_s(ago(31));
        let s = stalled(&h, None, now);
        assert_eq!(s.and_then(|s| s.file).as_deref(), Some("/p/sparse.log"));
    }
}
