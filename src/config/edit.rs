//! Changes to the config file that keep the operator's layout, and their atomic write.
//!
//! Operators edit `config.json` by hand, with their own indentation, key order and line
//! endings, and the old bot's files have layouts of their own. A command that changes one
//! route must leave every other byte as it was written, so that a diff shows exactly the
//! change and nothing else; a round trip through `serde_json` would reorder the keys and
//! reformat the whole file. So a small scanner reads the text and records the byte span of
//! every value and member ([`Document`]); an edit splices new text into one span, and
//! writes that text in the style of the file around it (its indent unit, its line endings,
//! its spacing around `:`, one route object per line). JSON has no comments, so
//! whitespace, order and formatting are all there is to keep.
//!
//! The file holds passwords and is read by a running agent, so [`save`] re-validates the
//! new text, refuses to write an invalid one, and writes atomically: a temporary file in
//! the same folder, flushed to disk, with the original's permissions (and owner), renamed
//! over the original. A crash leaves the old file or the new one, never half of either.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Config, ConfigError};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{line}:{column}: invalid JSON: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: not found")]
    NotFound { path: String },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("{path}: already there")]
    Exists { path: String },
    #[error("{path}: no item {index}")]
    NoItem { path: String, index: usize },
    #[error("the edited config would not be valid, so it was not written:\n{0}")]
    Invalid(ConfigError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} was changed by someone else while it was being edited; nothing written, try again", path.display())]
    Changed { path: PathBuf },
}

/// A JSON value to write into the file. Unlike `serde_json::Value` (whose objects sort
/// their keys), its objects keep the order they are built in, so a route is written
/// `{"service": …, "scope": …}` as people read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    pub fn str(s: impl Into<String>) -> Json {
        Json::String(s.into())
    }

    fn is_scalar(&self) -> bool {
        !matches!(self, Json::Array(_) | Json::Object(_))
    }

    /// How deep containers nest: 0 for a scalar or an empty container.
    fn depth(&self) -> usize {
        match self {
            Json::Array(items) => items.iter().map(|i| i.depth() + 1).max().unwrap_or(0),
            Json::Object(members) => members
                .iter()
                .map(|(_, v)| v.depth() + 1)
                .max()
                .unwrap_or(0),
            _ => 0,
        }
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => Json::Number(n.clone()),
            Value::String(s) => Json::String(s.clone()),
            Value::Array(items) => Json::Array(items.iter().map(Json::from).collect()),
            Value::Object(map) => Json::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), Json::from(v)))
                    .collect(),
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The scanner: JSON text → a tree of byte spans.

#[derive(Debug)]
enum Node {
    Object {
        span: Range<usize>,
        members: Vec<Member>,
    },
    Array {
        span: Range<usize>,
        items: Vec<Node>,
    },
    Scalar {
        span: Range<usize>,
    },
}

#[derive(Debug)]
struct Member {
    /// The key, unescaped.
    key: String,
    /// The key with its quotes.
    key_span: Range<usize>,
    value: Node,
}

impl Node {
    fn span(&self) -> Range<usize> {
        match self {
            Node::Object { span, .. } | Node::Array { span, .. } | Node::Scalar { span } => {
                span.clone()
            }
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Node::Object { .. } => "an object",
            Node::Array { .. } => "a list",
            Node::Scalar { .. } => "a single value",
        }
    }

    /// The member called `key`; the last one if the key is there twice, as serde_json
    /// (and so the config loader) takes the last one.
    fn member(&self, key: &str) -> Option<(usize, &Member)> {
        match self {
            Node::Object { members, .. } => {
                members.iter().enumerate().rev().find(|(_, m)| m.key == key)
            }
            _ => None,
        }
    }
}

/// serde_json's limit too: deeper files never load, and the recursion stays bounded.
const MAX_DEPTH: usize = 128;

struct Scanner<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

