//! OnTakt's alert API as OnTakt documents it, against the real binary: its three `PUT`
//! examples copied verbatim from its page, read back field for field; its client
//! algorithm run on our answers; the action codes; every bad field named at once; a
//! database of the release before read back with nothing lost; and the URL actions
//! reaching people — a link in the mail the real SMTP server received, a URL button in
//! the request that reached the Bot API, an `Action.OpenUrl` in the Teams card.

#![cfg(not(windows))]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Agent, FakeHttp, FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, http, protowatch,
    wait_until,
};

/// OnTakt's "Minimal" example, verbatim.
const MINIMAL: &str = r#"{ "key": "my_custom_alert", "message": "Something happened" }"#;
/// OnTakt's "Bad weather" example, verbatim.
const BAD_WEATHER: &str = r#"{ "key": "bad_weather_ahead", "severity": "WARNING", "message": "Bad weather ahead", "details": "<p>There are storms forecasted over the next few hours.</p>\n<p>Shut down the machines to avoid damage if the power goes out.</p>", "actions": { "View forecast": "https://www.wunderground.com" }, "ttl": 7200 }"#;
/// OnTakt's "Complete" example, verbatim.
const COMPLETE: &str = r#"{ "key": "fully_defined_alert", "severity": "INFO", "timestamp": 1692300658, "ttl": 86400, "machine_id": 42, "message": "Fully defined alert", "details": "<p>This alert has <i>lots</i> of fields.</p>", "actions": { "More details": "http://10.0.0.123/info" }, "data": { "my_custom_field_1": 123, "my_custom_field_2": "present", "my_custom_field_3": [3, 1.631, 5] } }"#;

