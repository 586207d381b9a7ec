//! The BEC bridge against the real parts: Debian's `redis-server` started on loopback
//! (with and without an ACL user) and BEC's own client library, `bec_lib` from PyPI in
//! the venv of `.ci/run`. Notifications are published with `RedisConnector.notify` and
//! `NotificationMessageObject`, routes set with `MessagingContainer(...).<service>
//! .set_auto_notifications` — nothing on BEC's side is hand-made msgpack.
//!
//! What a session sends straight to a service (`bec.messaging.<service>.new(…).send()`,
//! XADDed to BEC's message stream) is sent through the same classes of bec_lib, and
//! SciLog's entries are compared with what SciLog's own SDK (`scilog` in the venv)
//! composes from the same contents.
//!
//! Without the venv the tests say so and pass, unless `PROTOWATCH_REQUIRE_VENV` is set
//! (as `.ci/run` sets it).

#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::scilog::FakeScilog;
use support::signal::{FakeSignal, group_id};
use support::{Agent, FakeHttp, FakeTelegram, SmtpOptions, SmtpServer, http, wait_until};

const PNG: &[u8] = include_bytes!("../fixtures/bec/red.png");

fn venv_python() -> Option<PathBuf> {
    let dir = std::env::var_os("PROTOWATCH_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ci-venv"));
    let python = dir.join("bin/python");
    let ok = python.exists()
        && Command::new(&python)
            .args(["-c", "import bec_lib.messaging_services"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("PROTOWATCH_REQUIRE_VENV").is_none(),
        "no venv with bec_lib at {} (made by .ci/run)",
        dir.display()
    );
    eprintln!("skipped: no venv with bec_lib at {}", dir.display());
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A redis-server of its own on loopback, gone with the test.
struct Redis {
    child: Child,
    port: u16,
    args: Vec<String>,
    dir: PathBuf,
}

impl Redis {
    fn start(dir: &Path, acl: &[&str]) -> Redis {
        let port = free_port();
        let mut args: Vec<String> = vec![
            "--port".into(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
            "--dir".into(),
            dir.display().to_string(),
        ];
        for a in acl {
            args.extend(a.split(' ').map(str::to_string));
        }
        let dir = dir.to_path_buf();
        let child = Self::spawn(&args);
        let r = Redis {
            child,
            port,
            args,
            dir,
        };
        r.wait_listening();
        r
    }

    fn spawn(args: &[String]) -> Child {
        Command::new("redis-server")
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server (apt-get install redis-server)")
    }

    fn wait_listening(&self) {
        assert!(
            wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
                "127.0.0.1",
                self.port
            ))
            .is_ok()),
            "redis-server did not listen"
        );
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
        self.child = Self::spawn(&self.args);
        self.wait_listening();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `script` with bec_lib; `sys.argv[1]` is Redis' address, then `args`.
fn bec(python: &Path, redis: &Redis, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(format!("{BEC_PRELUDE}{script}{BEC_EPILOGUE}"))
        .arg(redis.address())
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/bec"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Ends a bec_lib script: its connector's threads keep the interpreter alive otherwise.
const BEC_EPILOGUE: &str = r#"
connector.shutdown(per_thread_timeout_s=1)
sys.stdout.flush()
os._exit(0)
"#;

const BEC_PRELUDE: &str = r#"
import os, sys, time
os.environ.setdefault("BEC_LOG_LEVEL", "ERROR")
from bec_lib.redis_connector import RedisConnector
from bec_lib.messaging_services import MessagingContainer, NotificationMessageObject
connector = RedisConnector(sys.argv[1])
if os.environ.get("BEC_TEST_USER"):
    connector.authenticate(username=os.environ["BEC_TEST_USER"], password=os.environ["BEC_TEST_PASSWORD"])

# The connector's threads keep the interpreter alive after an uncaught error: a failed
# script must end, with its traceback, not hang the test.
def _die(kind, value, tb):
    import traceback
    traceback.print_exception(kind, value, tb)
    sys.stderr.flush()
    os._exit(1)
sys.excepthook = _die

def wait(cond, what, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    print("timed out: " + what, file=sys.stderr)
    sys.stderr.flush()
    os._exit(1)
"#;

fn agent_config(dir: &Path, mut top: Value) -> PathBuf {
    top["api"] = json!({"listen": "127.0.0.1:0"});
    support::write_config(dir, &top)
}

fn healthz_bec(agent: &Agent) -> Value {
    let (status, body, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    body["bec"].clone()
}

fn metric(agent: &Agent, name: &str) -> f64 {
    let (_, _, text) = http(agent.addr, "GET", "/metrics", &[], b"");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1.0)
}

fn wait_link(agent: &Agent, state: &str) {
    assert!(
        wait_until(Duration::from_secs(20), || healthz_bec(agent)["link"]
            == state),
        "the BEC link is not {state}: {}",
        healthz_bec(agent)
    );
}

#[test]
fn a_bec_notify_reaches_mail_telegram_and_teams_with_its_file() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(dir, &[]);
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let teams = FakeHttp::start();
    let cfg = agent_config(
        dir,
        json!({
            "instrument": "X12SA",
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "from": "x12sa@example.org", "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": "123:ABC", "channel-id": "-100777", "api-url": tg.url},
            "webhook": {"scopes": {"teams": {"url": format!("{}/workflows/run", teams.url),
                                             "preset": "teams"}}},
            "routes": {"sample_mount_failed": [{"service": "mail"}, {"service": "telegram"}]},
            "bec": {"redis": redis.address(), "publish_services": true},
        }),
    );
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    wait_link(&agent, "up");

    // publish_services: BEC's client sees teams enabled with our scope, and routes it.
    let started = Instant::now();
    bec(
        &python,
        &redis,
        r#"
m = MessagingContainer(connector)
wait(lambda: m.teams._enabled and "teams" in m.teams._scopes, "teams enabled")
assert not m.signal._enabled
m.teams.set_auto_notifications("sample_mount_failed", enabled=True, scopes="teams")
"#,
        &[],
    );
    let routed = || {
        let (_, r, _) = http(agent.addr, "GET", "/api/routes", &[], b"");
        r["routes"]["sample_mount_failed"]
            .as_array()
            .is_some_and(|to| to.contains(&json!("webhook:teams")))
            && r["bec"].as_array().is_some_and(|b| {
                b.contains(
                    &json!({"event": "sample_mount_failed", "to": "webhook:teams", "from": "bec"}),
                )
            })
    };
    assert!(
        wait_until(Duration::from_secs(5), routed),
        "the BEC route was not taken"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    // The console marks it as BEC's.
    let (_, r, _) = http(agent.addr, "GET", "/api/console/routes", &[], b"");
    assert!(
        r["routes"].as_array().unwrap().contains(
            &json!({"event": "sample_mount_failed", "to": ["webhook:teams"], "from": "bec"})
        ),
        "{r}"
    );

    // BEC's documented example, with a PNG.
    bec(
        &python,
        &redis,
        r#"
msg = NotificationMessageObject()
msg.add_text("Sample mount failed", bold=True, color="red")
msg.add_text(" Please check the robot status before retrying.")
msg.add_tags(["sample-exchange", "robot"])
msg.add_attachment("red.png")
connector.notify("sample_mount_failed", msg)
"#,
        &[],
    );
    let log = || std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    let mails = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(mails.len(), 1, "{}", log());
    let mail = &mails[0];
    let html = mail.part("text/html");
    assert!(html.contains("Sample mount failed"), "{html}");
    assert!(html.contains("color:red"), "{html}");
    assert!(html.contains("<b>") || html.contains("<strong>"), "{html}");
    assert!(
        mail.subject.contains("sample_mount_failed")
            || mail.subject.contains("Sample mount failed"),
        "{}",
        mail.subject
    );
    assert!(
        mail.attachments
            .iter()
            .any(|(name, ct, data)| name == "red.png" && ct == "image/png" && data == PNG),
        "{:?}",
        mail.attachments
            .iter()
            .map(|(n, c, _)| (n, c))
            .collect::<Vec<_>>()
    );

    let sent = tg.wait_for(1, Duration::from_secs(15));
    assert!(!sent.is_empty(), "{}", log());
    let all = tg.requests();
    let photo = all
        .iter()
        .find(|r| r.method == "sendphoto" || r.method == "senddocument")
        .unwrap_or_else(|| {
            panic!(
                "no file sent to Telegram: {:?}",
                all.iter().map(|r| &r.method).collect::<Vec<_>>()
            )
        });
    let raw = String::from_utf8_lossy(&photo.raw);
    assert!(
        photo.raw.windows(PNG.len()).any(|w| w == PNG),
        "the PNG's bytes"
    );
    let text: String = all
        .iter()
        .map(|r| format!("{} {}", String::from_utf8_lossy(&r.raw), r.body))
        .collect();
    assert!(text.contains("<b>Sample mount failed</b>"), "{raw}\n{text}");

    let hooks = teams.wait_for(1, Duration::from_secs(15));
    assert_eq!(hooks.len(), 1, "{}", log());
    let card = hooks[0].text();
    assert!(card.contains("Sample mount failed"), "{card}");
    assert!(
        card.contains("red.png"),
        "the file is named in the card: {card}"
    );

    // Disabled from bec_lib: the next one goes to mail and Telegram only.
    bec(
        &python,
        &redis,
        r#"
m = MessagingContainer(connector)
wait(lambda: m.teams._enabled, "teams enabled")
m.teams.set_auto_notifications("sample_mount_failed", enabled=False, scopes="teams")
"#,
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(5), || !routed()),
        "the BEC route was not removed"
    );
    bec(
        &python,
        &redis,
        r#"connector.notify("sample_mount_failed", "Gripper stuck, operator called")"#,
        &[],
    );
    assert_eq!(
        smtp.wait_for(2, Duration::from_secs(15)).len(),
        2,
        "{}",
        log()
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        teams.requests().len(),
        1,
        "no webhook after the route was disabled"
    );
    assert_eq!(metric(&agent, "protowatch_bec_notifications_total"), 2.0);

    // A BEC config routing to a service we do not serve (as an Atlas deployment's may):
    // the served part is taken, the rest is shown by `routes list` as unserved.
    bec(
        &python,
        &redis,
        r#"
from bec_lib import messages
from bec_lib.endpoints import MessageEndpoints
T = messages.NotificationServiceTarget
connector.set_and_publish(MessageEndpoints.notification_config(), messages.NotificationConfigMessage(
    routes={"sample_mount_failed": [T(service_name="teams", scope="teams"),
                                    T(service_name="signal", scope="beamline-ops")]}))
"#,
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(5), routed),
        "the BEC route was not taken"
    );
    agent.stop();
    let out = support::protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["routes", "list"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let bec_part = text.split("from BEC").nth(1).unwrap_or_default();
    assert!(
        bec_part.contains("sample_mount_failed  webhook:teams"),
        "{text}"
    );
    assert!(bec_part.contains("signal:beamline-ops  unserved"), "{text}");
}

#[test]
fn a_redis_restart_is_survived_and_garbage_is_counted() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut redis = Redis::start(dir, &[]);
    let tg = FakeTelegram::start();
    let cfg = agent_config(
        dir,
        json!({
            "telegram": {"bot-id": "123:ABC", "channel-id": "-100777", "api-url": tg.url},
            "bec": {"redis": redis.address()},
        }),
    );
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    wait_link(&agent, "up");
    // Not BEC's format: counted, logged, and the bridge goes on.
    bec(
        &python,
        &redis,
        r#"connector._redis_conn.publish("internal/messaging_services/notification/alarm_major", b"\xc1garbage")"#,
        &[],
    );
    bec(
        &python,
        &redis,
        r#"connector.notify("alarm_major", "Vacuum lost in the sample chamber")"#,
        &[],
    );
    assert_eq!(tg.wait_for(1, Duration::from_secs(15)).len(), 1);
    assert!(wait_until(Duration::from_secs(5), || metric(
        &agent,
        "protowatch_bec_undecodable_total"
    ) == 1.0));
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    assert!(
        log.contains("internal/messaging_services/notification/alarm_major")
            && log.contains("bytes"),
        "{log}"
    );

    redis.kill();
    wait_link(&agent, "down");
    let (_, h, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    assert_eq!(h["status"], "degraded");
    assert_eq!(metric(&agent, "protowatch_bec_link_up"), 0.0);
    redis.restart();
    wait_link(&agent, "up");
    bec(
        &python,
        &redis,
        r#"connector.notify("alarm_major", "Cryostat heater off")"#,
        &[],
    );
    assert_eq!(tg.wait_for(2, Duration::from_secs(15)).len(), 2);
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    assert!(log.contains("BEC link back after"), "{log}");
}

#[test]
fn an_acl_user_authenticates_and_its_password_stays_secret() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(
        dir,
        &[
            "--user default off",
            "--user admin on >admin-pw ~* &* +@all",
            "--user protowatch on >pw-Zq81 ~user/messaging_services/* ~info/messaging_services/* &internal/messaging_services/notification/* &user/messaging_services/* +@all -@dangerous",
        ],
    );
    let tg = FakeTelegram::start();
    std::fs::write(dir.join("redis-password"), "pw-Zq81\n").unwrap();
    let cfg = agent_config(
        dir,
        json!({
            "telegram": {"bot-id": "123:ABC", "channel-id": "-100777", "api-url": tg.url},
            "bec": {"redis": redis.address(), "user": "protowatch", "password_file": "redis-password"},
        }),
    );
    let out = support::protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("check-config")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("pw-Zq81"), "{shown}");
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    wait_link(&agent, "up");
    let out = Command::new(&python)
        .arg("-c")
        .arg(format!(
            "{BEC_PRELUDE}connector.notify('alarm_minor', 'Beam dump in 10 min'){BEC_EPILOGUE}"
        ))
        .arg(redis.address())
        .env("BEC_TEST_USER", "admin")
        .env("BEC_TEST_PASSWORD", "admin-pw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tg.wait_for(1, Duration::from_secs(15)).len(), 1);
    agent.stop();
    let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
    assert!(!log.contains("pw-Zq81"), "{log}");

    // A wrong password: the link stays down and says why, without the password.
    std::fs::write(dir.join("redis-password"), "wrong-pw-77\n").unwrap();
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent2.log"));
    std::thread::sleep(Duration::from_secs(1));
    let h = healthz_bec(&agent);
    assert_eq!(h["link"], "down", "{h}");
    assert!(!h.to_string().contains("wrong-pw-77"), "{h}");
}

