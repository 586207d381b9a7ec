//! The HTML of BEC's text items as our styled spans.
//!
//! BEC's `add_text(text, bold, italic, color)` writes a small dialect: a styled text is a
//! paragraph, `<p>`, around `<mark class="pen-red|pen-green|marker-yellow|marker-pink|
//! marker-blue">`, `<em>` and `<strong>`; an unstyled text is the text as it was given,
//! not escaped (`"a < b & c"` arrives like that). SciLog shows that HTML as it is; every
//! other service of ours renders [`Span`]s its own way, so the dialect is read here into
//! bold, italic and a color name. Parsing is html5ever's (through `scraper`), so stray
//! `<` and `&` in plain text stay text, and tags we do not know keep their text.

use scraper::{Html, Node};

use crate::event::Span;

/// The color name of BEC's `<mark>` classes: pens (`pen-red`, `pen-green`) and markers
/// (`marker-yellow`, `marker-pink`, `marker-blue`). `black` is written as no mark.
fn mark_color(class: &str) -> Option<&'static str> {
    class.split_whitespace().find_map(|c| match c {
        "pen-red" | "marker-red" => Some("red"),
        "pen-green" | "marker-green" => Some("green"),
        "marker-yellow" | "pen-yellow" => Some("yellow"),
        "marker-pink" | "pen-pink" => Some("pink"),
        "marker-blue" | "pen-blue" => Some("blue"),
        _ => None,
    })
}

// Which elements stand on lines of their own, and which hide their text: as the
// services' HTML reader has them.
use crate::messengers::html::{BLOCKS, HIDDEN};

/// A text item read: its spans, and whether it was a block (a paragraph), which stands
/// on a line of its own.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Text {
    pub spans: Vec<Span>,
    pub block: bool,
}

/// Reads one text item.
pub fn read(html: &str) -> Text {
    // Plain text, the common case of `notify(event, "…")`: no parse, no surprises.
    if !html.contains('<') && !html.contains('&') {
        return Text {
            spans: vec![Span {
                text: html.to_string(),
                ..Span::default()
            }],
            block: false,
        };
    }
    let doc = Html::parse_fragment(html);
    let mut r = Reader::default();
    r.walk(doc.tree.root(), &Span::default());
    let block = html.trim_start().starts_with("<p") || html.trim_start().starts_with("<div");
    let mut spans = r.spans;
    while spans.last().is_some_and(|s| s.text.trim().is_empty()) {
        spans.pop();
    }
    if let Some(last) = spans.last_mut() {
        let trimmed = last.text.trim_end_matches('\n').len();
        last.text.truncate(trimmed);
    }
    Text { spans, block }
}

#[derive(Default)]
struct Reader {
    spans: Vec<Span>,
}

impl Reader {
    fn walk(&mut self, node: ego_tree::NodeRef<'_, Node>, style: &Span) {
        for child in node.children() {
            match child.value() {
                Node::Text(t) => self.push(t, style),
                Node::Element(e) => {
                    let name = e.name();
                    if HIDDEN.contains(&name) {
                        continue;
                    }
                    if name == "br" {
                        self.push("\n", style);
                        continue;
                    }
                    let block = BLOCKS.contains(&name);
                    if block {
                        self.line_break();
                    }
                    let mut inner = style.clone();
                    match name {
                        "strong" | "b" | "th" => inner.bold = true,
                        "em" | "i" => inner.italic = true,
                        "mark" => {
                            if let Some(c) = e.attr("class").and_then(mark_color) {
                                inner.color = Some(c.to_string());
                            }
                        }
                        _ => {}
                    }
                    self.walk(child, &inner);
                    if block {
                        self.line_break();
                    } else if name == "td" {
                        self.push(" ", style);
                    }
                }
                _ => self.walk(child, style),
            }
        }
    }

    /// A new line before what follows, unless the text is at a line's start already.
    fn line_break(&mut self) {
        match self.spans.last() {
            None => {}
            Some(s) if s.text.ends_with('\n') => {}
            Some(_) => self.push("\n", &Span::default()),
        }
    }

    fn push(&mut self, text: &str, style: &Span) {
        if text.is_empty() {
            return;
        }
        match self.spans.last_mut() {
            Some(last)
                if last.bold == style.bold
                    && last.italic == style.italic
                    && last.color == style.color =>
            {
                last.text.push_str(text)
            }
            _ => self.spans.push(Span {
                text: text.to_string(),
                bold: style.bold,
                italic: style.italic,
                color: style.color.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str, bold: bool, italic: bool, color: Option<&str>) -> Span {
        Span {
            text: text.into(),
            bold,
            italic,
            color: color.map(str::to_string),
        }
    }

    #[test]
    fn what_add_text_writes() {
        // add_text("Sample mount failed", bold=True, color="red"), as bec_lib writes it.
        let t = read(r#"<p><mark class="pen-red"><strong>Sample mount failed</strong></mark></p>"#);
        assert_eq!(
            t,
            Text {
                spans: vec![span("Sample mount failed", true, false, Some("red"))],
                block: true
            }
        );
        let t = read(r#"<p><mark class="marker-blue"><em><strong>blue</strong></em></mark></p>"#);
        assert_eq!(t.spans, vec![span("blue", true, true, Some("blue"))]);
        let t = read(r#"<p><mark class="pen-green"><em>recovered</em></mark></p>"#);
        assert_eq!(t.spans, vec![span("recovered", false, true, Some("green"))]);
        assert_eq!(
            read("<p>black</p>").spans,
            vec![span("black", false, false, None)]
        );
    }

    #[test]
    fn plain_text_stays_text() {
        let t = read("a < b & c");
        assert_eq!(t.spans, vec![span("a < b & c", false, false, None)]);
        assert!(!t.block);
        let t = read(" Please check the robot status before retrying.");
        assert_eq!(
            t.spans[0].text,
            " Please check the robot status before retrying."
        );
        // Markup that is not BEC's keeps its text; scripts do not.
        let t = read("<p>x<script>alert(1)</script> <b>y</b><br>z</p>");
        let text: String = t.spans.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(text, "x y\nz");
    }
}
