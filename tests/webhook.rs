//! The `webhook` service with the real binary against a loopback HTTP server that records
//! every request: each preset's body checked against its service's documented format
//! (Microsoft Teams Workflows with an Adaptive Card, Slack and Mattermost incoming
//! webhooks, ntfy's JSON publishing), a custom template with method and headers from the
//! environment and a file, the every-field body, and retries on 429 and 5xx.

#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, FakeHttp, HttpRequest, append, protowatch, wait_until};

const LINE: &[u8] = b"2026-11-20 14:03:12 ERROR 1 [detector] HV <trip> & reset on channel 7\n";

fn config(dir: &Path, webhook: Value, routes: Value) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "webhook": webhook,
            "routes": routes,
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    )
}

fn on(requests: &[HttpRequest], path: &str) -> HttpRequest {
    requests
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no request to {path}: {requests:?}"))
        .clone()
}

fn text_of(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v}"))
}

#[test]
fn each_preset_posts_its_services_format() {
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeHttp::start();
    let dir = tmp.path();
    std::fs::write(dir.join("token.txt"), "Bearer s3cret-from-file\n").unwrap();
    let webhook = json!({
        "scopes": {
            "teams": {"url": format!("{}/workflows/abc/triggers/manual/run?sig=SIGNATURE", server.url),
                      "preset": "teams"},
            "slack": {"url": {"env": "PW_TEST_SLACK_URL"}, "preset": "slack"},
            "mattermost": {"url": format!("{}/hooks/xyz", server.url), "preset": "mattermost"},
            "ntfy": {"url": format!("{}/beamline-7", server.url), "preset": "ntfy"},
            "custom": {"url": format!("{}/custom", server.url), "method": "put",
                       "headers": {"Authorization": {"file": "token.txt"},
                                   "X-Api-Key": {"env": "PW_TEST_API_KEY"}},
                       "body": "{{severity_word}} {{event}} on {{instrument}}: {{message}} ({{count}})"},
            "fields": {"url": format!("{}/fields", server.url)},
            "json": {"url": format!("{}/json", server.url),
                     "body": {"summary": "{{title}}", "n": "{{count}}", "level": "{{priority}}",
                              "who": ["{{instrument}}", "{{source}}"]}},
        }
    });
    let all: Vec<Value> = [
        "teams",
        "slack",
        "mattermost",
        "ntfy",
        "custom",
        "fields",
        "json",
    ]
    .iter()
    .map(|s| json!({"service": "webhook", "scope": s}))
    .collect();
    let cfg = config(dir, webhook, json!({"alarm_major": all}));
    let mut cmd = protowatch();
    cmd.env(
        "PW_TEST_SLACK_URL",
        format!("{}/services/T000/B000/XXXX", server.url),
    )
    .env("PW_TEST_API_KEY", "key-from-env")
    .arg("--config")
    .arg(&cfg)
    .arg("run");
    let agent = Agent::start_command(cmd, &cfg, &dir.join("agent.log"));
    append(&dir.join("p/run.log"), LINE);
    let requests = server.wait_for(7, Duration::from_secs(15));
    assert_eq!(
        requests.len(),
        7,
        "{requests:?}\n{}",
        std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default()
    );

    // Teams Workflows: a message with one Adaptive Card attachment.
    let teams = on(&requests, "/workflows/abc/triggers/manual/run");
    assert_eq!(teams.method, "POST");
    assert_eq!(teams.header("content-type"), Some("application/json"));
    let t = teams.json();
    assert_eq!(t["type"], "message", "{t}");
    let att = t["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 1);
    assert_eq!(
        att[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &att[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["version"], "1.4");
    let body = card["body"].as_array().unwrap();
    for element in body {
        let kind = text_of(&element["type"]);
        assert!(["TextBlock", "FactSet"].contains(&kind), "{element}");
        if kind == "TextBlock" {
            assert!(element["text"].is_string());
        } else {
            for fact in element["facts"].as_array().unwrap() {
                assert!(
                    fact["title"].is_string() && fact["value"].is_string(),
                    "{fact}"
                );
            }
        }
    }
    assert!(text_of(&body[0]["text"]).contains("[IN5] MAJOR: HV <trip> & reset on channel 7"));
    assert!(body.iter().any(|e| {
        e["facts"]
            .as_array()
            .is_some_and(|f| f.contains(&json!({"title": "Instrument", "value": "IN5"})))
    }));

    // Slack: `text` in mrkdwn, with &, < and > escaped as Slack requires.
    let slack = on(&requests, "/services/T000/B000/XXXX");
    let s = slack.json();
    assert_eq!(
        s.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["text"],
        "{s}"
    );
    let text = text_of(&s["text"]);
    assert!(
        text.contains("HV &lt;trip&gt; &amp; reset on channel 7"),
        "{text}"
    );
    assert!(
        !text.contains("<trip>") && text.contains("*[IN5] MAJOR"),
        "{text}"
    );

    // Mattermost: `text` in Markdown, nothing to escape.
    let mm = on(&requests, "/hooks/xyz").json();
    let text = text_of(&mm["text"]);
    assert!(
        text.contains("**[IN5] MAJOR: HV <trip> & reset on channel 7**"),
        "{text}"
    );
    assert!(text.contains("detector"), "{text}");

    // ntfy: JSON published to the server's root, the topic in the body.
    let ntfy = on(&requests, "/");
    let n = ntfy.json();
    assert_eq!(n["topic"], "beamline-7", "{n}");
    assert!(text_of(&n["title"]).starts_with("[IN5] MAJOR"));
    assert!(text_of(&n["message"]).contains("HV <trip> & reset on channel 7"));
    assert_eq!(n["priority"], 5);
    assert!(n["tags"].as_array().unwrap().iter().all(Value::is_string));

    // A template that is one string: plain text, with the method and headers asked for.
    let custom = on(&requests, "/custom");
    assert_eq!(custom.method, "PUT");
    assert_eq!(
        custom.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        custom.header("authorization"),
        Some("Bearer s3cret-from-file")
    );
    assert_eq!(custom.header("x-api-key"), Some("key-from-env"));
    assert_eq!(
        custom.text(),
        "MAJOR alarm_major on IN5: HV <trip> & reset on channel 7 (1)"
    );

    // No preset, no body: every field.
    let f = on(&requests, "/fields").json();
    assert_eq!(f["instrument"], "IN5");
    assert_eq!(f["event"], "alarm_major");
    assert_eq!(f["severity"], "major");
    assert_eq!(f["count"], 1);
    assert_eq!(f["events"][0]["source"], "detector");
    assert_eq!(f["events"][0]["message"], "HV <trip> & reset on channel 7");

    // A JSON template: a lone field keeps its type, strings are filled in.
    let j = on(&requests, "/json").json();
    assert_eq!(j["n"], 1);
    assert_eq!(j["level"], 5);
    assert_eq!(j["who"], json!(["IN5", "detector"]));
    assert!(text_of(&j["summary"]).starts_with("[IN5] MAJOR"));

    // check-config shows where, never the URL's path (the webhook's credential) nor a
    // header's value.
    let out = protowatch()
        .env(
            "PW_TEST_SLACK_URL",
            format!("{}/services/T000/B000/XXXX", server.url),
        )
        .env("PW_TEST_API_KEY", "key-from-env")
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for secret in ["SIGNATURE", "XXXX", "s3cret", "key-from-env", "hooks/xyz"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert!(shown.contains("\"preset\": \"teams\""), "{shown}");
    drop(agent);
}

#[test]
fn a_429_waits_for_retry_after_and_a_5xx_is_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeHttp::start();
    server.script([
        (429, vec![("Retry-After", "2")], "slow down"),
        (503, vec![], "maintenance"),
    ]);
    let dir = tmp.path();
    let cfg = config(
        dir,
        json!({"scopes": {"default": {"url": format!("{}/hooks/ops", server.url),
                                      "preset": "mattermost"}}}),
        json!({"alarm_major": [{"service": "webhook"}]}),
    );
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    append(&dir.join("p/run.log"), LINE);
    let requests = server.wait_for(3, Duration::from_secs(20));
    assert_eq!(requests.len(), 3, "{requests:?}");
    let gap = requests[1].at - requests[0].at;
    assert!(
        gap >= Duration::from_secs(2) && gap < Duration::from_secs(10),
        "Retry-After 2 waited {gap:?}"
    );
    assert!(requests.iter().all(|r| r.json() == requests[0].json()));
    // Delivered: nothing left queued, and no more requests.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.requests().len(), 3);
    assert!(wait_until(Duration::from_secs(5), || {
        let out = protowatch()
            .arg("--config")
            .arg(&cfg)
            .args(["outbox", "list", "--json"])
            .output()
            .unwrap();
        // One JSON document: the queued rows.
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "[]"
    }));
    drop(agent);
}

#[test]
fn a_changed_header_value_is_used_after_a_reload() {
    let tmp = tempfile::tempdir().unwrap();
    let server = FakeHttp::start();
    let dir = tmp.path();
    let hook = |key: &str| {
        json!({"scopes": {"default": {"url": format!("{}/hooks/ops", server.url),
                                      "preset": "slack", "headers": {"X-Key": key}}}})
    };
    let routes = json!({"alarm_major": [{"service": "webhook"}]});
    let cfg = config(dir, hook("one"), routes.clone());
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    append(&dir.join("p/run.log"), LINE);
    let first = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(first[0].header("x-key"), Some("one"));
    // Only the secret changes: the masked config looks the same before and after.
    std::thread::sleep(Duration::from_millis(1100));
    config(dir, hook("two"), routes);
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("agent.log"))
            .unwrap_or_default()
            .contains("webhook.scopes")
    }));
    append(
        &dir.join("p/run.log"),
        b"2026-11-20 14:04:00 ERROR 1 [vacuum] pump stopped\n",
    );
    let both = server.wait_for(2, Duration::from_secs(10));
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(both[1].header("x-key"), Some("two"));
    drop(agent);
}

