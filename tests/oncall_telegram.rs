//! On call through the real binary and the fake Bot API: escalation steps at their
//! times, an acknowledgement from Telegram that stops the next step, a restart between
//! steps that fires each step once, a silence made from Telegram that is in force at
//! once and whose end sends what is still active once, and a non-operator who changes
//! nothing. Durations are seconds so that each test stays short.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, TgRequest, append, http, wait_until};

const ANNA: (u64, &str) = (42, "anna");
const MALLORY: (u64, &str) = (666, "mallory");

/// The alerts' chat, step 1's and step 2's.
const ALERTS: &str = "-100200";
const ONCALL: &str = "-100300";
const HEADS: &str = "-100400";

/// Alarms go to the alerts' chat and follow `night`: step 1 to the on-call chat after
/// `first`, step 2 to the heads' chat after `second`.
fn config(dir: &Path, tg: &FakeTelegram, first: &str, second: &str) -> PathBuf {
    let c = json!({
        "telegram": {"bot-id": TOKEN, "api-url": tg.url, "operators": [42],
                     "poll_timeout_s": 1,
                     "scopes": {"default": ALERTS, "oncall": ONCALL, "heads": HEADS}},
        "escalation": {"night": {"steps": [
            {"after": first, "to": [{"service": "telegram", "scope": "oncall"}]},
            {"after": second, "to": [{"service": "telegram", "scope": "heads"}]}
        ]}},
        "routes": {"alarm_major": [{"service": "telegram", "scope": "default"}, {"escalate": "night"}]},
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        "throttle": {"repeat_interval": "1s", "per_minute": {"telegram": 10000}},
        "api": {"listen": "127.0.0.1:0"},
    });
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(dir, &c)
}

fn chat_of(m: &TgRequest) -> String {
    match &m.body["chat_id"] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn sent_to(tg: &FakeTelegram, chat: &str) -> Vec<TgRequest> {
    tg.messages()
        .into_iter()
        .filter(|m| chat_of(m) == chat)
        .collect()
}

/// Waits for the first message to `chat`; when it came.
fn first_to(tg: &FakeTelegram, chat: &str, within: Duration) -> Option<TgRequest> {
    wait_until(within, || !sent_to(tg, chat).is_empty());
    sent_to(tg, chat).into_iter().next()
}

fn alarm(dir: &Path) -> Instant {
    append(&dir.join("p/a.log"), b"ERROR [cryo] compressor stopped\n");
    Instant::now()
}

fn alerts(agent: &Agent) -> Vec<Value> {
    let (status, body, _) = http(agent.addr, "GET", "/api/alerts", &[], b"");
    assert_eq!(status, 200);
    body.as_object()
        .map(|o| o.values().cloned().collect())
        .unwrap_or_default()
}

fn wait_answer(tg: &FakeTelegram, id: &str) -> TgRequest {
    assert!(
        wait_until(Duration::from_secs(5), || !tg.answers_to(id).is_empty()),
        "the press {id} was not answered"
    );
    tg.answers_to(id)[0].clone()
}

/// What the bot answered in `chat` after `before` messages.
fn reply_in(tg: &FakeTelegram, chat: &str, before: usize) -> String {
    assert!(
        wait_until(Duration::from_secs(5), || tg
            .messages()
            .iter()
            .skip(before)
            .any(|m| chat_of(m) == chat)),
        "no answer in {chat}"
    );
    let m = tg
        .messages()
        .into_iter()
        .skip(before)
        .find(|m| chat_of(m) == chat)
        .unwrap();
    m.text().to_string()
}

#[test]
fn an_unacknowledged_alarm_reaches_step_one_then_step_two_at_their_times() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let _agent = Agent::start(&config(dir.path(), &tg, "2s", "4s"));
    let t0 = alarm(dir.path());
    let first = first_to(&tg, ALERTS, Duration::from_secs(5)).expect("the alarm");
    assert_eq!(first.button_labels()[0], "Acknowledge", "{}", first.body);

    let step1 = first_to(&tg, ONCALL, Duration::from_secs(6)).expect("step 1");
    let at1 = step1.at.duration_since(t0);
    assert!(
        at1 >= Duration::from_millis(1500) && at1 <= Duration::from_secs(4),
        "step 1 after {at1:?}"
    );
    assert!(step1.text().contains("step 1 of 2"), "{}", step1.text());
    assert!(sent_to(&tg, HEADS).is_empty(), "step 2 not yet");

    let step2 = first_to(&tg, HEADS, Duration::from_secs(6)).expect("step 2");
    let at2 = step2.at.duration_since(t0);
    assert!(
        at2 >= Duration::from_millis(3500) && at2 <= Duration::from_secs(6),
        "step 2 after {at2:?}"
    );
    assert!(step2.text().contains("step 2 of 2"), "{}", step2.text());
    assert!(
        step2.text().contains("telegram:oncall"),
        "says who was told before: {}",
        step2.text()
    );
}

