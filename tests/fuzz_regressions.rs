//! Inputs that the fuzz targets (`fuzz/`, see its README) found to break an invariant,
//! kept as plain tests so that `cargo test` holds each fix. Every test names the target
//! that found it and what went wrong.

use std::path::Path;
use std::sync::Arc;

use protowatch::config::edit::Document;
use protowatch::config::{Config, Encoding, RuleConfig};
use protowatch::event::Repeat;
use protowatch::event::{Event, Message, Severity, dedup_key};
use protowatch::messengers::render::{Item, Notification};
use protowatch::messengers::telegram::render::telegram_parts;
use protowatch::parser::{FileParser, Rules};
use protowatch::routing::Router;
use regex::Regex;

/// The text Telegram shows for a part: outside the tags, entities decoded.
fn shown(part: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in part.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `telegram_render`: an event with an empty text and a repeat summary, split at 48
/// units. The line break before the summary did not fit the first part and the summary
/// needed a part of its own, so the line break was sent alone — a message Telegram
/// refuses as empty, and with it the alarm.
#[test]
fn telegram_never_sends_a_blank_part() {
    let event = Event::message("alarm_major", Severity::Warning, Message::plain(""));
    let n = Notification {
        instrument: "",
        items: vec![Item {
            event: &event,
            repeat: Some(Repeat {
                count: 2_000_006,
                since_ms: 2 * 86_400_000,
            }),
        }],
        more: Vec::new(),
    };
    let parts = telegram_parts(&n, 48);
    assert!(!parts.is_empty());
    for p in &parts {
        assert!(
            !shown(p).trim().is_empty(),
            "a blank part {p:?} in {parts:?}"
        );
    }
    let all: String = parts.iter().map(|p| shown(p)).collect();
    assert!(all.contains("repeated 2,000,006 times since"), "{parts:?}");
}

/// `line_grammar` (an input made for its "every event has a key" check): a rule whose key
/// template names a capture that is not there (`$x`) expanded to an empty key, so every
/// line it matched became one alert without a key. The line keeps its default key.
#[test]
fn a_rule_key_that_expands_to_nothing_keeps_the_default_key() {
    let rule = RuleConfig {
        name: "r".into(),
        pattern: Regex::new("ERROR").unwrap(),
        event: Some("e".into()),
        severity: Severity::Major,
        key: Some("$x".into()),
    };
    let rules = Arc::new(Rules::new(&[rule]).unwrap());
    let mut parser = FileParser::new(Path::new("p.log"), Encoding::Utf8, rules);
    let mut events = Vec::new();
    parser.line(b"ERROR boom", &mut events);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].key, dedup_key("e", None, "boom"));
}

/// `config_loader` (an input made for its "only the named destination changes" check):
/// a key written twice in `routes`. The loader reads the last one; disabling the event's
/// last destination removed that one, and the earlier duplicate — which no routing had
/// used — came alive: the event went somewhere the operator had never seen it go.
#[test]
fn removing_a_key_written_twice_removes_both() {
    let text = r#"{
  "telegram": {"bot-id": "123456:ABCdef", "scopes": {"default": "@chan_a", "ops": "@chan_b"}},
  "routes": {
    "alarm_major": [{"service": "telegram", "scope": "default"}],
    "alarm_major": [{"service": "telegram", "scope": "ops"}],
    "message": [{"service": "telegram", "scope": "ops"}]
  }
}
"#;
    let mut doc = Document::parse(text).unwrap();
    doc.remove(&["routes", "alarm_major"]).unwrap();
    assert_eq!(
        doc.text(),
        r#"{
  "telegram": {"bot-id": "123456:ABCdef", "scopes": {"default": "@chan_a", "ops": "@chan_b"}},
  "routes": {
    "message": [{"service": "telegram", "scope": "ops"}]
  }
}
"#
    );
    let config = Config::from_text(Path::new("config.json"), &doc.text()).unwrap();
    assert!(Router::new(&config).route("alarm_major").is_empty());
}
