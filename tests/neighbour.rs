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
