//! Whole protocol files through the parser, offline, and what their events add up to:
//! the work of `protowatch replay`, kept in the library so a benchmark can call it.
//!
//! The agent reads a file as the watcher hands it out, a `Vec` per line, because it must
//! checkpoint between lines. Replay has no checkpoint to keep, so it reads in large
//! chunks and feeds the parser slices of the chunk: only a line that straddles two
//! chunks, or is cut for being too long, is copied. Lines are split and cut exactly as
//! the watcher does (`\n`, the `\r` left for the decoder, `max_line_bytes` with the same
//! marker, an unterminated last line still a line), so a replay makes the events the
//! agent would make.
//!
//! The events are not kept: [`Summary`] counts them by name and by dedup key, with one
//! example per key, which is what an operator needs to judge a change of `rules`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Counts, FileParser, Rules};
use crate::config::Encoding;
use crate::event::{Event, Severity};
use crate::watcher::follow::LineBuf;

/// Large enough that reads cost nothing next to parsing, small enough to stay in cache.
const CHUNK: usize = 256 * 1024;

/// How one file is read: what its `watch` entry says, or the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadAs {
    pub encoding: Encoding,
    pub max_line_bytes: usize,
}

/// What one file gave.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileResult {
    pub bytes: u64,
    pub counts: Counts,
    pub events: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("read failed after {offset} bytes: {source}")]
pub struct ReplayError {
    /// Bytes read (and replayed) before the failure.
    pub offset: u64,
    pub source: io::Error,
}

/// Reads `reader` to its end as the protocol file `path` and adds its events to
/// `summary`. `progress` is told the bytes read so far after every chunk.
///
/// On a read error the lines before it stay replayed and counted: the error says where
/// the file stopped.
pub fn replay_file(
    path: &Path,
    mut reader: impl Read,
    read_as: ReadAs,
    rules: Arc<Rules>,
    summary: &mut Summary,
    progress: &mut dyn FnMut(u64),
) -> Result<FileResult, ReplayError> {
    let mut parser = FileParser::new(path, read_as.encoding, rules);
    let mut splitter = Splitter::new(read_as.max_line_bytes);
    let mut buf = vec![0u8; CHUNK];
    let mut events = Vec::new();
    let mut result = FileResult::default();
    let mut failure = None;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        result.bytes += n as u64;
        splitter.chunk(&buf[..n], |line| parser.line(line, &mut events));
        result.events += events.len() as u64;
        summary.add_all(events.drain(..));
        progress(result.bytes);
    }
    // What the watcher does when it lets a file go: the unterminated last line is a
    // line, and an open traceback ends with the file.
    splitter.finish(|line| parser.line(line, &mut events));
    parser.finish(&mut events);
    result.events += events.len() as u64;
    summary.add_all(events.drain(..));
    result.counts = parser.counts.clone();
    summary.add_file(&result, parser.rule_hits());
    match failure {
        None => Ok(result),
        Some(source) => Err(ReplayError {
            offset: result.bytes,
            source,
        }),
    }
}

/// Cuts a byte stream into lines as `watcher::follow` does, handing out slices of the
/// chunk where it can.
struct Splitter {
    max_line: usize,
    /// The start of a line whose end is in a later chunk (cut to `max_line`).
    carry: LineBuf,
}

impl Splitter {
    fn new(max_line: usize) -> Splitter {
        Splitter {
            max_line,
            carry: LineBuf::default(),
        }
    }

    fn chunk(&mut self, mut data: &[u8], mut line: impl FnMut(&[u8])) {
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) => {
                    self.carry.extend(&data[..i], self.max_line);
                    line(self.carry.bytes());
                    self.carry.clear();
                    data = &data[i + 1..];
                }
                None => {
                    self.carry.extend(data, self.max_line);
                    return;
                }
            }
        }
        for piece in memchr::memchr_iter(b'\n', data).scan(0, |start, end| {
            let piece = &data[*start..end];
            *start = end + 1;
            Some(piece)
        }) {
            if piece.len() <= self.max_line {
                line(piece);
            } else {
                let mut long = LineBuf::default();
                long.extend(piece, self.max_line);
                line(long.bytes());
            }
        }
        let rest = match memchr::memrchr(b'\n', data) {
            Some(i) => &data[i + 1..],
            None => data,
        };
        self.carry.extend(rest, self.max_line);
    }

    fn finish(&mut self, mut line: impl FnMut(&[u8])) {
        if let Some(last) = self.carry.take() {
            line(&last);
        }
    }
}

