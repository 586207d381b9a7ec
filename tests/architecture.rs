//! The layers of docs/ARCHITECTURE.md ("Layers"), checked against the code: every
//! `crate::…` and `super::…` path in `src/` is an arrow from the file's module to the
//! module it names, and an arrow may only point down the table in [`LAYERS`]. Top-level
//! modules, and the submodules of [`ACYCLIC_WITHIN`], must also not reach each other in
//! a circle, even within one layer.
//!
//! The refactor that gets there moves in steps, so what is still wrong is listed in
//! [`KNOWN`], arrow by arrow. The test fails on an arrow that is not listed *and* on a
//! listed one that is gone: the list can only shrink, and shrinking it is written down.
//!
//! Reading the source as text (not with a parser) is deliberate: the test must stay
//! cheap, dependency-free and fast to run alone. Comments and string literals are
//! skipped, so a doc comment that names `crate::config` is not an arrow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// From the bottom up. A module is in the layer of the longest entry that is a prefix of
/// its path (`*` stands for one path segment); a module with no entry fails the test, so
/// a new top-level module is placed on purpose.
const LAYERS: &[(&str, &[&str])] = &[
    // Names no section and no service: what any layer may use.
    (
        "toolkit",
        &["settings", "event", "private", "systemd", "metrics"],
    ),
    // Transactions and the database file.
    ("storage", &["store", "state_id"]),
    // Each service and the BEC bridge, owning its config section.
    ("services", &["messengers", "bec", "inbox"]),
    // The assembled config: the services' sections plus the agent's own, and the
    // on-call rules those sections are read into.
    ("config", &["config", "oncall"]),
    // The stages an event passes through.
    (
        "pipeline",
        &["watcher", "parser", "alerts", "routing", "outbox"],
    ),
    // What wires the rest together or faces the user.
    ("surface", &["agent", "api", "cli"]),
];

/// Modules whose submodules must not import each other in a circle either.
const ACYCLIC_WITHIN: &[&str] = &["api"];

/// Arrows still wrong, as the test prints them: `from -> to` points up a layer;
/// `cycle: from -> to` is an arrow between two top-level modules (or two submodules of
/// an [`ACYCLIC_WITHIN`] module) that lie on a circle. Remove an entry once it is fixed.
const KNOWN: &[&str] = &[];

fn found_in_src() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut sources = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        // The binary is another crate: its `crate::` is not the library's.
        if rel == "main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        sources.push((module_of(&rel), text));
    }
    violations(&sources)
}

#[test]
fn layers_point_down_and_modules_form_no_circle() {
    let found: BTreeSet<String> = found_in_src().into_iter().collect();
    let known: BTreeSet<String> = KNOWN.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = found.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&found).collect();
    let mut message = String::new();
    if !new.is_empty() {
        message +=
            "arrows that break the layers of docs/ARCHITECTURE.md (fix them; do not list them):\n";
        for v in &new {
            message += &format!("    {v:?},\n");
        }
    }
    if !gone.is_empty() {
        message += "arrows listed in KNOWN that are fixed now (remove them from the list):\n";
        for v in &gone {
            message += &format!("    {v:?},\n");
        }
    }
    assert!(message.is_empty(), "{message}");
}

