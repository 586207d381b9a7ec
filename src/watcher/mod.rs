//! Following every file that a `watch` glob matches, and handing out complete lines with
//! the checkpoint that stands after them.
//!
//! One thread per `watch` entry does plain blocking file I/O: protocol folders may sit on
//! a network share where a read can stall, and a stalled thread must not stall the async
//! runtime that delivers messages. The thread wakes on file events (notify mode) and on
//! a timer (always: it catches what events miss, including an overflowed event queue,
//! and is the only clock in poll mode), then runs one [`Tailer::scan`].
//!
//! Files are followed by identity ([`identity::FileId`]), not by name: a file renamed
//! within the glob keeps its reader, and a file renamed out of it (rotation) is read to
//! its end, kept for a grace period in case its writer still appends, and then let go —
//! its unterminated last line included. On start, each file resumes at its checkpoint if
//! its identity and first bytes match one.
//!
//! **Unknown is not deleted.** A file is taken as gone only when the folder it was in
//! could be listed and it was not there. When the walk could not tell — a folder that
//! cannot be listed (a share away, a permission, a folder renamed away), out of file
//! descriptors, a glob over `max_files` — the file is *unknown*: it keeps its place and
//! its checkpoint, and is read on when it is seen again, however long that takes (up to
//! `forget_after`). A file that was let go leaves its checkpoint behind for
//! `forget_after` too, so a file that comes back with the same identity resumes there,
//! and so does one at the same path on another device (a share mounted again) that
//! starts with the same bytes.
//!
//! **A bounded set of open files.** Folders of protocols grow for years; holding each
//! file open would run out of file descriptors. At most [`MAX_OPEN`] files stay open
//! (the most recently written); the others are opened again by path, checked to be the
//! same file, when they change — which a `stat` tells without opening them.
//!
//! **One file cannot hold back the others.** Each file is read at most
//! [`READ_BUDGET_BYTES`] (and [`READ_BUDGET_TIME`]) per pass; what is left waits for the
//! next pass, which then starts at once, after every other file had its turn. A sparse
//! file of terabytes, an endless one or one written faster than it can be read costs
//! time, never the alarms of the other files; it is named in `/healthz` while it is
//! behind, and in a warning (and as "degraded") when that lasts.
//!
//! **Whoever can write the folder gets no further.** A match is opened only if it is a
//! regular file inside the glob's base folder and none of the agent's own (see
//! [`guard`]), and the open itself cannot wait (see [`identity::open_shared`]).
//!
//! [`Tailer`] holds all of that and does no waiting, so the model tests can drive it
//! step by step.

pub mod checkpoints;
pub mod discovery;
pub mod follow;
pub mod guard;
pub mod health;
pub mod identity;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use notify::Watcher as _;
use tokio_util::sync::CancellationToken;

use crate::config::{StartAt as StartConfig, WatchConfig, WatchMode};
use crate::watcher::checkpoints::Checkpoint;
use discovery::Listing;
use follow::{Follower, StartAt};
use guard::{Guard, Own, Refused};
use health::WatchHealth;
use identity::FileId;

/// Bytes read per batch: large enough to amortise a commit, small enough to keep memory
/// bounded when a huge file is read from its beginning.
const BATCH_BYTES: usize = 256 * 1024;

/// The most bytes one file is read in one pass. The rest waits for the next pass (which
/// starts at once), and every other file of the entry is read in between. Without it a
/// file that never ends — a sparse file of 20 GiB that uses no disk, `/proc`'s files, a
/// file written faster than it can be read — held the thread for as long as it took
/// (minutes, hours), and every other file's alarms with it. 16 MiB is a few hundredths
/// of a second of reading on a local disk, so a long history is still read at nearly
/// full speed.
pub const READ_BUDGET_BYTES: usize = 16 * 1024 * 1024;

/// The longest one file is read in one pass (checked between batches): on a slow share
/// [`READ_BUDGET_BYTES`] can take seconds, and the other files wait meanwhile.
pub const READ_BUDGET_TIME: Duration = Duration::from_millis(250);

/// How long a file that left the glob (rotated away, deleted) is still read on while it
/// has more to read than one pass reads, before it is let go anyway: a rotated file is
/// read to its end, an endless one is not read for ever.
const READ_AFTER_GONE: Duration = Duration::from_secs(600);

/// Whether files stay open between reads. On Unix an open file can be read to its end
/// after it was renamed away or deleted. On Windows an open handle can keep a deleted
/// file's name taken, which would stop the instrument software from recreating its
/// protocol, so files are opened for each read only (see `Follower::release`).
pub const HOLD_FILES_OPEN: bool = cfg!(not(windows));

/// The most files one `watch` entry keeps open between reads (where files are held
/// open at all): the ones written most recently. A folder of thousands of protocols then
/// needs a few dozen descriptors, not thousands (the usual soft limit is 1,024).
pub const MAX_OPEN: usize = 64;

/// A stable number for one followed file, for as long as this process follows it.
pub type FileKey = u64;

/// The entry whose thread follows the file: its id is the key's upper bits.
pub fn watch_of(key: FileKey) -> WatchId {
    (key >> 40) as WatchId
}

fn now_ms() -> i64 {
    crate::store::now_ms()
}

