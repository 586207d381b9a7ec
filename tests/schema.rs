//! `protowatch schema` against the loader: the example config and a config that uses
//! every key the loader accepts pass both; a misspelt key, anywhere, fails both. So the
//! schema that editors check `config.json` with cannot drift from what `protowatch`
//! actually reads.

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use protowatch::config::KNOWN_KEYS;
use serde_json::{Value, json};
use support::protowatch;

fn schema() -> Value {
    let out = protowatch().arg("schema").output().expect("run protowatch");
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).expect("the schema is JSON")
}

fn validator() -> jsonschema::Validator {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// The schema's complaints about `config`, one line each.
fn schema_errors(v: &jsonschema::Validator, config: &Value) -> Vec<String> {
    v.iter_errors(config)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// `protowatch check-config` on `config` written to `dir`: exit code and stderr.
fn loader(dir: &Path, config: &Value) -> (Option<i32>, String) {
    let path = support::write_config(dir, config);
    let out = protowatch()
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .output()
        .expect("run protowatch check-config");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every key of the loader, in four configs because some exclude each other (`password`
/// or `password_file`, `token` or `token_file`; SciLog takes one of four). Values in the
/// old bot's loose forms and choice words in odd cases, which both must take as well.
fn full_configs(dir: &Path) -> [Value; 4] {
    std::fs::write(dir.join("password.txt"), "secret\n").unwrap();
    std::fs::write(
        dir.join("webhook-url.txt"),
        "https://example.org/hooks/s3cret\n",
    )
    .unwrap();
    std::fs::write(dir.join("token.txt"), "api-token\n").unwrap();
    std::fs::write(dir.join("bot-token.txt"), "123456:ABC-def_9\n").unwrap();
    std::fs::write(dir.join("ca.pem"), "").unwrap();
    let common = |mail_extra: Value, api: Value, scilog_login: Value| {
        let mut mail = json!({
            "server": "smtp.example.org",
            "port": "587",
            "tls": "STARTTLS",
            "user": "sonix-bot",
            "from": "Sonix <sonix@example.org>",
            "ca_file": "ca.pem",
            "recipients": ["a@example.org", "b@example.org"],
            "scopes": {"night": ["c@example.org"]},
            "default_scope": "default",
            "timeout_s": 20,
        });
        for (k, v) in mail_extra.as_object().unwrap() {
            mail[k] = v.clone();
        }
        let mut scilog = json!({
            "url": "https://scilog.example.org/api/v1/",
            "scopes": {"default": {"logbook": "6123abc"}, "commissioning": {"logbook": "6123abd"}},
            "default_scope": "default",
            "tags": ["protowatch", "IN5"],
            "timeout_s": 20,
        });
        for (k, v) in scilog_login.as_object().unwrap() {
            scilog[k] = v.clone();
        }
        // BEC's Redis logs in as mail does in this config (a password or its file).
        let mut bec = json!({
            "redis": "bec-redis.example.org:6379",
            "user": "protowatch",
            "services": {"scilog": "scilog", "signal": "signal", "teams": "webhook"},
            "publish_services": true,
        });
        for k in ["password", "password_file"] {
            if let Some(v) = mail_extra.get(k) {
                bec[k] = v.clone();
            }
        }
        json!({
            "instrument": "IN5",
            "bec": bec,
            "mail": mail,
            "scilog": scilog,
            "signal": {
                "url": "http://127.0.0.1:8080",
                "api": "JsonRpc",
                "number": "+41791234567",
                "scopes": {"beamline-ops": {"group": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="},
                           "oncall": {"recipients": ["+41797654321"]}},
                "default_scope": "beamline-ops",
                "timeout_s": 15,
            },
            "telegram": {
                "bot-id": "123456:ABC-def_9",
                "channel-id": -1001234567890i64,
                "api-url": "http://127.0.0.1:8081",
                "scopes": {"ops": "@sonix_ops", "lab": "-100987",
                           "night": {"chat": "-100555", "thread": 42, "silent_below": "minor"}},
                "default_scope": "ops",
                "timeout_s": 15,
                "operators": [123456789, "@anna_ops"],
                "snooze_s": [1800, 7200],
                "poll_timeout_s": 20,
            },
            "webhook": {
                "scopes": {
                    "teams": {"url": "https://example.org/workflows/x?sig=abc", "preset": "Teams",
                              "method": "POST", "headers": {"X-Env": {"file": "password.txt"}}},
                    "ops": {"url": {"file": "webhook-url.txt"}, "method": "put",
                            "body": {"t": "{{title}}", "n": "{{count}}"}},
                },
                "default_scope": "teams",
                "timeout_s": 10,
            },
            "alertmanager": {
                "urls": ["http://127.0.0.1:9093", "http://127.0.0.1:9094/"],
                "labels": {"facility": "ill"},
                "repost_interval": "30s",
                "timeout_s": 5,
            },
            "watch": [
                {"path": "protocol/*.log", "encoding": "UTF-8", "start": "beginning",
                 "mode": "poll", "poll_interval_ms": 500, "format": "sonix",
                 "max_line_bytes": 65536, "max_files": 50000, "forget_after": "30d",
                 "follow_links": true},
                {"path": "old/*.log", "encoding": "windows-1251"},
            ],
            "rules": [
                {"name": "vacuum", "pattern": "(?i)(?P<message>vacuum lost.*)",
                 "event": "alarm_major", "severity": "PROBLEM", "key": "vacuum"},
                {"name": "heartbeat", "pattern": "heartbeat", "event": "ignore"},
            ],
            "routes": {
                "alarm_major": [{"service": "mail", "scope": "night"}, {"service": "telegram"},
                                {"escalate": "night"}],
                "new_scan": [{"service": "Telegram", "scope": "lab"}],
                "alarm_minor": [{"service": "webhook", "scope": "ops"}, {"service": "alertmanager"}],
            },
            "escalation": {
                "night": {
                    "steps": [
                        {"after": "10m", "to": [{"service": "signal", "scope": "oncall"}]},
                        {"after": "30m", "to": [{"service": "mail", "scope": "night"}], "repeat": "30m"},
                    ],
                    "ack_timeout": "2h",
                },
            },
            "maintenance": [
                {"name": "tuesday", "weekly": {"days": ["tue"], "from": "08:00", "to": "12:00"},
                 "tz": "Europe/Zurich",
                 "match": {"event": "alarm_minor", "severity_at_most": "major", "source": "detector",
                           "key": "k", "text": "vacuum"}},
                {"name": "winter shutdown", "from": "2026-12-21T00:00", "to": "2027-01-05T00:00",
                 "tz": "Europe/Zurich"},
            ],
            "digest": [{"at": "07:30", "tz": "Europe/Zurich", "to": [{"service": "mail", "scope": "night"}]}],
            "throttle": {
                "repeat_interval": "15m",
                "max_age": 7200,
                "per_minute": {"mail": 5, "telegram": 15, "webhook": 12, "scilog": 6, "signal": 12},
            },
            "api": api,
            "state_dir": "state",
        })
    };
    // The second config keeps every secret in a file: the bot token too.
    let mut from_files = common(
        json!({"password_file": "password.txt", "recipients": "a@example.org"}),
        json!({"listen": "0.0.0.0:9000", "token_file": "token.txt"}),
        json!({"token_file": "token.txt"}),
    );
    let telegram = from_files["telegram"].as_object_mut().unwrap();
    telegram.remove("bot-id");
    telegram.insert("bot-id_file".into(), json!("bot-token.txt"));
    [
        common(
            json!({"password": "pw"}),
            json!({"listen": "127.0.0.1:9000", "token": "t0ken",
                   "hosts": ["in5-pc.example.org"], "max_alerts": 500}),
            json!({"user": "bl-operator", "password": {"env": "HOME"}}),
        ),
        from_files,
        common(
            json!({"password": "pw"}),
            json!({"listen": "127.0.0.1:9000"}),
            json!({"user": "bl-operator", "password_file": "password.txt"}),
        ),
        common(
            json!({"password": "pw"}),
            json!({"listen": "127.0.0.1:9000"}),
            json!({"token": "scilog-token"}),
        ),
    ]
}

/// The keys used in `v`, as (path of their object in `KNOWN_KEYS`'s notation, key).
fn keys_used(v: &Value, path: &str, out: &mut BTreeSet<(String, String)>) {
    let Some(obj) = v.as_object() else { return };
    for (k, child) in obj {
        out.insert((path.to_string(), k.clone()));
        let join = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}.{k}")
            }
        };
        match (path, k.as_str()) {
            ("", "watch" | "rules") => {
                for item in child.as_array().unwrap() {
                    keys_used(item, &format!("{k}[]"), out);
                }
            }
            ("", "escalation") => {
                for policy in child.as_object().unwrap().values() {
                    keys_used(policy, "escalation.*", out);
                }
            }
            ("", "maintenance" | "digest") => {
                for item in child.as_array().unwrap() {
                    keys_used(item, &format!("{k}[]"), out);
                }
            }
            ("escalation.*", "steps") | ("escalation.*.steps[]" | "digest[]", "to") => {
                for item in child.as_array().unwrap() {
                    keys_used(item, &format!("{path}.{k}[]"), out);
                }
            }
            ("", "routes") => {
                for targets in child.as_object().unwrap().values() {
                    for t in targets.as_array().unwrap() {
                        keys_used(t, "routes.*[]", out);
                    }
                }
            }
            // Webhooks' scopes are objects of the format; other scopes are values.
            ("webhook", "scopes") => {
                for scope in child.as_object().unwrap().values() {
                    keys_used(scope, "webhook.scopes.*", out);
                }
            }
            // SciLog's scopes are objects of the format too.
            ("scilog" | "signal", "scopes") => {
                for scope in child.as_object().unwrap().values() {
                    keys_used(scope, &format!("{path}.scopes.*"), out);
                }
            }
            // Maps of scope names, not keys of the format.
            (_, "scopes") => {}
            // Header and label names are the operator's, and a secret given by reference
            // (`{"file": …}`) is a value: not keys of the format.
            ("webhook.scopes.*", "headers" | "body" | "url")
            | ("alertmanager", "labels")
            | ("scilog", "password" | "token") => {}
            _ => keys_used(child, &join(k), out),
        }
    }
}

#[test]
fn the_example_config_passes_the_schema_and_the_loader() {
    let v = validator();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.json");
    let example: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(schema_errors(&v, &example), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = loader(dir.path(), &example);
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn every_key_of_the_loader_passes_both() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let configs = full_configs(dir.path());

    let mut used = BTreeSet::new();
    for c in &configs {
        keys_used(c, "", &mut used);
    }
    let known: BTreeSet<(String, String)> = KNOWN_KEYS
        .iter()
        .flat_map(|(path, keys)| keys.iter().map(|k| (path.to_string(), k.to_string())))
        .collect();
    assert_eq!(
        used, known,
        "the test configs must use exactly the keys the loader knows"
    );

    for c in &configs {
        assert_eq!(schema_errors(&v, c), Vec::<String>::new(), "{c:#}");
        let (code, err) = loader(dir.path(), c);
        assert_eq!(code, Some(0), "{err}\n{c:#}");
    }
}

/// `key` with its last two letters swapped: the typo a hand-edited file has.
fn misspell(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    let n = chars.len();
    chars.swap(n - 2, n - 1);
    chars.into_iter().collect()
}

/// The object at a `KNOWN_KEYS` path in `config` (the first entry of a list).
fn object_at<'v>(config: &'v mut Value, path: &str) -> &'v mut serde_json::Map<String, Value> {
    let mut at = config;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, list) = match part.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (part, false),
        };
        at = if key == "*" {
            at.as_object_mut().unwrap().values_mut().next().unwrap()
        } else {
            &mut at[key]
        };
        if list {
            at = &mut at[0];
        }
    }
    at.as_object_mut().unwrap()
}

