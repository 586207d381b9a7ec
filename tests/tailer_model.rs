//! A model-based test of the watcher's [`Tailer`], in the spirit of Vector's file-source
//! `model_tests`: random sequences of writer operations (appends, half-written lines,
//! rename rotation and writes to the rotated file, copy-truncate, deletion, renames out
//! of the glob, new files at freed names), scans, restarts and crashes, run against real
//! files in a temporary folder, and checked against a model of what was written.
//!
//! The harness drives the tailer synchronously and plays the pipeline: a message is
//! "committed" by appending its lines to the output and storing its checkpoint (or, for
//! `Closed`, its last line and forgetting the checkpoint), as the store does in one
//! transaction. A crash throws away whatever the sink got after some point, and the next
//! tailer starts from the committed checkpoints only.
//!
//! The promise checked: every complete line written to a watched file is committed
//! exactly once, in order per file, across rotations, restarts and crashes; a deleted
//! file's unterminated last line comes out once it is let go; nothing is committed that
//! was never written. The only losses allowed are the inherent ones (see [`Model`]).

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use protowatch::config::{
    DEFAULT_FORGET_AFTER, DEFAULT_MAX_FILES, DEFAULT_MAX_LINE_BYTES, Encoding, Format, StartAt,
    WatchConfig, WatchMode,
};
use protowatch::watcher::checkpoints::Checkpoint;
use protowatch::watcher::discovery;
use protowatch::watcher::identity::{FileId, path_id};
use protowatch::watcher::{Resume, Tailer, WatchMsg};

thread_local! {
    /// Whether the tailers of this test keep files open between reads: the platform's
    /// way by default (not on Windows, see the watcher), the other way in the tests
    /// that say so, so both are checked everywhere.
    static HOLD_OPEN: std::cell::Cell<bool> =
        const { std::cell::Cell::new(protowatch::watcher::HOLD_FILES_OPEN) };
}

fn holds_files_open() -> bool {
    HOLD_OPEN.with(std::cell::Cell::get)
}

// ---------------------------------------------------------------------------------------
// Harness: a tailer over a temporary folder, and a committing sink
// ---------------------------------------------------------------------------------------

/// The folder the glob is in, inside the temporary folder (so it can go away).
const WATCHED: &str = "w";

/// Out of file descriptors, as the `glob` of a folder of thousands of files once was.
fn emfile() -> std::io::Error {
    #[cfg(unix)]
    return std::io::Error::from_raw_os_error(24);
    #[cfg(not(unix))]
    return std::io::Error::from_raw_os_error(4); // ERROR_TOO_MANY_OPEN_FILES
}

fn permission_denied() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::PermissionDenied)
}

struct Harness {
    dir: tempfile::TempDir,
    tailer: Option<Tailer>,
    /// The committed checkpoints, by file identity: what a restart resumes from.
    checkpoints: HashMap<FileId, Checkpoint>,
    /// Of those, the ones of files let go, with until when they are kept.
    let_go_until: HashMap<FileId, i64>,
    /// Every committed line with the identity it was read from, in commit order: the
    /// complete lines of `Lines` and the `last` of `Closed`.
    output: Vec<(FileId, Vec<u8>)>,
    started_before: bool,
    /// Listings fail with this (kept across restarts: the cause is outside the agent).
    fault: Option<fn() -> std::io::Error>,
}