fn put_raw(addr: SocketAddr, path: &str, body: &str) -> (u16, Value, String) {
    http(
        addr,
        "PUT",
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn req(addr: SocketAddr, method: &str, path: &str) -> (u16, Value) {
    let (code, v, _) = http(addr, method, path, &[], b"");
    (code, v)
}

fn config(dir: &Path, extra: Value) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let mut c = json!({
        "instrument": "IN5",
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        "api": {"listen": "127.0.0.1:0"},
    });
    // `run` refuses a config without a service: one that is never reached, unless the
    // test brings its own.
    let services = ["mail", "telegram", "webhook", "alertmanager"];
    if !services.iter().any(|s| extra.get(*s).is_some()) {
        c["telegram"] =
            json!({"bot-id": TOKEN, "channel-id": "-100", "api-url": "http://127.0.0.1:9"});
    }
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    support::write_config(dir, &c)
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn the_three_documented_examples_are_accepted_verbatim_and_read_back_field_for_field() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let before = now_s() - 1.0;

    let mut ids = Vec::new();
    for body in [MINIMAL, BAD_WEATHER, COMPLETE] {
        let (code, created, _) = put_raw(a, "/api/alerts", body);
        assert_eq!(code, 201, "{body} → {created}");
        ids.push(created["id"].as_i64().unwrap().to_string());
    }
    let (code, list) = req(a, "GET", "/api/alerts");
    assert_eq!(code, 200);
    assert_eq!(list.as_object().unwrap().len(), 3, "{list}");

    // Every field of OnTakt's PersistentAlert, with OnTakt's types.
    for id in &ids {
        let x = &list[id];
        for field in [
            "id",
            "key",
            "message",
            "details",
            "severity",
            "timestamp",
            "last_seen",
            "times_seen",
            "ttl",
            "machine_id",
            "actions",
            "data",
        ] {
            assert!(x.get(field).is_some(), "{field} missing in {x}");
        }
        assert_eq!(x["id"].as_i64().map(|i| i.to_string()).as_ref(), Some(id));
        assert!(
            x["timestamp"].is_number() && x["last_seen"].is_number(),
            "{x}"
        );
        assert!(x["actions"].is_object() && x["data"].is_object(), "{x}");
        assert!(x["last_seen"].as_f64().unwrap() >= before, "{x}");
    }

    let min = &list[&ids[0]];
    assert_eq!(min["key"], "custom|my_custom_alert");
    assert_eq!(min["message"], "Something happened");
    assert_eq!(min["severity"], "INFO", "OnTakt's default class");
    assert_eq!(min["level"], "info");
    assert_eq!(min["event"], "alert");
    assert_eq!(min["times_seen"], 1);
    assert_eq!(min["ttl"], Value::Null);
    assert_eq!(min["machine_id"], Value::Null);
    assert_eq!(min["actions"], json!({}));
    assert_eq!(min["data"], json!({}));
    assert!(min["timestamp"].as_f64().unwrap() >= before, "{min}");

    let w = &list[&ids[1]];
    assert_eq!(w["key"], "custom|bad_weather_ahead");
    assert_eq!(w["severity"], "WARNING");
    assert_eq!(w["level"], "warning");
    assert_eq!(w["message"], "Bad weather ahead");
    assert_eq!(
        w["details"],
        "<p>There are storms forecasted over the next few hours.</p>\n<p>Shut down the machines to avoid damage if the power goes out.</p>"
    );
    assert_eq!(
        w["actions"],
        json!({"View forecast": "https://www.wunderground.com"})
    );
    assert_eq!(w["ttl"], 7200);

    let c = &list[&ids[2]];
    let sent: Value = serde_json::from_str(COMPLETE).unwrap();
    assert_eq!(c["key"], "custom|fully_defined_alert");
    assert_eq!(c["severity"], "INFO");
    assert_eq!(
        c["timestamp"],
        json!(1692300658),
        "the creation time as given"
    );
    assert_eq!(c["ttl"], 86400);
    assert_eq!(c["machine_id"], json!(42));
    assert_eq!(c["message"], sent["message"]);
    assert_eq!(c["details"], sent["details"]);
    assert_eq!(c["actions"], sent["actions"]);
    assert_eq!(c["data"], sent["data"], "data kept exactly");
    assert!(c["last_seen"].as_f64().unwrap() >= before);
}

#[test]
fn actions_keep_their_order_and_our_levels_map_to_ontakt_classes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let (code, _, text) = put_raw(
        a,
        "/api/alerts",
        r#"{"key": "order", "message": "m", "actions": {"Zebra": "https://z.example.org/", "Alpha": "__dismiss", "Middle": "_edit_tool"}}"#,
    );
    assert_eq!(code, 201, "{text}");
    let (z, al, m) = (
        text.find("\"Zebra\"").unwrap(),
        text.find("\"Alpha\"").unwrap(),
        text.find("\"Middle\"").unwrap(),
    );
    assert!(z < al && al < m, "in the order given: {text}");
    let (_, _, listing) = http(a, "GET", "/api/alerts", &[], b"");
    assert!(
        listing.find("\"Zebra\"").unwrap() < listing.find("\"Alpha\"").unwrap(),
        "{listing}"
    );

    for (given, class, level) in [
        ("INFO", "INFO", "info"),
        ("REPORT", "INFO", "info"),
        ("WARNING", "WARNING", "warning"),
        ("PROBLEM", "PROBLEM", "major"),
        ("minor", "WARNING", "minor"),
        ("major", "PROBLEM", "major"),
    ] {
        let body = json!({"key": format!("sev-{given}"), "message": "m", "severity": given});
        let (code, v, _) = put_raw(a, "/api/alerts", &body.to_string());
        assert_eq!(code, 201, "{v}");
        assert_eq!(
            (v["severity"].as_str(), v["level"].as_str()),
            (Some(class), Some(level))
        );
    }
}

/// OnTakt's client algorithm, from its page: `__` → POST the action, `_` → the client's
/// own, else open the URL. Returns what the client did.
fn press(addr: SocketAddr, alert: &Value, label: &str) -> String {
    let action = alert["actions"][label].as_str().unwrap();
    if action.starts_with("__") {
        let (code, _) = req(
            addr,
            "POST",
            &format!("/api/alerts/{}/action/{action}", alert["id"]),
        );
        format!("POST {code}")
    } else if action.starts_with('_') {
        format!("client {action}")
    } else {
        let url = url::Url::parse("http://ontakt.local/")
            .unwrap()
            .join(action)
            .unwrap();
        format!("open {url}")
    }
}