#[test]
fn a_burst_of_1000_notifications_is_throttled_and_counted() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(dir, &[]);
    let tg = FakeTelegram::start();
    let cfg = agent_config(
        dir,
        json!({
            "telegram": {"bot-id": "123:ABC", "channel-id": "-100777", "api-url": tg.url},
            "bec": {"redis": redis.address()},
        }),
    );
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent.log"));
    wait_link(&agent, "up");
    bec(
        &python,
        &redis,
        r#"
for i in range(1000):
    connector.notify("alarm_major", f"Detector {i % 7} timeout after {1500 + i} ms")
"#,
        &[],
    );
    let seen = || {
        let (_, alerts, _) = http(agent.addr, "GET", "/api/alerts", &[], b"");
        alerts
            .as_object()
            .and_then(|a| a.values().find(|a| a["event"] == "alarm_major"))
            .and_then(|a| a["times_seen"].as_u64())
            .unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(30), || seen() == 1000),
        "times_seen {}",
        seen()
    );
    assert_eq!(metric(&agent, "protowatch_bec_notifications_total"), 1000.0);
    std::thread::sleep(Duration::from_millis(500));
    // One message for the first; the repeats are counted, not sent.
    assert_eq!(
        tg.messages().len(),
        1,
        "{:?}",
        tg.messages().iter().map(|m| &m.body).collect::<Vec<_>>()
    );
    let (_, _, metrics) = http(agent.addr, "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("protowatch_events_total{event=\"alarm_major\",severity=\"major\"} 1000"),
        "{metrics}"
    );
}