#[test]
fn an_acknowledge_press_after_step_one_stops_step_two() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&config(dir.path(), &tg, "2s", "5s"));
    let t0 = alarm(dir.path());
    let msg = first_to(&tg, ALERTS, Duration::from_secs(5)).expect("the alarm");
    let step1 = first_to(&tg, ONCALL, Duration::from_secs(6)).expect("step 1");

    // The one on call presses Acknowledge on step 1's message.
    let id = tg.press(ANNA, &step1, &step1.button_data("Acknowledge").unwrap());
    assert_eq!(wait_answer(&tg, &id).body["text"], "Acknowledged.");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "acknowledged before step 2 was due"
    );
    // Every message of the alert says who, and loses its Acknowledge button; the rest
    // stay.
    assert!(
        wait_until(Duration::from_secs(5), || tg
            .current(&msg)
            .is_some_and(|(text, buttons)| text
                .contains("Acknowledged</b> by @anna")
                && buttons.first().map(String::as_str) == Some("Dismiss"))),
        "{:?}",
        tg.current(&msg)
    );
    let a = &alerts(&agent)[0];
    assert_eq!(a["acknowledged_by"], "telegram:@anna (42)", "{a}");

    // Step 2 was due at 5 s: nothing comes for a while after.
    std::thread::sleep(Duration::from_secs(8).saturating_sub(t0.elapsed()));
    assert!(sent_to(&tg, HEADS).is_empty(), "{:?}", sent_to(&tg, HEADS));
    assert_eq!(sent_to(&tg, ONCALL).len(), 1);
}

#[test]
fn a_restart_between_steps_fires_each_step_once() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "2s", "5s");
    let agent = Agent::start(&cfg);
    let t0 = alarm(dir.path());
    first_to(&tg, ONCALL, Duration::from_secs(6)).expect("step 1");
    // Its delivery noted, then killed: no graceful stop.
    std::thread::sleep(Duration::from_millis(500));
    drop(agent);
    let _agent = Agent::start(&cfg);
    first_to(&tg, HEADS, Duration::from_secs(8)).expect("step 2 after the restart");
    std::thread::sleep(Duration::from_secs(9).saturating_sub(t0.elapsed()));
    assert_eq!(sent_to(&tg, ONCALL).len(), 1, "step 1 once");
    assert_eq!(sent_to(&tg, HEADS).len(), 1, "step 2 once");
}

#[test]
fn a_silence_from_telegram_holds_at_once_and_its_end_sends_what_is_active_once() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    // Escalation far off: this is about the silence.
    let agent = Agent::start(&config(dir.path(), &tg, "1h", "2h"));
    let before = tg.messages().len();
    tg.say(ANNA, "42", None, "/silence 1h vacuum");
    let said = reply_in(&tg, "42", before);
    assert!(said.contains("Silence"), "{said}");
    let made = Instant::now();

    let (_, body, _) = http(agent.addr, "GET", "/api/silences", &[], b"");
    let silences = body["silences"].as_array().cloned().unwrap_or_default();
    assert_eq!(silences.len(), 1, "{body}");
    let s = &silences[0];
    assert_eq!(s["created_by"], "telegram:@anna (42)", "{s}");
    assert_eq!(s["comment"], "from Telegram: vacuum", "{s}");
    let sid = s["id"].as_i64().unwrap();

    // Within a second of the answer, a matching alarm is recorded, not sent.
    let log = dir.path().join("p/a.log");
    append(&log, b"ERROR [vac] vacuum pump failed\n");
    assert!(made.elapsed() < Duration::from_secs(1));
    assert!(wait_until(Duration::from_secs(5), || alerts(&agent)
        .iter()
        .any(|a| a["message"] == "vacuum pump failed")));
    append(&log, b"ERROR [vac] vacuum pump failed\n");
    assert!(wait_until(Duration::from_secs(5), || alerts(&agent)
        .iter()
        .any(|a| a["times_seen"] == 2)));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        sent_to(&tg, ALERTS).is_empty(),
        "{:?}",
        sent_to(&tg, ALERTS)
    );

    // `/silences` lists it, with what it held.
    let before = tg.messages().len();
    tg.say(ANNA, "42", None, "/silences");
    let listed = reply_in(&tg, "42", before);
    assert!(
        listed.contains("vacuum") && listed.contains("anna") && listed.contains("held 2"),
        "{listed}"
    );

    // Its end sends the still active alert once.
    let (status, _, _) = http(
        agent.addr,
        "DELETE",
        &format!("/api/silences/{sid}"),
        &[],
        b"",
    );
    assert_eq!(status, 204);
    let sent = first_to(&tg, ALERTS, Duration::from_secs(5)).expect("sent after the silence");
    assert!(
        sent.text().contains("Still active after the silence"),
        "{}",
        sent.text()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(sent_to(&tg, ALERTS).len(), 1);
}

