//! The `scilog` service with the real binary against a loopback SciLog that answers and
//! refuses as SciLog's server does (`support::scilog`): protocol errors, `send-message`
//! and `/api/notify` as paragraphs in the scope's logbook — logged in, the logbook's
//! ACLs copied, BEC's styles, tags, the PNG uploaded and referenced; a token that
//! expires between messages; `check-config --probe`, `test-notify --service scilog`, and
//! config errors with their JSON paths. The SDK check at the end runs SciLog's own
//! Python client against the same fake.

#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::scilog::FakeScilog;
use support::{Agent, append, http, protowatch, wait_until};

const API_TOKEN: &str = "api-token-scilog-test";
const PASSWORD: &str = "Sci-l0g-PASSWORD-77";
/// The first bytes of a PNG file and a little more: an image by name and by content.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

fn fake() -> FakeScilog {
    let s = FakeScilog::start();
    s.add_user("bl-operator", PASSWORD);
    s.add_logbook("lb-0001", "p12345 beamtime");
    s.add_logbook("lb-0002", "commissioning");
    s
}

fn config(dir: &Path, scilog: Value, routes: Option<Value>) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let mut c = json!({
        "instrument": "IN5",
        "scilog": scilog,
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
        "throttle": {"repeat_interval": 0},
        "api": {"listen": "127.0.0.1:0", "token": API_TOKEN},
    });
    if let Some(r) = routes {
        c["routes"] = r;
    }
    support::write_config(dir, &c)
}

fn section(s: &FakeScilog) -> Value {
    json!({
        "url": s.url,
        "user": "bl-operator",
        "password_file": "scilog-password.txt",
        "scopes": {"default": {"logbook": "lb-0001"}, "commissioning": {"logbook": "lb-0002"}},
        "tags": ["protowatch", "IN5"],
        "timeout_s": 10,
    })
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
}

fn text(entry: &Value) -> &str {
    entry["textcontent"].as_str().unwrap_or("")
}

