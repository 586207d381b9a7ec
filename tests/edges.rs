//! Watching at the edges, through the real binary as a new user would meet them: a
//! protocol folder away for a while (a share unmounted, a folder moved), thousands of
//! files under the usual open-file limit, a folder that cannot be read for a moment, a
//! state database that was wiped, and a `**` glob over a symbolic-link loop. What counts
//! is what reached the fake Bot API: every error once — none repeated, none lost.

// These drive Unix tools (prlimit, chmod as another user, signals).
#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{Agent, FakeTelegram, TOKEN, append, http, protowatch, wait_until};

struct Setup {
    dir: tempfile::TempDir,
    tg: FakeTelegram,
    config: PathBuf,
}

impl Setup {
    fn new(watch: serde_json::Value) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        let tg = FakeTelegram::start();
        let config = support::write_config(
            dir.path(),
            &json!({
                "instrument": "T",
                "telegram": {"bot-id": TOKEN, "channel-id": "1", "api-url": tg.url},
                "watch": [watch],
                "api": {"listen": "127.0.0.1:0"},
                // Each line its own message: these tests count lines, not alerts.
                "throttle": {"repeat_interval": 0, "per_minute": {"telegram": 10000}},
            }),
        );
        Setup { dir, tg, config }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("p").join(name)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// The text of each message that reached Telegram, by count.
    fn received(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.tg.messages() {
            let text = m.body["text"].as_str().unwrap_or_default();
            // The event text is the second line of the rendered message.
            let line = text.lines().nth(1).unwrap_or_default().to_string();
            *out.entry(line).or_insert(0) += 1;
        }
        out
    }

