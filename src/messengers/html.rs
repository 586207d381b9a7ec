//! The HTML that OnTakt clients put in an alert's `details`, made fit for each service.
//!
//! That HTML comes from whoever can call the API, so it is never passed on as it came.
//! Mail shows HTML: it gets the HTML through `ammonia`'s allow-list (no scripts, no
//! styles, no images — a remote image would tell a tracker who read the mail — links
//! only to `http(s)` and `mailto`). Telegram shows a handful of tags and plain text shows
//! none: both get [`runs`], the text of the parsed document in styled runs, which their
//! renderers escape and wrap in their own tags. Parsing is html5ever's (through
//! `scraper`), the same as a browser's, so malformed input degrades the way a reader
//! would expect instead of leaking markup.

use scraper::{Html, Node};

/// A stretch of text with one style, as the reduction of some HTML.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Run {
    pub text: String,
    pub bold: bool,
    pub italic: bool,
    /// Monospaced: inside `<code>` or `<pre>`.
    pub code: bool,
    /// An absolute `http(s)` link the text points to.
    pub link: Option<String>,
}

/// The HTML for a mail body: only harmless tags and attributes, links made
/// `rel="noopener noreferrer"`, relative URLs dropped (a mail has no base to resolve
/// them against).
pub fn sanitize(html: &str) -> String {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["img"])
        .url_schemes(["http", "https", "mailto"].into())
        .url_relative(ammonia::UrlRelative::Deny);
    b.clean(html).to_string()
}

/// Elements whose content is not text a reader should see.
pub(crate) const HIDDEN: &[&str] = &[
    "script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg", "math",
    "select", "textarea",
];

/// Elements that stand on lines of their own.
pub(crate) const BLOCKS: &[&str] = &[
    "p",
    "div",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "tr",
    "figure",
    "hr",
    "section",
    "article",
    "header",
    "footer",
    "dl",
    "dt",
    "dd",
];

/// The text of `html` in styled runs, with line breaks where the blocks were: what
/// Telegram and plain-text renderers show. Runs never contain markup.
pub fn runs(html: &str) -> Vec<Run> {
    let doc = Html::parse_fragment(html);
    let mut out = Reducer::default();
    out.walk(doc.tree.root(), &Run::default(), false);
    out.finish()
}

/// `html` as plain text: links written after their text, `text (url)`.
pub fn to_text(html: &str) -> String {
    let mut s = String::new();
    for r in runs(html) {
        s.push_str(&r.text);
        if let Some(l) = r.link.filter(|l| !r.text.contains(l.as_str())) {
            s.push_str(&format!(" ({l})"));
        }
    }
    s
}

#[derive(Default)]
struct Reducer {
    runs: Vec<Run>,
    /// Line breaks owed before the next text: block boundaries, kept from piling up.
    breaks: usize,
}

impl Reducer {
    fn walk(&mut self, node: ego_tree::NodeRef<'_, Node>, style: &Run, pre: bool) {
        for child in node.children() {
            match child.value() {
                Node::Text(t) => self.text(t, style, pre),
                Node::Element(e) => {
                    let name = e.name();
                    if HIDDEN.contains(&name) {
                        continue;
                    }
                    if name == "br" {
                        self.push_raw("\n", style);
                        continue;
                    }
                    let block = BLOCKS.contains(&name);
                    if block {
                        self.block_break(if name == "p" { 2 } else { 1 });
                    }
                    let mut inner = style.clone();
                    match name {
                        "b" | "strong" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "th" => {
                            inner.bold = true
                        }
                        "i" | "em" | "cite" => inner.italic = true,
                        "code" | "pre" | "kbd" | "samp" | "tt" => inner.code = true,
                        "a" => {
                            inner.link = e
                                .attr("href")
                                .map(str::trim)
                                .filter(|h| crate::event::is_absolute_http(h))
                                .map(String::from)
                        }
                        _ => {}
                    }
                    if name == "li" {
                        self.push_raw("• ", style);
                    }
                    self.walk(child, &inner, pre || name == "pre");
                    if block {
                        self.block_break(if name == "p" { 2 } else { 1 });
                    }
                }
                _ => self.walk(child, style, pre),
            }
        }
    }

