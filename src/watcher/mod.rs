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
//! [`Tailer`] holds all of that and does no waiting, so the model tests can drive it
//! step by step.

pub mod discovery;
pub mod follow;
pub mod identity;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::Watcher as _;

use crate::config::{StartAt as StartConfig, WatchConfig, WatchMode};
use crate::store::Checkpoint;
use follow::{Follower, StartAt};
use identity::FileId;

/// Bytes read per batch: large enough to amortise a commit, small enough to keep memory
/// bounded when a huge file is read from its beginning.
const BATCH_BYTES: usize = 256 * 1024;

/// Whether files stay open between reads. On Unix an open file can be read to its end
/// after it was renamed away or deleted. On Windows an open handle can keep a deleted
/// file's name taken, which would stop the instrument software from recreating its
/// protocol, so files are opened for each read only (see `Follower::release`).
pub const HOLD_FILES_OPEN: bool = cfg!(not(windows));

/// A stable number for one followed file, for as long as this process follows it.
pub type FileKey = u64;

/// The entry whose thread follows the file: its id is the key's upper bits.
pub fn watch_of(key: FileKey) -> WatchId {
    (key >> 40) as WatchId
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
    /// The file was let go (rotated away, deleted): `last` is its unterminated last line.
    Closed {
        watch: WatchId,
        file: FileKey,
        id: FileId,
        path: PathBuf,
        last: Option<Vec<u8>>,
    },
}

/// What the tailer needs to know about the past.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// Checkpoints from the store, by file identity.
    pub checkpoints: HashMap<FileId, Checkpoint>,
    /// Whether this state has seen a start before: `start: end` skips history only at
    /// the very first start.
    pub started_before: bool,
}

/// The files of one `watch` entry and how far each was read.
pub struct Tailer {
    watch: WatchId,
    cfg: WatchConfig,
    files: HashMap<FileId, Followed>,
    resume: Resume,
    next_key: FileKey,
    first_scan: bool,
    /// How long a file that left the glob is still read.
    linger: Duration,
    /// Paths already warned about, so a bad file is one log line, not one per second.
    warned: HashSet<PathBuf>,
    hold_open: bool,
}

struct Followed {
    key: FileKey,
    follower: Follower,
    /// When the file stopped matching the glob (renamed away or deleted).
    missing_since: Option<Instant>,
}

impl Tailer {
    pub fn new(watch: WatchId, cfg: WatchConfig, resume: Resume) -> Tailer {
        let linger = (cfg.poll_interval * 2).max(Duration::from_secs(2));
        Tailer {
            watch,
            cfg,
            files: HashMap::new(),
            resume,
            next_key: (watch as u64) << 40,
            first_scan: true,
            linger,
            warned: HashSet::new(),
            hold_open: HOLD_FILES_OPEN,
        }
    }

    /// For tests: whether files stay open between reads (see [`HOLD_FILES_OPEN`]), so
    /// both ways can be tested on any platform.
    pub fn set_hold_open(&mut self, hold: bool) {
        self.hold_open = hold;
    }

    /// For tests: let go of rotated files after this long instead of the default.
    pub fn set_linger(&mut self, linger: Duration) {
        self.linger = linger;
    }

