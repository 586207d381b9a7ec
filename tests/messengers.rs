//! The messengers against real servers on loopback: aiosmtpd for mail (plain, and
//! STARTTLS with AUTH and a certificate trusted through `mail.ca_file`), and the fake
//! Bot API for Telegram. Each test checks what the server received.

// The SMTP server these tests start is Debian's aiosmtpd, a Linux process that a Windows
// test under Wine cannot start; the Windows build is checked end to end from the Linux
// side instead (tests/windows_exe.rs).
#![cfg(not(windows))]

mod support;

use std::path::Path;
use std::time::Duration;

use protowatch::config::{Config, Destination, Service};
use protowatch::event::{Event, Message, Severity};
use protowatch::messengers::{Failure, Messengers, Notification, SendError};
use serde_json::{Value, json};
use support::{FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, make_certs};

fn config(dir: &Path, value: Value) -> Config {
    let path = support::write_config(dir, &value);
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn event(text: &str) -> Event {
    let mut e = Event::message("alarm_major", Severity::Major, Message::plain(text));
    e.source = Some("детектор".into());
    e.details =
        Some("Traceback (most recent call last):\n  File \"x.py\"\nValueError: <bad>".into());
    e
}

async fn send(config: &Config, service: Service, e: &Event) -> Result<(), SendError> {
    let m = Messengers::from_config(config).unwrap();
    let n = Notification::single(&config.instrument, e);
    m.send(
        &Destination {
            service,
            scope: "default".into(),
        },
        &n,
    )
    .await
}

#[tokio::test]
async fn mail_plain_reaches_every_recipient_with_both_parts_in_utf8() {
    let server = SmtpServer::start(SmtpOptions::default());
    let dir = tempfile::tempdir().unwrap();
    // The old bot's keys as it wrote them: a port as a string, no tls key.
    let cfg = config(
        dir.path(),
        json!({
            "instrument": "IN5",
            "mail": {
                "user": "sonix-bot", "password": "", "server": "127.0.0.1",
                "port": server.port.to_string(),
                "recipients": ["a@example.org", "b@example.org"]
            }
        }),
    );
    let e = event("Ошибка датчика: HV <trip> & restart");
    send(&cfg, Service::Mail, &e).await.unwrap();

    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.rcpt_tos, vec!["a@example.org", "b@example.org"]);
    assert!(m.mail_from.starts_with("protowatch@"), "{}", m.mail_from);
    assert_eq!(m.from, m.mail_from);
    assert!(m.to.contains("a@example.org") && m.to.contains("b@example.org"));
    assert_eq!(
        m.subject,
        "[IN5] MAJOR: Ошибка датчика: HV <trip> & restart"
    );
    assert!(!m.tls);
    let text = m.part("text/plain");
    assert!(
        text.contains("Ошибка датчика: HV <trip> & restart"),
        "{text}"
    );
    assert!(text.contains("ValueError: <bad>"), "{text}");
    assert!(text.contains("детектор"));
    let html = m.part("text/html");
    assert!(
        html.contains("Ошибка датчика: HV &lt;trip&gt; &amp; restart"),
        "{html}"
    );
    assert!(
        html.contains("<pre>Traceback (most recent call last):"),
        "{html}"
    );
}

#[tokio::test]
async fn mail_starttls_and_auth_with_the_site_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let server = SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        auth: Some(("sonix-bot".into(), "s3cret pass".into())),
        ..SmtpOptions::default()
    });
    std::fs::write(dir.path().join("smtp-password"), "s3cret pass\n").unwrap();
    let cfg = config(
        dir.path(),
        json!({
            "instrument": "IN5",
            "mail": {
                "user": "sonix-bot", "password_file": "smtp-password",
                "server": "127.0.0.1", "port": server.port, "tls": "starttls",
                "ca_file": ca, "from": "Sonix <sonix@example.org>",
                "recipients": ["a@example.org"]
            }
        }),
    );
    send(&cfg, Service::Mail, &event("HV trip")).await.unwrap();
    let mails = server.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the session must have been encrypted");
    assert_eq!(mails[0].auth_user.as_deref(), Some("sonix-bot"));
    assert_eq!(mails[0].mail_from, "sonix@example.org");
    assert!(mails[0].from.contains("Sonix"));
}

#[tokio::test]
async fn mail_refuses_a_certificate_it_cannot_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (_ca, cert, key) = make_certs(dir.path());
    let server = SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        ..SmtpOptions::default()
    });
    let cfg = config(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": server.port, "tls": "starttls",
                        "recipients": ["a@example.org"]}}),
    );
    let err = send(&cfg, Service::Mail, &event("x")).await.unwrap_err();
    assert!(
        err.message.to_lowercase().contains("certificate"),
        "{}",
        err.message
    );
    assert!(server.messages().is_empty());
}

