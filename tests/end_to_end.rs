//! The real binary as a process, against the loopback SMTP server and the fake Bot API:
//! `protowatch run` follows a protocol folder and delivers; `send-message` reports each
//! destination's fate in its exit code.

// The SMTP server these tests start is Debian's aiosmtpd, a Linux process that a Windows
// test under Wine cannot start; the Windows build is checked end to end from the Linux
// side instead (tests/windows_exe.rs).
#![cfg(not(windows))]

mod support;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, append, protowatch};

fn config(dir: &Path, smtp_port: u16, tg: &FakeTelegram, extra: Value) -> std::path::PathBuf {
    let mut c = json!({
        "instrument": "IN5",
        "mail": {"server": "127.0.0.1", "port": smtp_port, "tls": "none",
                 "from": "in5@example.org", "recipients": ["ops@example.org"]},
        "telegram": {"bot-id": TOKEN, "channel-id": "-100777", "api-url": tg.url},
        "api": {"listen": "127.0.0.1:0"},
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    support::write_config(dir, &c)
}

struct Agent(Child);

impl Agent {
    fn start(config: &Path) -> Agent {
        let child = protowatch()
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Agent(child)
    }

    #[cfg(unix)]
    fn terminate(mut self) -> (Option<i32>, String) {
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let out = std::mem::replace(&mut self.0, protowatch().arg("--version").spawn().unwrap())
            .wait_with_output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn run_follows_the_protocol_and_notifies_both_services() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("protocol");
    std::fs::create_dir(&proto).unwrap();
    // History present before the first start is skipped (`start: end`).
    append(
        &proto.join("old.log"),
        b"2026-11-20 10:00:00 ERROR old history\n",
    );
    let cfg = config(
        dir.path(),
        smtp.port,
        &tg,
        json!({"watch": [{"path": "protocol/*.log", "poll_interval_ms": 200}]}),
    );
    let agent = Agent::start(&cfg);
    std::thread::sleep(Duration::from_millis(800));

    let log = proto.join("2026-11-21.log");
    append(
        &log,
        b"2026-11-21 14:03:12 INFO [sample] measurement started\n",
    );
    append(
        &log,
        b"2026-11-21 14:03:13 ERROR [detector] HV trip on channel 3\n",
    );
    append(
        &log,
        b"2026-11-21 14:03:14 WARNING 1 [cryo] temperature high\n",
    );
    append(&log, b"2026-11-21 14:03:15 INFO all good\n");
    append(
        &log,
        b"Traceback (most recent call last):\n  File \"scan.py\", line 3, in <module>\n    move(a3)\nMotorError: a3 stuck at 12.5\n",
    );
    let russian = encoding_rs::WINDOWS_1251
        .encode("2026-11-21 14:03:16 ОШИБКА [детектор] нет сигнала\r\n")
        .0;
    append(&log, &russian);

    let mails = smtp.wait_for(4, Duration::from_secs(20));
    let msgs = tg.wait_for(4, Duration::from_secs(20));
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "[IN5] MAJOR: HV trip on channel 3",
            "[IN5] WARNING: temperature high",
            "[IN5] MAJOR: MotorError: a3 stuck at 12.5",
            "[IN5] MAJOR: нет сигнала",
        ]
    );
    assert!(mails.iter().all(|m| m.rcpt_tos == vec!["ops@example.org"]));
    assert!(mails[2].part("text/plain").contains("move(a3)"));
    assert!(mails[3].part("text/html").contains("детектор"));

    assert_eq!(msgs.len(), 4);
    let texts: Vec<&str> = msgs
        .iter()
        .map(|m| m.body["text"].as_str().unwrap())
        .collect();
    assert!(texts[0].contains("HV trip on channel 3") && texts[0].contains("detector"));
    assert!(texts[1].contains("temperature high"));
    assert!(texts[2].contains("<pre>Traceback (most recent call last):"));
    assert!(texts[2].contains("MotorError: a3 stuck at 12.5"));
    assert!(texts[3].contains("нет сигнала"));
    assert!(msgs.iter().all(|m| m.body["chat_id"] == json!(-100777)));
    assert!(texts.iter().all(|t| !t.contains("old history")));

    // Nothing else was sent (no INFO, no history), and a stop is clean.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(smtp.messages().len(), 4);
    assert_eq!(tg.messages().len(), 4);
    #[cfg(unix)]
    {
        let (code, stderr) = agent.terminate();
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("stopped"), "{stderr}");
        assert!(!stderr.contains("TEST-token_abc"), "{stderr}");
    }
    #[cfg(not(unix))]
    drop(agent);
}

