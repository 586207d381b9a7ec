//! What a notification looks like in a SciLog logbook: the paragraph's HTML
//! (`textcontent`), its tags, and how an uploaded file is referenced from it.
//!
//! The HTML is what SciLog's editor writes and what BEC writes into it: `<p>`,
//! `<strong>`, `<em>`, colors as `<mark class="pen-red">` (red, green) or
//! `<mark class="marker-yellow">` (yellow, pink, blue), links, `<pre>` for a traceback.
//! Files are referenced as SciLog's own Python SDK does (`SciLogCore.prepare_file_content`):
//! a `fileHash` the entry's `files[]` and its HTML share — an image as
//! `<figure class="image image_resized"><img src="" title="<hash>"></figure>`, any other
//! file as `<a class="fileLink" href="file:<hash>">`. A logbook is read later, as the
//! record: a digest shows every event it carries, not a line each.

use serde_json::{Value, json};

use crate::event::{Attachment, Details, Span};
use crate::messengers::render::{
    Notification, context_line, escape, more_line, repeat_note, severity_word, thousands,
};

/// The width SciLog's editor gives an image by default (the SDK's default too).
const IMAGE_WIDTH: &str = "82.25%";

/// A file as the entry's `files[]` lists it once uploaded, and the HTML that shows it.
pub struct FileRef {
    pub info: Value,
    pub html: String,
}

/// What the SDK calls an image (`SciLogCore.IMAGE_TYPES`): shown inline.
const IMAGE_TYPES: [&str; 3] = ["png", "jpg", "jpeg"];

/// The file's extension, lower case (`plot.PNG` → `png`); `bin` without one.
pub fn extension(a: &Attachment) -> String {
    match a.filename.rsplit_once('.') {
        Some((_, ext)) if !ext.is_empty() => ext.to_ascii_lowercase(),
        _ => "bin".to_string(),
    }
}

pub fn is_image(a: &Attachment) -> bool {
    IMAGE_TYPES.contains(&extension(a).as_str())
}

/// `image/png` or `file/pdf`: the SDK's `fileExtension` of an entry's file, and the
/// content type it uploads the file with.
pub fn kind(a: &Attachment) -> String {
    let ext = extension(a);
    if is_image(a) {
        format!("image/{ext}")
    } else {
        format!("file/{ext}")
    }
}

/// The reference to an uploaded file (`id` and `accessHash` from the upload's answer).
pub fn file_ref(a: &Attachment, file_id: &str, access_hash: &str) -> FileRef {
    let hash = uuid4();
    let mut info = json!({
        "fileHash": hash,
        "fileExtension": kind(a),
        "fileId": file_id,
        "accessHash": access_hash,
    });
    if is_image(a) {
        info["style"] = json!({"width": a.width.as_deref().unwrap_or(IMAGE_WIDTH),
                               "height": a.height.as_deref().unwrap_or("")});
        FileRef {
            info,
            html: format!(
                "<figure class=\"image image_resized\"><img src=\"\" title=\"{hash}\"></figure>"
            ),
        }
    } else {
        FileRef {
            info,
            html: format!(
                "<p><a class=\"fileLink\" target=\"_blank\" href=\"file:{hash}\">{}</a></p>",
                escape(&a.filename)
            ),
        }
    }
}

