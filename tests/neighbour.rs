//! A neighbour on the same PC: another local user who runs a server on a port of
//! loopback gets nothing meant for the agent. Against the real binary: the agent that
//! cannot bind its port does not start (its commands would go to whoever has it); it
//! holds `[::1]` beside `127.0.0.1`, where a browser's `localhost` may go; and a command
//! sends the token only to a server that proves it knows it.

#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use support::{Agent, FakeTelegram, TOKEN, http_anon, protowatch};

fn config(dir: &Path, tg: &FakeTelegram, listen: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": listen},
        }),
    )
}

/// A JSON request with the agent's token; its status, JSON and text.
fn send_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value, String) {
    support::http(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

/// Another user's server: answers every request with 200 `{}` and keeps what it was
/// sent.
struct Squatter {
    addr: SocketAddr,
    heard: Arc<Mutex<Vec<String>>>,
}

impl Squatter {
    fn on(addr: &str) -> Squatter {
        let listener = TcpListener::bind(addr).expect("bind the squatter");
        let addr = listener.local_addr().unwrap();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = vec![0u8; 65536];
                let n = c.read(&mut buf).unwrap_or(0);
                h.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = c.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            }
        });
        Squatter { addr, heard }
    }

    fn heard(&self) -> Vec<String> {
        self.heard.lock().unwrap().clone()
    }
}

#[test]
fn an_agent_whose_port_is_taken_does_not_start_and_commands_send_directly() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let squatter = Squatter::on("127.0.0.1:0");
    let cfg = config(dir.path(), &tg, &squatter.addr.to_string());
    // A leftover address file, as after a crash.
    std::fs::create_dir_all(dir.path().join(".protowatch")).unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on {}", squatter.addr)),
        "{err}"
    );
    assert!(!dir.path().join(".protowatch/api.addr").exists());
    // The script's message goes out directly, and the squatter hears nothing.
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["send-message", "sample 3 done"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(tg.wait_for(1, Duration::from_secs(10)).len(), 1);
    assert_eq!(squatter.heard(), Vec::<String>::new());
}

#[test]
fn a_command_sends_its_token_only_to_a_server_that_proves_it_knows_it() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let _agent = Agent::start(&cfg);
    let token = std::fs::read_to_string(dir.path().join(".protowatch/api-token")).unwrap();
    let token = token.trim();
    // The address file names another server (a race, a stale file, a taken port).
    let squatter = Squatter::on("127.0.0.1:0");
    std::fs::write(
        dir.path().join(".protowatch/api.addr"),
        squatter.addr.to_string(),
    )
    .unwrap();
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["send-message", "sample 4 done"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did not prove"), "{err}");
    assert_eq!(tg.wait_for(1, Duration::from_secs(10)).len(), 1);
    let heard = squatter.heard();
    assert!(
        !heard.is_empty(),
        "the command asked the server to prove itself"
    );
    assert!(
        heard
            .iter()
            .all(|r| !r.contains(token) && !r.contains("Authorization")),
        "{heard:?}"
    );
    assert!(heard.iter().all(|r| r.starts_with("GET /api/hello?nonce=")));
}

