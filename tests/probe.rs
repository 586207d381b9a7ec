//! `check-config --probe` and `test-notify`, as an operator runs them: the real binary
//! against aiosmtpd (STARTTLS or TLS from the first byte, AUTH) and the fake Bot API on
//! loopback. The probe must send nothing and say which step failed and why; test-notify
//! must reach exactly the destinations asked for, and say which did not take it.

// aiosmtpd is a Linux process that a Windows test under Wine cannot start.
#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    BOT_USERNAME, FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, chat_title, make_certs,
    protowatch, write_config,
};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The line of one check: `mail      STARTTLS   ok  (…)`.
    fn line(&self, service: &str, step: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| l.starts_with(service) && l[service.len()..].trim_start().starts_with(step))
            .unwrap_or_else(|| panic!("no {service} {step:?} line in:\n{}", self.stdout))
    }

    fn has_line(&self, service: &str, step: &str) -> bool {
        self.stdout
            .lines()
            .any(|l| l.starts_with(service) && l[service.len()..].trim_start().starts_with(step))
    }

    fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

fn run(config: &Path, args: &[&str]) -> Run {
    let out = protowatch()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run protowatch");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn probe(config: &Path) -> Run {
    run(config, &["check-config", "--probe"])
}

fn assert_ok(line: &str) {
    let verdict = line.split_whitespace().nth(2);
    assert!(
        line.contains(" ok"),
        "expected ok, got {verdict:?} in {line:?}"
    );
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A STARTTLS server with AUTH, its CA, and a config for it (plus `extra` keys).
fn tls_server(dir: &Path, password: &str, extra: Value) -> (SmtpServer, PathBuf) {
    let (ca, cert, key) = make_certs(dir);
    let server = SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        auth: Some(("sonix-bot".into(), "s3cret pass".into())),
        ..SmtpOptions::default()
    });
    let mut config = json!({
        "instrument": "IN5",
        "mail": {"server": "127.0.0.1", "port": server.port, "tls": "starttls",
                 "ca_file": ca, "user": "sonix-bot", "password": password,
                 "timeout_s": 10, "recipients": ["a@example.org"]},
    });
    merge(&mut config, extra);
    (server, write_config(dir, &config))
}

fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

fn telegram(tg: &FakeTelegram, scopes: Value) -> Value {
    json!({"telegram": {"bot-id": TOKEN, "api-url": tg.url, "channel-id": "-1001234567890",
                        "scopes": scopes, "timeout_s": 10}})
}

#[test]
fn probe_passes_every_step_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start();
    let (server, config) = tls_server(
        dir.path(),
        "s3cret pass",
        telegram(&tg, json!({"ops": "@sonix_ops"})),
    );
    let r = probe(&config);
    assert_eq!(r.code, 0, "{}", r.all());

    assert_ok(r.line("mail", &format!("connect 127.0.0.1:{}", server.port)));
    let ehlo = r.line("mail", "EHLO");
    assert_ok(ehlo);
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    let tls = r.line("mail", "STARTTLS");
    assert_ok(tls);
    assert!(tls.contains("TLS 1.3") || tls.contains("TLS 1.2"), "{tls}");
    let auth = r.line("mail", "AUTH PLAIN");
    assert_ok(auth);
    assert!(auth.contains("235"), "{auth}");
    assert_ok(r.line("mail", "QUIT"));

    assert!(
        r.line("telegram", "getMe")
            .contains(&format!("@{BOT_USERNAME}"))
    );
    let default = r.line("telegram", "getChat default (-1001234567890)");
    assert_ok(default);
    assert!(default.contains(&chat_title("-1001234567890")), "{default}");
    assert!(default.contains("supergroup"), "{default}");
    let ops = r.line("telegram", "getChat ops (@sonix_ops)");
    assert_ok(ops);
    assert!(ops.contains("channel"), "{ops}");
    assert!(!r.stdout.contains("FAILED"), "{}", r.stdout);

    // What reached the servers: the chats asked for, by the configured token; no message.
    assert_eq!(tg.requests_of("getMe").len(), 1);
    let asked: Vec<Value> = tg
        .requests_of("getChat")
        .iter()
        .map(|r| r.body["chat_id"].clone())
        .collect();
    assert_eq!(asked, vec![json!(-1001234567890_i64), json!("@sonix_ops")]);
    assert!(tg.requests().iter().all(|r| r.token == TOKEN));
    assert!(tg.messages().is_empty(), "{:?}", tg.messages());
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.messages().is_empty(), "{:?}", server.messages());
    assert!(!r.all().contains("s3cret pass"));
}

#[test]
fn a_wrong_password_fails_auth_with_the_servers_reply_and_never_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, config) = tls_server(dir.path(), "wrong-pass-123", json!({}));
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_ok(r.line("mail", "STARTTLS"));
    let auth = r.line("mail", "AUTH PLAIN");
    assert!(auth.contains("FAILED: 535"), "{auth}");
    assert!(!r.has_line("mail", "QUIT"), "{}", r.stdout);
    assert!(r.stderr.contains("1 of"), "{}", r.stderr);
    assert!(!r.all().contains("wrong-pass-123"), "{}", r.all());
    // Nor in the forms it travels in (base64 of PLAIN's "\0user\0password").
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD.encode("\0sonix-bot\0wrong-pass-123");
    assert!(!r.all().contains(&plain));
}