#[derive(Debug)]
pub enum WatchMsg {
    /// Complete lines of a file, in order; `checkpoint.offset` is just after the last.
    Lines {
        watch: WatchId,
        file: FileKey,
        checkpoint: Checkpoint,
        lines: Vec<Vec<u8>>,
    },
    /// The file was let go (rotated away, deleted, or not seen for `forget_after`):
    /// `last` is its unterminated last line, `checkpoint` where it stands after it. The
    /// checkpoint is kept until `keep_until_ms` (ms since the epoch), in case the file
    /// comes back.
    Closed {
        watch: WatchId,
        file: FileKey,
        checkpoint: Checkpoint,
        last: Option<Vec<u8>>,
        keep_until_ms: i64,
    },
    /// A checkpoint that no longer stands for any file: the file it named is followed
    /// under another identity now (a share mounted again gets another device number).
    Forget { watch: WatchId, id: FileId },
    /// Not the watcher's: another part of the agent (the API, the BEC bridge) put a
    /// message into the store's inbox, or BEC's routes changed. Sent on the same channel
    /// so that the pipeline, which waits on it, acts at once instead of at its next
    /// once-a-second tick.
    Wake,
}

/// What the tailer needs to know about the past.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Checkpoints from the store, by file identity.
    pub checkpoints: HashMap<FileId, Checkpoint>,
    /// Of those, the ones of files that were let go, and until when (ms since the epoch)
    /// they are kept to know such a file again.
    pub let_go_until: HashMap<FileId, i64>,
    /// Whether this state has seen a start before: `start: end` skips history only at
    /// the very first start.
    pub started_before: bool,
}

/// The files of one `watch` entry and how far each was read.
pub struct Tailer {
    watch: WatchId,
    cfg: WatchConfig,
    files: HashMap<FileId, Followed>,
    /// Checkpoints of files not followed now: from the store, and of files let go.
    resume: Resume,
    /// `resume`'s checkpoints by path, to know a file that came back under another
    /// identity.
    by_path: HashMap<PathBuf, FileId>,
    next_key: FileKey,
    first_scan: bool,
    /// Whether the checkpoints of files that went away while the agent was down have
    /// been let go (after the first scan that could see everything).
    settled: bool,
    /// How long a file that left the glob is still read.
    linger: Duration,
    /// Paths already warned about, so a bad file is one log line, not one per second.
    warned: HashSet<PathBuf>,
    /// Matches that are not regular files, already named once.
    skipped: HashSet<PathBuf>,
    hold_open: bool,
    max_open: usize,
    /// The files held open now, at most `max_open`.
    open: Vec<FileId>,
    /// What could not be seen, since when (as logged and published), and for a folder
    /// that never existed, what to say about it (see [`discovery::never_there`]).
    unseen: BTreeMap<PathBuf, (SystemTime, String, Option<String>)>,
    /// Whether a pass has been reported: a folder missing at the first look, with no
    /// checkpoint under it, never existed as far as this agent knows.
    reported: bool,
    over_max_files: bool,
    warned_depth: bool,
    stopping: Option<CancellationToken>,
    /// Where this entry's view goes (`/healthz`).
    health: WatchHealth,
    /// For tests: every listing fails with this, as if out of file descriptors or the
    /// folder could not be read.
    fault: Option<fn() -> std::io::Error>,
    next_purge: Instant,
    /// A scan has completed (its time is logged once).
    scanned: bool,
    /// What may be opened (see [`guard`]).
    guard: Guard,
    /// Files listed by the very first scan that could not be opened then: `start: end`
    /// still applies to them.
    present_at_start: HashSet<PathBuf>,
    /// Matches refused by the guard, already named in a warning: once per name for as
    /// long as the agent runs (a link that flips would otherwise be a warning a flip).
    refused: HashSet<PathBuf>,
}

struct Followed {
    key: FileKey,
    follower: Follower,
    /// When the file stopped matching the glob (renamed away or deleted).
    missing_since: Option<Instant>,
    /// Since when the file cannot be seen (its folder cannot be listed).
    unknown_since: Option<Instant>,
    /// The last read failed (and that was logged).
    failing: bool,
    /// Since when the file has not been read to its end at the end of a pass (its read
    /// budget ran out), if it has not.
    behind_since: Option<(Instant, SystemTime)>,
    /// That it has been behind for long was logged.
    warned_behind: bool,
}

impl Tailer {
    pub fn new(watch: WatchId, cfg: WatchConfig, resume: Resume) -> Tailer {
        let linger = (cfg.poll_interval * 2).max(Duration::from_secs(2));
        let by_path = resume
            .checkpoints
            .values()
            .map(|c| (c.path.clone(), c.id))
            .collect();
        Tailer {
            watch,
            files: HashMap::new(),
            resume,
            by_path,
            next_key: (watch as u64) << 40,
            first_scan: true,
            settled: false,
            linger,
            warned: HashSet::new(),
            skipped: HashSet::new(),
            hold_open: HOLD_FILES_OPEN,
            max_open: MAX_OPEN,
            open: Vec::new(),
            unseen: BTreeMap::new(),
            reported: false,
            over_max_files: false,
            warned_depth: false,
            stopping: None,
            health: WatchHealth::default(),
            fault: None,
            next_purge: Instant::now(),
            scanned: false,
            guard: Guard::new(&cfg.path, cfg.follow_links, Own::default()),
            refused: HashSet::new(),
            present_at_start: HashSet::new(),
            cfg,
        }
    }

    /// The agent's own files (state folder, config file), which this entry must never
    /// read, whatever its glob matches or its links point to.
    pub fn set_own(&mut self, own: Own) {
        self.guard = Guard::new(&self.cfg.path, self.cfg.follow_links, own);
    }

    /// Whether some file was left with more to read at the end of the last pass: then
    /// the next pass should start at once.
    pub fn is_behind(&self) -> bool {
        self.files.values().any(|f| f.behind_since.is_some())
    }