fn scan(text: &str) -> Result<Node, EditError> {
    let mut s = Scanner {
        text,
        pos: 0,
        depth: 0,
    };
    s.skip_ws();
    let root = s.value()?;
    s.skip_ws();
    if s.pos < text.len() {
        return Err(s.error("trailing characters after the JSON value"));
    }
    Ok(root)
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn error(&self, message: &str) -> EditError {
        let before = &self.text[..floor_char_boundary(self.text, self.pos)];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        EditError::Syntax {
            line,
            column,
            message: message.to_string(),
        }
    }

    fn expect(&mut self, byte: u8, what: &str) -> Result<(), EditError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected {what}")))
        }
    }

    fn value(&mut self) -> Result<Node, EditError> {
        match self.peek() {
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => {
                let start = self.pos;
                self.string()?;
                Ok(Node::Scalar {
                    span: start..self.pos,
                })
            }
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of the text")),
        }
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<Node, EditError>) -> Result<Node, EditError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nested too deep"));
        }
        let node = f(self);
        self.depth -= 1;
        node
    }

    fn object(&mut self) -> Result<Node, EditError> {
        let start = self.pos;
        self.pos += 1;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Object {
                span: start..self.pos,
                members,
            });
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a key in double quotes"));
            }
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = key_start..self.pos;
            self.skip_ws();
            self.expect(b':', "`:` after the key")?;
            self.skip_ws();
            let value = self.value()?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Object {
                        span: start..self.pos,
                        members,
                    });
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Node, EditError> {
        let start = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(Node::Array {
                span: start..self.pos,
                items,
            });
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Node::Array {
                        span: start..self.pos,
                        items,
                    });
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn literal(&mut self, word: &str) -> Result<Node, EditError> {
        let start = self.pos;
        if self.text[start..].starts_with(word) {
            self.pos += word.len();
            Ok(Node::Scalar {
                span: start..self.pos,
            })
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Node, EditError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("expected a digit after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        Ok(Node::Scalar {
            span: start..self.pos,
        })
    }

    /// A string at `pos` (on its opening quote); returns it unescaped.
    fn string(&mut self) -> Result<String, EditError> {
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    out.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let c = self.unicode_escape()?;
                            out.push(c);
                            run = self.pos;
                            continue;
                        }
                        _ => return Err(self.error("invalid escape")),
                    };
                    self.pos += 1;
                    out.push(c);
                    run = self.pos;
                }
                Some(b) if b < 0x20 => {
                    return Err(self.error("control character in a string"));
                }
                // Multi-byte UTF-8 never contains bytes < 0x80, so stepping bytewise
                // within a run is safe: runs are copied whole, at char boundaries.
                Some(_) => self.pos += 1,
            }
        }
    }

    /// After `\u`: four hex digits, and the low half of a surrogate pair if needed.
    fn unicode_escape(&mut self) -> Result<char, EditError> {
        let high = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&high) {
            if !self.text[self.pos..].starts_with("\\u") {
                return Err(self.error("lone surrogate in a \\u escape"));
            }
            self.pos += 2;
            let low = self.hex4()?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(self.error("invalid surrogate pair in a \\u escape"));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        } else {
            high
        };
        char::from_u32(code).ok_or_else(|| self.error("lone surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, EditError> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        let n = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(n)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

// ---------------------------------------------------------------------------------------
// The document: edits that splice one span.

/// A config text, ready for edits that keep everything outside the edited span.
#[derive(Debug, Clone)]
pub struct Document {
    bom: bool,
    /// The text without its BOM.
    body: String,
    /// `"\r\n"` when the file's lines end so.
    newline: &'static str,
    /// One level of indentation as the file uses it (`"  "`, `"    "`, `"\t"`).
    unit: String,
    /// Between a key and its value (`": "`).
    colon: String,
    /// Between two entries on one line (`", "`).
    comma: String,
}

const BOM: char = '\u{feff}';

impl Document {
    pub fn parse(text: &str) -> Result<Document, EditError> {
        let (bom, body) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let root = scan(body)?;
        let newline = match body.find('\n') {
            Some(i) if body[..i].ends_with('\r') => "\r\n",
            _ => "\n",
        };
        let Style { unit, colon, comma } = style(body, &root);
        Ok(Document {
            bom,
            body: body.to_string(),
            newline,
            unit,
            colon,
            comma,
        })
    }

    /// The whole text, with the BOM if the original had one.
    pub fn text(&self) -> String {
        if self.bom {
            format!("{BOM}{}", self.body)
        } else {
            self.body.clone()
        }
    }

    /// The value at a path of object keys, as serde_json reads it.
    pub fn get(&self, path: &[&str]) -> Option<Value> {
        let root = scan(&self.body).ok()?;
        let node = find(&root, path).ok()?;
        serde_json::from_str(&self.body[node.span()]).ok()
    }

    /// Whether the path names a member.
    pub fn contains(&self, path: &[&str]) -> bool {
        scan(&self.body).is_ok_and(|root| find(&root, path).is_ok())
    }

    /// Replaces the value at `path` (which must exist).
    pub fn replace(&mut self, path: &[&str], value: &Json) -> Result<(), EditError> {
        let root = scan(&self.body)?;
        let (parent, last) = split(path)?;
        let container = find(&root, parent)?;
        let (_, member) = object_member(container, parent, last)?;
        let old = member.value.span();
        let multiline = match &member.value {
            Node::Object { .. } | Node::Array { .. } => self.body[old.clone()].contains('\n'),
            Node::Scalar { .. } => self.body[container.span()].contains('\n'),
        };
        let indent = line_indent(&self.body, member.key_span.start).to_string();
        let text = self.render(value, &indent, multiline);
        self.splice(old, &text);
        Ok(())
    }

    /// Adds `key: value` to the object at `object` (the key must be new): after its last
    /// member and spaced like it, or in an empty object on a line of its own one level
    /// deeper than the object's line.
    pub fn insert(&mut self, object: &[&str], key: &str, value: &Json) -> Result<(), EditError> {
        let root = scan(&self.body)?;
        let node = find(&root, object)?;
        let Node::Object { span, members } = node else {
            return Err(wrong(object, "an object", node));
        };
        if node.member(key).is_some() {
            return Err(EditError::Exists {
                path: show_path(&[object, &[key]].concat()),
            });
        }
        let key_text = quote(key);
        match members.last() {
            None => {
                let outer = line_indent(&self.body, span.start).to_string();
                let inner = format!("{outer}{}", self.unit);
                let value = self.render(value, &inner, true);
                let nl = self.newline;
                let colon = &self.colon;
                let text = format!("{{{nl}{inner}{key_text}{colon}{value}{nl}{outer}}}");
                self.splice(span.clone(), &text);
            }
            Some(last) => {
                let sep = match members.len() {
                    1 => self.first_sep(span.start + 1..last.key_span.start),
                    n => {
                        self.body[members[n - 2].value.span().end..last.key_span.start].to_string()
                    }
                };
                let colon = &self.body[last.key_span.end..last.value.span().start];
                let indent = match sep.rfind('\n') {
                    Some(i) => leading_ws(&sep[i + 1..]),
                    None => line_indent(&self.body, last.key_span.start),
                };
                let multiline = self.body[span.clone()].contains('\n');
                let value = self.render(value, indent, multiline);
                let text = format!("{sep}{key_text}{colon}{value}");
                let at = last.value.span().end;
                self.splice(at..at, &text);
            }
        }
        Ok(())
    }

    /// Replaces the value at `path` if it is there, else inserts it into its object.
    pub fn set(&mut self, path: &[&str], value: &Json) -> Result<(), EditError> {
        if self.contains(path) {
            self.replace(path, value)
        } else {
            let (parent, last) = split(path)?;
            self.insert(parent, last, value)
        }
    }

    /// Removes the member at `path` with its comma; the rest stays as written. The last
    /// member of an object leaves `{}`.
    ///
    /// A key written twice is removed every time: the loader reads only the last one, so
    /// an earlier one is dead text that would come alive once the last one is gone (a
    /// disabled route would be replaced by a forgotten one).
    pub fn remove(&mut self, path: &[&str]) -> Result<(), EditError> {
        self.remove_last(path)?;
        while self.contains(path) {
            self.remove_last(path)?;
        }
        Ok(())
    }

    fn remove_last(&mut self, path: &[&str]) -> Result<(), EditError> {
        let root = scan(&self.body)?;
        let (parent, last) = split(path)?;
        let container = find(&root, parent)?;
        let (i, _) = object_member(container, parent, last)?;
        let Node::Object { span, members } = container else {
            return Err(wrong(parent, "an object", container));
        };
        let starts: Vec<usize> = members.iter().map(|m| m.key_span.start).collect();
        let ends: Vec<usize> = members.iter().map(|m| m.value.span().end).collect();
        let range = cut(span, &starts, &ends, i);
        self.splice(range, "");
        Ok(())
    }

    /// Appends `value` to the list at `path`, after its last item and spaced like it.
    pub fn push(&mut self, path: &[&str], value: &Json) -> Result<(), EditError> {
        let root = scan(&self.body)?;
        let node = find(&root, path)?;
        let Node::Array { span, items } = node else {
            return Err(wrong(path, "a list", node));
        };
        match items.last() {
            None => {
                // `[]` or `[ ]`: the item goes inside, on the line of the brackets.
                let indent = line_indent(&self.body, span.start).to_string();
                let item = self.render_item(value, &indent, false);
                self.splice(span.clone(), &format!("[{item}]"));
            }
            Some(last) => {
                let sep = match items.len() {
                    1 => self.first_sep(span.start + 1..last.span().start),
                    n => self.body[items[n - 2].span().end..last.span().start].to_string(),
                };
                let indent = match sep.rfind('\n') {
                    Some(i) => leading_ws(&sep[i + 1..]),
                    None => line_indent(&self.body, last.span().start),
                };
                let multiline = sep.contains('\n');
                let item = self.render_item(value, indent, multiline);
                let at = last.span().end;
                self.splice(at..at, &format!("{sep}{item}"));
            }
        }
        Ok(())
    }

    /// Removes item `index` of the list at `path` with its comma. The last item leaves `[]`.
    pub fn remove_item(&mut self, path: &[&str], index: usize) -> Result<(), EditError> {
        let root = scan(&self.body)?;
        let node = find(&root, path)?;
        let Node::Array { span, items } = node else {
            return Err(wrong(path, "a list", node));
        };
        if index >= items.len() {
            return Err(EditError::NoItem {
                path: show_path(path),
                index,
            });
        }
        let starts: Vec<usize> = items.iter().map(|n| n.span().start).collect();
        let ends: Vec<usize> = items.iter().map(|n| n.span().end).collect();
        let range = cut(span, &starts, &ends, index);
        self.splice(range, "");
        Ok(())
    }

    /// The separator before a second entry, from the space before the first: the line
    /// break and indentation if it has its own line, else the file's inline comma.
    fn first_sep(&self, before_first: Range<usize>) -> String {
        let ws = &self.body[before_first];
        if ws.contains('\n') {
            format!(",{ws}")
        } else {
            self.comma.clone()
        }
    }

    fn splice(&mut self, range: Range<usize>, text: &str) {
        self.body.replace_range(range, text);
    }

    /// `value` as text that starts where it is placed, on a line indented by `indent`.
    /// `multiline`: objects on several lines, else everything on one line.
    fn render(&self, value: &Json, indent: &str, multiline: bool) -> String {
        let mut out = String::new();
        self.write(&mut out, value, indent, multiline);
        out
    }

    /// A list item: small objects (a route's `{"service", "scope"}`) stay on one line.
    fn render_item(&self, value: &Json, indent: &str, multiline: bool) -> String {
        self.render(value, indent, multiline && value.depth() > 1)
    }

    fn write(&self, out: &mut String, value: &Json, indent: &str, multiline: bool) {
        let nl = self.newline;
        match value {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&quote(s)),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(members) if members.is_empty() => out.push_str("{}"),
            Json::Array(items) if !multiline || items.iter().all(Json::is_scalar) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.comma);
                    }
                    self.write(out, item, indent, false);
                }
                out.push(']');
            }
            Json::Object(members) if !multiline => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push_str(&self.comma);
                    }
                    out.push_str(&quote(k));
                    out.push_str(&self.colon);
                    self.write(out, v, indent, false);
                }
                out.push('}');
            }
            Json::Array(items) => {
                let inner = format!("{indent}{}", self.unit);
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    out.push_str(if i > 0 { "," } else { "" });
                    out.push_str(nl);
                    out.push_str(&inner);
                    out.push_str(&self.render_item(item, &inner, true));
                }
                out.push_str(nl);
                out.push_str(indent);
                out.push(']');
            }
            Json::Object(members) => {
                let inner = format!("{indent}{}", self.unit);
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    out.push_str(if i > 0 { "," } else { "" });
                    out.push_str(nl);
                    out.push_str(&inner);
                    out.push_str(&quote(k));
                    out.push_str(&self.colon);
                    self.write(out, v, &inner, true);
                }
                out.push_str(nl);
                out.push_str(indent);
                out.push('}');
            }
        }
    }
}