#[test]
fn localhost_on_ipv6_is_the_agents_too() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let v6: SocketAddr = format!("[::1]:{}", agent.addr.port()).parse().unwrap();
    let (status, body, _) = http_anon(v6, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200, "{body}");
    // Someone else on [::1] at the configured port: the agent does not start.
    let squatter = Squatter::on("[::1]:0");
    let dir2 = tempfile::tempdir().unwrap();
    let cfg2 = config(
        dir2.path(),
        &tg,
        &format!("127.0.0.1:{}", squatter.addr.port()),
    );
    let out = protowatch()
        .arg("--config")
        .arg(&cfg2)
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[::1]") && err.contains("IPv6"), "{err}");
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// `GET /metrics` needs no token, so what it costs must not grow with what a caller put
/// in the store: it counts the active alerts without reading them (it loaded every row,
/// details and all: 30 → 801 MB for one request). Event names are bounded where they
/// come in, and as metric labels.
#[test]
fn what_anyone_can_ask_costs_the_same_whatever_the_store_holds() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let details = "x".repeat(60 * 1024);
    for round in 0..4 {
        for i in 0..250 {
            let body = json!({"key": format!("k{round}-{i}"), "message": "filler",
                              "details": details, "severity": "INFO"});
            let (code, v, _) = send_json(agent.addr, "PUT", "/api/alerts", &body);
            assert_eq!(code, 201, "{v}");
        }
        let (code, _, _) = support::http(agent.addr, "POST", "/api/alerts/clear", &[], b"");
        assert_eq!(code, 204);
    }
    // 1,000 dismissed alerts with 60 KB of details each: 60 MB in the store.
    let before = rss_kb(agent.pid());
    for _ in 0..4 {
        let (code, _, text) = http_anon(agent.addr, "GET", "/metrics", &[], b"");
        assert_eq!(code, 200);
        assert!(text.contains("protowatch_alerts_active 0"), "{text}");
    }
    let grown = rss_kb(agent.pid()).saturating_sub(before);
    assert!(grown < 20 * 1024, "/metrics grew the agent by {grown} KiB");

    // A 200 KB event name is refused, naming the field.
    let long = "e".repeat(200 * 1024);
    let (code, v, _) = send_json(
        agent.addr,
        "POST",
        "/api/notify",
        &json!({"event": long, "message": "x"}),
    );
    assert_eq!(code, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("event: the event name has"),
        "{v}"
    );
    let (code, v, _) = send_json(
        agent.addr,
        "POST",
        "/api/notify",
        &json!({"event": "alarm\nforged line", "message": "x"}),
    );
    assert_eq!(code, 400, "{v}");
    // Many names: the metric keeps a bounded number of labels.
    for i in 0..600 {
        let (code, v, _) = send_json(
            agent.addr,
            "POST",
            "/api/notify",
            &json!({"event": format!("made_up_{i}"), "message": "x"}),
        );
        assert_eq!(code, 202, "{v}");
    }
    assert!(support::wait_until(Duration::from_secs(20), || {
        let (_, _, text) = http_anon(agent.addr, "GET", "/metrics", &[], b"");
        text.contains("protowatch_events_total{event=\"other\"")
    }));
    let (_, _, text) = http_anon(agent.addr, "GET", "/metrics", &[], b"");
    let labels = text
        .lines()
        .filter(|l| l.starts_with("protowatch_events_total{"))
        .count();
    assert!(labels <= 501, "{labels} event labels");
}

/// A state folder another user made, or one every user may write, may hold their token:
/// the agent does not start with it (it warned and ran with that token).
#[test]
fn a_state_folder_that_is_not_the_agents_own_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let state = dir.path().join(".protowatch");
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("api-token"), "planted-by-another-user\n").unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let run = || {
        protowatch()
            .arg("--config")
            .arg(&cfg)
            .arg("run")
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("can be written by every user"), "{err}");
    assert!(!err.contains("planted-by-another-user"));

    // Someone else's (as root here: given to `nobody`).
    let me = unsafe { libc::geteuid() };
    if me == 0 {
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::chown(&state, Some(65534), None).unwrap();
        let out = run();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("belongs to the user with id 65534"), "{err}");
    }
}