    /// For tests: whether files stay open between reads (see [`HOLD_FILES_OPEN`]), so
    /// both ways can be tested on any platform.
    pub fn set_hold_open(&mut self, hold: bool) {
        self.hold_open = hold;
    }

    /// For tests: keep at most this many files open instead of [`MAX_OPEN`].
    pub fn set_max_open(&mut self, n: usize) {
        self.max_open = n.max(1);
    }

    /// For tests: let go of rotated files after this long instead of the default.
    pub fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// For tests: from now on every listing of the folder fails with this error (`None`:
    /// works again), as when the process is out of file descriptors or the folder cannot
    /// be read.
    pub fn set_listing_fault(&mut self, fault: Option<fn() -> std::io::Error>) {
        self.fault = fault;
    }

    /// A signal that cuts a walk short when given: the agent is stopping.
    pub fn set_stopping(&mut self, stopping: CancellationToken) {
        self.stopping = Some(stopping);
    }

    /// Where this entry's view is published (by default a registry of its own).
    pub fn set_health(&mut self, health: WatchHealth) {
        self.health = health;
    }

    /// How many files are held open now.
    pub fn open_files(&self) -> usize {
        self.files.values().filter(|f| f.follower.is_open()).count()
    }

    fn list(&self) -> Listing {
        if let Some(fault) = self.fault {
            let (base, _) = discovery::base_dir(&self.cfg.path);
            return Listing {
                errors: vec![(base, fault())],
                ..Listing::default()
            };
        }
        let stopping = self.stopping.clone();
        let limits = discovery::Limits {
            max_files: self.cfg.max_files,
            max_depth: discovery::MAX_DEPTH,
        };
        discovery::walk(&self.cfg.path, limits, &move || {
            stopping
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
        })
    }

    /// One pass: find files, read them, let go of the ones gone for longer than the
    /// linger. Each message goes to `sink`; `false` from it stops the pass (shutdown).
    pub fn scan(&mut self, now: Instant, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        if !self.scanned {
            // Named in `/healthz` from the start, so a first pass that hangs is seen.
            self.publish();
        }
        self.health.pass_started(self.watch);
        let done = self.pass(now, sink);
        self.health.pass_done(self.watch);
        done
    }