    /// One pass: find files, read them, let go of the ones gone for longer than the
    /// linger. Each message goes to `sink`; `false` from it stops the pass (shutdown).
    pub fn scan(&mut self, now: Instant, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        let first = std::mem::replace(&mut self.first_scan, false);
        let mut seen = HashSet::new();
        for path in discovery::matches(&self.cfg.path) {
            let id = match identity::path_id(&path) {
                Ok(id) => id,
                Err(e) => {
                    self.warn_once(&path, &e);
                    continue;
                }
            };
            if let Some(f) = self.files.get_mut(&id) {
                // Held open, an identity cannot be reused; otherwise the first bytes
                // must agree too (a file deleted and recreated can get the same index).
                if self.hold_open || f.follower.same_start_as(&path) {
                    if f.follower.path != path {
                        tracing::info!(from = %f.follower.path.display(), to = %path.display(), "file renamed");
                        f.follower.path = path;
                    }
                    f.missing_since = None;
                    seen.insert(id);
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
            self.follow(&path, first);
        }

        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            let Some(f) = self.files.get_mut(&id) else {
                continue;
            };
            if !seen.contains(&id) && f.missing_since.is_none() {
                f.missing_since = Some(now);
                // Not held open, a file renamed out of the glob can only be read to its
                // end under its new name: look for it beside the old one.
                if !self.hold_open
                    && let Some(to) = find_renamed(&f.follower)
                {
                    tracing::info!(from = %f.follower.path.display(), to = %to.display(), "file renamed away; reading it to its end");
                    f.follower.path = to;
                }
            }
            if !read_all(self.watch, f, sink) {
                return false;
            }
            if !self.hold_open {
                f.follower.release();
            }
            if f.missing_since
                .is_some_and(|t| now.duration_since(t) >= self.linger)
                && let Some(f) = self.files.remove(&id)
                && !self.let_go(f, sink)
            {
                return false;
            }
        }
        true
    }

    /// Where each followed file stands: just after the last line handed out.
    pub fn positions(&self) -> Vec<Checkpoint> {
        self.files
            .values()
            .map(|f| Checkpoint {
                id: f.follower.id,
                fingerprint: f.follower.fingerprint().to_vec(),
                path: f.follower.path.clone(),
                offset: f.follower.line_end(),
            })
            .collect()
    }

    fn follow(&mut self, path: &Path, first_scan: bool) {
        let (start, saved): (StartAt, &[u8]) = match identity::path_id(path)
            .ok()
            .and_then(|id| self.resume.checkpoints.get(&id))
        {
            Some(cp) => (StartAt::Offset(cp.offset), &cp.fingerprint),
            None if first_scan
                && !self.resume.started_before
                && self.cfg.start == StartConfig::End =>
            {
                (StartAt::End, b"")
            }
            None => (StartAt::Beginning, b""),
        };
        match Follower::open(path, start, saved, self.cfg.max_line_bytes) {
            Ok(follower) => {
                self.warned.remove(path);
                tracing::info!(file = %path.display(), offset = follower.line_end(), "following");
                let key = self.next_key;
                self.next_key += 1;
                self.resume.checkpoints.remove(&follower.id);
                self.files.insert(
                    follower.id,
                    Followed {
                        key,
                        follower,
                        missing_since: None,
                    },
                );
            }
            Err(e) => self.warn_once(path, &e),
        }
    }

    fn let_go(&mut self, mut f: Followed, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
        tracing::info!(file = %f.follower.path.display(), "file rotated away or deleted: read to its end, let go");
        let last = f.follower.take_partial();
        sink(WatchMsg::Closed {
            watch: self.watch,
            file: f.key,
            id: f.follower.id,
            path: f.follower.path,
            last,
        })
    }

    fn warn_once(&mut self, path: &Path, e: &std::io::Error) {
        if self.warned.insert(path.to_path_buf()) {
            tracing::warn!(file = %path.display(), error = %e, "cannot read file; will try again");
        }
    }
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

/// Reads a file to its current end in bounded batches. `false` when the sink refused.
fn read_all(watch: WatchId, f: &mut Followed, sink: &mut dyn FnMut(WatchMsg) -> bool) -> bool {
    loop {
        let mut lines = Vec::new();
        let read = match f.follower.read_lines(&mut lines, BATCH_BYTES) {
            Ok(n) => n,
            // Gone from its path while not held open: nothing more to read from it.
            Err(e) if f.missing_since.is_some() && e.kind() == std::io::ErrorKind::NotFound => {
                return true;
            }
            Err(e) => {
                tracing::warn!(file = %f.follower.path.display(), error = %e, "read failed; will try again");
                return true;
            }
        };
        if !lines.is_empty() {
            let msg = WatchMsg::Lines {
                watch,
                file: f.key,
                checkpoint: Checkpoint {
                    id: f.follower.id,
                    fingerprint: f.follower.fingerprint().to_vec(),
                    path: f.follower.path.clone(),
                    offset: f.follower.line_end(),
                },
                lines,
            };
            if !sink(msg) {
                return false;
            }
        }
        if read < BATCH_BYTES {
            return true;
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

    /// Where each of its files stood: all of it was handed over (a retired thread reads
    /// to the end and never drops a batch), so a follower started here neither skips nor
    /// repeats a line.
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
    /// Checked between batches, so a stop does not wait for a long file to be read.
    stopping: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts one thread per entry. Messages go to `tx`; when it is full the threads
    /// wait, which is the back-pressure that keeps a burst from filling memory.
    pub fn spawn(
        watches: &[WatchConfig],
        resume: &Resume,
        tx: std_mpsc::SyncSender<WatchMsg>,
    ) -> std::io::Result<Watcher> {
        let mut watcher = Watcher {
            threads: Vec::new(),
            next_id: 0,
            tx: Some(tx),
            stopping: Arc::new(AtomicBool::new(false)),
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
        let tailer = Tailer::new(id, cfg.clone(), resume);
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
        self.stopping.store(true, Ordering::Relaxed);
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
    stopping: Arc<AtomicBool>,
) -> Vec<Checkpoint> {
    tracing::info!(watch = %tailer.cfg.path, mode = ?tailer.cfg.mode, "watching");
    let mut fs_watcher = None;
    let mut sink = |msg| !stopping.load(Ordering::Relaxed) && tx.send(msg).is_ok();
    loop {
        if tailer.cfg.mode == WatchMode::Notify && fs_watcher.is_none() {
            fs_watcher = start_fs_watcher(&tailer.cfg.path, wake_tx.clone());
        }
        if !tailer.scan(Instant::now(), &mut sink) {
            return tailer.positions();
        }
        let mut retire = match wake_rx.recv_timeout(tailer.cfg.poll_interval) {
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
    match notify::recommended_watcher(handler).and_then(|mut w| w.watch(&dir, mode).map(|()| w)) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "no file events for this folder; relying on the timer");
            None
        }
    }
}
