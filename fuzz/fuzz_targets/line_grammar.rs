//! Fuzz target `line_grammar`: arbitrary bytes as the lines of a protocol file, through
//! `parser::FileParser` as the watcher feeds it (split at `\n`, then `finish`).
//!
//! The parser runs on every line an instrument writes, so no input may make it panic,
//! and what it produces must be usable downstream: the alert store keys on the dedup
//! key, routing on the name, metrics on the counts.
//!
//! Input: one flag byte, then the file.
//! - bits 0–1: the encoding (`auto`, `utf-8`, `windows-1251`, `auto`);
//! - bit 2: a fixed, realistic set of user rules (the README's and the fixtures' kind);
//! - bit 3: a rule made from the input: its first lines are the pattern, the key
//!   template and the event (`ignore` silences), read through the config loader like
//!   an operator's rule — an input whose rule the loader refuses runs without it.
//!
//! Invariants, besides not panicking:
//! - every event has a non-empty name and a non-empty key;
//! - without rules, the key is `dedup_key(name, source, text)` (rules may set their own);
//! - the same lines through a new parser give the same events (the dedup key is stable);
//! - the counts add up: one per line fed, each in exactly one class;
//! - at most one event per line; each names a line that was fed;
//! - texts stay within the parser's clipping limits; nothing is pending after `finish`.

#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use protowatch::config::{Config, Encoding};
use protowatch::event::{Event, dedup_key};
use protowatch::parser::{Counts, FileParser, MAX_DETAILS_CHARS, MAX_MESSAGE_CHARS, Rules};
use serde_json::json;

/// Rules of the kinds operators write: key templates over captures, `message` and
/// `source` captures, an `ignore` rule, one overriding the built-in mapping.
const REALISTIC_RULES: &str = r#"{ "rules": [
  { "name": "vacuum", "pattern": "(?i)vacuum (?P<message>lost.*)", "event": "alarm_major",
    "severity": "major", "key": "vacuum" },
  { "name": "hv", "pattern": "HV trip on channel (?P<ch>\\d+)", "event": "hv_trip",
    "severity": "PROBLEM", "key": "hv:$ch" },
  { "name": "trip", "pattern": "(?P<message>\\w+ trip)\\b", "event": "trip", "severity": "minor" },
  { "name": "heartbeat", "pattern": "\\[heartbeat\\]", "event": "ignore" },
  { "name": "changer", "pattern": "^(?P<source>SAMPLE CHANGER): (?P<message>position \\d+ reached)$",
    "event": "sample_position", "severity": "info", "key": "${source}/pos" },
  { "name": "chopper", "pattern": "\\[chopper\\] phase lost", "event": "alarm_minor",
    "severity": "minor" },
  { "name": "датчик", "pattern": "(?i)датчик (?P<source>\\S+) (?P<message>.*)", "event": "sensor",
    "severity": "warning", "key": "$source$missing" }
] }"#;

static REALISTIC: LazyLock<Arc<Rules>> = LazyLock::new(|| {
    let config = Config::from_text(Path::new("fuzz.json"), REALISTIC_RULES)
        .unwrap_or_else(|e| panic!("the fixed rules must load: {e}"));
    Arc::new(Rules::new(&config.rules).unwrap_or_else(|e| panic!("{e}")))
});

/// Long patterns only make the regex compiler slow, not the parser interesting.
const MAX_PATTERN_BYTES: usize = 256;

/// Rules already made from inputs. Compiling a regex costs far more than parsing a few
/// lines, and mutations mostly keep an input's rule lines, so the cache keeps the
/// fuzzer on the parser. Cleared when full, to bound memory.
static MADE: LazyLock<Mutex<HashMap<Vec<u8>, Option<Arc<Rules>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const MADE_MAX: usize = 256;

fn cached_rule(pattern: &[u8], key: &[u8], event: &[u8]) -> Option<Arc<Rules>> {
    let id = [pattern, key, event].join(&b'\n');
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = made.get(&id) {
        return r.clone();
    }
    if made.len() >= MADE_MAX {
        made.clear();
    }
    let r = input_rule(pattern, key, event);
    made.insert(id, r.clone());
    r
}