    fn pass(&mut self, now: Instant, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        let started = Instant::now();
        let listing = self.list();
        if listing.interrupted {
            return false;
        }
        self.report(&listing);
        // `start: end` is about the files present at the first start: until a look that
        // could see everything (a folder that does not exist yet counts as seen), files
        // found are taken as present at the start.
        let first = self.first_scan;
        self.first_scan = first
            && (listing.truncated
                || listing
                    .errors
                    .iter()
                    .any(|(_, e)| e.kind() != std::io::ErrorKind::NotFound));
        let mut seen = HashSet::new();
        let mut stats: HashMap<FileId, std::fs::Metadata> = HashMap::new();
        let mut new_files = 0usize;
        for (path, meta) in &listing.files {
            let id = match identity::id_of(path, meta) {
                Ok(id) => id,
                Err(e) => {
                    self.warn_once(path, &e);
                    continue;
                }
            };
            if seen.contains(&id) {
                continue; // another name (a hard link) of a file already taken
            }
            if let Some(f) = self.files.get_mut(&id) {
                // Held open, an identity cannot be reused. At its own path it is the
                // same file, perhaps rewritten (which the read notices and starts over).
                // Under another name the first bytes must agree too (a file deleted and
                // recreated can get the same index).
                if f.follower.is_open()
                    || &f.follower.path == path
                    || f.follower.same_start_as(path)
                {
                    if &f.follower.path != path {
                        tracing::info!(from = %f.follower.path.display(), to = %path.display(), "file renamed");
                        f.follower.path = path.clone();
                    }
                    if f.unknown_since.take().is_some() {
                        tracing::info!(file = %path.display(), offset = f.follower.line_end(), "file seen again: reading on from its checkpoint");
                    }
                    f.missing_since = None;
                    seen.insert(id);
                    stats.insert(id, meta.clone());
                    continue;
                }
                // Another file with a reused identity: the old one is gone, and what is
                // at the path now is the new one's (only reachable when not held open).
                if let Some(old) = self.files.remove(&id)
                    && !self.let_go(old, sink)
                {
                    return false;
                }
            }
            seen.insert(id);
            if self.follow(path, id, first, new_files < 20, sink) {
                stats.insert(id, meta.clone());
                new_files += 1;
            }
        }
        if new_files >= 20 {
            tracing::info!(watch = %self.cfg.path, files = new_files, "following more files (the first 20 named above; the others at debug level)");
        }

        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            let Some(f) = self.files.get_mut(&id) else {
                continue;
            };
            if !seen.contains(&id)
                && (listing.is_unknown(&f.follower.path) || !folder_visible(&f.follower.path))
            {
                // Nobody can tell whether it is there: keep it, closed, as it is — read
                // to its end first while it is open (it may have been deleted).
                let since = *f.unknown_since.get_or_insert(now);
                f.missing_since = None;
                // Not read meanwhile: what is left is read when it is seen again.
                f.behind_since = None;
                if f.follower.is_open() {
                    if matches!(read_turn(self.watch, f, sink), Turn::Stopped) {
                        return false;
                    }
                    f.follower.release();
                    self.open.retain(|o| *o != id);
                }
                if now.duration_since(since) >= self.cfg.forget_after
                    && let Some(f) = self.files.remove(&id)
                {
                    tracing::info!(file = %f.follower.path.display(), "not seen for forget_after: let go");
                    if !self.let_go(f, sink) {
                        return false;
                    }
                }
                continue;
            }
            if !seen.contains(&id) && f.missing_since.is_none() {
                f.missing_since = Some(now);
                f.unknown_since = None;
                // Not held open, a file renamed out of the glob can only be read to its
                // end under its new name: look for it beside the old one.
                if !f.follower.is_open()
                    && let Some(to) = find_renamed(&f.follower)
                {
                    tracing::info!(from = %f.follower.path.display(), to = %to.display(), "file renamed away; reading it to its end");
                    f.follower.path = to;
                }
            }
            // A closed file whose length and time did not move has nothing new.
            let quiet = !f.follower.is_open()
                && f.missing_since.is_none()
                && stats
                    .get(&id)
                    .is_some_and(|m| f.follower.unchanged(&f.follower.path, m));
            if !quiet {
                self.health.reading(self.watch, Some(&f.follower.path));
                let turn = read_turn(self.watch, f, sink);
                self.health.reading(self.watch, None);
                match turn {
                    Turn::Stopped => return false,
                    Turn::AtEnd => f.caught_up(),
                    Turn::Behind => f.fell_behind(now),
                }
            }
            // Held open, a file can be read to its end after it is deleted or renamed
            // away: while there is room, a closed file (one that was away) is opened
            // again.
            if self.hold_open
                && !f.follower.is_open()
                && f.missing_since.is_none()
                && self.open.len() < self.max_open
            {
                let _ = f.follower.reopen();
            }
            if f.follower.is_open() {
                if self.hold_open {
                    self.track_open(id);
                } else {
                    f.follower.release();
                }
            }
            // A file that left the glob is read to its end first (for a while).
            if let Some(f) = self.files.get(&id)
                && f.missing_since.is_some_and(|t| {
                    let gone = now.duration_since(t);
                    gone >= self.linger && (f.behind_since.is_none() || gone >= READ_AFTER_GONE)
                })
                && let Some(f) = self.files.remove(&id)
                && !self.let_go(f, sink)
            {
                return false;
            }
        }
        if !self.settled && !listing.is_blind_everywhere() && !self.settle(&listing, sink) {
            return false;
        }
        if now >= self.next_purge {
            self.next_purge = now + Duration::from_secs(60);
            let t = now_ms();
            let expired: Vec<FileId> = self
                .resume
                .let_go_until
                .iter()
                .filter(|(_, until)| **until < t)
                .map(|(id, _)| *id)
                .collect();
            for id in expired {
                self.forget_resume(&id);
            }
        }
        self.publish();
        if !self.scanned {
            self.scanned = true;
            tracing::info!(watch = %self.cfg.path, files = self.files.len(), open = self.open.len(), ms = started.elapsed().as_millis() as u64, "first scan done");
        }
        true
    }

    /// The checkpoints from the store of files that went away while the agent was down
    /// (their folder can be seen, they are not in it) are let go like any file that went
    /// away: kept for `forget_after`, then forgotten.
    fn settle(&mut self, listing: &Listing, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        self.settled = true;
        let Ok(pattern) = glob::Pattern::new(&self.cfg.path) else {
            return true;
        };
        let gone: Vec<Checkpoint> = self
            .resume
            .checkpoints
            .values()
            .filter(|c| {
                !self.resume.let_go_until.contains_key(&c.id)
                    && !self.files.contains_key(&c.id)
                    && pattern.matches_path(&c.path)
                    && !listing.is_unknown(&c.path)
                    && folder_visible(&c.path)
            })
            .cloned()
            .collect();
        let keep_until_ms = now_ms() + self.cfg.forget_after.as_millis() as i64;
        for checkpoint in gone {
            tracing::debug!(file = %checkpoint.path.display(), "gone while the agent was down");
            self.resume
                .let_go_until
                .insert(checkpoint.id, keep_until_ms);
            let key = self.next_key;
            self.next_key += 1;
            let msg = WatchMsg::Closed {
                watch: self.watch,
                file: key,
                checkpoint,
                last: None,
                keep_until_ms,
            };
            if !sink(msg) {
                return false;
            }
        }
        true
    }

    /// Says once what cannot be seen (and when it is seen again), names skipped matches
    /// once, and warns about a glob over its limits.
    fn report(&mut self, listing: &Listing) {
        let mut now_unseen: BTreeMap<PathBuf, (String, bool)> = BTreeMap::new();
        for (path, e) in &listing.errors {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            now_unseen.insert(path.clone(), (e.to_string(), missing));
        }
        let first = !std::mem::replace(&mut self.reported, true);
        let gone: Vec<PathBuf> = self
            .unseen
            .keys()
            .filter(|p| !now_unseen.contains_key(*p))
            .cloned()
            .collect();
        for path in gone {
            if let Some((since, _, _)) = self.unseen.remove(&path) {
                let secs = since.elapsed().map_or(0, |d| d.as_secs());
                tracing::info!(path = %path.display(), after_s = secs, "can be seen again; its files are read on from their checkpoints");
            }
        }
        for (path, (error, missing)) in now_unseen {
            if self.unseen.contains_key(&path) {
                continue;
            }
            // A folder that vanished keeps its files' checkpoints; one that was never
            // there (a typo in the path) has none, and nothing is watched at all.
            let never_there = missing
                && first
                && !self
                    .resume
                    .checkpoints
                    .values()
                    .any(|c| c.path.starts_with(&path));
            let note = never_there.then(|| discovery::never_there_nearby(&path));
            match &note {
                Some(note) => {
                    tracing::warn!(watch = %self.cfg.path, "{note}; it is watched from when it appears");
                }
                None => {
                    tracing::warn!(watch = %self.cfg.path, path = %path.display(), %error, "cannot see this; its files keep their checkpoints and are read on when it is back");
                }
            }
            self.unseen.insert(path, (SystemTime::now(), error, note));
        }
        if listing.truncated != self.over_max_files {
            self.over_max_files = listing.truncated;
            if listing.truncated {
                tracing::warn!(watch = %self.cfg.path, max_files = self.cfg.max_files, "the glob matches more files than max_files: only that many are followed; narrow the glob or raise watch[].max_files");
            } else {
                tracing::info!(watch = %self.cfg.path, "the glob matches no more than max_files again");
            }
        }
        if listing.too_deep && !self.warned_depth {
            self.warned_depth = true;
            tracing::warn!(watch = %self.cfg.path, depth = discovery::MAX_DEPTH, "** goes no deeper than this many folders");
        }
        for (path, what) in &listing.skipped {
            if self.skipped.insert(path.clone()) {
                // A FIFO or a device among protocols is odd enough to be a warning (it
                // may be someone's attempt to stop the watcher); a dangling link is the
                // everyday leftover of a rotation.
                if *what == discovery::Skipped::DanglingLink {
                    tracing::info!(file = %path.display(), "matches the glob but is {}: not followed", what.as_str());
                } else {
                    tracing::warn!(watch = %self.cfg.path, file = %path.display(), "matches the glob but is {}: not followed", what.as_str());
                }
            } else {
                tracing::debug!(file = %path.display(), "not followed: {}", what.as_str());
            }
        }
        for path in &listing.links_not_followed {
            if self.skipped.insert(path.clone()) {
                tracing::info!(folder = %path.display(), "** does not follow symbolic links to folders (they can loop): not searched");
            }
        }
    }

    fn publish(&self) {
        let mut behind: Vec<health::Behind> = self
            .files
            .values()
            .filter_map(|f| {
                let (_, since) = f.behind_since?;
                Some(health::Behind {
                    path: f.follower.path.display().to_string(),
                    since: health::epoch_s(since),
                    unread_bytes: f.follower.unread(),
                })
            })
            .collect();
        behind.sort_by(|a, b| a.path.cmp(&b.path));
        self.health.set(
            self.watch,
            health::EntryHealth {
                path: self.cfg.path.clone(),
                files: self.files.len(),
                unknown_files: self
                    .files
                    .values()
                    .filter(|f| f.unknown_since.is_some())
                    .count(),
                unseen: self
                    .unseen
                    .iter()
                    .map(|(path, (since, error, note))| health::Unseen {
                        path: path.display().to_string(),
                        error: error.clone(),
                        since: health::epoch_s(*since),
                        never_there: note.as_ref().map(|_| discovery::never_there(path)),
                        never_there_nearby: note.clone(),
                    })
                    .collect(),
                over_max_files: self.over_max_files,
                behind,
                stalled: None,
            },
        );
    }

    /// Keeps `id` among the open files, closing the least recently written beyond
    /// `max_open`.
    fn track_open(&mut self, id: FileId) {
        if !self.open.contains(&id) {
            self.open.push(id);
        }
        while self.open.len() > self.max_open {
            let victim = self
                .open
                .iter()
                .copied()
                .filter(|o| *o != id)
                .min_by_key(|o| self.files.get(o).and_then(|f| f.follower.last_modified()));
            let Some(victim) = victim else { break };
            self.open.retain(|o| *o != victim);
            if let Some(f) = self.files.get_mut(&victim) {
                f.follower.release();
            }
        }
    }

    /// Where each followed file stands: just after the last line handed out.
    pub fn positions(&self) -> Vec<Checkpoint> {
        self.files
            .values()
            .map(|f| f.follower.checkpoint())
            .collect()
    }

    /// The checkpoint to resume `path` (identity `id`) from, if any: its own, or that of
    /// the file at the same path on another device (a share mounted again) when it was
    /// not empty — the first bytes still have to agree.
    fn saved(&self, path: &Path, id: FileId) -> Option<&Checkpoint> {
        if let Some(cp) = self.resume.checkpoints.get(&id) {
            return Some(cp);
        }
        let other = self.by_path.get(path)?;
        let cp = self.resume.checkpoints.get(other)?;
        (other.device != id.device && !cp.fingerprint.is_empty() && !self.files.contains_key(other))
            .then_some(cp)
    }

    fn forget_resume(&mut self, id: &FileId) -> Option<Checkpoint> {
        self.resume.let_go_until.remove(id);
        let cp = self.resume.checkpoints.remove(id)?;
        if self.by_path.get(&cp.path) == Some(id) {
            self.by_path.remove(&cp.path);
        }
        Some(cp)
    }

    /// Starts following `path`; `false` if it cannot be opened (named once, tried again
    /// at the next scan) or the sink refused.
    fn follow(
        &mut self,
        path: &Path,
        id: FileId,
        first_scan: bool,
        loud: bool,
        sink: &mut dyn FnMut(WatchMsg) -> bool,
    ) -> bool {
        let saved = self.saved(path, id).cloned();
        let (start, fingerprint): (StartAt, &[u8]) = match &saved {
            Some(cp) => (StartAt::Offset(cp.offset), &cp.fingerprint),
            None if (first_scan || self.present_at_start.contains(path))
                && !self.resume.started_before
                && self.cfg.start == StartConfig::End =>
            {
                (StartAt::End, b"")
            }
            None => (StartAt::Beginning, b""),
        };
        let opened = self.open_checked(path, id).and_then(|file| {
            Follower::from_file(path, file, start, fingerprint, self.cfg.max_line_bytes)
                .map_err(Refused::Io)
        });
        match opened {
            Ok(follower) => {
                self.warned.remove(path);
                self.present_at_start.remove(path);
                if loud {
                    tracing::info!(file = %path.display(), offset = follower.line_end(), "following");
                } else {
                    tracing::debug!(file = %path.display(), offset = follower.line_end(), "following");
                }
                let key = self.next_key;
                self.next_key += 1;
                let fid = follower.id;
                self.forget_resume(&fid);
                if let Some(cp) = saved
                    && cp.id != fid
                {
                    // Known again under a new identity: the old checkpoint stands for
                    // nothing any more.
                    tracing::info!(file = %path.display(), offset = follower.line_end(), "the same file under another identity (a share mounted again): reading on from its checkpoint");
                    self.forget_resume(&cp.id);
                    if !sink(WatchMsg::Forget {
                        watch: self.watch,
                        id: cp.id,
                    }) {
                        return false;
                    }
                }
                self.files.insert(
                    fid,
                    Followed {
                        key,
                        follower,
                        missing_since: None,
                        unknown_since: None,
                        failing: false,
                        behind_since: None,
                        warned_behind: false,
                    },
                );
                if self.hold_open {
                    self.track_open(fid);
                }
                true
            }
            Err(e @ (Refused::Io(_) | Refused::Changed)) if first_scan => {
                // Present at the very first start, though it could not be opened then (a
                // passing error, a lock, a name that changed): `start: end` still holds
                // for it when it is opened later.
                self.present_at_start.insert(path.to_path_buf());
                match e {
                    Refused::Io(e) => self.warn_once(path, &e),
                    _ => {
                        tracing::debug!(file = %path.display(), "changed while it was being opened; looked at again at the next scan")
                    }
                }
                false
            }
            Err(Refused::Io(e)) => {
                self.warn_once(path, &e);
                false
            }
            Err(Refused::Changed) => {
                tracing::debug!(file = %path.display(), "changed while it was being opened; looked at again at the next scan");
                false
            }
            Err(refused) => {
                if self.refused.insert(path.to_path_buf()) {
                    tracing::warn!(watch = %self.cfg.path, file = %path.display(), "not read: {refused}");
                } else {
                    tracing::debug!(file = %path.display(), "not read: {refused}");
                }
                false
            }
        }
    }

    /// Opens `path`, listed as the file `id`, if the guard lets it: a regular file,
    /// inside the base folder (or links may lead out), none of the agent's own — and the
    /// handle is that very file, not what a flipped link points to a moment later.
    fn open_checked(&mut self, path: &Path, id: FileId) -> Result<std::fs::File, Refused> {
        let admitted = self.guard.admit(path, id)?;
        // The name, not the target: a file followed is reopened by the name it matched.
        let file = identity::open_shared(path).map_err(Refused::from_io)?;
        if identity::file_id(&file)? != admitted.id {
            return Err(Refused::Changed);
        }
        Ok(file)
    }

    fn let_go(&mut self, mut f: Followed, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        if f.unknown_since.is_none() {
            tracing::info!(file = %f.follower.path.display(), "file rotated away or deleted: read to its end, let go");
        }
        self.open.retain(|o| *o != f.follower.id);
        let last = f.follower.take_partial();
        let checkpoint = f.follower.checkpoint();
        let keep_until_ms = now_ms() + self.cfg.forget_after.as_millis() as i64;
        // Kept, so that the file is known again if it comes back.
        self.by_path.insert(checkpoint.path.clone(), checkpoint.id);
        self.resume
            .let_go_until
            .insert(checkpoint.id, keep_until_ms);
        self.resume
            .checkpoints
            .insert(checkpoint.id, checkpoint.clone());
        sink(WatchMsg::Closed {
            watch: self.watch,
            file: f.key,
            checkpoint,
            last,
            keep_until_ms,
        })
    }

    fn warn_once(&mut self, path: &Path, e: &std::io::Error) {
        if self.warned.insert(path.to_path_buf()) {
            tracing::warn!(file = %path.display(), error = %e, "cannot read file; will try again");
        }
    }
}