/// The byte range that removing entry `i` of a container takes out: with the separator
/// before it (or, for the first, the one after it), so what remains reads as written.
fn cut(span: &Range<usize>, starts: &[usize], ends: &[usize], i: usize) -> Range<usize> {
    if starts.len() == 1 {
        span.start + 1..span.end - 1
    } else if i > 0 {
        ends[i - 1]..ends[i]
    } else {
        starts[0]..starts[1]
    }
}

fn split<'p, 'k>(path: &'p [&'k str]) -> Result<(&'p [&'k str], &'k str), EditError> {
    match path.split_last() {
        Some((last, parent)) => Ok((parent, last)),
        None => Err(EditError::NotFound {
            path: "(the whole file)".into(),
        }),
    }
}

fn find<'n>(root: &'n Node, path: &[&str]) -> Result<&'n Node, EditError> {
    let mut node = root;
    for (i, key) in path.iter().enumerate() {
        let (_, m) = object_member(node, &path[..i], key)?;
        node = &m.value;
    }
    Ok(node)
}

fn object_member<'n>(
    node: &'n Node,
    path: &[&str],
    key: &str,
) -> Result<(usize, &'n Member), EditError> {
    if !matches!(node, Node::Object { .. }) {
        return Err(wrong(path, "an object", node));
    }
    node.member(key).ok_or_else(|| EditError::NotFound {
        path: show_path(&[path, &[key]].concat()),
    })
}

