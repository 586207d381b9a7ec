//! Fuzz target `config_loader`: arbitrary text as `config.json`, through
//! `Config::from_text`, and for texts that load, the route edits of
//! `protowatch routes enable|disable|default-scope` on a real file.
//!
//! Operators edit the config by hand, so the loader sees every kind of mistake and must
//! answer each with an error, never a panic. The editor rewrites that hand-made text in
//! place; a bug there would cost an operator the file, or silently change where alarms go.
//!
//! Input: the text (inputs that are not UTF-8 are skipped: the loader reads files as
//! UTF-8 and refuses others before parsing). A text naming a `password_file` or
//! `token_file` with a path separator is skipped: the loader would read that file, and a
//! fuzzer must not read `/dev/zero`. Bare names are kept; they resolve in an empty folder.
//!
//! Invariants, besides not panicking:
//! - an error has a message;
//! - a text that loads is read by the editor's layout scanner too, which gives it back
//!   byte for byte;
//! - an edit of a file that loads, naming a configured service and scope, succeeds
//!   (exit 0) or is refused as bad usage (exit 2, nothing written) — it never fails (1);
//! - the file always still loads; after `enable` the event goes where it went and to
//!   that destination, after `disable` where it went but there, and every other event
//!   goes where it went before;
//! - after `default-scope` the service's default scope is the one named.

#![no_main]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::LazyLock;

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use protowatch::cli::{Cli, dispatch};
use protowatch::config::edit::Document;
use protowatch::config::{Config, Destination};
use protowatch::routing::{IMPLICIT_EVENTS, QUIET_EVENTS, Router};
use serde_json::Value;

/// A folder of this process for the config file the edits work on.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("protowatch-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
});

/// Whether loading `v` would read a file outside the config's folder.
fn reads_elsewhere(v: &Value) -> bool {
    match v {
        Value::Object(map) => map.iter().any(|(k, v)| {
            let named = matches!(k.as_str(), "password_file" | "token_file")
                && v.as_str().is_some_and(|p| p.contains(['/', '\\']));
            named || reads_elsewhere(v)
        }),
        Value::Array(items) => items.iter().any(reads_elsewhere),
        _ => false,
    }
}

/// A small, stable hash of the input to choose the edit with.
fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Enable,
    Disable,
    DefaultScope,
}

/// Runs `protowatch --config PATH routes …` in this process.
fn routes(path: &Path, op: Op, event: &str, dest: &Destination, give_scope: bool) -> ExitCode {
    let config = path.to_string_lossy().into_owned();
    let service = dest.service.as_str().to_string();
    let mut args = vec!["protowatch".to_string(), "--config".into(), config];
    args.push("routes".into());
    match op {
        Op::Enable | Op::Disable => {
            args.push(
                if op == Op::Enable {
                    "enable"
                } else {
                    "disable"
                }
                .into(),
            );
            // `--` so that an event name starting with `-` is still the event.
            args.extend(["--service".into(), service]);
            if give_scope {
                args.extend(["--scope".into(), dest.scope.clone()]);
            }
            args.extend(["--".into(), event.to_string()]);
        }
        Op::DefaultScope => {
            args.extend(["default-scope".into(), service, "--".into()]);
            args.push(dest.scope.clone());
        }
    }
    match Cli::try_parse_from(&args) {
        Ok(cli) => dispatch(cli),
        // An argument clap refuses: nothing to check in the editor.
        Err(_) => ExitCode::from(2),
    }
}

/// Every event whose routing the checks compare.
fn events(before: &Config, after: &Config) -> Vec<String> {
    let mut all: Vec<String> = IMPLICIT_EVENTS
        .iter()
        .chain(QUIET_EVENTS.iter())
        .map(|e| e.to_string())
        .collect();
    for c in [before, after] {
        for e in c.routes.iter().flat_map(|r| r.keys()) {
            if !all.contains(e) {
                all.push(e.clone());
            }
        }
    }
    all
}