#[test]
fn a_misspelt_key_anywhere_fails_both() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    for (path, keys) in KNOWN_KEYS {
        for key in *keys {
            let [mut config, ..] = full_configs(dir.path());
            let obj = object_at(&mut config, path);
            let Some(value) = obj.remove(*key) else {
                continue; // not in the first config (password_file, token_file, bot-id_file)
            };
            let typo = misspell(key);
            obj.insert(typo.clone(), value);

            assert!(
                !schema_errors(&v, &config).is_empty(),
                "the schema takes {typo:?} at {path:?}"
            );
            let (code, err) = loader(dir.path(), &config);
            assert_eq!(code, Some(2), "the loader takes {typo:?} at {path:?}");
            assert!(
                err.contains(&format!("unknown key {typo:?}")),
                "{path:?}: {err}"
            );
        }
    }
}

#[test]
fn values_of_the_wrong_form_fail_both() {
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, Value)] = &[
        ("/watch/0/encoding", json!("latin1")),
        ("/watch/0/max_files", json!(0)),
        ("/watch/0/forget_after", json!(5)),
        ("/watch/0/forget_after", json!("a week")),
        ("/watch/0/follow_links", json!("yes")),
        ("/mail/port", json!("smtp")),
        ("/mail/port", json!(0)),
        ("/telegram/bot-id", json!("not a token")),
        ("/telegram/channel-id", json!("sonix")),
        ("/throttle/repeat_interval", json!("10 fortnights")),
        ("/throttle/max_age", json!(5)),
        ("/rules/0/severity", json!("fatal")),
        ("/state_dir", json!("  ")),
        ("/scilog/url", json!("scilog.example.org")),
        ("/scilog/scopes/default", json!({"book": "x"})),
        ("/scilog/tags", json!("protowatch")),
        ("/signal/api", json!("soap")),
        ("/signal/number", json!("0791234567")),
        (
            "/signal/scopes/oncall",
            json!({"group": "x", "recipients": []}),
        ),
        ("/instrument", Value::Null),
    ];
    for (pointer, bad) in cases {
        let [mut config, ..] = full_configs(dir.path());
        *config.pointer_mut(pointer).unwrap() = bad.clone();
        assert!(
            !schema_errors(&v, &config).is_empty(),
            "the schema takes {pointer} = {bad}"
        );
        let (code, err) = loader(dir.path(), &config);
        assert_eq!(code, Some(2), "the loader takes {pointer} = {bad}: {err}");
    }
    // A rule without severity is fine only when it silences lines.
    let [mut config, ..] = full_configs(dir.path());
    config["rules"][0]
        .as_object_mut()
        .unwrap()
        .remove("severity");
    assert!(!schema_errors(&v, &config).is_empty());
    assert_eq!(loader(dir.path(), &config).0, Some(2));
    // The bot token one way: both, or neither, fail both.
    let [mut config, ..] = full_configs(dir.path());
    config["telegram"]["bot-id_file"] = json!("bot-token.txt");
    assert!(!schema_errors(&v, &config).is_empty());
    let (code, err) = loader(dir.path(), &config);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("telegram.bot-id_file: set either bot-id or bot-id_file, not both"),
        "{err}"
    );
    config["telegram"].as_object_mut().unwrap().remove("bot-id");
    config["telegram"]
        .as_object_mut()
        .unwrap()
        .remove("bot-id_file");
    assert!(!schema_errors(&v, &config).is_empty());
    assert_eq!(loader(dir.path(), &config).0, Some(2));
}
