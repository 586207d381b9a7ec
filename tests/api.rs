//! The local HTTP API against the real binary: every endpoint and status code, auth, body
//! limits, concurrent writers, and notifications that reach the fake Bot API.

#![cfg(not(windows))]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, http, protowatch, wait_until};

fn json_req(addr: SocketAddr, method: &str, path: &str, body: Value) -> (u16, Value) {
    let (code, v, _) = http(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (code, v)
}

fn config(dir: &Path, tg: &FakeTelegram, api: Value) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url,
                         "scopes": {"ops": "-200"}},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": api,
        }),
    )
}

#[test]
fn alerts_endpoints_and_their_status_codes() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;

    assert_eq!(json_req(a, "GET", "/api/alerts", Value::Null).0, 200);
    // Every bad or missing field named at once.
    let (code, v) = json_req(
        a,
        "PUT",
        "/api/alerts",
        json!({"severity": "fatal", "ttl": -1, "colour": 1}),
    );
    assert_eq!(code, 400);
    let err = v["error"].as_str().unwrap();
    for field in ["key:", "message:", "severity:", "ttl:", "colour:"] {
        assert!(err.contains(field), "{field} in {err}");
    }
    let (code, v, _) = http(
        a,
        "PUT",
        "/api/alerts",
        &[("Content-Type", "application/json")],
        b"{\"key\": ",
    );
    assert_eq!(code, 400, "malformed JSON");
    assert!(v["error"].as_str().is_some());

    let (code, created) = json_req(
        a,
        "PUT",
        "/api/alerts",
        json!({
        "key": "vacuum", "message": "pressure high", "severity": "PROBLEM", "ttl": 600,
        "actions": {"Send again": "__resend"}, "data": {"p": 1e-3}}),
    );
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["key"], "custom|vacuum");
    assert_eq!(created["severity"], "PROBLEM");
    assert_eq!(created["level"], "major");
    assert_eq!(created["times_seen"], 1);
    let id = created["id"].as_i64().unwrap();
    // The same key replaces it.
    let (code, again) = json_req(
        a,
        "PUT",
        "/api/alerts",
        json!({"key": "vacuum", "message": "pressure still high"}),
    );
    assert_eq!(code, 201);
    assert_eq!(again["id"].as_i64(), Some(id));
    assert_eq!(again["times_seen"], 2);
    let (_, list) = json_req(a, "GET", "/api/alerts", Value::Null);
    assert_eq!(list.as_object().unwrap().len(), 1);
    assert_eq!(list[id.to_string()]["message"], "pressure still high");

    assert_eq!(
        json_req(a, "DELETE", &format!("/api/alerts/{id}"), Value::Null).0,
        204
    );
    assert_eq!(
        json_req(a, "DELETE", &format!("/api/alerts/{id}"), Value::Null).0,
        404
    );
    assert_eq!(
        json_req(a, "DELETE", "/api/alerts/nope", Value::Null).0,
        404
    );
    json_req(a, "PUT", "/api/alerts", json!({"key": "x", "message": "y"}));
    assert_eq!(json_req(a, "POST", "/api/alerts/clear", Value::Null).0, 204);
    assert_eq!(json_req(a, "GET", "/api/alerts", Value::Null).1, json!({}));

    // Bodies over 1 MiB.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (code, v, _) = http(
        a,
        "PUT",
        "/api/alerts",
        &[("Content-Type", "application/json")],
        &big,
    );
    assert_eq!(code, 413);
    assert!(v["error"].as_str().unwrap().contains("bytes"));
    let (code, v) = json_req(a, "GET", "/api/nothing", Value::Null);
    assert_eq!((code, v["error"].is_string()), (404, true));
}

