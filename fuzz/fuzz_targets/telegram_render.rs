//! Fuzz target `telegram_render`: arbitrary rich messages through
//! `messengers::telegram::render::telegram_parts`, the renderer and splitter of Telegram messages.
//!
//! Telegram refuses a whole message for one unbalanced tag, one bad entity, one unit
//! over its length limit, or an empty text; a refused alarm is an alarm nobody reads.
//!
//! Input: two bytes, then text (UTF-8, invalid bytes replaced).
//! - byte 0: bits 0–1 the severity; bit 2 a digest of two events and counted others;
//!   bit 3 a repeat summary; bit 4 details (a traceback); bit 5 a source; bit 6 a
//!   small limit (byte 1 chooses it, 32…2072, so that short inputs split too);
//! - the text, in fields separated by U+001E: the message, tags (separated by `,`),
//!   details, instrument, event name. In the message, U+0001 toggles bold, U+0002
//!   italic, U+0003 a colour (each starts a new span), and U+0004 followed by a
//!   character repeats the span so far (that character's code mod 64) times, up to 64 KiB,
//!   for long texts from short inputs.
//!
//! Invariants, besides not panicking:
//! - there is at least one part, and each is at most the limit in UTF-16 units;
//! - each part is valid Telegram HTML: only `<b>`, `<i>`, `<pre>`, properly nested and
//!   all closed; `&` only in `&amp;`, `&lt;`, `&gt;`, `&quot;`; no raw `<` or `>`;
//! - no part is blank (Telegram refuses an empty message);
//! - the parts' visible text, joined, holds the whole message text and the details (for
//!   a digest, each event's first line as far as a digest shows it), but for blanks at
//!   the cuts, which Telegram trims anyway.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protowatch::event::{Event, Message, Severity, Span};
use protowatch::messengers::render::{Item, Notification};
use protowatch::messengers::telegram::render::{TELEGRAM_LIMIT, telegram_parts};
use protowatch::store::Repeat;

/// Far more than any part holds, small enough to keep the fuzzer fast.
const MAX_SPAN_BYTES: usize = 64 * 1024;

/// The spans the message field describes.
fn spans(text: &str) -> Vec<Span> {
    let mut out = Vec::new();
    let mut cur = Span::default();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let style_change = matches!(c, '\u{1}' | '\u{2}' | '\u{3}');
        if style_change {
            let next = Span {
                text: String::new(),
                bold: cur.bold ^ (c == '\u{1}'),
                italic: cur.italic ^ (c == '\u{2}'),
                color: match (c, &cur.color) {
                    ('\u{3}', None) => Some("#cf222e".to_string()),
                    ('\u{3}', Some(_)) => None,
                    (_, color) => color.clone(),
                },
            };
            out.push(std::mem::replace(&mut cur, next));
        } else if c == '\u{4}' {
            let n = chars.next().map_or(0, |r| r as usize % 64);
            // Repeats of repeats grow exponentially; a message this long is plenty.
            if cur.text.len() * n <= MAX_SPAN_BYTES {
                cur.text = cur.text.repeat(n);
            }
        } else {
            cur.text.push(c);
        }
    }
    out.push(cur);
    out
}

/// The text Telegram shows for a part, after checking that the part is valid HTML of
/// its subset.
fn visible(part: &str) -> String {
    let mut shown = String::new();
    let mut open: Vec<&str> = Vec::new();
    let mut rest = part;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let end = rest
                .find('>')
                .unwrap_or_else(|| panic!("a raw '<' in {part:?}"));
            let tag = &rest[1..end];
            match tag.strip_prefix('/') {
                Some(name) => {
                    assert_eq!(open.pop(), Some(name), "</{name}> does not close: {part:?}");
                }
                None => {
                    assert!(matches!(tag, "b" | "i" | "pre"), "tag <{tag}> in {part:?}");
                    open.push(tag);
                }
            }
            rest = &rest[end + 1..];
        } else if c == '&' {
            let (entity, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e))
            .unwrap_or_else(|| panic!("a bare '&' in {part:?}"));
            shown.push(ch);
            rest = &rest[entity.len()..];
        } else {
            assert_ne!(c, '>', "a raw '>' in {part:?}");
            shown.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    assert!(open.is_empty(), "tags left open {open:?} in {part:?}");
    shown
}

/// The first line of a text as a digest shows it (up to its cut).
fn digest_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    line.chars().take(300).collect()
}

fuzz_target!(|data: &[u8]| {
    let [flags, size, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut fields = text.split('\u{1e}');
    let mut field = || fields.next().unwrap_or("").to_string();
    let body = field();
    let tags: Vec<String> = field()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect();
    let details = field();
    let instrument = field();
    let name = field();

    let severity = [
        Severity::Info,
        Severity::Warning,
        Severity::Minor,
        Severity::Major,
    ][usize::from(flags & 3)];
    let name = if name.is_empty() {
        "alarm_major"
    } else {
        &name
    };
    let mut event = Event::message(
        name,
        severity,
        Message {
            spans: spans(&body),
            tags,
            attachments: Vec::new(),
        },
    );
    if flags & 16 != 0 {
        event.details = Some(details.clone());
    }
    if flags & 32 != 0 {
        event.source = Some(instrument.chars().rev().collect());
    }
    let repeat = (flags & 8 != 0).then_some(Repeat {
        count: 1 + u64::from(*size) * 1_000_003,
        since_ms: i64::from(*size) * 86_400_000,
    });
    let limit = if flags & 64 != 0 {
        32 + usize::from(*size) * 8
    } else {
        TELEGRAM_LIMIT
    };
    let second = Event::message(
        "scan_completed",
        Severity::Info,
        Message::plain(details.clone()),
    );
    let digest = flags & 4 != 0;
    let notification = if digest {
        Notification {
            instrument: &instrument,
            items: vec![
                Item {
                    event: &event,
                    repeat,
                },
                Item {
                    event: &second,
                    repeat: None,
                },
            ],
            more: vec![(name.to_string(), u64::from(*size))],
        }
    } else {
        Notification {
            instrument: &instrument,
            items: vec![Item {
                event: &event,
                repeat,
            }],
            more: Vec::new(),
        }
    };

    let parts = telegram_parts(&notification, limit);
    assert!(!parts.is_empty(), "no message at all");
    let mut shown = String::new();
    for part in &parts {
        let units = part.encode_utf16().count();
        assert!(
            units <= limit,
            "a part of {units} units, limit {limit}: {part:?}"
        );
        let v = visible(part);
        assert!(!v.trim().is_empty(), "a blank part: {part:?} of {parts:?}");
        shown.push_str(&v);
    }
    let wanted: Vec<String> = if digest {
        vec![
            digest_line(&event.message.text()),
            digest_line(&second.message.text()),
        ]
    } else {
        let mut w = vec![event.message.text()];
        w.extend(event.details.clone());
        w
    };
    // Blanks at a cut may go (Telegram trims each message, and a part of blanks alone is
    // dropped), everything else must be there, in order.
    let dense = |s: &str| s.split_whitespace().collect::<String>();
    let shown = dense(&shown);
    for w in &wanted {
        assert!(shown.contains(&dense(w)), "{w:?} is not shown in {parts:?}");
    }
});