#[test]
fn ontakts_client_algorithm_works_on_our_answers_and_actions_give_ontakts_codes() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
               "routes": {"alert": [{"service": "telegram"}]}}),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let (code, created, _) = put_raw(
        a,
        "/api/alerts",
        &json!({"key": "tool", "message": "Tool 'Saw' is near the end of its life expectancy",
                "severity": "WARNING",
                "actions": {"View": "/tools/#tool-20", "Edit": "_edit_tool",
                            "Forecast": "https://www.wunderground.com",
                            "Send again": "__resend", "Later": "__snooze",
                            "Reboot": "__reboot", "Dismiss": "__dismiss"},
                "data": {"tool_id": 20}})
        .to_string(),
    );
    assert_eq!(code, 201, "{created}");
    let (_, list) = req(a, "GET", "/api/alerts");
    let alert = list[created["id"].as_i64().unwrap().to_string()].clone();

    assert_eq!(
        press(a, &alert, "View"),
        "open http://ontakt.local/tools/#tool-20"
    );
    assert_eq!(press(a, &alert, "Edit"), "client _edit_tool");
    assert_eq!(
        press(a, &alert, "Forecast"),
        "open https://www.wunderground.com/"
    );
    assert_eq!(press(a, &alert, "Send again"), "POST 204");
    let sent = tg.wait_for(1, Duration::from_secs(10));
    assert!(
        sent[0].body["text"]
            .as_str()
            .unwrap()
            .contains("near the end"),
        "{:?}",
        sent[0].body
    );
    assert_eq!(press(a, &alert, "Later"), "POST 204", "an hour by default");
    assert_eq!(press(a, &alert, "Reboot"), "POST 501", "no handler for it");

    // 404: no such alert; an action string the alert does not carry (the label is
    // not the action); the same for a client's action posted anyway: 501.
    let id = alert["id"].as_i64().unwrap();
    assert_eq!(req(a, "POST", "/api/alerts/987654/action/__dismiss").0, 404);
    assert_eq!(
        req(a, "POST", &format!("/api/alerts/{id}/action/Dismiss")).0,
        404
    );
    assert_eq!(
        req(a, "POST", &format!("/api/alerts/{id}/action/__clear")).0,
        404
    );
    assert_eq!(
        req(a, "POST", &format!("/api/alerts/{id}/action/_edit_tool")).0,
        501
    );

    // 424: the handler failed (a snooze length that is not one).
    let (_, bad, _) = put_raw(
        a,
        "/api/alerts",
        r#"{"key": "s", "message": "m", "actions": {"Later": "__snooze"}, "data": {"snooze_s": "soon"}}"#,
    );
    let (code, v) = req(
        a,
        "POST",
        &format!("/api/alerts/{}/action/__snooze", bad["id"]),
    );
    assert_eq!(code, 424, "{v}");
    assert!(v["error"].as_str().unwrap().contains("snooze_s"), "{v}");

    // __dismiss: the alert is gone from the listing, and a second press finds nothing.
    assert_eq!(press(a, &alert, "Dismiss"), "POST 204");
    let (_, list) = req(a, "GET", "/api/alerts");
    assert!(list.get(id.to_string()).is_none(), "{list}");
    assert_eq!(press(a, &alert, "Dismiss"), "POST 404");
}

