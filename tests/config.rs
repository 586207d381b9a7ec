//! The config as operators meet it: the old bot's file loading unchanged, and every
//! mistake reported with the file, the JSON path and what was expected — through the
//! library and through `protowatch check-config`.

mod support;

use std::path::Path;

use protowatch::config::{
    Config, ConfigError, Destination, Encoding, Service, StartAt, TlsMode, WatchMode,
};
use protowatch::routing::Router;
use serde_json::json;
use support::protowatch;

fn load(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    let path = dir.join("config.json");
    std::fs::write(&path, text).unwrap();
    Config::load(&path)
}

fn problems(dir: &Path, text: &str) -> String {
    match load(dir, text) {
        Ok(_) => panic!("expected errors for {text}"),
        Err(e) => e.to_string(),
    }
}

const LEGACY: &str = r#"{ "mail": { "user": "sonix-bot", "password": "pw-legacy-42", "port": 25, "server": "smtp.example.org",
            "recipients": ["a@example.org", "b@example.org"] },
  "telegram": { "bot-id": "123456:ABCdef", "channel-id": "-1001234567890" } }"#;

#[test]
fn the_old_bots_file_loads_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let c = load(dir.path(), LEGACY).unwrap();
    let m = c.mail.as_ref().unwrap();
    assert_eq!(m.server, "smtp.example.org");
    assert_eq!(m.port, 25);
    assert_eq!(m.tls, TlsMode::Opportunistic);
    assert_eq!(m.user.as_deref(), Some("sonix-bot"));
    assert_eq!(m.password.as_ref().unwrap().expose(), "pw-legacy-42");
    assert_eq!(m.scopes["default"], vec!["a@example.org", "b@example.org"]);
    assert!(m.from.starts_with("protowatch@"));
    let t = c.telegram.as_ref().unwrap();
    assert_eq!(t.token.expose(), "123456:ABCdef");
    assert_eq!(t.scopes["default"], "-1001234567890");
    assert_eq!(t.api_url.as_str(), "https://api.telegram.org/");
    assert!(c.watch.is_empty());
    assert_eq!(
        c.state_dir,
        std::path::absolute(dir.path()).unwrap().join(".protowatch")
    );
    assert!(!c.instrument.is_empty());
}

/// An absolute glob as an operator writes it on this platform.
#[cfg(windows)]
const ABSOLUTE_GLOB: &str = r"C:\Sonix\protocol\*.log";
#[cfg(not(windows))]
const ABSOLUTE_GLOB: &str = "/abs/*.txt";

#[test]
fn defaults_and_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let text = json!({
        "mail": {"server": "s", "port": 465, "recipients": "one@example.org"},
        "watch": [
            {"path": "protocol/*.log"},
            {"path": ABSOLUTE_GLOB, "encoding": "windows-1251", "start": "beginning",
             "mode": "poll", "poll_interval_ms": 250}
        ]
    })
    .to_string();
    let c = load(dir.path(), &text).unwrap();
    assert_eq!(c.mail.as_ref().unwrap().tls, TlsMode::Wrapper);
    assert_eq!(
        c.mail.as_ref().unwrap().scopes["default"],
        vec!["one@example.org"]
    );
    let base = std::path::absolute(dir.path()).unwrap();
    assert_eq!(
        std::path::Path::new(&c.watch[0].path),
        base.join("protocol").join("*.log")
    );
    assert_eq!(
        (c.watch[0].encoding, c.watch[0].start, c.watch[0].mode),
        (Encoding::Auto, StartAt::End, WatchMode::Notify)
    );
    assert_eq!(c.watch[1].path, ABSOLUTE_GLOB);
    assert_eq!(
        (c.watch[1].encoding, c.watch[1].start, c.watch[1].mode),
        (Encoding::Windows1251, StartAt::Beginning, WatchMode::Poll)
    );
    assert_eq!(c.watch[1].poll_interval.as_millis(), 250);
}

