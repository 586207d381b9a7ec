//! `protowatch run` killed without warning (SIGKILL; TerminateProcess on Windows) at
//! random moments while a writer appends and rotates: after each restart, every line's
//! notification must reach both the SMTP server and the fake Bot API — none missing,
//! and at most one repeated per kill (the send that was in flight).

// The SMTP server these tests start is Debian's aiosmtpd, a Linux process that a Windows
// test under Wine cannot start; the Windows build is checked end to end from the Linux
// side instead (tests/windows_exe.rs).
#![cfg(not(windows))]

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{FakeTelegram, SmtpOptions, SmtpServer, TOKEN, append, protowatch, wait_until};

const LINES: usize = 80;
const ROTATE_EVERY: usize = 17;
const KILLS: usize = 4;

/// A name made of letters only, so no two lines share a dedup key.
fn word(mut i: usize) -> String {
    let mut s = String::new();
    for _ in 0..3 {
        s.push((b'a' + (i % 26) as u8) as char);
        i /= 26;
    }
    s
}

fn start(config: &std::path::Path) -> Child {
    protowatch()
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How often each line's word was shown, and how many events the messages counted
/// without showing them ("+N more"): a message sent while the agent was catching up is a
/// digest of what queued meanwhile.
fn counts(texts: impl Iterator<Item = String>) -> (BTreeMap<String, usize>, usize) {
    let mut shown = BTreeMap::new();
    let mut hidden = 0;
    for t in texts {
        for rest in t.split("line ").skip(1) {
            if let Some(w) = rest.get(..3) {
                *shown.entry(w.to_string()).or_insert(0) += 1;
            }
        }
        if let Some(rest) = t.split("+").nth(1)
            && let Some(n) = rest.split(" more").next()
            && let Ok(n) = n.replace(',', "").parse::<usize>()
        {
            hidden += n;
        }
    }
    (shown, hidden)
}

#[test]
fn sigkill_during_writes_and_rotations_loses_nothing() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("CRASH_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);

    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("p");
    std::fs::create_dir(&proto).unwrap();
    let config = support::write_config(
        dir.path(),
        &json!({
            "instrument": "K",
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "1", "api-url": tg.url},
            // Rotated files keep matching, so a rotation during a restart is found again.
            "watch": [{"path": "p/*.log*", "poll_interval_ms": 100}],
            // Every line is its own alert, and no destination waits for its pace.
            "throttle": {"per_minute": {"mail": 10000, "telegram": 10000}},
            "api": {"listen": "127.0.0.1:0"},
        }),
    );

    // The first start must see an empty folder: files present at the very first start
    // are read from their end (`start: end`).
    let mut agent = start(&config);
    assert!(wait_until(Duration::from_secs(10), || dir
        .path()
        .join(".protowatch/protowatch.db")
        .exists()));
    std::thread::sleep(Duration::from_millis(300));

    let writer_proto = proto.clone();
    let writer_seed = rng.u64(..);
    let writer = std::thread::spawn(move || {
        let mut rng = fastrand::Rng::with_seed(writer_seed);
        let log = writer_proto.join("run.log");
        for i in 0..LINES {
            if i > 0 && i % ROTATE_EVERY == 0 {
                std::fs::rename(&log, writer_proto.join(format!("run.log.{i}"))).unwrap();
            }
            let line = format!("2026-11-21 10:00:00 ERROR [det] line {} failed\n", word(i));
            // Sometimes a line arrives in two writes, as buffered writers do.
            if rng.bool() {
                let (a, b) = line.split_at(line.len() / 2);
                append(&log, a.as_bytes());
                std::thread::sleep(Duration::from_millis(rng.u64(0..15)));
                append(&log, b.as_bytes());
            } else {
                append(&log, line.as_bytes());
            }
            std::thread::sleep(Duration::from_millis(rng.u64(5..40)));
        }
    });

    for _ in 0..KILLS {
        std::thread::sleep(Duration::from_millis(rng.u64(150..700)));
        agent.kill().unwrap();
        agent.wait().unwrap();
        agent = start(&config);
    }
    writer.join().unwrap();

    let mail_texts = || {
        smtp.messages().into_iter().map(|m| {
            m.parts
                .iter()
                .find(|p| p.0 == "text/plain")
                .map(|p| p.1.clone())
                .unwrap_or_default()
        })
    };
    let tg_texts = || {
        tg.messages()
            .into_iter()
            .map(|m| m.body["text"].as_str().unwrap_or("").to_string())
    };
    let accounted = |(shown, hidden): (BTreeMap<String, usize>, usize)| shown.len() + hidden;
    let deadline = Duration::from_secs(60);
    let started = Instant::now();
    wait_until(deadline, || {
        accounted(counts(mail_texts())) >= LINES && accounted(counts(tg_texts())) >= LINES
    });
    let _ = agent.kill();
    let _ = agent.wait();

    for (service, (got, hidden)) in [
        ("mail", counts(mail_texts())),
        ("telegram", counts(tg_texts())),
    ] {
        let missing: Vec<String> = (0..LINES)
            .map(word)
            .filter(|w| !got.contains_key(w))
            .collect();
        // Every line is shown in a message, or counted in the "+N more" of one.
        assert!(
            missing.len() <= hidden,
            "{service}: missing {missing:?}, {hidden} counted, after {:?} (seed {seed})",
            started.elapsed()
        );
        let repeats: usize = got.values().map(|n| n - 1).sum::<usize>() + hidden - missing.len();
        eprintln!(
            "{service}: {} lines shown, {hidden} counted, {repeats} repeated",
            got.len()
        );
        // A kill may repeat the message in flight, never more: at most one per kill,
        // of at most the lines one message shows.
        assert!(
            repeats <= KILLS * 25,
            "{service}: {repeats} repeats for {KILLS} kills (seed {seed}): {got:?}"
        );
    }
}
