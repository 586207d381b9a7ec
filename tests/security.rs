//! Who may use the agent, against the real binary: the generated token and its file, a
//! token on every call, `Host` and `Origin`, no file opened for a caller, the limits on
//! what a caller can make the agent hold, 1,000 idle connections, rotation, the audit
//! line — and, where the tests run as root, real second users: one in the group
//! `protowatch`, who uses the agent without typing a token, and one outside it, who
//! cannot read the token or clear the alerts.

#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use support::{Agent, FakeTelegram, TOKEN, http, http_anon, protowatch, wait_until};

fn config(dir: &Path, tg: &FakeTelegram, api: Value) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": api,
        }),
    )
}

fn token_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".protowatch/api-token"))
        .unwrap()
        .trim()
        .to_string()
}

fn put(a: SocketAddr, body: &Value) -> (u16, Value) {
    let (code, v, _) = http(
        a,
        "PUT",
        "/api/alerts",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (code, v)
}

fn notify(a: SocketAddr, body: &Value) -> (u16, Value) {
    let (code, v, _) = http(
        a,
        "POST",
        "/api/notify",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    (code, v)
}

#[test]
fn every_call_but_health_and_metrics_needs_the_token() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let agent = Agent::start(&cfg);
    let a = agent.addr;

    let token = token_of(dir.path());
    assert_eq!(token.len(), 64, "256 bits, hex");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let meta = std::fs::metadata(dir.path().join(".protowatch/api-token")).unwrap();
    assert_eq!(
        meta.mode() & 0o037,
        0,
        "owner rw, group r at most: {:o}",
        meta.mode()
    );
    let state = std::fs::metadata(dir.path().join(".protowatch")).unwrap();
    assert_eq!(state.mode() & 0o027, 0, "state folder: {:o}", state.mode());
    let db = std::fs::metadata(dir.path().join(".protowatch/protowatch.db")).unwrap();
    assert_eq!(db.mode() & 0o037, 0, "database: {:o}", db.mode());

    let alert = json!({"key": "k", "message": "m"}).to_string();
    let calls: [(&str, &str, &[u8]); 10] = [
        ("GET", "/api/alerts", b""),
        ("PUT", "/api/alerts", alert.as_bytes()),
        ("DELETE", "/api/alerts/1", b""),
        ("POST", "/api/alerts/clear", b""),
        ("POST", "/api/alerts/1/action/__dismiss", b""),
        ("POST", "/api/notify", br#"{"event": "e", "message": "m"}"#),
        ("GET", "/api/notify/1", b""),
        ("GET", "/api/routes", b""),
        ("GET", "/api/channels", b""),
        ("GET", "/api/nothing", b""),
    ];
    let wrong = format!("Bearer {}", "0".repeat(64));
    for (method, path, body) in calls {
        for headers in [
            vec![],
            vec![("Authorization", wrong.as_str())],
            vec![("Authorization", "Basic dXNlcjpwYXNz")],
        ] {
            let mut h = headers.clone();
            h.push(("Content-Type", "application/json"));
            let (code, _, raw) = http_anon(a, method, path, &h, body);
            assert_eq!(code, 401, "{method} {path} with {headers:?}: {raw}");
        }
    }
    // The 401 says how to authenticate.
    let mut s = TcpStream::connect(a).unwrap();
    s.write_all(b"GET /api/alerts HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(
        raw.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{raw}"
    );
    // Nothing was done by any of them.
    assert_eq!(http(a, "GET", "/api/alerts", &[], b"").1, json!({}));
    assert!(tg.messages().is_empty());

    for (method, path) in [("GET", "/healthz"), ("GET", "/metrics")] {
        assert_eq!(http_anon(a, method, path, &[], b"").0, 200, "{path}");
    }
    let bearer = format!("Bearer {token}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    assert_eq!(
        http_anon(a, "PUT", "/api/alerts", &auth, alert.as_bytes()).0,
        201
    );
    assert_eq!(http_anon(a, "GET", "/api/alerts", &auth, b"").0, 200);
    assert_eq!(http_anon(a, "POST", "/api/alerts/clear", &auth, b"").0, 204);
}

#[test]
fn browsers_of_other_sites_are_refused() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &tg,
        json!({"listen": "127.0.0.1:0", "hosts": ["in5-pc.example.org"]}),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let body = json!({"key": "k", "message": "m"}).to_string();
    let own = format!("http://{a}");

    // DNS rebinding: a page on another name that points at 127.0.0.1.
    let (code, v, _) = http(
        a,
        "GET",
        "/api/alerts",
        &[("Host", "evil.example.net:8767")],
        b"",
    );
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("Host"), "{v}");
    assert_eq!(
        http(a, "GET", "/healthz", &[("Host", "evil.example.net")], b"").0,
        403
    );
    for ok in ["in5-pc.example.org:8767", "127.0.0.1:8767", "localhost"] {
        assert_eq!(
            http(a, "GET", "/api/alerts", &[("Host", ok)], b"").0,
            200,
            "{ok}"
        );
    }

    // CSRF: another page's form or fetch, even with the token.
    for origin in ["http://evil.example.net", "null", "https://127.0.0.1"] {
        let (code, v, _) = http(
            a,
            "PUT",
            "/api/alerts",
            &[("Origin", origin), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(code, 403, "{origin}: {v}");
        assert_eq!(
            http(a, "POST", "/api/alerts/clear", &[("Origin", origin)], b"").0,
            403
        );
    }
    assert_eq!(http(a, "GET", "/api/alerts", &[], b"").1, json!({}));
    // The API's own page may.
    let host = a.to_string();
    let (code, _, _) = http(
        a,
        "PUT",
        "/api/alerts",
        &[
            ("Origin", &own),
            ("Host", &host),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    );
    assert_eq!(code, 201);
}

#[test]
fn the_api_opens_no_file_and_bounds_what_a_caller_can_make_it_hold() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &tg,
        json!({"listen": "127.0.0.1:0", "max_alerts": 3}),
    );
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();

    for path in [
        secret.to_str().unwrap(),
        "/etc/shadow",
        "/proc/self/environ",
        "/dev/zero",
    ] {
        let (code, v) = notify(
            a,
            &json!({"event": "e", "message": {"text": "x", "attachments": [{"path": path}]}}),
        );
        assert_eq!(code, 400, "{v}");
        let err = v["error"].as_str().unwrap();
        assert!(
            err.contains("message.attachments[0]") && err.contains("path"),
            "{err}"
        );
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(tg.requests_of("senddocument").is_empty() && tg.messages().is_empty());

    let b64 = base64::engine::general_purpose::STANDARD;
    let file = |i: usize, n: usize| json!({"filename": format!("f{i}.bin"), "data_base64": b64.encode(vec![b'x'; n])});
    let (code, v) = notify(
        a,
        &json!({"event": "e", "message": {"text": "x",
            "attachments": (0..11).map(|i| file(i, 10)).collect::<Vec<_>>()}}),
    );
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("at most 10"), "{v}");
    let (code, v) = notify(
        a,
        &json!({"event": "e", "message": {"text": "x",
            "attachments": (0..3).map(|i| file(i, 3_600_000)).collect::<Vec<_>>()}}),
    );
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("10 MB"), "{v}");
    let (code, _, _) = http(
        a,
        "POST",
        "/api/notify",
        &[("Content-Type", "application/json")],
        &vec![b' '; 16 * 1024 * 1024],
    );
    assert_eq!(code, 413);

    let (code, v) = put(a, &json!({"key": "k", "message": "m".repeat(5000)}));
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().starts_with("message:"), "{v}");
    let (code, v) = put(
        a,
        &json!({"key": "k", "message": "m", "details": "d".repeat(70_000)}),
    );
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("details:"), "{v}");
    let (code, _, _) = http(
        a,
        "PUT",
        "/api/alerts",
        &[("Content-Type", "application/json")],
        &vec![b' '; 300 * 1024],
    );
    assert_eq!(code, 413);

    for i in 0..3 {
        assert_eq!(
            put(a, &json!({"key": format!("k{i}"), "message": "m"})).0,
            201
        );
    }
    let (code, v) = put(a, &json!({"key": "k3", "message": "m"}));
    assert_eq!(code, 429, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("api.max_alerts"),
        "{v}"
    );
    assert_eq!(
        put(a, &json!({"key": "k1", "message": "again"})).0,
        201,
        "an alert that is there may be updated"
    );
    assert_eq!(http(a, "DELETE", "/api/alerts/1", &[], b"").0, 204);
    assert_eq!(
        put(a, &json!({"key": "k3", "message": "m"})).0,
        201,
        "room again"
    );
}

