//! The quiet soak: the agent with every part configured (mail, Telegram with operators,
//! a webhook, SciLog, Signal, the BEC link) against the loopback servers, left quiet
//! for long stretches, with one error now and then and an operator's press after
//! another silence. It checks what an operator would: each event delivered once to
//! each service, each press handled at once, no warning while nothing happens.
//!
//! The servers close what a real deployment closes: Redis with `timeout 30`, an SMTP
//! server that drops idle connections after 30 s, SciLog tokens that expire (after
//! 10 min, or a sixth of a shorter soak), and the Bot API holds each poll for the
//! default `poll_timeout_s` (25 s).
//!
//! In the suite it lasts 3 minutes; `bench/quiet_soak.sh` runs it for an hour
//! (`PROTOWATCH_SOAK_S`) and prints the figures that BENCHMARKS.md quotes.

#![cfg(not(windows))]

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::scilog::FakeScilog;
use support::signal::{FakeSignal, group_id};
use support::{Agent, FakeHttp, FakeTelegram, SmtpOptions, SmtpServer, TOKEN, append, http};

const ANNA: (u64, &str) = (42, "anna");
const ACCOUNT: &str = "+41790000001";
const NAMES: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis(dir: &Path) -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--timeout", "30", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server (apt-get install redis-server)");
    assert!(support::wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }));
    Redis(child, port)
}