/// Redis with `timeout 1` (a common hardening, made short) closes every idle connection
/// that is not subscribed. The link is the subscription: a quiet stretch longer than the
/// bridge's check (15 s) must not tear it down, and the next notification arrives.
#[test]
fn an_idle_timeout_in_redis_does_not_break_the_link() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(dir, &["--timeout 1"]);
    let tg = FakeTelegram::start();
    let cfg = agent_config(
        dir,
        json!({
            "telegram": {"bot-id": "123:ABC", "channel-id": "-100777", "api-url": tg.url},
            "bec": {"redis": redis.address(), "publish_services": true},
        }),
    );
    let log = dir.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    wait_link(&agent, "up");
    let start_up = std::fs::read_to_string(&log).unwrap_or_default().len();
    // Longer than the check of the link, and many times Redis' timeout.
    std::thread::sleep(Duration::from_secs(17));
    assert_eq!(healthz_bec(&agent)["link"], "up");
    assert_eq!(
        healthz_bec(&agent)["connects"],
        1,
        "{}",
        healthz_bec(&agent)
    );
    bec(
        &python,
        &redis,
        r#"connector.notify("alarm_major", "Cryostat heater off after a quiet night")"#,
        &[],
    );
    let sent = tg.wait_for(1, Duration::from_secs(10));
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text().contains("Cryostat heater off"));
    assert_eq!(healthz_bec(&agent)["connects"], 1);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warned: Vec<&str> = text[start_up..]
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(warned.is_empty(), "warnings while quiet: {warned:#?}");
}