fn wrong(path: &[&str], expected: &'static str, node: &Node) -> EditError {
    EditError::WrongType {
        path: show_path(path),
        expected,
        found: node.kind(),
    }
}

/// `routes.alarm_major` as the config's error messages write JSON paths.
fn show_path(path: &[&str]) -> String {
    if path.is_empty() {
        "(the top level)".to_string()
    } else {
        path.join(".")
    }
}

fn quote(s: &str) -> String {
    // Serializing a string cannot fail; the fallback is never taken.
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

fn leading_ws(s: &str) -> &str {
    let end = s.find(|c| c != ' ' && c != '\t').unwrap_or(s.len());
    &s[..end]
}

/// The indentation of the line that `pos` is on.
fn line_indent(text: &str, pos: usize) -> &str {
    let start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    leading_ws(&text[start..])
}

/// How the file spaces things, learnt from what the operator wrote: the unit of
/// indentation, the text between a key and its value, and between two entries on one
/// line; the usual choices where the file shows none.
///
/// The unit is the step most often taken from a block's line to the lines of its entries,
/// where a block is a container whose first entry starts a line of its own. Entries that
/// follow their bracket on its line (`{ "user": …,` with the next key aligned under the
/// first, as in the old bot's file) are aligned, not indented; from those only the
/// smallest step counts, and only when the file has no block at all.
struct Style {
    unit: String,
    colon: String,
    comma: String,
}

fn style(text: &str, root: &Node) -> Style {
    let mut units: BTreeMap<&str, usize> = BTreeMap::new();
    let mut aligned: BTreeMap<&str, usize> = BTreeMap::new();
    let mut colons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut commas: BTreeMap<&str, usize> = BTreeMap::new();
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let (span, entries): (Range<usize>, Vec<Range<usize>>) = match node {
            Node::Object { span, members } => {
                stack.extend(members.iter().map(|m| &m.value));
                for m in members {
                    *colons
                        .entry(&text[m.key_span.end..m.value.span().start])
                        .or_default() += 1;
                }
                let entries = members
                    .iter()
                    .map(|m| m.key_span.start..m.value.span().end)
                    .collect();
                (span.clone(), entries)
            }
            Node::Array { span, items } => {
                stack.extend(items.iter());
                (span.clone(), items.iter().map(Node::span).collect())
            }
            Node::Scalar { .. } => continue,
        };
        let outer = line_indent(text, span.start);
        let block = entries
            .first()
            .is_some_and(|first| text[span.start..first.start].contains('\n'));
        for (i, entry) in entries.iter().enumerate() {
            let line_start = text[..entry.start].rfind('\n').map_or(0, |i| i + 1);
            let inner = &text[line_start..entry.start];
            // Only entries that begin their line, deeper than their container's line.
            if inner.len() > outer.len()
                && inner.starts_with(outer)
                && inner.bytes().all(|b| b == b' ' || b == b'\t')
            {
                let steps = if block { &mut units } else { &mut aligned };
                *steps.entry(&inner[outer.len()..]).or_default() += 1;
            }
            if let Some(next) = entries.get(i + 1) {
                let sep = &text[entry.end..next.start];
                if !sep.contains('\n') {
                    *commas.entry(sep).or_default() += 1;
                }
            }
        }
    }
    // The most frequent; of equally frequent ones the shortest.
    let pick = |counts: BTreeMap<&str, usize>, usual: &str| {
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())))
            .map_or_else(|| usual.to_string(), |(s, _)| s.to_string())
    };
    let unit = if units.is_empty() {
        aligned
            .into_keys()
            .min_by_key(|u| u.len())
            .map_or_else(|| "  ".to_string(), str::to_string)
    } else {
        pick(units, "  ")
    };
    Style {
        unit,
        colon: pick(colons, ": "),
        comma: pick(commas, ", "),
    }
}

