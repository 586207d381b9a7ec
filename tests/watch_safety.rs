//! A neighbour on the same PC: whoever can write into the protocol folder — links, FIFOs,
//! sparse or endless files — gets no further. Through the real binary, with the fake Bot
//! API as the one destination: what counts is what reached it, and how soon.
//!
//! - a link out of the folder is not read (unless `watch[].follow_links`), and the log
//!   names it;
//! - the agent's own config, token and state are never read, links or not;
//! - a FIFO, a device, `/proc`'s endless files, and a link that flips between a file and
//!   a FIFO hold nothing up: a line written to another file afterwards arrives within
//!   seconds;
//! - a sparse file of 20 GiB is read in turns, and `/healthz` names it while it is behind.

// Links, FIFOs, /proc and /dev are Unix things.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, append, http, wait_until};

/// How soon a line in an ordinary file must arrive whatever else is in the folder.
const PROMPTLY: Duration = Duration::from_secs(6);

struct Setup {
    dir: tempfile::TempDir,
    tg: FakeTelegram,
    config: PathBuf,
}

impl Setup {
    /// A config folder with the protocol folder `p/` and the one `watch` entry `watch`
    /// (more entries in `extra`), every line its own message.
    fn new(watch: Value, extra: &[Value], rules: Value) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        std::fs::create_dir(dir.path().join("outside")).unwrap();
        let tg = FakeTelegram::start();
        let mut watches = vec![watch];
        watches.extend(extra.iter().cloned());
        let config = support::write_config(
            dir.path(),
            &json!({
                "instrument": "T",
                "telegram": {"bot-id": TOKEN, "channel-id": "1", "api-url": tg.url},
                "watch": watches,
                "rules": rules,
                "api": {"listen": "127.0.0.1:0"},
                "throttle": {"repeat_interval": 0, "per_minute": {"telegram": 10000}},
            }),
        );
        Setup { dir, tg, config }
    }

    fn simple(watch: Value) -> Setup {
        Setup::new(watch, &[], json!([]))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("p").join(name)
    }

    fn outside(&self, name: &str) -> PathBuf {
        self.dir.path().join("outside").join(name)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn start(&self) -> Agent {
        Agent::start_logging_to(&self.config, &self.log())
    }

    /// The whole text of every message that reached Telegram.
    fn texts(&self) -> Vec<String> {
        self.tg
            .messages()
            .iter()
            .map(|m| m.body["text"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn arrived(&self, needle: &str) -> bool {
        self.texts().iter().any(|t| t.contains(needle))
    }

    /// Appends an ERROR line to `p/a.log` and checks that it arrives within `within`.
    fn line_arrives(&self, text: &str, within: Duration) {
        let t0 = Instant::now();
        append(&self.path("a.log"), format!("ERROR {text}\n").as_bytes());
        assert!(
            wait_until(within, || self.arrived(text)),
            "{text:?} did not arrive within {within:?}; got {:?}\nlog:\n{}",
            self.texts(),
            self.log_tail()
        );
        eprintln!("{text:?} arrived after {:?}", t0.elapsed());
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// The entry of `p/*.log` with `extra` keys.
fn watch(extra: Value) -> Value {
    let mut w = json!({"path": "p/*.log", "start": "beginning", "poll_interval_ms": 200});
    if let (Some(w), Some(extra)) = (w.as_object_mut(), extra.as_object()) {
        w.extend(extra.clone());
    }
    w
}

/// The entry with links followed out of the folder or not (by default: the key is left
/// out, as in an operator's config).
fn follow_links(follow: bool) -> Value {
    if follow {
        watch(json!({"follow_links": true}))
    } else {
        watch(json!({}))
    }
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_link_out_of_the_folder_is_not_read_unless_links_may_be_followed() {
    for follow in [false, true] {
        let s = Setup::simple(follow_links(follow));
        // The neighbour's way in: a file they cannot read, the agent can.
        std::fs::write(s.outside("secret"), "ERROR the neighbour's secret\n").unwrap();
        symlink(&s.outside("secret"), &s.path("leak.log"));
        append(&s.path("a.log"), b"");
        let _agent = s.start();
        s.line_arrives(&format!("inside, follow_links {follow}"), PROMPTLY);
        if follow {
            assert!(
                wait_until(PROMPTLY, || s.arrived("the neighbour's secret")),
                "with follow_links the link is read: {:?}",
                s.texts()
            );
        } else {
            std::thread::sleep(Duration::from_secs(1));
            assert!(
                !s.arrived("secret"),
                "a link out of the folder was read: {:?}",
                s.texts()
            );
            let log = s.log_text();
            assert!(
                log.lines()
                    .any(|l| l.contains("WARN") && l.contains("leak.log") && l.contains("outside")),
                "a warning names the link:\n{log}"
            );
            // Once, not at every scan.
            assert_eq!(
                log.lines()
                    .filter(|l| l.contains("WARN") && l.contains("leak.log"))
                    .count(),
                1,
                "{log}"
            );
        }
    }
}

#[test]
fn the_agents_own_config_token_and_state_are_never_read() {
    // Every non-blank line an alarm of its own, so that any line of the config or the
    // token that were read would arrive.
    let every_line = json!([{"name": "every line", "pattern": "(?P<message>\\S.*)",
                              "event": "alarm_major", "severity": "major"}]);
    let s = Setup::new(
        watch(json!({"follow_links": true})),
        &[
            json!({"path": "*.json", "start": "beginning", "poll_interval_ms": 200}),
            json!({"path": ".protowatch/*", "start": "beginning", "poll_interval_ms": 200}),
        ],
        every_line,
    );
    append(&s.path("a.log"), b"");
    let agent = s.start();
    let state = s.dir.path().join(".protowatch");
    std::fs::write(state.join("mine.log"), "ERROR from the state folder\n").unwrap();
    symlink(&s.config, &s.path("config.log"));
    symlink(&state.join("api-token"), &s.path("token.log"));
    symlink(&state.join("mine.log"), &s.path("state.log"));
    // Another name of one of the agent's files (not linked otherwise here: of two names
    // of one file, the second is taken as the same file and not looked at again).
    std::fs::hard_link(state.join("state-id"), s.path("hard.log")).unwrap();
    // Some scans with all of it there.
    std::thread::sleep(Duration::from_secs(2));
    s.line_arrives("inside", PROMPTLY);
    std::thread::sleep(Duration::from_secs(1));
    let token = std::fs::read_to_string(state.join("api-token")).unwrap();
    let state_id = std::fs::read_to_string(state.join("state-id")).unwrap();
    for text in s.texts() {
        for leak in [
            "instrument",
            "bot-id",
            TOKEN,
            token.trim(),
            state_id.trim(),
            "from the state folder",
        ] {
            assert!(
                !text.contains(leak),
                "{leak:?} reached Telegram in {text:?}"
            );
        }
    }
    let log = s.log_text();
    for name in [
        "config.log",
        "token.log",
        "state.log",
        "hard.log",
        "config.json",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(name) && l.contains("the agent")),
            "a warning names {name} as the agent's own:\n{log}"
        );
    }
    drop(agent);
}

#[test]
fn fifos_and_a_link_flipping_between_a_file_and_a_fifo_hold_nothing_up() {
    let s = Setup::simple(watch(json!({})));
    mkfifo(&s.path("x.log"));
    mkfifo(&s.outside("fifo"));
    symlink(&s.outside("fifo"), &s.path("y.log"));
    // The targets of the flipping link lie inside the folder, so that only the type
    // check can stop it.
    let targets = s.path("targets");
    std::fs::create_dir(&targets).unwrap();
    mkfifo(&targets.join("fifo"));
    append(&s.path("a.log"), b"");
    let _agent = s.start();
    s.line_arrives("before the flipping", PROMPTLY);

    // A new regular file, then the FIFO, under one name, again and again: every new
    // file is one the watcher starts to follow, and the name may be a FIFO by the time
    // it is opened.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, targets, link) = (stop.clone(), targets.clone(), s.path("flip.log"));
        std::thread::spawn(move || {
            let tmp = targets.join("tmp-link");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let file = targets.join(format!("r{}", n % 50));
                let _ = std::fs::remove_file(&file);
                // Errors end it: the test failed and its folder is gone.
                if std::fs::write(&file, "").is_err() {
                    break;
                }
                for target in [file, targets.join("fifo")] {
                    let _ = std::fs::remove_file(&tmp);
                    let flipped = std::os::unix::fs::symlink(&target, &tmp)
                        .and_then(|()| std::fs::rename(&tmp, &link));
                    if flipped.is_err() {
                        return n;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            n
        })
    };
    for i in 0..4 {
        std::thread::sleep(Duration::from_secs(1));
        s.line_arrives(&format!("while flipping {i}"), PROMPTLY);
    }
    stop.store(true, Ordering::Relaxed);
    let flips = flipper.join().unwrap();
    eprintln!("{flips} flips");
    s.line_arrives("after the flipping", PROMPTLY);
    let log = s.log_text();
    assert!(
        log.contains("x.log") && log.contains("a FIFO"),
        "the FIFO is named:\n{log}"
    );
}

#[test]
fn a_sparse_20_gib_file_is_read_in_turns() {
    let s = Setup::simple(watch(json!({})));
    let sparse = s.path("sparse.log");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(20 << 30)
        .unwrap();
    append(&s.path("a.log"), b"");
    let agent = s.start();
    // The agent is in the middle of the 20 GiB now.
    std::thread::sleep(Duration::from_secs(1));
    s.line_arrives("beside 20 GiB of nothing", PROMPTLY);
    let (status, health, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    let behind = health["watch"][0]["behind"].as_array().cloned();
    let named = behind.iter().flatten().find(|b| {
        b["path"]
            .as_str()
            .is_some_and(|p| p.ends_with("sparse.log"))
    });
    let Some(named) = named else {
        panic!("/healthz names the sparse file as behind: {health:#}");
    };
    // Not read all before the other file's line was served.
    assert!(
        named["unread_bytes"].as_u64().unwrap_or(0) > 0,
        "{health:#}"
    );
    // And again, while it is still being read.
    s.line_arrives("still beside it", PROMPTLY);
}

#[test]
fn links_to_proc_and_devices_are_skipped_or_read_in_turns() {
    for follow in [false, true] {
        let s = Setup::simple(follow_links(follow));
        symlink(Path::new("/proc/self/pagemap"), &s.path("pagemap.log"));
        symlink(Path::new("/dev/zero"), &s.path("zero.log"));
        append(&s.path("a.log"), b"");
        let agent = s.start();
        std::thread::sleep(Duration::from_secs(1));
        s.line_arrives(
            &format!("beside /proc and /dev, follow_links {follow}"),
            PROMPTLY,
        );
        s.line_arrives(&format!("and again, follow_links {follow}"), PROMPTLY);
        let log = s.log_text();
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains("zero.log")),
            "the device is named:\n{log}"
        );
        if !follow {
            assert!(
                log.lines()
                    .any(|l| l.contains("WARN") && l.contains("pagemap.log")),
                "the link out is named:\n{log}"
            );
        }
        drop(agent);
    }
}
