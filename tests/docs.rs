//! The README and the book under `docs/` as a reader follows them: every relative link
//! points to a file that exists and every `#anchor` to a heading of its page, every
//! chapter is in `docs/src/SUMMARY.md`, and the README stays a short front door with the
//! two set-up commands. `mdbook build docs` (in CI) renders the same files; this check
//! needs no mdBook, so `cargo test` alone keeps the links right.
//!
//! Heading ids follow mdBook's rule (`id_from_content` in mdbook-html 0.5): the heading's
//! text, trimmed and lower-cased, letters, digits, `_` and `-` kept, whitespace made
//! `-`, everything else dropped; a repeated id gets `-1`, `-2`. GitHub's rule gives the
//! same ids for these headings, so the README's links work there and in the book.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The id mdBook gives a heading whose Markdown text is `text`.
fn anchor(text: &str) -> String {
    static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap());
    // What renders as markup is not text: `code`, *emphasis*, a link's target.
    let text = LINK.replace_all(text, "$1");
    let text: String = text.chars().filter(|c| !matches!(c, '`' | '*')).collect();
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c)
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut fenced = false;
    text.lines().filter(move |l| {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
            return false;
        }
        !fenced
    })
}

/// The ids of every heading in `text`, as mdBook makes them unique on a page.
fn headings(text: &str) -> HashSet<String> {
    static HEADING: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^#{1,6}\s+(.*?)\s*#*$").unwrap());
    let mut ids = HashSet::new();
    for line in prose(text) {
        if let Some(c) = HEADING.captures(line) {
            let id = anchor(&c[1]);
            let mut unique = id.clone();
            let mut n = 0;
            while !ids.insert(unique.clone()) {
                n += 1;
                unique = format!("{id}-{n}");
            }
        }
    }
    ids
}

/// `text` with mdBook's `{{#include path}}` replaced by the file it names (relative to
/// `dir`), as the rendered page holds it; a missing file is a broken link too.
fn expand(dir: &Path, text: &str, broken: &mut Vec<String>) -> String {
    static INCLUDE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\{\{#include\s+([^}\s]+)\s*\}\}").unwrap());
    INCLUDE
        .replace_all(text, |c: &regex::Captures| {
            let path = dir.join(&c[1]);
            std::fs::read_to_string(&path).unwrap_or_else(|e| {
                broken.push(format!("{{{{#include {}}}}}: {e}", &c[1]));
                String::new()
            })
        })
        .into_owned()
}

/// The targets of the Markdown links and images in `text`, outside code.
fn links(text: &str) -> Vec<String> {
    static CODE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`[^`]*`").unwrap());
    static LINK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#"\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)"#).unwrap());
    prose(text)
        .flat_map(|line| {
            let line = CODE.replace_all(line, "");
            LINK.captures_iter(&line)
                .map(|c| c[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every broken link of the Markdown file `file`, each as a line naming it.
fn broken_links(file: &Path) -> Vec<String> {
    let mut broken = Vec::new();
    let dir = file.parent().unwrap_or(Path::new("."));
    let text = match std::fs::read_to_string(file) {
        Ok(t) => expand(dir, &t, &mut broken),
        Err(e) => return vec![format!("{}: {e}", file.display())],
    };
    for target in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((p, f)) => (p, Some(f)),
            None => (target.as_str(), None),
        };
        let page = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !page.exists() {
            broken.push(format!("{target}: no file {}", page.display()));
            continue;
        }
        let Some(fragment) = fragment else { continue };
        let page_text = if page == file {
            text.clone()
        } else if page.extension().is_some_and(|e| e == "md") {
            let page_dir = page.parent().unwrap_or(Path::new("."));
            let raw = std::fs::read_to_string(&page).unwrap_or_default();
            expand(page_dir, &raw, &mut Vec::new())
        } else {
            broken.push(format!(
                "{target}: an anchor into a file that is not Markdown"
            ));
            continue;
        };
        if !headings(&page_text).contains(fragment) {
            broken.push(format!(
                "{target}: no heading with the id {fragment:?} in {}",
                page.display()
            ));
        }
    }
    broken
}

fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_link_of_the_readme_and_the_book_leads_somewhere() {
    let mut files = vec![root().join("README.md")];
    files.extend(chapters());
    assert!(files.len() > 10, "the book has its chapters: {files:?}");
    let broken: Vec<String> = files
        .iter()
        .flat_map(|f| {
            broken_links(f)
                .into_iter()
                .map(move |b| format!("{}: {b}", f.strip_prefix(root()).unwrap_or(f).display()))
        })
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_chapter_is_in_the_summary() {
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    let listed: HashSet<String> = links(&summary).into_iter().collect();
    for chapter in chapters() {
        let name = chapter.file_name().unwrap().to_string_lossy().into_owned();
        if name == "SUMMARY.md" {
            continue;
        }
        assert!(
            listed.contains(&name),
            "docs/src/{name} is not in docs/src/SUMMARY.md: mdBook would not render it"
        );
    }
}

#[test]
fn the_readme_is_a_short_front_door_with_the_two_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; the rest belongs in the book"
    );
    for command in [
        "cargo run -- --config config.example.json run",
        "bash .ci/run",
        "cargo install --locked --path .",
        "mdbook build docs",
    ] {
        assert!(readme.contains(command), "README.md lacks {command:?}");
    }
}

#[test]
fn the_books_build_output_stays_out_of_the_source_tree() {
    let book = std::fs::read_to_string(root().join("docs/book.toml")).unwrap();
    assert!(
        book.contains(r#"build-dir = "../target/book""#),
        "docs/book.toml builds into target/book: {book}"
    );
}

#[test]
fn the_checker_finds_a_missing_file_a_missing_heading_and_a_missing_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("other.md"),
        "# Other page\n\n## Bursts, pace and the outbox (`bench/burst.sh`)\n\n## Twice\n\n## Twice\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("page.md"),
        "# Page\n\n## Not 4,000 pings: one alert\n\n\
         [fine](other.md) [fine](other.md#bursts-pace-and-the-outbox-benchburstsh)\n\
         [fine](#not-4000-pings-one-alert) [fine](other.md#twice-1) [web](https://example.org/x#y)\n\
         `[in code](gone.md)`\n\n```md\n[in a block](gone.md)\n```\n\n\
         [no file](gone.md) [no heading](other.md#nowhere) [no heading here](#twice)\n\
         ![no image](images/gone.png)\n\n{{#include missing.md}}\n",
    )
    .unwrap();
    let broken = broken_links(&dir.path().join("page.md"));
    let found: Vec<&str> = broken
        .iter()
        .map(|b| b.split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        found,
        [
            "{{#include missing.md}}",
            "gone.md",
            "other.md#nowhere",
            "#twice",
            "images/gone.png"
        ],
        "{broken:#?}"
    );
}

#[test]
fn anchors_follow_mdbooks_rule() {
    assert_eq!(
        anchor("Installing on Linux: the Debian package and systemd"),
        "installing-on-linux-the-debian-package-and-systemd"
    );
    assert_eq!(anchor("OnTakt's alerts"), "ontakts-alerts");
    assert_eq!(
        anchor("Replay (`protowatch replay`)"),
        "replay-protowatch-replay"
    );
    assert_eq!(
        anchor("Not 4,000 pings for one failing detector"),
        "not-4000-pings-for-one-failing-detector"
    );
    assert_eq!(anchor("Set-up: two commands"), "set-up-two-commands");
    // As mdBook 0.5.4 renders docs/ARCHITECTURE.md's title: each space a hyphen.
    assert_eq!(
        anchor("protowatch — architecture"),
        "protowatch--architecture"
    );
}