/// A module path (`config::check`) per file path relative to `src/`.
fn module_of(rel: &str) -> String {
    let rel = rel.strip_suffix(".rs").unwrap();
    let mut parts: Vec<&str> = rel.split('/').collect();
    if matches!(parts.last(), Some(&"mod") | Some(&"lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// Every rule broken by `sources` (module path, text), in the form of [`KNOWN`].
fn violations(sources: &[(String, String)]) -> Vec<String> {
    let modules: BTreeSet<&str> = sources.iter().map(|(m, _)| m.as_str()).collect();
    let mut out = BTreeSet::new();
    for m in &modules {
        if !m.is_empty() && layer_of(m).is_none() {
            out.insert(format!("no layer for {m}"));
        }
    }
    // Arrows between distinct modules, with whether each points down.
    let mut arrows: BTreeSet<(String, String)> = BTreeSet::new();
    for (module, text) in sources {
        for path in paths(module, text) {
            let target = deepest_module(&modules, &path);
            if target.is_empty() || target == *module {
                continue;
            }
            let (Some(from_layer), Some(to_layer)) = (layer_of(module), layer_of(&target)) else {
                continue;
            };
            if to_layer.0 > from_layer.0 {
                out.insert(format!("{module} -> {}", to_layer.1));
            }
            arrows.insert((module.clone(), target));
        }
    }
    // Circles among top-level modules, and among the submodules of ACYCLIC_WITHIN.
    let mut graphs: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for (from, to) in &arrows {
        let (a, b) = (top(from), top(to));
        if a != b {
            graphs.entry(String::new()).or_default().insert((a, b));
        } else if ACYCLIC_WITHIN.contains(&a.as_str()) {
            let (a, b) = (child(from, &a), child(to, &b));
            if let (Some(a), Some(b)) = (a, b)
                && a != b
            {
                graphs.entry(top(from)).or_default().insert((a, b));
            }
        }
    }
    for edges in graphs.values() {
        for (a, b) in on_circles(edges) {
            out.insert(format!("cycle: {a} -> {b}"));
        }
    }
    out.into_iter().collect()
}

fn top(module: &str) -> String {
    module.split("::").next().unwrap().to_string()
}

/// `api::console` for `api::console::live` within `api`; `None` for `api` itself.
fn child(module: &str, parent: &str) -> Option<String> {
    let rest = module.strip_prefix(parent)?.strip_prefix("::")?;
    Some(format!("{parent}::{}", rest.split("::").next().unwrap()))
}

/// The layer's index and the matching entry with `*` filled in, for `module`.
fn layer_of(module: &str) -> Option<(usize, String)> {
    let segments: Vec<&str> = module.split("::").collect();
    let mut best: Option<(usize, usize, String)> = None;
    for (i, (_, entries)) in LAYERS.iter().enumerate() {
        for entry in *entries {
            let pattern: Vec<&str> = entry.split("::").collect();
            if pattern.len() > segments.len()
                || !pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| *p == "*" || p == s)
            {
                continue;
            }
            if best.as_ref().is_none_or(|b| pattern.len() > b.1) {
                best = Some((i, pattern.len(), segments[..pattern.len()].join("::")));
            }
        }
    }
    best.map(|(i, _, name)| (i, name))
}

/// The longest prefix of `path` that is a module (the rest names items in it).
fn deepest_module(modules: &BTreeSet<&str>, path: &[String]) -> String {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m.as_str()))
        .unwrap_or_default()
}

/// The edges of `edges` that lie on a circle: both ends in one strongly connected
/// component of more than one node.
fn on_circles(edges: &BTreeSet<(String, String)>) -> Vec<(String, String)> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for m in next.get(n).into_iter().flatten() {
                if seen.insert(*m) {
                    todo.push(m);
                }
            }
        }
        seen
    };
    // Small graphs: a reachability walk per edge is plenty.
    edges
        .iter()
        .filter(|(a, b)| reach(b).contains(a.as_str()))
        .cloned()
        .collect()
}

/// The paths `text` (the file of `module`) names, absolute from the crate root.
fn paths(module: &str, text: &str) -> Vec<Vec<String>> {
    let code = code_only(text);
    let b = code.as_bytes();
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    // Inline `mod name {` blocks, by the brace depth they opened at: `super::` inside
    // one is the file's own module.
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let file_path: Vec<String> = if module.is_empty() {
        Vec::new()
    } else {
        module.split("::").map(String::from).collect()
    };
    while i < b.len() {
        let c = b[i];
        if c == b'{' {
            depth += 1;
            i += 1;
            continue;
        }
        if c == b'}' {
            depth = depth.saturating_sub(1);
            if inline.last() == Some(&depth) {
                inline.pop();
            }
            i += 1;
            continue;
        }
        let at_word = i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b'$' || b[i - 1] == b':');
        if !at_word || !is_ident(c) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        let word = &code[start..i];
        if word == "mod" {
            let rest = code[i..].trim_start();
            let name_len = rest.bytes().take_while(|c| is_ident(*c)).count();
            if rest[name_len..].trim_start().starts_with('{') {
                inline.push(depth);
            }
            continue;
        }
        if word != "crate" && word != "super" {
            continue;
        }
        // The prefix the path starts from.
        let mut base: Vec<String>;
        if word == "crate" {
            base = Vec::new();
        } else {
            // `super` of a file is its parent module; inside an inline module, the file's.
            base = file_path.clone();
            if inline.is_empty() {
                base.pop();
            }
            let mut j = i;
            while code[j..].starts_with("::super") {
                base.pop();
                j += "::super".len();
            }
            i = j;
        }
        let (tails, end) = tails(&code, i);
        i = end;
        for tail in tails {
            let mut p = base.clone();
            p.extend(tail);
            out.push(p);
        }
    }
    out
}

