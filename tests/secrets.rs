//! No secret in any output: a config with a known mail password, Bot API token, SciLog
//! password and API token goes through every command and a traced agent run — deliveries that succeed
//! and fail, a reload with a wrong password, a broken edit that carries the secrets —
//! and every byte the processes wrote is searched for the secrets in every encoding a
//! log could carry them in (plain, URL-encoded, SMTP AUTH's base64).
#![cfg(unix)]

mod support;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use support::scilog::FakeScilog;
use support::{
    Agent, FakeTelegram, Reply, SmtpOptions, SmtpServer, append, protowatch, wait_until,
};

const PASSWORD: &str = "Pw-s3cret-MAIL-4711";
const WRONG_PASSWORD: &str = "Pw-wr0ng-MAIL-0815";
const BOT_TOKEN: &str = "7000001:SECRET-bot-token_Zq9";
const API_TOKEN: &str = "api-S3CRET-token-ab12";
const SCILOG_PASSWORD: &str = "Sci-S3CRET-log-9876";

fn config(smtp: &SmtpServer, tg: &FakeTelegram, scilog: &FakeScilog, password: &str) -> Value {
    json!({
        "instrument": "IN5",
        "mail": {
            "server": "127.0.0.1", "port": smtp.port, "tls": "starttls",
            "ca_file": "ca.pem", "user": "bot", "password": password,
            "from": "bot@example.org", "recipients": ["ops@example.org"],
            "timeout_s": 10,
        },
        "telegram": {"bot-id": BOT_TOKEN, "channel-id": "-100", "api-url": tg.url},
        "scilog": {"url": scilog.url, "user": "bot", "password": SCILOG_PASSWORD,
                   "scopes": {"default": {"logbook": "lb-1"}}},
        "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
        "throttle": {"repeat_interval": 0},
        "api": {"listen": "127.0.0.1:0", "token": API_TOKEN},
    })
}

/// Every form in which a secret could leak into a line of text.
fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        b64.encode(format!("\0bot\0{secret}")),
        b64.encode(secret),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        BOT_TOKEN,
        API_TOKEN,
        SCILOG_PASSWORD,
    ] {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{what} shows a secret ({form:?}):\n{text}"
            );
        }
    }
    // The token's secret half alone is as bad as the whole.
    let half = BOT_TOKEN.split_once(':').unwrap().1;
    assert!(
        !text.contains(half),
        "{what} shows the token's secret part:\n{text}"
    );
}

