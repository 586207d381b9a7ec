//! `protowatch replay` as an operator uses it: the real binary over the protocol samples
//! in `fixtures/` (the counts per event are those of the tables in
//! `tests/parser_fixtures.rs`), the JSON document, rules and watch entries from a config
//! changing the result, and the failures: a broken rule, a missing file, binary garbage.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};
use support::{protowatch, write_config};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Runs `protowatch [--config CONFIG] replay ARGS…` in `dir` (where no `config.json`
/// exists unless a test wrote one).
fn replay(dir: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = protowatch();
    cmd.current_dir(dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("replay")
        .args(args)
        .output()
        .expect("run protowatch replay")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The JSON document of a replay that must have succeeded.
fn replay_json(dir: &Path, config: Option<&Path>, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = replay(dir, config, &all);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("replay --json prints one JSON document")
}

/// Event name → count, from a replay's JSON.
fn counts(doc: &Value) -> BTreeMap<String, u64> {
    doc["events"]
        .as_object()
        .expect("events is an object")
        .iter()
        .map(|(name, e)| (name.clone(), e["count"].as_u64().expect("a count")))
        .collect()
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Each fixture with the events its table in `tests/parser_fixtures.rs` lists, counted
/// by name (read as `auto`, no rules).
const FIXTURE_EVENTS: &[(&str, &[(&str, u64)])] = &[
    (
        "timestamps.log",
        &[
            ("alarm_major", 12),
            ("alarm_minor", 2),
            ("alarm_warning", 1),
        ],
    ),
    (
        "types_levels.log",
        &[
            ("alarm_major", 14),
            ("alarm_minor", 7),
            ("alarm_warning", 8),
        ],
    ),
    (
        "separators_sources.log",
        &[("alarm_major", 9), ("alarm_minor", 8), ("alarm_warning", 1)],
    ),
    (
        "scan_phrases.log",
        &[
            ("alarm_major", 1),
            ("new_scan", 3),
            ("scan_completed", 4),
            ("scan_interlock", 6),
        ],
    ),
    ("traceback_simple.log", &[("alarm_major", 2)]),
    ("traceback_long.log", &[("alarm_major", 2)]),
    ("traceback_prefixed.log", &[("alarm_major", 4)]),
    (
        "traceback_cut.log",
        // The ERROR line and the traceback after it are one event.
        &[("alarm_major", 2), ("alarm_minor", 1)],
    ),
    (
        "traceback_after_error.log",
        &[("alarm_major", 2), ("alarm_minor", 2)],
    ),
    (
        "crlf_bom.log",
        &[
            ("alarm_major", 2),
            ("alarm_minor", 2),
            ("alarm_warning", 1),
            ("new_scan", 1),
        ],
    ),
    (
        "cp1251.log",
        &[
            ("alarm_major", 1),
            ("alarm_minor", 1),
            ("alarm_warning", 2),
            ("new_scan", 1),
            ("scan_completed", 1),
        ],
    ),
    (
        "mixed_encoding.log",
        &[("alarm_major", 1), ("alarm_minor", 1), ("alarm_warning", 1)],
    ),
    ("not_protocol.log", &[]),
    (
        "rules.log",
        &[("alarm_major", 4), ("alarm_minor", 1), ("alarm_warning", 1)],
    ),
];

#[test]
fn each_fixture_makes_the_events_of_its_table() {
    let dir = tempfile::tempdir().unwrap();
    for (name, want) in FIXTURE_EVENTS {
        let path = fixture(name);
        let doc = replay_json(dir.path(), None, &[path.to_str().unwrap()]);
        assert_eq!(counts(&doc), map(want), "{name}");
        let total: u64 = want.iter().map(|(_, n)| n).sum();
        assert_eq!(doc["files"][0]["events"], json!(total), "{name}");
    }
}

#[test]
fn all_fixtures_at_once_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = FIXTURE_EVENTS
        .iter()
        .map(|(name, _)| fixture(name).to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let doc = replay_json(dir.path(), None, &args);

    let mut want = BTreeMap::new();
    for (_, events) in FIXTURE_EVENTS {
        for (name, n) in *events {
            *want.entry(name.to_string()).or_insert(0) += n;
        }
    }
    assert_eq!(counts(&doc), want);

    // The files in the order given, each with its bytes; the totals are their sums.
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), FIXTURE_EVENTS.len());
    let mut bytes = 0;
    for (f, path) in files.iter().zip(&paths) {
        assert_eq!(f["path"], json!(path));
        assert_eq!(f["encoding"], "auto");
        assert_eq!(
            f["bytes"],
            json!(std::fs::metadata(path).unwrap().len()),
            "{path}"
        );
        bytes += f["bytes"].as_u64().unwrap();
    }
    assert_eq!(doc["bytes"], json!(bytes));
    // Line counts by TYPE, as tests/parser_fixtures.rs counts them.
    let types_levels = &files[1]["lines"];
    assert_eq!(
        types_levels,
        &json!({"total": 39, "error": 24, "warning": 8, "info": 3, "user": 3, "debug": 1, "other": 0})
    );
    assert_eq!(files[12]["lines"]["total"], 27, "not_protocol.log");
    assert_eq!(files[12]["lines"]["other"], 27, "not_protocol.log");
}

#[test]
fn json_lists_every_key_with_an_example_and_where_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    // A config with mail and Telegram and no routes: the implicit routing.
    let config = write_config(
        dir.path(),
        &json!({
            "mail": {"server": "127.0.0.1", "recipients": ["op@example.org"]},
            "telegram": {"bot-id": "123:abc", "channel-id": "-100123"},
        }),
    );
    let log = dir.path().join("p.log");
    std::fs::write(
        &log,
        "2026-11-20 14:03:12 ERROR [detector] channel 7 lost\n\
         2026-11-20 14:03:13 ERROR [detector] channel 12 lost\n\
         2026-11-20 14:03:14 ERROR [detector] channel 12 lost\n\
         2026-11-20 14:03:15 ERROR [hv] trip\n\
         2026-11-20 14:03:16 INFO measurement started\n\
         2026-11-20 14:03:17 INFO all fine\n",
    )
    .unwrap();
    let doc = replay_json(dir.path(), Some(&config), &[log.to_str().unwrap()]);
    assert_eq!(doc["config"], json!(config));
    assert_eq!(doc["lines"]["total"], 6);
    assert_eq!(doc["lines"]["error"], 4);
    assert_eq!(doc["lines"]["info"], 2);

    let major = &doc["events"]["alarm_major"];
    assert_eq!(major["count"], 4);
    assert_eq!(major["severities"], json!({"major": 4}));
    assert_eq!(major["routes"], json!(["mail:default", "telegram:default"]));
    // Keys, the most frequent first; digits are folded, so channels 7 and 12 are one key.
    assert_eq!(
        major["keys"],
        json!([
            {
                "key": "alarm_major|detector|channel # lost",
                "count": 3,
                "severity": "major",
                "source": "detector",
                "example": "channel 7 lost",
                "file": log,
                "line": 1,
            },
            {
                "key": "alarm_major|hv|trip",
                "count": 1,
                "severity": "major",
                "source": "hv",
                "example": "trip",
                "file": log,
                "line": 4,
            },
        ])
    );
    // new_scan is counted, but the implicit routing does not send it.
    let scan = &doc["events"]["new_scan"];
    assert_eq!(scan["count"], 1);
    assert_eq!(scan["routes"], json!([]));
    assert!(scan["not_sent"].as_str().unwrap().contains("routine"));
}

#[test]
fn text_output_shows_counts_keys_and_destinations() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": "123:abc", "scopes": {"ops": "@sonix_ops"}},
            "routes": {"alarm_minor": [{"service": "telegram", "scope": "ops"}]},
        }),
    );
    let out = replay(
        dir.path(),
        Some(&config),
        &[fixture("traceback_cut.log").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("alarm_minor: 1 event, 1 key (minor 1) → telegram:ops"),
        "{text}"
    );
    assert!(
        text.contains("alarm_major: 2 events, 2 keys (major 2) → nowhere (not in routes)"),
        "{text}"
    );
    assert!(
        text.contains("\"arm failed after the script died\""),
        "{text}"
    );
    assert!(text.contains("11 lines, 371 bytes, 3 events"), "{text}");
}

