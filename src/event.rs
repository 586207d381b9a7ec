//! The vocabulary every module shares: [`Event`], [`Severity`] and [`Message`].
//!
//! The parser produces events, routing reads their names, the messengers render their
//! messages. Keeping these types here, free of any module's internals, is what lets each
//! stage of the pipeline be tested alone.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod alert;

/// Event names with a meaning of their own (BEC's names). Any other string is a custom
/// event, sent by a script or the API.
pub mod names {
    pub const NEW_SCAN: &str = "new_scan";
    pub const SCAN_COMPLETED: &str = "scan_completed";
    pub const ALARM_WARNING: &str = "alarm_warning";
    pub const ALARM_MINOR: &str = "alarm_minor";
    pub const ALARM_MAJOR: &str = "alarm_major";
    pub const SCAN_INTERLOCK: &str = "scan_interlock";
    pub const MESSAGE: &str = "message";
    /// An alert put through the API (`PUT /api/alerts`).
    pub const ALERT: &str = "alert";
}

/// How much an event matters. Ordered: `Info < Warning < Minor < Major`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Minor,
    Major,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
        }
    }

    /// OnTakt's class for it: `INFO`, `WARNING` or `PROBLEM` (OnTakt's `REPORT` reads
    /// as info, and comes back as `INFO`).
    pub fn ontakt_class(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning | Severity::Minor => "WARNING",
            Severity::Major => "PROBLEM",
        }
    }

    /// The words accepted for a severity, for error messages.
    pub const ACCEPTED: &'static str =
        "info, warning, minor, major (or OnTakt's INFO, REPORT, WARNING, PROBLEM)";
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Repeats of one alert that throttling counted instead of sending, said in the message
/// that follows them: the throttle counts them, the outbox stores them with that
/// message, and each service renders them, so the type sits here below all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub count: u64,
    pub since_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected {accepted}", accepted = Severity::ACCEPTED)]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    /// Accepts our own names and OnTakt's (`REPORT` is info, `PROBLEM` is major), any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" | "report" => Ok(Severity::Info),
            "warning" | "warn" => Ok(Severity::Warning),
            "minor" => Ok(Severity::Minor),
            "major" | "problem" => Ok(Severity::Major),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// One run of text with the same style. Services that cannot show a style drop it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub text: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bold: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub italic: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

/// What a human reads: styled text, tags and attached files. A plain string is one
/// unstyled span.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub spans: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The message as its sender composed it in HTML (a BEC session's SciLog entry:
    /// paragraphs, tables, code), for a service that shows HTML as it is (SciLog); the
    /// spans say the same for every other service. Where the files stand in it is
    /// marked with [`Message::file_mark`]. Untrusted: sanitized where it is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// The largest file a message may carry: what every service accepts (Telegram's photo
/// limit is 10 MB, many mail servers refuse messages over 10 MB once encoded).
pub const MAX_ATTACHMENT_BYTES: usize = 5 * 1024 * 1024;

/// A file sent with a message: a plot, a log excerpt. Held in memory and stored with the
/// event (base64 in the JSON), so a queued message keeps its files across restarts even
/// if the original is deleted.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub filename: String,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
    /// How wide and high a service that can size a file shows it (SciLog), as its
    /// sender gave them (`400px`, `50%`); `None`: the service's own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
}

impl fmt::Debug for Attachment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Attachment({:?}, {} bytes)",
            self.filename,
            self.data.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    #[error(
        "attachment {name}: {size} bytes is over the limit of {MAX_ATTACHMENT_BYTES} bytes (5 MB)"
    )]
    TooLarge { name: String, size: u64 },
    #[error("attachment {name}: {source}")]
    Read {
        name: String,
        source: std::io::Error,
    },
    #[error("attachment: the file name is empty")]
    NoName,
}

impl Attachment {
    /// Checks the name and the size limit.
    pub fn new(filename: &str, data: Vec<u8>) -> Result<Attachment, AttachmentError> {
        // Only the last component: a name is shown to people, never used as a path.
        let name = filename
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if name.is_empty() {
            return Err(AttachmentError::NoName);
        }
        if data.len() > MAX_ATTACHMENT_BYTES {
            return Err(AttachmentError::TooLarge {
                name,
                size: data.len() as u64,
            });
        }
        Ok(Attachment {
            filename: name,
            data,
            width: None,
            height: None,
        })
    }

    /// Reads a file, refusing one over the limit before reading it.
    pub fn from_path(path: &std::path::Path) -> Result<Attachment, AttachmentError> {
        let name = path.display().to_string();
        let read = |source| AttachmentError::Read {
            name: name.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_ATTACHMENT_BYTES as u64 {
            return Err(AttachmentError::TooLarge { name, size });
        }
        // The size a file states is not always what a read gives: a device says 0 and
        // never ends (`/dev/zero` named in an API body would take all memory), a log
        // grows meanwhile. So the read itself stops one byte past the limit.
        let mut data = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_ATTACHMENT_BYTES as u64 + 1)
            .read_to_end(&mut data)
            .map_err(read)?;
        if data.len() > MAX_ATTACHMENT_BYTES {
            return Err(AttachmentError::TooLarge {
                name,
                size: data.len() as u64,
            });
        }
        let filename = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Attachment::new(&filename, data)
    }