/// Whether the folder of `path` can be looked at: if not, the file is unknown, not gone.
fn folder_visible(path: &Path) -> bool {
    path.parent()
        .is_none_or(|dir| std::fs::metadata(dir).is_ok_and(|m| m.is_dir()))
}

/// The file in the same folder that has `f`'s identity and first bytes, if any.
fn find_renamed(f: &Follower) -> Option<PathBuf> {
    let dir = f.path.parent()?;
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p != &f.path && p.is_file())
        .find(|p| identity::path_id(p).is_ok_and(|id| id == f.id) && f.same_start_as(p))
}

impl Followed {
    /// Read to its end this pass.
    fn caught_up(&mut self) {
        if self.behind_since.take().is_some() && std::mem::take(&mut self.warned_behind) {
            tracing::info!(file = %self.follower.path.display(), "read to its end again");
        }
    }

    /// Left with more to read this pass (its budget ran out).
    fn fell_behind(&mut self, now: Instant) {
        let (since, _) = *self
            .behind_since
            .get_or_insert_with(|| (now, SystemTime::now()));
        if !self.warned_behind && now.duration_since(since) >= health::BEHIND_LIMIT {
            self.warned_behind = true;
            tracing::warn!(
                file = %self.follower.path.display(),
                unread_bytes = self.follower.unread(),
                "not read to its end for {} s: it grows faster than it can be read (or never ends); read on in turns, the other files are served between",
                health::BEHIND_LIMIT.as_secs()
            );
        }
    }
}