/// A random (version 4) UUID, as the SDK's `uuid.uuid4()` makes a `fileHash`.
fn uuid4() -> String {
    let mut b: [u8; 16] = fastrand::u128(..).to_be_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The entry's tags: each event's own, then the configured ones, each once.
pub fn tags(n: &Notification<'_>, configured: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let all = n
        .items
        .iter()
        .flat_map(|i| i.event.message.tags.iter())
        .chain(configured);
    for t in all {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out
}

/// A color as BEC writes it into SciLog: red and green with the pen, yellow, pink and
/// blue with the marker; others are not shown (SciLog's editor has no more).
fn mark_class(color: &str) -> Option<&'static str> {
    match color.trim().to_ascii_lowercase().as_str() {
        "red" | "#ff0000" | "#f00" => Some("pen-red"),
        "green" | "#00ff00" | "#0f0" | "#008000" => Some("pen-green"),
        "yellow" | "#ffff00" | "#ff0" => Some("marker-yellow"),
        "pink" | "#ffc0cb" => Some("marker-pink"),
        "blue" | "#0000ff" | "#00f" => Some("marker-blue"),
        _ => None,
    }
}

fn span_html(s: &Span) -> String {
    let mut t = escape(&s.text).replace('\n', "<br>");
    if s.bold {
        t = format!("<strong>{t}</strong>");
    }
    if s.italic {
        t = format!("<em>{t}</em>");
    }
    if let Some(class) = s.color.as_deref().and_then(mark_class) {
        t = format!("<mark class=\"{class}\">{t}</mark>");
    }
    t
}

fn severity_html(s: crate::event::Severity) -> String {
    let word = format!("<strong>{}</strong>", severity_word(s));
    match s {
        crate::event::Severity::Major => format!("<mark class=\"pen-red\">{word}</mark>"),
        crate::event::Severity::Minor | crate::event::Severity::Warning => {
            format!("<mark class=\"marker-yellow\">{word}</mark>")
        }
        crate::event::Severity::Info => word,
    }
}

/// The classes SciLog's editor gives meaning to, and BEC writes: a table's figure,
/// pens and markers, a code block's language (`log_code`).
const CLASSES: &[(&str, &[&str])] = &[
    ("figure", &["table"]),
    (
        "mark",
        &[
            "pen-red",
            "pen-green",
            "marker-yellow",
            "marker-pink",
            "marker-blue",
        ],
    ),
    (
        "code",
        &[
            "language-python",
            "language-bash",
            "language-shell",
            "language-json",
            "language-yaml",
            "language-text",
            "language-plaintext",
        ],
    ),
];

/// A sender's HTML (a BEC session's entry) as SciLog may show it: the markup BEC and
/// SciLog's editor write, with those classes; no script, no image (our files are
/// put in after), no link but http(s) and mail.
pub fn sanitize(html: &str) -> String {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["img"])
        .url_schemes(["http", "https", "mailto"].into())
        .url_relative(ammonia::UrlRelative::Deny);
    for (tag, classes) in CLASSES {
        b.add_allowed_classes(*tag, classes.iter().copied());
    }
    b.clean(html).to_string()
}

/// A sender's HTML with each file where its [`Message::file_mark`] stands; files it
/// does not mark follow at the end.
///
/// [`Message::file_mark`]: crate::event::Message::file_mark
fn composed(html: &str, files: &[String]) -> String {
    let mut out = String::new();
    let mut used = vec![false; files.len()];
    let mut rest = html;
    while let Some(at) = rest.find("<!--protowatch-file:") {
        out.push_str(&sanitize(&rest[..at]));
        let after = &rest[at + "<!--protowatch-file:".len()..];
        let Some(end) = after.find("-->") else {
            rest = "";
            break;
        };
        if let Some(i) = after[..end]
            .parse::<usize>()
            .ok()
            .filter(|i| *i < files.len())
            && !used[i]
        {
            used[i] = true;
            out.push_str(&files[i]);
        }
        rest = &after[end + 3..];
    }
    out.push_str(&sanitize(rest));
    for (f, used) in files.iter().zip(used) {
        if !used {
            out.push_str(f);
        }
    }
    out
}

/// The paragraph's HTML with the files' references (`files`: the HTML of each of the
/// notification's attachments, in order, once uploaded). An event that brings its own
/// HTML (a BEC session's entry) is that HTML, as SciLog's SDK would have written it,
/// its files in place; every other event is described, its files at the end.
pub fn html(n: &Notification<'_>, files: &[String]) -> String {
    let mut out = html_described(n, files);
    let mut at = 0;
    let mut trailing = Vec::new();
    for item in &n.items {
        let count = item.event.message.attachments.len();
        let mine = files.get(at..at + count).unwrap_or_default();
        at += count;
        if item.event.message.html.is_none() {
            trailing.extend_from_slice(mine);
        }
    }
    for f in trailing {
        out.push_str(&f);
    }
    out
}

