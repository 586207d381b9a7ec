//! The way out: rendering a notification for each service, and the commit that makes a
//! batch of lines durable (events, outbox rows, alert counts, throttle windows and the
//! checkpoint in one SQLite transaction).
//!
//! The commit's batch is what the agent commits for 256 KiB of a realistic protocol
//! (the watcher's batch size): its events tallied into alerts and offered to the
//! throttle for two destinations, so that the first of each key is queued and its
//! repeats only counted — as in the pipeline.
//!
//! Run: `cargo bench --bench deliver`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use protowatch::agent::{self, Batch};
use protowatch::alerts::Tally;
use protowatch::config::{Destination, Encoding, Service};
use protowatch::event::Event;
use protowatch::messengers::mail::render as mail;
use protowatch::messengers::render::{Item, Notification};
use protowatch::messengers::telegram::render::{TELEGRAM_LIMIT, telegram_parts};
use protowatch::outbox::queue::Delivery;
use protowatch::parser::{FileParser, Rules};
use protowatch::routing::throttle::Throttle;
use protowatch::store::Store;
use protowatch::watcher::checkpoints::Checkpoint;
use protowatch::watcher::identity::FileId;

#[path = "support/protocol.rs"]
mod support;

/// The events of `bytes` of the generated protocol.
fn events(bytes: usize) -> Vec<Event> {
    let data = support::protocol(bytes);
    let mut parser = FileParser::new(Path::new("p.log"), Encoding::Auto, Arc::new(Rules::empty()));
    let mut out = Vec::new();
    for l in data.split(|b| *b == b'\n') {
        parser.line(l, &mut out);
    }
    parser.finish(&mut out);
    out
}

fn render_all(n: &Notification<'_>) -> usize {
    mail::mail_subject(n).len()
        + mail::mail_text(n).len()
        + mail::mail_html(n).len()
        + telegram_parts(n, TELEGRAM_LIMIT).len()
}

fn rendering(c: &mut Criterion) {
    let mut events = events(8 << 20);
    // A traceback makes the richest single message.
    let single = events
        .iter()
        .position(|e| e.details.is_some())
        .map_or_else(|| events[0].clone(), |i| events[i].clone());
    events.truncate(1000);
    assert_eq!(events.len(), 1000, "the protocol makes 1,000 events");
    let mut group = c.benchmark_group("render");
    group.bench_function("single_event_mail_and_telegram", |b| {
        b.iter(|| render_all(&Notification::single("IN5", &single)))
    });
    group.bench_function("digest_of_1000_mail_and_telegram", |b| {
        b.iter(|| {
            let n = Notification {
                instrument: "IN5",
                items: events
                    .iter()
                    .map(|event| Item {
                        event,
                        repeat: None,
                    })
                    .collect(),
                more: Vec::new(),
            };
            render_all(&n)
        })
    });
    group.finish();
}

fn commit(c: &mut Criterion) {
    let events = events(256 * 1024);
    let to = [
        Destination {
            service: Service::Mail,
            scope: "default".into(),
        },
        Destination {
            service: Service::Telegram,
            scope: "default".into(),
        },
    ];
    let state = tempfile::tempdir().expect("temporary folder");
    let mut store = Store::open(state.path()).expect("store opens");
    let checkpoint = Checkpoint {
        id: FileId {
            device: 1,
            index: 2,
            created: 3,
        },
        fingerprint: b"2026-11-20 14:00:01.001 | INFO".to_vec(),
        path: PathBuf::from("protocol.log"),
        offset: 0,
    };
    let mut group = c.benchmark_group("store");
    group.sample_size(30);
    group.bench_function(
        format!("commit_256KiB_batch_{}_events", events.len()),
        |b| {
            b.iter_batched(
                || {
                    let mut throttle = Throttle::new(Duration::from_secs(600));
                    let mut tally = Tally::default();
                    let deliveries: Vec<Delivery> = events
                        .iter()
                        .map(|e| {
                            tally.add(e, None);
                            let to = to
                                .iter()
                                .filter(|d| throttle.offer(d, e, 0))
                                .cloned()
                                .collect();
                            Delivery {
                                event: e.clone(),
                                to,
                                repeat: None,
                                request: None,
                            }
                        })
                        .collect();
                    (deliveries, tally.take(), throttle.take_changes())
                },
                |(deliveries, alerts, throttle)| {
                    agent::commit(
                        &mut store,
                        &Batch {
                            checkpoint: Some(&checkpoint),
                            deliveries,
                            alerts,
                            throttle,
                            ..Batch::default()
                        },
                    )
                    .expect("commit")
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(benches, rendering, commit);
criterion_main!(benches);
