//! Following one file: reading what was appended since last time, as complete lines.
//!
//! The follower keeps its file open, so a file renamed away (rotation) can still be read
//! to its end under any name. It hands out only complete lines, and the offset just
//! after the last of them — the only offset a checkpoint may hold. A partial last line
//! waits for its newline, and is handed out by [`Follower::take_partial`] when the file
//! is let go. A line longer than `max_line` is cut with a marker while it is read, so
//! memory stays bounded whatever a writer does.
//!
//! The first bytes of the file (its fingerprint) tell a truncated-and-rewritten file from
//! one that only grew: both can be longer than what was read, only one starts the same.
//!
//! A sparse file's holes read as NUL bytes with no newline: one "line" that is cut at
//! `max_line` like any other, and whose rest is only scanned for its end, so gigabytes of
//! them cost time, not memory. The time is bounded by the caller, which reads a file a
//! budget per pass ([`read_lines`](Follower::read_lines)'s `budget`, see
//! `watcher::READ_BUDGET_BYTES`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::identity::{FileId, file_id, open_shared};

/// Appended to a line that was longer than the limit.
pub const CUT_MARKER: &[u8] = b" [... line cut: longer than max_line_bytes]";
/// How many leading bytes identify a file's content.
pub const FINGERPRINT_LEN: usize = 1024;

const READ_CHUNK: usize = 64 * 1024;

/// A line gathered from the pieces it arrives in, cut with [`CUT_MARKER`] once it
/// passes the limit: the one rule by which the watcher and `protowatch replay` both cut
/// lines, so that a replay makes the events the agent would make.
#[derive(Debug, Default)]
pub struct LineBuf {
    bytes: Vec<u8>,
    /// The line went over the limit: the marker is on, its rest is skipped up to the
    /// newline.
    cutting: bool,
}

impl LineBuf {
    /// Adds `piece` (no newline in it), cutting the line at `max` bytes.
    pub fn extend(&mut self, piece: &[u8], max: usize) {
        if self.cutting {
            return;
        }
        let room = max.saturating_sub(self.bytes.len());
        if piece.len() > room {
            self.bytes.extend_from_slice(&piece[..room]);
            self.bytes.extend_from_slice(CUT_MARKER);
            self.cutting = true;
        } else {
            self.bytes.extend_from_slice(piece);
        }
    }

    /// The line as gathered so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Nothing gathered, and no line being skipped to its end.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty() && !self.cutting
    }

    /// Starts a new line, keeping the buffer's room.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.cutting = false;
    }

    /// Ends the line and hands it out; `None` when nothing was gathered.
    pub fn take(&mut self) -> Option<Vec<u8>> {
        self.cutting = false;
        (!self.bytes.is_empty()).then(|| std::mem::take(&mut self.bytes))
    }
}

pub struct Follower {
    pub path: PathBuf,
    pub id: FileId,
    /// `None` between reads where files are not held open (Windows, see `release`).
    file: Option<File>,
    /// Bytes of the file consumed (complete lines and the partial one).
    offset: u64,
    /// The offset just after the last complete line handed out.
    line_end: u64,
    fingerprint: Vec<u8>,
    /// The file length and modification time at the last read: while both stay, the
    /// content is taken to be unchanged and the head is not read again.
    last_len: u64,
    last_modified: Option<std::time::SystemTime>,
    /// The line read up to here, whose newline has not come yet.
    partial: LineBuf,
    max_line: usize,
    buf: Vec<u8>,
}

/// Where to start reading a file that was just found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    Beginning,
    End,
    /// A checkpoint's offset; used only if the file still starts with `fingerprint`.
    Offset(u64),
}

impl Follower {
    /// Opens `path`. With [`StartAt::Offset`] the fingerprint decides: the same content →
    /// resume there (from 0 if the file is now shorter); other content → from 0.
    pub fn open(
        path: &Path,
        start: StartAt,
        saved_fingerprint: &[u8],
        max_line: usize,
    ) -> io::Result<Follower> {
        Self::from_file(path, open_shared(path)?, start, saved_fingerprint, max_line)
    }