    /// Waits until each of `texts` arrived, then checks that exactly they arrived, once.
    fn expect(&self, texts: &[String], within: Duration) {
        wait_until(within, || {
            let got = self.received();
            texts.iter().all(|t| got.contains_key(t))
        });
        std::thread::sleep(Duration::from_millis(500));
        let want: BTreeMap<String, usize> = texts.iter().map(|t| (t.clone(), 1)).collect();
        assert_eq!(self.received(), want, "log:\n{}", self.log_tail());
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

fn err(text: &str) -> Vec<u8> {
    format!("ERROR {text}\n").into_bytes()
}

fn texts(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| s.to_string()).collect()
}

/// The folder is renamed away for 12 s (as a share unmounted, or `mv proto proto.off`)
/// while its files are written on the other side, then comes back.
fn folder_away_and_back(mode: &str) {
    let s = Setup::new(
        json!({"path": "p/*.log", "start": "beginning", "mode": mode,
                              "poll_interval_ms": 200}),
    );
    append(&s.path("a.log"), &err("first"));
    append(&s.path("b.log"), &err("second"));
    let agent = Agent::start_logging_to(&s.config, &s.log());
    s.expect(&texts(&["first", "second"]), Duration::from_secs(20));
    let away = s.dir.path().join("p.off");
    std::fs::rename(s.dir.path().join("p"), &away).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    append(&away.join("a.log"), &err("written while away"));
    std::thread::sleep(Duration::from_secs(10));
    std::fs::rename(&away, s.dir.path().join("p")).unwrap();
    append(&s.path("b.log"), &err("written after the return"));
    s.expect(
        &texts(&[
            "first",
            "second",
            "written while away",
            "written after the return",
        ]),
        Duration::from_secs(20),
    );
    let log = std::fs::read_to_string(s.log()).unwrap();
    assert!(
        log.contains("cannot see this"),
        "a WARN says what is away:\n{log}"
    );
    drop(agent);
}

#[test]
fn a_folder_away_for_12_s_repeats_nothing_and_loses_nothing() {
    // Both modes side by side: one wall-clock wait.
    let poll = std::thread::spawn(|| folder_away_and_back("poll"));
    folder_away_and_back("notify");
    poll.join().expect("poll mode");
}

#[test]
fn five_thousand_files_under_an_open_file_limit_of_1024() {
    if Command::new("prlimit").arg("--version").output().is_err() {
        eprintln!("skipped: prlimit (util-linux) is not installed");
        return;
    }
    let s = Setup::new(json!({"path": "p/*.log", "start": "beginning",
                              "poll_interval_ms": 500}));
    let errors: Vec<usize> = (0..10).map(|i| i * 487 + 13).collect();
    for i in 0..5000 {
        let mut text = format!("2026-11-20 14:03:12 INFO [sonix] protocol {i} opened\n");
        if errors.contains(&i) {
            text.push_str(&format!(
                "2026-11-20 14:03:13 ERROR [det] failure in protocol {i}\n"
            ));
        }
        std::fs::write(s.path(&format!("proto{i:05}.log")), text).unwrap();
    }
    let mut cmd = Command::new("prlimit");
    cmd.arg("--nofile=1024")
        .arg(env!("CARGO_BIN_EXE_protowatch"))
        .env_remove("PROTOWATCH_CONFIG")
        .env("RUST_LOG", "info")
        .arg("--config")
        .arg(&s.config)
        .arg("run");
    let agent = Agent::start_command(cmd, &s.config, &s.log());
    let mut want: Vec<String> = errors
        .iter()
        .map(|i| format!("failure in protocol {i}"))
        .collect();
    s.expect(&want, Duration::from_secs(60));
    let (status, health, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    assert_eq!(health["watch"][0]["files"], 5000, "{health}");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", agent.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(fds < 200, "{fds} file descriptors open");
    // Files written now, among thousands of quiet ones.
    for i in [7, 2500, 4999] {
        append(
            &s.path(&format!("proto{i:05}.log")),
            format!("ERROR late failure in {i}\n").as_bytes(),
        );
        want.push(format!("late failure in {i}"));
    }
    s.expect(&want, Duration::from_secs(30));
    // The log says what it did once, and then stays quiet.
    let size = || std::fs::metadata(s.log()).map(|m| m.len()).unwrap_or(0);
    let before = size();
    std::thread::sleep(Duration::from_secs(4));
    let grown = size() - before;
    assert!(
        before < 512 * 1024,
        "log of {before} bytes:\n{}",
        s.log_tail()
    );
    assert!(
        grown < 4096,
        "the log grew {grown} bytes in 4 s:\n{}",
        s.log_tail()
    );
}

/// Whether this process runs as root (then it can make a user for the agent).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const TEST_USER: &str = "protowatch-edge";

/// A user without privileges for the agent, made if needed; `None` (with the reason
/// printed) where the test cannot make one.
fn unprivileged_user() -> Option<(String, String)> {
    if !is_root() {
        eprintln!(
            "skipped: not root, so no user can be made for the agent (as root the folder could not be made unreadable to it)"
        );
        return None;
    }
    let id = |flag: &str| {
        Command::new("id")
            .args([flag, TEST_USER])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if id("-u").is_none() {
        let made = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(TEST_USER)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: useradd is not available or failed");
            return None;
        }
    }
    Some((id("-u")?, id("-g")?))
}

#[test]
fn a_folder_unreadable_for_5_s_repeats_nothing_and_loses_nothing() {
    let Some((uid, gid)) = unprivileged_user() else {
        return;
    };
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let s = Setup::new(
        json!({"path": "p/*.log", "start": "beginning", "mode": "poll",
                              "poll_interval_ms": 200}),
    );
    let chmod = |path: &Path, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    chmod(s.dir.path(), 0o755);
    chmod(&s.config, 0o644);
    let state = s.dir.path().join(".protowatch");
    std::fs::create_dir(&state).unwrap();
    let chown = Command::new("chown")
        .arg(format!("{uid}:{gid}"))
        .arg(&state)
        .status()
        .unwrap();
    assert!(chown.success());
    append(&s.path("a.log"), &err("before"));
    chmod(&s.path("a.log"), 0o644);
    let mut cmd = Command::new("setpriv");
    cmd.args([
        &format!("--reuid={uid}"),
        &format!("--regid={gid}"),
        "--clear-groups",
    ])
    .arg(env!("CARGO_BIN_EXE_protowatch"))
    .env_remove("PROTOWATCH_CONFIG")
    .env("RUST_LOG", "info")
    .arg("--config")
    .arg(&s.config)
    .arg("run");
    let agent = Agent::start_command(cmd, &s.config, &s.log());
    s.expect(&texts(&["before"]), Duration::from_secs(20));
    let folder = s.dir.path().join("p");
    chmod(&folder, 0o000);
    append(&s.path("a.log"), &err("while unreadable"));
    std::thread::sleep(Duration::from_secs(5));
    let (_, health, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    chmod(&folder, 0o755);
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health["watch"][0]["unseen"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("ermission")),
        "{health}"
    );
    append(&s.path("a.log"), &err("after"));
    s.expect(
        &texts(&["before", "while unreadable", "after"]),
        Duration::from_secs(20),
    );
    drop(agent);
}

#[test]
fn a_wiped_database_is_refused_and_reset_state_starts_fresh() {
    let s = Setup::new(json!({"path": "p/*.log", "poll_interval_ms": 200}));
    let agent = Agent::start_logging_to(&s.config, &s.log());
    agent.stop();
    let state = s.dir.path().join(".protowatch");
    assert!(state.join("state-id").exists());
    // As a disk tool or a restore leaves it.
    std::fs::File::create(state.join("protowatch.db")).unwrap();
    let run = |extra: &[&str]| {
        let mut child = protowatch()
            .arg("--config")
            .arg(&s.config)
            .arg("run")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait_with_output().unwrap()
    };
    let out = run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("protowatch.db")
            && stderr.contains("is empty")
            && stderr.contains("--reset-state"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(state.join("api.addr"));
    let mut cmd = protowatch();
    cmd.arg("--config")
        .arg(&s.config)
        .arg("run")
        .arg("--reset-state");
    let agent = Agent::start_command(cmd, &s.config, &s.log());
    append(&s.path("new.log"), &err("after the reset"));
    s.expect(&texts(&["after the reset"]), Duration::from_secs(20));
    agent.stop();
    let kept = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".bak"));
    assert!(kept, "the old database is kept aside");
}

/// Peak resident memory of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_recursive_glob_over_a_symlink_loop_stays_small_and_stops_at_once() {
    let s = Setup::new(json!({"path": "p/**/*", "start": "beginning", "poll_interval_ms": 100}));
    let tree = s.dir.path().join("p");
    std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
    append(&tree.join("a/b/c/deep.log"), &err("deep in the tree"));
    // Each link leads back up: followed, the walk never ends (and once took 24 GB).
    for (link, to) in [("a/up", "."), ("a/b/up", "../.."), ("a/b/c/up", "../../..")] {
        std::os::unix::fs::symlink(tree.join(to), tree.join(link)).unwrap();
    }
    std::os::unix::fs::symlink(tree.join("a"), tree.join("a/b/sideways")).unwrap();
    let mut agent = Some(Agent::start_logging_to(&s.config, &s.log()));
    s.expect(&texts(&["deep in the tree"]), Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let pid = agent.as_ref().unwrap().pid();
    let rss = peak_rss_kib(pid);
    assert!(rss < 150 * 1024, "peak RSS {rss} KiB");
    let started = Instant::now();
    agent.take().unwrap().stop();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        started.elapsed()
    );
}

#[test]
fn run_refuses_every_config_that_check_config_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let file_as_state = dir.path().join("not-a-folder");
    std::fs::write(&file_as_state, "").unwrap();
    let cases = [
        json!({}),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "1"},
               "state_dir": file_as_state}),
    ];
    for config in cases {
        let path = support::write_config(dir.path(), &config);
        for command in ["check-config", "run"] {
            let out = protowatch()
                .arg("--config")
                .arg(&path)
                .arg(command)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {config}: {stderr}");
            if config.get("state_dir").is_some() {
                assert!(
                    stderr.contains("state_dir") && stderr.contains("is a file"),
                    "{stderr}"
                );
            }
        }
    }
}