// ---------------------------------------------------------------------------------------
// Writing.

/// Checks `new` as the config at `path` and writes it there atomically, unless the file
/// no longer holds `old` (someone else saved it meanwhile). Returns the new config.
pub fn save(path: &Path, old: &str, new: &str) -> Result<Config, EditError> {
    let config = Config::from_text(path, new).map_err(EditError::Invalid)?;
    write_atomic(path, Some(old), new)?;
    Ok(config)
}

/// Replaces the file at `path` by `text` so that a crash leaves either the old or the new
/// file: a temporary file in the same folder, flushed, with the original's permissions
/// (a 0600 file holding a password stays 0600) and owner, renamed over the original. A
/// symbolic link is followed: its target is replaced, the link stays. With `expected`,
/// the file must still hold exactly that text, or nothing is written.
pub fn write_atomic(path: &Path, expected: Option<&str>, text: &str) -> Result<(), EditError> {
    let io = |action, path: &Path| {
        let path = path.to_path_buf();
        move |source| EditError::Io {
            action,
            path,
            source,
        }
    };
    let target = std::fs::canonicalize(path).map_err(io("find", path))?;
    let meta = std::fs::metadata(&target).map_err(io("read", &target))?;
    if let Some(expected) = expected {
        let now = std::fs::read(&target).map_err(io("read", &target))?;
        if now != expected.as_bytes() {
            return Err(EditError::Changed {
                path: path.to_path_buf(),
            });
        }
    }
    let dir = target
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let name = target
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    let (tmp_path, mut file) = create_temp(&dir, &name)?;
    let written = (|| {
        file.write_all(text.as_bytes())
            .map_err(io("write", &tmp_path))?;
        keep_permissions(&file, &meta).map_err(io("set the permissions of", &tmp_path))?;
        file.sync_all().map_err(io("flush", &tmp_path))?;
        drop(file);
        std::fs::rename(&tmp_path, &target).map_err(io("replace", &target))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp_path);
        return Err(e);
    }
    sync_dir(&dir).map_err(io("flush the folder", &dir))
}

/// A new file next to the config, readable by its owner only until it gets the
/// original's permissions.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), EditError> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = dir.join(format!(
            ".{name}.{}-{:08x}.tmp",
            std::process::id(),
            fastrand::u32(..)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(source) => {
                return Err(EditError::Io {
                    action: "create a file in",
                    path: dir.to_path_buf(),
                    source,
                });
            }
        }
    }
    Err(EditError::Io {
        action: "create a file in",
        path: dir.to_path_buf(),
        source: last.unwrap_or_else(|| std::io::Error::other("no free temporary name")),
    })
}

#[cfg(unix)]
fn keep_permissions(file: &File, original: &std::fs::Metadata) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let own = file.metadata()?;
    // Run by root (sudo) on a file the agent's user owns, the new file must stay theirs,
    // or the agent could no longer read its config.
    if own.uid() != original.uid() || own.gid() != original.gid() {
        std::os::unix::fs::fchown(file, Some(original.uid()), Some(original.gid()))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(original.mode() & 0o7777))
}

/// Windows: the new file takes the folder's inherited access rights, as a file saved by
/// an editor does; the read-only flag is left off so that the rename can replace.
#[cfg(not(unix))]
fn keep_permissions(_file: &File, _original: &std::fs::Metadata) -> std::io::Result<()> {
    Ok(())
}