#[test]
fn notify_channels_health_and_metrics() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;

    let (code, channels) = json_req(a, "GET", "/api/channels", Value::Null);
    assert_eq!(code, 200);
    let ops = channels
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "telegram:ops")
        .unwrap();
    let ops_id = ops["id"].as_u64().unwrap();

    // An alert sent to a channel by name, and by id.
    let (code, _) = json_req(
        a,
        "PUT",
        "/api/alerts?notify=telegram:ops",
        json!({"key": "k1", "message": "to ops by name"}),
    );
    assert_eq!(code, 201);
    let (code, _) = json_req(
        a,
        "PUT",
        &format!("/api/alerts?notify={ops_id}"),
        json!({"key": "k2", "message": "to ops by id"}),
    );
    assert_eq!(code, 201);
    let (code, v) = json_req(
        a,
        "PUT",
        "/api/alerts?notify=telegram:nowhere",
        json!({"key": "k3", "message": "x"}),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("notify"));
    let msgs = tg.wait_for(2, Duration::from_secs(10));
    assert!(msgs.iter().all(|m| m.body["chat_id"] == json!(-200)));

    // BEC's notify: rich text, tags, a file; routed like any event (default routing).
    let (code, v) = json_req(
        a,
        "POST",
        "/api/notify",
        json!({
        "event": "beamline_ready",
        "message": {"text": [{"text": "Beam "}, {"text": "ready", "bold": true, "color": "green"}],
                    "tags": ["bl4"],
                    "attachments": [{"data_base64": "aGVsbG8=", "filename": "note.txt"}]}}),
    );
    assert_eq!(code, 202, "{v}");
    assert!(v["id"].is_i64());
    assert!(wait_until(Duration::from_secs(10), || tg
        .requests()
        .iter()
        .any(|r| r.method == "senddocument")));
    let text = tg.messages().last().unwrap().body["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("<b>ready</b>") && text.contains("#bl4"),
        "{text}"
    );
    let (code, v) = json_req(a, "POST", "/api/notify", json!({"message": 5}));
    assert_eq!(code, 400);
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("event:") && err.contains("message:"), "{err}");

    let (code, health) = json_req(a, "GET", "/healthz", Value::Null);
    assert_eq!(code, 200);
    assert_eq!(health["status"], "ok");
    let (code, _, text) = http(a, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    assert!(text.contains("protowatch_messages_sent_total"), "{text}");
    assert!(text.contains("protowatch_outbox_dead 0"), "{text}");
    let (code, routes) = json_req(a, "GET", "/api/routes", Value::Null);
    assert_eq!(code, 200);
    assert_eq!(routes["routes"]["alarm_major"], json!(["telegram:default"]));

    // An edited config reaches the API too.
    support::write_config(
        dir.path(),
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url,
                         "scopes": {"ops": "-200", "night": "-300"}},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    assert!(wait_until(Duration::from_secs(10), || {
        json_req(a, "GET", "/api/channels", Value::Null)
            .1
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["name"] == "telegram:night"))
    }));
}

#[test]
fn a_token_is_required_when_set_and_off_loopback() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &tg,
        json!({"listen": "127.0.0.1:0", "token": "s3cret-token"}),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    assert_eq!(http(a, "GET", "/api/alerts", &[], b"").0, 401);
    assert_eq!(
        http(
            a,
            "GET",
            "/api/alerts",
            &[("Authorization", "Bearer wrong-token!")],
            b""
        )
        .0,
        401
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/api/alerts",
            &[("Authorization", "Bearer s3cret-token")],
            b""
        )
        .0,
        200
    );

    // Off loopback without a token: the config is refused, naming the key.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = config(dir2.path(), &tg, json!({"listen": "0.0.0.0:8767"}));
    let out = protowatch()
        .arg("--config")
        .arg(&cfg2)
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api.token") && err.contains("loopback"),
        "{err}"
    );
}

#[test]
fn fifty_concurrent_puts_with_one_key_leave_one_alert() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let threads: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                json_req(
                    a,
                    "PUT",
                    "/api/alerts",
                    json!({"key": "same", "message": format!("writer {i}")}),
                )
                .0
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 201);
    }
    let (_, list) = json_req(a, "GET", "/api/alerts", Value::Null);
    let list = list.as_object().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list.values().next().unwrap()["times_seen"], 50);
}

