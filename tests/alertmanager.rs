//! The `alertmanager` service against the real Prometheus Alertmanager (Debian's
//! `prometheus-alertmanager`), two independent instances started on loopback with a
//! generated config, as an HA pair whose members do not share alerts: the agent must post
//! to both. Alertmanager's `resolve_timeout` is set short, so an alert that is still
//! shown after several of those has been posted again.

#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Agent, append, http, wait_until};

const BINARY: &str = "prometheus-alertmanager";
/// Alertmanager ends an alert without `endsAt` this long after its last post.
const RESOLVE_TIMEOUT_S: u64 = 8;

struct Alertmanager {
    child: Child,
    addr: std::net::SocketAddr,
}

impl Alertmanager {
    fn start(dir: &Path) -> Alertmanager {
        Self::start_on(dir, free_port())
    }

    fn start_on(dir: &Path, port: u16) -> Alertmanager {
        std::fs::create_dir_all(dir).unwrap();
        let config = dir.join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  resolve_timeout: {RESOLVE_TIMEOUT_S}s\n\
                 route:\n  receiver: blackhole\n  group_wait: 1s\n  group_interval: 1s\n\
                 receivers:\n  - name: blackhole\n"
            ),
        )
        .unwrap();
        let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let child = Command::new(BINARY)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            // No gossip: each member knows only what it was sent, which is what an
            // agent has to cope with.
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("alertmanager.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {BINARY} (apt-get install prometheus-alertmanager): {e}")
            });
        let am = Alertmanager { child, addr };
        assert!(
            wait_until(Duration::from_secs(20), || {
                std::net::TcpStream::connect(addr).is_ok() && am.get("/-/ready").0 == 200
            }),
            "Alertmanager did not come up: {}",
            std::fs::read_to_string(dir.join("alertmanager.log")).unwrap_or_default()
        );
        am
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let (status, json, _) = http(self.addr, "GET", path, &[], b"");
        (status, json)
    }

    /// The alerts it shows as firing (resolved ones are not listed).
    fn alerts(&self) -> Vec<Value> {
        match self.get("/api/v2/alerts").1 {
            Value::Array(a) => a,
            _ => Vec::new(),
        }
    }

    fn alert(&self, alertname: &str) -> Option<Value> {
        self.alerts()
            .into_iter()
            .find(|a| a["labels"]["alertname"] == alertname)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(dir: &Path, urls: &[String], routes: Option<Value>) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let mut c = json!({
        "instrument": "IN5",
        "alertmanager": {"urls": urls, "labels": {"facility": "ill", "team": "tof"},
                         "repost_interval": "2s", "timeout_s": 2},
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100, "start": "beginning"}],
        "api": {"listen": "127.0.0.1:0"},
    });
    if let Some(r) = routes {
        c["routes"] = r;
    }
    support::write_config(dir, &c)
}

#[test]
fn an_alert_reaches_both_members_stays_while_reposted_and_is_resolved_on_dismissal() {
    let tmp = tempfile::tempdir().unwrap();
    let am1 = Alertmanager::start(&tmp.path().join("am1"));
    let am2 = Alertmanager::start(&tmp.path().join("am2"));
    // A third member that takes connections and never answers: it must not hold back
    // what the other two take.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let dir = tmp.path().join("agent");
    let cfg = config(
        &dir,
        &[am1.url(), format!("{}/", am2.url()), hung_url],
        None,
    );
    let agent = Agent::start_logging_to(&cfg, &tmp.path().join("agent.log"));
    append(
        &dir.join("p/run.log"),
        b"2026-11-20 14:03:12 ERROR 1 [detector] HV trip on channel 7\n\
          2026-11-20 14:03:13 INFO 3 [motor] moved to 12.5\n\
          2026-11-20 14:03:14 ERROR 1 [detector] HV trip on channel 9\n",
    );
    for am in [&am1, &am2] {
        assert!(
            wait_until(Duration::from_secs(15), || am
                .alert("alarm_major")
                .is_some()),
            "no alert at {}: {:?}\nagent log:\n{}",
            am.url(),
            am.alerts(),
            std::fs::read_to_string(tmp.path().join("agent.log")).unwrap_or_default()
        );
    }
    let a = am1.alert("alarm_major").unwrap();
    let labels = &a["labels"];
    assert_eq!(labels["alertname"], "alarm_major", "{a}");
    assert_eq!(labels["severity"], "major");
    assert_eq!(labels["instrument"], "IN5");
    assert_eq!(labels["source"], "detector");
    assert_eq!(labels["facility"], "ill");
    assert_eq!(labels["team"], "tof");
    assert_eq!(labels["key"], "alarm_major|detector|HV trip on channel #");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("[IN5] MAJOR: HV trip on channel"),
        "{a}"
    );
    let description = a["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("Seen 2 times on IN5"), "{description}");
    // Two lines of one failure are one alert; the INFO line is none.
    assert_eq!(am1.alerts().len(), 1, "{:?}", am1.alerts());
    assert_eq!(am2.alerts().len(), 1, "{:?}", am2.alerts());
    assert_eq!(a["status"]["state"], "active");

    // Without a ttl the alert has no end of its own: Alertmanager would end it
    // RESOLVE_TIMEOUT_S after a post, so still being there three of those later means it
    // was posted again and again (while the hung member times out each time).
    let first_ends = a["endsAt"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(3 * RESOLVE_TIMEOUT_S));
    for am in [&am1, &am2] {
        let a = am
            .alert("alarm_major")
            .expect("still firing while reposted");
        assert_eq!(a["status"]["state"], "active");
        assert!(a["endsAt"].as_str().unwrap() > first_ends.as_str(), "{a}");
    }

    // Dismissed through the agent's API: resolved at both.
    let (_, alerts, _) = http(agent.addr, "GET", "/api/alerts", &[], b"");
    // OnTakt's form: an object keyed by id.
    let id = alerts
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .expect("the alert's id");
    let (status, _, _) = http(agent.addr, "DELETE", &format!("/api/alerts/{id}"), &[], b"");
    assert_eq!(status, 204);
    for am in [&am1, &am2] {
        assert!(
            wait_until(Duration::from_secs(15), || am
                .alert("alarm_major")
                .is_none()),
            "still firing at {} after dismissal: {:?}",
            am.url(),
            am.alerts()
        );
    }
    // It stays resolved: reposts carry the dismissal.
    std::thread::sleep(Duration::from_secs(5));
    assert!(am1.alert("alarm_major").is_none() && am2.alert("alarm_major").is_none());
    drop(hung);

    // Seen again after the dismissal: a new alert, at once.
    append(
        &dir.join("p/run.log"),
        b"2026-11-20 14:10:00 ERROR 1 [detector] HV trip on channel 3\n",
    );
    assert!(
        wait_until(Duration::from_secs(10), || am1
            .alert("alarm_major")
            .is_some()
            && am2.alert("alarm_major").is_some()),
        "the alert did not fire again"
    );
    drop(agent);
}