#[test]
fn files_leave_the_database_once_delivered_or_dead() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let agent = Agent::start(&cfg);
    let b64 = base64::engine::general_purpose::STANDARD;
    let marker = "FILE-CONTENT-MARKER-0123456789";
    let body = |text: &str| {
        json!({"event": "e", "message": {"text": text,
            "attachments": [{"filename": "plot.txt", "data_base64": b64.encode(marker)}]}})
    };
    assert_eq!(notify(agent.addr, &body("delivered")).0, 202);
    assert!(wait_until(Duration::from_secs(10), || !tg
        .requests_of("senddocument")
        .is_empty()));
    // Refused for good: the delivery dies.
    tg.script_method(
        "sendmessage",
        [support::Reply::BadRequest("Bad Request: chat not found")],
    );
    assert_eq!(notify(agent.addr, &body("dead")).0, 202);
    let db = dir.path().join(".protowatch/protowatch.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        conn.query_row("SELECT COUNT(*) FROM outbox WHERE dead = 1", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }));
    let encoded = b64.encode(marker);
    for table in ["events", "inbox"] {
        let bodies: Vec<String> = conn
            .prepare(&format!("SELECT body FROM {table}"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!bodies.is_empty(), "{table} keeps the texts");
        for b in &bodies {
            assert!(!b.contains(&encoded), "{table} still holds the file: {b}");
        }
    }
    // Nor the database's files: no free page and no WAL frame keeps the bytes.
    drop(conn);
    let raw_holds = || {
        ["protowatch.db", "protowatch.db-wal"].iter().any(|f| {
            let bytes = std::fs::read(dir.path().join(".protowatch").join(f)).unwrap_or_default();
            bytes
                .windows(encoded.len())
                .any(|w| w == encoded.as_bytes())
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), || !raw_holds()),
        "the file's bytes are still in the database's files"
    );
}

#[test]
fn a_thousand_idle_connections_do_not_stop_the_watcher() {
    // The test itself needs a descriptor per connection.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain get/set of this process's own limit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(8192);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let mut cmd = protowatch();
    cmd.arg("--config").arg(&cfg).arg("run");
    // The usual soft limit of a session: 1,024 descriptors for the agent.
    let mut limited = Command::new("prlimit");
    limited
        .arg("--nofile=1024:1024")
        .arg("--")
        .arg(cmd.get_program());
    limited.args(cmd.get_args());
    let agent = Agent::start_command(limited, &cfg, &dir.path().join("agent.log"));
    let a = agent.addr;

    let mut idle = Vec::new();
    for i in 0..1000 {
        match TcpStream::connect(a) {
            Ok(s) => {
                // Half of them begin a request and never finish its head.
                if i % 2 == 0 {
                    let _ = (&s).write_all(b"GET /api/alerts HTTP/1.1\r\nHost: local");
                }
                idle.push(s);
            }
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    support::append(
        &dir.path().join("p/a.log"),
        b"2026-11-20 14:03:12 ERROR [detector] HV trip\n",
    );
    let msgs = tg.wait_for(1, Duration::from_secs(20));
    assert!(
        msgs[0].body["text"].as_str().unwrap().contains("HV trip"),
        "the alarm went out while 1,000 connections were held"
    );
    // Slow and idle clients are dropped by the header timeout; the API answers again.
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(40), || {
        http(a, "GET", "/api/alerts", &[], b"").0 == 200
    }));
    let mut first = idle.swap_remove(0);
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = first.read_to_end(&mut buf);
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "closed by the agent"
    );
    let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_rotated_token_is_taken_by_the_running_agent_and_changes_are_audited() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    let log = dir.path().join("agent.log");
    let agent = Agent::start_logging_to(&cfg, &log);
    let a = agent.addr;
    let old = token_of(dir.path());
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .arg("api-token")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), old);

    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["api-token", "--rotate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let new = token_of(dir.path());
    assert_ne!(old, new);
    std::thread::sleep(Duration::from_millis(1100));
    let with = |t: &str| {
        let h = format!("Bearer {t}");
        http_anon(a, "GET", "/api/alerts", &[("Authorization", &h)], b"").0
    };
    assert_eq!(with(&new), 200, "the new token, without a restart");
    assert_eq!(with(&old), 401, "the old one no longer");
    // The commands read the new one.
    let out = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["send-message", "after rotation"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("directly"),
        "{out:?}"
    );
    tg.wait_for(1, Duration::from_secs(10));

    let h = format!("Bearer {new}");
    let (code, _, _) = http_anon(
        a,
        "POST",
        "/api/alerts/clear",
        &[("Authorization", &h)],
        b"",
    );
    assert_eq!(code, 204);
    drop(agent);
    let text = std::fs::read_to_string(&log).unwrap();
    let audit: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("/api/alerts/clear"))
        .collect();
    assert!(
        audit
            .iter()
            .any(|l| l.contains("token=generated") && l.contains("peer=127.0.0.1")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains("refused") && l.contains("401")),
        "the refused old token is logged: {text}"
    );
    for t in [&old, &new] {
        assert!(!text.contains(t.as_str()), "the log shows a token");
    }
}