#[test]
fn a_rule_in_the_config_changes_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let rules_log = fixture("rules.log");
    let args = [rules_log.to_str().unwrap()];
    let before = replay_json(dir.path(), None, &args);
    assert_eq!(before["events"]["alarm_major"]["count"], 4);

    let config = write_config(
        dir.path(),
        &json!({
            "rules": [
                {"name": "hv", "pattern": r"HV trip on channel (?P<ch>\d+)",
                 "event": "hv_trip", "severity": "major", "key": "hv:$ch"},
                {"name": "heartbeat", "pattern": r"\[heartbeat\]", "event": "ignore"},
                {"name": "unused", "pattern": "never matches anything", "event": "x", "severity": "info"},
            ],
        }),
    );
    let after = replay_json(dir.path(), Some(&config), &args);
    // The two HV lines are the rule's event now, one key per channel; the heartbeat line
    // is silenced; the chopper line is still the grammar's.
    assert_eq!(
        counts(&after),
        map(&[
            ("alarm_major", 1),
            ("alarm_minor", 1),
            ("alarm_warning", 1),
            ("hv_trip", 2)
        ])
    );
    let keys: Vec<&str> = after["events"]["hv_trip"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["hv:12", "hv:7"]);
    // Each rule with the lines it matched: an ignore rule shows what it silenced.
    assert_eq!(
        after["rules"],
        json!([
            {"name": "hv", "event": "hv_trip", "lines": 2},
            {"name": "heartbeat", "event": "ignore", "lines": 1},
            {"name": "unused", "event": "x", "lines": 0},
        ])
    );
    // Without services, nothing would be sent, and the report says why.
    assert_eq!(
        after["events"]["hv_trip"]["not_sent"],
        "no service configured"
    );
}