    /// As [`open`](Self::open), with the file already opened (with
    /// [`open_shared`]) at `path` and checked to be the one meant.
    pub fn from_file(
        path: &Path,
        file: File,
        start: StartAt,
        saved_fingerprint: &[u8],
        max_line: usize,
    ) -> io::Result<Follower> {
        let id = file_id(&file)?;
        let meta = file.metadata()?;
        let len = meta.len();
        let mut f = Follower {
            path: path.to_path_buf(),
            id,
            file: Some(file),
            offset: 0,
            line_end: 0,
            fingerprint: Vec::new(),
            last_len: len,
            last_modified: meta.modified().ok(),
            partial: LineBuf::default(),
            max_line,
            buf: Vec::new(),
        };
        f.fingerprint = f.read_head(FINGERPRINT_LEN)?;
        let offset = match start {
            StartAt::Beginning => 0,
            StartAt::End => len,
            StartAt::Offset(o) if o <= len && f.fingerprint.starts_with(saved_fingerprint) => o,
            StartAt::Offset(o) => {
                tracing::info!(file = %path.display(), checkpoint = o, len, "file changed since its checkpoint (truncated or replaced): reading it from the start");
                0
            }
        };
        f.handle()?.seek(SeekFrom::Start(offset))?;
        f.offset = offset;
        f.line_end = offset;
        Ok(f)
    }

    /// The offset just after the last complete line handed out.
    pub fn line_end(&self) -> u64 {
        self.line_end
    }

    /// How many bytes were left to read after the last read, by the length the file had
    /// then (0 for a file whose length says nothing, like those of `/proc`).
    pub fn unread(&self) -> u64 {
        self.last_len.saturating_sub(self.offset)
    }

    pub fn fingerprint(&self) -> &[u8] {
        &self.fingerprint
    }

    /// Whether the file is held open now.
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    /// When the file was last seen modified: the least recently written files are the
    /// first to be closed when too many are open.
    pub fn last_modified(&self) -> Option<std::time::SystemTime> {
        self.last_modified
    }

    /// Whether `meta`, just taken at this follower's path, says the file is as it was at
    /// the last read, and that read reached its end: the same length and modification
    /// time. Then a closed file need not be opened to be read or to have its first bytes
    /// compared.
    pub fn unchanged(&self, path: &Path, meta: &std::fs::Metadata) -> bool {
        let modified = meta.modified().ok();
        path == self.path
            && modified.is_some()
            && modified == self.last_modified
            && meta.len() == self.last_len
            && self.offset == self.last_len
    }

    /// Where the file stands: just after the last line handed out.
    pub fn checkpoint(&self) -> crate::watcher::checkpoints::Checkpoint {
        crate::watcher::checkpoints::Checkpoint {
            id: self.id,
            fingerprint: self.fingerprint.clone(),
            path: self.path.clone(),
            offset: self.line_end,
        }
    }

    /// The first `n` bytes (fewer if the file is shorter); leaves the position unchanged.
    fn read_head(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let file = self.handle()?;
        let pos = file.stream_position()?;
        file.seek(SeekFrom::Start(0))?;
        let mut head = Vec::with_capacity(n);
        file.take(n as u64).read_to_end(&mut head)?;
        file.seek(SeekFrom::Start(pos))?;
        Ok(head)
    }