#[test]
fn follow_links_is_off_unless_set_and_takes_only_true_or_false() {
    let dir = tempfile::tempdir().unwrap();
    let text = json!({
        "watch": [{"path": "a/*.log"}, {"path": "b/*.log", "follow_links": true},
                  {"path": "c/*.log", "follow_links": false}]
    })
    .to_string();
    let c = load(dir.path(), &text).unwrap();
    let follow: Vec<bool> = c.watch.iter().map(|w| w.follow_links).collect();
    assert_eq!(follow, [false, true, false]);
    for bad in [json!("yes"), json!(1), json!(null)] {
        let text = json!({"watch": [{"path": "a/*.log", "follow_links": bad}]}).to_string();
        let e = problems(dir.path(), &text);
        assert!(
            e.contains("config.json: watch[0].follow_links: expected true or false"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn invalid_json_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let e = problems(
        dir.path(),
        "{\n  \"mail\": {\n    \"server\": \"x\",\n  }\n}",
    );
    assert!(e.contains("config.json:4:3: invalid JSON"), "{e}");
}

#[test]
fn every_problem_is_reported_with_its_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "port": 70000, "recipients": ["ok@example.org", "not an address"],
                     "tls": "ssl", "colour": 1},
            "telegram": {"bot-id": "secret-token-value", "channel-id": "sonix"},
            "watch": [{"path": "a/*.log"}, {"path": "b/*.log", "encoding": "latin1"}, {"encoding": "utf-8"}],
            "rules": [{"name": "r", "pattern": "(unclosed", "event": "alarm_major", "severity": "fatal"}],
            "routes": {"alarm_major": [{"service": "mail", "scope": "nobody"}, {"service": "sms"}]},
            "extra": true}"#,
    );
    let expect = [
        "config.json: mail.port: expected a port number from 1 to 65535, found 70000",
        "config.json: mail.recipients[1]: expected an e-mail address, found \"not an address\"",
        "config.json: mail.tls: expected one of \"starttls\", \"wrapper\", \"none\", \"opportunistic\", found \"ssl\"",
        "config.json: mail.colour: unknown key \"colour\"",
        "config.json: telegram.bot-id: expected a Bot API token",
        "config.json: telegram.channel-id: expected a numeric chat id or \"@channelname\", found \"sonix\"",
        "config.json: watch[1].encoding: expected one of \"auto\", \"utf-8\", \"windows-1251\", found \"latin1\"",
        "config.json: watch[2].path: missing (required)",
        "config.json: rules[0].pattern: invalid regex",
        "config.json: rules[0].severity: unknown severity \"fatal\"",
        "config.json: routes.alarm_major[0].scope: unknown mail scope \"nobody\"; configured scopes: default",
        "config.json: routes.alarm_major[1].service: expected one of \"mail\", \"telegram\", \"webhook\", \"alertmanager\", \"scilog\", \"signal\", found \"sms\"",
        "config.json: extra: unknown key \"extra\"",
    ];
    for x in expect {
        assert!(e.contains(x), "missing {x:?} in:\n{e}");
    }
    assert!(
        !e.contains("secret-token-value"),
        "a token must never be echoed:\n{e}"
    );
}

#[test]
fn routes_to_an_unconfigured_service_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "recipients": ["a@example.org"]},
            "routes": {"message": [{"service": "telegram", "scope": "default"}]}}"#,
    );
    assert!(
        e.contains("routes.message[0].service: the service telegram is not configured"),
        "{e}"
    );
}

#[test]
fn password_file_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "user": "u", "password_file": "missing.txt", "recipients": ["a@example.org"]}}"#,
    );
    assert!(e.contains("mail.password_file: cannot read"), "{e}");
    assert!(e.contains("missing.txt"), "{e}");
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "user": "u", "password": "p", "password_file": "f", "recipients": ["a@example.org"]}}"#,
    );
    assert!(e.contains("set either password or password_file"), "{e}");
}

#[test]
fn check_config_prints_the_resolved_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, LEGACY).unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["mail"]["password"], "********");
    assert_eq!(v["telegram"]["bot-id"], "********");
    assert_eq!(v["mail"]["tls"], "opportunistic");
    assert_eq!(v["mail"]["default_scope"], "default");
    assert_eq!(v["telegram"]["default_scope"], "default");
    for secret in ["pw-legacy-42", "ABCdef"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }
}