fn run(config: &Path, args: &[&str]) -> Output {
    protowatch()
        .env("RUST_LOG", "trace")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn check(what: &str, out: &Output) {
    assert_clean(
        &format!("{what} (stdout)"),
        &String::from_utf8_lossy(&out.stdout),
    );
    assert_clean(
        &format!("{what} (stderr)"),
        &String::from_utf8_lossy(&out.stderr),
    );
}

/// The agent of `cfg`, tracing everything into `log`.
fn traced_agent(cfg: &Path, log: &Path) -> Agent {
    let mut cmd = protowatch();
    cmd.env("RUST_LOG", "trace")
        .arg("--config")
        .arg(cfg)
        .arg("run");
    Agent::start_command(cmd, cfg, log)
}

/// An SMTP server with STARTTLS that takes `bot` with [`PASSWORD`]; its site CA goes to
/// `ca.pem` in `d`, which the configs name.
fn smtp_with_auth(d: &Path) -> SmtpServer {
    let (_ca, cert, key) = support::make_certs(d);
    SmtpServer::start(SmtpOptions {
        tls: Some((cert, key)),
        auth: Some(("bot".into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
}

#[test]
fn no_output_of_any_command_or_of_a_traced_run_shows_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let smtp = smtp_with_auth(d);
    let tg = FakeTelegram::start();
    let scilog = FakeScilog::start();
    scilog.add_user("bot", SCILOG_PASSWORD);
    scilog.add_logbook("lb-1", "beamtime");
    std::fs::create_dir(d.join("p")).unwrap();
    let cfg = support::write_config(d, &config(&smtp, &tg, &scilog, PASSWORD));

    // One-shot commands, before any agent runs.
    check("check-config", &run(&cfg, &["check-config"]));
    let out = run(&cfg, &["check-config", "--probe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    check("check-config --probe", &out);
    let out = run(&cfg, &["test-notify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    check("test-notify", &out);
    let out = run(&cfg, &["send-message", "--direct", "direct hello"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check("send-message --direct", &out);
    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let out = run(&cfg, &["send-message", "--direct", "refused hello"]);
    assert_eq!(out.status.code(), Some(1));
    check("send-message --direct, refused", &out);

    // A traced agent run, in both log formats one after the other.
    for format in ["human", "json"] {
        let log = d.join(format!("agent-{format}.log"));
        let mut cmd = protowatch();
        cmd.env("RUST_LOG", "trace")
            .args(["--log-format", format, "--config"])
            .arg(&cfg)
            .arg("run");
        let agent = Agent::start_command(cmd, &cfg, &log);
        let before = smtp.messages().len();
        append(
            &d.join("p/a.log"),
            format!("ERROR detector {format} tripped\n").as_bytes(),
        );
        let out = run(&cfg, &["send-message", "--wait", "20", "through the agent"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check("send-message through the agent", &out);
        assert!(
            !smtp
                .wait_for(before + 2, Duration::from_secs(20))
                .is_empty()
        );
        for args in [
            &["alerts", "list"][..],
            &["alerts", "list", "--json"],
            &["routes", "list"],
            &["outbox", "list", "--dead"],
        ] {
            check(&args.join(" "), &run(&cfg, args));
        }
        if format == "human" {
            // A reload with a wrong password: the server refuses AUTH, the log says so.
            support::write_config(d, &config(&smtp, &tg, &scilog, WRONG_PASSWORD));
            assert!(
                wait_until(Duration::from_secs(10), || {
                    std::fs::read_to_string(&log)
                        .unwrap_or_default()
                        .contains("applied")
                }),
                "{}",
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.contains("TRACE"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            let out = run(&cfg, &["check-config", "--probe"]);
            assert_eq!(out.status.code(), Some(1));
            check("check-config --probe, wrong password", &out);
            let out = run(&cfg, &["test-notify", "--service", "mail"]);
            assert_eq!(out.status.code(), Some(1));
            check("test-notify, wrong password", &out);
            append(&d.join("p/a.log"), b"ERROR after the wrong password\n");
            assert!(wait_until(Duration::from_secs(20), || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("535")
            }));
            // A broken edit that carries the secrets: reported, not echoed.
            let mut broken = config(&smtp, &tg, &scilog, PASSWORD);
            broken["mail"]["password"] = json!([PASSWORD]);
            broken["telegram"]["bot-id"] = json!(format!("{BOT_TOKEN} x"));
            broken["api"]["token"] = json!({ "value": API_TOKEN });
            broken["scilog"]["password"] = json!([SCILOG_PASSWORD]);
            support::write_config(d, &broken);
            assert!(wait_until(Duration::from_secs(10), || {
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .contains("the running config stays")
            }));
            check(
                "check-config on the broken file",
                &run(&cfg, &["check-config"]),
            );
            support::write_config(d, &config(&smtp, &tg, &scilog, PASSWORD));
        }
        agent.stop();
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(
            text.contains("TRACE") || text.contains("\"TRACE\""),
            "not traced:\n{text}"
        );
        if format == "json" {
            for line in text.lines() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            }
        }
        assert_clean(&format!("the agent's {format} log"), &text);
    }
}

/// The token the agent makes for itself, before and after a rotation, and a password
/// written into a URL: in no output but `api-token`'s own, whose job is to show it.
#[test]
fn the_generated_api_token_and_a_password_in_a_url_are_shown_nowhere() {
    const URL_PASSWORD: &str = "UrlPw-s3cret-9931";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tg = FakeTelegram::start();
    let tg_url = tg
        .url
        .replacen("http://", &format!("http://tg:{URL_PASSWORD}@"), 1);
    std::fs::create_dir_all(d.join("p")).unwrap();
    let cfg = support::write_config(
        d,
        &json!({
            "instrument": "IN5",
            "telegram": {"bot-id": BOT_TOKEN, "channel-id": "-100", "api-url": tg_url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    let log = d.join("agent.log");
    let agent = traced_agent(&cfg, &log);
    let token_file = d.join(".protowatch/api-token");
    let first = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    let wrong = format!("Bearer {}", "f".repeat(64));
    support::http_anon(
        agent.addr,
        "GET",
        "/api/alerts",
        &[("Authorization", &wrong)],
        b"",
    );
    let mut outputs = vec![
        ("check-config", run(&cfg, &["check-config"])),
        ("send-message", run(&cfg, &["send-message", "hello"])),
        ("alerts list", run(&cfg, &["alerts", "list", "--json"])),
        ("api-token --rotate", run(&cfg, &["api-token", "--rotate"])),
    ];
    let second = std::fs::read_to_string(&token_file)
        .unwrap()
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(1100));
    outputs.push((
        "send-message after rotation",
        run(&cfg, &["send-message", "again"]),
    ));
    let shown = run(&cfg, &["api-token"]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), second);
    tg.wait_for(2, Duration::from_secs(10));
    drop(agent);
    let mut all: Vec<(String, String)> = outputs
        .iter()
        .flat_map(|(what, o)| {
            [
                (
                    format!("{what} (stdout)"),
                    String::from_utf8_lossy(&o.stdout).into_owned(),
                ),
                (
                    format!("{what} (stderr)"),
                    String::from_utf8_lossy(&o.stderr).into_owned(),
                ),
            ]
        })
        .collect();
    all.push((
        "api-token (stderr)".into(),
        String::from_utf8_lossy(&shown.stderr).into_owned(),
    ));
    all.push((
        "the traced agent's log".into(),
        std::fs::read_to_string(&log).unwrap(),
    ));
    assert!(all.last().unwrap().1.contains("TRACE"), "traced");
    assert!(
        all[0].1.contains("********"),
        "check-config masks: {}",
        all[0].1
    );
    for (what, text) in &all {
        for secret in [first.as_str(), second.as_str(), URL_PASSWORD, BOT_TOKEN] {
            for form in forms(secret) {
                assert!(
                    !text.contains(&form),
                    "{what} shows a secret ({form:?}):\n{text}"
                );
            }
        }
    }
}

/// Secrets read from their files (`bot-id_file`, `password_file`, `token_file`) are as
/// hidden as written ones: in no command's output, no traced log, and no problem about a
/// broken secret file, which names the file and its key instead.
#[test]
fn secrets_from_files_are_shown_nowhere() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let smtp = smtp_with_auth(d);
    let tg = FakeTelegram::start();
    std::fs::create_dir(d.join("p")).unwrap();
    let files = [
        ("bot-id", BOT_TOKEN),
        ("mail-password", PASSWORD),
        ("api-token-file", API_TOKEN),
    ];
    for (name, secret) in files {
        std::fs::write(d.join(name), format!("{secret}\n")).unwrap();
    }
    let cfg = support::write_config(
        d,
        &json!({
            "instrument": "IN5",
            "mail": {
                "server": "127.0.0.1", "port": smtp.port, "tls": "starttls",
                "ca_file": "ca.pem", "user": "bot", "password_file": "mail-password",
                "from": "bot@example.org", "recipients": ["ops@example.org"],
            },
            "telegram": {"bot-id_file": "bot-id", "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            "api": {"listen": "127.0.0.1:0", "token_file": "api-token-file"},
        }),
    );
    let out = run(&cfg, &["check-config"]);
    assert!(out.status.success(), "{out:?}");
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["telegram"]["bot-id"], "********");
    assert_eq!(shown["telegram"]["bot-id_file"], json!(d.join("bot-id")));
    assert_eq!(
        shown["mail"]["password_file"],
        json!(d.join("mail-password"))
    );
    check("check-config", &out);
    let out = run(&cfg, &["send-message", "--direct", "direct hello"]);
    assert!(out.status.success(), "{out:?}");
    check("send-message --direct", &out);
    assert_eq!(tg.wait_for(1, Duration::from_secs(10))[0].token, BOT_TOKEN);

    let log = d.join("agent.log");
    let agent = traced_agent(&cfg, &log);
    let out = run(&cfg, &["send-message", "--wait", "20", "through the agent"]);
    assert!(out.status.success(), "{out:?}");
    check("send-message through the agent", &out);
    check("alerts list", &run(&cfg, &["alerts", "list"]));
    agent.stop();
    assert_clean("the agent's log", &std::fs::read_to_string(&log).unwrap());

    // Broken secret files: a second line, bytes that are not text. Each is named with
    // its key; what it holds is not shown.
    std::fs::write(d.join("bot-id"), format!("{BOT_TOKEN}\n{BOT_TOKEN}\n")).unwrap();
    std::fs::write(
        d.join("mail-password"),
        [PASSWORD.as_bytes(), b"\xff"].concat(),
    )
    .unwrap();
    std::fs::write(d.join("api-token-file"), "\n").unwrap();
    let out = run(&cfg, &["check-config"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "telegram.bot-id_file: ",
        "holds more than one line",
        "mail.password_file: ",
        "is not UTF-8 text",
        "api.token_file: ",
        "api-token-file is empty",
    ] {
        assert!(err.contains(expected), "{expected:?} in {err}");
    }
    check("check-config on broken secret files", &out);
}

/// `check-config` warns (exit 0 still) about a secret that more people than the agent's
/// user can read: written in a config the group or everyone may read, or in a file they
/// may. The API's token is for the group by design: only everyone is too many for it.
#[test]
fn check_config_warns_about_secrets_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Others may enter the folder: the files' own modes decide.
    mode(d, 0o755);
    std::fs::write(d.join("bot-id"), format!("{BOT_TOKEN}\n")).unwrap();
    let check_config = |config: &Value| {
        let cfg = support::write_config(d, config);
        mode(&cfg, 0o644);
        let out = run(&cfg, &["check-config"]);
        assert!(out.status.success(), "{out:?}");
        check("check-config", &out);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (cfg, err)
    };
    let inline = json!({
        "telegram": {"bot-id": BOT_TOKEN, "channel-id": "-100"},
        "api": {"token": API_TOKEN},
    });
    let (cfg, err) = check_config(&inline);
    assert!(
        err.contains(&format!(
            "warning: {} is readable by every user and holds telegram.bot-id: move the secret to telegram.bot-id_file, a file readable by the agent's user only",
            cfg.display()
        )),
        "{err}"
    );
    assert!(err.contains("holds api.token"), "everyone may not: {err}");
    // Readable by the file's group (root's here): the bot token is too much for it, the
    // API token is what the group is for.
    mode(&cfg, 0o640);
    let out = run(&cfg, &["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is readable by group "), "{err}");
    assert!(err.contains("holds telegram.bot-id:"), "{err}");
    assert!(!err.contains("holds api.token"), "{err}");
    mode(&cfg, 0o600);
    let out = run(&cfg, &["check-config"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{out:?}"
    );

    // The token in its own file: the file's mode counts, not the config's.
    let from_file = json!({"telegram": {"bot-id_file": "bot-id", "channel-id": "-100"}});
    mode(&d.join("bot-id"), 0o644);
    let (_, err) = check_config(&from_file);
    assert!(
        err.contains(&format!(
            "warning: telegram.bot-id_file: {} is readable by every user: make it readable by the agent's user only",
            d.join("bot-id").display()
        )),
        "{err}"
    );
    assert!(!err.contains("holds"), "{err}");
    mode(&d.join("bot-id"), 0o600);
    let (_, err) = check_config(&from_file);
    assert!(!err.contains("warning"), "{err}");
    // A folder only its owner may enter keeps even a 0644 file to the owner.
    mode(&d.join("bot-id"), 0o644);
    mode(d, 0o700);
    let (_, err) = check_config(&from_file);
    assert!(!err.contains("warning"), "{err}");
}