/// The rule the input's first three lines describe, as the config loader reads it.
fn input_rule(pattern: &[u8], key: &[u8], event: &[u8]) -> Option<Arc<Rules>> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return None;
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut rule = json!({
        "name": "fuzz",
        "pattern": text(pattern),
        "event": if event.is_empty() { "fuzz_event".to_string() } else { text(event) },
        "severity": "major",
    });
    if !key.is_empty() {
        rule["key"] = json!(text(key));
    }
    let config = Config::from_text(
        Path::new("fuzz.json"),
        &json!({ "rules": [rule] }).to_string(),
    )
    .ok()?;
    Rules::new(&config.rules).ok().map(Arc::new)
}

/// The lines of `file` as the watcher cuts them: at `\n`, the last one even unterminated.
fn lines(file: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = file.split(|b| *b == b'\n').collect();
    if out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out
}

fn run(lines: &[&[u8]], encoding: Encoding, rules: &Arc<Rules>) -> (Vec<Event>, Counts) {
    let mut parser = FileParser::new(Path::new("protocol.log"), encoding, rules.clone());
    let mut events = Vec::new();
    for line in lines {
        parser.line(line, &mut events);
    }
    parser.finish(&mut events);
    assert!(
        !parser.is_pending(),
        "a traceback is still open after finish"
    );
    (events, parser.counts.clone())
}

/// What must be equal between two runs over the same lines: everything but the time,
/// which is "now" for a line without a timestamp.
fn comparable(e: &Event) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        &e.name, &e.key, e.severity, &e.source, &e.message, &e.details, &e.origin,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else {
        return;
    };
    let encoding = match flags & 3 {
        1 => Encoding::Utf8,
        2 => Encoding::Windows1251,
        _ => Encoding::Auto,
    };
    let mut lines = lines(file);
    let mut rules = if flags & 4 != 0 {
        REALISTIC.clone()
    } else {
        Arc::new(Rules::empty())
    };
    if flags & 8 != 0 && lines.len() >= 3 {
        let head: Vec<&[u8]> = lines.drain(..3).collect();
        if let Some(r) = cached_rule(head[0], head[1], head[2]) {
            rules = r;
        }
    }

    let (events, counts) = run(&lines, encoding, &rules);

    let fed = lines.len() as u64;
    assert_eq!(counts.lines, fed, "{counts:?}");
    let classes =
        counts.error + counts.warning + counts.info + counts.user + counts.debug + counts.other;
    assert_eq!(classes, counts.lines, "{counts:?}");
    assert!(
        events.len() as u64 <= fed,
        "{} events from {fed} lines",
        events.len()
    );

    // The clip marker's own length: " … [N more characters]", the header line of a
    // clipped traceback and its "[… N characters cut …]".
    let message_max = MAX_MESSAGE_CHARS + 40;
    let details_max = MAX_DETAILS_CHARS + 200 + 60;
    for e in &events {
        assert!(!e.name.is_empty(), "an event without a name: {e:?}");
        assert!(!e.key.is_empty(), "an event without a key: {e:?}");
        if rules.is_empty() {
            let text = e.message.text();
            assert_eq!(e.key, dedup_key(&e.name, e.source.as_deref(), &text));
        }
        let line = e.origin.as_ref().map_or(0, |o| o.line);
        assert!((1..=fed).contains(&line), "line {line} of {fed}: {e:?}");
        assert!(e.message.text().chars().count() <= message_max);
        if let Some(d) = &e.details {
            assert!(d.chars().count() <= details_max);
        }
    }

    let (again, counts_again) = run(&lines, encoding, &rules);
    assert_eq!(counts, counts_again);
    let a: Vec<_> = events.iter().map(comparable).collect();
    let b: Vec<_> = again.iter().map(comparable).collect();
    assert_eq!(a, b, "the same lines gave other events");
});
