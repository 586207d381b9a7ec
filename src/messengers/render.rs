//! What an event looks like on each service.
//!
//! Mail gets a subject, an HTML body with colors, and a plain-text alternative; its
//! attachments become MIME parts (in `mail.rs`). Telegram gets its HTML subset (bold,
//! italic, `<pre>`; colors dropped; tags as hashtags) cut into messages of at most 4,096
//! characters. Everything that came from outside is escaped; the splitter works on
//! segments of unescaped text and escapes each piece, so a cut never falls inside an
//! entity or between an opening and a closing tag.
//!
//! The pieces every service words alike (severity words, the context line, repeat notes,
//! the "+N more" line) are shared from here; each service module puts them together in
//! its own format.
//!
//! A notification is one event, or a digest of several (see `routing::pacing`): the
//! first few shown, the rest counted by event name. An event that stands for counted
//! repeats says so ("repeated 57 times since 14:03").

use std::borrow::Cow;

use chrono::{DateTime, Local, TimeZone, Utc};

use crate::event::{Details, Event, Repeat, Severity, Span, names};

/// Telegram's limit for one message's text.
pub const TELEGRAM_LIMIT: usize = 4096;

/// In a digest, how much of each event's text Telegram shows.
const DIGEST_TEXT_CHARS: usize = 300;

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

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Info => "#1f6feb",
        Severity::Warning => "#b08800",
        Severity::Minor => "#d15704",
        Severity::Major => "#cf222e",
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
/// `[instrument] 57 events, MAJOR: first text`.
pub fn mail_subject(n: &Notification<'_>) -> String {
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

/// The plain-text part of a mail: every event with its URL actions as links.
pub fn mail_text(n: &Notification<'_>) -> String {
    plain_text(n, true)
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

pub fn mail_html(n: &Notification<'_>) -> String {
    let mut body = String::new();
    body.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>");
    if n.is_digest() {
        body.push_str(&format!(
            "<p><b>{} events</b> on <b>{}</b></p>",
            thousands(n.event_count()),
            escape(n.instrument)
        ));
    }
    for item in &n.items {
        let e = item.event;
        if n.is_digest() {
            body.push_str("<hr>");
        }
        body.push_str(&format!(
            "<p><b style=\"color:{}\">{}</b> {} on <b>{}</b></p>",
            severity_color(e.severity),
            severity_word(e.severity),
            escape(&e.name),
            escape(n.instrument)
        ));
        body.push_str("<p>");
        for span in &e.message.spans {
            body.push_str(&html_span(span));
        }
        body.push_str("</p>");
        body.push_str(&format!(
            "<p style=\"color:#57606a\"><small>{}</small></p>",
            escape(&context_line(e))
        ));
        if let Some(r) = &item.repeat {
            body.push_str(&format!("<p><i>{}</i></p>", escape(&repeat_note(r))));
        }
        match &e.details {
            Some(Details::Text(t)) => body.push_str(&format!("<pre>{}</pre>", escape(t))),
            Some(Details::Html { html }) => {
                body.push_str(&format!("<div>{}</div>", super::html::sanitize(html)))
            }
            None => {}
        }
        let links: Vec<String> = e
            .actions
            .iter()
            .filter_map(|a| {
                a.absolute_url()
                    .map(|u| format!("<a href=\"{}\">{}</a>", escape(u), escape(&a.label)))
            })
            .collect();
        if !links.is_empty() {
            body.push_str(&format!("<p>{}</p>", links.join(" · ")));
        }
        if !e.message.tags.is_empty() {
            body.push_str(&format!("<p>{}</p>", escape(&hashtags(&e.message.tags))));
        }
    }
    if let Some(more) = more_line(n) {
        body.push_str(&format!("<hr><p><b>{}</b></p>", escape(&more)));
    }
    body.push_str("</body></html>");
    body
}

fn html_span(s: &Span) -> String {
    let mut t = escape(&s.text).replace('\n', "<br>");
    if s.bold {
        t = format!("<b>{t}</b>");
    }
    if s.italic {
        t = format!("<i>{t}</i>");
    }
    if let Some(c) = s.color.as_deref().filter(|c| safe_color(c)) {
        t = format!("<span style=\"color:{c}\">{t}</span>");
    }
    t
}

/// A CSS color name or `#hex`: nothing that could close the attribute.
fn safe_color(c: &str) -> bool {
    !c.is_empty() && c.len() <= 32 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '#')
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

/// A run of text that is rendered inside one pair of tags.
struct Segment {
    text: String,
    open: Cow<'static, str>,
    close: Cow<'static, str>,
}

impl Segment {
    fn new(
        text: impl Into<String>,
        open: impl Into<Cow<'static, str>>,
        close: impl Into<Cow<'static, str>>,
    ) -> Segment {
        Segment {
            text: text.into(),
            open: open.into(),
            close: close.into(),
        }
    }

    /// A run of reduced HTML in Telegram's tags: a link outside, then bold, italic, code.
    fn of_run(r: &super::html::Run) -> Segment {
        let (mut open, mut close) = (String::new(), String::new());
        if let Some(l) = &r.link {
            open.push_str(&format!("<a href=\"{}\">", escape(l)));
        }
        for (on, o, c) in [
            (r.bold, "<b>", "</b>"),
            (r.italic, "<i>", "</i>"),
            (r.code, "<code>", "</code>"),
        ] {
            if on {
                open.push_str(o);
                close.insert_str(0, c);
            }
        }
        if r.link.is_some() {
            close.push_str("</a>");
        }
        Segment::new(r.text.clone(), open, close)
    }
}

/// Which of an event's URL actions Telegram shows in the text: those that are not
/// buttons (see `telegram.rs`), or all of them when buttons were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TgLinks {
    /// URLs Telegram takes for a button are buttons; the others are text.
    Buttons,
    /// Every URL is text.
    Text,
}

impl TgLinks {
    fn links_text(self, e: &Event) -> String {
        e.actions
            .iter()
            .filter_map(|a| {
                let url = a.absolute_url()?;
                (self == TgLinks::Text || !telegram_button_url(url))
                    .then(|| format!("{}: {url}\n", a.label))
            })
            .collect()
    }
}

/// Whether Telegram takes `url` for an inline URL button: it refuses hosts without a
/// dot (`localhost`, intranet short names) as invalid.
pub fn telegram_button_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str()
                .is_some_and(|h| h.contains('.') || h.contains(':'))
    })
}

