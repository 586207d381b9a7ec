//! A BEC notification as our [`Event`]: the name, a severity from BEC's event names, the
//! text items as styled spans, tags, and files as attachments.
//!
//! The event name is the channel's suffix, as SciHub takes it (the message repeats it;
//! they agree unless someone publishes by hand). The dedup key folds digits as for a
//! protocol line, with the source `bec`: "scan 41 done" and "scan 42 done" are one alert
//! seen twice, so a loop that notifies on every pass is throttled like a looping
//! protocol line.

use crate::event::{Attachment, Event, Message, Severity, Span, dedup_key, names};

use super::codec::{Item, Notification};

/// The event's `source`: where it came from, part of its dedup key.
pub const SOURCE: &str = "bec";

/// BEC's event names say how bad they are; `scan_interlock` stops a scan, a warning;
/// everything else (`new_scan`, `scan_completed`, custom events) is news.
pub fn severity(event: &str) -> Severity {
    match event {
        names::ALARM_MAJOR => Severity::Major,
        names::ALARM_MINOR => Severity::Minor,
        names::ALARM_WARNING | names::SCAN_INTERLOCK => Severity::Warning,
        _ => Severity::Info,
    }
}

/// The event for a notification received on the channel of `event`.
pub fn to_event(event: &str, n: Notification) -> Event {
    let mut message = Message::default();
    // A paragraph stands on its own line; the text after it starts a new one.
    let mut after_block = false;
    for item in n.items {
        let (spans, block) = match item {
            Item::Text(html) => {
                let t = super::html::read(&html);
                (t.spans, t.block)
            }
            Item::Tags(tags) => {
                for t in tags {
                    let t = t.trim().to_string();
                    if !t.is_empty() && !message.tags.contains(&t) {
                        message.tags.push(t);
                    }
                }
                continue;
            }
            Item::File {
                filename,
                mime_type,
                data,
            } => match Attachment::new(&filename, data) {
                Ok(a) => {
                    tracing::debug!(file = %filename, mime = %mime_type, "BEC attachment");
                    message.attachments.push(a);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(event, file = %filename, error = %e, "a BEC attachment was not taken");
                    (
                        plain(format!("[attachment {filename} not taken: {e}]")),
                        true,
                    )
                }
            },
            Item::Sticker(id) => (plain(format!("[sticker {id}]")), true),
            Item::Giphy(url) => (plain(url), true),
            Item::Unknown(fields) => {
                tracing::debug!(event, fields = %fields, "a BEC message item of an unknown kind was left out");
                continue;
            }
        };
        if spans.is_empty() {
            continue;
        }
        if !message.spans.is_empty() && (after_block || block) {
            message.spans.push(Span {
                text: "\n".into(),
                ..Span::default()
            });
        }
        let mut spans = spans.into_iter();
        if let Some(mut first) = spans.next() {
            if !message.spans.is_empty() && (after_block || block) {
                first.text = first.text.trim_start().to_string();
            }
            message.spans.push(first);
        }
        message.spans.extend(spans);
        after_block = block;
    }
    if message.spans.is_empty() {
        message.spans.push(Span {
            text: event.to_string(),
            ..Span::default()
        });
    }
    let text = message.text();
    let mut e = Event::message(event, severity(event), message);
    e.source = Some(SOURCE.to_string());
    e.key = dedup_key(event, Some(SOURCE), &text);
    e
}

fn plain(text: String) -> Vec<Span> {
    vec![Span {
        text,
        ..Span::default()
    }]
}

#[cfg(test)]
mod tests {
    use super::super::codec::decode_notification;
    use super::*;

    #[test]
    fn the_documented_example_reads_as_a_person_would() {
        let n =
            decode_notification(include_bytes!("../../fixtures/bec/notify_rich.msgpack")).unwrap();
        let e = to_event("sample_mount_failed", n);
        assert_eq!(e.name, "sample_mount_failed");
        assert_eq!(e.severity, Severity::Info);
        assert_eq!(
            e.message.spans,
            vec![
                Span {
                    text: "Sample mount failed".into(),
                    bold: true,
                    italic: false,
                    color: Some("red".into())
                },
                Span {
                    text: "\n".into(),
                    ..Span::default()
                },
                Span {
                    text: "Please check the robot status before retrying.".into(),
                    ..Span::default()
                },
            ]
        );
        assert_eq!(e.message.tags, vec!["sample-exchange", "robot"]);
        assert_eq!(e.source.as_deref(), Some("bec"));
    }

    #[test]
    fn files_become_attachments_and_digits_fold_in_the_key() {
        let n = decode_notification(include_bytes!(
            "../../fixtures/bec/notify_styles_png.msgpack"
        ))
        .unwrap();
        let e = to_event("alarm_major", n);
        assert_eq!(e.severity, Severity::Major);
        assert_eq!(e.message.attachments.len(), 1);
        assert_eq!(e.message.attachments[0].filename, "red.png");
        assert!(
            e.key.starts_with("alarm_major|bec|Detector # lost"),
            "{}",
            e.key
        );
        let colors: Vec<_> = e
            .message
            .spans
            .iter()
            .filter_map(|s| s.color.as_deref())
            .collect();
        assert_eq!(colors, ["red", "green", "yellow", "pink", "blue"]);
    }

    #[test]
    fn severities_from_bec_names() {
        assert_eq!(severity("alarm_major"), Severity::Major);
        assert_eq!(severity("alarm_minor"), Severity::Minor);
        assert_eq!(severity("alarm_warning"), Severity::Warning);
        assert_eq!(severity("scan_interlock"), Severity::Warning);
        assert_eq!(severity("new_scan"), Severity::Info);
        assert_eq!(severity("beamline_ready"), Severity::Info);
    }

    #[test]
    fn stickers_and_giphies_are_text() {
        let n = decode_notification(include_bytes!(
            "../../fixtures/bec/notify_sticker_giphy.msgpack"
        ))
        .unwrap();
        let e = to_event("scan_completed", n);
        assert_eq!(
            e.message.text(),
            "Scan 42 done\n[sticker abc:1]\nhttps://giphy.com/x.gif"
        );
    }
}