/// `bec` as a BEC session has it, as far as the messaging lines reach. In a session
/// `bec` is the `BECClient`, and `bec.messaging` the `MessagingContainer` it builds on
/// its connector; a `BECClient` needs BEC's servers running (scan server, device
/// server), so the test builds the same container on its own connector and names it
/// `bec.messaging`: the lines of BEC's guide then run as they are written, through
/// bec_lib's own classes, up to its XADD.
const SESSION: &str = r#"
import json
from types import SimpleNamespace
bec = SimpleNamespace(messaging=MessagingContainer(connector))
wait(lambda: all(s._enabled for s in (bec.messaging.teams, bec.messaging.scilog, bec.messaging.signal)), "services enabled")

def sdk_entry(msg):
    """What SciLog's own SDK composes from a message's contents."""
    from scilog.logbook_message import LogbookMessage
    entry = LogbookMessage()
    for c in msg._content:
        if hasattr(c, "content"):
            entry.add_text(c.content)
        elif hasattr(c, "filename"):
            entry.add_file(c.filename, width=c.width, height=c.height)
    return {"textcontent": entry._content.textcontent,
            "styles": [f.get("style") for f in entry._content.files or []]}
"#;

const SIGNAL_ACCOUNT: &str = "+41790000001";
const BEC_NUMBER: &str = "+41791234567";