#[test]
fn every_bad_field_is_named_in_one_answer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), json!({}));
    let agent = Agent::start(&cfg);
    let (code, v, _) = put_raw(
        agent.addr,
        "/api/alerts",
        r#"{"message": "m", "severity": "fatal", "timestamp": "yesterday", "ttl": -1,
            "machine_id": "press-4", "data": [1],
            "actions": {"Go": "javascript:alert(1)", "Five": 5, "Gap": "https://example.org/a b",
                        "Ok": "https://example.org/"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let err = v["error"].as_str().unwrap();
    for field in [
        "key:",
        "severity:",
        "timestamp:",
        "ttl:",
        "machine_id:",
        "data:",
        "actions.Go:",
        "actions.Five:",
        "actions.Gap:",
    ] {
        assert!(err.contains(field), "{field} in {err}");
    }
    assert!(!err.contains("actions.Ok"), "{err}");
    // The list shape of the release before is refused with what is expected instead.
    let (code, v, _) = put_raw(
        agent.addr,
        "/api/alerts",
        r#"{"key": "k", "message": "m", "actions": ["__resend"]}"#,
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("actions: expected an object"),
        "{v}"
    );
    assert_eq!(
        req(agent.addr, "GET", "/api/alerts").1,
        json!({}),
        "nothing stored"
    );
}

#[test]
fn a_database_of_the_release_before_is_migrated_with_nothing_lost() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join(".protowatch");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/state-v4/protowatch.db"),
        state.join("protowatch.db"),
    )
    .unwrap();
    let cfg = config(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url}}),
    );

    // Every alert, active or not, as this release reads it.
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["alerts", "list", "--all", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let alerts: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by_key = |k: &str| {
        alerts
            .iter()
            .find(|a| a["key"] == k)
            .unwrap_or_else(|| panic!("{k} in {alerts:?}"))
    };
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    let vacuum = by_key("custom|vacuum");
    assert_eq!(vacuum["machine_id"], json!(7));
    assert_eq!(
        vacuum["actions"],
        json!({"__resend": "__resend", "__snooze": "__snooze"}),
        "a list becomes labels that are the actions"
    );
    assert_eq!(vacuum["data"], json!({"snooze_s": 600}));
    assert_eq!(vacuum["severity"], "PROBLEM");
    assert_eq!(vacuum["ttl"], 86400);
    let chiller = by_key("custom|chiller");
    assert_eq!(chiller["machine_id"], Value::Null);
    assert_eq!(
        chiller["data"],
        json!({"machine_id": "chiller-2"}),
        "an id that is not a number is kept in data"
    );
    assert_eq!(chiller["details"], "<p>Call <b>2222</b></p>");
    assert_eq!(chiller["actions"], json!({}));
    let trace = by_key("alarm_major||RuntimeError: motor m# <stalled> & lost");
    assert_eq!(
        trace["details"],
        "<pre>Traceback (most recent call last):\n  File \"scan.py\", line 12, in &lt;module&gt;\n    move(m1, 5)\nRuntimeError: motor m1 &lt;stalled&gt; &amp; lost</pre>"
    );
    let hv = by_key("alarm_major|detector|HV trip on channel #");
    assert_eq!(
        hv["timestamp"],
        json!(1_795_183_392),
        "2026-11-20 14:03:12 UTC"
    );
    assert_eq!(hv["times_seen"], 1);

    // The two deliveries that were queued go out, the traceback as Telegram shows it.
    let agent = Agent::start(&cfg);
    let msgs = tg.wait_for(2, Duration::from_secs(15));
    let texts: Vec<&str> = msgs
        .iter()
        .map(|m| m.body["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("HV trip on channel 3")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|t| t.contains("<pre>") && t.contains("m1 &lt;stalled&gt; &amp; lost")),
        "{texts:?}"
    );
    drop(agent);
}

/// A real SMTP server, the fake Bot API, and an agent that sends to both.
fn mail_and_telegram() -> (SmtpServer, FakeTelegram, tempfile::TempDir, Agent) {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        json!({
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "from": "in5@example.org", "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
        }),
    );
    let agent = Agent::start(&cfg);
    (smtp, tg, dir, agent)
}

#[test]
fn url_actions_reach_mail_as_links_and_telegram_as_buttons() {
    let (smtp, tg, _dir, agent) = mail_and_telegram();
    let a = agent.addr;

    assert_eq!(put_raw(a, "/api/alerts?notify=mail", BAD_WEATHER).0, 201);
    let mail = smtp.wait_for(1, Duration::from_secs(15));
    let html = mail[0].part("text/html");
    assert!(
        html.contains("<a href=\"https://www.wunderground.com\">View forecast</a>"),
        "{html}"
    );
    assert!(
        html.contains("<p>There are storms forecasted over the next few hours.</p>"),
        "the details as HTML: {html}"
    );
    let text = mail[0].part("text/plain").replace("\r\n", "\n");
    assert!(
        text.contains("View forecast: https://www.wunderground.com"),
        "{text}"
    );
    assert!(
        text.contains("There are storms forecasted over the next few hours.\n\nShut down"),
        "{text}"
    );
    assert!(!text.contains("<p>"), "{text}");

    assert_eq!(
        put_raw(a, "/api/alerts?notify=telegram", BAD_WEATHER).0,
        201
    );
    let sent = tg.wait_for(1, Duration::from_secs(15));
    let body = &sent[0].body;
    assert_eq!(
        body["reply_markup"]["inline_keyboard"],
        json!([[{"text": "View forecast", "url": "https://www.wunderground.com/"}]]),
        "{body}"
    );
    let t = body["text"].as_str().unwrap();
    assert!(t.contains("There are storms forecasted"), "{t}");
    assert!(!t.contains("<p>"), "reduced to Telegram's tags: {t}");

    // The complete example: its italic details, its intranet URL as a button.
    assert_eq!(put_raw(a, "/api/alerts?notify=telegram", COMPLETE).0, 201);
    let sent = tg.wait_for(2, Duration::from_secs(15));
    let body = &sent[1].body;
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("This alert has <i>lots</i> of fields."),
        "{body}"
    );
    assert_eq!(
        body["reply_markup"]["inline_keyboard"][0][0]["url"],
        "http://10.0.0.123/info"
    );
    drop(agent);
}