fn html_described(n: &Notification<'_>, files: &[String]) -> String {
    let mut out = String::new();
    if n.is_digest() {
        out.push_str(&format!(
            "<p><strong>{} events</strong> on <strong>{}</strong></p>",
            thousands(n.event_count()),
            escape(n.instrument)
        ));
    }
    let mut at = 0;
    for item in &n.items {
        let e = item.event;
        let count = e.message.attachments.len();
        let mine = files.get(at..at + count).unwrap_or_default();
        at += count;
        if let Some(own) = &e.message.html {
            out.push_str(&composed(own, mine));
            if let Some(r) = &item.repeat {
                out.push_str(&format!("<p><em>{}</em></p>", escape(&repeat_note(r))));
            }
            continue;
        }
        out.push_str(&format!(
            "<p>{} {} on <strong>{}</strong></p>",
            severity_html(e.severity),
            escape(&e.name),
            escape(n.instrument)
        ));
        out.push_str("<p>");
        for span in &e.message.spans {
            out.push_str(&span_html(span));
        }
        out.push_str("</p>");
        out.push_str(&format!("<p><em>{}</em></p>", escape(&context_line(e))));
        if let Some(r) = &item.repeat {
            out.push_str(&format!("<p><em>{}</em></p>", escape(&repeat_note(r))));
        }
        match &e.details {
            Some(Details::Text(t)) => out.push_str(&format!("<pre>{}</pre>", escape(t))),
            Some(Details::Html { html }) => {
                out.push_str(&crate::messengers::html::sanitize(html));
            }
            None => {}
        }
        let links: Vec<String> = e
            .actions
            .iter()
            .filter_map(|a| {
                a.absolute_url().map(|u| {
                    format!(
                        "<a href=\"{}\" target=\"_blank\">{}</a>",
                        escape(u),
                        escape(&a.label)
                    )
                })
            })
            .collect();
        if !links.is_empty() {
            out.push_str(&format!("<p>{}</p>", links.join(" · ")));
        }
    }
    if let Some(more) = more_line(n) {
        out.push_str(&format!("<p><strong>{}</strong></p>", escape(&more)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Event, Message, Severity};

    #[test]
    fn styles_as_bec_writes_them() {
        let mut e = Event::message("sample", Severity::Major, Message::plain(""));
        e.message.spans = vec![
            Span {
                text: "Mount <failed>".into(),
                bold: true,
                color: Some("red".into()),
                ..Span::default()
            },
            Span {
                text: " retry".into(),
                italic: true,
                color: Some("#123456".into()),
                ..Span::default()
            },
        ];
        let h = html(&Notification::single("IN5", &e), &[]);
        assert!(
            h.contains("<mark class=\"pen-red\"><strong>Mount &lt;failed&gt;</strong></mark>"),
            "{h}"
        );
        assert!(h.contains("<em> retry</em>"), "{h}");
    }

    #[test]
    fn files_are_referenced_as_the_sdk_does() {
        let png = Attachment::new("plot.PNG", vec![0x89, b'P', b'N', b'G']).unwrap();
        let r = file_ref(&png, "f1", "h1");
        let hash = r.info["fileHash"].as_str().unwrap().to_string();
        assert_eq!(hash.len(), 36);
        assert_eq!(&hash[14..15], "4");
        assert_eq!(r.info["fileExtension"], "image/png");
        assert_eq!(
            r.html,
            format!(
                "<figure class=\"image image_resized\"><img src=\"\" title=\"{hash}\"></figure>"
            )
        );
        let log = Attachment::new("run.log", b"x".to_vec()).unwrap();
        let r = file_ref(&log, "f2", "h2");
        assert_eq!(r.info["fileExtension"], "file/log");
        assert!(r.html.contains("href=\"file:") && r.html.contains(">run.log</a>"));
    }
}
