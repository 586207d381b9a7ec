//! What every service shares to render a notification: the [`Notification`] and its
//! [`Item`]s, and the pieces every service words alike (severity words and marks, the
//! one-line [`title`], the context line, repeat notes, the "+N more" line, the plain
//! text, links and hashtags).
//!
//! Each service renders in its own module (`mail/render.rs`, `telegram/render.rs`, …)
//! and puts these pieces together in its own format: a service's look changes with the
//! service, and a new service adds its rendering beside its sending, never here
//! (docs/ARCHITECTURE.md, "Where things live"). Only what two services or more use is
//! kept here, and adding a service does not change this file.
//!
//! A notification is one event, or a digest of several (see `routing::pacing`): the
//! first few shown, the rest counted by event name. An event that stands for counted
//! repeats says so ("repeated 57 times since 14:03").

use chrono::{DateTime, Local, TimeZone, Utc};

use crate::event::{Details, Event, Repeat, Severity, names};

/// One event a notification shows.
pub struct Item<'a> {
    pub event: &'a Event,
    /// This event stands for repeats that throttling counted.
    pub repeat: Option<Repeat>,
}

/// Everything a messenger needs to render one notification.
pub struct Notification<'a> {
    pub instrument: &'a str,
    /// Never empty.
    pub items: Vec<Item<'a>>,
    /// Events this message carries without showing them: event name → how many.
    pub more: Vec<(String, u64)>,
}

impl<'a> Notification<'a> {
    pub fn single(instrument: &'a str, event: &'a Event) -> Notification<'a> {
        Notification {
            instrument,
            items: vec![Item {
                event,
                repeat: None,
            }],
            more: Vec::new(),
        }
    }

    pub fn is_digest(&self) -> bool {
        self.items.len() > 1 || !self.more.is_empty()
    }

    /// How many events this message accounts for.
    pub fn event_count(&self) -> u64 {
        self.items
            .iter()
            .map(|i| i.repeat.map_or(1, |r| r.count))
            .sum::<u64>()
            + self.more_count()
    }

    pub fn more_count(&self) -> u64 {
        self.more.iter().map(|(_, n)| n).sum()
    }

    /// The files of the events shown (a message with files is never a digest).
    pub fn attachments(&self) -> impl Iterator<Item = &crate::event::Attachment> {
        self.items.iter().flat_map(|i| &i.event.message.attachments)
    }
}

pub(crate) fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Minor => "MINOR",
        Severity::Major => "MAJOR",
    }
}

pub fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Info => "🔵",
        Severity::Warning => "🟡",
        Severity::Minor => "🟠",
        Severity::Major => "🔴",
    }
}

/// The event name is shown only when the severity does not already say it.
pub(crate) fn event_label(e: &Event) -> Option<&str> {
    let implied = e.name.starts_with("alarm_") || e.name == names::MESSAGE;
    (!implied).then_some(e.name.as_str())
}

fn local(ms: i64) -> DateTime<Local> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .with_timezone(&Local)
}

/// "repeated 57 times since 14:03" (with the date when it is not today).
pub(crate) fn repeat_note(r: &Repeat) -> String {
    let since = local(r.since_ms);
    let when = if since.date_naive() == Local::now().date_naive() {
        since.format("%H:%M").to_string()
    } else {
        since.format("%Y-%m-%d %H:%M").to_string()
    };
    if r.count == 1 {
        format!("repeated once since {when}")
    } else {
        format!("repeated {} times since {when}", thousands(r.count))
    }
}

/// "+9,980 more: alarm_major ×9,000, alarm_minor ×980".
pub(crate) fn more_line(n: &Notification<'_>) -> Option<String> {
    if n.more.is_empty() {
        return None;
    }
    let kinds: Vec<String> = n
        .more
        .iter()
        .map(|(name, c)| format!("{name} ×{}", thousands(*c)))
        .collect();
    Some(format!(
        "+{} more: {}",
        thousands(n.more_count()),
        kinds.join(", ")
    ))
}

pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(crate) fn worst(n: &Notification<'_>) -> Severity {
    n.items
        .iter()
        .map(|i| i.event.severity)
        .max()
        .unwrap_or(Severity::Info)
}

pub(crate) fn first_line(e: &Event, max: usize) -> String {
    let text = e.message.text();
    truncate_chars(text.lines().next().unwrap_or("").trim(), max)
}

/// `[instrument] MAJOR: text`, `[instrument] INFO scan_completed: text`; a digest:
/// `[instrument] 57 events, MAJOR: first text`. A mail's subject, a webhook's title.
pub fn title(n: &Notification<'_>) -> String {
    let e = n.items[0].event;
    if n.is_digest() {
        return format!(
            "[{}] {} events, {}: {}",
            n.instrument,
            thousands(n.event_count()),
            severity_word(worst(n)),
            first_line(e, 100)
        );
    }
    let mut subject = format!("[{}] {}", n.instrument, severity_word(e.severity));
    if let Some(label) = event_label(e) {
        subject.push(' ');
        subject.push_str(label);
    }
    subject.push_str(": ");
    subject.push_str(&first_line(e, 120));
    if let Some(r) = &n.items[0].repeat {
        subject.push_str(&format!(" ({})", repeat_note(r)));
    }
    subject
}

/// The facts below the text: source, file and line, time.
pub(crate) fn context_line(e: &Event) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &e.source {
        parts.push(s.clone());
    }
    if let Some(o) = &e.origin {
        parts.push(format!("{}:{}", o.file.display(), o.line));
    }
    parts.push(
        e.time
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    );
    parts.join(" · ")
}

/// The notification as plain text; `with_links` adds each event's URL actions.
pub fn plain_text(n: &Notification<'_>, with_links: bool) -> String {
    let mut out = if n.is_digest() {
        format!(
            "{} events on {}\n",
            thousands(n.event_count()),
            n.instrument
        )
    } else {
        String::new()
    };
    for item in &n.items {
        let e = item.event;
        if n.is_digest() {
            out.push_str("\n— ");
        }
        out.push_str(&format!(
            "{} {} on {}\n\n{}\n\n{}\n",
            severity_word(e.severity),
            e.name,
            n.instrument,
            e.message.text(),
            context_line(e)
        ));
        if let Some(r) = &item.repeat {
            out.push_str(&format!("({})\n", repeat_note(r)));
        }
        if let Some(d) = &e.details {
            out.push('\n');
            out.push_str(&details_text(d));
            out.push('\n');
        }
        let links = if with_links {
            links_text(e)
        } else {
            String::new()
        };
        if !links.is_empty() {
            out.push('\n');
            out.push_str(&links);
        }
        if !e.message.tags.is_empty() {
            out.push('\n');
            out.push_str(&hashtags(&e.message.tags));
            out.push('\n');
        }
    }
    if let Some(more) = more_line(n) {
        out.push('\n');
        out.push_str(&more);
        out.push('\n');
    }
    out
}

pub(crate) fn hashtags(tags: &[String]) -> String {
    tags.iter()
        .map(|t| {
            let clean: String = t
                .chars()
                .map(|c| if c.is_alphanumeric() { c } else { '_' })
                .collect();
            format!("#{clean}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes text for HTML (mail) and Telegram's HTML parse mode.
pub fn escape(s: &str) -> String {
    crate::event::html_escape(s)
}

/// Details as plain text: a traceback as it is, HTML reduced to its text.
pub fn details_text(d: &Details) -> String {
    match d {
        Details::Text(t) => t.clone(),
        Details::Html { html } => super::html::to_text(html),
    }
}

/// The event's URL actions, one `label: url` line each (empty without any): what a
/// plain-text medium shows, and what chat tools turn into links.
pub fn links_text(e: &Event) -> String {
    e.actions
        .iter()
        .filter_map(|a| a.absolute_url().map(|u| format!("{}: {u}\n", a.label)))
        .collect()
}

pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
