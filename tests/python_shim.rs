//! The drop-in Python shim `packaging/python/bot/messangers.py`: scripts written for the
//! old bot (`from bot import messangers; messangers.send_message("…")`) run unchanged
//! against the real binary, the loopback SMTP server and the fake Bot API — directly and
//! through a running agent — and every failure is a `messangers.MessengerError`.

// The SMTP server is Debian's aiosmtpd, a Linux process, and the scripts run under Debian's
// Python; see tests/windows_exe.rs for the Windows build.
#![cfg(not(windows))]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Agent, FakeTelegram, Reply, SmtpOptions, SmtpServer, TOKEN, protowatch};

/// The interpreter: Debian's, as for the SMTP server (the shim itself needs only the
/// standard library), as an absolute path so that a test may change `PATH`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("PROTOWATCH_TEST_PYTHON") {
        return p.into();
    }
    let debian = Path::new("/usr/bin/python3");
    if debian.exists() {
        return debian.into();
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("python3"))
        .find(|p| p.is_file())
        .expect("a python3 interpreter")
}

fn shim_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/python")
}

/// Runs `script` as `dir/script.py` in `dir`, the shim on `PYTHONPATH`, the binary under
/// test as `PROTOWATCH_BIN` and `config` as `PROTOWATCH_CONFIG`; `env` adds to or (with
/// `None`) removes from that environment.
fn run_python(
    dir: &Path,
    config: Option<&Path>,
    script: &str,
    env: &[(&str, Option<&str>)],
) -> Output {
    let file = dir.join("script.py");
    std::fs::write(&file, script).unwrap();
    let mut cmd = Command::new(python());
    cmd.arg(&file)
        .current_dir(dir)
        .env("PYTHONPATH", shim_dir())
        // Keep the source tree free of __pycache__.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONIOENCODING", "utf-8")
        .env("PROTOWATCH_BIN", env!("CARGO_BIN_EXE_protowatch"))
        .env_remove("PROTOWATCH_CONFIG")
        .env_remove("PROTOWATCH_TIMEOUT")
        .env_remove("RUST_LOG");
    if let Some(config) = config {
        cmd.env("PROTOWATCH_CONFIG", config);
    }
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null()).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the script ended with 0 and printed nothing.
fn assert_silent_success(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        stdout(out),
        stderr(out)
    );
    assert_eq!(stdout(out), "", "nothing printed on success");
    assert_eq!(stderr(out), "", "nothing printed on success");
}

/// The script's one line of JSON on stdout.
fn json_out(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    serde_json::from_str(stdout(out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", stdout(out), stderr(out)))
}

/// Catches the shim's exception and prints what it carries.
const CATCH: &str = r#"
import json
from bot import messangers

def attempt(*args, **kwargs):
    try:
        messangers.send_message(*args, **kwargs)
    except messangers.MessengerError as e:
        print(json.dumps({"error": str(e), "returncode": e.returncode,
                          "exit_code": e.exit_code, "stderr": e.stderr}))
    else:
        print(json.dumps({"error": None}))
"#;

fn config(dir: &Path, smtp_port: u16, tg: &FakeTelegram) -> PathBuf {
    std::fs::create_dir_all(dir.join("p")).unwrap();
    support::write_config(
        dir,
        &json!({
            "instrument": "IN5",
            "mail": {"server": "127.0.0.1", "port": smtp_port, "tls": "none",
                     "from": "in5@example.org", "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100777", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 100}],
            // A port of its own, so that parallel tests' agents do not meet.
            "api": {"listen": "127.0.0.1:0"},
        }),
    )
}

/// The text of every `sendMessage`, joined.
fn telegram_text(tg: &FakeTelegram) -> String {
    tg.messages()
        .iter()
        .map(|r| r.body["text"].as_str().unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn an_old_script_sends_through_the_shim_unchanged() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);

    let out = run_python(
        dir.path(),
        Some(&cfg),
        "from bot import messangers\nmessangers.send_message(\"sample 3 done\")\n",
        &[],
    );
    assert_silent_success(&out);
    // Without an agent the binary sends directly and returns once both accepted.
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[IN5] INFO: sample 3 done");
    assert_eq!(mails[0].rcpt_tos, vec!["ops@example.org"]);
    let msgs = tg.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].token, TOKEN);
    assert!(
        msgs[0].body["text"]
            .as_str()
            .unwrap()
            .contains("sample 3 done"),
        "{:?}",
        msgs[0].body
    );

    // `import bot` alone gives the module too, as a package attribute.
    let out = run_python(
        dir.path(),
        Some(&cfg),
        "import bot\nbot.messangers.send_message(\"sample 4 done\")\n",
        &[],
    );
    assert_silent_success(&out);
    assert_eq!(
        smtp.wait_for(2, Duration::from_secs(10))[1].subject,
        "[IN5] INFO: sample 4 done"
    );
}