#[test]
fn nothing_listening_fails_the_connect() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let config = write_config(
        dir.path(),
        &json!({"mail": {"server": "127.0.0.1", "port": port, "timeout_s": 5,
                         "recipients": ["a@example.org"]}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    let connect = r.line("mail", &format!("connect 127.0.0.1:{port}"));
    assert!(connect.contains("FAILED"), "{connect}");
    assert!(!r.has_line("mail", "EHLO"), "{}", r.stdout);
}

#[test]
fn starttls_required_but_not_offered_fails_and_opportunistic_says_clear_text() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(SmtpOptions::default());
    let mail = |tls: &str| {
        json!({"mail": {"server": "127.0.0.1", "port": server.port, "tls": tls,
                        "timeout_s": 5, "recipients": ["a@example.org"]}})
    };
    let r = probe(&write_config(dir.path(), &mail("starttls")));
    assert_eq!(r.code, 1, "{}", r.all());
    assert_ok(r.line("mail", "EHLO"));
    let tls = r.line("mail", "STARTTLS");
    assert!(
        tls.contains("FAILED") && tls.contains("does not offer STARTTLS"),
        "{tls}"
    );

    let r = probe(&write_config(dir.path(), &mail("opportunistic")));
    assert_eq!(r.code, 0, "{}", r.all());
    let tls = r.line("mail", "STARTTLS");
    assert!(tls.contains(" ok") && tls.contains("clear text"), "{tls}");
    assert!(r.line("mail", "AUTH").contains("skipped"));
    assert_ok(r.line("mail", "QUIT"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.messages().is_empty());
}

#[test]
fn tls_from_the_first_byte_is_probed_before_ehlo() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let server = SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        auth: Some(("sonix-bot".into(), "s3cret pass".into())),
        wrapper: true,
        ..SmtpOptions::default()
    });
    let config = write_config(
        dir.path(),
        &json!({"mail": {"server": "127.0.0.1", "port": server.port, "tls": "wrapper",
                         "ca_file": ca, "user": "sonix-bot", "password": "s3cret pass",
                         "timeout_s": 10, "recipients": ["a@example.org"]}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 0, "{}", r.all());
    let steps: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("mail "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        steps,
        ["connect", "TLS", "EHLO", "AUTH", "QUIT"],
        "{}",
        r.stdout
    );
    let tls = r.line("mail", "TLS (wrapper)");
    assert!(tls.contains("TLS 1.3") || tls.contains("TLS 1.2"), "{tls}");
    assert_ok(r.line("mail", "AUTH PLAIN"));

    // Without the site's CA the certificate cannot be verified: TLS fails, nothing after.
    let config = write_config(
        dir.path(),
        &json!({"mail": {"server": "127.0.0.1", "port": server.port, "tls": "wrapper",
                         "timeout_s": 10, "recipients": ["a@example.org"]}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    let tls = r.line("mail", "TLS (wrapper)");
    assert!(
        tls.contains("FAILED") && tls.to_lowercase().contains("certificate"),
        "{tls}"
    );
    assert!(!r.has_line("mail", "EHLO"));
}

#[test]
fn a_chat_that_does_not_exist_fails_its_getchat() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start();
    let mut config = json!({});
    merge(&mut config, telegram(&tg, json!({"gone": "-100999"})));
    let config = write_config(dir.path(), &config);
    // The scopes are asked in order: default, then gone.
    tg.script_method(
        "getChat",
        [Reply::Ok, Reply::BadRequest("Bad Request: chat not found")],
    );
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_ok(r.line("telegram", "getMe"));
    assert_ok(r.line("telegram", "getChat default"));
    let gone = r.line("telegram", "getChat gone (-100999)");
    assert!(
        gone.contains("FAILED") && gone.contains("chat not found"),
        "{gone}"
    );
    assert!(tg.messages().is_empty());
}

#[test]
fn a_bad_token_fails_getme_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start();
    tg.accept_only(TOKEN);
    let wrong = "999999:WRONG-token_xyz";
    let config = write_config(
        dir.path(),
        &json!({"telegram": {"bot-id": wrong, "api-url": tg.url, "channel-id": "-100200",
                             "timeout_s": 10}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    let me = r.line("telegram", "getMe");
    assert!(me.contains("FAILED"), "{me}");
    // A refused token would fail every chat the same way: they are not asked.
    assert!(tg.requests_of("getChat").is_empty());
    assert!(!r.all().contains("WRONG-token_xyz"), "{}", r.all());

    // An API nobody answers at: the HTTP client's error quotes the URL with the token.
    let config = write_config(
        dir.path(),
        &json!({"telegram": {"bot-id": wrong, "channel-id": "-100200", "timeout_s": 5,
                             "api-url": format!("http://127.0.0.1:{}", dead_port())}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.line("telegram", "getMe").contains("FAILED"));
    assert!(!r.all().contains("WRONG-token_xyz"), "{}", r.all());
}

#[test]
fn a_config_that_does_not_load_is_exit_2_before_any_probe() {
    let dir = tempfile::tempdir().unwrap();
    let tg = FakeTelegram::start();
    let config = write_config(
        dir.path(),
        &json!({"telegram": {"bot-id": TOKEN, "api-url": tg.url, "channel-id": "-100200",
                             "colour": "blue"}}),
    );
    let r = probe(&config);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(tg.requests().is_empty());
}

/// A plain SMTP server, the fake Bot API, and a config with two scopes on each.
fn two_by_two(dir: &Path) -> (SmtpServer, FakeTelegram, PathBuf) {
    let server = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let config = write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "mail": {"server": "127.0.0.1", "port": server.port, "timeout_s": 10,
                     "recipients": ["a@example.org", "b@example.org"],
                     "scopes": {"ops": ["ops@example.org"]}},
            "telegram": {"bot-id": TOKEN, "api-url": tg.url, "channel-id": "-100200",
                         "scopes": {"ops": "@sonix_ops"}, "timeout_s": 10},
        }),
    );
    (server, tg, config)
}

#[test]
fn test_notify_reaches_every_configured_destination_with_a_marked_message() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tg, config) = two_by_two(dir.path());
    let r = run(&config, &["test-notify"]);
    assert_eq!(r.code, 0, "{}", r.all());
    for dest in [
        "mail:default",
        "mail:ops",
        "telegram:default",
        "telegram:ops",
    ] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(dest))
            .unwrap_or_else(|| panic!("no {dest} line in:\n{}", r.stdout));
        assert!(line.contains("delivered"), "{line}");
    }

    let host = protowatch::config::host_name();
    let mut mails = server.wait_for(2, Duration::from_secs(10));
    mails.sort_by(|a, b| a.rcpt_tos.cmp(&b.rcpt_tos));
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[0].rcpt_tos, ["a@example.org", "b@example.org"]);
    assert_eq!(mails[1].rcpt_tos, ["ops@example.org"]);
    for m in &mails {
        assert!(m.subject.starts_with("[IN5] "), "{}", m.subject);
        assert!(
            m.subject.contains("protowatch test message"),
            "{}",
            m.subject
        );
        assert!(m.part("text/plain").contains(&host));
    }

    let sent = tg.messages();
    let mut chats: Vec<String> = sent.iter().map(|r| r.body["chat_id"].to_string()).collect();
    chats.sort();
    assert_eq!(chats, ["\"@sonix_ops\"", "-100200"]);
    for m in &sent {
        let text = m.body["text"].as_str().unwrap_or_default();
        assert!(text.contains("protowatch test message"), "{text}");
        assert!(text.contains("IN5") && text.contains(&host), "{text}");
    }
}