/// One edit of the file at `path`, and its checks.
fn edit(path: &Path, op: Op, event: &str, dest: &Destination, give_scope: bool) {
    let text_before = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let before = Config::from_text(path, &text_before)
        .unwrap_or_else(|e| panic!("the file to edit must load: {e}"));
    // Without `--scope` the edit is about the service's default scope, if it has one.
    let default = before.default_scope(dest.service).map(|scope| Destination {
        service: dest.service,
        scope: scope.to_string(),
    });
    let code = routes(path, op, event, dest, give_scope);
    let text_after = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{e}"));
    let after = Config::from_text(path, &text_after).unwrap_or_else(|e| {
        panic!("{op:?} {event:?} {dest} left a file that does not load: {e}\n{text_after}")
    });
    assert_ne!(
        code,
        ExitCode::FAILURE,
        "{op:?} {event:?} {dest} (scope given: {give_scope}) failed on a file that loads:\n{text_before}"
    );
    if code != ExitCode::SUCCESS {
        assert_eq!(text_before, text_after, "refused, yet the file changed");
        return;
    }
    let dest = match (op, give_scope, &default) {
        (Op::DefaultScope, _, _) | (_, true, _) => dest,
        (_, false, Some(d)) => d,
        (_, false, None) => {
            panic!("{op:?} {event:?} without a scope and a default scope succeeded")
        }
    };
    let (old, new) = (Router::new(&before), Router::new(&after));
    // The event's destinations, as a set: before with `dest` added, or taken away.
    let mut wanted: BTreeSet<&Destination> = old.route(event).iter().collect();
    match op {
        Op::Enable => wanted.insert(dest),
        Op::Disable => wanted.remove(dest),
        Op::DefaultScope => {
            assert_eq!(after.default_scope(dest.service), Some(dest.scope.as_str()));
            return;
        }
    };
    let got: BTreeSet<&Destination> = new.route(event).iter().collect();
    assert_eq!(
        got, wanted,
        "{op:?} {event:?} {dest}: it goes to {got:?}, not {wanted:?}:\n{text_before}\n---\n{text_after}"
    );
    // A route edit changes one event's routing only. (Writing the implicit routing out
    // drops custom events, as documented; only the built-in and listed ones compare.)
    for e in events(&before, &after) {
        if e != event {
            assert_eq!(
                old.route(&e),
                new.route(&e),
                "{op:?} {event:?} {dest} changed the routing of {e:?}:\n{text_before}\n---\n{text_after}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let json = text.strip_prefix('\u{feff}').unwrap_or(text);
    if serde_json::from_str::<Value>(json).is_ok_and(|v| reads_elsewhere(&v)) {
        return;
    }
    let path = DIR.join("config.json");
    let config = match Config::from_text(&path, text) {
        Ok(c) => c,
        Err(e) => {
            assert!(!e.to_string().is_empty(), "an error without a message");
            return;
        }
    };
    let doc = Document::parse(text)
        .unwrap_or_else(|e| panic!("the loader read it, the editor cannot: {e}"));
    assert_eq!(doc.text(), text, "the editor's scanner changed the text");

    let dests: Vec<Destination> = config.destinations();
    if dests.is_empty() {
        return;
    }
    // The event: a built-in one, one the routes name, a custom one, or the instrument's
    // name (any text at all, as an operator might type it).
    let mut names: Vec<String> = ["alarm_major", "message", "new_scan", "sample_done"]
        .map(String::from)
        .to_vec();
    names.extend(config.routes.iter().flat_map(|r| r.keys().cloned()));
    names.push(config.instrument.clone());
    let h = hash(data);
    let event = &names[(h % names.len() as u64) as usize];
    let dest = &dests[((h >> 8) % dests.len() as u64) as usize];
    let give_scope = (h >> 16) & 1 == 0;
    let first = [Op::Enable, Op::Disable, Op::DefaultScope][((h >> 24) % 3) as usize];

    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    edit(&path, first, event, dest, give_scope);
    // And back: enable after disable, disable after enable, on the edited file.
    let second = match first {
        Op::Enable => Op::Disable,
        Op::Disable | Op::DefaultScope => Op::Enable,
    };
    edit(&path, second, event, dest, give_scope);
});
