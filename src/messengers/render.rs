//! What an event looks like on each service.
//!
//! Mail gets a subject, an HTML body with colors, and a plain-text alternative. Telegram
//! gets its HTML subset (bold, italic, `<pre>`; colors dropped) cut into messages of at
//! most 4,096 characters. Everything that came from outside is escaped; the splitter
//! works on segments of unescaped text and escapes each piece, so a cut never falls
//! inside an entity or between an opening and a closing tag.

use crate::event::{Event, Severity, Span, names};

/// Telegram's limit for one message's text.
pub const TELEGRAM_LIMIT: usize = 4096;

/// Everything a messenger needs to render one notification.
pub struct Notification<'a> {
    pub instrument: &'a str,
    pub event: &'a Event,
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Minor => "MINOR",
        Severity::Major => "MAJOR",
    }
}

fn severity_mark(s: Severity) -> &'static str {
    match s {
        Severity::Info => "🔵",
        Severity::Warning => "🟡",
        Severity::Minor => "🟠",
        Severity::Major => "🔴",
    }
}

/// The event name is shown only when the severity does not already say it.
fn event_label(e: &Event) -> Option<&str> {
    let implied = e.name.starts_with("alarm_") || e.name == names::MESSAGE;
    (!implied).then_some(e.name.as_str())
}

/// `[instrument] MAJOR: text`, `[instrument] INFO scan_completed: text`.
pub fn mail_subject(n: &Notification<'_>) -> String {
    let e = n.event;
    let text = e.message.text();
    let first_line = text.lines().next().unwrap_or("").trim();
    let mut subject = format!("[{}] {}", n.instrument, severity_word(e.severity));
    if let Some(label) = event_label(e) {
        subject.push(' ');
        subject.push_str(label);
    }
    subject.push_str(": ");
    subject.push_str(&truncate_chars(first_line, 120));
    subject
}

/// The facts below the text: source, file and line, time.
fn context_line(e: &Event) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &e.source {
        parts.push(s.clone());
    }
    if let Some(o) = &e.origin {
        parts.push(format!("{}:{}", o.file.display(), o.line));
    }
    parts.push(
        e.time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    );
    parts.join(" · ")
}

pub fn mail_text(n: &Notification<'_>) -> String {
    let e = n.event;
    let mut out = format!(
        "{} {} on {}\n\n{}\n\n{}\n",
        severity_word(e.severity),
        e.name,
        n.instrument,
        e.message.text(),
        context_line(e)
    );
    if let Some(d) = &e.details {
        out.push('\n');
        out.push_str(d);
        out.push('\n');
    }
    if !e.message.tags.is_empty() {
        out.push('\n');
        out.push_str(&hashtags(&e.message.tags));
        out.push('\n');
    }
    out
}

pub fn mail_html(n: &Notification<'_>) -> String {
    let e = n.event;
    let color = match e.severity {
        Severity::Info => "#1f6feb",
        Severity::Warning => "#b08800",
        Severity::Minor => "#d15704",
        Severity::Major => "#cf222e",
    };
    let mut body = String::new();
    body.push_str("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body>");
    body.push_str(&format!(
        "<p><b style=\"color:{color}\">{}</b> {} on <b>{}</b></p>",
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
    if let Some(d) = &e.details {
        body.push_str(&format!("<pre>{}</pre>", escape(d)));
    }
    if !e.message.tags.is_empty() {
        body.push_str(&format!("<p>{}</p>", escape(&hashtags(&e.message.tags))));
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

fn hashtags(tags: &[String]) -> String {
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

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A run of text that is rendered inside one pair of tags.
struct Segment {
    text: String,
    open: &'static str,
    close: &'static str,
}

impl Segment {
    fn new(text: impl Into<String>, open: &'static str, close: &'static str) -> Segment {
        Segment {
            text: text.into(),
            open,
            close,
        }
    }
}

/// The Telegram messages for a notification, in order, each at most `limit` long.
pub fn telegram_parts(n: &Notification<'_>, limit: usize) -> Vec<String> {
    let e = n.event;
    let mut segs = vec![
        Segment::new(
            format!(
                "{} {}",
                severity_mark(e.severity),
                severity_word(e.severity)
            ),
            "<b>",
            "</b>",
        ),
        Segment::new(
            match event_label(e) {
                Some(l) => format!(" {l} · {}\n", n.instrument),
                None => format!(" · {}\n", n.instrument),
            },
            "",
            "",
        ),
    ];
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
    if let Some(d) = &e.details {
        segs.push(Segment::new("\n", "", ""));
        segs.push(Segment::new(d.clone(), "<pre>", "</pre>"));
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
    for seg in segs {
        let overhead = tg_len(seg.open) + tg_len(seg.close);
        let budget = limit.saturating_sub(overhead).max(1);
        let mut opened = false;
        for line in seg.text.split_inclusive('\n') {
            for piece in hard_cut(line, budget) {
                let esc = escape_tg(piece);
                let need =
                    tg_len(&esc) + if opened { 0 } else { tg_len(seg.open) } + tg_len(seg.close);
                if cur_len + need > limit && !cur.is_empty() {
                    if opened {
                        cur.push_str(seg.close);
                    }
                    parts.push(std::mem::take(&mut cur));
                    cur_len = 0;
                    opened = false;
                }
                if !opened {
                    cur.push_str(seg.open);
                    cur_len += tg_len(seg.open);
                    opened = true;
                }
                cur_len += tg_len(&esc);
                cur.push_str(&esc);
            }
        }
        if opened {
            cur.push_str(seg.close);
            cur_len += tg_len(seg.close);
        }
    }
    if !cur.trim().is_empty() {
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
        let parts = telegram_parts(
            &Notification {
                instrument: "IN5",
                event: &e,
            },
            TELEGRAM_LIMIT,
        );
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
        e.details = Some("Traceback\n".repeat(300));
        let parts = telegram_parts(
            &Notification {
                instrument: "IN5",
                event: &e,
            },
            1000,
        );
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
        let parts = telegram_parts(
            &Notification {
                instrument: "X",
                event: &e,
            },
            TELEGRAM_LIMIT,
        );
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
        let n = Notification {
            instrument: "IN5",
            event: &e,
        };
        assert_eq!(mail_subject(&n), "[IN5] MAJOR: HV <trip> on ch 3");
        assert!(mail_html(&n).contains("HV &lt;trip&gt; on ch 3"));
        assert!(mail_text(&n).contains("HV <trip> on ch 3"));
        let s = Event::message("scan_completed", Severity::Info, Message::plain("done"));
        assert_eq!(
            mail_subject(&Notification {
                instrument: "IN5",
                event: &s
            }),
            "[IN5] INFO scan_completed: done"
        );
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