    /// The open file; reopened by path (and checked to be the same file) after a
    /// [`release`](Self::release).
    fn handle(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let mut file = open_shared(&self.path)?;
            if file_id(&file)? != self.id {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "another file is at this path now",
                ));
            }
            file.seek(SeekFrom::Start(self.offset))?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("file handle missing"))
    }

    /// Opens the file again after a [`release`](Self::release), if it is still at its
    /// path.
    pub fn reopen(&mut self) -> io::Result<()> {
        self.handle().map(|_| ())
    }

    /// Whether the file at `path` starts with what this file started with: tells a file
    /// renamed to `path` from another file that got the same identity (an inode or file
    /// index reused where no creation time tells them apart).
    pub fn same_start_as(&self, path: &Path) -> bool {
        // Under another name the whole fingerprint must agree; at the same name a
        // shorter head that agrees is this file truncated (noticed at the next read).
        let renamed = path != self.path;
        let Ok(file) = open_shared(path) else {
            return false;
        };
        let mut head = Vec::with_capacity(self.fingerprint.len());
        if file
            .take(self.fingerprint.len() as u64)
            .read_to_end(&mut head)
            .is_err()
        {
            return false;
        }
        if renamed {
            // An empty file proves nothing: take it as another file (nothing is lost,
            // there was nothing to read).
            !self.fingerprint.is_empty() && head == self.fingerprint
        } else {
            self.fingerprint.starts_with(&head)
        }
    }

    /// Closes the file until the next read. On Windows an open handle keeps a deleted
    /// file's name taken (where deletion is not POSIX-style), so a writer that deletes
    /// and recreates its protocol would fail; there the watcher holds files open only
    /// while reading.
    pub fn release(&mut self) {
        self.file = None;
        // The read buffer goes too: of thousands of files few are read at a time.
        self.buf = Vec::new();
    }

    /// Notices a file that was truncated (shorter than what was read) or rewritten (its
    /// first bytes changed) and starts it over from 0.
    fn check_rewritten(
        &mut self,
        len: u64,
        modified: Option<std::time::SystemTime>,
    ) -> io::Result<()> {
        // A rewrite to the same length still moves the modification time.
        if len == self.last_len
            && modified.is_some()
            && modified == self.last_modified
            && self.fingerprint.len() >= FINGERPRINT_LEN
        {
            return Ok(());
        }
        let head = self.read_head(FINGERPRINT_LEN)?;
        let truncated = len < self.offset;
        let rewritten = !head.starts_with(&self.fingerprint);
        if truncated || rewritten {
            tracing::info!(file = %self.path.display(), truncated, rewritten, "file was truncated or rewritten: reading it again from the start");
            self.handle()?.seek(SeekFrom::Start(0))?;
            self.offset = 0;
            self.line_end = 0;
            self.partial.clear();
        }
        self.fingerprint = head;
        Ok(())
    }

    /// Reads appended data and pushes each complete line (without `\n`) to `out`, until
    /// the end of the file or until about `budget` bytes were read. Returns the bytes read.
    pub fn read_lines(&mut self, out: &mut Vec<Vec<u8>>, budget: usize) -> io::Result<usize> {
        let meta = self.handle()?.metadata()?;
        let (len, modified) = (meta.len(), meta.modified().ok());
        self.check_rewritten(len, modified)?;
        self.last_len = len;
        self.last_modified = modified;
        // The buffer is taken out for the loop so that `split` can borrow `self`.
        let mut buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            buf = vec![0; READ_CHUNK];
        }
        let result = self.read_into(&mut buf, out, budget);
        self.buf = buf;
        result
    }

    fn read_into(
        &mut self,
        buf: &mut [u8],
        out: &mut Vec<Vec<u8>>,
        budget: usize,
    ) -> io::Result<usize> {
        let mut total = 0;
        while total < budget {
            let n = match self.handle()?.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.split(&buf[..n], out);
        }
        Ok(total)
    }

    fn split(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let piece = &data[..nl.unwrap_or(data.len())];
            self.partial.extend(piece, self.max_line);
            match nl {
                Some(i) => {
                    out.push(self.partial.take().unwrap_or_default());
                    self.offset += i as u64 + 1;
                    self.line_end = self.offset;
                    data = &data[i + 1..];
                }
                None => {
                    self.offset += data.len() as u64;
                    break;
                }
            }
        }
    }

    /// The unterminated last line, if any: handed out when the file is let go. Afterwards
    /// [`line_end`](Self::line_end) is the end of everything read.
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        self.line_end = self.offset;
        self.partial.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn lines_partial_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        let mut w = File::create(&path).unwrap();
        let mut f = Follower::open(&path, StartAt::Beginning, b"", 16).unwrap();
        let mut out = Vec::new();
        w.write_all(b"one\ntw").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(out, vec![b"one".to_vec()]);
        assert_eq!(f.line_end(), 4);
        w.write_all(b"o\r\n0123456789abcdefghij\nend").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        let mut cut = b"0123456789abcdef".to_vec();
        cut.extend_from_slice(CUT_MARKER);
        assert_eq!(out[1..], [b"two\r".to_vec(), cut]);
        assert_eq!(f.line_end(), 4 + 5 + 21);
        assert_eq!(f.take_partial(), Some(b"end".to_vec()));
        assert_eq!(f.line_end(), 33);
        assert_eq!(f.take_partial(), None);
    }

    #[test]
    fn truncation_and_rewrite_start_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        std::fs::write(&path, "a long first line\n").unwrap();
        let mut f = Follower::open(&path, StartAt::Beginning, b"", 1024).unwrap();
        let mut out = Vec::new();
        f.read_lines(&mut out, usize::MAX).unwrap();
        std::fs::write(&path, "new\n").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        // Rewritten longer than before: the changed first bytes give it away.
        std::fs::write(&path, "other content, longer than the first line was\n").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(
            out,
            vec![
                b"a long first line".to_vec(),
                b"new".to_vec(),
                b"other content, longer than the first line was".to_vec()
            ]
        );
    }

    #[test]
    fn resume_needs_the_same_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        std::fs::write(&path, "first\nsecond\n").unwrap();
        let mut out = Vec::new();
        let mut f = Follower::open(&path, StartAt::Offset(6), b"first\n", 1024).unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(out, vec![b"second".to_vec()]);
        out.clear();
        let mut f = Follower::open(&path, StartAt::Offset(6), b"other\n", 1024).unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(out, vec![b"first".to_vec(), b"second".to_vec()]);
    }
}
