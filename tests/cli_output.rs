//! The command line as an operator meets it, against the real binary: a closed stdout
//! in every subcommand, one table for `alerts list` whichever way it was found, one JSON
//! document for `--json`, errors with their cause, a word on success, help headings,
//! durations as the book writes them, and the API's address file never seen half
//! written.

#![cfg(unix)]

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, http, protowatch};

fn config(dir: &Path, tg_url: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    std::fs::write(
        dir.join("p/a.log"),
        "2026-11-20 14:03:12 ERROR [detector] HV trip on channel 3\n",
    )
    .unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg_url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    )
}

fn run(cfg: &Path, args: &[&str]) -> std::process::Output {
    protowatch()
        .arg("--config")
        .arg(cfg)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let log = dir.path().join("p/a.log");
    let cfg_s = cfg.to_str().unwrap();
    let log_s = log.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["--config", cfg_s, "check-config"],
        vec!["--config", cfg_s, "routes", "list"],
        vec!["--config", cfg_s, "routes", "list", "--json"],
        vec!["--config", cfg_s, "alerts", "list", "--all"],
        vec!["--config", cfg_s, "alerts", "list", "--all", "--json"],
        vec!["--config", cfg_s, "outbox", "list"],
        vec!["--config", cfg_s, "outbox", "list", "--json"],
        vec!["--config", cfg_s, "replay", log_s],
        vec!["--config", cfg_s, "replay", "--json", log_s],
        vec!["schema"],
        vec!["completions", "bash"],
        vec!["--help"],
        vec!["send-message", "--help"],
    ];
    for _round in 0..3 {
        for args in &commands {
            let mut child = protowatch()
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // The reader is gone before the command writes (`| head -0`).
            drop(child.stdout.take());
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            let status = child.wait().unwrap();
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        }
    }
}

#[test]
fn alerts_list_reads_the_same_from_the_database_and_through_the_agent() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let agent = Agent::start(&cfg);
    tg.wait_for(1, Duration::from_secs(10));
    for (key, msg) in [
        ("vacuum", "давление высокое в камере 3"),
        ("cryo", "helium low"),
    ] {
        let body = json!({"key": key, "message": msg, "severity": "PROBLEM"}).to_string();
        let (code, _, _) = http(
            agent.addr,
            "PUT",
            "/api/alerts",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(code, 201);
    }
    let through_agent = run(&cfg, &["alerts", "list"]);
    let json_through_agent = run(&cfg, &["alerts", "list", "--json"]);
    agent.stop();
    let from_db = run(&cfg, &["alerts", "list"]);
    let json_from_db = run(&cfg, &["alerts", "list", "--json"]);
    assert!(through_agent.status.success() && from_db.status.success());
    let a = String::from_utf8(through_agent.stdout).unwrap();
    let b = String::from_utf8(from_db.stdout).unwrap();
    assert_eq!(a, b, "one table whichever way");
    assert_eq!(json_through_agent.stdout, json_from_db.stdout);
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines.len(), 4, "{a}");
    assert!(lines[0].starts_with("ID  STATE"), "{a}");
    // Aligned: the MESSAGE column starts at the same display column on every line.
    let col = |l: &str| unicode_width::UnicodeWidthStr::width(&l[..l.rfind("  ").unwrap()]);
    let first = col(lines[0]);
    for l in &lines[1..] {
        assert!(l.contains("active"), "{l}");
        assert_eq!(col(l), first, "{a}");
    }
}