/// How one file's turn at reading ended.
enum Turn {
    /// The sink refused: the agent is stopping.
    Stopped,
    /// At the file's current end (or the read failed, which was logged).
    AtEnd,
    /// The turn's budget ran out with more to read.
    Behind,
}

/// Reads a file on in bounded batches: to its current end, or until its turn's budget
/// ([`READ_BUDGET_BYTES`], [`READ_BUDGET_TIME`]) is spent.
fn read_turn(watch: WatchId, f: &mut Followed, sink: &mut dyn FnMut(WatchMsg) -> bool) -> Turn {
    let started = Instant::now();
    let mut total = 0usize;
    loop {
        let mut lines = Vec::new();
        let read = match f.follower.read_lines(&mut lines, BATCH_BYTES) {
            Ok(n) => n,
            // Gone from its path while not held open: nothing more to read from it.
            Err(e) if f.missing_since.is_some() && e.kind() == std::io::ErrorKind::NotFound => {
                return Turn::AtEnd;
            }
            Err(e) => {
                // Once per failing spell: a file that cannot be read for an hour is one
                // line, not one a second.
                if !std::mem::replace(&mut f.failing, true) {
                    tracing::warn!(file = %f.follower.path.display(), error = %e, "read failed; will try again");
                } else {
                    tracing::debug!(file = %f.follower.path.display(), error = %e, "read failed again");
                }
                return Turn::AtEnd;
            }
        };
        if std::mem::replace(&mut f.failing, false) {
            tracing::info!(file = %f.follower.path.display(), "read again");
        }
        if !lines.is_empty() {
            let msg = WatchMsg::Lines {
                watch,
                file: f.key,
                checkpoint: f.follower.checkpoint(),
                lines,
            };
            if !sink(msg) {
                return Turn::Stopped;
            }
        }
        if read < BATCH_BYTES {
            return Turn::AtEnd;
        }
        total += read;
        if total >= READ_BUDGET_BYTES || started.elapsed() >= READ_BUDGET_TIME {
            return Turn::Behind;
        }
    }
}