/// The paths after `crate`/`super` at `i` (`::a::b`, `::a::{b, c::d}`), and where they end.
fn tails(code: &str, mut i: usize) -> (Vec<Vec<String>>, usize) {
    let b = code.as_bytes();
    let mut head = Vec::new();
    while code[i..].starts_with("::") {
        i += 2;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < b.len() && b[i] == b'{' {
            // A group: each member is a path of its own under `head`.
            let close = matching_brace(code, i);
            let mut out = Vec::new();
            for member in split_top(&code[i + 1..close]) {
                let member = member.trim();
                if member.is_empty() || member == "self" || member == "*" {
                    out.push(head.clone());
                    continue;
                }
                let (sub, _) = tails(&format!("::{member}"), 0);
                for s in sub {
                    let mut p = head.clone();
                    p.extend(s);
                    out.push(p);
                }
            }
            return (out, close + 1);
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if start == i {
            break;
        }
        head.push(code[start..i].to_string());
    }
    (vec![head], i)
}

fn matching_brace(code: &str, open: usize) -> usize {
    let mut depth = 0;
    for (k, c) in code[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return open + k;
                }
            }
            _ => {}
        }
    }
    code.len() - 1
}

fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (k, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..k]);
                start = k + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `text` with comments, strings and character literals blanked out (newlines kept).
fn code_only(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    while i < c.len() {
        if c[i] == '/' && c.get(i + 1) == Some(&'/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && c.get(i + 1) == Some(&'*') {
            let mut depth = 0;
            loop {
                if i >= c.len() {
                    break;
                }
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (i == 0 || !(c[i - 1].is_alphanumeric() || c[i - 1] == '_'))
            && matches!(c.get(i + 1), Some('#') | Some('"'))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            j += 1;
            while j < c.len() {
                if c[j] == '"' && (0..hashes).all(|h| c.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for ch in &c[i..j.min(c.len())] {
                blank(&mut out, *ch);
            }
            i = j;
        } else if c[i] == '"' {
            let mut j = i + 1;
            while j < c.len() && c[j] != '"' {
                if c[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            for ch in &c[i..(j + 1).min(c.len())] {
                blank(&mut out, *ch);
            }
            i = j + 1;
        } else if c[i] == '\'' {
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let end = if c.get(i + 1) == Some(&'\\') {
                (i + 2..c.len()).find(|&k| c[k] == '\'')
            } else if c.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(e) => {
                    for ch in &c[i..=e] {
                        blank(&mut out, *ch);
                    }
                    i = e + 1;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod checks {
    use super::*;

    fn src(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(m, t)| (m.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn a_made_up_circle_is_reported() {
        // event and private share the bottom layer: only the circle is wrong.
        let found = violations(&src(&[
            ("event", "use crate::private::secure_dir;"),
            ("private", "use crate::event::{Event, Severity};"),
        ]));
        assert_eq!(
            found,
            ["cycle: event -> private", "cycle: private -> event"]
        );
    }

    #[test]
    fn an_arrow_up_is_reported_and_one_down_is_not() {
        let found = violations(&src(&[
            ("store", "fn f() { crate::config::load(); }"),
            ("config", "use crate::store::Store;"),
            ("routing", "use crate::config::{self, Config};"),
        ]));
        assert_eq!(
            found,
            [
                "cycle: config -> store",
                "cycle: store -> config",
                "store -> config"
            ]
        );
    }

    #[test]
    fn super_comments_strings_and_submodule_circles() {
        let found = violations(&src(&[
            ("api", ""),
            ("api::access", "use super::console::page; // crate::agent\n"),
            ("api::console", "mod tests { use super::*; }\n"),
            (
                "api::console::live",
                "use super::super::access::check; const S: &str = \"crate::cli\";",
            ),
        ]));
        assert_eq!(
            found,
            [
                "cycle: api::access -> api::console",
                "cycle: api::console -> api::access"
            ]
        );
    }

    #[test]
    fn a_module_without_layer_is_reported() {
        let found = violations(&src(&[
            ("newthing", "use crate::event::Event;"),
            ("event", ""),
        ]));
        assert_eq!(found, ["no layer for newthing"]);
    }
}
