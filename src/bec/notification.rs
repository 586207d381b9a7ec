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
    let message = message(event, n.items, false);
    let text = message.text();
    let mut e = Event::message(event, severity(event), message);
    e.source = Some(SOURCE.to_string());
    e.key = dedup_key(event, Some(SOURCE), &text);
    e
}

/// BEC's content items as our [`Message`]: text items as styled spans, tags, files as
/// attachments (with their size), a giphy as its link; `event` names it in the log.
/// With `keep_html`, also the items' HTML as SciLog's SDK would compose it
/// (`LogbookMessage.add_text`: a text that does not start with a tag becomes a
/// paragraph; a file stands where it was added), for the services that show HTML.
pub fn message(event: &str, items: Vec<Item>, keep_html: bool) -> Message {
    let mut message = Message::default();
    let mut html = String::new();
    // A paragraph stands on its own line; the text after it starts a new one.
    let mut after_block = false;
    for item in items {
        let (spans, block) = match item {
            Item::Text(text) => {
                if keep_html {
                    if text.trim_start().starts_with('<') {
                        html.push_str(&text);
                    } else {
                        html.push_str(&format!("<p>{text}</p>"));
                    }
                }
                let t = super::html::read(&text);
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
                width,
                height,
            } => match Attachment::new(&filename, data) {
                Ok(mut a) => {
                    tracing::debug!(file = %filename, mime = %mime_type, "BEC attachment");
                    a.width = width;
                    a.height = height;
                    if keep_html {
                        html.push_str(&Message::file_mark(message.attachments.len()));
                    }
                    message.attachments.push(a);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(event, file = %filename, error = %e, "a BEC attachment was not taken");
                    let note = format!("[attachment {filename} not taken: {e}]");
                    if keep_html {
                        html.push_str(&format!("<p>{}</p>", crate::event::html_escape(&note)));
                    }
                    (plain(note), true)
                }
            },
            Item::Sticker(id) => {
                tracing::info!(event, sticker = %id, "a BEC sticker was left out: protowatch sends no stickers to any service");
                continue;
            }
            Item::Giphy(url) => {
                // Every service shows a link; Telegram and Signal show its picture.
                if keep_html {
                    let u = crate::event::html_escape(&url);
                    html.push_str(&format!("<p><a href=\"{u}\">{u}</a></p>"));
                }
                (plain(url), true)
            }
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
    if keep_html {
        message.html = Some(html);
    }
    message
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
    fn a_giphy_is_its_link_and_a_sticker_is_left_out() {
        let n = decode_notification(include_bytes!(
            "../../fixtures/bec/notify_sticker_giphy.msgpack"
        ))
        .unwrap();
        let e = to_event("scan_completed", n);
        assert_eq!(e.message.text(), "Scan 42 done\nhttps://giphy.com/x.gif");
        assert_eq!(e.message.html, None);
    }

    #[test]
    fn kept_html_is_what_scilogs_sdk_composes_with_files_in_place() {
        let items = vec![
            Item::Text("Scan 1203 done".into()),
            Item::File {
                filename: "fit.png".into(),
                mime_type: "image/png".into(),
                data: vec![1, 2, 3],
                width: Some("400px".into()),
                height: None,
            },
            Item::Text("<p>Fit</p><figure class=\"table\"><table><tbody><tr><td><strong>x</strong></td></tr></tbody></table></figure>".into()),
            Item::Tags(vec!["bec".into(), "scan".into()]),
        ];
        let m = message("message", items, true);
        assert_eq!(
            m.html.as_deref(),
            Some(
                "<p>Scan 1203 done</p><!--protowatch-file:0--><p>Fit</p><figure class=\"table\"><table><tbody><tr><td><strong>x</strong></td></tr></tbody></table></figure>"
            )
        );
        assert_eq!(m.attachments[0].width.as_deref(), Some("400px"));
        assert_eq!(m.tags, ["bec", "scan"]);
        assert_eq!(m.text(), "Scan 1203 done\nFit\nx");
    }
}