/// `alerts ack` and `silences add|list|expire` through the agent and from the database:
/// what they print, their exit codes, and the list's line under an alert's row.
#[test]
fn on_call_from_the_command_line() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let agent = Agent::start(&cfg);
    tg.wait_for(1, Duration::from_secs(10));
    for key in ["vacuum", "cryo"] {
        let body = json!({"key": key, "message": format!("{key} trouble"), "severity": "PROBLEM"});
        let (code, _, _) = http(
            agent.addr,
            "PUT",
            "/api/alerts",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 201);
    }
    let out = run(&cfg, &["alerts", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id_of = |key: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["key"].as_str().is_some_and(|k| k.ends_with(key)))
            .unwrap_or_else(|| panic!("{key} in {list}"))["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let (cryo, vacuum) = (id_of("cryo"), id_of("vacuum"));
    // The stored key, as the API made it from the one given.
    let vacuum_key = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == vacuum.parse::<i64>().unwrap())
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(&cfg, &["alerts", "ack", &cryo]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("alert {cryo} acknowledged\n")
    );
    let out = run(&cfg, &["alerts", "ack", "99999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no active alert 99999"));

    let out = run(
        &cfg,
        &[
            "silences",
            "add",
            "--key",
            &vacuum_key,
            "--comment",
            "pump swap",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(id.parse::<i64>().is_ok(), "the new id alone: {id}");
    for (args, want) in [
        (vec!["silences", "add", "--key", "x"], "--comment"),
        (vec!["silences", "add", "--comment", " "], "needs a comment"),
        (
            vec!["silences", "add", "--duration", "40d", "--comment", "c"],
            "31 days",
        ),
        (
            vec!["silences", "add", "--text", "(", "--comment", "c"],
            "matchers",
        ),
    ] {
        let out = run(&cfg, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let out = run(&cfg, &["silences", "list"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("ID  MATCHERS"), "{text}");
    assert!(
        text.contains(&format!("key={vacuum_key}")) && text.contains("pump swap"),
        "{text}"
    );
    assert!(
        text.contains("in 2 h") || text.contains("in 1 h 59 min"),
        "{text}"
    );
    let out = run(&cfg, &["alerts", "list"]);
    let through_agent = String::from_utf8(out.stdout).unwrap();
    assert!(
        through_agent.contains("↳ acknowledged by api"),
        "{through_agent}"
    );
    assert!(
        through_agent.contains(&format!("↳ silenced (silence {id})")),
        "{through_agent}"
    );
    let out = run(&cfg, &["alerts", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == vacuum.parse::<i64>().unwrap())
        .unwrap();
    assert_eq!(shown["silenced_by"], json!([format!("silence {id}")]));
    agent.stop();

    // From the database: the same table, and the same commands.
    let out = run(&cfg, &["alerts", "list"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), through_agent);
    let out = run(&cfg, &["silences", "expire", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("silence {id} ended\n")
    );
    let out = run(&cfg, &["silences", "expire", "999"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no silence 999"));
    let out = run(&cfg, &["silences", "list"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ID  MATCHERS  ENDS  BY  HELD  COMMENT\n(none)\n"
    );
    let out = run(&cfg, &["silences", "list", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ended by cli"));
    let out = run(
        &cfg,
        &[
            "silences",
            "add",
            "--event",
            "alarm_major",
            "--comment",
            "db",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    // Refused alike from the database, by the same reader.
    let out = run(
        &cfg,
        &["silences", "add", "--duration", "40d", "--comment", "c"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("31 days"));
    let out = run(&cfg, &["silences", "add", "--text", "(", "--comment", "c"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matchers"));
    let out = run(&cfg, &["alerts", "ack", &vacuum]);
    assert!(out.status.success(), "{out:?}");
}

/// An alert under an escalation policy: `alerts list` (and the console's data) say its
/// next step, from the policy in the config.
#[test]
fn the_next_escalation_step_is_shown() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("p")).unwrap();
    std::fs::write(
        dir.path().join("p/a.log"),
        "ERROR [detector] HV trip on channel 3\n",
    )
    .unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url,
                         "scopes": {"oncall": "-300"}},
            "escalation": {"night": {"steps": [
                {"after": "10m", "to": [{"service": "telegram", "scope": "oncall"}]}]}},
            "routes": {"alarm_major": [{"service": "telegram"}, {"escalate": "night"}]},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let agent = Agent::start(&cfg);
    tg.wait_for(1, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let out = run(&cfg, &["alerts", "list"]);
        let text = String::from_utf8(out.stdout).unwrap();
        if text.contains("↳ next: telegram:oncall in ") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        text.contains("↳ next: telegram:oncall in 10 min")
            || text.contains("↳ next: telegram:oncall in 9 min"),
        "{text} {}",
        String::from_utf8_lossy(&run(&cfg, &["alerts", "list", "--json"]).stdout)
    );
    let (_, v, _) = http(agent.addr, "GET", "/api/console/alerts", &[], b"");
    let next = v["alerts"][0]["next_step"].as_str().unwrap_or_default();
    assert!(next.starts_with("next: telegram:oncall in "), "{v}");
    agent.stop();
}

#[test]
fn json_is_one_document_everywhere() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let log = dir.path().join("p/a.log");
    for args in [
        vec!["alerts", "list", "--all", "--json"],
        vec!["silences", "list", "--all", "--json"],
        vec!["outbox", "list", "--json"],
        vec!["outbox", "list", "--dead", "--json"],
    ] {
        let out = run(&cfg, &args);
        assert!(out.status.success(), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v, json!([]), "{args:?}: an empty list is []");
    }
    let out = run(&cfg, &["routes", "list", "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["routes"].is_object(), "{v}");
    let out = run(&cfg, &["replay", "--json", log.to_str().unwrap()]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_object(), "{v}");
}

#[test]
fn errors_carry_their_cause_and_success_says_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9.
    let cfg = config(dir.path(), "http://127.0.0.1:9");
    let out = run(&cfg, &["send-message", "--direct", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_ascii_lowercase().contains("connection refused"),
        "the cause, not only \"error sending request\": {err}"
    );
    assert!(!err.contains(TOKEN) && !err.contains("TEST-token"), "{err}");

    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let agent = Agent::start(&cfg);
    let out = run(&cfg, &["send-message", "sample 3 done"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("queued as #") && err.contains("telegram:default"),
        "{err}"
    );
    let out = run(&cfg, &["send-message", "--quiet", "sample 4 done"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "quiet");
    drop(agent);
}

#[test]
fn help_config_errors_and_durations_read_as_the_readme_writes_them() {
    let out = protowatch()
        .args(["send-message", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let own = help.find("--attach").unwrap();
    let global = help.find("Global options:").unwrap();
    assert!(
        own < global && help[global..].contains("--log-level"),
        "{help}"
    );
    assert_eq!(help.matches("--log-format").count(), 1, "{help}");

    let dir = tempfile::tempdir().unwrap();
    let out = protowatch()
        .args(["--log-level", "bogus", "schema"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected one of error, warn"));
    let out = protowatch()
        .current_dir(dir.path())
        .env_remove("PROTOWATCH_CONFIG")
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("--config") && err.contains("PROTOWATCH_CONFIG"),
        "{err}"
    );
    std::fs::write(dir.path().join("config.json"), "").unwrap();
    let out = protowatch()
        .current_dir(dir.path())
        .env_remove("PROTOWATCH_CONFIG")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file is empty"));

    let tg = FakeTelegram::start();
    let cfg = config(dir.path(), &tg.url);
    let out = run(&cfg, &["check-config"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["throttle"]["repeat_interval"], "10m", "{shown}");
    assert_eq!(shown["throttle"]["max_age"], "24h", "{shown}");
    let out = run(&cfg, &["check-config", "--probe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("\"instrument\""), "the table only: {text}");
    assert!(
        text.contains("getMe") || text.to_lowercase().contains("telegram"),
        "{text}"
    );

    // A first start says once that it made the database.
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    agent.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        text.matches("created the state database").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("migrated"), "{text}");
}

#[test]
fn the_apis_address_is_never_seen_half_written() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg.url);
    let addr_file = dir.path().join(".protowatch/api.addr");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (stop, addr_file) = (stop.clone(), addr_file.clone());
        std::thread::spawn(move || {
            let (mut reads, mut bad) = (0u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(text) = std::fs::read_to_string(&addr_file) {
                    reads += 1;
                    if text.trim().parse::<std::net::SocketAddr>().is_err() {
                        bad.push(text);
                    }
                }
            }
            (reads, bad)
        })
    };
    for _ in 0..200 {
        let mut child = protowatch()
            .arg("--config")
            .arg(&cfg)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let before = std::fs::metadata(&addr_file)
            .and_then(|m| m.modified())
            .ok();
        while t.elapsed() < Duration::from_secs(10) {
            let now = std::fs::metadata(&addr_file)
                .and_then(|m| m.modified())
                .ok();
            if now.is_some() && now != before {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (reads, bad) = reader.join().unwrap();
    assert!(reads > 200, "the reader read ({reads})");
    assert!(
        bad.is_empty(),
        "{} of {reads} reads were not an address: {:?}",
        bad.len(),
        &bad[..bad.len().min(3)]
    );
    let _ = Command::new("true").status();
}

/// The help names every service an operator can configure, and what `--probe` asks each.
#[test]
fn help_names_every_service() {
    let help = |args: &[&str]| {
        let out = protowatch().args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    for service in [
        "e-mail",
        "Telegram",
        "webhooks",
        "Alertmanager",
        "SciLog",
        "Signal",
    ] {
        assert!(top.contains(service), "{service} missing from:\n{top}");
    }
    let probe = help(&["check-config", "--help"]);
    for step in [
        "SMTP",
        "getMe",
        "SciLog",
        "Signal",
        "Alertmanager",
        "webhook",
    ] {
        assert!(probe.contains(step), "{step} missing from:\n{probe}");
    }
}

/// The command run on a terminal of `columns` columns (a pseudo-terminal from
/// util-linux's `script`), as an operator sees it: the tables cut to fit only there.
fn on_terminal(cfg: &Path, args: &[&str], columns: u16) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let mut line = vec![
        quote(env!("CARGO_BIN_EXE_protowatch")),
        "--config".into(),
        quote(cfg.to_str().unwrap()),
    ];
    line.extend(args.iter().map(|a| quote(a)));
    let out = Command::new("script")
        .args(["-qec", &line.join(" "), "/dev/null"])
        .env("COLUMNS", columns.to_string())
        .env_remove("PROTOWATCH_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux's script");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

/// On an 80-column terminal the message and the last error keep most of the line: the
/// times are relative and the columns a reader needs least give way. `--absolute`
/// brings the dates back.
#[test]
fn an_80_column_terminal_keeps_the_message_and_the_error() {
    let width = |l: &str| unicode_width::UnicodeWidthStr::width(l);
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens where the Bot API should be: the delivery stays queued, with the
    // client's long error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(dir.path(), &format!("http://127.0.0.1:{port}"));
    let agent = Agent::start(&cfg);
    let message = "vacuum lost in sample chamber: 3.2e-2 mbar is above the interlock threshold";
    let body = json!({"key": "vacuum", "message": message, "severity": "PROBLEM"}).to_string();
    let (code, _, _) = http(
        agent.addr,
        "PUT",
        "/api/alerts",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(code, 201);

    let text = on_terminal(&cfg, &["alerts", "list"], 80);
    assert!(text.lines().all(|l| width(l) <= 80), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("vacuum lost"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains(&message[..40]),
        "the message was cut short:\n{text}"
    );
    assert!(row.contains("now"), "{text}");

    let errored = support::wait_until(Duration::from_secs(30), || {
        let out = run(&cfg, &["outbox", "list", "--json"]);
        let rows: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        rows.as_array()
            .is_some_and(|r| r.iter().any(|r| r["last_error"].is_string()))
    });
    assert!(errored, "no delivery failed");
    let text = on_terminal(&cfg, &["outbox", "list"], 80);
    assert!(text.lines().all(|l| width(l) <= 80), "{text}");
    assert!(text.starts_with("ID  DESTINATION"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("telegram:default"))
        .unwrap_or_else(|| panic!("{text}"));
    let error = &row[row.find("Telegram:").unwrap_or_else(|| panic!("{text}"))..];
    assert!(width(error) >= 40, "the error was cut short:\n{text}");
    assert!(row.contains(" in ") || row.contains(" now "), "{text}");

    // Absolute times on request; into a pipe every column, whole.
    let today = chrono::Local::now().format("%Y-%m-%d").to_string();
    let text = on_terminal(&cfg, &["alerts", "list", "--absolute"], 200);
    assert!(text.contains(&today), "{text}");
    let piped = String::from_utf8(run(&cfg, &["outbox", "list"]).stdout).unwrap();
    let header: Vec<&str> = piped
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "ID",
            "DESTINATION",
            "EVENT",
            "QUEUED",
            "TRIES",
            "NEXT",
            "LAST",
            "ERROR"
        ],
        "{piped}"
    );
    agent.stop();
}