/// A SciLog entry's HTML with each file's hash (a random UUID) as `HASH`.
fn without_hashes(html: &str) -> String {
    regex::Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
        .unwrap()
        .replace_all(html, "HASH")
        .into_owned()
}

fn stream_health(agent: &Agent) -> Value {
    healthz_bec(agent)["stream"].clone()
}

fn wait_reading(agent: &Agent) {
    assert!(
        wait_until(Duration::from_secs(20), || stream_health(agent)["reading"]
            == true),
        "the BEC message stream is not read: {}",
        healthz_bec(agent)
    );
}

#[test]
fn what_a_session_sends_straight_to_a_service_is_delivered_once_across_a_restart() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(dir, &[]);
    let teams = FakeHttp::start();
    let scilog = FakeScilog::start();
    scilog.add_user("bl-operator", "Sci-l0g-PASSWORD-77");
    scilog.add_logbook("lb-0001", "p12345 beamtime");
    let signal = FakeSignal::start(SIGNAL_ACCOUNT);
    signal.add_group(&group_id(7), "beamline ops");
    signal.register(BEC_NUMBER);
    let cfg = agent_config(
        dir,
        json!({
            "instrument": "X12SA",
            "webhook": {"scopes": {"teams": {"url": format!("{}/workflows/run", teams.url),
                                             "preset": "teams"}},
                        "default_scope": "teams"},
            "scilog": {"url": scilog.url, "user": "bl-operator", "password": "Sci-l0g-PASSWORD-77",
                       "scopes": {"default": {"logbook": "lb-0001"}}},
            "signal": {"url": signal.url, "api": "rest", "number": SIGNAL_ACCOUNT,
                       "scopes": {"beamline-ops": {"group": group_id(7)}}},
            "bec": {"redis": redis.address(), "publish_services": true},
        }),
    );
    let log = dir.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    wait_reading(&agent);
    let out = bec(
        &python,
        &redis,
        &format!(
            "{SESSION}{}",
            r#"
bec.messaging.teams.new("Sample changed").send()
bec.messaging.scilog.new().add_text("Scan 1203 done").add_tags("scan").add_attachment("fit.png").send()
bec.messaging.signal.new("Beam back").send(scope="+41791234567")

first = bec.messaging.scilog.new().add_text("Scan 1203 done").add_attachment("fit.png")
msg = bec.messaging.scilog.new().add_text("Fit of scan 1203", bold=True)
table = msg.add_table(["x", "x²"], title="Quadratic values")
table.add_row("2", "4")
msg.add_attachment("fit.png", width=400)
print(json.dumps([sdk_entry(first), sdk_entry(msg)]))
msg.send()
"#
        ),
        &[],
    );
    let sdk: Value = serde_json::from_str(out.trim()).unwrap();
    let text = || std::fs::read_to_string(&log).unwrap_or_default();

    // Teams: the card.
    let hooks = teams.wait_for(1, Duration::from_secs(15));
    assert_eq!(hooks.len(), 1, "{}", text());
    assert!(
        hooks[0].text().contains("Sample changed"),
        "{}",
        hooks[0].text()
    );

    // Signal: to that number, not to the group.
    let sent = signal.wait_for(1, Duration::from_secs(15));
    assert_eq!(sent.len(), 1, "{}", text());
    assert_eq!(sent[0].recipients, [BEC_NUMBER]);
    assert_eq!(sent[0].group, None);
    assert!(sent[0].text.contains("Beam back"), "{}", sent[0].text);

    // SciLog: two entries as the SDK composes them, with their files and tags.
    let entries = scilog.wait_for_entries(2, Duration::from_secs(15));
    assert_eq!(entries.len(), 2, "{}", text());
    let (scan, table) = if entries[0]["textcontent"]
        .as_str()
        .unwrap()
        .contains("Quadratic")
    {
        (&entries[1], &entries[0])
    } else {
        (&entries[0], &entries[1])
    };
    for (entry, want) in [(scan, &sdk[0]), (table, &sdk[1])] {
        assert_eq!(
            without_hashes(entry["textcontent"].as_str().unwrap()),
            without_hashes(want["textcontent"].as_str().unwrap()),
            "{entry}"
        );
        assert_eq!(entry["files"][0]["style"], want["styles"][0], "{entry}");
        assert_eq!(entry["files"][0]["fileExtension"], "image/png");
    }
    let tags = |e: &Value| -> Vec<String> {
        serde_json::from_value(e["tags"].clone()).unwrap_or_default()
    };
    assert!(
        tags(scan).contains(&"scan".to_string()) && tags(scan).contains(&"bec".to_string()),
        "{scan}"
    );
    assert!(
        table["textcontent"].as_str().unwrap().contains(
            "<figure class=\"table\"><table><tbody><tr><td><strong>x</strong></td><td><strong>x²</strong></td></tr><tr><td>2</td><td>4</td></tr></tbody></table></figure>"
        ),
        "{table}"
    );
    assert_eq!(table["files"][0]["style"]["width"], "400px");
    assert_eq!(scilog.files().len(), 2);
    assert!(scilog.files().iter().all(|f| f.data == PNG));

    // Stopped between two sends: each is delivered once.
    agent.stop();
    bec(
        &python,
        &redis,
        &format!("{SESSION}bec.messaging.teams.new(\"Sample changed back\").send()\n"),
        &[],
    );
    let agent = Agent::start_logging_to(&cfg, &dir.join("agent2.log"));
    let hooks = teams.wait_for(2, Duration::from_secs(15));
    assert_eq!(hooks.len(), 2);
    assert!(
        hooks[1].text().contains("Sample changed back"),
        "{}",
        hooks[1].text()
    );
    assert!(
        !hooks[1].text().contains("Sample changed\""),
        "{}",
        hooks[1].text()
    );

    // A scope we do not serve: refused, one line for the pair, each counted.
    bec(
        &python,
        &redis,
        &format!(
            "{SESSION}bec.messaging.teams.new(\"To nowhere\").send(scope=\"nope\")\nbec.messaging.teams.new(\"Again\").send(scope=\"nope\")\n"
        ),
        &[],
    );
    assert!(
        wait_until(Duration::from_secs(10), || stream_health(&agent)["refused"]
            == 2),
        "{}",
        healthz_bec(&agent)
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(teams.requests().len(), 2);
    assert_eq!(signal.sent().len(), 1);
    assert_eq!(scilog.entries().len(), 2);
    assert_eq!(
        stream_health(&agent)["refused_by"],
        json!([{"service": "teams", "scope": "nope", "count": 2}])
    );
    assert_eq!(metric(&agent, "protowatch_bec_stream_refused_total"), 2.0);
    let log2 = std::fs::read_to_string(dir.join("agent2.log")).unwrap_or_default();
    let refusals: Vec<&str> = log2
        .lines()
        .filter(|l| l.contains("do not serve"))
        .collect();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert!(
        refusals[0].contains("teams") && refusals[0].contains("nope"),
        "{}",
        refusals[0]
    );
}