#[test]
fn a_broken_rule_is_a_config_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &json!({
            "rules": [
                {"name": "ok", "pattern": "x", "event": "e", "severity": "info"},
                {"name": "vacuum lost", "pattern": "(?P<message>vacuum (lost", "event": "e", "severity": "major"},
                {"name": "typo", "pattern": "y", "event": "e", "severity": "fatal"},
            ],
        }),
    );
    let out = replay(
        dir.path(),
        Some(&config),
        &[fixture("rules.log").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "no report for a broken config");
    let err = stderr(&out);
    assert!(
        err.contains("rules[1].pattern: invalid regex in rule \"vacuum lost\""),
        "{err}"
    );
    assert!(
        err.contains("rules[2].severity: unknown severity \"fatal\" in rule \"typo\""),
        "{err}"
    );
}

#[test]
fn a_missing_file_is_named_and_the_others_still_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no such protocol.log");
    let good = fixture("traceback_simple.log");
    let out = replay(
        dir.path(),
        None,
        &["--json", missing.to_str().unwrap(), good.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}: cannot open", missing.display())),
        "{err}"
    );
    assert!(err.contains("1 of 2 files could not be replayed"), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the report is still printed");
    assert_eq!(counts(&doc), map(&[("alarm_major", 2)]));
    assert_eq!(doc["files"][0]["path"], json!(missing));
    assert!(
        doc["files"][0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot open")
    );
    assert_eq!(doc["files"][1]["events"], 2);
}

#[test]
fn without_a_config_file_the_grammar_alone_is_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let log = fixture("scan_phrases.log");
    let out = replay(dir.path(), None, &[log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("no config file"),
        "a note says so: {}",
        stderr(&out)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("config: none\n"), "{text}");
    assert!(text.contains("→ nowhere (no config)"), "{text}");

    // A config that is named but missing is an error, not a silent fallback.
    let named = dir.path().join("typo.json");
    let out = replay(dir.path(), Some(&named), &[log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("typo.json"), "{}", stderr(&out));
}

#[test]
fn the_watch_entry_of_a_file_and_encoding_override() {
    let dir = tempfile::tempdir().unwrap();
    let protocol = dir.path().join("protocol");
    std::fs::create_dir(&protocol).unwrap();
    let log = protocol.join("cp1251.log");
    std::fs::copy(fixture("cp1251.log"), &log).unwrap();
    // Read as UTF-8 (the watch entry says so) the Russian TYPE words are lost.
    let config = write_config(
        dir.path(),
        &json!({"watch": [
            {"path": "elsewhere/*.log", "encoding": "windows-1251"},
            {"path": "protocol/*.log", "encoding": "utf-8", "max_line_bytes": 4096},
        ]}),
    );
    // Given as a relative path from the config's folder: still the second entry's file.
    let doc = replay_json(dir.path(), Some(&config), &["protocol/cp1251.log"]);
    assert_eq!(doc["files"][0]["watch"], 1);
    assert_eq!(doc["files"][0]["encoding"], "utf-8");
    assert_eq!(doc["files"][0]["max_line_bytes"], 4096);
    assert_eq!(counts(&doc), map(&[]));

    let doc = replay_json(
        dir.path(),
        Some(&config),
        &["--encoding", "windows-1251", "protocol/cp1251.log"],
    );
    assert_eq!(doc["files"][0]["encoding"], "windows-1251");
    assert_eq!(doc["events"]["alarm_major"]["count"], 1);
    assert_eq!(
        doc["events"]["alarm_major"]["keys"][0]["example"],
        "нет ответа от блока 3"
    );

    let out = replay(dir.path(), Some(&config), &["--encoding", "latin1", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn binary_garbage_and_huge_lines_are_read_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    // Pseudo-random bytes (xorshift), some NULs and CRs, a 3 MB stretch without a
    // newline (cut at max_line_bytes), then one protocol line.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes: Vec<u8> = (0..2_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    bytes.extend(std::iter::repeat_n(b'A', 3 << 20));
    bytes.extend_from_slice(b"\nERROR [det] after the garbage\n");
    std::fs::write(&garbage, &bytes).unwrap();

    let doc = replay_json(dir.path(), None, &[garbage.to_str().unwrap()]);
    assert_eq!(doc["bytes"], json!(bytes.len()));
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(doc["lines"]["total"], json!(newlines));
    let major = &doc["events"]["alarm_major"]["keys"];
    assert!(
        major
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["example"] == "after the garbage"),
        "{major}"
    );
}

/// The example config's rule keeps what was lost in the alert's text: "vacuum lost in
/// sample chamber" is the message, not "lost in sample chamber".
#[test]
fn the_example_rule_keeps_the_whole_phrase() {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.json");
    let log = dir.path().join("p.log");
    std::fs::write(
        &log,
        "2026-11-20 14:03:12 INFO Vacuum lost in sample chamber\n",
    )
    .unwrap();
    let doc = replay_json(dir.path(), Some(&example), &[log.to_str().unwrap()]);
    let keys = &doc["events"]["alarm_major"]["keys"];
    assert_eq!(
        keys[0]["example"], "Vacuum lost in sample chamber",
        "{doc:#}"
    );
    assert_eq!(keys[0]["key"], "vacuum", "{doc:#}");
}
