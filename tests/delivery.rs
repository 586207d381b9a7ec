//! Delivery through the durable outbox, with the real binary against the loopback SMTP
//! server (aiosmtpd) and the fake Bot API: messages handed to a running agent, files
//! attached, outages survived across a restart, Telegram's 429 and 5xx.

// The SMTP server is Debian's aiosmtpd, a Linux process; see tests/windows_exe.rs for the
// Windows build.
#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Agent, FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, append, protowatch, wait_until,
};

fn config(dir: &Path, smtp_port: u16, tg: &FakeTelegram) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "mail": {"server": "127.0.0.1", "port": smtp_port, "tls": "none",
                     "from": "in5@example.org", "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100777", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    )
}

fn send_message(config: &Path, args: &[&str]) -> (Option<i32>, String) {
    let out = protowatch()
        .arg("--config")
        .arg(config)
        .arg("send-message")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A PNG header and some bytes: enough for every party to call it a PNG.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR-plot-bytes-\x00\x01\x02\xff";

#[test]
fn send_message_goes_through_the_running_agent_with_its_files() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);
    let plot = dir.path().join("plot.png");
    std::fs::write(&plot, PNG).unwrap();
    let csv = dir.path().join("counts.csv");
    std::fs::write(&csv, "channel,counts\n3,1200\n").unwrap();
    let agent = Agent::start(&cfg);

    let (code, err) = send_message(
        &cfg,
        &[
            "sample 3 done",
            "--wait",
            "30",
            "--attach",
            plot.to_str().unwrap(),
            "--attach",
            csv.to_str().unwrap(),
            "--tag",
            "run42",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    // The agent answered: both deliveries were made before the command returned.
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[IN5] INFO: sample 3 done");
    assert!(mails[0].part("text/plain").contains("#run42"));
    let files: Vec<(&str, &str, &[u8])> = mails[0]
        .attachments
        .iter()
        .map(|(n, t, b)| (n.as_str(), t.as_str(), b.as_slice()))
        .collect();
    assert_eq!(
        files,
        vec![
            ("plot.png", "image/png", PNG),
            (
                "counts.csv",
                "text/csv",
                b"channel,counts\n3,1200\n".as_slice()
            ),
        ]
    );
    let methods: Vec<String> = tg.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["sendmessage", "sendphoto", "senddocument"]);
    let reqs = tg.requests();
    let text = reqs[0].body["text"].as_str().unwrap();
    assert!(
        text.contains("sample 3 done") && text.contains("#run42"),
        "{text}"
    );
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(contains(&reqs[1].raw, PNG));
    assert!(contains(&reqs[1].raw, b"plot.png"));
    assert!(contains(&reqs[2].raw, b"3,1200"));
    assert!(contains(&reqs[2].raw, b"counts.csv"));

    // The same text again within the repeat interval is counted, not sent again.
    let (code, err) = send_message(&cfg, &["sample 3 done", "--wait", "30"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("repeat"), "{err}");
    // Another text is news.
    let (code, err) = send_message(&cfg, &["sample 4 done", "--wait", "30"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(smtp.messages().len(), 2);
    assert!(
        tg.messages()[1].body["text"]
            .as_str()
            .unwrap()
            .contains("sample 4 done")
    );

    // Refused by Telegram: exit 1, with Telegram's words; mail still went out.
    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let (code, err) = send_message(&cfg, &["sample 5 done", "--wait", "30"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("telegram:default") && err.contains("chat not found"),
        "{err}"
    );
    assert_eq!(smtp.messages().len(), 3);

    // A file over 5 MB is refused before anything is sent.
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 5 * 1024 * 1024 + 1]).unwrap();
    let (code, err) = send_message(&cfg, &["too big", "--attach", big.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("big.bin") && err.contains("over the limit"),
        "{err}"
    );

    // One agent per state folder.
    let second = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .output()
        .unwrap();
    assert_ne!(second.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another protowatch agent"), "{stderr}");
    agent.stop();
    assert_eq!(smtp.messages().len(), 3);
}

/// The words of every line shown in these mails' text, in order.
fn shown_words(mails: &[support::Mail]) -> Vec<String> {
    let mut out = Vec::new();
    for m in mails {
        let text = m.part("text/plain");
        for rest in text.split("outage line ").skip(1) {
            out.push(rest.chars().take(4).collect());
        }
    }
    out
}

#[test]
fn smtp_outage_with_a_restart_in_the_middle_loses_nothing_and_keeps_order() {
    let tg = FakeTelegram::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, &tg);
    let log = dir.path().join("p/run.log");
    let words: Vec<String> = [
        "alfa", "brav", "char", "delt", "echo", "foxt", "golf", "hote",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let line = |w: &str| format!("ERROR [det] outage line {w} failed\n");

    // The mail server is down from the start.
    let agent = Agent::start(&cfg);
    for w in &words[..5] {
        append(&log, line(w).as_bytes());
    }
    // Telegram got them; mail is queued with its error.
    tg.wait_for(5, Duration::from_secs(10));
    let outbox = || {
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args(["outbox", "list", "--json"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(wait_until(Duration::from_secs(10), || outbox().contains("SMTP")));
    // Restarted in the middle of the outage; more lines while it is down.
    agent.stop();
    append(&log, line(&words[5]).as_bytes());
    let agent = Agent::start(&cfg);
    for w in &words[6..] {
        append(&log, line(w).as_bytes());
    }
    std::thread::sleep(Duration::from_millis(1500));
    let smtp = SmtpServer::start(SmtpOptions {
        port: Some(port),
        ..SmtpOptions::default()
    });
    assert!(
        wait_until(Duration::from_secs(90), || shown_words(&smtp.messages())
            .len()
            >= 8),
        "{:?}\n{}",
        shown_words(&smtp.messages()),
        outbox()
    );
    std::thread::sleep(Duration::from_millis(500));
    // Everything, once, in order.
    assert_eq!(shown_words(&smtp.messages()), words);
    assert!(
        wait_until(Duration::from_secs(5), || outbox().trim() == "[]"),
        "{}",
        outbox()
    );
    let texts: Vec<String> = tg
        .messages()
        .iter()
        .map(|m| m.body["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(texts.len(), 8, "{texts:?}");
    agent.stop();
}

#[test]
fn telegram_429_is_waited_out_exactly_and_5xx_retried() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    std::fs::create_dir(dir.path().join("p")).unwrap();
    tg.script([
        Reply::TooManyRequests { retry_after: 3 },
        Reply::ServerError,
    ]);
    let _agent = Agent::start(&cfg);
    append(
        &dir.path().join("p/a.log"),
        b"ERROR rate limited at first\n",
    );
    assert!(wait_until(Duration::from_secs(30), || tg.requests().len() >= 3));
    let reqs = tg.requests();
    // The wait Telegram asked for, not less (and not much more).
    let waited = reqs[1].at - reqs[0].at;
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The 500 was retried after a backoff.
    assert!(reqs[2].at - reqs[1].at >= Duration::from_millis(700));
    std::thread::sleep(Duration::from_millis(500));
    let texts: Vec<Value> = tg
        .requests()
        .iter()
        .map(|r| r.body["text"].clone())
        .collect();
    assert_eq!(texts.len(), 3, "delivered once: {texts:?}");
    assert!(
        texts
            .iter()
            .all(|t| t.as_str().unwrap().contains("rate limited at first"))
    );
}

#[test]
fn a_failing_detector_is_one_alert_its_repeats_one_summary_and_dismissal_resets_it() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "throttle": {"repeat_interval": "4s"},
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let alerts = |args: &[&str]| {
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .arg("alerts")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let _agent = Agent::start(&cfg);
    let log = dir.path().join("p/a.log");
    let lines: String = (0..50)
        .map(|i| format!("ERROR [det] HV trip on channel 3 after {i} ms\n"))
        .collect();
    append(&log, lines.as_bytes());

    // At once: the first occurrence alone.
    let first = tg.wait_for(1, Duration::from_secs(10));
    assert!(
        first[0].body["text"]
            .as_str()
            .unwrap()
            .contains("after 0 ms")
    );
    let (_, list) = alerts(&["list", "--json"]);
    let all: Vec<Value> = serde_json::from_str(&list).unwrap();
    let alert = &all[0];
    assert_eq!(alert["times_seen"], 50, "{list}");
    assert_eq!(alert["event"], "alarm_major");
    assert_eq!(all.len(), 1, "one alert: {list}");

    // When the interval ends: the 49 repeats in one message.
    let msgs = tg.wait_for(2, Duration::from_secs(10));
    let summary = msgs[1].body["text"].as_str().unwrap();
    assert!(summary.contains("repeated 49 times since"), "{summary}");
    assert!(
        summary.contains("after 49 ms"),
        "the latest occurrence: {summary}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(tg.messages().len(), 2);

    // Dismissed: the next occurrence is news again, at once.
    let id = alert["id"].as_i64().unwrap().to_string();
    assert_eq!(alerts(&["dismiss", &id]).0, Some(0));
    assert_eq!(alerts(&["list"]).1.lines().nth(1), Some("(none)"));
    std::thread::sleep(Duration::from_millis(1500));
    append(&log, b"ERROR [det] HV trip on channel 3 after 7 ms\n");
    let msgs = tg.wait_for(3, Duration::from_secs(2));
    assert_eq!(msgs.len(), 3, "sent at once after the dismissal");
    let text = msgs[2].body["text"].as_str().unwrap();
    assert!(
        text.contains("after 7 ms") && !text.contains("repeated"),
        "{text}"
    );
    let (_, list) = alerts(&["list", "--json"]);
    let all: Vec<Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(all[0]["times_seen"], 1, "{list}");
    assert_eq!(alerts(&["dismiss", "999999"]).0, Some(1));
}

#[test]
fn a_running_agent_applies_an_edited_config_and_keeps_its_own_when_the_edit_is_invalid() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let base = json!({
        "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        "api": {"listen": "127.0.0.1:0"},
    });
    let cfg = support::write_config(dir.path(), &base);
    let _agent = Agent::start(&cfg);
    let log = dir.path().join("p/a.log");
    // Without routes, a new scan is not worth a ping.
    append(&log, b"INFO Measurement started: sample one\n");
    std::thread::sleep(Duration::from_millis(1000));
    assert!(tg.messages().is_empty());

    // The operator adds a chat and routes scans to it.
    let mut edited = base.clone();
    edited["telegram"]["scopes"] = json!({"scans": "-200"});
    edited["routes"] = json!({
        "new_scan": [{"service": "telegram", "scope": "scans"}],
        "alarm_major": [{"service": "telegram", "scope": "default"}],
    });
    support::write_config(dir.path(), &edited);
    std::thread::sleep(Duration::from_millis(2500));
    append(&log, b"INFO Measurement started: sample two\n");
    let msgs = tg.wait_for(1, Duration::from_secs(10));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body["chat_id"], json!(-200));
    assert!(
        msgs[0].body["text"]
            .as_str()
            .unwrap()
            .contains("sample two")
    );

    // A broken edit changes nothing: the routes above stay in force.
    std::fs::write(&cfg, "{\"telegram\": ").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    append(
        &log,
        b"INFO Measurement started: sample three\nERROR still routed\n",
    );
    let msgs = tg.wait_for(3, Duration::from_secs(10));
    assert_eq!(msgs.len(), 3);
    // Two chats, two workers: between them, no order.
    let mut got: Vec<(i64, bool)> = msgs[1..]
        .iter()
        .map(|m| {
            let text = m.body["text"].as_str().unwrap();
            (
                m.body["chat_id"].as_i64().unwrap(),
                text.contains("sample three"),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(-200, true), (-100, false)]);
}

#[test]
fn routes_enable_reaches_a_running_agent() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let _agent = Agent::start(&cfg);
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["routes", "enable", "new_scan", "--service", "telegram"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(Duration::from_millis(2500));
    let log = dir.path().join("p/a.log");
    append(
        &log,
        b"INFO Measurement started: sample four\nERROR still an alarm\n",
    );
    let msgs = tg.wait_for(2, Duration::from_secs(10));
    let texts: Vec<&str> = msgs
        .iter()
        .map(|m| m.body["text"].as_str().unwrap())
        .collect();
    assert!(texts[0].contains("sample four"), "{texts:?}");
    assert!(texts[1].contains("still an alarm"), "{texts:?}");
}

/// `send-message --wait` reports every destination: the one delivered as well as the one
/// still queued (with the service's last answer), not only what is left to do.
#[test]
fn send_message_wait_reports_every_destination() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("p")).unwrap();
    // Nothing listens where the Bot API should be: the agent keeps the message queued.
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "instrument": "IN5",
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "from": "in5@example.org", "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100777",
                         "api-url": format!("http://127.0.0.1:{}", free_port())},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let agent = Agent::start(&cfg);

    let (code, err) = send_message(&cfg, &["beam is back", "--wait", "5"]);
    // Queued is not refused: the agent keeps trying, so the script must not send again.
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("mail:default: delivered"), "{err}");
    let queued = err
        .lines()
        .find(|l| l.contains("telegram:default: queued"))
        .unwrap_or_else(|| panic!("no line for telegram:default in:\n{err}"));
    assert!(queued.contains("last error: Telegram:"), "{queued}");
    assert_eq!(smtp.messages().len(), 1);
    agent.stop();
}

/// At the default log level the journal says when an event is queued and for whom, once
/// per event: the repeats of a burst are counted, not logged.
#[test]
fn an_event_handed_to_the_outbox_is_one_info_line() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    let protocol = dir.path().join("p/run-7.log");
    append(&protocol, b"2026-11-20 14:00:00 INFO scan started\n");
    append(
        &protocol,
        b"2026-11-20 14:00:01 ERROR [hv] HV trip\n2026-11-20 14:00:02 ERROR [hv] HV trip\n",
    );
    assert_eq!(smtp.wait_for(1, Duration::from_secs(30)).len(), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" event ")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("INFO")
            && lines[0].ends_with(
                "event alarm_major 'HV trip' from run-7.log:2 → mail:default, telegram:default"
            ),
        "{text}"
    );
    agent.stop();
}