/// What one scan committed besides lines.
#[derive(Debug, Default)]
struct Committed {
    /// Identities of the files let go (`Closed`), in order.
    closed: Vec<FileId>,
    /// How many messages the sink got in all (committed or not).
    messages: usize,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join(WATCHED)).expect("the watched folder");
        let mut h = Harness {
            dir,
            tailer: None,
            checkpoints: HashMap::new(),
            let_go_until: HashMap::new(),
            output: Vec::new(),
            started_before: false,
            fault: None,
        };
        h.start();
        h
    }

    fn path(&self, name: &str) -> PathBuf {
        self.folder().join(name)
    }

    /// The watched folder.
    fn folder(&self) -> PathBuf {
        self.dir.path().join(WATCHED)
    }

    /// Where the watched folder is while it is away.
    fn away(&self) -> PathBuf {
        self.dir.path().join("away")
    }

    fn config(&self) -> WatchConfig {
        WatchConfig {
            // `*.log*`, so that rotated names (`f0.log.3`) still match.
            path: format!("{}/*.log*", self.folder().display()),
            encoding: Encoding::Auto,
            start: StartAt::Beginning,
            mode: WatchMode::Poll,
            poll_interval: Duration::from_millis(100),
            format: Format::Sonix,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_files: DEFAULT_MAX_FILES,
            forget_after: DEFAULT_FORGET_AFTER,
            follow_links: false,
        }
    }

    /// Builds a tailer from the committed checkpoints, as the agent does at start.
    fn start(&mut self) {
        assert!(self.tailer.is_none(), "already running");
        let resume = Resume {
            checkpoints: self.checkpoints.clone(),
            let_go_until: self.let_go_until.clone(),
            started_before: self.started_before,
        };
        self.started_before = true;
        let mut tailer = Tailer::new(0, self.config(), resume);
        tailer.set_linger(Duration::ZERO);
        tailer.set_hold_open(holds_files_open());
        tailer.set_listing_fault(self.fault);
        self.tailer = Some(tailer);
    }

    fn stop(&mut self) {
        self.tailer = None;
    }

    fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// One scan that commits everything.
    fn scan(&mut self) -> Committed {
        self.scan_until(None, false)
    }

    /// One scan that commits the first `keep` messages and loses the rest (`stop`: the
    /// sink refuses the first message it loses, as at shutdown; else it takes them all and
    /// throws them away, as a pipeline that dies before its commits).
    fn scan_until(&mut self, keep: Option<usize>, stop: bool) -> Committed {
        let tailer = self.tailer.as_mut().expect("tailer running");
        let mut got = Vec::new();
        let mut messages = 0;
        let finished = tailer.scan(Instant::now(), &mut |msg| {
            messages += 1;
            if keep.is_some_and(|k| messages > k) {
                return !stop;
            }
            got.push(msg);
            true
        });
        assert!(
            finished || (stop && keep.is_some()),
            "scan stopped although the sink never refused"
        );
        let mut committed = Committed {
            messages,
            ..Committed::default()
        };
        // Where each matched file is now (nothing moved since the scan began).
        let names: HashMap<FileId, PathBuf> = discovery::matches(&self.config().path)
            .into_iter()
            .filter_map(|p| Some((path_id(&p).ok()?, p)))
            .collect();
        for msg in got {
            match msg {
                WatchMsg::Lines {
                    watch,
                    checkpoint,
                    lines,
                    ..
                } => {
                    assert_eq!(watch, 0);
                    assert!(!lines.is_empty(), "a Lines message without lines");
                    let id = checkpoint.id;
                    // (A tailer that cannot list the folder cannot know new names.)
                    if let Some(name) = names.get(&id).filter(|_| self.fault.is_none()) {
                        assert_eq!(&checkpoint.path, name, "a checkpoint with a stale name");
                    }
                    self.output.extend(lines.into_iter().map(|l| (id, l)));
                    self.checkpoints.insert(id, checkpoint);
                    self.let_go_until.remove(&id);
                }
                WatchMsg::Closed {
                    watch,
                    checkpoint,
                    last,
                    keep_until_ms,
                    ..
                } => {
                    assert_eq!(watch, 0);
                    let id = checkpoint.id;
                    self.output.extend(last.map(|l| (id, l)));
                    // Kept, marked as let go, as the store does.
                    self.checkpoints.insert(id, checkpoint);
                    self.let_go_until.insert(id, keep_until_ms);
                    committed.closed.push(id);
                }
                WatchMsg::Forget { watch, id } => {
                    assert_eq!(watch, 0);
                    self.checkpoints.remove(&id);
                    self.let_go_until.remove(&id);
                }
                WatchMsg::Wake => panic!("the watcher never sends Wake"),
            }
        }
        committed
    }

    /// Scans, commits the first `keep` messages, and restarts from what was committed.
    fn crash_restart(&mut self, keep: usize, stop: bool) -> Committed {
        let c = self.scan_until(Some(keep), stop);
        self.restart();
        c
    }

    /// The committed lines read from the file `id`, as text.
    fn lines_of(&self, id: FileId) -> Vec<String> {
        self.output
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    /// The committed lines that start with `prefix`, as text: for files that may share
    /// an identity (a reused inode on a file system without creation times).
    fn lines_starting(&self, prefix: &str) -> Vec<String> {
        self.output
            .iter()
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    fn all_lines(&self) -> Vec<String> {
        self.output
            .iter()
            .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
            .collect()
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(bytes).expect("append");
}

/// Truncates `path` in place (same file, same identity) and writes `bytes` from 0.
fn truncate_and_write(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(bytes).expect("rewrite");
}

fn create(path: &Path, bytes: &[u8]) -> FileId {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.write_all(bytes).expect("create");
    drop(f);
    path_id(path).expect("identity of a new file")
}

fn text_lines(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|s| s.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------

/// Files are written at `f{slot}.log`.
const SLOTS: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    /// `n` complete lines (completing a half-written line first).
    Append {
        slot: usize,
        n: usize,
    },
    /// The first half of a line, without its newline; the next write to the file
    /// completes it.
    PartialAppend {
        slot: usize,
    },
    /// `f{slot}.log` → `f{slot}.log.{k}` (still matched), and a fresh empty `f{slot}.log`.
    RenameRotate {
        slot: usize,
    },
    /// A scan, then copy `f{slot}.log` to `f{slot}.copy{k}` (not matched) and truncate
    /// it to 0 in place: from then on it is a new logical file with the same identity.
    CopyTruncate {
        slot: usize,
    },
    /// Remove `f{slot}.log` (`away`: rename it out of the glob, to `f{slot}.away{k}`), if
    /// the running tailer has seen it. Either way the tailer reads it to its end and
    /// lets it go.
    Delete {
        slot: usize,
        away: bool,
    },
    /// `n` lines to the newest rotated file of `slot`: its writer still had it open.
    AppendRotated {
        slot: usize,
        n: usize,
    },
    /// Remove the oldest rotated file of `slot`, if the running tailer has seen it.
    DeleteRotated {
        slot: usize,
    },
    /// A new file with `n` lines at `f{slot}.log`, if that name is free.
    Recreate {
        slot: usize,
        n: usize,
    },
    Scan,
    Restart,
    /// A scan of which only the first `keep` messages are committed, then a restart.
    CrashRestart {
        keep: usize,
        stop: bool,
    },
    /// The watched folder goes away (renamed, as a share that is unmounted) for `scans`
    /// scans, `n` lines are written to each live file meanwhile (on the other side of the
    /// share), the agent restarts meanwhile if `restart`; then it comes back and a scan
    /// follows.
    FolderAway {
        scans: usize,
        n: usize,
        restart: bool,
    },
    /// The same with the folder in place and every listing failing: out of file
    /// descriptors (`EMFILE`), or (`denied`) the folder cannot be read for a moment.
    ListingFails {
        denied: bool,
        scans: usize,
        n: usize,
        restart: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// On disk under some matched name.
    Live,
    /// Removed from the folder, or renamed out of the glob: gone for the tailer.
    Deleted,
    /// Copy-truncated: its content is gone from the watched file (and all of it was
    /// committed first); the file goes on as a new logical file.
    Retired,
}

/// One logical file: what was written to it, as a sequence of lines.
#[derive(Debug)]
struct LFile {
    path: PathBuf,
    id: FileId,
    state: State,
    /// The complete lines written, in order.
    complete: Vec<Vec<u8>>,
    /// A half-written last line: (written part, the rest with its newline).
    partial: Option<(Vec<u8>, Vec<u8>)>,
    next_seq: usize,
    /// The running tailer has found it (so it holds it open and can read it to its end
    /// even after it is deleted).
    held: bool,
    /// Deleted, and its `Closed` not committed yet.
    awaiting_close: bool,
    /// Deleted, and the tailer that held it went away before its `Closed` was committed:
    /// what was not committed by then is lost for good (nobody can open the file any
    /// more). Its committed lines must still be a prefix of what was written.
    lossy: bool,
}

/// The model of the folder. The inherent losses it allows: a file deleted (or renamed
/// out of the glob) before any tailer saw it is never read, so `Delete` only removes
/// files the running tailer holds; such a file whose `Closed` was not committed when its
/// tailer went away (restart, crash) loses what was not committed; copy-truncate loses
/// the half-written line (the scan right before it commits every complete line).
struct Model {
    files: Vec<LFile>,
    slots: [Option<usize>; SLOTS],
    /// The files rotated away from each slot and still on disk, oldest first.
    rotated: [Vec<usize>; SLOTS],
    next_suffix: usize,
    stats: Stats,
}

/// What a run exercised, printed with `TAILER_MODEL_STATS=1`.
#[derive(Debug, Default)]
struct Stats {
    closed: usize,
    closed_with_last: usize,
    lost_in_crash: usize,
    reused_inodes: usize,
    lossy_files: usize,
    copy_truncates: usize,
    rotations: usize,
    away: usize,
    listing_faults: usize,
}

const PAD: &str = "abcdefghijklmnopqrstuvwxyz";

/// Line `seq` of logical file `lid`, without its newline: unique, with its owner in it.
/// Returns the line and where its prefix `L{lid}:{seq}:` ends.
fn make_line(lid: usize, seq: usize) -> (Vec<u8>, usize) {
    let head = format!("L{lid}:{seq}:");
    let pad = 2 + (lid * 7 + seq * 5) % 17;
    let line = format!("{head}{}", &PAD[..pad]);
    (line.into_bytes(), head.len())
}

/// The logical file a committed line claims to come from.
fn owner(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let rest = text.strip_prefix('L')?;
    let (lid, rest) = rest.split_once(':')?;
    let (seq, _) = rest.split_once(':')?;
    seq.parse::<usize>().ok()?;
    lid.parse().ok()
}

impl Model {
    fn new() -> Model {
        Model {
            files: Vec::new(),
            slots: [None; SLOTS],
            rotated: Default::default(),
            next_suffix: 1,
            stats: Stats::default(),
        }
    }

    fn slot_path(h: &Harness, slot: usize) -> PathBuf {
        h.path(&format!("f{slot}.log"))
    }

    /// A new logical file at `path`, created with `n` lines.
    fn new_file(&mut self, path: PathBuf, n: usize) -> usize {
        let lid = self.files.len();
        let id = create(&path, b"");
        if self
            .files
            .iter()
            .any(|f| f.state == State::Deleted && f.id.index == id.index)
        {
            self.stats.reused_inodes += 1;
        }
        let f = LFile {
            id,
            path,
            state: State::Live,
            complete: Vec::new(),
            partial: None,
            next_seq: 0,
            held: false,
            awaiting_close: false,
            lossy: false,
        };
        self.files.push(f);
        self.append_lines(lid, n);
        lid
    }

    /// The file at `slot`, created (empty) if the name is free: a writer that opens its
    /// protocol with `O_CREAT`.
    fn slot_file(&mut self, h: &Harness, slot: usize) -> usize {
        match self.slots[slot] {
            Some(lid) => lid,
            None => {
                let lid = self.new_file(Self::slot_path(h, slot), 0);
                self.slots[slot] = Some(lid);
                lid
            }
        }
    }

    /// Writes the rest of the half-written line of `lid`, if any.
    fn complete_partial(&mut self, lid: usize) {
        let f = &mut self.files[lid];
        if let Some((first, rest)) = f.partial.take() {
            append(&f.path, &rest);
            let mut line = first;
            line.extend_from_slice(&rest[..rest.len() - 1]);
            f.complete.push(line);
        }
    }

    fn append_lines(&mut self, lid: usize, n: usize) {
        self.complete_partial(lid);
        let f = &mut self.files[lid];
        let mut bytes = Vec::new();
        for _ in 0..n {
            let (line, _) = make_line(lid, f.next_seq);
            f.next_seq += 1;
            bytes.extend_from_slice(&line);
            bytes.push(b'\n');
            f.complete.push(line);
        }
        append(&f.path, &bytes);
    }

    fn append_partial(&mut self, lid: usize) {
        self.complete_partial(lid);
        let f = &mut self.files[lid];
        let (line, head) = make_line(lid, f.next_seq);
        f.next_seq += 1;
        let cut = head + (line.len() - head) / 2;
        let first = line[..cut].to_vec();
        let mut rest = line[cut..].to_vec();
        rest.push(b'\n');
        append(&f.path, &first);
        f.partial = Some((first, rest));
    }

    /// Applies what a scan committed to the model.
    fn committed(&mut self, c: &Committed) -> Result<(), String> {
        for id in &c.closed {
            // Not holding files open, the tailer can only compare first bytes to tell a
            // renamed file from another with a reused identity, and where they prove
            // nothing (an empty file, a file truncated and rewritten before it was read
            // again) it takes the file as new: the old one is let go, having nothing left,
            // and the new one is read from 0. The final check still requires every line
            // once.
            if !holds_files_open()
                && !self.files.iter().any(|f| f.awaiting_close && f.id == *id)
                && self.files.iter().any(|f| f.id == *id)
            {
                continue;
            }
            // The same where the tailer closed its files because it could not see them
            // (a folder away, a listing that failed) and they were renamed meanwhile.
            if !self.files.iter().any(|f| f.awaiting_close && f.id == *id)
                && self
                    .files
                    .iter()
                    .any(|f| f.id == *id && f.state == State::Live && !f.held)
            {
                continue;
            }
            // A file that went away while no tailer ran is let go by the next one, once
            // it has looked: its checkpoint is kept, marked as let go.
            if !self.files.iter().any(|f| f.awaiting_close && f.id == *id)
                && self
                    .files
                    .iter()
                    .any(|f| f.id == *id && f.state == State::Deleted)
                && !self
                    .files
                    .iter()
                    .any(|f| f.id == *id && f.state == State::Live)
            {
                continue;
            }
            let Some(f) = self
                .files
                .iter_mut()
                .find(|f| f.awaiting_close && f.id == *id)
            else {
                return Err(format!(
                    "Closed for {id:?}, which is no deleted file awaiting its close"
                ));
            };
            f.awaiting_close = false;
            self.stats.closed += 1;
            self.stats.closed_with_last += usize::from(f.partial.is_some());
        }
        Ok(())
    }

    fn scan(&mut self, h: &mut Harness) -> Result<(), String> {
        let c = h.scan();
        self.committed(&c)?;
        for f in &mut self.files {
            if f.state == State::Live {
                f.held = true;
            }
        }
        Ok(())
    }

    /// The running tailer went away: what it held and had not committed is lost if
    /// nobody can open it again.
    fn tailer_gone(&mut self) {
        for f in &mut self.files {
            f.held = false;
            if f.awaiting_close {
                f.awaiting_close = false;
                f.lossy = true;
                self.stats.lossy_files += 1;
            }
        }
    }

    fn apply(&mut self, h: &mut Harness, op: &Op) -> Result<(), String> {
        match *op {
            Op::Append { slot, n } => {
                let lid = self.slot_file(h, slot);
                self.append_lines(lid, n);
            }
            Op::PartialAppend { slot } => {
                let lid = self.slot_file(h, slot);
                self.append_partial(lid);
            }
            Op::RenameRotate { slot } => {
                let Some(lid) = self.slots[slot].take() else {
                    return Ok(());
                };
                let to = h.path(&format!("f{slot}.log.{}", self.next_suffix));
                self.next_suffix += 1;
                std::fs::rename(&self.files[lid].path, &to).expect("rename");
                self.files[lid].path = to;
                self.rotated[slot].push(lid);
                self.stats.rotations += 1;
                // The old file keeps its half-written line: its writer may finish it
                // (`AppendRotated`, or at the end in `finish`).
                let fresh = self.new_file(Self::slot_path(h, slot), 0);
                self.slots[slot] = Some(fresh);
            }
            Op::CopyTruncate { slot } => {
                let Some(lid) = self.slots[slot] else {
                    return Ok(());
                };
                // Copy-truncate loses whatever was written after the last read: read first.
                self.scan(h)?;
                let path = self.files[lid].path.clone();
                let copy = h.path(&format!("f{slot}.copy{}", self.next_suffix));
                self.next_suffix += 1;
                std::fs::copy(&path, &copy).expect("copy");
                truncate_and_write(&path, b"");
                self.stats.copy_truncates += 1;
                let old = &mut self.files[lid];
                old.state = State::Retired;
                // The half-written line lives on only in the copy — unless the tailer does
                // not hold files open and the file goes away before it reads again: then
                // it cannot see the truncation and gives the fragment it had read.
                if holds_files_open() {
                    old.partial = None;
                } else {
                    old.lossy = true;
                }
                let (id, held) = (old.id, old.held);
                let new = self.files.len();
                self.files.push(LFile {
                    path,
                    id,
                    state: State::Live,
                    complete: Vec::new(),
                    partial: None,
                    next_seq: 0,
                    held,
                    awaiting_close: false,
                    lossy: false,
                });
                self.slots[slot] = Some(new);
            }
            Op::Delete { slot, away } => {
                let Some(lid) = self.slots[slot] else {
                    return Ok(());
                };
                if !self.files[lid].held {
                    // Never seen by a tailer: deleting it would lose it inherently.
                    return Ok(());
                }
                if away {
                    let to = h.path(&format!("f{slot}.away{}", self.next_suffix));
                    self.next_suffix += 1;
                    std::fs::rename(&self.files[lid].path, to).expect("rename away");
                } else {
                    std::fs::remove_file(&self.files[lid].path).expect("delete");
                }
                let f = &mut self.files[lid];
                f.state = State::Deleted;
                f.awaiting_close = true;
                // Windows holds files open only while reading: what was written after
                // the last read of a file that is then deleted is not seen.
                f.lossy |= !holds_files_open();
                self.slots[slot] = None;
            }
            Op::AppendRotated { slot, n } => {
                if let Some(&lid) = self.rotated[slot].last() {
                    self.append_lines(lid, n);
                }
            }
            Op::DeleteRotated { slot } => {
                let Some(&lid) = self.rotated[slot].first() else {
                    return Ok(());
                };
                if !self.files[lid].held {
                    return Ok(());
                }
                std::fs::remove_file(&self.files[lid].path).expect("delete");
                let f = &mut self.files[lid];
                f.state = State::Deleted;
                f.awaiting_close = true;
                f.lossy |= !holds_files_open();
                self.rotated[slot].remove(0);
            }
            Op::Recreate { slot, n } => {
                if self.slots[slot].is_none() {
                    let lid = self.new_file(Self::slot_path(h, slot), n);
                    self.slots[slot] = Some(lid);
                }
            }
            Op::FolderAway { scans, n, restart } => {
                std::fs::rename(h.folder(), h.away()).expect("folder away");
                let (folder, away) = (h.folder(), h.away());
                let moved = |p: &Path, from: &Path, to: &Path| {
                    to.join(p.strip_prefix(from).expect("a path in the folder"))
                };
                for f in &mut self.files {
                    f.path = moved(&f.path, &folder, &away);
                }
                self.while_blind(h, scans, n, restart)?;
                std::fs::rename(h.away(), h.folder()).expect("folder back");
                for f in &mut self.files {
                    f.path = moved(&f.path, &away, &folder);
                }
                self.stats.away += 1;
                self.scan(h)?;
            }
            Op::ListingFails {
                denied,
                scans,
                n,
                restart,
            } => {
                let fault: fn() -> std::io::Error = if denied { permission_denied } else { emfile };
                h.fault = Some(fault);
                h.tailer
                    .as_mut()
                    .expect("tailer")
                    .set_listing_fault(Some(fault));
                self.while_blind(h, scans, n, restart)?;
                h.fault = None;
                h.tailer.as_mut().expect("tailer").set_listing_fault(None);
                self.stats.listing_faults += 1;
                self.scan(h)?;
            }
            Op::Scan => self.scan(h)?,
            Op::Restart => {
                h.restart();
                self.tailer_gone();
            }
            Op::CrashRestart { keep, stop } => {
                let c = h.crash_restart(keep, stop);
                self.stats.lost_in_crash += c.messages.saturating_sub(keep);
                self.committed(&c)?;
                self.tailer_gone();
            }
        }
        Ok(())
    }

    /// Scans while the tailer cannot see the folder, with writes between; nothing may
    /// be let go meanwhile.
    fn while_blind(
        &mut self,
        h: &mut Harness,
        scans: usize,
        n: usize,
        restart: bool,
    ) -> Result<(), String> {
        for i in 0..scans {
            if restart && i == scans / 2 {
                h.restart();
                self.tailer_gone();
            }
            let c = h.scan();
            // Files deleted before the folder went are let go once it is back, not now.
            if !c.closed.is_empty() {
                return Err(format!(
                    "let go of {:?} while the folder could not be seen",
                    c.closed
                ));
            }
            // It read them to their end and closed them.
            for f in &mut self.files {
                f.held = false;
            }
            if n > 0 {
                for lid in 0..self.files.len() {
                    if self.files[lid].state == State::Live {
                        self.append_lines(lid, n);
                    }
                }
            }
        }
        Ok(())
    }

    /// Catch-up: the writers finish their half-written lines, the tailer reads
    /// everything, then a restart must find nothing new.
    fn finish(&mut self, h: &mut Harness) -> Result<(), String> {
        for lid in 0..self.files.len() {
            if self.files[lid].state == State::Live {
                self.complete_partial(lid);
            }
        }
        self.scan(h)?;
        self.scan(h)?;
        // Not holding files open, an empty file deleted and recreated empty at the same
        // name with a reused identity (Wine maps file indexes to inodes) cannot be told
        // from one that stayed; it had nothing to lose.
        let release = !holds_files_open();
        if let Some(f) = self.files.iter().find(|f| {
            f.awaiting_close && !(release && f.complete.is_empty() && f.partial.is_none())
        }) {
            return Err(format!(
                "deleted file {} was never let go",
                f.path.display()
            ));
        }
        let before = h.output.len();
        h.restart();
        self.tailer_gone();
        self.scan(h)?;
        self.scan(h)?;
        if h.output.len() != before {
            let again: Vec<_> = h.output[before..]
                .iter()
                .map(|(_, l)| String::from_utf8_lossy(l).into_owned())
                .collect();
            return Err(format!(
                "a restart after everything was committed read again: {again:?}"
            ));
        }
        Ok(())
    }

    fn check(&self, h: &Harness) -> Result<(), String> {
        let mut per: Vec<Vec<&[u8]>> = vec![Vec::new(); self.files.len()];
        for (_, line) in &h.output {
            match owner(line) {
                Some(lid) if lid < self.files.len() => per[lid].push(line),
                _ => {
                    return Err(format!(
                        "committed a line that was never written: {:?}",
                        String::from_utf8_lossy(line)
                    ));
                }
            }
        }
        for (lid, f) in self.files.iter().enumerate() {
            let mut expected: Vec<&[u8]> = f.complete.iter().map(Vec::as_slice).collect();
            if (f.state == State::Deleted || f.lossy)
                && let Some((first, _)) = &f.partial
            {
                expected.push(first);
            }
            let actual = &per[lid];
            let ok = if f.lossy {
                // A prefix of what was written; its last line may be cut short where the
                // file went away in the middle of a line that was being written.
                expected.starts_with(actual)
                    || actual.split_last().is_some_and(|(last, init)| {
                        expected.starts_with(init)
                            && expected
                                .get(init.len())
                                .is_some_and(|next| next.starts_with(last))
                    })
            } else {
                *actual == expected
            };
            if !ok {
                let show = |v: &[&[u8]]| -> Vec<String> {
                    v.iter()
                        .map(|l| String::from_utf8_lossy(l).into_owned())
                        .collect()
                };
                return Err(format!(
                    "logical file {lid} ({}, {:?}{}): committed {:?}, written {:?}",
                    f.path.display(),
                    f.state,
                    if f.lossy { ", lossy" } else { "" },
                    show(actual),
                    show(&expected)
                ));
            }
        }
        Ok(())
    }
}

fn run_ops(ops: &[Op]) -> Result<(), String> {
    let mut h = Harness::new();
    let mut model = Model::new();
    for (i, op) in ops.iter().enumerate() {
        model
            .apply(&mut h, op)
            .map_err(|e| format!("at op {i} ({op:?}): {e}"))?;
    }
    model.finish(&mut h)?;
    model.check(&h)?;
    if std::env::var_os("TAILER_MODEL_STATS").is_some() {
        eprintln!("stats: ops={} {:?}", ops.len(), model.stats);
    }
    Ok(())
}

fn op() -> impl Strategy<Value = Op> {
    let slot = 0..SLOTS;
    prop_oneof![
        30 => (slot.clone(), 1..6usize).prop_map(|(slot, n)| Op::Append { slot, n }),
        // Now and then past the 1 KiB fingerprint.
        3 => (slot.clone(), 20..80usize).prop_map(|(slot, n)| Op::Append { slot, n }),
        8 => slot.clone().prop_map(|slot| Op::PartialAppend { slot }),
        6 => slot.clone().prop_map(|slot| Op::RenameRotate { slot }),
        5 => slot.clone().prop_map(|slot| Op::CopyTruncate { slot }),
        7 => (slot.clone(), prop::bool::weighted(0.3)).prop_map(|(slot, away)| Op::Delete { slot, away }),
        4 => (slot.clone(), 1..4usize).prop_map(|(slot, n)| Op::AppendRotated { slot, n }),
        3 => slot.clone().prop_map(|slot| Op::DeleteRotated { slot }),
        6 => (slot, 0..4usize).prop_map(|(slot, n)| Op::Recreate { slot, n }),
        20 => Just(Op::Scan),
        5 => Just(Op::Restart),
        6 => (0..6usize, any::<bool>()).prop_map(|(keep, stop)| Op::CrashRestart { keep, stop }),
        3 => (1..4usize, 0..3usize, prop::bool::weighted(0.3))
            .prop_map(|(scans, n, restart)| Op::FolderAway { scans, n, restart }),
        3 => (any::<bool>(), 1..4usize, 0..3usize, prop::bool::weighted(0.3))
            .prop_map(|(denied, scans, n, restart)| Op::ListingFails { denied, scans, n, restart }),
    ]
}

/// `TAILER_MODEL_CASES` overrides the number of cases (for a longer hunt).
fn cases() -> u32 {
    std::env::var("TAILER_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Other people work in this tree: keep failures out of `proptest-regressions/`.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_complete_line_once_in_order(ops in proptest::collection::vec(op(), 1..60)) {
        if let Err(e) = run_ops(&ops) {
            return Err(TestCaseError::fail(e));
        }
    }

    /// The same with files open only while reading, Windows' way, on Unix. (The other
    /// way round cannot work on Windows: a held handle keeps a deleted file's name taken
    /// where deletion is not POSIX-style, as under Wine, and the writer cannot recreate it.)
    #[cfg(not(windows))]
    #[test]
    fn every_complete_line_once_in_order_the_other_way(ops in proptest::collection::vec(op(), 1..60)) {
        HOLD_OPEN.with(|h| h.set(!protowatch::watcher::HOLD_FILES_OPEN));
        let result = run_ops(&ops);
        HOLD_OPEN.with(|h| h.set(protowatch::watcher::HOLD_FILES_OPEN));
        if let Err(e) = result {
            return Err(TestCaseError::fail(e));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The traps, one by one
// ---------------------------------------------------------------------------------------

#[test]
fn identical_first_lines_in_two_files() {
    let mut h = Harness::new();
    let a = create(&h.path("a.log"), b"same first line\nonly in a\n");
    let b = create(&h.path("b.log"), b"same first line\n");
    h.scan();
    append(&h.path("b.log"), b"only in b\n");
    h.restart();
    append(&h.path("a.log"), b"a again\n");
    h.scan();
    h.stop();
    // A byte-for-byte copy made while the tailer was down: the same fingerprint as a
    // committed checkpoint, but another file.
    std::fs::copy(h.path("a.log"), h.path("c.log")).unwrap();
    let c = path_id(&h.path("c.log")).unwrap();
    h.start();
    h.scan();
    h.restart();
    h.scan();
    assert_eq!(
        h.lines_of(a),
        text_lines(&["same first line", "only in a", "a again"])
    );
    assert_eq!(h.lines_of(b), text_lines(&["same first line", "only in b"]));
    assert_eq!(h.lines_of(c), h.lines_of(a));
}

#[test]
fn file_replaced_while_down() {
    let mut h = Harness::new();
    let path = h.path("a.log");
    let old = create(&path, b"old one\nold two\n");
    h.scan();
    h.stop();
    std::fs::remove_file(&path).unwrap();
    // Longer than the checkpoint's offset, so only identity and fingerprint tell.
    let new = create(&path, b"new one\nnew two\nnew three\n");
    h.start();
    h.scan();
    h.scan();
    assert_eq!(h.lines_starting("old"), text_lines(&["old one", "old two"]));
    assert_eq!(
        h.lines_starting("new"),
        text_lines(&["new one", "new two", "new three"])
    );
    assert_eq!(h.output.len(), 5);
    if old == new {
        // Same inode and no creation time: the fingerprint alone must have told.
        eprintln!("note: the new file has the old one's identity");
    }
}

#[test]
fn file_replaced_while_down_by_one_with_its_identity() {
    // As on a file system without creation times, where a reused inode is the same
    // `FileId`: the committed checkpoint then names the new file, with the old file's
    // fingerprint and offset. The new file must be read from its beginning.
    let mut h = Harness::new();
    let path = h.path("a.log");
    create(&path, b"old one\nold two\n");
    h.scan();
    h.stop();
    std::fs::remove_file(&path).unwrap();
    let new = create(&path, b"new one\nnew two\nnew three\n");
    let old_cp = h.checkpoints.drain().map(|(_, c)| c).next().unwrap();
    h.checkpoints.insert(new, Checkpoint { id: new, ..old_cp });
    h.output.clear();
    h.start();
    h.scan();
    assert_eq!(
        h.all_lines(),
        text_lines(&["new one", "new two", "new three"])
    );
}

#[test]
fn rotated_while_down() {
    let mut h = Harness::new();
    let path = h.path("a.log");
    let old = create(&path, b"one\ntwo\n");
    h.scan();
    append(&path, b"three\n"); // not read before the stop
    h.stop();
    std::fs::rename(&path, h.path("a.log.1")).unwrap();
    append(&h.path("a.log.1"), b"four\n"); // the writer finishing with the old file
    let new = create(&path, b"fresh one\n");
    h.start();
    h.scan();
    append(&path, b"fresh two\n");
    h.scan();
    assert_eq!(
        h.lines_of(old),
        text_lines(&["one", "two", "three", "four"])
    );
    assert_eq!(h.lines_of(new), text_lines(&["fresh one", "fresh two"]));
}

#[test]
fn rewritten_longer_between_two_scans() {
    let mut h = Harness::new();
    let path = h.path("a.log");
    let id = create(&path, b"short\n");
    h.scan();
    // Longer than before, so the length alone does not tell: the first bytes must.
    truncate_and_write(&path, b"a different and much longer first line\nsecond\n");
    h.scan();
    assert_eq!(
        h.lines_of(id),
        text_lines(&["short", "a different and much longer first line", "second"])
    );
}

/// A file longer than the fingerprint truncated and rewritten with `new_lines` lines
/// between two scans; then, if `delete`, deleted before a last scan.
fn rewrite_between_scans(old_lines: usize, new_lines: usize, delete: bool) {
    let mut h = Harness::new();
    let path = h.path("a.log");
    let old: Vec<String> = (0..old_lines).map(|i| format!("old line {i:03}")).collect();
    let new: Vec<String> = (0..new_lines).map(|i| format!("new line {i:03}")).collect();
    let id = create(&path, (old.join("\n") + "\n").as_bytes());
    h.scan();
    truncate_and_write(&path, (new.join("\n") + "\n").as_bytes());
    h.scan();
    if delete {
        std::fs::remove_file(&path).unwrap();
        h.scan();
    }
    let mut expected = old;
    expected.extend(new);
    assert_eq!(h.lines_of(id), expected);
}

#[test]
fn rewritten_longer_between_two_scans_past_the_fingerprint() {
    rewrite_between_scans(100, 150, false);
}

/// The same length: the first bytes and the modification time give the rewrite away,
/// so the new content is read before the file goes (it was once lost here).
#[test]
fn rewritten_to_the_same_length_between_two_scans() {
    rewrite_between_scans(100, 100, true);
}

#[test]
fn rewritten_shorter_with_the_same_first_kib() {
    // A long fixed header: the fingerprint is the same, only the length tells.
    let header: String = (0..40)
        .map(|i| format!("header line {i:02} ----------\n"))
        .collect();
    assert!(header.len() > 1024);
    let mut h = Harness::new();
    let path = h.path("a.log");
    let body: String = (0..40).map(|i| format!("old body {i:02}\n")).collect();
    create(&path, (header.clone() + &body).as_bytes());
    h.scan();
    truncate_and_write(&path, (header.clone() + "new body\n").as_bytes());
    h.scan();
    let mut expected: Vec<String> = header.lines().map(String::from).collect();
    expected.extend(body.lines().map(String::from));
    expected.extend(header.lines().map(String::from));
    expected.push("new body".into());
    assert_eq!(h.all_lines(), expected);
}

#[test]
fn inode_reuse_after_let_go() {
    // Delete a file, let the tailer let go of it (closing it), create another: on ext4
    // and tmpfs the new file often gets the freed inode. It must be read from its start.
    let mut reused = 0;
    for round in 0..5 {
        let mut h = Harness::new();
        let a = h.path("a.log");
        let b = h.path("b.log");
        let old = create(&a, b"first file, line one\nfirst file, line two\n");
        h.scan();
        std::fs::remove_file(&a).unwrap();
        let c = h.scan();
        assert_eq!(c.closed, vec![old], "round {round}");
        let new = create(
            &b,
            b"second file, one\nsecond file, two\nsecond file, three\n",
        );
        reused += usize::from(new.index == old.index);
        h.scan();
        assert_eq!(
            h.lines_starting("second"),
            text_lines(&["second file, one", "second file, two", "second file, three"]),
            "round {round}"
        );
        // And again at the same name.
        std::fs::remove_file(&b).unwrap();
        h.scan();
        create(&a, b"third\n");
        h.scan();
        h.restart();
        h.scan();
        assert_eq!(
            h.lines_starting("third"),
            text_lines(&["third"]),
            "round {round}"
        );
        assert_eq!(h.output.len(), 6, "round {round}");
    }
    eprintln!("inode reused in {reused} of 5 rounds");
}

#[test]
fn inode_reuse_while_down() {
    // The old file's checkpoint is still committed when a new file takes its inode: a
    // shorter one (the checkpoint's offset is past its end) and a longer one (only the
    // creation time or the fingerprint tell).
    let mut reused = 0;
    for (round, new_text) in [&b"new one\n"[..], b"new one\nnew two, a longer line\n"]
        .into_iter()
        .cycle()
        .take(6)
        .enumerate()
    {
        let mut h = Harness::new();
        let path = h.path("a.log");
        let old = create(&path, b"old one\nold two\n");
        h.scan();
        h.stop();
        std::fs::remove_file(&path).unwrap();
        let name = if round < 2 { "a.log" } else { "b.log" };
        let new = create(&h.path(name), new_text);
        reused += usize::from(new.index == old.index);
        h.start();
        h.scan();
        let expected: Vec<String> = std::str::from_utf8(new_text)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(h.lines_starting("new"), expected, "round {round}");
        assert_eq!(h.output.len(), 2 + expected.len(), "round {round}");
    }
    eprintln!("inode reused in {reused} of 6 rounds");
}

#[test]
fn deleted_file_gives_its_last_line_when_let_go() {
    let mut h = Harness::new();
    let path = h.path("a.log");
    let id = create(&path, b"one\n");
    h.scan();
    append(&path, b"two\nunterminated");
    std::fs::remove_file(&path).unwrap();
    let c = h.scan();
    assert_eq!(c.closed, vec![id]);
    if holds_files_open() {
        assert_eq!(h.lines_of(id), text_lines(&["one", "two", "unterminated"]));
    } else {
        // Windows: a file deleted before it was read again cannot be read any more.
        assert_eq!(h.lines_of(id), text_lines(&["one"]));
    }
    // Kept, marked as let go, so that the file is known again if it comes back.
    assert_eq!(h.let_go_until.keys().collect::<Vec<_>>(), vec![&id]);
}

#[test]
fn crash_reads_uncommitted_lines_again() {
    let mut h = Harness::new();
    let a = create(&h.path("a.log"), b"a1\na2\n");
    let b = create(&h.path("b.log"), b"b1\n");
    h.scan();
    append(&h.path("a.log"), b"a3\n");
    append(&h.path("b.log"), b"b2\nb3\n");
    let c = h.crash_restart(1, false);
    assert_eq!(c.messages, 2);
    h.scan();
    assert_eq!(h.lines_of(a), text_lines(&["a1", "a2", "a3"]));
    assert_eq!(h.lines_of(b), text_lines(&["b1", "b2", "b3"]));
}

#[test]
fn crash_between_batches_of_a_long_file() {
    // More than one read batch (256 KiB): a crash after the first batch's commit resumes
    // at that batch's checkpoint, in the middle of the file.
    let mut h = Harness::new();
    let lines: Vec<String> = (0..40_000)
        .map(|i| format!("line {i:06} of a long file"))
        .collect();
    let path = h.path("a.log");
    let id = create(&path, (lines.join("\n") + "\n").as_bytes());
    let c = h.crash_restart(1, true);
    assert!(c.messages >= 2, "{} messages", c.messages);
    let committed = h.output.len();
    assert!(0 < committed && committed < lines.len());
    append(&path, b"after the crash\n");
    h.scan();
    let mut expected = lines;
    expected.push("after the crash".into());
    assert_eq!(h.lines_of(id), expected);
}

// ---------------------------------------------------------------------------------------
// Watching at the edges: what cannot be seen is unknown, not deleted
// ---------------------------------------------------------------------------------------

#[test]
fn folder_away_for_many_scans_and_a_restart_repeats_nothing() {
    // The linger is zero here: a file taken as deleted would be let go at once, and read
    // again from 0 when it came back (the duplicates of a share that was away).
    let mut h = Harness::new();
    let a = create(&h.path("a.log"), b"a1\na2\n");
    let b = create(&h.path("b.log"), b"b1\n");
    h.scan();
    std::fs::rename(h.folder(), h.away()).unwrap();
    for _ in 0..5 {
        assert!(h.scan().closed.is_empty());
    }
    append(&h.away().join("a.log"), b"a3 written while away\n");
    h.restart();
    for _ in 0..3 {
        assert!(h.scan().closed.is_empty());
    }
    append(&h.away().join("b.log"), b"b2 written while away\n");
    std::fs::rename(h.away(), h.folder()).unwrap();
    h.scan();
    append(&h.path("a.log"), b"a4\n");
    h.scan();
    assert_eq!(
        h.lines_of(a),
        text_lines(&["a1", "a2", "a3 written while away", "a4"])
    );
    assert_eq!(h.lines_of(b), text_lines(&["b1", "b2 written while away"]));
}

#[test]
fn emfile_and_unreadable_folders_are_not_deletions() {
    for fault in [emfile as fn() -> std::io::Error, permission_denied] {
        let mut h = Harness::new();
        let a = create(&h.path("a.log"), b"one\n");
        h.scan();
        h.fault = Some(fault);
        h.tailer.as_mut().unwrap().set_listing_fault(Some(fault));
        append(&h.path("a.log"), b"two\n");
        for _ in 0..4 {
            assert!(h.scan().closed.is_empty());
        }
        // Seen or not, an open file is read to its end before it is closed; a file not
        // held open (Windows) cannot be opened meanwhile, and is read on once seen again.
        let meanwhile: &[&str] = if holds_files_open() {
            &["one", "two"]
        } else {
            &["one"]
        };
        assert_eq!(h.lines_of(a), text_lines(meanwhile));
        append(&h.path("a.log"), b"three\n");
        h.fault = None;
        h.tailer.as_mut().unwrap().set_listing_fault(None);
        h.scan();
        h.scan();
        assert_eq!(h.lines_of(a), text_lines(&["one", "two", "three"]));
        // A file really deleted while the listing failed is let go once it works again.
        let b = create(&h.path("b.log"), b"b\n");
        h.scan();
        h.tailer.as_mut().unwrap().set_listing_fault(Some(fault));
        std::fs::remove_file(h.path("b.log")).unwrap();
        assert!(h.scan().closed.is_empty());
        h.tailer.as_mut().unwrap().set_listing_fault(None);
        assert_eq!(h.scan().closed, vec![b]);
    }
}

#[test]
fn a_file_let_go_and_back_resumes_at_its_checkpoint() {
    // Renamed out of the glob (let go), and back under its name much later: the
    // checkpoint kept for `forget_after` says where it was.
    let mut h = Harness::new();
    let a = create(&h.path("a.log"), b"one\ntwo\n");
    h.scan();
    std::fs::rename(h.path("a.log"), h.path("a.parked")).unwrap();
    assert_eq!(h.scan().closed, vec![a]);
    h.scan();
    append(&h.path("a.parked"), b"three\n");
    h.restart();
    h.scan();
    std::fs::rename(h.path("a.parked"), h.path("a.log")).unwrap();
    h.scan();
    assert_eq!(h.lines_of(a), text_lines(&["one", "two", "three"]));
    assert!(
        h.let_go_until.is_empty(),
        "followed again, no longer let go"
    );
}

#[test]
fn a_share_mounted_again_under_another_device_resumes() {
    // A share mounted again may get another device number: the same path and the same
    // first bytes then say it is the same file.
    let mut h = Harness::new();
    let path = h.path("a.log");
    let a = create(&path, b"2026-11-20 14:03:12 INFO protocol opened\none\n");
    h.scan();
    h.stop();
    let mut cp = h.checkpoints.remove(&a).unwrap();
    let old = FileId {
        device: a.device + 1,
        ..a
    };
    cp.id = old;
    h.checkpoints.insert(old, cp);
    h.output.clear();
    append(&path, b"two\n");
    h.start();
    h.scan();
    assert_eq!(h.all_lines(), text_lines(&["two"]));
    assert!(
        !h.checkpoints.contains_key(&old),
        "the old identity is forgotten"
    );
    assert!(h.checkpoints.contains_key(&a));
    // Another file at that path on the other device (other first bytes) is new.
    let mut h = Harness::new();
    let path = h.path("a.log");
    let a = create(&path, b"first file\n");
    h.scan();
    h.stop();
    let mut cp = h.checkpoints.remove(&a).unwrap();
    cp.id.device += 1;
    cp.fingerprint = b"another file\n".to_vec();
    h.checkpoints.insert(cp.id, cp);
    h.output.clear();
    h.start();
    h.scan();
    assert_eq!(h.all_lines(), text_lines(&["first file"]));
}

#[cfg(not(windows))]
#[test]
fn thousands_of_files_few_open() {
    let mut h = Harness::new();
    h.tailer.as_mut().unwrap().set_max_open(8);
    let ids: Vec<FileId> = (0..300)
        .map(|i| {
            create(
                &h.path(&format!("p{i:03}.log")),
                format!("{i} first\n").as_bytes(),
            )
        })
        .collect();
    h.scan();
    let t = h.tailer.as_ref().unwrap();
    assert!(t.open_files() <= 8, "{} open", t.open_files());
    let mut rng = fastrand::Rng::with_seed(7);
    let mut expected: Vec<Vec<String>> = (0..300).map(|i| vec![format!("{i} first")]).collect();
    for round in 0..20 {
        for _ in 0..15 {
            let i = rng.usize(..300);
            let line = format!("{i} round {round}");
            append(
                &h.path(&format!("p{i:03}.log")),
                format!("{line}\n").as_bytes(),
            );
            expected[i].push(line);
        }
        h.scan();
        assert!(h.tailer.as_ref().unwrap().open_files() <= 8);
    }
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(h.lines_of(*id), expected[i], "file {i}");
    }
}
