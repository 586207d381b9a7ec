//! A notification as Telegram messages: its HTML subset (bold, italic, `<pre>`; colors
//! dropped; tags as hashtags) cut into messages of at most 4,096 characters.
//! Everything that came from outside is escaped; the splitter works on segments of
//! unescaped text and escapes each piece, so a cut never falls inside an entity or
//! between an opening and a closing tag.

use std::borrow::Cow;

use chrono::Local;

use crate::event::{Details, Event};
use crate::messengers::html;
use crate::messengers::render::{
    Notification, context_line, escape, event_label, first_line, hashtags, more_line, repeat_note,
    severity_mark, severity_word, thousands, worst,
};

/// Telegram's limit for one message's text.
pub const TELEGRAM_LIMIT: usize = 4096;

/// In a digest, how much of each event's text Telegram shows.
const DIGEST_TEXT_CHARS: usize = 300;

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
    fn of_run(r: &html::Run) -> Segment {
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
            segs.extend(html::runs(html).iter().map(Segment::of_run));
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
    use crate::event::{Message, Repeat, Severity};
    use crate::messengers::render::Item;

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
        let tg = telegram_parts(&n, TELEGRAM_LIMIT).concat();
        assert!(tg.contains("<b>repeated 57 times since 14:03</b>"), "{tg}");
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
        let parts = telegram_parts(&n, TELEGRAM_LIMIT);
        assert_eq!(parts.len(), 1);
        let tg = &parts[0];
        assert!(tg.starts_with("<b>🔴 9,984 events</b> · IN5"), "{tg}");
        assert!(tg.contains("first &lt;one&gt;") && tg.contains("(repeated 3 times since"));
        // A digest on Telegram is one line per event: no tracebacks.
        assert!(!tg.contains("long traceback"));
        assert!(tg.contains("+9,980 more: alarm_major ×9,000, alarm_minor ×980"));
    }
}