#[test]
fn errors_messages_and_bec_notifications_become_logbook_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = fake();
    std::fs::write(dir.join("scilog-password.txt"), format!("{PASSWORD}\n")).unwrap();
    let cfg = config(dir, section(&s), None);
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));

    // A protocol error: the implicit routing sends alarms to the default scope.
    append(
        &dir.join("p/run.log"),
        b"2026-11-20 14:03:12 ERROR 1 [detector] HV <trip> & reset on channel 7\n",
    );
    let entries = s.wait_for_entries(1, Duration::from_secs(20));
    assert_eq!(entries.len(), 1, "{}", log_of(dir));
    let e = &entries[0];
    assert_eq!(e["snippetType"], "paragraph");
    assert_eq!(e["linkType"], "paragraph");
    assert_eq!(e["parentId"], "lb-0001");
    // The logbook's ACLs, copied as the SDK does.
    assert_eq!(e["readACL"], json!(["p12345", "bl-staff"]));
    assert_eq!(e["createACL"], json!(["p12345"]));
    assert_eq!(e["tags"], json!(["protowatch", "IN5"]));
    assert!(
        text(e).contains("HV &lt;trip&gt; &amp; reset on channel 7"),
        "{}",
        text(e)
    );
    assert!(text(e).contains("<mark class=\"pen-red\"><strong>MAJOR</strong></mark>"));
    assert_eq!(s.logins(), 1);

    // send-message with a tag and a PNG, through the agent.
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
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        log_of(dir)
    );
    let entries = s.wait_for_entries(2, Duration::from_secs(20));
    let e = &entries[1];
    assert_eq!(e["tags"], json!(["sample-3", "protowatch", "IN5"]));
    let files = s.files();
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(f.data, PNG);
    assert_eq!(f.filename, "plot.png");
    assert_eq!(f.content_type, "image/png");
    assert_eq!(f.snippet["fileExtension"], "png");
    assert_eq!(f.snippet["readACL"], json!(["p12345", "bl-staff"]));
    let refs = e["files"].as_array().unwrap();
    assert_eq!(refs.len(), 1);
    assert_eq!(refs[0]["fileId"], f.snippet["id"]);
    assert_eq!(refs[0]["accessHash"], f.snippet["accessHash"]);
    assert_eq!(refs[0]["fileExtension"], "image/png");
    let hash = refs[0]["fileHash"].as_str().unwrap();
    assert!(
        text(e).contains(&format!(
            "<figure class=\"image image_resized\"><img src=\"\" title=\"{hash}\"></figure>"
        )),
        "{}",
        text(e)
    );

    // BEC's notify through the API: bold red text, tags, a PNG as bytes; routed to the
    // commissioning logbook. The token expires before it: logged in again, nothing lost.
    s.expire_tokens();
    let body = json!({
        "event": "sample_mount_failed",
        "message": {
            "text": [{"text": "Sample mount failed", "bold": true, "color": "red"},
                     {"text": " Please check the robot status before retrying."}],
            "tags": ["sample-exchange", "robot"],
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
    let entries = s.wait_for_entries(3, Duration::from_secs(20));
    assert_eq!(entries.len(), 3, "{}", log_of(dir));
    let e = &entries[2];
    assert!(
        text(e).contains(
            "<mark class=\"pen-red\"><strong>Sample mount failed</strong></mark> Please check the robot status"
        ),
        "{}",
        text(e)
    );
    assert_eq!(
        e["tags"],
        json!(["sample-exchange", "robot", "protowatch", "IN5"])
    );
    assert_eq!(s.files().len(), 2);
    assert_eq!(s.files()[1].data, PNG);
    assert_eq!(s.logins(), 2, "logged in again after the expiry");
    let refused = s
        .log()
        .iter()
        .filter(|(_, _, status)| *status == 401)
        .count();
    assert_eq!(refused, 1, "{:?}", s.log());
    agent.stop();
    assert_eq!(s.entries().len(), 3, "nothing repeated");
}

#[test]
fn a_failing_server_is_retried_and_a_refused_token_is_permanent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = fake();
    s.fail_entries(&[503]);
    let token = s.issue_token();
    let mut sec = section(&s);
    let o = sec.as_object_mut().unwrap();
    o.remove("user");
    o.remove("password_file");
    o.insert("token".into(), json!({"env": "PW_TEST_SCILOG_TOKEN"}));
    let cfg = config(dir, sec, None);
    let mut cmd = protowatch();
    cmd.env("PW_TEST_SCILOG_TOKEN", &token)
        .arg("--config")
        .arg(&cfg)
        .arg("run");
    let agent = Agent::start_command(cmd, &cfg, &dir.join("agent.log"));
    append(&dir.join("p/run.log"), b"ERROR vacuum lost\n");
    let entries = s.wait_for_entries(1, Duration::from_secs(20));
    assert_eq!(entries.len(), 1, "{}", log_of(dir));
    assert_eq!(s.logins(), 0, "a configured token needs no login");

    // The token expires: only a new one helps; the row is kept as dead, named.
    s.expire_tokens();
    append(&dir.join("p/run.log"), b"ERROR vacuum lost again\n");
    assert!(
        wait_until(Duration::from_secs(20), || log_of(dir)
            .contains("kept as dead")),
        "{}",
        log_of(dir)
    );
    agent.stop();
    let out = protowatch()
        .env("PW_TEST_SCILOG_TOKEN", &token)
        .arg("--config")
        .arg(&cfg)
        .args(["outbox", "list", "--dead"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("jwt expired"), "{listed}");
    assert!(!listed.contains(&token), "{listed}");
    let log = log_of(dir);
    assert!(!log.contains(&token), "{log}");
}

#[test]
fn probe_and_test_notify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let s = fake();
    std::fs::write(dir.join("scilog-password.txt"), PASSWORD).unwrap();
    let cfg = config(dir, section(&s), None);
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["check-config", "--probe"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("login bl-operator"), "{stdout}");
    assert!(
        stdout.contains("logbook default (lb-0001)") && stdout.contains("\"p12345 beamtime\""),
        "{stdout}"
    );
    assert!(
        s.entries().is_empty() && s.files().is_empty(),
        "a probe writes nothing"
    );

    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args([
            "test-notify",
            "--service",
            "scilog",
            "--scope",
            "commissioning",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("scilog:commissioning") && stdout.contains("logbook lb-0002"),
        "{stdout}"
    );
    let entries = s.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["parentId"], "lb-0002");
    assert!(text(&entries[0]).contains("protowatch test message"));

    // A logbook that does not exist fails its probe step, and a wrong password the login.
    let mut bad = section(&s);
    bad["scopes"]["gone"] = json!({"logbook": "lb-9999"});
    let cfg = config(dir, bad, None);
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["check-config", "--probe"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("logbook gone (lb-9999)") && stdout.contains("ENTITY_NOT_FOUND")
            || stdout.contains("Entity not found"),
        "{stdout}"
    );
    std::fs::write(dir.join("scilog-password.txt"), "wrong").unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["check-config", "--probe"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Invalid email or password"), "{stdout}");
}

#[test]
fn config_errors_name_their_json_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let check = |scilog: Value| -> String {
        let cfg = config(dir, scilog, None);
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .arg("check-config")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = check(json!({"url": "http://127.0.0.1:1/api/v1", "token": "t",
                           "scopes": {"default": {}}}));
    assert!(
        err.contains("scilog.scopes.default.logbook: missing (required)"),
        "{err}"
    );
    let err = check(json!({"url": "http://127.0.0.1:1/api/v1", "password": "pw",
                           "scopes": {"default": {"logbook": "x"}}}));
    assert!(err.contains("scilog.user: missing"), "{err}");
    let err = check(
        json!({"url": "ftp://h/api", "token": "t", "password": "p", "user": "u",
                           "scopes": {"default": {"logbook": "x", "book": "y"}}}),
    );
    assert!(
        err.contains("scilog.url: expected an http:// or https:// URL"),
        "{err}"
    );
    assert!(err.contains("scilog.token: set one way to log in"), "{err}");
    assert!(
        err.contains("scilog.scopes.default.book: unknown key"),
        "{err}"
    );
    // A route to a scope that is not there.
    let cfg = config(
        dir,
        json!({"url": "http://127.0.0.1:1/api/v1", "token": "t",
               "scopes": {"default": {"logbook": "x"}}}),
        Some(json!({"alarm_major": [{"service": "scilog", "scope": "beamline"}]})),
    );
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("routes.alarm_major[0].scope: unknown scilog scope \"beamline\""),
        "{err}"
    );
}