#[test]
fn a_member_that_is_down_gets_the_alerts_when_it_is_back_and_an_alert_with_a_ttl_ends_by_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let am1 = Alertmanager::start(&tmp.path().join("am1"));
    let down = free_port();
    let dir = tmp.path().join("agent");
    // Routes that send the API's alerts (the event `alert`) nowhere: the alert below
    // goes to Alertmanager because the PUT asks for it, and is kept up to date there.
    let cfg = config(
        &dir,
        &[am1.url(), format!("http://127.0.0.1:{down}")],
        Some(json!({"alarm_minor": [{"service": "alertmanager"}]})),
    );
    let agent = Agent::start_logging_to(&cfg, &tmp.path().join("agent.log"));
    append(
        &dir.join("p/run.log"),
        b"2026-11-20 14:03:12 ERROR 2 [sample] temperature above 300 K\n",
    );
    assert!(
        wait_until(Duration::from_secs(10), || am1
            .alert("alarm_minor")
            .is_some()),
        "the member that is up did not get the alert while the other is down"
    );
    let body = json!({"key": "beam", "severity": "WARNING", "message": "no beam", "ttl": 30});
    let (status, _, text) = http(
        agent.addr,
        "PUT",
        "/api/alerts?notify=alertmanager",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 201, "{text}");
    // The second member comes up on the address the config names: a repost brings it
    // both alerts.
    let am2 = Alertmanager::start_on(&tmp.path().join("am2"), down);
    assert!(
        wait_until(Duration::from_secs(10), || am2
            .alert("alarm_minor")
            .is_some()
            && am2.alert("alert").is_some()),
        "the member that came back did not get the alerts: {:?}",
        am2.alerts()
    );
    let beam = am2.alert("alert").unwrap();
    assert_eq!(beam["labels"]["severity"], "warning", "{beam}");
    assert_eq!(beam["labels"]["key"], "custom|beam");
    assert!(
        beam["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("no beam")
    );
    let ends = beam["endsAt"].as_str().unwrap().to_string();
    // The ttl runs out: Alertmanager ends it by the endsAt it was given, and the reposts
    // do not bring it back.
    for am in [&am1, &am2] {
        assert!(
            wait_until(Duration::from_secs(45), || am.alert("alert").is_none()),
            "an alert past its ttl ({ends}) still fires at {}: {:?}",
            am.url(),
            am.alerts()
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    assert!(am1.alert("alert").is_none() && am2.alert("alert").is_none());
    assert!(am1.alert("alarm_minor").is_some() && am2.alert("alarm_minor").is_some());
    drop(agent);
}

#[test]
fn probe_asks_each_member_for_its_status_and_test_notify_posts_an_alert_that_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let am = Alertmanager::start(&tmp.path().join("am"));
    let down = free_port();
    let dir = tmp.path().join("agent");
    let cfg = config(&dir, &[am.url(), format!("http://127.0.0.1:{down}")], None);
    let out = support::protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["check-config", "--probe"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a member is down:\n{text}");
    assert!(text.contains(&format!("status {}", am.url())), "{text}");
    assert!(text.contains("Alertmanager 0."), "{text}");
    assert!(
        text.contains(&format!("status http://127.0.0.1:{down}")),
        "{text}"
    );

    let out = support::protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["test-notify", "--service", "alertmanager"])
        .output()
        .unwrap();
    // One member took it: delivered.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let a = am.alert("test").expect("the test alert");
    assert_eq!(a["labels"]["severity"], "info");
    assert_eq!(a["labels"]["instrument"], "IN5");
    assert!(
        a["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("protowatch test message")
    );
    // It ends by itself, a few minutes on.
    let ends = chrono::DateTime::parse_from_rfc3339(a["endsAt"].as_str().unwrap()).unwrap();
    let left = ends.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((200..=310).contains(&left), "ends in {left} s");
}
