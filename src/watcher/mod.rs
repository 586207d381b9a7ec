//! Following every file that a `watch` glob matches, and handing out complete lines.
//!
//! One thread per `watch` entry does plain blocking file I/O: protocol folders may sit on
//! a network share where a read can stall, and a stalled thread must not stall the async
//! runtime that delivers messages. The thread wakes on file events (notify mode) and on
//! a timer (always: it catches what events miss, and is the only clock in poll mode),
//! then re-expands the glob and reads every followed file.
//!
//! Files are followed by identity ([`identity::FileId`]), not by name: a file renamed
//! within the glob keeps its reader, and a file renamed out of it (rotation) is read to
//! its end, kept for a grace period in case its writer still appends, and then let go.
//! Lines go out as [`WatchMsg::Lines`] batches carrying the offset after them, which is
//! what a checkpoint needs.

pub mod discovery;
pub mod follow;
pub mod identity;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::config::{StartAt, WatchConfig, WatchMode};
use follow::Follower;
use identity::FileId;

/// Lines per batch: large enough to amortise the hand-over, small enough to keep memory
/// bounded when a huge file is read from its beginning.
const BATCH_LINES: usize = 1024;
const BATCH_BYTES: usize = 1 << 20;

/// A stable number for one followed file, for as long as this process follows it.
pub type FileKey = u64;

#[derive(Debug)]
pub enum WatchMsg {
    /// Complete lines of a file, in order; `end_offset` is the file offset after them.
    Lines {
        watch: usize,
        file: FileKey,
        path: PathBuf,
        lines: Vec<Vec<u8>>,
        end_offset: u64,
    },
    /// The file was let go (rotated away, deleted): nothing more will come from it.
    Closed { file: FileKey, path: PathBuf },
}

enum Wake {
    Fs,
    Stop,
}

/// The running watcher threads.
pub struct Watcher {
    threads: Vec<(std_mpsc::Sender<Wake>, JoinHandle<()>)>,
    /// Checked between batches, so a stop does not wait for a long file to be read.
    stopping: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts one thread per entry. Lines go to `tx`; when `tx` is full the threads wait,
    /// which is the back-pressure that keeps a burst from filling memory.
    pub fn spawn(watches: &[WatchConfig], tx: mpsc::Sender<WatchMsg>) -> Watcher {
        let stopping = Arc::new(AtomicBool::new(false));
        let threads = watches
            .iter()
            .enumerate()
            .map(|(index, cfg)| {
                let (wake_tx, wake_rx) = std_mpsc::channel();
                let mut entry = Entry::new(index, cfg.clone(), tx.clone(), wake_tx.clone());
                entry.stopping = stopping.clone();
                let handle = std::thread::Builder::new()
                    .name(format!("watch-{index}"))
                    .spawn(move || entry.run(wake_rx))
                    .expect("spawning a watcher thread");
                (wake_tx, handle)
            })
            .collect();
        Watcher { threads, stopping }
    }

    /// Stops every thread after its current read and waits for them.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Relaxed);
        for (tx, _) in &self.threads {
            let _ = tx.send(Wake::Stop);
        }
        for (_, handle) in self.threads {
            let _ = handle.join();
        }
    }
}

struct Followed {
    key: FileKey,
    follower: Follower,
    /// When the file stopped matching the glob (renamed away or deleted).
    missing_since: Option<Instant>,
}

struct Entry {
    index: usize,
    cfg: WatchConfig,
    tx: mpsc::Sender<WatchMsg>,
    wake: std_mpsc::Sender<Wake>,
    files: HashMap<FileId, Followed>,
    next_key: FileKey,
    first_scan: bool,
    /// Paths already warned about (unreadable), so a bad file is one log line, not one
    /// per second.
    warned: HashSet<PathBuf>,
    fs_watcher: Option<notify::RecommendedWatcher>,
    stopping: Arc<AtomicBool>,
}

