//! Quiet hours: every connection and timer that outlives a request still works after a
//! silence longer than its timeout. An instrument is quiet almost all the time, and the
//! alarm comes after hours of nothing; these tests make the timeouts short (in the
//! config or in the fake server) and stay quiet for longer than them, then check that
//! the next event, press or send goes through at once, with no failed attempt and no
//! warning in the agent's log.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, append, http, wait_until};

const ANNA: (u64, &str) = (42, "anna");

/// The lines of the agent's log at WARN or ERROR.
fn warnings(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .map(String::from)
        .collect()
}

fn active(agent: &Agent) -> Value {
    let (status, body, _) = http(agent.addr, "GET", "/api/alerts", &[], b"");
    assert_eq!(status, 200);
    body
}

/// The Bot API is asked to hold each `getUpdates` for `poll_timeout_s`; the client must
/// wait for that answer, whatever the timeout of the other calls. A poll abandoned by its
/// client makes the bot deaf to presses until the back-off ends (it was a minute).
#[test]
fn a_press_after_ten_quiet_polls_is_handled_at_once_and_no_poll_was_abandoned() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    // Sends give up after 2 s (`timeout_s` and a second); a poll is held for 3 s: a
    // poll bounded by the sends' timeout would be abandoned every time.
    let cfg = watched(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "-100200", "api-url": tg.url,
                            "operators": [42], "poll_timeout_s": 3, "timeout_s": 1}}),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    append(&dir.path().join("p/a.log"), b"ERROR [det] HV trip\n");
    let sent = tg.wait_for(1, Duration::from_secs(10));
    assert_eq!(sent.len(), 1, "{:?}", tg.requests());
    let msg = sent[0].clone();

    // Ten poll timeouts of silence.
    std::thread::sleep(Duration::from_secs(30));
    let polls = tg.requests_of("getUpdates").len();
    assert!(
        (8..=13).contains(&polls),
        "a 3 s poll over 30 s of silence is about ten polls, not {polls}"
    );
    assert_eq!(tg.abandoned_polls(), 0, "polls given up by the agent");

    let pressed = Instant::now();
    let id = tg.press(ANNA, &msg, &msg.button_data("Dismiss").unwrap());
    assert!(
        wait_until(Duration::from_secs(1), || active(&agent)
            .as_object()
            .unwrap()
            .is_empty()),
        "the press was not handled within 1 s"
    );
    let took = pressed.elapsed();
    assert!(
        wait_until(Duration::from_secs(2), || !tg.answers_to(&id).is_empty()),
        "the press was not answered"
    );
    assert_eq!(tg.answers_to(&id)[0].body["text"], "Dismissed.");
    assert_eq!(tg.abandoned_polls(), 0);
    assert_eq!(warnings(&log), Vec::<String>::new(), "warnings while quiet");
    eprintln!("press after 30 s of silence → dismissed in {took:?}");
}

/// A poll that fails after a success (a connection dropped by the network while it was
/// held) is asked again at once; a second failure waits.
#[test]
fn a_failed_poll_is_retried_at_once_then_backs_off() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = watched(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "-100200", "api-url": tg.url,
                            "operators": [42], "poll_timeout_s": 1}}),
    );
    let log = dir.path().join("agent.log");
    let _agent = Agent::start_logging_to(&cfg, &log);
    assert!(
        wait_until(Duration::from_secs(10), || tg
            .requests_of("getUpdates")
            .len()
            >= 2),
        "{:?}\n{}",
        tg.requests(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let before = tg.requests_of("getUpdates").len();
    tg.script_method(
        "getUpdates",
        [support::Reply::Hangup, support::Reply::Hangup],
    );
    assert!(
        wait_until(Duration::from_secs(10), || tg
            .requests_of("getUpdates")
            .len()
            >= before + 3),
        "{:?}\n{}",
        tg.requests_of("getUpdates")
            .iter()
            .map(|r| r.at)
            .collect::<Vec<_>>(),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let polls = tg.requests_of("getUpdates");
    // The scripted answers are taken by the first poll to arrive after they were set:
    // the one that was being held when they were set still answers normally.
    let first_failed = (before..polls.len() - 2)
        .find(|&i| polls[i + 1].at.duration_since(polls[i].at) < Duration::from_millis(300))
        .unwrap_or_else(|| panic!("no poll was retried at once"));
    let again = polls[first_failed + 1]
        .at
        .duration_since(polls[first_failed].at);
    let then = polls[first_failed + 2]
        .at
        .duration_since(polls[first_failed + 1].at);
    assert!(again < Duration::from_millis(300), "{again:?}");
    assert!(
        then >= Duration::from_millis(900),
        "the second failure did not wait: {then:?}"
    );
}

/// A counter of the agent's `/metrics`, summed over its labels.
fn metric_sum(agent: &Agent, name: &str) -> f64 {
    let (_, _, text) = http(agent.addr, "GET", "/metrics", &[], b"");
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn watched(dir: &Path, services: Value) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let mut c = services;
    c["watch"] = json!([{"path": "p/*.log", "poll_interval_ms": 100}]);
    c["api"] = json!({"listen": "127.0.0.1:0"});
    support::write_config(dir, &c)
}

/// Most SMTP servers close a connection idle for a few minutes (aiosmtpd here after
/// 1 s). The pooled connection is tested before it is used again; the next mail goes
/// out on a new connection, with no failed attempt.
#[test]
fn a_mail_after_the_server_closed_the_idle_connection_goes_out_at_the_first_try() {
    let smtp = support::SmtpServer::start(support::SmtpOptions {
        idle_timeout: Some(Duration::from_secs(1)),
        ..support::SmtpOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = watched(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                        "recipients": ["ops@example.org"]}}),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    append(&dir.path().join("p/a.log"), b"ERROR [det] HV trip\n");
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);
    // Quiet for three of the server's idle timeouts.
    std::thread::sleep(Duration::from_secs(3));
    let sent_at = Instant::now();
    append(
        &dir.path().join("p/a.log"),
        b"ERROR [vacuum] pressure rising\n",
    );
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2, "{mails:?}");
    assert!(sent_at.elapsed() < Duration::from_secs(5));
    assert_ne!(
        mails[0].peer_port, mails[1].peer_port,
        "the server closed the first connection; the second mail came on a new one"
    );
    assert_eq!(metric_sum(&agent, "protowatch_send_failures_total"), 0.0);
    assert_eq!(warnings(&log), Vec::<String>::new());
}

