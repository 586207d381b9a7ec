//! Following one file: reading what was appended since last time, as complete lines.
//!
//! The follower keeps its file open, so a file renamed away (rotation) can still be read
//! to its end under any name. It hands out only complete lines; a partial last line waits
//! for its newline, and is handed out by [`Follower::take_partial`] when the file is let
//! go. A line longer than `max_line` is cut with a marker while it is read, so memory
//! stays bounded whatever a writer does.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::identity::{FileId, file_id, open_shared};

/// Appended to a line that was longer than the limit.
pub const CUT_MARKER: &[u8] = b" [... line cut: longer than max_line_bytes]";

const READ_CHUNK: usize = 64 * 1024;

pub struct Follower {
    pub path: PathBuf,
    pub id: FileId,
    file: File,
    /// Bytes of the file consumed (complete lines and the partial one).
    offset: u64,
    partial: Vec<u8>,
    /// The current line went over `max_line`; its rest is skipped up to the newline.
    cutting: bool,
    max_line: usize,
    buf: Vec<u8>,
}

impl Follower {
    /// Opens `path`, positioned at its end (`from_end`) or at its beginning.
    pub fn open(path: &Path, from_end: bool, max_line: usize) -> io::Result<Follower> {
        let mut file = open_shared(path)?;
        let id = file_id(&file)?;
        let offset = if from_end {
            file.seek(SeekFrom::End(0))?
        } else {
            0
        };
        Ok(Follower {
            path: path.to_path_buf(),
            id,
            file,
            offset,
            partial: Vec::new(),
            cutting: false,
            max_line,
            buf: vec![0; READ_CHUNK],
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads appended data and pushes each complete line (without `\n`) to `out`, until
    /// the end of the file or until about `budget` bytes were read. Returns the bytes read.
    pub fn read_lines(&mut self, out: &mut Vec<Vec<u8>>, budget: usize) -> io::Result<usize> {
        let len = self.file.metadata()?.len();
        if len < self.offset {
            // Copy-and-truncate: the file was emptied and is written again from 0.
            tracing::info!(file = %self.path.display(), "file is shorter than what was read: truncated, reading again from the start");
            self.file.seek(SeekFrom::Start(0))?;
            self.offset = 0;
            self.partial.clear();
            self.cutting = false;
        }
        let mut total = 0;
        while total < budget {
            let n = match self.file.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n;
            self.offset += n as u64;
            let chunk = std::mem::take(&mut self.buf);
            self.split(&chunk[..n], out);
            self.buf = chunk;
        }
        Ok(total)
    }

    fn split(&mut self, mut data: &[u8], out: &mut Vec<Vec<u8>>) {
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let piece = &data[..nl.unwrap_or(data.len())];
            if !self.cutting {
                let room = self.max_line.saturating_sub(self.partial.len());
                if piece.len() > room {
                    self.partial.extend_from_slice(&piece[..room]);
                    self.partial.extend_from_slice(CUT_MARKER);
                    self.cutting = true;
                } else {
                    self.partial.extend_from_slice(piece);
                }
            }
            match nl {
                Some(i) => {
                    out.push(std::mem::take(&mut self.partial));
                    self.cutting = false;
                    data = &data[i + 1..];
                }
                None => break,
            }
        }
    }

    /// The unterminated last line, if any: handed out when the file is let go.
    pub fn take_partial(&mut self) -> Option<Vec<u8>> {
        self.cutting = false;
        (!self.partial.is_empty()).then(|| std::mem::take(&mut self.partial))
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
        let mut f = Follower::open(&path, false, 16).unwrap();
        let mut out = Vec::new();
        w.write_all(b"one\ntw").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(out, vec![b"one".to_vec()]);
        w.write_all(b"o\r\n0123456789abcdefghij\nend").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        let mut cut = b"0123456789abcdef".to_vec();
        cut.extend_from_slice(CUT_MARKER);
        assert_eq!(out[1..], [b"two\r".to_vec(), cut]);
        assert_eq!(f.take_partial(), Some(b"end".to_vec()));
        assert_eq!(f.take_partial(), None);
    }

    #[test]
    fn truncation_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.log");
        std::fs::write(&path, "a long first line\n").unwrap();
        let mut f = Follower::open(&path, false, 1024).unwrap();
        let mut out = Vec::new();
        f.read_lines(&mut out, usize::MAX).unwrap();
        std::fs::write(&path, "new\n").unwrap();
        f.read_lines(&mut out, usize::MAX).unwrap();
        assert_eq!(out, vec![b"a long first line".to_vec(), b"new".to_vec()]);
    }
}