#[test]
fn bad_webhook_settings_are_named_with_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = config(
        dir,
        json!({"scopes": {
            "a": {"url": "ftp://example.org/x", "preset": "teams"},
            "b": {"url": {"env": "PW_TEST_NOT_SET_ANYWHERE"}, "preset": "skype"},
            "n": {"url": "https://ntfy.example.org/", "preset": "ntfy"},
            "c": {"url": "https://example.org/h", "body": {"t": "{{titel}}"}},
            "d": {"url": "https://example.org/h", "preset": "slack", "body": "x",
                  "headers": {"Bad Header": "v"}},
        }}),
        json!({"alarm_major": [{"service": "webhook", "scope": "e"}]}),
    );
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "webhook.scopes.a.url: expected an http:// or https:// URL with a host, found a ftp: URL",
        "webhook.scopes.b.url.env: the environment variable PW_TEST_NOT_SET_ANYWHERE is not set",
        "webhook.scopes.b.preset: expected one of \"teams\", \"slack\", \"mattermost\", \"ntfy\", found \"skype\"",
        "webhook.scopes.c.body: unknown field {{titel}} in the template",
        "webhook.scopes.d.headers.Bad Header: \"Bad Header\" is not a valid HTTP header name",
        "webhook.scopes.d.body: set either preset or body, not both",
        "routes.alarm_major[0].scope",
        "webhook.scopes.n.url: an ntfy URL names its topic",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    assert!(!err.contains("example.org/x"), "{err}");
}