/// bec_lib keeps the stream at about 50 entries: of 300 sent while the agent is
/// stopped, those still there are delivered once each, the rest reported with their
/// count (Redis 7's `entries-added`).
#[test]
fn sends_while_the_agent_is_stopped_are_delivered_or_reported_missed() {
    let Some(python) = venv_python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let redis = Redis::start(dir, &[]);
    let teams = FakeHttp::start();
    let cfg = agent_config(
        dir,
        json!({
            "webhook": {"scopes": {"teams": {"url": format!("{}/workflows/run", teams.url),
                                             "preset": "teams"}},
                        "default_scope": "teams"},
            // Each message its own request, not a digest.
            "throttle": {"per_minute": {"webhook": 10000}},
            "bec": {"redis": redis.address(), "publish_services": true},
        }),
    );
    let first_log = dir.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &first_log);
    wait_reading(&agent);
    // BEC's client enables teams from what the agent published.
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&first_log)
            .unwrap_or_default()
            .contains("published our services to BEC")
    }));
    agent.stop();
    let out = bec(
        &python,
        &redis,
        r#"
from types import SimpleNamespace
bec = SimpleNamespace(messaging=MessagingContainer(connector))
wait(lambda: bec.messaging.teams._enabled, "teams enabled")
for i in range(300):
    bec.messaging.teams.new(f"note {i} of 300").send()
left = connector._redis_conn.xrange("internal/message_service/queue")
print(" ".join(str(int(i)) for i in range(300) if any(f"note {i} of 300".encode() in e[1][b"data"] for e in left)))
"#,
        &[],
    );
    let left: Vec<usize> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert!(
        !left.is_empty() && left.len() < 300,
        "bec_lib trims the stream: {} left",
        left.len()
    );
    let log = dir.join("agent2.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    let hooks = teams.wait_for(left.len(), Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(500));
    let hooks_now = teams.requests();
    assert_eq!(hooks_now.len(), hooks.len().max(left.len()));
    for i in &left {
        let n = hooks_now
            .iter()
            .filter(|h| h.text().contains(&format!("note {i} of 300")))
            .count();
        assert_eq!(n, 1, "note {i}");
    }
    let missed = 300 - left.len() as u64;
    let s = stream_health(&agent);
    assert_eq!(s["missed"], missed, "{s}");
    assert_eq!(s["last_missed"]["count"], missed, "{s}");
    assert_eq!(
        metric(&agent, "protowatch_bec_stream_missed_total"),
        missed as f64
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.contains(" WARN ") && l.contains(&format!("{missed} messages sent between"))),
        "{text}"
    );
}
