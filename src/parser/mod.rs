//! From the raw bytes of protocol lines to [`Event`]s.
//!
//! A [`FileParser`] holds what one file's lines need from each other: an open Python
//! traceback, an ERROR line's event waiting to see whether its traceback follows, and the
//! last full date (for lines that carry only a time). Each line goes: decode → held
//! error or open traceback? → user rules → the sonix grammar and its mapping. Parsers
//! are cheap and created per file; the compiled [`Rules`] are shared.
//!
//! Python's `logging.exception("move failed")` writes the ERROR line and then the bare
//! traceback, in one write: one failure, so one event. The ERROR line's event is
//! therefore held until the next line shows whether a traceback follows; the next line,
//! or the end of the lines read together ([`FileParser::release`]), lets it go — so the
//! hold adds no latency: nothing waits for lines not yet written.

pub mod decode;
pub mod replay;
pub mod rules;
pub mod sonix;
pub mod traceback;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};

use crate::config::Encoding;
use crate::event::{Details, Event, Message, Origin, Severity, dedup_key, names};
pub use rules::Rules;
use sonix::{LineType, Stamp};
use traceback::{Step, Traceback};

/// Lines seen, by TYPE, for metrics and `replay`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    pub error: u64,
    pub warning: u64,
    pub info: u64,
    pub user: u64,
    pub debug: u64,
    /// Lines outside the grammar (continuations, free text).
    pub other: u64,
}

impl Counts {
    fn count(&mut self, kind: Option<LineType>) {
        self.lines += 1;
        match kind {
            Some(LineType::Error) => self.error += 1,
            Some(LineType::Warning) => self.warning += 1,
            Some(LineType::Info) => self.info += 1,
            Some(LineType::User) => self.user += 1,
            Some(LineType::Debug) => self.debug += 1,
            None => self.other += 1,
        }
    }
}

/// A notification's text is a headline: a protocol line longer than this (up to
/// `max_line_bytes`) is cut, so one runaway line cannot become hundreds of messages.
pub const MAX_MESSAGE_CHARS: usize = 2000;
/// The details (a traceback) keep their last this many characters: the end of a
/// traceback is where the error is.
pub const MAX_DETAILS_CHARS: usize = 16_000;

fn clip_head(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => {
            let rest = s[i..].chars().count();
            format!("{} … [{rest} more characters]", &s[..i])
        }
        None => s,
    }
}

/// Keeps the first line (a traceback's header) and the last `max` characters.
fn clip_tail(s: String, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return s;
    }
    let first = s.lines().next().unwrap_or("");
    let first = match first.char_indices().nth(200) {
        Some((i, _)) => &first[..i],
        None => first,
    };
    let skip = total - max;
    let start = s.char_indices().nth(skip).map_or(0, |(i, _)| i);
    format!("{first}\n[… {skip} characters cut …]\n{}", &s[start..])
}

/// A traceback still reading its frames.
struct Open {
    tb: Traceback,
    time: DateTime<Utc>,
    line: u64,
    /// The ERROR line it follows: the traceback becomes that event's details.
    error: Option<Event>,
}

pub struct FileParser {
    file: PathBuf,
    encoding: Encoding,
    rules: Arc<Rules>,
    traceback: Option<Open>,
    /// The event of the last line, if it was an alarm from the grammar: a bare traceback
    /// on the next line belongs to it.
    held: Option<Event>,
    last_date: Option<NaiveDate>,
    line_no: u64,
    pub counts: Counts,
    /// Lines each rule matched, by its place in the config's `rules`: an `ignore` rule
    /// makes no event, and this is the only trace of what it silenced.
    rule_hits: Vec<u64>,
}

impl FileParser {
    pub fn new(file: &Path, encoding: Encoding, rules: Arc<Rules>) -> FileParser {
        FileParser {
            file: file.to_path_buf(),
            encoding,
            traceback: None,
            held: None,
            last_date: None,
            line_no: 0,
            counts: Counts::default(),
            rule_hits: vec![0; rules.len()],
            rules,
        }
    }

    /// Rules changed by a reload apply from the next line on; an open traceback stays.
    pub fn set_rules(&mut self, rules: Arc<Rules>) {
        self.rule_hits = vec![0; rules.len()];
        self.rules = rules;
    }

    /// How many lines each rule matched, in the order of the config's `rules`.
    pub fn rule_hits(&self) -> &[u64] {
        &self.rule_hits
    }