#[test]
fn alert_actions_resend_snooze_and_their_status_codes() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("p")).unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "throttle": {"repeat_interval": "1s"},
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let (_, put) = json_req(
        a,
        "PUT",
        "/api/alerts",
        json!({
        "key": "cryo", "message": "helium low",
        "actions": {"Send again": "__resend", "Snooze": "__snooze", "Acknowledge": "_ack"},
        "data": {"snooze_s": "soon"}}),
    );
    let id = put["id"].as_i64().unwrap();
    let act = |id: i64, action: &str| {
        json_req(
            a,
            "POST",
            &format!("/api/alerts/{id}/action/{action}"),
            Value::Null,
        )
    };
    assert_eq!(act(999_999, "__resend").0, 404);
    assert_eq!(
        act(id, "__nothing").0,
        404,
        "an action the alert does not carry"
    );
    assert_eq!(act(id, "_ack").0, 501, "a client's action");
    let (code, v) = act(id, "__snooze");
    assert_eq!(code, 424, "{v}");
    assert!(v["error"].as_str().unwrap().contains("snooze_s"));
    assert_eq!(act(id, "__resend").0, 204);
    let msgs = tg.wait_for(1, Duration::from_secs(10));
    assert!(
        msgs[0].body["text"]
            .as_str()
            .unwrap()
            .contains("helium low")
    );

    // A protocol alert carries Acknowledge, Dismiss, Snooze 1h and Send again; snoozed,
    // it stays quiet.
    let log = dir.path().join("p/a.log");
    support::append(&log, b"ERROR [cryo] compressor stopped\n");
    tg.wait_for(2, Duration::from_secs(10));
    let (_, list) = json_req(a, "GET", "/api/alerts", Value::Null);
    let proto = list
        .as_object()
        .unwrap()
        .values()
        .find(|x| x["message"] == "compressor stopped")
        .unwrap()
        .clone();
    assert_eq!(
        proto["actions"],
        json!({"Acknowledge": "__ack", "Dismiss": "__dismiss", "Snooze 1h": "__snooze", "Send again": "__resend"})
    );
    assert_eq!(act(proto["id"].as_i64().unwrap(), "__snooze").0, 204);
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        support::append(&log, b"ERROR [cryo] compressor stopped\n");
    }
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(tg.messages().len(), 2, "snoozed: no repeats, no summary");
    let (_, list) = json_req(a, "GET", "/api/alerts", Value::Null);
    let seen = list[proto["id"].as_i64().unwrap().to_string()]["times_seen"].clone();
    assert_eq!(seen, 4, "still counted");

    let (_, _, metrics) = http(a, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("protowatch_lines_read_total{file=\""),
        "{metrics}"
    );
    assert!(
        metrics.contains("protowatch_events_total{event=\"alarm_major\",severity=\"major\"} 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "protowatch_deliveries_total{destination=\"telegram:default\",outcome=\"delivered\"} 2"
        ),
        "{metrics}"
    );
    // Prometheus' text format allows one TYPE line per family, before its samples: a
    // family declared twice makes a strict scraper refuse the whole page.
    let mut declared = std::collections::BTreeSet::new();
    for line in metrics.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap_or_default();
        assert!(
            declared.insert(name.to_string()),
            "{name} declared twice:\n{metrics}"
        );
    }
    assert!(
        metrics.contains("\nprotowatch_messages_sent_total 2\n"),
        "{metrics}"
    );
}

