//! The `signal` service with the real binary over both gateways, each a loopback fake
//! that answers and refuses as the real one does (`support::signal`): a protocol error,
//! `send-message` with a PNG and BEC's notify with bold red text reach the group (its
//! id encoded as the gateway wants it) styled; a rate limit then success delivers once;
//! an unknown group and an unregistered number are permanent and named; the probe,
//! `test-notify --service signal`, and config errors with their JSON paths.

#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::signal::{FakeSignal, group_id};
use support::{Agent, append, http, protowatch, wait_until};

const ACCOUNT: &str = "+41791234567";
const ONCALL: &str = "+41797654321";
const API_TOKEN: &str = "api-token-signal-test";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

fn fake() -> FakeSignal {
    let s = FakeSignal::start(ACCOUNT);
    s.add_group(&group_id(7), "Beamline ops");
    s.register(ONCALL);
    s
}

fn config(dir: &Path, signal: Value) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "signal": signal,
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
            "routes": {
                "alarm_major": [{"service": "signal", "scope": "beamline-ops"}],
                "sample_mount_failed": [{"service": "signal", "scope": "beamline-ops"}],
                "message": [{"service": "signal", "scope": "oncall"}],
            },
            "throttle": {"repeat_interval": 0},
            "api": {"listen": "127.0.0.1:0", "token": API_TOKEN},
        }),
    )
}

fn section(s: &FakeSignal, api: &str) -> Value {
    json!({
        "url": s.url, "api": api, "number": ACCOUNT,
        "scopes": {"beamline-ops": {"group": group_id(7)}, "oncall": {"recipients": [ONCALL]}},
        "default_scope": "beamline-ops", "timeout_s": 10,
    })
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}

#[test]
fn both_gateways_deliver_styled_messages_and_files() {
    for api in ["rest", "jsonrpc"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let s = fake();
        if api == "rest" {
            // An older signal-cli-rest-api answers an object, not a list.
            s.old_answers();
        }
        let cfg = config(dir, section(&s, api));
        let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));

        append(
            &dir.join("p/run.log"),
            b"2026-11-20 14:03:12 ERROR 1 [detector] HV trip **not bold** on channel 7\n",
        );
        let sent = s.wait_for(1, Duration::from_secs(20));
        assert_eq!(sent.len(), 1, "{api}: {}", log_of(dir));
        let m = &sent[0];
        assert_eq!(m.api, api);
        assert_eq!(m.group.as_deref(), Some(group_id(7).as_str()), "{api}");
        assert!(
            m.text.contains("HV trip **not bold** on channel 7"),
            "{api}: {}",
            m.text
        );
        assert!(
            m.bold().contains(&"🔴 MAJOR".to_string()),
            "{api}: {:?}",
            m.bold()
        );

        // send-message with a PNG goes to the on-call numbers.
        std::fs::write(dir.join("plot.png"), PNG).unwrap();
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args([
                "send-message",
                "--wait",
                "20",
                "--tag",
                "sample-3",
                "--attach",
            ])
            .arg(dir.join("plot.png"))
            .arg("sample 3 done")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{api}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            log_of(dir)
        );
        let sent = s.wait_for(2, Duration::from_secs(20));
        let m = &sent[1];
        assert_eq!(m.recipients, [ONCALL], "{api}");
        assert!(m.group.is_none());
        assert!(
            m.text.contains("sample 3 done") && m.text.contains("#sample_3"),
            "{}",
            m.text
        );
        assert_eq!(
            m.files,
            [(
                "plot.png".to_string(),
                "image/png".to_string(),
                PNG.to_vec()
            )]
        );

        // BEC's notify: bold red text, a tag, a PNG; one rate limit on the way.
        s.rate_limit(1);
        let body = json!({
            "event": "sample_mount_failed",
            "message": {
                "text": [{"text": "Sample mount failed", "bold": true, "color": "red"},
                         {"text": " Please check the robot *now*."}],
                "tags": ["robot"],
                "attachments": [{"filename": "robot.png",
                                 "data_base64": base64::engine::general_purpose::STANDARD.encode(PNG)}],
            }
        });
        let auth = format!("Bearer {API_TOKEN}");
        let (code, v, _) = http(
            agent.addr,
            "POST",
            "/api/notify",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!(code, 202, "{v}");
        let sent = s.wait_for(3, Duration::from_secs(30));
        assert_eq!(sent.len(), 3, "{api}: {}", log_of(dir));
        let m = &sent[2];
        assert!(
            m.text
                .contains("Sample mount failed Please check the robot *now*."),
            "{api}: {}",
            m.text
        );
        assert!(
            m.bold().contains(&"Sample mount failed".to_string()),
            "{:?}",
            m.bold()
        );
        assert_eq!(m.files[0].0, "robot.png");
        assert_eq!(m.files[0].2, PNG);
        let limited = s.log().iter().filter(|(_, st)| *st == 429).count()
            + usize::from(log_of(dir).contains("rate limiting"));
        assert!(limited >= 1, "{api}: {:?}", s.log());
        std::thread::sleep(Duration::from_millis(500));
        agent.stop();
        assert_eq!(s.sent().len(), 3, "{api}: delivered once");
    }
}

#[test]
fn an_unknown_group_or_number_is_permanent_and_named() {
    for api in ["rest", "jsonrpc"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let s = fake();
        let mut sec = section(&s, api);
        sec["scopes"]["beamline-ops"]["group"] = json!(group_id(9));
        sec["scopes"]["oncall"]["recipients"] = json!(["+41790000000"]);
        let cfg = config(dir, sec);
        for scope in ["beamline-ops", "oncall"] {
            let out = protowatch()
                .arg("--config")
                .arg(&cfg)
                .args(["test-notify", "--service", "signal", "--scope", scope])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(1), "{api} {scope}: {stdout}");
            let named = if scope == "oncall" {
                "+41790000000".to_string()
            } else {
                group_id(9)
            };
            assert!(stdout.contains(&named), "{api} {scope}: {stdout}");
        }
        assert!(s.sent().is_empty());
    }
}

#[test]
fn probe_and_test_notify_on_both_gateways() {
    for api in ["rest", "jsonrpc"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let s = fake();
        let cfg = config(dir, section(&s, api));
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args(["check-config", "--probe"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{api}: {stdout}");
        assert!(stdout.contains("\"Beamline ops\""), "{api}: {stdout}");
        assert!(s.sent().is_empty(), "a probe sends nothing");
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args(["test-notify", "--service", "signal"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{api}: {stdout}");
        assert!(wait_until(Duration::from_secs(5), || s.sent().len() == 2));
        // A group that is not there fails the probe.
        let mut sec = section(&s, api);
        sec["scopes"]["gone"] = json!({"group": group_id(3)});
        let cfg = config(dir, sec);
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args(["check-config", "--probe"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{api}: {stdout}");
        assert!(stdout.contains("group gone"), "{api}: {stdout}");
    }
}

#[test]
fn config_errors_name_their_json_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = config(
        dir,
        json!({"url": "http://127.0.0.1:1", "api": "soap", "number": "0791234567",
               "scopes": {"beamline-ops": {"group": group_id(7), "recipients": [ONCALL]},
                          "oncall": {"group": "not-a-group"}}}),
    );
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for x in [
        "signal.api: expected one of \"rest\", \"jsonrpc\", found \"soap\"",
        "signal.number: expected the account's number in international form",
        "signal.scopes.beamline-ops: set either group or recipients, not both",
        "signal.scopes.oncall.group: expected a signal-cli group id",
    ] {
        assert!(err.contains(x), "missing {x:?} in:\n{err}");
    }
}
