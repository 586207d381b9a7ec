//! A notification as a Signal message: plain text with bold and italic runs, written
//! for each gateway as it takes styles.
//!
//! signal-cli-rest-api takes `text_mode: "styled"` text, `**bold**` and `*italic*`, with
//! `\` before a marker character that is meant literally (its `textstyleparser.go`);
//! signal-cli's JSON-RPC takes the plain text and `textStyle` ranges,
//! `start:length:STYLE` in UTF-16 code units (`--text-style`). Both come from the same
//! runs here. Signal shows no colors; URL actions are `label: url` lines (Signal links
//! them), tags hashtags.

use crate::event::Details;
use crate::messengers::render::{
    Notification, context_line, details_text, first_line, hashtags, links_text, more_line,
    repeat_note, severity_mark, severity_word, thousands,
};

/// Details longer than this are cut: a chat is read on a phone.
const MAX_DETAILS_CHARS: usize = 2000;

/// A run of text in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub bold: bool,
    pub italic: bool,
}

fn run(text: impl Into<String>, bold: bool, italic: bool) -> Run {
    Run {
        text: text.into(),
        bold,
        italic,
    }
}

/// The message's runs, in order.
pub fn runs(n: &Notification<'_>) -> Vec<Run> {
    let mut out = Vec::new();
    if n.is_digest() {
        out.push(run(
            format!(
                "{} {} events",
                severity_mark(worst(n)),
                thousands(n.event_count())
            ),
            true,
            false,
        ));
        out.push(run(format!(" · {}\n", n.instrument), false, false));
        for item in &n.items {
            let e = item.event;
            out.push(run(
                format!(
                    "\n{} {}",
                    severity_mark(e.severity),
                    severity_word(e.severity)
                ),
                true,
                false,
            ));
            let mut line = format!(" {}", first_line(e, 300));
            if let Some(r) = &item.repeat {
                line.push_str(&format!(" ({})", repeat_note(r)));
            }
            out.push(run(line, false, false));
        }
        if let Some(more) = more_line(n) {
            out.push(run(format!("\n\n{more}"), true, false));
        }
        return out;
    }
    let item = &n.items[0];
    let e = item.event;
    out.push(run(
        format!(
            "{} {}",
            severity_mark(e.severity),
            severity_word(e.severity)
        ),
        true,
        false,
    ));
    out.push(run(
        format!(" {} · {}\n", e.name, n.instrument),
        false,
        false,
    ));
    for s in &e.message.spans {
        out.push(run(s.text.clone(), s.bold, s.italic));
    }
    out.push(run("\n", false, false));
    out.push(run(context_line(e), false, true));
    if let Some(r) = &item.repeat {
        out.push(run(format!("\n{}", repeat_note(r)), true, false));
    }
    if let Some(d) = &e.details {
        let text = match d {
            Details::Text(t) => t.clone(),
            Details::Html { .. } => details_text(d),
        };
        let cut: String = text.chars().take(MAX_DETAILS_CHARS).collect();
        let more = if cut.len() < text.len() { "…" } else { "" };
        out.push(run(format!("\n\n{}{more}", cut.trim_end()), false, false));
    }
    let links = links_text(e);
    if !links.is_empty() {
        out.push(run(format!("\n\n{}", links.trim_end()), false, false));
    }
    if !e.message.tags.is_empty() {
        out.push(run(
            format!("\n{}", hashtags(&e.message.tags)),
            false,
            false,
        ));
    }
    out
}

fn worst(n: &Notification<'_>) -> crate::event::Severity {
    n.items
        .iter()
        .map(|i| i.event.severity)
        .max()
        .unwrap_or(crate::event::Severity::Info)
}

/// The characters signal-cli-rest-api's parser reads as markers.
const MARKERS: [char; 4] = ['*', '`', '~', '|'];

/// The runs as signal-cli-rest-api's styled text.
pub fn styled(runs: &[Run]) -> String {
    let mut out = String::new();
    for r in runs.iter().filter(|r| !r.text.is_empty()) {
        // A marker must sit right at the text it styles; blanks and line ends around a
        // run stay outside it.
        let lead = r.text.len() - r.text.trim_start().len();
        let trail = r.text.trim_end().len();
        let (before, body, after) = (
            &r.text[..lead],
            &r.text[lead..trail.max(lead)],
            &r.text[trail.max(lead)..],
        );
        let (open, close) = match (r.bold, r.italic) {
            _ if body.is_empty() => ("", ""),
            (true, true) => ("***", "***"),
            (true, false) => ("**", "**"),
            (false, true) => ("*", "*"),
            (false, false) => ("", ""),
        };
        push_escaped(&mut out, before);
        separate(&mut out, open);
        out.push_str(open);
        push_escaped(&mut out, body);
        separate(&mut out, close);
        out.push_str(close);
        push_escaped(&mut out, after);
    }
    out
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if MARKERS.contains(&c) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// A text `\` right before a marker would escape it: a zero-width space keeps them apart.
fn separate(out: &mut String, marker: &str) {
    if !marker.is_empty() && out.ends_with('\\') {
        out.push('\u{200b}');
    }
}

/// The runs as plain text and signal-cli's `textStyle` ranges (UTF-16 units).
pub fn plain_with_styles(runs: &[Run]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut styles = Vec::new();
    let mut at = 0usize;
    for r in runs {
        let len: usize = r.text.encode_utf16().count();
        if len > 0 {
            if r.bold {
                styles.push(format!("{at}:{len}:BOLD"));
            }
            if r.italic {
                styles.push(format!("{at}:{len}:ITALIC"));
            }
        }
        text.push_str(&r.text);
        at += len;
    }
    (text, styles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styled_text_as_the_rest_api_parses_it() {
        let runs = vec![
            run("Mount failed", true, false),
            run(" 2*3 ~ok~ a|b ", false, false),
            run("retry\n", false, true),
        ];
        assert_eq!(
            styled(&runs),
            "**Mount failed** 2\\*3 \\~ok\\~ a\\|b *retry*\n"
        );
        let (text, styles) =
            plain_with_styles(&[run("é ", false, false), run("🔴 x", true, false)]);
        assert_eq!(text, "é 🔴 x");
        assert_eq!(styles, ["2:4:BOLD"]);
    }
}
