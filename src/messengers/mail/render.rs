//! A notification as a mail: its subject (the shared [`title`]), an HTML body with
//! colors, and a plain-text alternative; its files become MIME parts (in `mail.rs`).
//! Everything that came from outside is escaped.

use crate::event::{Details, Severity, Span};
use crate::messengers::html;
use crate::messengers::render::{
    Notification, context_line, escape, hashtags, more_line, plain_text, repeat_note,
    severity_word, thousands, title,
};

/// `[instrument] MAJOR: text`: the shared [`title`].
pub fn mail_subject(n: &Notification<'_>) -> String {
    title(n)
}

fn severity_color(s: Severity) -> &'static str {
    match s {
        Severity::Info => "#1f6feb",
        Severity::Warning => "#b08800",
        Severity::Minor => "#d15704",
        Severity::Major => "#cf222e",
    }
}

/// The plain-text part of a mail: every event with its URL actions as links.
pub fn mail_text(n: &Notification<'_>) -> String {
    plain_text(n, true)
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
                body.push_str(&format!("<div>{}</div>", html::sanitize(html)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Message, Repeat};
    use crate::messengers::render::Item;
    use chrono::Local;

    fn ev(text: &str) -> Event {
        let mut e = Event::message("alarm_major", Severity::Major, Message::plain(text));
        e.source = Some("det".into());
        e
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
        assert_eq!(n.event_count(), 57);
    }

    #[test]
    fn a_digest_shows_every_event_and_counts_the_rest() {
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