#[test]
fn unicode_multi_line_and_long_texts_arrive_intact() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);

    let text = "Образец №3 готов: T = 1,5 K\nвторая строка — «кавычки» и 🧪\n    отступ; $HOME `uname` \\n";
    let script = format!(
        "from bot import messangers\nmessangers.send_message({})\n",
        serde_json::to_string(text).unwrap()
    );
    assert!(
        script.contains('№'),
        "the text is written as is, not escaped"
    );
    let out = run_python(dir.path(), Some(&cfg), &script, &[]);
    assert_silent_success(&out);
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[IN5] INFO: Образец №3 готов: T = 1,5 K");
    let plain = mails[0].part("text/plain").replace("\r\n", "\n");
    assert!(plain.contains(text), "{plain}");
    let sent = telegram_text(&tg);
    assert!(sent.contains(text), "{sent}");

    // Far beyond any command line: 3,000 lines, about 100 KB.
    let out = run_python(
        dir.path(),
        Some(&cfg),
        "from bot import messangers\n\
         lines = ['строка {:04} из длинного отчёта'.format(i) for i in range(3000)]\n\
         messangers.send_message('\\n'.join(lines))\n",
        &[],
    );
    assert_silent_success(&out);
    // The server accepted it before the script returned; its record of a 100 KB mail may
    // take a moment to be read.
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails.len(), 2);
    let plain = mails[1].part("text/plain").replace("\r\n", "\n");
    for line in [
        "строка 0000 из длинного отчёта\nстрока 0001",
        "строка 2999 из длинного отчёта",
    ] {
        assert!(plain.contains(line), "{line} in the mail");
    }
    // Telegram got it in several messages, in order, the last line included.
    assert!(tg.messages().len() > 2);
    assert!(telegram_text(&tg).contains("строка 2999 из длинного отчёта"));
}

#[test]
fn keyword_arguments_map_onto_the_options() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);
    let csv = b"channel,counts\n3,1200\n";
    std::fs::write(dir.path().join("counts.csv"), csv).unwrap();

    // A relative path is the script's: the binary runs in its current folder.
    let out = run_python(
        dir.path(),
        Some(&cfg),
        r#"
import pathlib
from bot import messangers
messangers.send_message(
    "sample 3: HV tripped",
    event="sample_done",
    severity="PROBLEM",
    attachments=[pathlib.Path("counts.csv")],
    tags=["run42", "-sample3"],
)
"#,
        &[],
    );
    assert_silent_success(&out);
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].subject,
        "[IN5] MAJOR sample_done: sample 3: HV tripped"
    );
    let plain = mails[0].part("text/plain");
    assert!(
        plain.contains("#run42") && plain.contains("sample3"),
        "{plain}"
    );
    let files: Vec<(&str, &str, &[u8])> = mails[0]
        .attachments
        .iter()
        .map(|(n, t, b)| (n.as_str(), t.as_str(), b.as_slice()))
        .collect();
    assert_eq!(files, vec![("counts.csv", "text/csv", csv.as_slice())]);
    let methods: Vec<String> = tg.requests().iter().map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["sendmessage", "senddocument"]);

    // One string for `attachments` or `tags` is one value, not a list of its letters.
    let out = run_python(
        dir.path(),
        Some(&cfg),
        "from bot import messangers\n\
         messangers.send_message('sample 4', attachments='counts.csv', tags='run43')\n",
        &[],
    );
    assert_silent_success(&out);
    let mails = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(mails[1].attachments.len(), 1);
    assert!(mails[1].part("text/plain").contains("#run43"));
}