#[test]
fn a_non_operator_can_neither_silence_nor_acknowledge() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::start(&config(dir.path(), &tg, "1h", "2h"));
    alarm(dir.path());
    let msg = first_to(&tg, ALERTS, Duration::from_secs(5)).expect("the alarm");
    let id = alerts(&agent)[0]["id"].as_i64().unwrap();

    let before = tg.messages().len();
    tg.say(MALLORY, "666", None, "/silence 1h compressor");
    let said = reply_in(&tg, "666", before);
    assert!(said.contains("Only this instrument's operators"), "{said}");
    tg.say(MALLORY, "666", None, &format!("/ack {id}"));
    let press = tg.press(MALLORY, &msg, &msg.button_data("Acknowledge").unwrap());
    assert!(
        wait_answer(&tg, &press).body["text"]
            .as_str()
            .unwrap()
            .starts_with("Only this instrument's operators")
    );
    // The commands were read (the press after them was answered): nothing changed.
    let (_, body, _) = http(agent.addr, "GET", "/api/silences", &[], b"");
    assert_eq!(body["silences"], json!([]), "{body}");
    let a = &alerts(&agent)[0];
    assert!(a["acknowledged_by"].is_null(), "{a}");

    // An operator's `/ack N` does it.
    let before = tg.messages().len();
    tg.say(ANNA, "42", None, &format!("/ack {id}"));
    let said = reply_in(&tg, "42", before);
    assert!(said.contains("Acknowledged"), "{said}");
    assert_eq!(alerts(&agent)[0]["acknowledged_by"], "telegram:@anna (42)");
}

#[test]
fn a_silence_that_runs_out_sends_once_and_escalation_counts_from_its_end() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let _agent = Agent::start(&config(dir.path(), &tg, "2s", "1h"));
    let before = tg.messages().len();
    tg.say(ANNA, "42", None, "/silence 3s compressor");
    let said = reply_in(&tg, "42", before);
    assert!(said.contains("Silence"), "{said}");
    let made = Instant::now();
    let t0 = alarm(dir.path());

    // Held for its 3 s: neither sent nor escalated, though step 1 fell due meanwhile.
    let sent = first_to(&tg, ALERTS, Duration::from_secs(6)).expect("sent when it ran out");
    let at = sent.at.duration_since(made);
    assert!(
        at >= Duration::from_millis(2500) && at <= Duration::from_millis(4500),
        "sent {at:?} after the silence was made"
    );
    assert!(
        sent.text().contains("Still active after the silence"),
        "{}",
        sent.text()
    );
    assert!(
        sent_to(&tg, ONCALL).is_empty(),
        "not escalated while silenced"
    );

    // Step 1 comes 2 s after the silence's end, not at once.
    let step1 = first_to(&tg, ONCALL, Duration::from_secs(5)).expect("step 1");
    let after_end = step1.at.duration_since(sent.at);
    assert!(
        after_end >= Duration::from_millis(1500) && after_end <= Duration::from_secs(4),
        "step 1 {after_end:?} after the silence's end ({:?} after the alarm)",
        step1.at.duration_since(t0)
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(sent_to(&tg, ALERTS).len(), 1, "sent once");
}