    /// The media type by the file name's extension; what mail clients and Telegram use
    /// to show the file.
    pub fn content_type(&self) -> &'static str {
        let ext = self
            .filename
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match ext.as_str() {
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "gif" => "image/gif",
            "pdf" => "application/pdf",
            "txt" | "log" => "text/plain",
            "csv" => "text/csv",
            "json" => "application/json",
            _ => "application/octet-stream",
        }
    }

    /// Whether Telegram can show it as a photo.
    pub fn is_photo(&self) -> bool {
        matches!(self.content_type(), "image/png" | "image/jpeg")
    }
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

impl Message {
    pub fn plain(text: impl Into<String>) -> Self {
        Message {
            spans: vec![Span {
                text: text.into(),
                ..Span::default()
            }],
            ..Message::default()
        }
    }

    /// The text without styles, as a plain-text medium shows it.
    pub fn text(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }

    /// Where attachment `index` stands in [`Message::html`]: a comment, so that a
    /// reader that does not look for it shows nothing there.
    pub fn file_mark(index: usize) -> String {
        format!("<!--protowatch-file:{index}-->")
    }
}

/// The longer text of an event. Queued events of earlier releases hold a plain string,
/// which reads as [`Details::Text`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Details {
    /// Shown as it is, monospaced: a Python traceback.
    Text(String),
    /// HTML from an OnTakt client (`details` of `PUT /api/alerts`): untrusted, so each
    /// messenger sanitizes or reduces it to what its service shows (`messengers::html`).
    Html { html: String },
}

impl Details {
    /// The text as it is held: plain text, or the HTML source.
    pub fn as_str(&self) -> &str {
        match self {
            Details::Text(t) => t,
            Details::Html { html } => html,
        }
    }

    /// As OnTakt's `details` field holds it: HTML, a text escaped into `<pre>`.
    pub fn to_html(&self) -> String {
        match self {
            Details::Text(t) => format!("<pre>{}</pre>", html_escape(t)),
            Details::Html { html } => html.clone(),
        }
    }
}

/// Plain text is the details a protocol line has.
impl From<&str> for Details {
    fn from(t: &str) -> Details {
        Details::Text(t.to_string())
    }
}

impl From<String> for Details {
    fn from(t: String) -> Details {
        Details::Text(t)
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// One of an OnTakt alert's buttons: a label people read, and the action string that
/// says what pressing it does (see [`ActionKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub label: String,
    pub action: String,
}

/// What an action string asks for, by OnTakt's client algorithm: `__` the server runs
/// it (`POST /api/alerts/{id}/action/{action}`), `_` the client handles it, anything
/// else is a URL to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Server,
    Client,
    Url,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        if self.action.starts_with("__") {
            ActionKind::Server
        } else if self.action.starts_with('_') {
            ActionKind::Client
        } else {
            ActionKind::Url
        }
    }

    /// The URL to open when it is an absolute `http(s)` one: what a mail, a chat or a
    /// card can link to. A relative URL (OnTakt's own listing has `/tools/#tool-20`) is
    /// for the client that knows the server's address, so it is not one.
    pub fn absolute_url(&self) -> Option<&str> {
        (self.kind() == ActionKind::Url && is_absolute_http(&self.action))
            .then_some(self.action.as_str())
    }
}

/// An `http://` or `https://` URL with a host, as `url` parses it.
pub fn is_absolute_http(s: &str) -> bool {
    url::Url::parse(s)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// Where a protocol event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub file: PathBuf,
    /// 1-based line number within the file as this process read it.
    pub line: u64,
}

/// Something that happened and may be worth telling someone about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `alarm_major`, `new_scan`, … or any custom name.
    pub name: String,
    pub severity: Severity,
    /// The protocol's source field (`[detector]`, `motor:`), if the line had one.
    pub source: Option<String>,
    pub message: Message,
    /// Longer text shown below the message: a whole Python traceback, or an OnTakt
    /// alert's HTML details.
    pub details: Option<Details>,
    /// The buttons of an OnTakt alert, in the order given: label → action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Equal keys are one alert (see `alerts`).
    pub key: String,
    /// When it happened: the line's own timestamp if it had one, otherwise when it was read.
    pub time: DateTime<Utc>,
    pub origin: Option<Origin>,
}

impl Event {
    /// An event that a person or script sends directly (`send-message`, the API).
    ///
    /// Its key is the exact text, digits included: a script's "sample 3 done" and
    /// "sample 4 done" are two pieces of news, not one alert seen twice (protocol lines
    /// fold digits, see [`dedup_key`]); only the same text again is a repeat.
    pub fn message(name: &str, severity: Severity, message: Message) -> Event {
        let key = format!("{name}||{}", message.text());
        Event {
            name: name.to_string(),
            severity,
            source: None,
            message,
            details: None,
            actions: Vec::new(),
            key,
            time: Utc::now(),
            origin: None,
        }
    }
}