#[test]
fn a_refusal_and_bad_usage_raise_messenger_error_with_stderr_and_exit_code() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);

    tg.script([Reply::BadRequest("Bad Request: chat not found")]);
    let out = run_python(
        dir.path(),
        Some(&cfg),
        &format!("{CATCH}\nattempt(\"sample 5 done\")\n"),
        &[],
    );
    let v = json_out(&out);
    let error = v["error"].as_str().expect("a MessengerError");
    assert!(error.contains("chat not found"), "{error}");
    assert!(error.contains("exit code 1"), "{error}");
    assert_eq!(v["returncode"], 1);
    assert_eq!(v["exit_code"], 1);
    let err = v["stderr"].as_str().unwrap();
    assert!(
        err.contains("telegram:default") && err.contains("chat not found"),
        "{err}"
    );
    // Mail took it all the same.
    assert_eq!(smtp.wait_for(1, Duration::from_secs(10)).len(), 1);

    // Bad usage is exit code 2 (protowatch stops before it reads the text).
    let out = run_python(
        dir.path(),
        Some(&cfg),
        &format!("{CATCH}\nattempt(\"x\" * 1000000, severity=\"catastrophic\")\n"),
        &[],
    );
    let v = json_out(&out);
    assert_eq!(v["returncode"], 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("--severity"), "{v}");

    // An unreadable config is bad usage too, and says which file.
    let out = run_python(
        dir.path(),
        Some(&dir.path().join("missing.json")),
        &format!("{CATCH}\nattempt(\"sample 6\")\n"),
        &[],
    );
    let v = json_out(&out);
    assert_eq!(v["returncode"], 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("missing.json"), "{v}");
    assert_eq!(smtp.messages().len(), 1);
}

#[test]
fn a_missing_binary_says_how_to_point_at_it_and_path_is_searched() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let script = format!("{CATCH}\nattempt(\"sample 3 done\")\n");

    let missing = dir.path().join("no/such/protowatch");
    let out = run_python(
        dir.path(),
        None,
        &script,
        &[("PROTOWATCH_BIN", Some(missing.to_str().unwrap()))],
    );
    let v = json_out(&out);
    let error = v["error"].as_str().expect("a MessengerError");
    assert!(error.contains("PROTOWATCH_BIN"), "{error}");
    assert!(error.contains("no/such/protowatch"), "{error}");
    assert_eq!(v["returncode"], Value::Null);

    // Not set, and not on PATH.
    let out = run_python(
        dir.path(),
        None,
        &script,
        &[
            ("PROTOWATCH_BIN", None),
            ("PATH", Some(empty.path().to_str().unwrap())),
        ],
    );
    let v = json_out(&out);
    let error = v["error"].as_str().expect("a MessengerError");
    assert!(
        error.contains("PATH") && error.contains("PROTOWATCH_BIN"),
        "{error}"
    );

    // On PATH as `protowatch`: found, and run (here it finds no config: exit 2).
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_protowatch"),
        bin.path().join("protowatch"),
    )
    .unwrap();
    let out = run_python(
        dir.path(),
        None,
        &script,
        &[
            ("PROTOWATCH_BIN", None),
            ("PATH", Some(bin.path().to_str().unwrap())),
        ],
    );
    let v = json_out(&out);
    assert_eq!(v["returncode"], 2, "{v}");
    assert!(v["error"].as_str().unwrap().contains("config.json"), "{v}");
}