/// The Telegram messages for a notification, in order, each at most `limit` long.
pub fn telegram_parts(n: &Notification<'_>, limit: usize) -> Vec<String> {
    telegram_parts_with(n, limit, TgLinks::Buttons)
}

/// [`telegram_parts`], saying which URL actions the text shows.
pub fn telegram_parts_with(n: &Notification<'_>, limit: usize, links: TgLinks) -> Vec<String> {
    let mut segs = Vec::new();
    if n.is_digest() {
        let worst = worst(n);
        segs.push(Segment::new(
            format!(
                "{} {} events",
                severity_mark(worst),
                thousands(n.event_count())
            ),
            "<b>",
            "</b>",
        ));
        segs.push(Segment::new(format!(" · {}\n", n.instrument), "", ""));
        for item in &n.items {
            let e = item.event;
            segs.push(Segment::new(
                format!(
                    "\n{} {}",
                    severity_mark(e.severity),
                    severity_word(e.severity)
                ),
                "<b>",
                "</b>",
            ));
            let mut line = format!(" {}", first_line(e, DIGEST_TEXT_CHARS));
            if let Some(r) = &item.repeat {
                line.push_str(&format!(" ({})", repeat_note(r)));
            }
            segs.push(Segment::new(line, "", ""));
            segs.push(Segment::new(
                format!(" · {}", e.time.with_timezone(&Local).format("%H:%M:%S")),
                "<i>",
                "</i>",
            ));
        }
        if let Some(more) = more_line(n) {
            segs.push(Segment::new(format!("\n\n{more}"), "<b>", "</b>"));
        }
        return split(&segs, limit);
    }
    let item = &n.items[0];
    let e = item.event;
    segs.push(Segment::new(
        format!(
            "{} {}",
            severity_mark(e.severity),
            severity_word(e.severity)
        ),
        "<b>",
        "</b>",
    ));
    segs.push(Segment::new(
        match event_label(e) {
            Some(l) => format!(" {l} · {}\n", n.instrument),
            None => format!(" · {}\n", n.instrument),
        },
        "",
        "",
    ));
    for span in &e.message.spans {
        let (open, close) = match (span.bold, span.italic) {
            (true, true) => ("<b><i>", "</i></b>"),
            (true, false) => ("<b>", "</b>"),
            (false, true) => ("<i>", "</i>"),
            (false, false) => ("", ""),
        };
        segs.push(Segment::new(span.text.clone(), open, close));
    }
    segs.push(Segment::new("\n", "", ""));
    segs.push(Segment::new(context_line(e), "<i>", "</i>"));
    if let Some(r) = &item.repeat {
        segs.push(Segment::new("\n", "", ""));
        segs.push(Segment::new(repeat_note(r), "<b>", "</b>"));
    }
    match &e.details {
        Some(Details::Text(t)) => {
            segs.push(Segment::new("\n", "", ""));
            segs.push(Segment::new(t.clone(), "<pre>", "</pre>"));
        }
        Some(Details::Html { html }) => {
            segs.push(Segment::new("\n", "", ""));
            segs.extend(super::html::runs(html).iter().map(Segment::of_run));
        }
        None => {}
    }
    let links = links.links_text(e);
    if !links.is_empty() {
        segs.push(Segment::new(format!("\n{}", links.trim_end()), "", ""));
    }
    if !e.message.tags.is_empty() {
        segs.push(Segment::new(
            format!("\n{}", hashtags(&e.message.tags)),
            "",
            "",
        ));
    }
    split(&segs, limit)
}