/// CPU time (user + system) of a process, in clock ticks, and its resident memory.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses.
    let rest = stat.rsplit(") ").next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn active(agent: &Agent) -> Value {
    let (status, body, _) = http(agent.addr, "GET", "/api/alerts", &[], b"");
    assert_eq!(status, 200);
    body
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn quiet_soak() {
    let total = Duration::from_secs(
        std::env::var("PROTOWATCH_SOAK_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let smtp = SmtpServer::start(SmtpOptions {
        idle_timeout: Some(Duration::from_secs(30)),
        ..SmtpOptions::default()
    });
    let tg = FakeTelegram::start();
    let hook = FakeHttp::start();
    let signal = FakeSignal::start(ACCOUNT);
    signal.add_group(&group_id(7), "beamline ops");
    let scilog = FakeScilog::start();
    scilog.add_user("bl-operator", "Sci-l0g-PASSWORD-77");
    scilog.add_logbook("lb-0001", "p12345 beamtime");
    scilog.token_lifetime((total / 6).min(Duration::from_secs(600)));
    let redis = redis(dir);
    std::fs::create_dir_all(dir.join("p")).unwrap();
    let cfg = support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100200", "api-url": tg.url,
                         "operators": [42]},
            "webhook": {"scopes": {"default": {"url": format!("{}/hook", hook.url)}}},
            "scilog": {"url": scilog.url, "user": "bl-operator",
                       "password": "Sci-l0g-PASSWORD-77",
                       "scopes": {"default": {"logbook": "lb-0001"}}},
            "signal": {"url": signal.url, "api": "rest", "number": ACCOUNT,
                       "scopes": {"ops": {"group": group_id(7)}}, "default_scope": "ops"},
            "bec": {"redis": format!("127.0.0.1:{}", redis.1)},
            "watch": [{"path": "p/*.log"}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let log = dir.join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            let (_, h, _) = http(agent.addr, "GET", "/healthz", &[], b"");
            h["bec"]["link"] == "up"
        }),
        "the BEC link did not come up"
    );
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let start_up_log = std::fs::read_to_string(&log).unwrap_or_default().len();
    let pid = agent.pid();
    let hz = 100.0; // USER_HZ on Linux
    let mut rng = fastrand::Rng::with_seed(24);
    let (mut rest_ticks, mut rest_time) = (0u64, Duration::ZERO);
    let mut quiet = |d: Duration| {
        let t0 = cpu_ticks(pid);
        std::thread::sleep(d);
        rest_ticks += cpu_ticks(pid) - t0;
        rest_time += d;
    };
    let mut names = Vec::new();
    let mut presses = Vec::new();
    let mut deliveries = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        // 5–15 minutes in an hour: a twelfth to a quarter of the soak.
        let gap = total / 12 + (total / 6).mul_f64(rng.f64());
        if started.elapsed() + gap + Duration::from_secs(20) > total {
            break;
        }
        quiet(gap / 2);
        let line = format!(
            "2026-12-07 03:{:02}:00 ERROR [soak] detector {name} failed\n",
            i % 60
        );
        let sent = Instant::now();
        append(&dir.join("p/run.log"), line.as_bytes());
        names.push(*name);
        let n = names.len();
        let everywhere = || {
            smtp.messages().len() >= n
                && tg.messages().len() >= n
                && hook.requests().len() >= n
                && scilog.entries().len() >= n
                && signal.sent().len() >= n
        };
        assert!(
            support::wait_until(Duration::from_secs(30), everywhere),
            "event {name} not delivered everywhere: mail {}, telegram {}, webhook {}, scilog {}, signal {}",
            smtp.messages().len(),
            tg.messages().len(),
            hook.requests().len(),
            scilog.entries().len(),
            signal.sent().len()
        );
        deliveries.push(sent.elapsed());
        // Another silence, then the operator presses Dismiss.
        quiet(gap / 2);
        let msg = tg
            .messages()
            .into_iter()
            .find(|m| m.text().contains(name))
            .expect("the Telegram message of the event");
        let alert_of = || {
            active(&agent).as_object().and_then(|a| {
                a.values()
                    .find(|a| a["message"].as_str().is_some_and(|m| m.contains(name)))
                    .cloned()
            })
        };
        assert!(alert_of().is_some());
        let pressed = Instant::now();
        tg.press(ANNA, &msg, &msg.button_data("Dismiss").unwrap());
        assert!(
            support::wait_until(Duration::from_secs(10), || alert_of().is_none()),
            "the press on {name} was not handled"
        );
        presses.push(pressed.elapsed());
    }
    // Once each: every service got exactly one message per event, naming it.
    let once = |texts: Vec<String>, service: &str| {
        assert_eq!(texts.len(), names.len(), "{service}: {texts:#?}");
        for name in &names {
            let seen = texts.iter().filter(|t| t.contains(name)).count();
            assert_eq!(seen, 1, "{service}: {name} seen {seen} times");
        }
    };
    once(
        smtp.messages()
            .into_iter()
            .map(|m| m.subject + &m.parts.iter().map(|p| p.1.clone()).collect::<String>())
            .collect(),
        "mail",
    );
    once(
        tg.messages().iter().map(|m| m.text().to_string()).collect(),
        "telegram",
    );
    once(
        hook.requests().iter().map(|r| r.text()).collect(),
        "webhook",
    );
    once(
        scilog
            .entries()
            .iter()
            .map(|e| e["textcontent"].as_str().unwrap_or("").to_string())
            .collect(),
        "scilog",
    );
    once(
        signal.sent().into_iter().map(|s| s.text).collect(),
        "signal",
    );
    let (_, h, _) = http(agent.addr, "GET", "/healthz", &[], b"");
    assert_eq!(
        h["bec"]["connects"], 1,
        "the BEC link was rebuilt: {}",
        h["bec"]
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let warned: Vec<&str> = text[start_up_log..]
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    presses.sort();
    deliveries.sort();
    let cpu_ms_per_min = rest_ticks as f64 / hz * 1000.0 / (rest_time.as_secs_f64() / 60.0);
    println!(
        "quiet soak: {} s, {} events delivered once each to 5 services; delivery p50 {:?} max {:?}; \
         {} presses handled, press → dismissed p50 {:?} p99 {:?}; WARN/ERROR lines {}; \
         at rest: {:.1} ms CPU a minute over {:.0} s; RSS {} KiB (peak {} KiB); SciLog logins {}",
        total.as_secs(),
        names.len(),
        percentile(&deliveries, 0.5),
        deliveries.last().copied().unwrap_or_default(),
        presses.len(),
        percentile(&presses, 0.5),
        percentile(&presses, 0.99),
        warned.len(),
        cpu_ms_per_min,
        rest_time.as_secs_f64(),
        status_kb(pid, "VmRSS:"),
        status_kb(pid, "VmHWM:"),
        scilog.logins(),
    );
    assert!(warned.is_empty(), "warnings while quiet: {warned:#?}");
    assert!(
        names.len() >= 3,
        "too few events for a soak: {}",
        names.len()
    );
    assert!(scilog.logins() >= 2, "the SciLog token never expired");
}