#[test]
fn test_notify_to_one_scope_of_one_service_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tg, config) = two_by_two(dir.path());
    let r = run(
        &config,
        &["test-notify", "--service", "telegram", "--scope", "ops"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    assert!(r.stdout.starts_with("telegram:ops"), "{}", r.stdout);
    let sent = tg.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["chat_id"], json!("@sonix_ops"));
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.messages().is_empty());
}

#[test]
fn test_notify_names_what_exists_when_asked_for_what_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tg, config) = two_by_two(dir.path());
    let r = run(&config, &["test-notify", "--scope", "night-shift"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("night-shift"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("mail:default, mail:ops, telegram:default, telegram:ops"),
        "{}",
        r.stderr
    );
    let r = run(&config, &["test-notify", "--service", "sms"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("mail, telegram"), "{}", r.stderr);

    std::thread::sleep(Duration::from_millis(300));
    assert!(tg.requests().is_empty());
    assert!(server.messages().is_empty());
}

#[test]
fn test_notify_reports_a_failing_destination_and_still_delivers_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (server, tg, config) = two_by_two(dir.path());
    tg.missing_chat("@sonix_ops");
    let r = run(&config, &["test-notify"]);
    assert_eq!(r.code, 1, "{}", r.all());
    let failed: Vec<&str> = r.stdout.lines().filter(|l| l.contains("FAILED")).collect();
    assert_eq!(failed.len(), 1, "{}", r.stdout);
    assert!(failed[0].starts_with("telegram:ops"), "{}", failed[0]);
    assert!(failed[0].contains("chat not found"), "{}", failed[0]);
    assert_eq!(r.stdout.matches("delivered").count(), 3, "{}", r.stdout);
    assert!(r.stderr.contains("1 of 4"), "{}", r.stderr);

    assert_eq!(server.wait_for(2, Duration::from_secs(10)).len(), 2);
    let reached: Vec<Value> = tg
        .messages()
        .iter()
        .map(|m| m.body["chat_id"].clone())
        .collect();
    assert!(reached.contains(&json!(-100200)), "{reached:?}");
}