/// A web server closes a kept-alive connection after a few idle seconds (Apache and
/// Node after 5 s; this one after 1 s). The next webhook goes out on a new connection,
/// with no failed attempt.
#[test]
fn a_webhook_after_the_server_closed_the_pooled_connection_goes_out_at_the_first_try() {
    use std::io::{BufRead, BufReader};
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/idle_http.py");
    let mut server = std::process::Command::new(support::python())
        .arg(script)
        .args(["--idle", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    let port: u16 = ready.strip_prefix("READY ").unwrap().parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&l).unwrap());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = watched(
        dir.path(),
        json!({"webhook": {"scopes": {"default": {"url": format!("http://127.0.0.1:{port}/hook")}}}}),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    append(&dir.path().join("p/a.log"), b"ERROR [det] HV trip\n");
    let first = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the first webhook");
    std::thread::sleep(Duration::from_secs(3));
    append(
        &dir.path().join("p/a.log"),
        b"ERROR [vacuum] pressure rising\n",
    );
    let second = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the second webhook");
    assert!(second["body"].as_str().unwrap().contains("pressure rising"));
    assert_ne!(first["peer_port"], second["peer_port"]);
    assert!(
        rx.recv_timeout(Duration::from_millis(500)).is_err(),
        "sent twice"
    );
    assert_eq!(metric_sum(&agent, "protowatch_send_failures_total"), 0.0);
    assert_eq!(warnings(&log), Vec::<String>::new());
    let _ = server.kill();
    let _ = server.wait();
}

/// SciLog's token expires (hours in a real SciLog; 1 s here) while nothing is sent. The
/// first entry after the silence logs in again and is delivered, with no failed attempt.
#[test]
fn a_scilog_entry_after_its_token_expired_logs_in_again_without_a_failed_delivery() {
    let scilog = support::scilog::FakeScilog::start();
    scilog.add_user("bl-operator", "Sci-l0g-PASSWORD-77");
    scilog.add_logbook("lb-0001", "p12345 beamtime");
    scilog.token_lifetime(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let cfg = watched(
        dir.path(),
        json!({"scilog": {"url": scilog.url, "user": "bl-operator",
                          "password": "Sci-l0g-PASSWORD-77",
                          "scopes": {"default": {"logbook": "lb-0001"}}}}),
    );
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    append(&dir.path().join("p/a.log"), b"ERROR [det] HV trip\n");
    assert_eq!(scilog.wait_for_entries(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(scilog.logins(), 1);
    std::thread::sleep(Duration::from_secs(3));
    append(
        &dir.path().join("p/a.log"),
        b"ERROR [vacuum] pressure rising\n",
    );
    let entries = scilog.wait_for_entries(2, Duration::from_secs(10));
    assert_eq!(entries.len(), 2);
    assert_eq!(scilog.logins(), 2, "logged in again after the expiry");
    assert_eq!(metric_sum(&agent, "protowatch_send_failures_total"), 0.0);
    assert_eq!(warnings(&log), Vec::<String>::new());
}