/// A rename is durable once its folder is flushed (POSIX); Windows has no such call.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(text).unwrap()
    }

    fn route(service: &str, scope: &str) -> Json {
        Json::Object(vec![
            ("service".into(), Json::str(service)),
            ("scope".into(), Json::str(scope)),
        ])
    }

    /// Asserts that `after` is `before` with `old` replaced by `new` at one place.
    fn only_change(before: &str, after: &str, old: &str, new: &str) {
        let at = before.find(old).expect("old text in before");
        let expected = format!("{}{new}{}", &before[..at], &before[at + old.len()..]);
        assert_eq!(after, expected);
    }

    #[test]
    fn scans_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2.5e+3, 0, true, false, null, "x"], "b": {}}"#,
            "\t{ \"k\" :\r\n[ ] , \"é\\u00e9\\ud83d\\ude00\": \"}\\\"{\" }  \n",
            r#"["\\", "\/", "\b\f\n\r\t", {"":""}]"#,
            "0",
        ] {
            let root = scan(text).unwrap();
            let start = text.len() - text.trim_start().len();
            assert_eq!(root.span(), start..text.trim_end().len());
            let _: Value = serde_json::from_str(text).unwrap();
        }
        let root = scan(r#"{"a\"}": {"b\\": 1}}"#).unwrap();
        assert!(find(&root, &["a\"}", "b\\"]).is_ok());
        let root = scan(r#"{"\u00e9t\u00e9": 1, "😀": 2}"#).unwrap();
        assert!(find(&root, &["été"]).is_ok());
        assert!(find(&root, &["😀"]).is_ok());
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for text in [
            "",
            "{",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "[1 2]",
            "{\"a\": 01}",
            "{'a': 1}",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"a\nb\"",
            "{} x",
            "-",
            "1.",
            "1e",
            "tru",
        ] {
            assert!(scan(text).is_err(), "{text:?} should not scan");
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text:?}");
        }
        match scan("{\n  \"a\": 1,\n  \"b\" 2\n}") {
            Err(EditError::Syntax { line, column, .. }) => assert_eq!((line, column), (3, 7)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn replace_keeps_everything_else() {
        let before = "{\n   \"mail\" :{ \"server\":\"s\",   \"default_scope\" :  \"a\"},\n   \"x\": [1,2]\n}\n";
        let mut d = doc(before);
        d.replace(&["mail", "default_scope"], &Json::str("ops \"}\" é"))
            .unwrap();
        only_change(before, &d.text(), "\"a\"", r#""ops \"}\" é""#);
    }

    #[test]
    fn the_last_duplicate_key_is_the_one_edited() {
        let before = r#"{"a": 1, "a": 2}"#;
        let mut d = doc(before);
        d.replace(&["a"], &Json::Bool(true)).unwrap();
        assert_eq!(d.text(), r#"{"a": 1, "a": true}"#);
    }

    #[test]
    fn insert_follows_the_siblings() {
        // Odd indentation and spacing around the colon, copied from the last member.
        let before = "{\n     \"b\" : 1,\n     \"a\" : 2\n}";
        let mut d = doc(before);
        d.insert(&[], "c", &Json::str("x")).unwrap();
        assert_eq!(
            d.text(),
            "{\n     \"b\" : 1,\n     \"a\" : 2,\n     \"c\" : \"x\"\n}"
        );

        // One member: the whitespace after `{` is the separator.
        let mut d = doc("{ \"a\": 1 }");
        d.insert(&[], "b", &Json::Number(2.into())).unwrap();
        assert_eq!(d.text(), "{ \"a\": 1, \"b\": 2 }");

        // Comma-first style.
        let mut d = doc("{ \"a\": 1\n, \"b\": 2\n}");
        d.insert(&[], "c", &Json::Null).unwrap();
        assert_eq!(d.text(), "{ \"a\": 1\n, \"b\": 2\n, \"c\": null\n}");
    }

    #[test]
    fn insert_renders_in_the_files_style() {
        let before = "{\r\n\t\"mail\": {\r\n\t\t\"server\": \"s\"\r\n\t}\r\n}\r\n";
        let mut d = doc(before);
        let routes = Json::Object(vec![
            (
                "alarm_major".into(),
                Json::Array(vec![route("mail", "default"), route("telegram", "ops")]),
            ),
            (
                "message".into(),
                Json::Array(vec![route("mail", "default")]),
            ),
        ]);
        d.insert(&[], "routes", &routes).unwrap();
        let expected = "{\r\n\t\"mail\": {\r\n\t\t\"server\": \"s\"\r\n\t},\r\n\t\"routes\": {\r\n\t\t\"alarm_major\": [\r\n\t\t\t{\"service\": \"mail\", \"scope\": \"default\"},\r\n\t\t\t{\"service\": \"telegram\", \"scope\": \"ops\"}\r\n\t\t],\r\n\t\t\"message\": [\r\n\t\t\t{\"service\": \"mail\", \"scope\": \"default\"}\r\n\t\t]\r\n\t}\r\n}\r\n";
        assert_eq!(d.text(), expected);
        let _: Value = serde_json::from_str(&d.text()).unwrap();
    }

    #[test]
    fn insert_into_a_one_line_object_stays_on_one_line() {
        let mut d = doc(r#"{"mail": {"server": "s"}}"#);
        d.insert(
            &[],
            "routes",
            &Json::Object(vec![("m".into(), Json::Array(vec![route("mail", "x")]))]),
        )
        .unwrap();
        assert_eq!(
            d.text(),
            r#"{"mail": {"server": "s"}, "routes": {"m": [{"service": "mail", "scope": "x"}]}}"#
        );
    }

    #[test]
    fn insert_into_empty_objects() {
        let mut d = doc("{\n    \"routes\": {}\n}");
        d.insert(
            &["routes"],
            "message",
            &Json::Array(vec![route("mail", "default")]),
        )
        .unwrap();
        assert_eq!(
            d.text(),
            "{\n    \"routes\": {\n        \"message\": [\n            {\"service\": \"mail\", \"scope\": \"default\"}\n        ]\n    }\n}"
        );
        let mut d = doc("{ }");
        d.insert(&[], "a", &Json::str("b")).unwrap();
        assert_eq!(d.text(), "{\n  \"a\": \"b\"\n}");
        let mut d = doc("{\"x\": {\r\n}}");
        assert_eq!(d.newline, "\r\n");
        d.insert(&["x"], "a", &Json::Number(1.into())).unwrap();
        assert_eq!(d.text(), "{\"x\": {\r\n  \"a\": 1\r\n}}");
    }

    #[test]
    fn insert_refuses_a_key_that_is_there() {
        let mut d = doc(r#"{"a": {"b": 1}}"#);
        assert!(matches!(
            d.insert(&["a"], "b", &Json::Null),
            Err(EditError::Exists { .. })
        ));
        assert!(matches!(
            d.insert(&["a", "b"], "c", &Json::Null),
            Err(EditError::WrongType { .. })
        ));
        assert!(matches!(
            d.insert(&["z"], "c", &Json::Null),
            Err(EditError::NotFound { .. })
        ));
        d.set(&["a", "c"], &Json::Null).unwrap();
        d.set(&["a", "b"], &Json::Bool(false)).unwrap();
        assert_eq!(d.text(), r#"{"a": {"b": false, "c": null}}"#);
    }

    #[test]
    fn remove_takes_the_comma_along() {
        let before = "{\n  \"a\": 1,\n  \"b\": {\"}\": \"{\"},\n  \"c\": 3\n}\n";
        let mut d = doc(before);
        d.remove(&["b"]).unwrap();
        assert_eq!(d.text(), "{\n  \"a\": 1,\n  \"c\": 3\n}\n");
        // The last member.
        let mut d = doc(before);
        d.remove(&["c"]).unwrap();
        assert_eq!(d.text(), "{\n  \"a\": 1,\n  \"b\": {\"}\": \"{\"}\n}\n");
        // The first member.
        let mut d = doc(before);
        d.remove(&["a"]).unwrap();
        assert_eq!(d.text(), "{\n  \"b\": {\"}\": \"{\"},\n  \"c\": 3\n}\n");
        // The only member.
        let mut d = doc("{\"r\": {\n    \"x\": []\n  }, \"s\": 1}");
        d.remove(&["r", "x"]).unwrap();
        assert_eq!(d.text(), "{\"r\": {}, \"s\": 1}");
        assert!(matches!(
            d.remove(&["r", "x"]),
            Err(EditError::NotFound { .. })
        ));
    }

    #[test]
    fn list_items() {
        let before = "{\"r\": [\n    {\"service\": \"mail\"},\n    {\"service\": \"telegram\", \"scope\":\"b\"}\n]}";
        let mut d = doc(before);
        d.push(&["r"], &route("mail", "ops")).unwrap();
        assert_eq!(
            d.text(),
            "{\"r\": [\n    {\"service\": \"mail\"},\n    {\"service\": \"telegram\", \"scope\":\"b\"},\n    {\"service\": \"mail\", \"scope\": \"ops\"}\n]}"
        );
        d.remove_item(&["r"], 0).unwrap();
        assert_eq!(
            d.text(),
            "{\"r\": [\n    {\"service\": \"telegram\", \"scope\":\"b\"},\n    {\"service\": \"mail\", \"scope\": \"ops\"}\n]}"
        );
        d.remove_item(&["r"], 1).unwrap();
        d.remove_item(&["r"], 0).unwrap();
        assert_eq!(d.text(), "{\"r\": []}");
        d.push(&["r"], &route("mail", "x")).unwrap();
        assert_eq!(
            d.text(),
            "{\"r\": [{\"service\": \"mail\", \"scope\": \"x\"}]}"
        );
        assert!(matches!(
            d.remove_item(&["r"], 3),
            Err(EditError::NoItem { .. })
        ));
    }

    #[test]
    fn bom_and_unicode_survive() {
        let before = "\u{feff}{\"instrument\": \"ИН-5 «β»\", \"routes\": {\"ошибка\": []}}";
        let mut d = doc(before);
        d.replace(
            &["routes", "ошибка"],
            &Json::Array(vec![route("mail", "дежурные")]),
        )
        .unwrap();
        assert_eq!(
            d.text(),
            "\u{feff}{\"instrument\": \"ИН-5 «β»\", \"routes\": {\"ошибка\": [{\"service\": \"mail\", \"scope\": \"дежурные\"}]}}"
        );
        assert_eq!(
            d.get(&["routes", "ошибка",]).unwrap()[0]["scope"],
            "дежурные"
        );
    }

    #[test]
    fn replace_keeps_a_multi_line_value_multi_line() {
        let before = "{\n  \"routes\": {\n    \"m\": [\n      {\"service\": \"mail\"}\n    ],\n    \"n\": [{\"service\": \"mail\"}]\n  }\n}";
        let mut d = doc(before);
        let two = Json::Array(vec![route("mail", "a"), route("telegram", "b")]);
        d.replace(&["routes", "m"], &two).unwrap();
        d.replace(&["routes", "n"], &two).unwrap();
        assert_eq!(
            d.text(),
            "{\n  \"routes\": {\n    \"m\": [\n      {\"service\": \"mail\", \"scope\": \"a\"},\n      {\"service\": \"telegram\", \"scope\": \"b\"}\n    ],\n    \"n\": [{\"service\": \"mail\", \"scope\": \"a\"}, {\"service\": \"telegram\", \"scope\": \"b\"}]\n  }\n}"
        );
    }

    #[test]
    fn indent_units() {
        let unit = |t: &str| doc(t).unit;
        assert_eq!(unit("{\n    \"a\": {\n        \"b\": 1\n    }\n}"), "    ");
        assert_eq!(unit("{\n\t\"a\": 1\n}"), "\t");
        assert_eq!(unit("{\"a\": 1}"), "  ");
        // The old bot's layout: aligned continuation lines do not win over the top level.
        assert_eq!(
            unit(
                "{ \"mail\": { \"user\": \"u\",\n            \"server\": \"s\",\n            \"port\": 1 },\n  \"telegram\": {},\n  \"x\": 1 }"
            ),
            "  "
        );
        // Blocks win over aligned entries.
        assert_eq!(
            unit("{\n   \"a\": {\"b\": 1,\n         \"c\": 2,\n         \"d\": 3}\n}"),
            "   "
        );
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_mode_and_refuses_a_changed_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&path, Some("old"), "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
        assert!(matches!(
            write_atomic(&path, Some("old"), "newer"),
            Err(EditError::Changed { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        // A link stays a link; its target gets the text.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        write_atomic(&link, None, "via link").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "via link");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn minified_files_stay_minified() {
        let mut d = doc(r#"{"a":1,"b":{"c":2}}"#);
        d.insert(&["b"], "d", &Json::Array(vec![route("mail", "x")]))
            .unwrap();
        d.insert(&[], "e", &Json::Bool(true)).unwrap();
        assert_eq!(
            d.text(),
            r#"{"a":1,"b":{"c":2,"d":[{"service":"mail","scope":"x"}]},"e":true}"#
        );
    }

    mod model {
        //! Random documents, written compact and pretty by serde_json: the scanner must
        //! find every member where serde_json does, and each edit must change the value
        //! exactly as the same change on a `serde_json::Value`.
        use super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                // Exact binary fractions: serde_json alone does not round-trip every float.
                (-4000i32..4000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
                "[ -~é€😀\\n\"{}\\[\\],:]{0,8}".prop_map(Value::String),
            ];
            leaf.prop_recursive(4, 32, 5, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                    prop::collection::btree_map("[a-z\"}{ ]{0,4}", inner, 0..5)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn object() -> impl Strategy<Value = serde_json::Map<String, Value>> {
            prop::collection::btree_map("[a-z\"}{é ]{0,4}", value(), 1..6)
                .prop_map(|m| m.into_iter().collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
            #[test]
            fn edits_match_serde_json(map in object(), pretty in any::<bool>(), crlf in any::<bool>()) {
                let whole = Value::Object(map.clone());
                let mut text = if pretty {
                    serde_json::to_string_pretty(&whole).unwrap()
                } else {
                    serde_json::to_string(&whole).unwrap()
                };
                if crlf {
                    text = text.replace('\n', "\r\n");
                }
                let d = doc(&text);
                for (k, v) in &map {
                    let got = d.get(&[k.as_str()]);
                    prop_assert_eq!(got.as_ref(), Some(v));
                }
                for k in map.keys() {
                    let mut edited = d.clone();
                    edited.remove(&[k.as_str()]).unwrap();
                    let mut expect = map.clone();
                    expect.remove(k);
                    let got: Value = serde_json::from_str(&edited.text()).unwrap();
                    prop_assert_eq!(got, Value::Object(expect.clone()));

                    let new = serde_json::json!({"x": [{"service": "mail", "scope": k}], "y": {}});
                    let mut edited = d.clone();
                    edited.replace(&[k.as_str()], &Json::from(&new)).unwrap();
                    let mut expect = map.clone();
                    expect.insert(k.clone(), new.clone());
                    let got: Value = serde_json::from_str(&edited.text()).unwrap();
                    prop_assert_eq!(got, Value::Object(expect));
                    prop_assert_eq!(edited.text().contains('\r'), crlf && pretty);
                }
                let mut edited = d.clone();
                edited.insert(&[], "new \"}key", &Json::Array(vec![route("telegram", "}{")])).unwrap();
                let mut expect = map.clone();
                expect.insert("new \"}key".into(), serde_json::json!([{"service": "telegram", "scope": "}{"}]));
                let got: Value = serde_json::from_str(&edited.text()).unwrap();
                prop_assert_eq!(got, Value::Object(expect));
                prop_assert!(edited.text().starts_with(text[..text.len() - 1].trim_end()));
            }
        }
    }
}