#[test]
fn check_config_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let run = |args: &[&str]| {
        let out = protowatch().args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let p = path.to_str().unwrap();

    let (code, err) = run(&["--config", p, "check-config"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("no config file at")
            && err.contains("config.json")
            && err.contains("--config"),
        "{err}"
    );

    std::fs::write(&path, r#"{"watch": [{"path": "*.log"}]}"#).unwrap();
    let (code, err) = run(&["--config", p, "check-config"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no service configured"), "{err}");

    std::fs::write(&path, r#"{"mail": {"server": 1}}"#).unwrap();
    let (code, err) = run(&["--config", p, "check-config"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("mail.server: expected a string, found a number"),
        "{err}"
    );

    // $PROTOWATCH_CONFIG is used when --config is absent.
    std::fs::write(
        &path,
        json!({"telegram": {"bot-id": "1:a", "channel-id": 5}}).to_string(),
    )
    .unwrap();
    let out = protowatch()
        .env("PROTOWATCH_CONFIG", &path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

fn dest(service: Service, scope: &str) -> Destination {
    Destination {
        service,
        scope: scope.into(),
    }
}

#[test]
fn default_scopes_explicit_legacy_or_none() {
    let dir = tempfile::tempdir().unwrap();
    // The old bot's file: its recipients and channel are the scope `default`.
    let c = load(dir.path(), LEGACY).unwrap();
    assert_eq!(
        c.mail.as_ref().unwrap().default_scope.as_deref(),
        Some("default")
    );
    assert_eq!(
        c.telegram.as_ref().unwrap().default_scope.as_deref(),
        Some("default")
    );

    // Named explicitly, over an existing `default`.
    let c = load(
        dir.path(),
        r#"{"mail": {"server": "s", "recipients": ["a@example.org"], "scopes": {"ops": ["o@example.org"]},
                     "default_scope": "ops"},
            "telegram": {"bot-id": "1:a", "scopes": {"night": "@night_shift", "day": "-100"},
                         "default_scope": "day"}}"#,
    )
    .unwrap();
    assert_eq!(c.default_scope(Service::Mail), Some("ops"));
    assert_eq!(c.default_scope(Service::Telegram), Some("day"));

    // No scope called `default` and none named: no default scope.
    let c = load(
        dir.path(),
        r#"{"mail": {"server": "s", "scopes": {"ops": ["o@example.org"]}}}"#,
    )
    .unwrap();
    assert_eq!(c.mail.as_ref().unwrap().default_scope, None);
    assert_eq!(c.default_scope(Service::Telegram), None);
}

#[test]
fn an_unknown_default_scope_is_an_error_listing_the_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "recipients": ["a@example.org"], "scopes": {"ops": ["o@example.org"]},
                     "default_scope": "nobody"},
            "telegram": {"bot-id": "1:a", "scopes": {"night": "@night_shift"}, "default_scope": 5}}"#,
    );
    assert!(
        e.contains(
            "config.json: mail.default_scope: unknown mail scope \"nobody\"; configured scopes: default, ops"
        ),
        "{e}"
    );
    assert!(
        e.contains("config.json: telegram.default_scope: expected a string, found a number"),
        "{e}"
    );
}

#[test]
fn route_entries_without_a_scope_use_the_default_scope() {
    let dir = tempfile::tempdir().unwrap();
    let c = load(
        dir.path(),
        r#"{"mail": {"server": "s", "recipients": ["a@example.org"], "scopes": {"ops": ["o@example.org"]},
                     "default_scope": "ops"},
            "telegram": {"bot-id": "1:a", "channel-id": 5},
            "routes": {"alarm_major": [{"service": "mail"}, {"service": "telegram"},
                                       {"service": "mail", "scope": "default"}]}}"#,
    )
    .unwrap();
    assert_eq!(
        c.routes.as_ref().unwrap()["alarm_major"],
        vec![
            dest(Service::Mail, "ops"),
            dest(Service::Telegram, "default"),
            dest(Service::Mail, "default")
        ]
    );

    // Without a default scope the entry must name one.
    let e = problems(
        dir.path(),
        r#"{"mail": {"server": "s", "scopes": {"ops": ["o@example.org"], "day": ["d@example.org"]}},
            "routes": {"message": [{"service": "mail", "scope": "ops"}, {"service": "mail"}]}}"#,
    );
    assert!(
        e.contains(
            "config.json: routes.message[1].scope: missing, and mail has no default scope: name one of day, ops here, or set mail.default_scope"
        ),
        "{e}"
    );
    assert!(!e.contains("routes.message[0]"), "{e}");
}

