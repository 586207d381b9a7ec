//! The watcher threads alone, in both modes: `poll` finds appended lines with no file
//! events at all (a network share), `notify` finds them at once although its timer is
//! set to a minute.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use protowatch::config::{
    DEFAULT_FORGET_AFTER, DEFAULT_MAX_FILES, DEFAULT_MAX_LINE_BYTES, Encoding, Format, StartAt,
    WatchConfig, WatchMode,
};
use protowatch::watcher::{Resume, WatchMsg, Watcher};

fn config(dir: &std::path::Path, mode: WatchMode, poll_ms: u64) -> WatchConfig {
    WatchConfig {
        path: dir.join("*.log").to_string_lossy().into_owned(),
        encoding: Encoding::Auto,
        start: StartAt::Beginning,
        mode,
        poll_interval: Duration::from_millis(poll_ms),
        format: Format::Sonix,
        max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        max_files: DEFAULT_MAX_FILES,
        forget_after: DEFAULT_FORGET_AFTER,
        follow_links: false,
    }
}

/// Appends a line and returns it with how long it took to come out of the watcher.
fn roundtrip(
    dir: &std::path::Path,
    rx: &mpsc::Receiver<WatchMsg>,
    text: &str,
) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("a.log"))
        .unwrap();
    std::io::Write::write_all(&mut f, format!("{text}\n").as_bytes()).unwrap();
    drop(f);
    match rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a batch of lines")
    {
        WatchMsg::Lines { lines, .. } => (lines[0].clone(), t0.elapsed()),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn poll_mode_needs_no_file_events() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::sync_channel(16);
    let mut w = Watcher::spawn(
        &[config(dir.path(), WatchMode::Poll, 200)],
        &Resume::default(),
        tx,
    )
    .unwrap();
    for i in 0..3 {
        let (line, _) = roundtrip(dir.path(), &rx, &format!("ERROR poll {i}"));
        assert_eq!(line, format!("ERROR poll {i}").into_bytes());
    }
    for thread in w.stop() {
        thread.join();
    }
}

#[test]
fn notify_mode_wakes_on_file_events() {
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::sync_channel(16);
    // The timer alone would take a minute.
    let mut w = Watcher::spawn(
        &[config(dir.path(), WatchMode::Notify, 60_000)],
        &Resume::default(),
        tx,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    for i in 0..3 {
        let (line, took) = roundtrip(dir.path(), &rx, &format!("ERROR notify {i}"));
        assert_eq!(line, format!("ERROR notify {i}").into_bytes());
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
    for thread in w.stop() {
        thread.join();
    }
}