    /// Text as a browser lays it out: runs of white space are one space, except in
    /// `<pre>`.
    fn text(&mut self, t: &str, style: &Run, pre: bool) {
        if pre {
            self.push_raw(t, style);
            return;
        }
        let mut collapsed = String::with_capacity(t.len());
        let mut space = false;
        let after_space = self.runs.last().is_some_and(|r| r.text.ends_with(' '));
        for c in t.chars() {
            if c.is_whitespace() {
                space = true;
            } else {
                if space && (!collapsed.is_empty() || !(self.at_line_start() || after_space)) {
                    collapsed.push(' ');
                }
                space = false;
                collapsed.push(c);
            }
        }
        // A blank between two inline elements (`</a> <a>`) is one space.
        if space
            && !collapsed.ends_with(' ')
            && (!collapsed.is_empty() || !(self.at_line_start() || after_space))
        {
            collapsed.push(' ');
        }
        if !collapsed.is_empty() {
            self.push_raw(&collapsed, style);
        }
    }

    fn at_line_start(&self) -> bool {
        self.breaks > 0 || self.runs.last().is_none_or(|r| r.text.ends_with('\n'))
    }

    fn block_break(&mut self, n: usize) {
        if !self.runs.is_empty() {
            self.breaks = self.breaks.max(n);
        }
    }

    fn push_raw(&mut self, text: &str, style: &Run) {
        if self.breaks > 0 {
            let trailing = self
                .runs
                .last()
                .map_or(0, |r| r.text.len() - r.text.trim_end_matches('\n').len());
            let owed = "\n".repeat(self.breaks.saturating_sub(trailing));
            self.breaks = 0;
            if !owed.is_empty() {
                self.push_raw(&owed, &Run::default());
            }
        }
        if let Some(last) = self.runs.last_mut()
            && last.bold == style.bold
            && last.italic == style.italic
            && last.code == style.code
            && last.link == style.link
        {
            last.text.push_str(text);
            return;
        }
        self.runs.push(Run {
            text: text.to_string(),
            ..style.clone()
        });
    }

    fn finish(mut self) -> Vec<Run> {
        // Trailing blank lines and spaces say nothing.
        while let Some(last) = self.runs.last_mut() {
            let kept = last.text.trim_end().len();
            last.text.truncate(kept);
            if last.text.is_empty() {
                self.runs.pop();
            } else {
                break;
            }
        }
        self.runs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OnTakt's own "bad weather" details.
    const WEATHER: &str = "<p>There are storms forecasted over the next few hours.</p>\n<p>Shut down the machines to avoid damage if the power goes out.</p>";

    #[test]
    fn paragraphs_become_lines() {
        assert_eq!(
            to_text(WEATHER),
            "There are storms forecasted over the next few hours.\n\nShut down the machines to avoid damage if the power goes out."
        );
    }

    #[test]
    fn styles_and_links_are_runs_and_nothing_else_survives() {
        let r = runs(
            "<p>This alert has <i>lots</i> of <b>fields</b>.<script>alert(1)</script>\
             <a href=\"https://example.org/x\">see</a> <a href=\"javascript:alert(1)\">bad</a>\
             <img src=\"https://tracker.example/p.png\"></p>",
        );
        let text: String = r.iter().map(|x| x.text.as_str()).collect();
        assert_eq!(text, "This alert has lots of fields.see bad");
        assert!(r.iter().any(|x| x.italic && x.text == "lots"));
        assert!(r.iter().any(|x| x.bold && x.text == "fields"));
        assert!(
            r.iter()
                .any(|x| x.text == "see" && x.link.as_deref() == Some("https://example.org/x"))
        );
        assert!(
            r.iter()
                .all(|x| x.link.as_deref() != Some("javascript:alert(1)"))
        );
    }

    #[test]
    fn pre_keeps_its_lines_and_lists_get_bullets() {
        assert_eq!(
            to_text("<pre>a\n  b</pre><ul><li>one</li><li>two</li></ul>"),
            "a\n  b\n• one\n• two"
        );
    }

    #[test]
    fn mail_html_loses_scripts_images_and_handlers() {
        let clean = sanitize(
            "<p onclick=\"x()\">Hi <script>steal()</script><img src=\"https://t.example/p.png\">\
             <a href=\"javascript:x()\">a</a> <a href=\"/rel\">r</a> <a href=\"https://ok.example/\">ok</a></p>",
        );
        for bad in [
            "script",
            "steal",
            "<img",
            "onclick",
            "javascript:",
            "/rel\"",
        ] {
            assert!(!clean.contains(bad), "{bad} in {clean}");
        }
        assert!(clean.contains("href=\"https://ok.example/\""), "{clean}");
    }
}