/// The events of every file replayed, counted by name and by dedup key, and the lines,
/// bytes and rule matches that made them.
#[derive(Debug, Default)]
pub struct Summary {
    pub events: BTreeMap<String, EventTally>,
    /// Lines each rule matched, in the order of the config's `rules`.
    pub rule_hits: Vec<u64>,
    pub counts: Counts,
    pub bytes: u64,
}

/// The events of one name.
#[derive(Debug, Default)]
pub struct EventTally {
    pub count: u64,
    pub severities: BTreeMap<Severity, u64>,
    keys: HashMap<String, KeyTally>,
}

/// The events of one dedup key: one alert, with how often it was seen and its first
/// occurrence as the example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTally {
    pub count: u64,
    pub severity: Severity,
    pub source: Option<String>,
    pub example: String,
    /// Where the first occurrence was: file and 1-based line.
    pub file: Option<PathBuf>,
    pub line: Option<u64>,
}

impl EventTally {
    /// The keys, the most frequent first (ties by key, so the order is stable).
    pub fn keys(&self) -> Vec<(&str, &KeyTally)> {
        let mut keys: Vec<(&str, &KeyTally)> =
            self.keys.iter().map(|(k, t)| (k.as_str(), t)).collect();
        keys.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(a.0.cmp(b.0)));
        keys
    }
}

impl Summary {
    pub fn add(&mut self, event: Event) {
        let tally = match self.events.get_mut(&event.name) {
            Some(t) => t,
            None => self.events.entry(event.name.clone()).or_default(),
        };
        tally.count += 1;
        *tally.severities.entry(event.severity).or_default() += 1;
        match tally.keys.get_mut(&event.key) {
            Some(k) => k.count += 1,
            None => {
                let text = event.message.text();
                let (file, line) = event
                    .origin
                    .map_or((None, None), |o| (Some(o.file), Some(o.line)));
                tally.keys.insert(
                    event.key,
                    KeyTally {
                        count: 1,
                        severity: event.severity,
                        source: event.source,
                        example: text,
                        file,
                        line,
                    },
                );
            }
        }
    }

    fn add_all(&mut self, events: impl Iterator<Item = Event>) {
        for e in events {
            self.add(e);
        }
    }

    fn add_file(&mut self, file: &FileResult, rule_hits: &[u64]) {
        self.bytes += file.bytes;
        let (t, c) = (&mut self.counts, &file.counts);
        t.lines += c.lines;
        t.error += c.error;
        t.warning += c.warning;
        t.info += c.info;
        t.user += c.user;
        t.debug += c.debug;
        t.other += c.other;
        if self.rule_hits.len() < rule_hits.len() {
            self.rule_hits.resize(rule_hits.len(), 0);
        }
        for (total, hits) in self.rule_hits.iter_mut().zip(rule_hits) {
            *total += hits;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watcher::follow::CUT_MARKER;

    /// The lines a splitter hands out for `data` fed in chunks of `size`.
    fn split(data: &[u8], size: usize, max_line: usize) -> Vec<Vec<u8>> {
        let mut s = Splitter::new(max_line);
        let mut out = Vec::new();
        for chunk in data.chunks(size) {
            s.chunk(chunk, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn lines_are_the_watchers_whatever_the_chunks() {
        let data = b"one\r\n\ntwo\n0123456789abcdefghij\nend";
        let mut cut = b"0123456789abcdef".to_vec();
        cut.extend_from_slice(CUT_MARKER);
        let want = vec![
            b"one\r".to_vec(),
            Vec::new(),
            b"two".to_vec(),
            cut,
            b"end".to_vec(),
        ];
        for size in 1..=data.len() {
            assert_eq!(split(data, size, 16), want, "chunks of {size}");
        }
        assert_eq!(split(b"a\n", 1, 16), vec![b"a".to_vec()]);
        assert!(split(b"", 4, 16).is_empty());
    }
}
