//! Tailing throughput and append-to-stored latency.
//!
//! `tail_throughput`: a generated protocol (mostly INFO lines, some warnings and errors,
//! tracebacks, Russian text) read from its beginning by the watcher's `Tailer` and every
//! line fed to the parser — the agent's hot path without delivery. Reported in bytes/s.
//!
//! `append_to_stored`: one ERROR line appended to a followed file, until its event and
//! outbox row are committed to SQLite with the checkpoint — the watcher thread woken by a
//! file event (notify mode), the parser, the store's transaction.
//!
//! Run: `cargo bench --bench tail`.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protowatch::agent::{Batch, commit};
use protowatch::config::{
    DEFAULT_FORGET_AFTER, DEFAULT_MAX_FILES, DEFAULT_MAX_LINE_BYTES, Destination, Encoding, Format,
    Service, StartAt, WatchConfig, WatchMode,
};
use protowatch::outbox::queue::Delivery;
use protowatch::parser::{FileParser, Rules};
use protowatch::store::Store;
use protowatch::watcher::{Resume, Tailer, WatchMsg, Watcher};

#[path = "support/protocol.rs"]
mod support;
use support::protocol;

fn watch_config(dir: &Path, mode: WatchMode) -> WatchConfig {
    WatchConfig {
        path: dir.join("*.log").to_string_lossy().into_owned(),
        encoding: Encoding::Auto,
        start: StartAt::Beginning,
        mode,
        poll_interval: Duration::from_secs(60),
        format: Format::Sonix,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        max_files: DEFAULT_MAX_FILES,
        forget_after: DEFAULT_FORGET_AFTER,
        follow_links: false,
    }
}

fn tail_throughput(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = protocol(64 << 20);
    std::fs::write(dir.path().join("p.log"), &data).unwrap();
    let rules = Arc::new(Rules::empty());
    let mut group = c.benchmark_group("tail");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.bench_function("read_and_parse_64MiB", |b| {
        b.iter(|| {
            let mut tailer = Tailer::new(
                0,
                watch_config(dir.path(), WatchMode::Poll),
                Resume::default(),
            );
            let mut parser = FileParser::new(Path::new("p.log"), Encoding::Auto, rules.clone());
            let mut events = Vec::new();
            let mut lines = 0usize;
            let mut sink = |msg| {
                if let WatchMsg::Lines { lines: batch, .. } = msg {
                    lines += batch.len();
                    for l in &batch {
                        parser.line(l, &mut events);
                    }
                    events.clear();
                }
                true
            };
            // One file is read at most a read budget per pass: passes until its end.
            while tailer.scan(Instant::now(), &mut sink) && tailer.is_behind() {}
            assert!(lines > 100_000);
        })
    });
    group.finish();
}

fn append_to_stored(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    std::fs::write(&log, "").unwrap();
    let (tx, rx) = mpsc::sync_channel(16);
    let mut watcher = Watcher::spawn(
        &[watch_config(dir.path(), WatchMode::Notify)],
        &Resume::default(),
        tx,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut store = Store::open(state.path()).unwrap();
    let rules = Arc::new(Rules::empty());
    let mut parser = FileParser::new(&log, Encoding::Auto, rules);
    let to = vec![Destination {
        service: Service::Telegram,
        scope: "default".into(),
    }];
    let mut writer = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut group = c.benchmark_group("latency");
    group.sample_size(50);
    group.bench_function("append_to_stored", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for i in 0..iters {
                let t0 = Instant::now();
                writeln!(writer, "2026-11-20 14:03:12 ERROR [det] channel {i} lost").unwrap();
                let Ok(WatchMsg::Lines {
                    checkpoint, lines, ..
                }) = rx.recv_timeout(Duration::from_secs(10))
                else {
                    panic!("no lines");
                };
                let mut events = Vec::new();
                for l in &lines {
                    parser.line(l, &mut events);
                }
                let deliveries = events
                    .into_iter()
                    .map(|event| Delivery {
                        event,
                        to: to.clone(),
                        repeat: None,
                        request: None,
                    })
                    .collect();
                commit(
                    &mut store,
                    &Batch {
                        checkpoint: Some(&checkpoint),
                        deliveries,
                        ..Batch::default()
                    },
                )
                .unwrap();
                total += t0.elapsed();
            }
            total
        })
    });
    group.finish();
    for thread in watcher.stop() {
        thread.join();
    }
}

criterion_group!(benches, tail_throughput, append_to_stored);
criterion_main!(benches);