/// A stand-in binary that records its arguments and its standard input.
fn recorder(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("recorder");
    std::fs::write(
        &path,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\ncat > \"$0.stdin\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn the_command_line_is_a_list_and_the_text_goes_on_stdin_as_utf8() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recorder(dir.path());
    let args = || std::fs::read_to_string(dir.path().join("recorder.args")).unwrap();
    let input = || std::fs::read(dir.path().join("recorder.stdin")).unwrap();
    let text = "it's \"done\" — 'ok' $(rm -rf x) ; & | > ё";
    let script = format!(
        "from bot import messangers\nmessangers.send_message({})\n",
        serde_json::to_string(text).unwrap()
    );

    // PROTOWATCH_CONFIG is passed on; the text is only on stdin.
    let cfg = dir.path().join("my config.json");
    let out = run_python(
        dir.path(),
        Some(&cfg),
        &script,
        &[("PROTOWATCH_BIN", Some(rec.to_str().unwrap()))],
    );
    assert_silent_success(&out);
    assert_eq!(
        args(),
        format!("--config={}\nsend-message\n-\n", cfg.display())
    );
    assert_eq!(input(), text.as_bytes());

    // Without it, the binary's own default applies: no --config at all.
    let out = run_python(
        dir.path(),
        None,
        "from bot import messangers\n\
         messangers.send_message('x', event='e', severity='minor', tags=['a', 'b'],\n\
                                 attachments=['f.png'], timeout=20)\n",
        &[("PROTOWATCH_BIN", Some(rec.to_str().unwrap()))],
    );
    assert_silent_success(&out);
    assert_eq!(
        args(),
        "send-message\n--event=e\n--severity=minor\n--attach=f.png\n--tag=a\n--tag=b\n\
         --wait=13\n-\n"
    );
    assert_eq!(input(), b"x");
}

#[test]
fn a_binary_that_does_not_finish_is_stopped_at_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow");
    std::fs::write(
        &slow,
        "#!/bin/sh\necho 'still thinking' >&2\nexec sleep 60\n",
    )
    .unwrap();
    std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
    let start = Instant::now();
    let out = run_python(
        dir.path(),
        None,
        &format!("{CATCH}\nattempt(\"sample 3 done\")\n"),
        &[
            ("PROTOWATCH_BIN", Some(slow.to_str().unwrap())),
            ("PROTOWATCH_TIMEOUT", Some("1.5")),
        ],
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    let v = json_out(&out);
    let error = v["error"].as_str().expect("a MessengerError");
    assert!(
        error.contains("1.5 s") && error.contains("PROTOWATCH_TIMEOUT"),
        "{error}"
    );
    assert!(error.contains("still thinking"), "{error}");
    assert_eq!(v["returncode"], Value::Null);

    // A timeout that is not a positive number is an error, not a hang.
    let out = run_python(
        dir.path(),
        None,
        &format!("{CATCH}\nattempt(\"sample 3 done\")\n"),
        &[
            ("PROTOWATCH_BIN", Some(slow.to_str().unwrap())),
            ("PROTOWATCH_TIMEOUT", Some("0")),
        ],
    );
    let v = json_out(&out);
    assert!(
        v["error"].as_str().unwrap().contains("PROTOWATCH_TIMEOUT"),
        "{v}"
    );
}

#[test]
fn with_a_running_agent_the_message_goes_through_it_and_arrives_once() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), smtp.port, &tg);
    let agent = Agent::start(&cfg);

    let out = run_python(
        dir.path(),
        Some(&cfg),
        "from bot import messangers\nmessangers.send_message(\"sample 3 done\")\n",
        &[],
    );
    assert_silent_success(&out);
    // The agent answered before the script returned: both deliveries made.
    let mails = smtp.wait_for(1, Duration::from_secs(10));
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "[IN5] INFO: sample 3 done");
    assert_eq!(tg.messages().len(), 1);
    // It went the agent's way: it is an alert in the agent's store.
    let list = protowatch()
        .arg("--config")
        .arg(&cfg)
        .args(["alerts", "list", "--json"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let all: Vec<serde_json::Value> = serde_json::from_str(&list).unwrap();
    assert_eq!(all.len(), 1, "{list}");
    assert!(list.contains("sample 3 done"), "{list}");

    // And only once, also after the agent stopped.
    std::thread::sleep(Duration::from_millis(1500));
    agent.stop();
    assert_eq!(smtp.messages().len(), 1);
    assert_eq!(tg.messages().len(), 1);
}