impl Entry {
    fn new(
        index: usize,
        cfg: WatchConfig,
        tx: mpsc::Sender<WatchMsg>,
        wake: std_mpsc::Sender<Wake>,
    ) -> Entry {
        Entry {
            index,
            cfg,
            tx,
            wake,
            files: HashMap::new(),
            next_key: (index as u64) << 40,
            first_scan: true,
            warned: HashSet::new(),
            fs_watcher: None,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A rotated file is kept this long after it left the glob, for its writer's last
    /// lines.
    fn linger(&self) -> Duration {
        (self.cfg.poll_interval * 2).max(Duration::from_secs(2))
    }

    fn run(mut self, wake: std_mpsc::Receiver<Wake>) {
        tracing::info!(watch = %self.cfg.path, mode = ?self.cfg.mode, "watching");
        loop {
            if self.cfg.mode == WatchMode::Notify && self.fs_watcher.is_none() {
                self.fs_watcher = self.start_fs_watcher();
            }
            if !self.scan() {
                return;
            }
            match wake.recv_timeout(self.cfg.poll_interval) {
                Ok(Wake::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Fs) | Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            }
            // Coalesce a storm of events into one scan.
            while let Ok(w) = wake.try_recv() {
                if matches!(w, Wake::Stop) {
                    return;
                }
            }
        }
    }

    fn start_fs_watcher(&self) -> Option<notify::RecommendedWatcher> {
        let (dir, recursive) = discovery::base_dir(&self.cfg.path);
        if !dir.is_dir() {
            return None; // tried again at the next scan: the folder may appear later
        }
        let wake = self.wake.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            // An error (e.g. queue overflow) also means "look again".
            if res.as_ref().map_or(true, |e| !e.kind.is_access()) {
                let _ = wake.send(Wake::Fs);
            }
        };
        let mode = if recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        match notify::recommended_watcher(handler).and_then(|mut w| w.watch(&dir, mode).map(|()| w))
        {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "no file events for this folder; relying on the timer");
                None
            }
        }
    }

    /// One pass: find files, read them, let go of rotated ones. `false` when the
    /// receiving side is gone (shutdown).
    fn scan(&mut self) -> bool {
        let start_at_end = self.first_scan && self.cfg.start == StartAt::End;
        self.first_scan = false;
        let mut seen = HashSet::new();
        for path in discovery::matches(&self.cfg.path) {
            let id = match identity::path_id(&path) {
                Ok(id) => id,
                Err(e) => {
                    self.warn_once(&path, &e);
                    continue;
                }
            };
            seen.insert(id);
            if let Some(f) = self.files.get_mut(&id) {
                f.missing_since = None;
                if f.follower.path != path {
                    tracing::info!(from = %f.follower.path.display(), to = %path.display(), "file renamed");
                    f.follower.path = path;
                }
                continue;
            }
            match Follower::open(&path, start_at_end, self.cfg.max_line_bytes) {
                Ok(follower) => {
                    self.warned.remove(&path);
                    tracing::info!(file = %path.display(), offset = follower.offset(), "following");
                    let key = self.next_key;
                    self.next_key += 1;
                    self.files.insert(
                        follower.id,
                        Followed {
                            key,
                            follower,
                            missing_since: None,
                        },
                    );
                }
                Err(e) => self.warn_once(&path, &e),
            }
        }

        let now = Instant::now();
        let linger = self.linger();
        let mut gone = Vec::new();
        let ids: Vec<FileId> = self.files.keys().copied().collect();
        for id in ids {
            let Some(f) = self.files.get_mut(&id) else {
                continue;
            };
            if !seen.contains(&id) {
                f.missing_since.get_or_insert(now);
            }
            if self.stopping.load(Ordering::Relaxed)
                || !read_all(self.index, f, &self.tx, &self.stopping)
            {
                return false;
            }
            if f.missing_since
                .is_some_and(|t| now.duration_since(t) >= linger)
            {
                gone.push(id);
            }
        }
        for id in gone {
            if let Some(mut f) = self.files.remove(&id) {
                tracing::info!(file = %f.follower.path.display(), "file rotated away or deleted: read to its end, let go");
                if let Some(last) = f.follower.take_partial() {
                    let msg = WatchMsg::Lines {
                        watch: self.index,
                        file: f.key,
                        path: f.follower.path.clone(),
                        lines: vec![last],
                        end_offset: f.follower.offset(),
                    };
                    if self.tx.blocking_send(msg).is_err() {
                        return false;
                    }
                }
                let closed = WatchMsg::Closed {
                    file: f.key,
                    path: f.follower.path,
                };
                if self.tx.blocking_send(closed).is_err() {
                    return false;
                }
            }
        }
        true
    }

    fn warn_once(&mut self, path: &std::path::Path, e: &std::io::Error) {
        if self.warned.insert(path.to_path_buf()) {
            tracing::warn!(file = %path.display(), error = %e, "cannot read file; will try again");
        }
    }
}

/// Reads a file to its current end in bounded batches. `false` when the receiver is gone.
fn read_all(
    watch: usize,
    f: &mut Followed,
    tx: &mpsc::Sender<WatchMsg>,
    stopping: &AtomicBool,
) -> bool {
    loop {
        if stopping.load(Ordering::Relaxed) {
            return false;
        }
        let mut lines = Vec::new();
        let read = match f.follower.read_lines(&mut lines, BATCH_BYTES) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(file = %f.follower.path.display(), error = %e, "read failed; will try again");
                return true;
            }
        };
        for chunk in chunks(lines) {
            let msg = WatchMsg::Lines {
                watch,
                file: f.key,
                path: f.follower.path.clone(),
                lines: chunk,
                end_offset: f.follower.offset(),
            };
            if tx.blocking_send(msg).is_err() {
                return false;
            }
        }
        if read < BATCH_BYTES {
            return true;
        }
    }
}

fn chunks(mut lines: Vec<Vec<u8>>) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while lines.len() > BATCH_LINES {
        let rest = lines.split_off(BATCH_LINES);
        out.push(lines);
        lines = rest;
    }
    if !lines.is_empty() {
        out.push(lines);
    }
    out
}