/// The on-call routes: acknowledging (its own route and `__ack` through the action
/// route), silences made, listed and ended, their status codes, `silenced_by` in the
/// alerts' list, and a caller without the token refused on each.
#[test]
fn acknowledgements_and_silences_and_their_status_codes() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &tg,
        json!({"listen": "127.0.0.1:0", "token": "s3cret-token"}),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let auth = ("Authorization", "Bearer s3cret-token");
    let call = |method: &str, path: &str, body: Value| {
        let (code, v, _) = http(
            a,
            method,
            path,
            &[("Content-Type", "application/json"), auth],
            body.to_string().as_bytes(),
        );
        (code, v)
    };
    let put = |key: &str, actions: Value| {
        let (code, v) = call(
            "PUT",
            "/api/alerts",
            json!({"key": key, "message": format!("{key} trouble"), "actions": actions}),
        );
        assert_eq!(code, 201, "{v}");
        v["id"].as_i64().unwrap()
    };
    let cryo = put("cryo", json!({}));
    let vacuum = put("vacuum", json!({"Acknowledge": "__ack"}));
    let list = || call("GET", "/api/alerts", Value::Null).1;

    // Refused without the token, each route, before anything is done.
    for (method, path) in [
        ("POST", format!("/api/alerts/{cryo}/ack")),
        ("POST", format!("/api/alerts/{vacuum}/action/__ack")),
        ("GET", "/api/silences".to_string()),
        ("POST", "/api/silences".to_string()),
        ("DELETE", "/api/silences/1".to_string()),
    ] {
        let body = json!({"duration": "2h", "comment": "sneaky"}).to_string();
        let (code, _, _) = http(
            a,
            method,
            &path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(code, 401, "{method} {path}");
    }
    assert!(list()[cryo.to_string()]["acknowledged_by"].is_null());
    assert_eq!(
        call("GET", "/api/silences", Value::Null).1["silences"],
        json!([])
    );

    // Acknowledged: still active, who and when recorded.
    assert_eq!(
        call("POST", &format!("/api/alerts/{cryo}/ack"), Value::Null).0,
        204
    );
    assert_eq!(call("POST", "/api/alerts/999999/ack", Value::Null).0, 404);
    assert_eq!(
        call(
            "POST",
            &format!("/api/alerts/{cryo}/action/__ack"),
            Value::Null
        )
        .0,
        404,
        "an alert that does not carry __ack"
    );
    assert_eq!(
        call(
            "POST",
            &format!("/api/alerts/{vacuum}/action/__ack"),
            Value::Null
        )
        .0,
        204
    );
    let shown = list();
    for id in [cryo, vacuum] {
        let al = &shown[id.to_string()];
        assert_eq!(al["acknowledged_by"], "api", "{al}");
        assert!(al["acknowledged_at"].as_f64().is_some(), "{al}");
    }

    // Silences: bad ones refused with what is wrong.
    for (body, want) in [
        (
            json!({"matchers": {"colour": "red"}, "duration": "2h", "comment": "c"}),
            "colour",
        ),
        (
            json!({"matchers": {"text": "("}, "duration": "2h", "comment": "c"}),
            "matchers",
        ),
        (
            json!({"matchers": {"severity_at_most": "dire"}, "duration": "2h", "comment": "c"}),
            "matchers",
        ),
        (json!({"matchers": {}, "duration": "2h"}), "comment"),
        (
            json!({"matchers": {}, "duration": "2h", "comment": "  "}),
            "comment",
        ),
        (
            json!({"matchers": {}, "duration": "32d", "comment": "c"}),
            "31 days",
        ),
        (json!({"matchers": {}, "comment": "c"}), "duration"),
    ] {
        let (code, v) = call("POST", "/api/silences", body.clone());
        assert_eq!(code, 400, "{body}: {v}");
        let err = v["error"].as_str().unwrap();
        assert!(err.contains(want), "{body}: {err}");
    }
    let stored_key = shown[vacuum.to_string()]["key"].clone();
    let (code, v) = call(
        "POST",
        "/api/silences",
        json!({"matchers": {"key": stored_key}, "duration": "2h", "comment": "pump swap"}),
    );
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_i64().unwrap();
    let (code, v) = call("GET", "/api/silences", Value::Null);
    assert_eq!(code, 200);
    let s = &v["silences"][0];
    assert_eq!(s["id"], id, "{v}");
    assert_eq!(s["created_by"], "api");
    assert_eq!(s["comment"], "pump swap");
    assert_eq!(s["active"], true);
    assert_eq!(
        list()[vacuum.to_string()]["silenced_by"],
        json!([format!("silence {id}")])
    );
    assert_eq!(list()[cryo.to_string()]["silenced_by"], json!([]));

    assert_eq!(call("DELETE", "/api/silences/999999", Value::Null).0, 404);
    assert_eq!(call("DELETE", "/api/silences/nope", Value::Null).0, 404);
    assert_eq!(
        call("DELETE", &format!("/api/silences/{id}"), Value::Null).0,
        204
    );
    assert_eq!(
        call("GET", "/api/silences", Value::Null).1["silences"],
        json!([])
    );
    let all = call("GET", "/api/silences?all=true", Value::Null).1;
    assert_eq!(all["silences"][0]["expired_by"], "api", "{all}");
    assert_eq!(list()[vacuum.to_string()]["silenced_by"], json!([]));
}
