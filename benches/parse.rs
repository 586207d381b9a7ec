//! The parser on a realistic protocol, with the default grammar alone and with 100 user
//! rules.
//!
//! The protocol is held in memory and split into lines here, so the figure is the
//! parser's alone (decode, grammar, phrases, rules, tracebacks), not the reading. The
//! 100 rules are what a site collects over the years: a few that match common lines
//! (one that names a channel in the key, one that silences a noisy warning), and many
//! about other devices and failures that match almost nothing — those must cost little.
//!
//! Run: `cargo bench --bench parse`.

use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protowatch::config::{Encoding, RuleConfig};
use protowatch::event::Severity;
use protowatch::parser::{FileParser, Rules};

#[path = "support/protocol.rs"]
mod support;

fn rule(name: &str, pattern: &str, event: Option<&str>, key: Option<&str>) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        pattern: regex::Regex::new(pattern).expect("benchmark rules are valid"),
        event: event.map(str::to_string),
        severity: Severity::Major,
        key: key.map(str::to_string),
    }
}

/// 100 rules: 3 that match lines of the generated protocol, 97 that do not.
pub fn hundred_rules() -> Vec<RuleConfig> {
    let mut rules = vec![
        rule(
            "channel lost",
            r"\[detector\] channel (?P<ch>\d+) not responding",
            Some("detector_channel"),
            Some("channel-$ch"),
        ),
        rule(
            "cryo noise",
            r"\[cryo\] temperature \d+ K above setpoint",
            None,
            None,
        ),
        rule(
            "vacuum",
            r"(?i)\[насос\] давление (?P<message>.+)",
            Some("vacuum"),
            None,
        ),
    ];
    let devices = [
        "chopper",
        "shutter",
        "pump",
        "valve",
        "magnet",
        "furnace",
        "goniometer",
        "slit",
        "monitor",
        "hv",
    ];
    let failures = [
        "failed",
        "lost",
        "timeout",
        "overheat",
        "stuck",
        "tripped",
        "no reply",
        "out of range",
        "crc error",
        "limit switch",
    ];
    for i in 0..97 {
        let device = devices[i % devices.len()];
        let failure = failures[(i / devices.len()) % failures.len()];
        let pattern = match i % 4 {
            0 => format!(r"\[(?P<source>{device}\d*)\] (?P<message>.*{failure}.*)"),
            1 => format!(r"(?i)(?P<source>{device}) {failure} (?P<message>.+)"),
            2 => format!(r"{device} \d+: (?P<message>{failure} at .+)"),
            _ => format!(r"(?P<message>{failure}) on {device} (?P<n>\d+)"),
        };
        rules.push(rule(
            &format!("rule {i}"),
            &pattern,
            Some("site_alarm"),
            None,
        ));
    }
    rules
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|b| *b == b'\n').collect()
}

fn parse_all(lines: &[&[u8]], rules: &Arc<Rules>) -> usize {
    let mut parser = FileParser::new(Path::new("p.log"), Encoding::Auto, rules.clone());
    let mut events = Vec::new();
    let mut made = 0;
    for l in lines {
        parser.line(l, &mut events);
        made += events.len();
        events.clear();
    }
    parser.finish(&mut events);
    made + events.len()
}

fn parser(c: &mut Criterion) {
    let data = support::protocol(16 << 20);
    let lines = lines(&data);
    let none = Arc::new(Rules::empty());
    let hundred = Arc::new(Rules::new(&hundred_rules()).expect("rules compile"));
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("default_grammar_16MiB", |b| {
        b.iter(|| parse_all(&lines, &none))
    });
    group.bench_function("100_rules_16MiB", |b| {
        b.iter(|| parse_all(&lines, &hundred))
    });
    group.finish();
}

criterion_group!(benches, parser);
criterion_main!(benches);