#[test]
fn hostile_details_are_sanitized_and_refused_buttons_become_text() {
    let (smtp, tg, _dir, agent) = mail_and_telegram();
    let a = agent.addr;
    let hostile = json!({
        "key": "x", "message": "chiller off",
        "details": "<p onmouseover=\"steal()\">Call <b>2222</b><script>steal()</script>\
                    <img src=\"https://tracker.example.org/p.png\"><style>p{}</style>\
                    <table><tr><td>cell</td></tr></table><a href=\"javascript:steal()\">x</a></p>",
        "actions": {"Wiki": "https://wiki.example.org/chiller", "Local": "http://intranet/chiller"},
    })
    .to_string();
    assert_eq!(put_raw(a, "/api/alerts?notify=mail", &hostile).0, 201);
    let html = smtp.wait_for(1, Duration::from_secs(15))[0]
        .part("text/html")
        .to_string();
    for bad in [
        "<script",
        "steal()",
        "<img",
        "tracker.example.org",
        "onmouseover",
        "<style",
    ] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("Call <b>2222</b>"), "{html}");

    // Telegram: unknown tags would be refused (the fake refuses them as Telegram
    // does); a host Telegram will not link is a text line, not a button.
    assert_eq!(put_raw(a, "/api/alerts?notify=telegram", &hostile).0, 201);
    let body = tg.wait_for(1, Duration::from_secs(15))[0].body.clone();
    let t = body["text"].as_str().unwrap();
    assert!(t.contains("Call <b>2222</b>") && t.contains("cell"), "{t}");
    assert!(!t.contains("steal") && !t.contains("<p"), "{t}");
    assert!(t.contains("Local: http://intranet/chiller"), "{t}");
    assert_eq!(
        body["reply_markup"]["inline_keyboard"],
        json!([[{"text": "Wiki", "url": "https://wiki.example.org/chiller"}]])
    );

    // Telegram refuses a button after all: the alert goes out with its links as text.
    tg.script_method(
        "sendmessage",
        [Reply::BadRequest(
            "Bad Request: inline keyboard button URL 'https://wiki.example.org/chiller' is invalid: Wrong HTTP URL",
        )],
    );
    assert_eq!(
        put_raw(
            a,
            "/api/alerts?notify=telegram",
            &hostile.replace("\"x\"", "\"y\"")
        )
        .0,
        201
    );
    assert!(wait_until(Duration::from_secs(15), || tg.messages().len() >= 3));
    let last = tg.messages().last().unwrap().body.clone();
    assert!(last.get("reply_markup").is_none(), "{last}");
    let t = last["text"].as_str().unwrap();
    assert!(
        t.contains("Wiki: https://wiki.example.org/chiller")
            && t.contains("Local: http://intranet/chiller"),
        "{t}"
    );
    drop(agent);
}

#[test]
fn the_teams_card_opens_url_actions_and_chat_tools_link_them() {
    let server = FakeHttp::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        json!({"webhook": {"scopes": {
            "teams": {"url": format!("{}/workflows/abc/triggers/manual/run?sig=S", server.url),
                      "preset": "teams"},
            "slack": {"url": format!("{}/services/T/B/X", server.url), "preset": "slack"},
            "mattermost": {"url": format!("{}/hooks/xyz", server.url), "preset": "mattermost"}}}}),
    );
    let agent = Agent::start(&cfg);
    for scope in ["teams", "slack", "mattermost"] {
        let (code, v, _) = put_raw(
            agent.addr,
            &format!("/api/alerts?notify=webhook:{scope}"),
            BAD_WEATHER,
        );
        assert_eq!(code, 201, "{v}");
    }
    let requests = server.wait_for(3, Duration::from_secs(15));
    let on = |p: &str| {
        requests
            .iter()
            .find(|r| r.path.starts_with(p))
            .unwrap_or_else(|| panic!("no request to {p}"))
            .json()
    };
    let card = on("/workflows/abc");
    assert_eq!(
        card["attachments"][0]["content"]["actions"],
        json!([{"type": "Action.OpenUrl", "title": "View forecast",
                "url": "https://www.wunderground.com"}])
    );
    for chat in ["/services/T", "/hooks/xyz"] {
        let text = on(chat)["text"].as_str().unwrap().to_string();
        let after_code = text.rsplit("```").next().unwrap();
        assert!(
            after_code.contains("View forecast: https://www.wunderground.com"),
            "a link outside the code block: {text}"
        );
    }
}