#[test]
fn the_implicit_routing_uses_each_services_default_scope() {
    let dir = tempfile::tempdir().unwrap();
    let c = load(
        dir.path(),
        r#"{"mail": {"server": "s", "recipients": ["a@example.org"], "scopes": {"ops": ["o@example.org"]},
                     "default_scope": "ops"},
            "telegram": {"bot-id": "1:a", "scopes": {"night": "@night_shift"}}}"#,
    )
    .unwrap();
    let router = Router::new(&c);
    assert!(!router.is_explicit());
    // Telegram has no default scope, so the implicit routing leaves it out.
    for event in [
        "alarm_major",
        "alarm_warning",
        "scan_interlock",
        "message",
        "custom",
    ] {
        assert_eq!(router.route(event), [dest(Service::Mail, "ops")], "{event}");
    }
    assert!(router.route("new_scan").is_empty());
    assert!(router.route("scan_completed").is_empty());

    // The old bot's file: both `default` scopes.
    let c = load(dir.path(), LEGACY).unwrap();
    assert_eq!(
        Router::new(&c).route("alarm_minor"),
        [
            dest(Service::Mail, "default"),
            dest(Service::Telegram, "default")
        ]
    );
}

/// DESIGN's on-call example, as an operator writes it (with the services it names).
const ON_CALL: &str = r#"{
  "mail": {"server": "smtp.example.org", "scopes": {"default": ["ops@example.org"], "heads": ["heads@example.org"]}},
  "telegram": {"bot-id": "123456:ABCdef", "channel-id": "-1001234567890"},
  "signal": {"url": "http://127.0.0.1:8080", "number": "+41791234567",
             "scopes": {"oncall": {"recipients": ["+41797654321"]}}},
  "escalation": {
    "night": {
      "steps": [
        {"after": "10m", "to": [{"service": "signal", "scope": "oncall"}]},
        {"after": "30m", "to": [{"service": "mail", "scope": "heads"}], "repeat": "30m"}
      ],
      "ack_timeout": "2h"
    }
  },
  "routes": {"alarm_major": [{"service": "telegram"}, {"escalate": "night"}]},
  "maintenance": [
    {"name": "tuesday", "weekly": {"days": ["tue"], "from": "08:00", "to": "12:00"},
     "tz": "Europe/Zurich", "match": {"severity_at_most": "major"}},
    {"name": "winter shutdown", "from": "2026-12-21T00:00", "to": "2027-01-05T00:00", "tz": "Europe/Zurich"}
  ],
  "digest": [{"at": "07:30", "tz": "Europe/Zurich", "to": [{"service": "mail", "scope": "default"}]}]
}"#;

