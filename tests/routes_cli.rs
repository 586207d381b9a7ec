//! `protowatch routes …` on real config files written by hand: each of BEC's rules, and
//! every edit checked byte for byte — the operator's layout (odd indentation, CRLF, a BOM,
//! keys in any order, the old bot's format) survives outside the changed part, a no-op or
//! an error leaves the file untouched, and its permissions survive a rewrite.

mod support;

use std::path::{Path, PathBuf};

use protowatch::config::{Config, Destination, Service};
use protowatch::routing::Router;
use serde_json::Value;
use support::protowatch;

/// `config.json` in a fresh folder with exactly these bytes.
fn setup(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn routes(path: &Path, args: &[&str]) -> Out {
    let out = protowatch()
        .arg("--config")
        .arg(path)
        .arg("routes")
        .args(args)
        .output()
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ok(path: &Path, args: &[&str]) -> String {
    let out = routes(path, args);
    assert_eq!(out.code, Some(0), "{args:?}: {}{}", out.stdout, out.stderr);
    out.stdout
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// `before` with its one occurrence of `old` replaced by `new`.
fn replaced(before: &str, old: &str, new: &str) -> String {
    assert_eq!(before.matches(old).count(), 1, "{old:?} once in {before:?}");
    before.replacen(old, new, 1)
}

fn dest(service: Service, scope: &str) -> Destination {
    Destination {
        service,
        scope: scope.into(),
    }
}

fn router(path: &Path) -> Router {
    Router::new(&Config::load(path).unwrap())
}

/// The file's identity and content: a rewrite with the same bytes would still change
/// the inode (a rename), so this tells "untouched" from "written again".
#[derive(Debug, PartialEq)]
struct Snapshot {
    bytes: Vec<u8>,
    #[cfg(unix)]
    inode: u64,
    modified: std::time::SystemTime,
}

fn snapshot(path: &Path) -> Snapshot {
    let meta = std::fs::metadata(path).unwrap();
    Snapshot {
        bytes: std::fs::read(path).unwrap(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
        modified: meta.modified().unwrap(),
    }
}

/// The old bot's file, as it was written.
const LEGACY: &str = r#"{ "mail": { "user": "sonix-bot", "password": "pw-legacy-42", "port": 25, "server": "smtp.example.org",
            "recipients": ["a@example.org", "b@example.org"] },
  "telegram": { "bot-id": "123456:ABCdef", "channel-id": "-1001234567890" } }"#;

/// Three-space indentation, spaces before colons, routes first, keys in no usual order.
const ODD: &str = r#"{
   "routes" : {
      "alarm_major" : [ {"scope": "ops", "service": "telegram"} ],
      "message": [
         {"service":"mail"}
      ]
   },
   "telegram" : {"channel-id": -100123, "bot-id": "123456:ABC-def",
                 "scopes": {"ops": "@sonix_ops"}},
   "mail": {"server": "smtp.example.org", "recipients": ["a@example.org"],
            "scopes": {"night": ["n@example.org"]}},
   "instrument": "IN5"
}
"#;

#[test]
fn list_shows_the_implicit_routing_and_the_scopes() {
    let (_dir, path) = setup(LEGACY);
    let out = ok(&path, &["list"]);
    assert!(
        out.contains("has no \"routes\": the implicit routing applies"),
        "{out}"
    );
    for line in [
        "alarm_warning    mail:default, telegram:default",
        "alarm_minor      mail:default, telegram:default",
        "alarm_major      mail:default, telegram:default",
        "scan_interlock   mail:default, telegram:default",
        "message          mail:default, telegram:default",
        "new_scan         (nothing)",
        "scan_completed   (nothing)",
        "mail          scopes: default; default scope: default",
        "telegram      scopes: default; default scope: default",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
    assert!(!out.contains("pw-legacy-42") && !out.contains("ABCdef"));

    let v: Value = serde_json::from_str(&ok(&path, &["list", "--json"])).unwrap();
    assert_eq!(v["implicit"], true);
    assert_eq!(
        v["routes"]["alarm_major"],
        serde_json::json!(["mail:default", "telegram:default"])
    );
    assert_eq!(v["routes"]["new_scan"], serde_json::json!([]));
    assert_eq!(
        v["other_events"],
        serde_json::json!(["mail:default", "telegram:default"])
    );
    assert_eq!(v["services"]["mail"]["default_scope"], "default");
    assert_eq!(
        v["services"]["telegram"]["scopes"],
        serde_json::json!(["default"])
    );
}

#[test]
fn list_shows_explicit_routes() {
    let (_dir, path) = setup(ODD);
    let out = ok(&path, &["list"]);
    for line in [
        "routes of ",
        "alarm_major      telegram:ops",
        "message          mail:default",
        "alarm_minor      (nothing)",
        "any other event  (nothing)",
        "telegram      scopes: default, ops; default scope: default",
        "mail          scopes: default, night; default scope: default",
    ] {
        assert!(out.contains(line), "{line:?} in:\n{out}");
    }
    let v: Value = serde_json::from_str(&ok(&path, &["list", "--json"])).unwrap();
    assert_eq!(v["implicit"], false);
    assert_eq!(
        v["routes"]["alarm_major"],
        serde_json::json!(["telegram:ops"])
    );
    assert_eq!(v["other_events"], serde_json::json!([]));
}

#[test]
fn enable_adds_a_destination_in_the_files_own_layout() {
    let (_dir, path) = setup(ODD);
    // A one-line list stays on one line.
    let out = ok(
        &path,
        &[
            "enable",
            "alarm_major",
            "--service",
            "mail",
            "--scope",
            "night",
        ],
    );
    assert!(out.contains("enabled alarm_major → mail:night"), "{out}");
    assert!(
        out.contains("alarm_major now goes to: telegram:ops, mail:night"),
        "{out}"
    );
    let step1 = replaced(
        ODD,
        r#"[ {"scope": "ops", "service": "telegram"} ]"#,
        r#"[ {"scope": "ops", "service": "telegram"}, {"service": "mail", "scope": "night"} ]"#,
    );
    assert_eq!(read(&path), step1);

    // A list written one entry per line gets one more line; no --scope: the default scope.
    ok(&path, &["enable", "message", "--service", "telegram"]);
    let step2 = replaced(
        &step1,
        "         {\"service\":\"mail\"}\n",
        "         {\"service\":\"mail\"},\n         {\"service\": \"telegram\", \"scope\": \"default\"}\n",
    );
    assert_eq!(read(&path), step2);

    // A new event, custom name and all: a new member after the last, indented like it.
    ok(
        &path,
        &[
            "enable",
            "vacuum \"pump\" é",
            "--service",
            "telegram",
            "--scope",
            "ops",
        ],
    );
    let step3 = replaced(
        &step2,
        "      ]\n   },\n",
        "      ],\n      \"vacuum \\\"pump\\\" é\": [\n         {\"service\": \"telegram\", \"scope\": \"ops\"}\n      ]\n   },\n",
    );
    assert_eq!(read(&path), step3);

    let r = router(&path);
    assert_eq!(
        r.route("alarm_major"),
        [dest(Service::Telegram, "ops"), dest(Service::Mail, "night")]
    );
    assert_eq!(
        r.route("message"),
        [
            dest(Service::Mail, "default"),
            dest(Service::Telegram, "default")
        ]
    );
    assert_eq!(
        r.route("vacuum \"pump\" é"),
        [dest(Service::Telegram, "ops")]
    );
}

#[test]
fn the_first_change_writes_out_the_implicit_routing() {
    let (_dir, path) = setup(LEGACY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = ok(&path, &["enable", "new_scan", "--service", "telegram"]);
    assert!(out.contains("enabled new_scan → telegram:default"), "{out}");
    assert!(
        out.contains("had no \"routes\": wrote out the implicit routing first"),
        "{out}"
    );
    let pair = "[\n      {\"service\": \"mail\", \"scope\": \"default\"},\n      {\"service\": \"telegram\", \"scope\": \"default\"}\n    ]";
    let expected = replaced(
        LEGACY,
        "\"-1001234567890\" } }",
        &format!(
            "\"-1001234567890\" }},\n  \"routes\": {{\n    \"alarm_warning\": {pair},\n    \"alarm_minor\": {pair},\n    \"alarm_major\": {pair},\n    \"scan_interlock\": {pair},\n    \"message\": {pair},\n    \"new_scan\": [\n      {{\"service\": \"telegram\", \"scope\": \"default\"}}\n    ]\n  }} }}"
        ),
    );
    assert_eq!(read(&path), expected);

    // Nothing that was sent stops being sent; new_scan is sent now too.
    let r = router(&path);
    let both = [
        dest(Service::Mail, "default"),
        dest(Service::Telegram, "default"),
    ];
    for event in [
        "alarm_warning",
        "alarm_minor",
        "alarm_major",
        "scan_interlock",
        "message",
    ] {
        assert_eq!(r.route(event), both, "{event}");
    }
    assert_eq!(r.route("new_scan"), [dest(Service::Telegram, "default")]);
    assert!(r.route("scan_completed").is_empty());

    // The password stays readable by its owner only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

#[test]
fn disabling_without_routes_also_writes_them_out_first() {
    let (_dir, path) = setup(LEGACY);
    let out = ok(&path, &["disable", "alarm_warning", "--service", "mail"]);
    assert!(
        out.contains("disabled alarm_warning → mail:default"),
        "{out}"
    );
    assert!(
        out.contains("wrote out the implicit routing first"),
        "{out}"
    );
    let r = router(&path);
    assert_eq!(
        r.route("alarm_warning"),
        [dest(Service::Telegram, "default")]
    );
    assert_eq!(r.route("alarm_major").len(), 2);
    // A custom event that the implicit routing sent keeps its destinations too.
    let (_dir, path) = setup(LEGACY);
    ok(&path, &["disable", "pump_stop", "--service", "telegram"]);
    assert_eq!(
        router(&path).route("pump_stop"),
        [dest(Service::Mail, "default")]
    );
}

#[test]
fn enabling_twice_adds_nothing_and_leaves_the_file_alone() {
    let (_dir, path) = setup(ODD);
    let before = snapshot(&path);
    let out = ok(
        &path,
        &[
            "enable",
            "alarm_major",
            "--service",
            "telegram",
            "--scope",
            "ops",
        ],
    );
    assert!(
        out.contains("alarm_major → telegram:ops is already enabled"),
        "{out}"
    );
    // `{"service":"mail"}` is mail's default scope: enabling it by name is a no-op too.
    let out = ok(
        &path,
        &[
            "enable",
            "message",
            "--service",
            "mail",
            "--scope",
            "default",
        ],
    );
    assert!(out.contains("already enabled"), "{out}");
    assert_eq!(snapshot(&path), before);
    // Without routes, what the implicit routing sends is enabled already.
    let (_dir, legacy) = setup(LEGACY);
    let before = snapshot(&legacy);
    let out = ok(&legacy, &["enable", "alarm_major", "--service", "mail"]);
    assert!(
        out.contains("already enabled (by the implicit routing"),
        "{out}"
    );
    assert_eq!(snapshot(&legacy), before);
}

#[test]
fn disable_removes_one_destination_and_keeps_crlf() {
    let text = "{\r\n\t\"mail\": {\r\n\t\t\"server\": \"smtp.example.org\",\r\n\t\t\"recipients\": [\"a@example.org\"],\r\n\t\t\"scopes\": {\"ops\": [\"o@example.org\"]}\r\n\t},\r\n\t\"routes\": {\r\n\t\t\"alarm_major\": [\r\n\t\t\t{\"service\": \"mail\", \"scope\": \"default\"},\r\n\t\t\t{\"service\": \"mail\", \"scope\": \"ops\"}\r\n\t\t]\r\n\t}\r\n}\r\n";
    let (_dir, path) = setup(text);
    let out = ok(&path, &["disable", "alarm_major", "--service", "mail"]);
    assert!(out.contains("disabled alarm_major → mail:default"), "{out}");
    assert!(out.contains("alarm_major now goes to: mail:ops"), "{out}");
    let step1 = replaced(
        text,
        "\t\t\t{\"service\": \"mail\", \"scope\": \"default\"},\r\n",
        "",
    );
    assert_eq!(read(&path), step1);

    ok(&path, &["enable", "scan_completed", "--service", "mail"]);
    let step2 = replaced(
        &step1,
        "\r\n\t\t]\r\n\t}",
        "\r\n\t\t],\r\n\t\t\"scan_completed\": [\r\n\t\t\t{\"service\": \"mail\", \"scope\": \"default\"}\r\n\t\t]\r\n\t}",
    );
    assert_eq!(read(&path), step2);
    assert_eq!(
        read(&path).matches('\n').count(),
        read(&path).matches("\r\n").count(),
        "every line still ends in CRLF"
    );
    assert_eq!(
        router(&path).route("scan_completed"),
        [dest(Service::Mail, "default")]
    );
}

#[test]
fn disabling_the_last_destination_removes_the_event() {
    let text = "\u{feff}{\"telegram\": {\"bot-id\": \"123456:ABC\", \"channel-id\": \"@sonix_alerts\"}, \"routes\": {\"message\": [{\"service\": \"telegram\"}], \"alarm_major\": [{\"service\": \"telegram\", \"scope\": \"default\"}]}}";
    let (_dir, path) = setup(text);
    let out = ok(&path, &["disable", "alarm_major", "--service", "telegram"]);
    assert!(
        out.contains("was the last destination of alarm_major: removed routes.alarm_major"),
        "{out}"
    );
    let step1 = replaced(
        text,
        ", \"alarm_major\": [{\"service\": \"telegram\", \"scope\": \"default\"}]",
        "",
    );
    assert_eq!(read(&path), step1);
    assert!(read(&path).starts_with('\u{feff}'), "the BOM stays");

    // The first member, written without a scope (the default scope), goes the same way;
    // an empty `routes` stays: it means "send nothing", not "the implicit routing".
    ok(&path, &["disable", "message", "--service", "telegram"]);
    let step2 = replaced(&step1, "{\"message\": [{\"service\": \"telegram\"}]}", "{}");
    assert_eq!(read(&path), step2);
    let r = router(&path);
    assert!(r.is_explicit());
    assert!(r.route("message").is_empty());
}

#[test]
fn disabling_what_is_not_enabled_changes_nothing() {
    let (_dir, path) = setup(ODD);
    let before = snapshot(&path);
    let out = ok(&path, &["disable", "alarm_minor", "--service", "mail"]);
    assert!(
        out.contains("alarm_minor → mail:default is not enabled, nothing to disable"),
        "{out}"
    );
    ok(
        &path,
        &[
            "disable",
            "alarm_major",
            "--service",
            "mail",
            "--scope",
            "night",
        ],
    );
    assert_eq!(snapshot(&path), before);
    // new_scan is quiet in the implicit routing.
    let (_dir, legacy) = setup(LEGACY);
    let before = snapshot(&legacy);
    let out = ok(&legacy, &["disable", "new_scan", "--service", "telegram"]);
    assert!(out.contains("not enabled"), "{out}");
    assert_eq!(snapshot(&legacy), before);
}

/// Runs a command that must fail with exit code 2 and leave the file alone; returns stderr.
fn refused(path: &Path, args: &[&str]) -> String {
    let before = snapshot(path);
    let out = routes(path, args);
    assert_eq!(out.code, Some(2), "{args:?}: {}{}", out.stdout, out.stderr);
    assert_eq!(snapshot(path), before, "{args:?} touched the file");
    out.stderr
}

#[test]
fn an_unknown_scope_is_refused_with_the_configured_ones() {
    let (_dir, path) = setup(ODD);
    let err = refused(
        &path,
        &[
            "enable",
            "alarm_major",
            "--service",
            "mail",
            "--scope",
            "nobody",
        ],
    );
    assert!(
        err.contains("unknown mail scope \"nobody\"; configured scopes: default, night"),
        "{err}"
    );
    let err = refused(
        &path,
        &[
            "disable",
            "message",
            "--service",
            "telegram",
            "--scope",
            "x",
        ],
    );
    assert!(err.contains("configured scopes: default, ops"), "{err}");
    let err = refused(&path, &["default-scope", "mail", "nobody"]);
    assert!(err.contains("configured scopes: default, night"), "{err}");
}

#[test]
fn a_service_that_is_not_configured_is_refused() {
    let (_dir, path) = setup("{\"telegram\": {\"bot-id\": \"123456:ABC\", \"channel-id\": 42}}\n");
    let err = refused(&path, &["enable", "message", "--service", "mail"]);
    assert!(
        err.contains("the service mail is not configured (no \"mail\" section)"),
        "{err}"
    );
    let err = refused(&path, &["default-scope", "mail", "default"]);
    assert!(err.contains("not configured"), "{err}");
    // A service protowatch does not know is a usage error from the argument parser.
    let err = refused(&path, &["enable", "message", "--service", "sms"]);
    assert!(err.contains("possible values: mail, telegram"), "{err}");
    let err = refused(&path, &["enable", "", "--service", "telegram"]);
    assert!(err.contains("the event name must not be empty"), "{err}");
}

#[test]
fn no_scope_and_no_default_scope_is_refused() {
    let text = "{\n  \"mail\": {\n    \"server\": \"smtp.example.org\",\n    \"scopes\": {\n      \"day\": [\"d@example.org\"],\n      \"night\": [\"n@example.org\"]\n    }\n  }\n}\n";
    let (_dir, path) = setup(text);
    let err = refused(&path, &["enable", "alarm_major", "--service", "mail"]);
    assert!(
        err.contains("mail has no default scope: give --scope (one of day, night)"),
        "{err}"
    );
    assert!(
        err.contains("protowatch routes default-scope mail SCOPE"),
        "{err}"
    );
    let out = ok(&path, &["list"]);
    assert!(out.contains("default scope: (none)"), "{out}");
    assert!(out.contains("alarm_major      (nothing)"), "{out}");
}

#[test]
fn default_scope_sets_the_key_and_routes_follow_it() {
    let text = "{\n  \"mail\": {\n    \"server\": \"smtp.example.org\",\n    \"scopes\": {\n      \"day\": [\"d@example.org\"],\n      \"night\": [\"n@example.org\"]\n    }\n  }\n}\n";
    let (_dir, path) = setup(text);
    let out = ok(&path, &["default-scope", "mail", "night"]);
    assert!(
        out.contains("mail.default_scope: (none) → \"night\""),
        "{out}"
    );
    assert!(
        out.contains("the implicit routing now sends alarms and messages to mail:night"),
        "{out}"
    );
    let step1 = replaced(
        text,
        "\n    }\n  }\n}",
        "\n    },\n    \"default_scope\": \"night\"\n  }\n}",
    );
    assert_eq!(read(&path), step1);
    assert_eq!(
        router(&path).route("alarm_major"),
        [dest(Service::Mail, "night")]
    );

    // Setting it again is a no-op; another scope replaces the value in place.
    let before = snapshot(&path);
    let out = ok(&path, &["default-scope", "mail", "night"]);
    assert!(out.contains("already \"night\""), "{out}");
    assert_eq!(snapshot(&path), before);
    ok(&path, &["default-scope", "mail", "day"]);
    assert_eq!(
        read(&path),
        replaced(
            &step1,
            "\"default_scope\": \"night\"",
            "\"default_scope\": \"day\""
        )
    );

    // Now `--scope` may be left out.
    ok(&path, &["enable", "new_scan", "--service", "mail"]);
    assert_eq!(
        router(&path).route("new_scan"),
        [dest(Service::Mail, "day")]
    );
}

#[test]
fn a_bad_config_is_refused_untouched() {
    let (_dir, path) = setup(
        "{\"mail\": {\"server\": \"s\", \"recipients\": [\"a@example.org\"]},\n \"extra\": 1}\n",
    );
    let err = refused(
        &path,
        &["enable", "message", "--service", "mail", "--scope", "x"],
    );
    assert!(err.contains("config.json: extra: unknown key"), "{err}");
    let (_dir, path) = setup("{\"mail\": {\"server\": \"s\",}}");
    let err = refused(&path, &["list"]);
    assert!(err.contains("invalid JSON"), "{err}");
}

#[test]
fn an_invalid_result_is_never_written() {
    let (_dir, path) = setup(LEGACY);
    let before = snapshot(&path);
    let bad = LEGACY.replace("\"port\": 25", "\"port\": 0");
    let e = protowatch::config::edit::save(&path, LEGACY, &bad).unwrap_err();
    assert!(e.to_string().contains("mail.port"), "{e}");
    assert!(e.to_string().contains("not written"), "{e}");
    assert_eq!(snapshot(&path), before);
}