    /// Feeds one line without its `\n`; events it completes are pushed to `out`.
    pub fn line(&mut self, raw: &[u8], out: &mut Vec<Event>) {
        self.line_no += 1;
        let text = decode::decode(raw, self.encoding);
        let text = text.as_ref();

        if let Some(error) = self.held.take() {
            if text.starts_with(traceback::MARK) {
                self.counts.count(None);
                self.traceback = Some(Open {
                    tb: Traceback::start(traceback::MARK, error.source.clone()),
                    time: error.time,
                    line: self.line_no,
                    error: Some(error),
                });
                return;
            }
            out.push(error);
        }

        if let Some(open) = &mut self.traceback {
            match open.tb.feed(text) {
                Step::Continue => {
                    self.counts.count(None);
                    return;
                }
                Step::Done => {
                    self.counts.count(None);
                    self.flush(out);
                    return;
                }
                Step::Interrupted => self.flush(out),
            }
        }

        let parsed = sonix::parse(text);
        self.counts.count(parsed.as_ref().map(|p| p.kind));
        let stamp = parsed.as_ref().and_then(|p| p.stamp);
        if let Some(Stamp::Full(dt, _)) = stamp {
            self.last_date = Some(dt.date());
        }

        if let Some(m) = self.rules.apply(text) {
            if let Some(hits) = self.rule_hits.get_mut(m.index) {
                *hits += 1;
            }
            let Some(name) = &m.rule.event else { return };
            let source = m
                .source
                .or_else(|| parsed.as_ref().and_then(|p| p.source.map(str::to_string)));
            let message = m
                .message
                .unwrap_or_else(|| parsed.as_ref().map_or(text, |p| p.message).to_string());
            let time = self.time_of(stamp);
            let mut event = self.event(name, m.rule.severity, source, message, time, self.line_no);
            if let Some(key) = m.key {
                event.key = key;
            }
            out.push(event);
            return;
        }

        let (message, source) = match &parsed {
            Some(p) => (p.message, p.source),
            None => (text.trim_start(), None),
        };
        if message.starts_with(traceback::MARK) {
            let tb = Traceback::start(message, source.map(str::to_string));
            self.traceback = Some(Open {
                tb,
                time: self.time_of(stamp),
                line: self.line_no,
                error: None,
            });
            return;
        }
        if let Some(p) = &parsed
            && let Some((name, severity)) = sonix::classify(p)
        {
            let source = p.source.map(str::to_string);
            let event = self.event(
                name,
                severity,
                source,
                p.message.to_string(),
                self.time_of(stamp),
                self.line_no,
            );
            // Only an ERROR line is followed by its traceback (`logging.exception`).
            if p.kind == LineType::Error {
                self.held = Some(event);
            } else {
                out.push(event);
            }
        }
    }

    /// Ends whatever is pending: the file was let go, or nothing more came for a while.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.flush(out);
    }

    /// Whether a traceback is open, waiting for its final line, or an ERROR line waits
    /// to see whether a traceback follows it.
    pub fn is_pending(&self) -> bool {
        self.traceback.is_some() || self.held.is_some()
    }

    /// Lets an ERROR line's event go without waiting for the next line: the end of what
    /// was written for now (a traceback comes in the same write as its line). An open
    /// traceback stays open.
    pub fn release(&mut self, out: &mut Vec<Event>) {
        if let Some(error) = self.held.take() {
            out.push(error);
        }
    }

    fn flush(&mut self, out: &mut Vec<Event>) {
        if let Some(error) = self.held.take() {
            out.push(error);
        }
        if let Some(open) = self.traceback.take() {
            let details = Details::Text(clip_tail(open.tb.details(), MAX_DETAILS_CHARS));
            // The ERROR line keeps its own text, severity and key: its traceback's final
            // line (`MotorError: …`) ends the details, where a reader looks for it.
            let mut event = match open.error {
                Some(error) => error,
                None => self.event(
                    names::ALARM_MAJOR,
                    Severity::Major,
                    open.tb.source.clone(),
                    open.tb.summary(),
                    open.time,
                    open.line,
                ),
            };
            event.details = Some(details);
            out.push(event);
        }
    }

    /// The line's own time if it has one (a time-only stamp takes the last date seen in
    /// this file, else today), otherwise now. Only called for lines that make an event:
    /// the local-time conversion is the costly part of a timestamp.
    fn time_of(&self, stamp: Option<Stamp>) -> DateTime<Utc> {
        let naive = match stamp {
            Some(Stamp::Full(dt, Some(off))) => {
                return off
                    .from_local_datetime(&dt)
                    .single()
                    .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
            }
            Some(Stamp::Full(dt, None)) => dt,
            Some(Stamp::Time(t)) => self
                .last_date
                .unwrap_or_else(|| Local::now().date_naive())
                .and_time(t),
            None => return Utc::now(),
        };
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
    }

    fn event(
        &self,
        name: &str,
        severity: Severity,
        source: Option<String>,
        message: String,
        time: DateTime<Utc>,
        line: u64,
    ) -> Event {
        let message = clip_head(message, MAX_MESSAGE_CHARS);
        Event {
            key: dedup_key(name, source.as_deref(), &message),
            name: name.to_string(),
            severity,
            source,
            message: Message::plain(message),
            details: None,
            actions: Vec::new(),
            time,
            origin: Some(Origin {
                file: self.file.clone(),
                line,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping() {
        assert_eq!(clip_head("abcdef".into(), 4), "abcd … [2 more characters]");
        assert_eq!(clip_head("abc".into(), 4), "abc");
        assert_eq!(
            clip_tail("аб\nвгде".into(), 2),
            "аб\n[… 5 characters cut …]\nде"
        );
        assert_eq!(clip_tail("ab".into(), 2), "ab");
    }
}