/// Creates (once) a system user for the tests; `None` where the tests cannot (not
/// root, no useradd), and then the caller says it skips.
fn test_user(name: &str, in_group: bool) -> Option<()> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 || !Path::new("/usr/sbin/useradd").exists() {
        return None;
    }
    let _ = Command::new("groupadd").args(["-f", "protowatch"]).status();
    let exists = Command::new("id").arg(name).output().ok()?.status.success();
    if !exists {
        let mut cmd = Command::new("useradd");
        cmd.args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ]);
        if in_group {
            cmd.args(["--groups", "protowatch"]);
        }
        let ok = cmd.arg(name).status().ok()?.success();
        if !ok {
            return None;
        }
    }
    Some(())
}

fn as_user(user: &str, bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", user, "--"])
        .arg(bin)
        .args(args)
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn a_member_of_the_group_uses_the_agent_and_another_user_cannot() {
    if test_user("pw-test-member", true).is_none() || test_user("pw-test-other", false).is_none() {
        eprintln!("skipped: needs root and useradd to make the test users");
        return;
    }
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    // The config and the binary are for everyone; the state folder is not.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = config(dir.path(), &tg, json!({"listen": "127.0.0.1:0"}));
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path().join("p"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("protowatch");
    std::fs::copy(env!("CARGO_BIN_EXE_protowatch"), &bin).unwrap();
    let agent = Agent::start(&cfg);
    let a = agent.addr;
    let state = std::fs::metadata(dir.path().join(".protowatch")).unwrap();
    assert_eq!(state.mode() & 0o777, 0o750, "{:o}", state.mode());
    let token_file = std::fs::metadata(dir.path().join(".protowatch/api-token")).unwrap();
    assert_eq!(token_file.mode() & 0o777, 0o640);
    let cfg_s = cfg.to_str().unwrap();

    // A member: send-message through the agent, with a file only they may read.
    let plot = dir.path().join("member-plot.txt");
    std::fs::write(&plot, "member's own data").unwrap();
    std::fs::set_permissions(&plot, std::fs::Permissions::from_mode(0o600)).unwrap();
    Command::new("chown")
        .args(["pw-test-member", plot.to_str().unwrap()])
        .status()
        .unwrap();
    let out = as_user(
        "pw-test-member",
        &bin,
        &[
            "--config",
            cfg_s,
            "send-message",
            "--attach",
            plot.to_str().unwrap(),
            "from a member",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("directly"),
        "{out:?}"
    );
    assert!(wait_until(Duration::from_secs(10), || !tg
        .requests_of("senddocument")
        .is_empty()));
    let doc = &tg.requests_of("senddocument")[0];
    assert!(String::from_utf8_lossy(&doc.raw).contains("member's own data"));
    let out = as_user(
        "pw-test-member",
        &bin,
        &["--config", cfg_s, "alerts", "list"],
    );
    assert!(out.status.success(), "{out:?}");

    // Another user: no token, no clearing, and no sending around the agent.
    put(a, &json!({"key": "keep", "message": "stays"}));
    let out = as_user("pw-test-other", &bin, &["--config", cfg_s, "api-token"]);
    assert!(!out.status.success());
    let out = as_user(
        "pw-test-other",
        &bin,
        &["--config", cfg_s, "alerts", "clear"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api-token: permission denied")
            && err.contains("ask to be added to the group protowatch"),
        "{err}"
    );
    let out = as_user(
        "pw-test-other",
        &bin,
        &["--config", cfg_s, "send-message", "sneaky"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("directly"),
        "{out:?}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        tg.messages()
            .iter()
            .all(|m| !m.body["text"].as_str().unwrap_or("").contains("sneaky"))
    );
    let (_, list, _) = http(a, "GET", "/api/alerts", &[], b"");
    assert!(
        list.as_object()
            .unwrap()
            .values()
            .any(|x| x["key"] == "custom|keep"),
        "not cleared: {list}"
    );
}

/// The API group's members may use the agent, not hold its credentials: the config is
/// theirs to read (0640, group protowatch), the bot token in `telegram.bot-id_file` is
/// the agent's user's alone (0600) — and the agent still sends with it, and a member
/// still sends through the agent, but not around it.
#[test]
fn a_member_reads_the_config_but_not_the_bot_token_and_the_agent_sends_with_it() {
    if test_user("pw-test-member", true).is_none() {
        eprintln!("skipped: needs root and useradd to make the test users");
        return;
    }
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(d.join("p")).unwrap();
    std::fs::set_permissions(d.join("p"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // The agent's user here is the test's (root): the secret is theirs alone.
    let secrets = d.join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).unwrap();
    let token_file = secrets.join("telegram-bot-id");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = support::write_config(
        d,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id_file": "secrets/telegram-bot-id", "channel-id": "-100",
                         "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    Command::new("chgrp")
        .args(["protowatch", cfg.to_str().unwrap()])
        .status()
        .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o640)).unwrap();
    let bin = d.join("protowatch");
    std::fs::copy(env!("CARGO_BIN_EXE_protowatch"), &bin).unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let cat = |file: &Path| {
        Command::new("runuser")
            .args(["-u", "pw-test-member", "--", "cat"])
            .arg(file)
            .output()
            .unwrap()
    };

    // What a member can read: the config, not the token.
    let out = cat(&cfg);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("bot-id_file"));
    let out = cat(&token_file);
    assert!(!out.status.success(), "a member reads the token: {out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(TOKEN));
    // check-config is the administrator's: for a member it names the file it cannot
    // read, and shows nothing of it.
    let out = as_user("pw-test-member", &bin, &["--config", cfg_s, "check-config"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("telegram.bot-id_file: cannot read") && err.contains("telegram-bot-id"),
        "{err}"
    );
    // For the agent's user the layout is the recommended one: no warning.
    let out = protowatch()
        .args(["--config", cfg_s, "check-config"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );

    // The agent sends with the token from the file.
    let agent = Agent::start(&cfg);
    support::append(&d.join("p/run.log"), b"ERROR detector tripped\n");
    assert!(wait_until(Duration::from_secs(10), || !tg
        .messages()
        .is_empty()));
    assert!(
        tg.messages().iter().all(|m| m.token == TOKEN),
        "the token from the file"
    );

    // A member sends through the agent; around it there is no token to send with.
    let out = as_user(
        "pw-test-member",
        &bin,
        &["--config", cfg_s, "send-message", "from a member"],
    );
    assert!(out.status.success(), "{out:?}");
    assert!(wait_until(Duration::from_secs(10), || tg
        .messages()
        .iter()
        .any(|m| m.body["text"]
            .as_str()
            .unwrap_or("")
            .contains("from a member"))));
    let out = as_user(
        "pw-test-member",
        &bin,
        &["--config", cfg_s, "send-message", "--direct", "around"],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot send directly") && err.contains("telegram.bot-id_file"),
        "{err}"
    );
    let out = as_user(
        "pw-test-member",
        &bin,
        &["--config", cfg_s, "alerts", "list"],
    );
    assert!(out.status.success(), "{out:?}");
    drop(agent);
    assert!(
        tg.messages()
            .iter()
            .all(|m| !m.body["text"].as_str().unwrap_or("").contains("around"))
    );
}