enum Wake {
    Fs,
    /// Read what is there once more, then end: the entry is being replaced.
    Retire,
    Stop,
}

/// Identifies one running `watch` entry for as long as the process runs; entries
/// added by a reload get new ones, so a message can always be traced to its entry.
pub type WatchId = usize;

struct Thread {
    cfg: WatchConfig,
    wake: std_mpsc::Sender<Wake>,
    handle: JoinHandle<Vec<Checkpoint>>,
}

/// A thread told to end, and where it stood.
pub struct Retired {
    pub id: WatchId,
    handle: JoinHandle<Vec<Checkpoint>>,
}

impl Retired {
    /// Whether it has ended; until then its messages must keep being taken.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Where each of its files stood: everything read was handed over (a retired thread
    /// reads once more, a read budget per file, and never drops a batch), so a follower
    /// started here neither skips nor repeats a line.
    pub fn join(self) -> Vec<Checkpoint> {
        self.handle.join().unwrap_or_default()
    }
}

/// The running watcher threads, one per `watch` entry.
///
/// Whoever owns it must keep taking messages while it waits for threads to end
/// ([`Retired::is_finished`]): a thread may be blocked handing over a batch.
pub struct Watcher {
    threads: Vec<(WatchId, Thread)>,
    next_id: WatchId,
    /// For threads started later; dropped by [`Watcher::stop`] so the channel ends
    /// when the last thread does.
    tx: Option<std_mpsc::SyncSender<WatchMsg>>,
    /// Checked between batches, so a stop does not wait for a long file to be read: a
    /// child of the agent's stop signal, cancelled with it or by [`Watcher::stop`].
    stopping: CancellationToken,
    /// The agent's own files, which no entry may read.
    own: Own,
    health: WatchHealth,
}

/// What the agent hands the watcher: its own files, which no entry may read; the health
/// registry the API reads; and its stop signal (docs/ARCHITECTURE.md, "Shutdown and
/// shared state"). The default is a watcher on its own.
#[derive(Debug, Clone, Default)]
pub struct Handed {
    pub own: Own,
    pub health: WatchHealth,
    pub stop: CancellationToken,
}

impl Watcher {
    /// Starts one thread per entry. Messages go to `tx`; when it is full the threads
    /// wait, which is the back-pressure that keeps a burst from filling memory.
    pub fn spawn(
        watches: &[WatchConfig],
        resume: &Resume,
        tx: std_mpsc::SyncSender<WatchMsg>,
    ) -> std::io::Result<Watcher> {
        Self::spawn_guarding(watches, resume, tx, Handed::default())
    }

    /// As [`spawn`](Self::spawn), and no entry, now or added later, reads any of
    /// `handed.own`; each publishes its view to `handed.health`, and all stop with
    /// `handed.stop`.
    pub fn spawn_guarding(
        watches: &[WatchConfig],
        resume: &Resume,
        tx: std_mpsc::SyncSender<WatchMsg>,
        handed: Handed,
    ) -> std::io::Result<Watcher> {
        let mut watcher = Watcher {
            threads: Vec::new(),
            next_id: 0,
            tx: Some(tx),
            stopping: handed.stop.child_token(),
            own: handed.own,
            health: handed.health,
        };
        for cfg in watches {
            watcher.add(cfg.clone(), resume.clone())?;
        }
        Ok(watcher)
    }

    /// The entries running now.
    pub fn entries(&self) -> impl Iterator<Item = (WatchId, &WatchConfig)> {
        self.threads.iter().map(|(id, t)| (*id, &t.cfg))
    }

