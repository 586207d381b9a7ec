//! The hints `protowatch check-config` gives for the two slips made most when the file
//! is edited by hand: a Windows path with single backslashes, and a key spelled a
//! little wrong — through the real binary, as the operator reads them.

mod support;

use std::path::Path;

use support::protowatch;

/// `check-config` on `text`: its exit code and what it wrote to stderr.
fn check(dir: &Path, text: &str) -> (Option<i32>, String) {
    let path = dir.join("config.json");
    std::fs::write(&path, text).unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_windows_path_with_single_backslashes_is_shown_as_json_wants_it() {
    let dir = tempfile::tempdir().unwrap();
    let text = "{\n  \"telegram\": {\"bot-id\": \"1:a\", \"channel-id\": 5},\n  \"watch\": [{\"path\": \"C:\\Sonix\\protocol\\*.log\"}]\n}\n";
    let (code, err) = check(dir.path(), text);
    assert_eq!(code, Some(2), "{err}");
    // The hint stands on the line under the position it explains.
    let lines: Vec<&str> = err.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("config.json:3:") && l.ends_with(": invalid JSON: invalid escape"))
        .unwrap_or_else(|| panic!("no position of the escape: {err}"));
    assert_eq!(
        lines.get(at + 1).copied(),
        Some(
            r#"protowatch: hint: in JSON a backslash is written twice: "C:\\Sonix\\protocol\\*.log" (or use forward slashes: "C:/Sonix/protocol/*.log")"#
        ),
        "{err}"
    );

    // Another syntax error gets no hint.
    let (code, err) = check(dir.path(), "{\"mail\": {\"server\": \"s\",}}");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("invalid JSON") && !err.contains("hint"),
        "{err}"
    );
}

#[test]
fn a_misspelt_key_is_named_with_the_key_it_is_near() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"mail": {"server": "s", "recipents": ["a@example.org"], "colour": 1},
                   "wacth": [],
                   "watch": [{"path": "p/*.log", "encodng": "utf-8"}]}"#;
    let (code, err) = check(dir.path(), text);
    assert_eq!(code, Some(2), "{err}");
    for expect in [
        "config.json: mail.recipents: unknown key \"recipents\"; did you mean \"recipients\"? known keys here: user, password,",
        "config.json: wacth: unknown key \"wacth\"; did you mean \"watch\"? known keys here: instrument,",
        "config.json: watch[0].encodng: unknown key \"encodng\"; did you mean \"encoding\"? known keys here: path, encoding,",
        // Nothing near: the list alone, as before.
        "config.json: mail.colour: unknown key \"colour\"; known keys here: user,",
    ] {
        assert!(err.contains(expect), "missing {expect:?} in:\n{err}");
    }
}

#[test]
fn the_old_bots_keys_are_no_typos() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{ "mail": { "user": "sonix-bot", "password": "pw", "port": "25", "server": "smtp.example.org",
            "recipients": "a@example.org" },
  "telegram": { "bot-id": "123456:ABCdef", "channel-id": -1001234567890 } }"#;
    let (code, err) = check(dir.path(), text);
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains("did you mean"), "{err}");
}
