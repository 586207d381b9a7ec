//! Counters since start, by label, for `GET /metrics`: lines read per file, events by
//! name and severity, deliveries by destination and outcome, and the outbox's totals.
//! The one registry of counters: the parts that count call in here instead of keeping
//! statics of their own, so that each family is declared once on the page.
//!
//! Plain maps behind one mutex: they change per batch and per message, not per byte, so
//! contention is nil, and a map keeps label sets open (any file, any custom event).

use std::collections::BTreeMap;
use std::sync::Mutex;

type Labels = Vec<(&'static str, String)>;

static COUNTERS: Mutex<BTreeMap<(&'static str, Labels), u64>> = Mutex::new(BTreeMap::new());

/// The totals without labels, with their help: printed from the start, at 0, so that a
/// scraper sees each series before its first change.
const TOTALS: [(&str, &str); 3] = [
    (
        "protowatch_messages_sent_total",
        "Messages the services accepted since start.",
    ),
    ("protowatch_dead_total", "Outbox rows given up since start."),
    (
        "protowatch_send_failures_total",
        "Failed send attempts since start.",
    ),
];

/// A message a service accepted.
pub fn message_sent() {
    add(TOTALS[0].0, Vec::new(), 1);
}

/// Outbox rows given up.
pub fn rows_dead(n: u64) {
    add(TOTALS[1].0, Vec::new(), n);
}

/// A send attempt that failed.
pub fn send_failure() {
    add(TOTALS[2].0, Vec::new(), 1);
}

pub fn add(name: &'static str, labels: Labels, n: u64) {
    let mut c = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    *c.entry((name, labels)).or_default() += n;
}

pub fn lines_read(file: &std::path::Path, n: u64) {
    add(
        "protowatch_lines_read_total",
        vec![("file", file.display().to_string())],
        n,
    );
}

pub fn event(name: &str, severity: &str) {
    events(name, severity, 1);
}

/// Distinct event names counted under their own label; more are counted as `other`.
/// Each name is a label set kept for the agent's life and printed by every `/metrics`:
/// without a bound, a caller inventing names grows both without end.
pub const MAX_EVENT_LABELS: usize = 500;

pub fn events(name: &str, severity: &str, n: u64) {
    let mut c = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    let labels = |event: &str| {
        vec![
            ("event", event.to_string()),
            ("severity", severity.to_string()),
        ]
    };
    let known = c.contains_key(&("protowatch_events_total", labels(name)));
    let names = || {
        c.keys()
            .filter(|(m, _)| *m == "protowatch_events_total")
            .filter_map(|(_, l)| l.first().map(|(_, v)| v.as_str()))
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let event = if known || names() < MAX_EVENT_LABELS || name == "other" {
        name
    } else {
        "other"
    };
    *c.entry(("protowatch_events_total", labels(event)))
        .or_default() += n;
}

pub fn deliveries(destination: &str, outcome: &'static str, rows: u64) {
    add(
        "protowatch_deliveries_total",
        vec![
            ("destination", destination.to_string()),
            ("outcome", outcome.to_string()),
        ],
        rows,
    );
}

/// The counters in Prometheus' text format.
pub fn render() -> String {
    let mut c = COUNTERS.lock().unwrap_or_else(|p| p.into_inner());
    for (name, _) in TOTALS {
        c.entry((name, Vec::new())).or_default();
    }
    let mut out = String::new();
    let mut last = "";
    for ((name, labels), v) in c.iter() {
        if *name != last {
            if let Some((_, help)) = TOTALS.iter().find(|(n, _)| n == name) {
                out.push_str(&format!("# HELP {name} {help}\n"));
            }
            out.push_str(&format!("# TYPE {name} counter\n"));
            last = name;
        }
        if labels.is_empty() {
            out.push_str(&format!("{name} {v}\n"));
            continue;
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        out.push_str(&format!("{name}{{{}}} {v}\n", labels.join(",")));
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
