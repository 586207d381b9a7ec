//! Live reload with the real binary: an edited config file or SIGHUP changes watches,
//! rules and routing in place; an invalid edit keeps the running config and says why;
//! and no line is lost or read twice across any of it. What counts is what the agent's
//! alerts say it saw (`alerts list --json`: one alert per dedup key with `times_seen`)
//! and what its log says.
#![cfg(unix)]

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, append, http, wait_until};

/// The message part of each dedup key (digits folded to `#`) → (event, times seen),
/// from the running agent's API (the CLI would refuse an invalid config file).
fn seen(agent: &Agent) -> BTreeMap<String, (String, u64)> {
    let (status, alerts, body) = http(agent.addr, "GET", "/api/alerts", &[], b"");
    assert_eq!(status, 200, "{body}");
    alerts
        .as_object()
        .unwrap()
        .values()
        .map(|a| {
            (
                a["key"]
                    .as_str()
                    .unwrap()
                    .rsplit('|')
                    .next()
                    .unwrap()
                    .to_string(),
                (
                    a["event"].as_str().unwrap().to_string(),
                    a["times_seen"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

fn times(agent: &Agent, message: &str) -> u64 {
    seen(agent).get(message).map_or(0, |(_, n)| *n)
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Writes the config and waits until the agent's log says it dealt with it.
fn edit(dir: &Path, config: &Value, log: &Path, expect: &str) {
    let before = log_text(log).matches(expect).count();
    support::write_config(dir, config);
    assert!(
        wait_until(Duration::from_secs(10), || log_text(log)
            .matches(expect)
            .count()
            > before),
        "no {expect:?} in the log:\n{}",
        log_text(log)
    );
}

#[test]
fn watches_and_rules_change_in_place_and_no_file_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["a", "b", "c"] {
        std::fs::create_dir(d.join(sub)).unwrap();
    }
    let (a, b, c) = (d.join("a/a.log"), d.join("b/b.log"), d.join("c/c.log"));
    append(&a, b"ERROR history of a\n");
    append(&b, b"ERROR history of b\n");
    append(&c, b"ERROR history of c\n");
    let mut config = json!({
        "watch": [{"path": "a/*.log", "poll_interval_ms": 100}],
        "api": {"listen": "127.0.0.1:0"}, "telegram": nowhere(),
    });
    let cfg = support::write_config(d, &config);
    let log = d.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    append(&a, b"ERROR first in a\n");
    assert!(wait_until(Duration::from_secs(10), || times(
        &agent,
        "first in a"
    ) == 1));

    // Two new entries: `start: end` skips what b.log had, `beginning` reads c.log once.
    config["watch"] = json!([
        {"path": "a/*.log", "poll_interval_ms": 100},
        {"path": "b/*.log", "poll_interval_ms": 100},
        {"path": "c/*.log", "poll_interval_ms": 100, "start": "beginning"},
    ]);
    edit(d, &config, &log, "config changed: applied");
    let text = log_text(&log);
    assert!(text.contains("watch[1] (added)"), "{text}");
    assert!(text.contains("watch[2] (added)"), "{text}");
    // A line written before the new entry has opened b.log would be history to it.
    for file in [&b, &c] {
        let following = format!("following file={}", file.display());
        assert!(wait_until(Duration::from_secs(10), || log_text(&log)
            .contains(&following)));
    }
    append(&b, b"ERROR first in b\n");
    append(&c, b"ERROR first in c\n");
    assert!(wait_until(Duration::from_secs(10), || {
        times(&agent, "first in b") == 1 && times(&agent, "first in c") == 1
    }));

    // a.log's entry changes (encoding, mode) and a rule comes: a.log is followed on
    // from where it was, with the new rule.
    config["watch"][0] =
        json!({"path": "a/*.log", "poll_interval_ms": 150, "encoding": "utf-8", "mode": "poll"});
    config["rules"] = json!([{
        "name": "pump",
        "pattern": "(?i)pump (?P<message>.*)",
        "event": "pump_failed",
        "severity": "minor",
    }]);
    edit(d, &config, &log, "config changed: applied");
    append(&a, b"ERROR second in a\nWARNING 1 pump 3 stalled\n");
    assert!(wait_until(Duration::from_secs(10), || times(
        &agent,
        "# stalled"
    ) == 1));
    let now = seen(&agent);
    assert_eq!(now["# stalled"].0, "pump_failed");
    assert_eq!(now["second in a"].1, 1);
    assert_eq!(now["first in a"].1, 1, "a.log was read again: {now:?}");
    assert_eq!(now["first in c"].1, 1, "c.log was read again: {now:?}");
    for history in ["history of a", "history of b"] {
        assert!(!now.contains_key(history), "{history} was read: {now:?}");
    }
    assert_eq!(now["history of c"].1, 1);

    // a's entry goes: its file is no longer followed, the others are.
    config["watch"] = json!([
        {"path": "b/*.log", "poll_interval_ms": 100},
        {"path": "c/*.log", "poll_interval_ms": 100, "start": "beginning"},
    ]);
    edit(d, &config, &log, "config changed: applied");
    append(&a, b"ERROR unwatched in a\n");
    append(&b, b"ERROR second in b\n");
    assert!(wait_until(Duration::from_secs(10), || times(
        &agent,
        "second in b"
    ) == 1));
    std::thread::sleep(Duration::from_millis(500));
    let now = seen(&agent);
    assert!(!now.contains_key("unwatched in a"), "{now:?}");
    assert_eq!(now["first in b"].1, 1);
    assert_eq!(now["first in c"].1, 1);
    agent.stop();
}

#[test]
fn an_invalid_edit_keeps_the_running_config_and_says_where_it_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("p")).unwrap();
    let mut config = json!({
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        "api": {"listen": "127.0.0.1:0"}, "telegram": nowhere(),
    });
    let cfg = support::write_config(d, &config);
    let log = d.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);

    config["watch"][0]["encoding"] = json!("latin-2");
    config["rules"] =
        json!([{"name": "broken", "pattern": "(unclosed", "event": "x", "severity": "info"}]);
    edit(d, &config, &log, "the running config stays");
    let text = log_text(&log);
    let file = cfg.display().to_string();
    assert!(
        text.contains(&format!("{file}: watch[0].encoding:")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}: rules[0].pattern:")),
        "{text}"
    );

    // The old watch still works, with the old encoding and no rules.
    append(&d.join("p/x.log"), b"ERROR still watched\n");
    assert!(wait_until(Duration::from_secs(10), || times(
        &agent,
        "still watched"
    ) == 1));

    // A syntax error is reported with line and column.
    std::fs::write(&cfg, "{\n  \"watch\": [\n").unwrap();
    let before = log_text(&log).matches("the running config stays").count();
    assert!(wait_until(Duration::from_secs(10), || log_text(&log)
        .matches("the running config stays")
        .count()
        > before));
    assert!(
        log_text(&log).contains(&format!("{file}:3:")),
        "{}",
        log_text(&log)
    );
    agent.stop();
}

#[test]
fn sighup_reloads_a_file_whose_change_the_timer_cannot_see() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("p")).unwrap();
    let rule = |pattern: &str| {
        json!({
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "rules": [{"name": "pump", "pattern": pattern, "event": "pump_failed", "severity": "major"}],
            "api": {"listen": "127.0.0.1:0"}, "telegram": nowhere(),
        })
    };
    let cfg = support::write_config(d, &rule("(?i)pumx (?P<message>.*)"));
    let log = d.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    let p = d.join("p/x.log");

    // Same length and modification time: only SIGHUP can tell the agent.
    let stamp = std::fs::metadata(&cfg).unwrap().modified().unwrap();
    support::write_config(d, &rule("(?i)pump (?P<message>.*)"));
    std::fs::File::options()
        .write(true)
        .open(&cfg)
        .unwrap()
        .set_modified(stamp)
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    append(&p, b"ERROR pump 1 stalled\n");
    assert!(wait_until(Duration::from_secs(10), || !seen(&agent).is_empty()));
    assert_eq!(seen(&agent)["pump # stalled"].0, "alarm_major");

    let status = std::process::Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(wait_until(Duration::from_secs(10), || log_text(&log)
        .contains("config reloaded on SIGHUP: applied")));
    assert!(
        log_text(&log).contains("rules[0].pattern"),
        "{}",
        log_text(&log)
    );
    append(&p, b"ERROR pump 2 stalled\n");
    assert!(wait_until(Duration::from_secs(10), || times(
        &agent,
        "# stalled"
    ) == 1));
    assert_eq!(seen(&agent)["# stalled"].0, "pump_failed");
    agent.stop();
}

#[test]
fn reloads_under_a_stream_of_lines_lose_and_repeat_none() {
    const LINES: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("p")).unwrap();
    let watch = |interval: u64| json!([{"path": "p/*.log", "poll_interval_ms": interval}]);
    let mut config =
        json!({"watch": watch(100), "api": {"listen": "127.0.0.1:0"}, "telegram": nowhere()});
    let cfg = support::write_config(d, &config);
    let log = d.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);

    let file = d.join("p/stream.log");
    let writer = std::thread::spawn(move || {
        for i in 0..LINES {
            append(&file, format!("ERROR stream line {i}\n").as_bytes());
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    // Each edit replaces the watch entry (its thread ends, a new one reads on) or the
    // rules; SIGHUP in between.
    for round in 0..6u64 {
        std::thread::sleep(Duration::from_millis(600));
        config["watch"] = watch(100 + 10 * (round + 1));
        config["rules"] = if round % 2 == 0 {
            json!([{"name": "r", "pattern": "never matches", "event": "x", "severity": "info"}])
        } else {
            json!([])
        };
        edit(d, &config, &log, "config changed: applied");
        if round == 3 {
            // Nothing changed since: the reload finds nothing to do, and must not
            // disturb the stream either. Waited for, or the next edit could be what it
            // applies (correctly, but then no "config changed" would follow).
            let _ = std::process::Command::new("kill")
                .args(["-HUP", &agent.pid().to_string()])
                .status();
            assert!(wait_until(Duration::from_secs(10), || log_text(&log)
                .contains("config reloaded on SIGHUP")));
        }
    }
    writer.join().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || times(&agent, "stream line #")
            >= LINES),
        "seen {} of {LINES}",
        times(&agent, "stream line #")
    );
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(times(&agent, "stream line #"), LINES);
    agent.stop();
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("p")).unwrap();
    let cfg = support::write_config(
        d,
        &json!({"watch": [{"path": "p/*.log"}], "api": {"listen": "127.0.0.1:0"}, "telegram": nowhere()}),
    );
    let socket_path = d.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let next = || {
        let mut buf = [0u8; 256];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut cmd = support::protowatch();
    cmd.env("NOTIFY_SOCKET", &socket_path)
        .arg("--config")
        .arg(&cfg)
        .arg("run");
    let agent = Agent::start_command(cmd, &cfg, &d.join("agent.log"));
    assert_eq!(next(), "READY=1");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &agent.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    assert_eq!(next(), "RELOADING=1");
    assert_eq!(next(), "READY=1");
    agent.stop();
    assert_eq!(next(), "STOPPING=1");
}

/// A service that is never reached: `run` refuses a config without any (as `check-config`
/// does), and these tests look at alerts, not at deliveries.
fn nowhere() -> serde_json::Value {
    serde_json::json!({"bot-id": "123456:TEST-token_abc", "channel-id": "1",
                       "api-url": "http://127.0.0.1:9"})
}