/// Telegram counts in UTF-16 code units; counting them is never an undercount.
fn tg_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Packs segments into messages of at most `limit`, cutting at line ends where it can and
/// inside a line only when the line alone is too long. Each message closes the tags it
/// opened, and a segment continued in the next message is opened there again.
fn split(segs: &[Segment], limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    // The length of `cur` as Telegram counts it, kept rather than recounted per piece.
    let mut cur_len = 0;
    // Whether `cur` shows more than blanks. Telegram trims a message and refuses an empty
    // one, so a part of blanks alone (a line break left over when the next line needs a
    // part of its own) is dropped: the reader would not have seen it anyway.
    let mut shows = false;
    for seg in segs {
        let overhead = tg_len(&seg.open) + tg_len(&seg.close);
        let budget = limit.saturating_sub(overhead).max(1);
        let mut opened = false;
        for line in seg.text.split_inclusive('\n') {
            for piece in hard_cut(line, budget) {
                let esc = escape_tg(piece);
                let need =
                    tg_len(&esc) + if opened { 0 } else { tg_len(&seg.open) } + tg_len(&seg.close);
                if cur_len + need > limit && !cur.is_empty() {
                    if opened {
                        cur.push_str(&seg.close);
                    }
                    let part = std::mem::take(&mut cur);
                    if shows {
                        parts.push(part);
                    }
                    cur_len = 0;
                    opened = false;
                    shows = false;
                }
                if !opened {
                    cur.push_str(&seg.open);
                    cur_len += tg_len(&seg.open);
                    opened = true;
                }
                cur_len += tg_len(&esc);
                cur.push_str(&esc);
                shows |= !piece.trim().is_empty();
            }
        }
        if opened {
            cur.push_str(&seg.close);
            cur_len += tg_len(&seg.close);
        }
    }
    if shows {
        parts.push(cur);
    }
    parts
}