    pub fn config(&self, id: WatchId) -> Option<&WatchConfig> {
        self.threads
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, t)| &t.cfg)
    }

    /// Starts a thread for one more entry.
    pub fn add(&mut self, cfg: WatchConfig, resume: Resume) -> std::io::Result<WatchId> {
        let Some(tx) = self.tx.clone() else {
            return Err(std::io::Error::other("the watcher is stopping"));
        };
        let id = self.next_id;
        self.next_id += 1;
        let (wake_tx, wake_rx) = std_mpsc::channel();
        let mut tailer = Tailer::new(id, cfg.clone(), resume);
        tailer.set_own(self.own.clone());
        tailer.set_health(self.health.clone());
        let (wake, stopping) = (wake_tx.clone(), self.stopping.clone());
        let handle = std::thread::Builder::new()
            .name(format!("watch-{id}"))
            .spawn(move || run(tailer, wake_rx, wake, tx, stopping))?;
        self.threads.push((
            id,
            Thread {
                cfg,
                wake: wake_tx,
                handle,
            },
        ));
        Ok(id)
    }

    /// Tells one entry's thread to read what is there and end.
    pub fn retire(&mut self, id: WatchId) -> Option<Retired> {
        let at = self.threads.iter().position(|(i, _)| *i == id)?;
        let (id, thread) = self.threads.remove(at);
        let _ = thread.wake.send(Wake::Retire);
        Some(Retired {
            id,
            handle: thread.handle,
        })
    }

    /// Tells every thread to stop after its current batch; the channel closes when the
    /// last one has ended.
    pub fn stop(&mut self) -> Vec<Retired> {
        self.stopping.cancel();
        self.tx = None;
        self.threads
            .drain(..)
            .map(|(id, t)| {
                let _ = t.wake.send(Wake::Stop);
                Retired {
                    id,
                    handle: t.handle,
                }
            })
            .collect()
    }
}

fn run(
    mut tailer: Tailer,
    wake_rx: std_mpsc::Receiver<Wake>,
    wake_tx: std_mpsc::Sender<Wake>,
    tx: std_mpsc::SyncSender<WatchMsg>,
    stopping: CancellationToken,
) -> Vec<Checkpoint> {
    tracing::info!(watch = %tailer.cfg.path, mode = ?tailer.cfg.mode, "watching");
    tailer.set_stopping(stopping.clone());
    let (watch, health) = (tailer.watch, tailer.health.clone());
    let positions = follow_files(tailer, wake_rx, wake_tx, tx, stopping);
    health.remove(watch);
    positions
}

fn follow_files(
    mut tailer: Tailer,
    wake_rx: std_mpsc::Receiver<Wake>,
    wake_tx: std_mpsc::Sender<Wake>,
    tx: std_mpsc::SyncSender<WatchMsg>,
    stopping: CancellationToken,
) -> Vec<Checkpoint> {
    // The file events of the base folder, and which folder they are for: a folder that
    // went and came back (a share mounted again) is another folder, whose events need a
    // new watch.
    let mut fs_watcher: Option<(notify::RecommendedWatcher, FileId)> = None;
    let (base, _) = discovery::base_dir(&tailer.cfg.path);
    let mut sink = |msg| !stopping.is_cancelled() && tx.send(msg).is_ok();
    loop {
        if tailer.cfg.mode == WatchMode::Notify {
            let now_id = identity::folder_id(&base);
            if fs_watcher.as_ref().map(|(_, id)| *id) != now_id {
                fs_watcher = None;
                if let Some(id) = now_id {
                    fs_watcher =
                        start_fs_watcher(&tailer.cfg.path, wake_tx.clone()).map(|w| (w, id));
                }
            }
        }
        if !tailer.scan(Instant::now(), &mut sink) {
            return tailer.positions();
        }
        // A file left with more to read is read on at once (after every other file had
        // its turn); otherwise wait for an event or the timer.
        let wait = if tailer.is_behind() {
            Duration::ZERO
        } else {
            tailer.cfg.poll_interval
        };
        let mut retire = match wake_rx.recv_timeout(wait) {
            Ok(Wake::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                return tailer.positions();
            }
            Ok(Wake::Retire) => true,
            Ok(Wake::Fs) | Err(std_mpsc::RecvTimeoutError::Timeout) => false,
        };
        // Coalesce a storm of events into one scan.
        while let Ok(w) = wake_rx.try_recv() {
            match w {
                Wake::Stop => return tailer.positions(),
                Wake::Retire => retire = true,
                Wake::Fs => {}
            }
        }
        if retire {
            tracing::info!(watch = %tailer.cfg.path, "no longer watched as it was");
            tailer.scan(Instant::now(), &mut sink);
            return tailer.positions();
        }
    }
}

fn start_fs_watcher(
    pattern: &str,
    wake: std_mpsc::Sender<Wake>,
) -> Option<notify::RecommendedWatcher> {
    let (dir, recursive) = discovery::base_dir(pattern);
    if !dir.is_dir() {
        return None; // tried again at the next scan: the folder may appear later
    }
    let handler = move |res: notify::Result<notify::Event>| {
        // An error (an overflowed queue, say) also means "look again".
        if res.as_ref().map_or(true, |e| !e.kind.is_access()) {
            let _ = wake.send(Wake::Fs);
        }
    };
    let mode = if recursive {
        notify::RecursiveMode::Recursive
    } else {
        notify::RecursiveMode::NonRecursive
    };
    // A recursive watch does not follow links either: a link to a parent would loop.
    let config = notify::Config::default().with_follow_symlinks(false);
    match notify::RecommendedWatcher::new(handler, config)
        .and_then(|mut w| w.watch(&dir, mode).map(|()| w))
    {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "no file events for this folder; relying on the timer");
            None
        }
    }
}