/// The longest event name any way in takes.
pub const MAX_EVENT_NAME: usize = 100;

/// Whether `name` may name an event, from whatever source (the API, a script, BEC): 1 to
/// [`MAX_EVENT_NAME`] characters, letters, digits and `_ - . : /`. An event name becomes a
/// route's key, a metric's label and a line in every message: a caller who could make
/// it 200 KB long, or hold a line break, could make each of those as large or as forged
/// as they liked. The error says what is wrong, for the caller's 400 or usage error.
pub fn check_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("the event name is empty".into());
    }
    if chars > MAX_EVENT_NAME {
        return Err(format!(
            "the event name has {chars} characters, at most {MAX_EVENT_NAME}"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')))
    {
        return Err(format!(
            "the event name may hold letters, digits and _ - . : / only, not {c:?}"
        ));
    }
    Ok(())
}

/// The dedup key (docs/src/what-gets-sent.md, "Not 4,000 pings for one failing detector"): event name + source + message with every run of digits
/// replaced by `#`, so "detector 3 timeout after 1500 ms" and "detector 4 timeout after
/// 1510 ms" are the same alert. A minus sign that starts a number is part of it ("hit at
/// -78.87" and "hit at 64.62" are one alert); a hyphen inside a word or date is not.
pub fn dedup_key(event: &str, source: Option<&str>, message: &str) -> String {
    let mut key = String::with_capacity(event.len() + message.len() + 16);
    key.push_str(event);
    key.push('|');
    key.push_str(source.unwrap_or(""));
    key.push('|');
    // By bytes, copying the text between runs of digits whole: an ASCII digit is never
    // part of a longer UTF-8 sequence, so every cut falls between characters.
    let bytes = message.as_bytes();
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        let negative = bytes[i] == b'-'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
            && (i == 0 || !is_word_byte(bytes[i - 1]));
        if negative || bytes[i].is_ascii_digit() {
            key.push_str(&message[copied..i]);
            key.push('#');
            i += usize::from(negative);
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            copied = i;
        } else {
            i += 1;
        }
    }
    key.push_str(&message[copied..]);
    key
}

/// A byte that ends a word: before it a `-` is a hyphen ("run-12"), not a sign ("at -78").
/// A byte of a multi-byte character counts as a letter.
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b >= 0x80
}

/// Tells the pipeline that the inbox has a message (see `WatchMsg::Wake`). Every source
/// that writes the inbox (the API, the BEC bridge) is handed one; it is declared here,
/// with the other words the stages share, so none of them imports another to name it.
pub type Wake = std::sync::Arc<dyn Fn() + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_aliases() {
        assert!(Severity::Info < Severity::Warning);
        assert!(Severity::Minor < Severity::Major);
        assert_eq!("PROBLEM".parse::<Severity>(), Ok(Severity::Major));
        assert_eq!("REPORT".parse::<Severity>(), Ok(Severity::Info));
        assert_eq!("Warning".parse::<Severity>(), Ok(Severity::Warning));
        let err = "fatal".parse::<Severity>().unwrap_err().to_string();
        assert!(
            err.contains("\"fatal\"") && err.contains("PROBLEM"),
            "{err}"
        );
    }

    /// A device states no size; the read must stop at the limit all the same.
    #[cfg(unix)]
    #[test]
    fn an_endless_file_is_refused_not_read() {
        let err = Attachment::from_path(std::path::Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(err, AttachmentError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn dedup_key_folds_digit_runs() {
        assert_eq!(
            dedup_key("alarm_major", Some("det"), "ch 12 failed after 1500 ms"),
            "alarm_major|det|ch # failed after # ms"
        );
        assert_eq!(
            dedup_key("alarm_major", Some("det"), "ch 3 failed after 7 ms"),
            dedup_key("alarm_major", Some("det"), "ch 12 failed after 1500 ms"),
        );
        assert_ne!(
            dedup_key("alarm_major", None, "x"),
            dedup_key("alarm_minor", None, "x")
        );
        // Digits at either end, between non-ASCII letters, and non-ASCII digits (kept).
        assert_eq!(dedup_key("e", None, "12канал3 сбой٣4"), "e||#канал# сбой٣#");
        assert_eq!(dedup_key("e", None, ""), "e||");
    }

    #[test]
    fn dedup_key_folds_a_minus_sign_with_its_digits() {
        assert_eq!(
            dedup_key("e", None, "hit at -78.87"),
            dedup_key("e", None, "hit at 64.62")
        );
        assert_eq!(dedup_key("e", None, "-5 (x=-3)"), "e||# (x=#)");
        // A hyphen in a word, a date or a range is text, not a sign.
        assert_eq!(
            dedup_key("e", None, "run-12 on 2026-11-20, 3--4 о-5"),
            "e||run-# on #-#-#, #--# о-#"
        );
    }
}