/// Telegram's HTML mode needs only `&`, `<` and `>` escaped.
fn escape_tg(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Pieces of `line` whose escaped length is at most `budget`.
fn hard_cut(line: &str, budget: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in line.char_indices() {
        let w = match c {
            '&' => 5,
            '<' | '>' => 4,
            c => c.len_utf16(),
        };
        if used + w > budget && i > start {
            out.push(&line[start..i]);
            start = i;
            used = 0;
        }
        used += w;
    }
    if start < line.len() {
        out.push(&line[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Message;

    fn ev(text: &str) -> Event {
        let mut e = Event::message("alarm_major", Severity::Major, Message::plain(text));
        e.source = Some("det".into());
        e
    }

    fn unescape(s: &str) -> String {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    }

    fn strip_tags(s: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in s.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        unescape(&out)
    }

    #[test]
    fn short_message_is_one_escaped_part() {
        let e = ev("a < b && c > d");
        let parts = telegram_parts(&Notification::single("IN5", &e), TELEGRAM_LIMIT);
        assert_eq!(parts.len(), 1);
        assert!(
            parts[0].contains("a &lt; b &amp;&amp; c &gt; d"),
            "{}",
            parts[0]
        );
        assert!(parts[0].starts_with("<b>🔴 MAJOR</b> · IN5\n"));
    }

    #[test]
    fn long_text_splits_in_order_within_limit() {
        let text: String = (0..400)
            .map(|i| format!("line {i:04} <x> & more text\n"))
            .collect();
        let mut e = ev(&text);
        e.details = Some(Details::Text("Traceback\n".repeat(300)));
        let parts = telegram_parts(&Notification::single("IN5", &e), 1000);
        assert!(parts.len() > 10);
        for p in &parts {
            assert!(tg_len(p) <= 1000, "{}", tg_len(p));
            assert_eq!(p.matches("<pre>").count(), p.matches("</pre>").count());
        }
        let joined: String = parts.iter().map(|p| strip_tags(p)).collect();
        assert!(joined.contains(&text));
        assert!(joined.ends_with(&"Traceback\n".repeat(300)));
    }

    #[test]
    fn one_huge_line_is_cut_without_breaking_entities() {
        let text = "&<>".repeat(3000);
        let e = ev(&text);
        let parts = telegram_parts(&Notification::single("X", &e), TELEGRAM_LIMIT);
        let mut joined = String::new();
        for p in &parts {
            assert!(tg_len(p) <= TELEGRAM_LIMIT);
            joined.push_str(&strip_tags(p));
        }
        assert!(joined.contains(&text));
    }

    #[test]
    fn mail_subject_and_escaping() {
        let e = ev("HV <trip> on ch 3");
        let n = Notification::single("IN5", &e);
        assert_eq!(mail_subject(&n), "[IN5] MAJOR: HV <trip> on ch 3");
        assert!(mail_html(&n).contains("HV &lt;trip&gt; on ch 3"));
        assert!(mail_text(&n).contains("HV <trip> on ch 3"));
        let s = Event::message("scan_completed", Severity::Info, Message::plain("done"));
        assert_eq!(
            mail_subject(&Notification::single("IN5", &s)),
            "[IN5] INFO scan_completed: done"
        );
    }

    #[test]
    fn a_repeat_summary_says_how_often_and_since_when() {
        let e = ev("HV trip");
        let since = Local::now()
            .with_time(chrono::NaiveTime::from_hms_opt(14, 3, 0).unwrap())
            .single()
            .unwrap()
            .timestamp_millis();
        let n = Notification {
            instrument: "IN5",
            items: vec![Item {
                event: &e,
                repeat: Some(Repeat {
                    count: 57,
                    since_ms: since,
                }),
            }],
            more: Vec::new(),
        };
        assert_eq!(
            mail_subject(&n),
            "[IN5] MAJOR: HV trip (repeated 57 times since 14:03)"
        );
        let tg = telegram_parts(&n, TELEGRAM_LIMIT).concat();
        assert!(tg.contains("<b>repeated 57 times since 14:03</b>"), "{tg}");
        assert_eq!(n.event_count(), 57);
    }

    #[test]
    fn a_digest_shows_some_and_counts_the_rest() {
        let a = ev("first <one>");
        let mut b = ev("second");
        b.severity = Severity::Minor;
        b.details = Some(Details::Text("long traceback".into()));
        let n = Notification {
            instrument: "IN5",
            items: vec![
                Item {
                    event: &a,
                    repeat: None,
                },
                Item {
                    event: &b,
                    repeat: Some(Repeat {
                        count: 3,
                        since_ms: 0,
                    }),
                },
            ],
            more: vec![("alarm_major".into(), 9000), ("alarm_minor".into(), 980)],
        };
        assert_eq!(n.event_count(), 1 + 3 + 9980);
        assert_eq!(mail_subject(&n), "[IN5] 9,984 events, MAJOR: first <one>");
        let text = mail_text(&n);
        assert!(text.starts_with("9,984 events on IN5\n"), "{text}");
        assert!(text.contains("long traceback"));
        assert!(text.contains("+9,980 more: alarm_major ×9,000, alarm_minor ×980"));
        let html = mail_html(&n);
        assert!(html.contains("first &lt;one&gt;"));
        let parts = telegram_parts(&n, TELEGRAM_LIMIT);
        assert_eq!(parts.len(), 1);
        let tg = &parts[0];
        assert!(tg.starts_with("<b>🔴 9,984 events</b> · IN5"), "{tg}");
        assert!(tg.contains("first &lt;one&gt;") && tg.contains("(repeated 3 times since"));
        // A digest on Telegram is one line per event: no tracebacks.
        assert!(!tg.contains("long traceback"));
        assert!(tg.contains("+9,980 more: alarm_major ×9,000, alarm_minor ×980"));
    }

    #[test]
    fn colors_are_sanitised() {
        let span = Span {
            text: "x".into(),
            color: Some("red\" onclick=\"x".into()),
            ..Span::default()
        };
        assert_eq!(html_span(&span), "x");
    }
}