#[tokio::test]
async fn mail_wrong_password_and_refused_recipient_are_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certs(dir.path());
    let server = SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        auth: Some(("u".into(), "right".into())),
        ..SmtpOptions::default()
    });
    let cfg = config(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": server.port, "tls": "starttls",
                        "ca_file": ca, "user": "u", "password": "wrong-pass-123",
                        "recipients": ["a@example.org"]}}),
    );
    let err = send(&cfg, Service::Mail, &event("x")).await.unwrap_err();
    assert_eq!(err.kind, Failure::Permanent, "{}", err.message);
    assert!(!err.message.contains("wrong-pass-123"));

    let rejecting = SmtpServer::start(SmtpOptions {
        reject: true,
        ..SmtpOptions::default()
    });
    let cfg = config(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": rejecting.port,
                        "recipients": ["a@example.org"]}}),
    );
    let err = send(&cfg, Service::Mail, &event("x")).await.unwrap_err();
    assert_eq!(err.kind, Failure::Permanent);
    assert!(
        err.message.contains("mailbox unavailable"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn mail_server_down_is_transient() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": port, "recipients": ["a@example.org"]}}),
    );
    let err = send(&cfg, Service::Mail, &event("x")).await.unwrap_err();
    assert_eq!(err.kind, Failure::Transient, "{}", err.message);
}

fn tg_config(dir: &Path, tg: &FakeTelegram, chat: Value) -> Config {
    config(
        dir,
        json!({"instrument": "IN5",
               "telegram": {"bot-id": TOKEN, "channel-id": chat, "api-url": tg.url}}),
    )
}

#[tokio::test]
async fn telegram_sends_escaped_html_to_numeric_and_named_chats() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    // The old bot wrote the channel id as a number.
    let cfg = tg_config(dir.path(), &tg, json!(-1001234567890_i64));
    send(&cfg, Service::Telegram, &event("a < b && c > d"))
        .await
        .unwrap();
    let cfg = tg_config(dir.path(), &tg, json!("@sonix_alerts"));
    send(&cfg, Service::Telegram, &event("second"))
        .await
        .unwrap();

    let msgs = tg.wait_for(2, Duration::from_secs(5));
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].token, TOKEN);
    assert_eq!(msgs[0].body["chat_id"], json!(-1001234567890_i64));
    assert_eq!(msgs[0].body["parse_mode"], "HTML");
    let text = msgs[0].body["text"].as_str().unwrap();
    assert!(text.contains("a &lt; b &amp;&amp; c &gt; d"), "{text}");
    assert!(text.contains("ValueError: &lt;bad&gt;"), "{text}");
    assert!(text.contains("IN5"));
    assert_eq!(msgs[1].body["chat_id"], "@sonix_alerts");
}

#[tokio::test]
async fn telegram_splits_long_text_into_ordered_parts() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = tg_config(dir.path(), &tg, json!("-100200"));
    let text: String = (0..500)
        .map(|i| format!("line {i:05} of the report\n"))
        .collect();
    assert!(text.chars().count() >= 10_000);
    let mut e = event(&text);
    e.details = None;
    send(&cfg, Service::Telegram, &e).await.unwrap();

    let msgs = tg.messages();
    assert!(msgs.len() >= 3, "{} parts", msgs.len());
    let mut joined = String::new();
    for m in &msgs {
        let t = m.body["text"].as_str().unwrap();
        assert!(
            t.encode_utf16().count() <= 4096,
            "{} characters",
            t.chars().count()
        );
        joined.push_str(t);
    }
    // Every line arrives whole and in order.
    let mut last = None;
    for i in 0..500 {
        let needle = format!("line {i:05} of the report\n");
        let at = joined
            .find(&needle)
            .unwrap_or_else(|| panic!("line {i} missing"));
        assert!(last.is_none_or(|l| at > l), "line {i} out of order");
        last = Some(at);
    }
}

#[tokio::test]
async fn telegram_errors_are_classified_and_never_show_the_token() {
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = tg_config(dir.path(), &tg, json!("-100200"));

    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let err = send(&cfg, Service::Telegram, &event("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Failure::Permanent);
    assert!(err.message.contains("chat not found"), "{}", err.message);

    tg.script([Reply::TooManyRequests { retry_after: 7 }]);
    let err = send(&cfg, Service::Telegram, &event("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Failure::Transient);
    assert_eq!(err.retry_after, Some(Duration::from_secs(7)));

    // Nothing listens here: the HTTP client's error quotes the URL, token included.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = config(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "1",
                            "api-url": format!("http://127.0.0.1:{port}")}}),
    );
    let err = send(&cfg, Service::Telegram, &event("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Failure::Transient);
    assert!(!err.message.contains("TEST-token_abc"), "{}", err.message);
}

/// A server that accepts connections and never says a word.
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(2) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    (port, handle)
}

#[tokio::test]
async fn a_hanging_server_is_a_transient_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let (port, _smtp) = silent_server();
    let cfg = config(
        dir.path(),
        json!({"mail": {"server": "127.0.0.1", "port": port, "timeout_s": 1,
                        "recipients": ["a@example.org"]}}),
    );
    let started = std::time::Instant::now();
    let err = send(&cfg, Service::Mail, &event("x")).await.unwrap_err();
    assert_eq!(err.kind, Failure::Transient, "{}", err.message);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let (port, _tg) = silent_server();
    let cfg = config(
        dir.path(),
        json!({"telegram": {"bot-id": TOKEN, "channel-id": "1", "timeout_s": 1,
                            "api-url": format!("http://127.0.0.1:{port}")}}),
    );
    let started = std::time::Instant::now();
    let err = send(&cfg, Service::Telegram, &event("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, Failure::Transient, "{}", err.message);
    assert!(
        err.message.contains("no answer within 1 s"),
        "{}",
        err.message
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}