/// Refusals are audited, but a flood of them is one line with its count: thousands of
/// wrong tokens a second wrote gigabytes an hour, and the journal's rate limit then
/// dropped the lines that mattered.
#[test]
fn a_flood_of_wrong_tokens_is_counted_not_logged_line_by_line() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    let tries = 2000;
    for i in 0..tries {
        let h = format!("Bearer wrong-{i}");
        let (code, _, _) = http_anon(
            agent.addr,
            "GET",
            "/api/alerts",
            &[("Authorization", &h)],
            b"",
        );
        assert_eq!(code, 401);
    }
    // The window's end brings the count.
    let counted = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let full = text
            .lines()
            .filter(|l| l.contains("API request refused"))
            .count() as u64;
        let more: u64 = text
            .lines()
            .filter(|l| l.contains("more API requests refused"))
            .filter_map(|l| {
                l.split("refused=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        (full, more)
    };
    assert!(
        support::wait_until(Duration::from_secs(15), || {
            let (full, more) = counted();
            full + more == tries
        }),
        "{:?}",
        counted()
    );
    let (full, _) = counted();
    assert!(full <= 40, "{full} refusals logged one by one");
}

/// A request whose `Host` is missing or unreadable skipped the check that stops DNS
/// rebinding; now it is refused.
#[test]
fn a_request_without_a_readable_host_is_refused() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let raw = |req: &[u8]| {
        let mut s = std::net::TcpStream::connect(agent.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    };
    let token = std::fs::read_to_string(dir.path().join(".protowatch/api-token")).unwrap();
    let no_host = format!(
        "GET /api/alerts HTTP/1.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        token.trim()
    );
    assert!(raw(no_host.as_bytes()).starts_with("HTTP/1.1 400"));
    let mut bad = format!(
        "GET /api/alerts HTTP/1.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\nHost: ",
        token.trim()
    )
    .into_bytes();
    bad.extend_from_slice(b"evil\xff.example\r\n\r\n");
    assert!(raw(&bad).starts_with("HTTP/1.1 403"));
}

/// The bot token is in the path of every Bot API request: a 307 from the `api-url`'s
/// server must not carry it to another server.
#[test]
fn a_redirect_from_the_bot_api_server_is_not_followed() {
    let elsewhere = Squatter::on("127.0.0.1:0");
    let redirecting = TcpListener::bind("127.0.0.1:0").unwrap();
    let api = redirecting.local_addr().unwrap();
    let target = elsewhere.addr;
    std::thread::spawn(move || {
        for conn in redirecting.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = vec![0u8; 65536];
            let n = c.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            let _ = c.write_all(
                format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("p")).unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": format!("http://{api}")},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let _agent = Agent::start(&cfg);
    support::append(&dir.path().join("p/a.log"), b"ERROR [det] HV trip\n");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(elsewhere.heard(), Vec::<String>::new());
}

/// A stranger's flood of commands is answered once, not 300 times (the answers queued
/// ahead of an operator's press); an operator's `/alerts` is answered in the alert
/// chats and in private, not in any group they write in.
#[test]
fn telegram_answers_strangers_once_and_alerts_only_where_they_belong() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("p")).unwrap();
    let cfg = support::write_config(
        dir.path(),
        &json!({
            "telegram": {"bot-id": TOKEN, "channel-id": "-100200", "api-url": tg.url,
                         "operators": [42], "poll_timeout_s": 1},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let _agent = Agent::start(&cfg);
    for i in 0..300 {
        tg.say((666, "mallory"), "-100200", None, &format!("/alerts {i}"));
    }
    assert!(support::wait_until(Duration::from_secs(20), || tg
        .unconfirmed()
        == 0));
    std::thread::sleep(Duration::from_millis(500));
    let answers = |chat: &str| {
        tg.requests_of("sendMessage")
            .into_iter()
            .filter(|r| r.body["chat_id"].to_string().trim_matches('"') == chat)
            .count()
    };
    assert_eq!(answers("-100200"), 1, "one refusal for the chat");
    // The operator, in the alert chat, in private, and in another group.
    tg.say((42, "anna"), "-100200", None, "/alerts");
    tg.say((42, "anna"), "42", None, "/alerts");
    tg.say((42, "anna"), "-100999", None, "/alerts");
    assert!(support::wait_until(Duration::from_secs(10), || answers(
        "-100200"
    ) == 2
        && answers("42") == 1));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        answers("-100999"),
        0,
        "not in a group that is no alert chat"
    );
}

/// Bodies sent a byte every few seconds held every connection slot: `/healthz` timed
/// out for the whole attack and `send-message` went around the agent. Now a body must
/// be whole within 10 s, and when no slot is free the connection that has waited
/// longest without a whole request gives way.
#[test]
fn slow_bodies_hold_no_slot_from_those_who_send_their_requests() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let addr = agent.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut trickles = Vec::new();
    for _ in 0..300 {
        let Ok(mut s) = std::net::TcpStream::connect(addr) else {
            continue;
        };
        let _ = s.write_all(
            b"POST /signin HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        );
        trickles.push(s);
    }
    let st = stop.clone();
    let feeder = std::thread::spawn(move || {
        while !st.load(std::sync::atomic::Ordering::SeqCst) {
            for s in &mut trickles {
                let _ = s.write_all(b" ");
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    // Meanwhile, those who send their requests are served.
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (code, _, _) = http_anon(addr, "GET", "/healthz", &[], b"");
        assert_eq!(code, 200);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "/healthz took {:?}",
            started.elapsed()
        );
    }
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["send-message", "through the agent"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("queued as"),
        "through the agent, not around it: {err}"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = feeder.join();
}

/// `/\127.0.0.1:19999/…` is read by browsers as `//127.0.0.1:19999/…`: a link to
/// another server dressed as a path of ours. Refused, naming the action.
#[test]
fn an_action_that_browsers_read_as_another_server_is_refused() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    for bad in [
        "/\\127.0.0.1:19999/steal",
        "//127.0.0.1:19999/steal",
        "/a\\b",
    ] {
        let body = json!({"key": "k", "message": "m", "actions": {"Open": bad}});
        let (code, v, _) = send_json(agent.addr, "PUT", "/api/alerts", &body);
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(v["error"].as_str().unwrap().contains("actions.Open"), "{v}");
    }
    let body = json!({"key": "k", "message": "m", "actions": {"Open": "/tools/x"}});
    let (code, v, _) = send_json(agent.addr, "PUT", "/api/alerts", &body);
    assert_eq!(code, 201, "{v}");
}

/// One holder of the token could take all 32 live streams, and the console then had
/// none; now each caller holds at most 4.
#[test]
fn one_caller_holds_a_few_live_streams_not_all() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let token = std::fs::read_to_string(dir.path().join(".protowatch/api-token")).unwrap();
    let open = || {
        let mut s = std::net::TcpStream::connect(agent.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(
            format!(
                "GET /api/console/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
                token.trim()
            )
            .as_bytes(),
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        (String::from_utf8_lossy(&buf[..n]).into_owned(), s)
    };
    let mut held = Vec::new();
    for _ in 0..4 {
        let (head, s) = open();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
    let (head, _) = open();
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    // One closed: room for one again.
    drop(held.pop());
    std::thread::sleep(Duration::from_millis(300));
    let (head, _) = open();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

fn hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Large notifies at once were held whole, each parsed and decoded (24 of 13 MB: 978
/// MB). The bodies in flight are bounded as a whole; the rest wait their turn.
#[test]
fn large_notifies_at_once_are_bounded_as_a_whole() {
    use base64::Engine;
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, "127.0.0.1:0");
    let agent = Agent::start(&cfg);
    let token = std::fs::read_to_string(dir.path().join(".protowatch/api-token")).unwrap();
    let file = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 4_800_000]);
    let body = Arc::new(
        json!({"event": "big", "message": {"text": "x", "attachments": [
            {"filename": "a.bin", "data_base64": file},
            {"filename": "b.bin", "data_base64": file}]}})
        .to_string(),
    );
    assert!(body.len() > 12_000_000);
    let before = rss_kb(agent.pid());
    let senders: Vec<_> = (0..16)
        .map(|_| {
            let (addr, token, body) = (agent.addr, token.trim().to_string(), body.clone());
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let head = format!(
                    "POST /api/notify HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                s.write_all(head.as_bytes()).unwrap();
                let _ = s.write_all(body.as_bytes());
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        })
        .collect();
    let answers: Vec<String> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let accepted = answers
        .iter()
        .filter(|a| a.starts_with("HTTP/1.1 202"))
        .count();
    assert!(
        accepted >= 4,
        "{:?}",
        answers.iter().map(|a| a.lines().next()).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .all(|a| a.starts_with("HTTP/1.1 202") || a.starts_with("HTTP/1.1 503")),
        "{:?}",
        answers.iter().map(|a| a.lines().next()).collect::<Vec<_>>()
    );
    let grown = hwm_kb(agent.pid()).saturating_sub(before);
    assert!(
        grown < 400 * 1024,
        "16 notifies of 13 MB grew the agent by {grown} KiB"
    );
}
