//! The fakes kept honest: the real clients of SciLog and signal-cli-rest-api, run
//! against `support::scilog` and `support::signal`, must get through them, and what they
//! send must be recorded as what protowatch's own messages are checked for.
//!
//! - SciLog's own Python SDK (`scilog` on PyPI): logs in, finds the logbook with
//!   `get_logbooks`, composes a `LogbookMessage` with HTML, a PNG and a tag, and sends it
//!   (the file uploaded to `/filesnippet/files`, then the paragraph).
//! - `pysignalclirestapi`: reads `/v1/about`, then `send_message` with styled text and a
//!   PNG to a group and to a number.
//!
//! They run in the venv that `.ci/run` makes (`target/ci-venv`, or
//! `$PROTOWATCH_TEST_VENV`). Without it the test says so and passes, unless
//! `PROTOWATCH_REQUIRE_VENV` is set, as `.ci/run` sets it: in CI it never skips.

#![cfg(not(windows))]

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use support::scilog::FakeScilog;
use support::signal::{FakeSignal, group_id};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

/// The venv's interpreter, or `None` (and why) when there is none.
fn venv_python() -> Option<PathBuf> {
    let dir = std::env::var_os("PROTOWATCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv"));
    let python = dir.join("bin/python");
    if python.exists() {
        return Some(python);
    }
    assert!(
        std::env::var_os("PROTOWATCH_REQUIRE_VENV").is_none(),
        "no venv with the real clients at {} (made by .ci/run)",
        dir.display()
    );
    eprintln!(
        "skipped: no venv at {} (run .ci/run, or set PROTOWATCH_TEST_VENV)",
        dir.display()
    );
    None
}

fn run_python(python: &PathBuf, home: &std::path::Path, script: &str, args: &[&str]) {
    let out = Command::new(python)
        .env("HOME", home)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

const SCILOG_SDK: &str = r#"
import sys
from scilog import SciLog
url, password, png = sys.argv[1], sys.argv[2], sys.argv[3]
log = SciLog(url, options={"username": "bl-operator", "password": password, "auto_save_token": False})
books = log.get_logbooks(name="p12345 beamtime")
assert len(books) == 1, books
log.select_logbook(books[0])
msg = log.new()
msg.add_text('<p><mark class="pen-red"><strong>Sample mount failed</strong></mark></p>')
msg.add_file(png)
msg.add_tag(["sample-exchange"])
log.send_logbook_message(msg)
"#;

#[test]
fn scilogs_python_sdk_gets_through_the_fake() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s = FakeScilog::start();
    s.add_user("bl-operator", "pw-sdk");
    s.add_logbook("lb-0001", "p12345 beamtime");
    let png = tmp.path().join("robot.png");
    std::fs::write(&png, PNG).unwrap();
    run_python(
        &python,
        tmp.path(),
        SCILOG_SDK,
        &[&s.url, "pw-sdk", png.to_str().unwrap()],
    );
    assert_eq!(s.logins(), 1);
    let entries = s.entries();
    assert_eq!(entries.len(), 1, "{:?}", s.log());
    let e = &entries[0];
    // What the SDK sends is what protowatch's entries are checked for.
    assert_eq!(e["snippetType"], "paragraph");
    assert_eq!(e["linkType"], "paragraph");
    assert_eq!(e["parentId"], "lb-0001");
    assert_eq!(e["readACL"], json!(["p12345", "bl-staff"]));
    assert_eq!(e["tags"], json!(["sample-exchange"]));
    let files = s.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].data, PNG);
    assert_eq!(files[0].content_type, "image/png");
    assert_eq!(files[0].snippet["fileExtension"], "png");
    let f = &e["files"][0];
    assert_eq!(f["fileId"], files[0].snippet["id"]);
    assert_eq!(f["fileExtension"], "image/png");
    let hash = f["fileHash"].as_str().unwrap();
    assert!(
        e["textcontent"]
            .as_str()
            .unwrap()
            .contains(&format!("<img src=\"\" title=\"{hash}\">")),
        "{e}"
    );
}

const SIGNAL_CLIENT: &str = r#"
import base64, sys
from pysignalclirestapi import SignalCliRestApi
url, account, group, number, png = sys.argv[1:6]
api = SignalCliRestApi(url, account)
api.send_message("**Sample mount failed** retry *now*", ["group." + base64.b64encode(group.encode()).decode()],
                 text_mode="styled", attachments_as_bytes=[open(png, "rb").read()])
api.send_message("to the on-call phone", [number])
"#;

#[test]
fn a_signal_cli_rest_api_client_gets_through_the_fake() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let s = FakeSignal::start("+41791234567");
    s.add_group(&group_id(7), "Beamline ops");
    s.register("+41797654321");
    let png = tmp.path().join("robot.png");
    std::fs::write(&png, PNG).unwrap();
    run_python(
        &python,
        tmp.path(),
        SIGNAL_CLIENT,
        &[
            &s.url,
            "+41791234567",
            &group_id(7),
            "+41797654321",
            png.to_str().unwrap(),
        ],
    );
    let sent = s.sent();
    assert_eq!(sent.len(), 2, "{:?}", s.log());
    assert_eq!(sent[0].group.as_deref(), Some(group_id(7).as_str()));
    assert_eq!(sent[0].text, "Sample mount failed retry now");
    assert_eq!(sent[0].bold(), ["Sample mount failed"]);
    assert_eq!(sent[0].styled("ITALIC"), ["now"]);
    assert_eq!(sent[0].files[0].2, PNG);
    assert_eq!(sent[1].recipients, ["+41797654321"]);
}