#[test]
fn the_on_call_example_loads_and_check_config_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = load(dir.path(), ON_CALL).unwrap();
    let night = &c.oncall.escalation["night"];
    assert_eq!(night.steps.len(), 2);
    assert_eq!(night.steps[0].after, std::time::Duration::from_secs(600));
    assert_eq!(
        night.steps[1].repeat,
        Some(std::time::Duration::from_secs(1800))
    );
    assert_eq!(c.oncall.escalate["alarm_major"], "night");
    assert_eq!(c.oncall.maintenance.len(), 2);
    assert_eq!(c.oncall.digest.len(), 1);
    // The route's destinations are the telegram one alone: the escalation is no destination.
    let routes = c.routes.as_ref().unwrap();
    assert_eq!(routes["alarm_major"].len(), 1);

    std::fs::write(dir.path().join("config.json"), ON_CALL).unwrap();
    let out = protowatch()
        .arg("check-config")
        .arg("--config")
        .arg(dir.path().join("config.json"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(r#""escalate": "night""#), "{text}");
    assert!(
        text.contains("Tuesday 08:00–12:00 (Europe/Zurich)"),
        "{text}"
    );
    assert!(text.contains(r#""ack_timeout": "2h""#), "{text}");
}

#[test]
fn on_call_mistakes_are_named_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let with = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(ON_CALL).unwrap();
        edit(&mut v);
        problems(dir.path(), &v.to_string())
    };
    let e = with(&|v| v["routes"]["alarm_major"][1] = json!({"escalate": "nigth"}));
    assert!(
        e.contains(
            r#"routes.alarm_major[1].escalate: no escalation policy "nigth": expected one of night"#
        ),
        "{e}"
    );
    let e = with(&|v| v["escalation"]["night"]["steps"][0]["repeat"] = json!("5m"));
    assert!(
        e.contains("escalation.night.steps[0].repeat: only the last step may repeat"),
        "{e}"
    );
    let e = with(&|v| v["escalation"]["night"]["steps"][1]["to"][0]["scope"] = json!("bosses"));
    assert!(e.contains("escalation.night.steps[1].to[0].scope: "), "{e}");
    assert!(e.contains("bosses"), "{e}");
    let e = with(&|v| v["maintenance"][0]["tz"] = json!("Europe/Zürich"));
    assert!(
        e.contains(r#"maintenance[0].tz: unknown time zone "Europe/Zürich": expected an IANA name such as "Europe/Zurich""#),
        "{e}"
    );
    let e = with(&|v| v["maintenance"][0]["weekly"]["days"] = json!(["tues"]));
    assert!(
        e.contains(r#"maintenance[0].weekly.days[0]: "tues" is not a day of the week"#),
        "{e}"
    );
    let e = with(&|v| v["maintenance"][1]["to"] = json!("2026-12-01T00:00"));
    assert!(
        e.contains("maintenance[1].to: to (2026-12-01T00:00) is not after from (2026-12-21T00:00)"),
        "{e}"
    );
    let e = with(&|v| v["maintenance"][0]["match"]["text"] = json!("(unclosed"));
    assert!(
        e.contains("maintenance[0].match: text: not a valid regular expression"),
        "{e}"
    );
    let e = with(&|v| v["digest"][0]["at"] = json!("7:30"));
    assert!(
        e.contains(r#"digest[0].at: "7:30" is not a time of day: expected "HH:MM", e.g. "08:00""#),
        "{e}"
    );
    let e =
        with(&|v| v["routes"]["alarm_major"][1] = json!({"escalate": "night", "service": "mail"}));
    assert!(
        e.contains("routes.alarm_major[1]: a route entry is a destination"),
        "{e}"
    );
}

/// The book's "On call" example is a config that loads, as an operator would copy it.
#[test]
fn the_books_on_call_example_loads() {
    let chapter =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/on-call.md"))
            .unwrap();
    let section = &chapter[chapter
        .find("# On call")
        .expect("the chapter has an On call heading")..];
    let start = section.find("```json\n").expect("with a JSON example") + "```json\n".len();
    let json = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail-password"), "pw\n").unwrap();
    std::fs::write(dir.path().join("bot-token"), "123456:ABCdef\n").unwrap();
    let c = load(dir.path(), json).unwrap();
    assert_eq!(c.oncall.escalate["alarm_major"], "night");
    assert_eq!(
        c.oncall.maintenance[0].describe(),
        "Tuesday 08:00–12:00 (Europe/Zurich)"
    );
    assert_eq!(c.oncall.digest[0].to[0].to_string(), "mail:default");
}

/// The Debian package's config as the package installs it (its secret file holding what
/// the install script writes there): refused by `check-config` and `run`, naming every
/// placeholder and nothing else; and accepted once they are filled in.
#[test]
fn the_packaged_config_is_refused_until_its_placeholders_are_replaced() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let packaged: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("packaging/debian/config.json")).unwrap(),
    )
    .unwrap();
    let postinst =
        std::fs::read_to_string(root.join("packaging/debian/maintainer-scripts/postinst")).unwrap();
    let token = postinst
        .lines()
        .find_map(|l| l.split("echo \"").nth(1)?.split('"').next())
        .expect("the install script writes a placeholder token");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(
        dir.path().join("secrets/telegram-bot-id"),
        format!("{token}\n"),
    )
    .unwrap();
    let mut config = packaged.clone();
    // The package's state folder is the system's; here one of the test's own.
    config["state_dir"] = json!(dir.path().join("state"));
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();

    for command in ["check-config", "run"] {
        let out = protowatch()
            .arg("--config")
            .arg(&path)
            .arg(command)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        for (key, value) in [
            ("mail.server", "REPLACE-with-your-SMTP-server"),
            ("mail.recipients[0]", "REPLACE-with-the-address-to-alert"),
            ("telegram.channel-id", "REPLACE-with-the-chat-id"),
            ("watch[0].path", "REPLACE-with-the-protocol-folder/*.log"),
        ] {
            assert!(
                stderr.contains(&format!(
                    "{key}: replace \"{value}\" with your own value: it is a placeholder"
                )),
                "{command} names {key}: {stderr}"
            );
        }
        assert!(
            stderr.contains("telegram.bot-id_file: ")
                && stderr.contains("still holds a placeholder (it starts with REPLACE-)"),
            "{command}: {stderr}"
        );
        let others: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("config.json") && !l.contains("REPLACE-"))
            .collect();
        assert!(
            others.is_empty(),
            "{command}: more than placeholders: {others:?}"
        );
    }

    std::fs::write(
        dir.path().join("secrets/telegram-bot-id"),
        "123456:ABCdef\n",
    )
    .unwrap();
    config["mail"]["server"] = json!("smtp.example.org");
    config["mail"]["recipients"] = json!(["ops@example.org"]);
    config["telegram"]["channel-id"] = json!("-1001234567890");
    config["watch"][0]["path"] = json!(dir.path().join("protocol/*.log"));
    std::fs::write(&path, config.to_string()).unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The README's minimal config loads as written, its two secret files beside it, and
/// reaches both services it names.
#[test]
fn the_readmes_minimal_config_loads() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme
        .find("## A minimal config")
        .expect("the README has a minimal config")..];
    let start = section.find("```json\n").expect("with a JSON example") + "```json\n".len();
    let json = &section[start..start + section[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail-password"), "pw\n").unwrap();
    std::fs::write(dir.path().join("bot-token"), "123456:ABCdef\n").unwrap();
    let c = load(dir.path(), json).unwrap();
    assert_eq!(c.instrument, "IN5");
    let to: Vec<String> = c.destinations().iter().map(|d| d.to_string()).collect();
    assert_eq!(to, ["mail:default", "telegram:default"]);
}

/// `check-config` over a file with mistakes in every on-call section: each is named at
/// once, with its path, the sections in the file's reading order and each section's
/// problems in the order of its keys (a step's `to` before its `repeat`, a policy's
/// `steps` before its `ack_timeout`). A policy with a broken step is left out, so the
/// route naming it is told too.
#[test]
fn on_call_problems_come_all_at_once_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(ON_CALL).unwrap();
    v["escalation"]["night"]["ack_timeout"] = json!("0s");
    v["escalation"]["night"]["steps"][0]["repeat"] = json!("5m");
    v["escalation"]["night"]["steps"][0]["to"][0]["scope"] = json!("");
    v["routes"]["alarm_major"][1] = json!({"escalate": "nigth"});
    v["maintenance"][1]["to"] = json!("2026-12-01T00:00");
    v["maintenance"][1]["tz"] = json!("Nowhere/X");
    v["digest"][0] = json!({"at": 7, "to": [], "extra": 1});
    let path = dir.path().join("config.json");
    std::fs::write(&path, v.to_string()).unwrap();
    let out = protowatch()
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(|l| l.split_once("config.json: ").map_or(l, |(_, rest)| rest))
        .collect();
    assert_eq!(
        lines,
        [
            "escalation.night.steps[0].to[0].scope: expected a non-empty string",
            "escalation.night.steps[0].repeat: only the last step may repeat: it is the one told again until someone acts",
            r#"escalation.night.ack_timeout: expected a duration from 1 s to 2592000 s, found "0s""#,
            r#"routes.alarm_major[1].escalate: no escalation policy "nigth": define it under "escalation""#,
            "maintenance[1].to: to (2026-12-01T00:00) is not after from (2026-12-21T00:00)",
            r#"maintenance[1].tz: unknown time zone "Nowhere/X": expected an IANA name such as "Europe/Zurich""#,
            r#"digest[0].extra: unknown key "extra"; known keys here: at, tz, to"#,
            "digest[0].at: expected a string, found a number",
            r#"digest[0].to: expected a non-empty list of {"service", "scope"}, found a list"#,
        ],
        "{stderr}"
    );
}