#[test]
fn run_keeps_going_through_bad_input() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    // A glob that matches nothing yet, and Telegram refusing the token at first.
    tg.script([Reply::BadRequest("Unauthorized")]);
    let cfg = config(
        dir.path(),
        smtp.port,
        &tg,
        json!({"watch": [{"path": "later/*.log", "poll_interval_ms": 200}]}),
    );
    let _agent = Agent::start(&cfg);
    std::thread::sleep(Duration::from_millis(600));
    let later = dir.path().join("later");
    std::fs::create_dir(&later).unwrap();
    append(&later.join("a.log"), b"ERROR first\n");
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);
    append(&later.join("a.log"), b"ERROR second\n");
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2);
    // The refused message is dropped, the next one goes through.
    let msgs = tg.wait_for(2, Duration::from_secs(10));
    assert_eq!(msgs.len(), 2);
    assert!(msgs[1].body["text"].as_str().unwrap().contains("second"));
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

#[test]
fn send_message_exit_codes() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg, json!({}));

    let (code, err) = send_message(&cfg, &["sample 3 done", "--severity", "REPORT"]);
    assert_eq!(code, Some(0), "{err}");
    // No agent runs for this config: the command says it sends itself.
    assert!(err.contains("sending directly"), "{err}");
    let mails = smtp.wait_for(1, Duration::from_secs(5));
    assert_eq!(mails[0].subject, "[IN5] INFO: sample 3 done");
    assert!(
        tg.messages()[0].body["text"]
            .as_str()
            .unwrap()
            .contains("sample 3 done")
    );

    // stdin
    let mut child = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["send-message", "-", "--event", "beamline_ready"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all("Пучок готов\n".as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        smtp.wait_for(2, Duration::from_secs(5))[1].subject,
        "[IN5] INFO beamline_ready: Пучок готов"
    );

    // Telegram refuses: exit 1, stderr names the destination and Telegram's words.
    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let (code, err) = send_message(&cfg, &["x"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("telegram:default") && err.contains("chat not found"),
        "{err}"
    );
    assert!(!err.contains("mail:default"), "{err}");

    // The SMTP server is down: exit 1.
    let port = smtp.port;
    drop(smtp);
    let (code, err) = send_message(&cfg, &["x"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("mail:default") && err.contains("SMTP"),
        "{err}"
    );
    assert!(!err.contains("TEST-token_abc"));

    // The SMTP server refuses the recipient: exit 1 with its reply.
    let refusing = SmtpServer::start(SmtpOptions {
        reject: true,
        port: Some(port),
        ..SmtpOptions::default()
    });
    let (code, err) = send_message(&cfg, &["x"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("mailbox unavailable"), "{err}");
    assert!(refusing.messages().is_empty());

    // Bad usage and bad config: exit 2.
    let (code, err) = send_message(&cfg, &["x", "--severity", "fatal"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--severity"), "{err}");
    let (code, _) = send_message(&cfg, &["   "]);
    assert_eq!(code, Some(2));
    std::fs::write(&cfg, "{").unwrap();
    let (code, err) = send_message(&cfg, &["x"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid JSON"), "{err}");
}

#[test]
fn outbox_lists_dead_rows_and_retries_them() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("p");
    std::fs::create_dir(&proto).unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        }),
    );
    let outbox = |args: &[&str]| {
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .arg("outbox")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let agent = Agent::start(&cfg);
    std::thread::sleep(Duration::from_millis(600));
    append(&proto.join("a.log"), b"ERROR refused at first\n");
    assert!(support::wait_until(Duration::from_secs(10), || {
        outbox(&["list", "--dead", "--json"])
            .1
            .contains("chat not found")
    }));
    #[cfg(unix)]
    assert_eq!(agent.terminate().0, Some(0));

    let (code, list) = outbox(&["list", "--dead", "--json"]);
    assert_eq!(code, Some(0));
    let rows: Vec<Value> = serde_json::from_str(&list).unwrap();
    let row = &rows[0];
    assert_eq!(row["destination"], "telegram:default");
    assert_eq!(row["event"], "alarm_major");
    assert_eq!(row["dead"], true);
    let (_, table) = outbox(&["list"]);
    assert!(
        table.contains("dead") && table.contains("chat not found"),
        "{table}"
    );

    assert_eq!(outbox(&["retry", "999999"]).0, Some(1));
    let id = row["id"].as_i64().unwrap().to_string();
    assert_eq!(outbox(&["retry", &id]).0, Some(0));
    let _agent = Agent::start(&cfg);
    let msgs = tg.wait_for(2, Duration::from_secs(10));
    assert_eq!(msgs.len(), 2, "the refused try and the retried one");
    assert!(
        msgs[1].body["text"]
            .as_str()
            .unwrap()
            .contains("refused at first")
    );
    assert!(support::wait_until(Duration::from_secs(10), || outbox(&[
        "list", "--json"
    ])
    .1
    .trim()
        == "[]"));
}
