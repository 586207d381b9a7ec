//! The Windows build, end to end, from the Linux side: `protowatch.exe run` under Wine
//! tails a protocol file and delivers to the loopback SMTP server (aiosmtpd) and the
//! fake Bot API running on Linux.
//!
//! It needs the cross-built `.exe`: the tests are ignored by default (a test that did not
//! run must not count as passed), and `build-support/windows/test.sh` — run by `.ci/run` —
//! builds the `.exe`, names it in `PROTOWATCH_WINDOWS_EXE` and runs them with
//! `--include-ignored`. Run without that variable, they fail and say why.

#![cfg(unix)]

mod support;

use std::fs::File;
use std::io::{Read, Seek};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{FakeTelegram, SmtpOptions, SmtpServer, TOKEN, append, wait_until};

/// The cross-built `.exe` named by `PROTOWATCH_WINDOWS_EXE`.
fn windows_exe() -> std::ffi::OsString {
    std::env::var_os("PROTOWATCH_WINDOWS_EXE").expect(
        "PROTOWATCH_WINDOWS_EXE names no protowatch.exe: run `bash build-support/windows/test.sh`",
    )
}

#[test]
#[ignore = "needs the cross-built protowatch.exe: run by build-support/windows/test.sh"]
fn windows_exe_tails_and_delivers_to_both_services() {
    let exe = windows_exe();
    let smtp = SmtpServer::start(SmtpOptions::default());
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    let proto = dir.path().join("protocol");
    std::fs::create_dir(&proto).unwrap();
    let config = support::write_config(
        dir.path(),
        &json!({
            "instrument": "WIN",
            "mail": {"server": "127.0.0.1", "port": smtp.port, "tls": "none",
                     "recipients": ["ops@example.org"]},
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "protocol/*.log", "poll_interval_ms": 200, "encoding": "auto"}],
            "api": {"listen": "127.0.0.1:0"},
        }),
    );
    // Wine turns the Unix path of the config into Z:\…; the agent resolves the rest.
    let (mut child, mut err) = spawn_wine(&[
        exe.as_os_str(),
        "--config".as_ref(),
        config.as_os_str(),
        "run".as_ref(),
    ]);
    assert!(
        wait_until(Duration::from_secs(60), || dir
            .path()
            .join(".protowatch/protowatch.db")
            .exists()),
        "the Windows agent did not start"
    );
    std::thread::sleep(Duration::from_millis(1000));

    let log = proto.join("run.log");
    append(
        &log,
        b"2026-11-21 14:03:13 ERROR [detector] HV trip on channel 3\r\n",
    );
    let russian = encoding_rs::WINDOWS_1251
        .encode("2026-11-21 14:03:16 ОШИБКА [детектор] нет сигнала\r\n")
        .0;
    append(&log, &russian);
    wait_until(Duration::from_secs(60), || smtp.messages().len() >= 2);
    // A rename rotation, as the instrument software does at midnight.
    std::fs::rename(&log, proto.join("run.log.1")).unwrap();
    append(&log, b"ERROR after rotation\r\n");

    let mails = smtp.wait_for(3, Duration::from_secs(60));
    let msgs = tg.wait_for(3, Duration::from_secs(60));
    let _ = child.kill();
    let _ = child.wait();
    let stderr = read_all(&mut err);
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(
        subjects,
        vec![
            "[WIN] MAJOR: HV trip on channel 3",
            "[WIN] MAJOR: нет сигнала",
            "[WIN] MAJOR: after rotation",
        ],
        "{stderr}"
    );
    assert_eq!(msgs.len(), 3);
    assert!(
        msgs[1].body["text"]
            .as_str()
            .unwrap()
            .contains("нет сигнала")
    );
    assert!(!stderr.contains("TEST-token_abc"));
}

/// Starts `wine` with `args`, its output going to the returned file.
///
/// A file, not a pipe: the first `wine` call of a session starts Wine's own daemons
/// (services.exe, a service), which inherit its standard handles and outlive it, so
/// reading a pipe to its end would wait for them.
fn spawn_wine(args: &[&std::ffi::OsStr]) -> (Child, File) {
    let out = tempfile::tempfile().expect("temporary file");
    let child = Command::new("wine")
        .args(args)
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("temporary file"))
        .stderr(out.try_clone().expect("temporary file"))
        .spawn()
        .expect("wine (apt-get install wine wine64)");
    (child, out)
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut text);
    text
}

/// Runs `wine` with `args`, returning its exit code and output; `None` if it did not end
/// within two minutes (it is killed then).
fn wine(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let (mut child, mut out) = spawn_wine(args);
    let deadline = Instant::now() + Duration::from_secs(120);
    let code = loop {
        match child.try_wait().expect("wait for wine") {
            Some(status) => break status.code(),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut text = read_all(&mut out);
    if code.is_none() {
        text.push_str("\n(wine did not end within 2 minutes and was killed)");
    }
    (code, text)
}

#[test]
#[ignore = "needs the cross-built protowatch.exe: run by build-support/windows/test.sh"]
fn windows_service_installs_runs_and_stops_gracefully() {
    let exe = windows_exe();
    let tg = FakeTelegram::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    let config = support::write_config(
        dir.path(),
        &json!({
            "instrument": "SVC",
            "telegram": {"bot-id": TOKEN, "channel-id": "-100", "api-url": tg.url},
            "watch": [{"path": "p/*.log", "poll_interval_ms": 200}],
        }),
    );
    // Wine ends its services when its last process ends: keep its server up meanwhile.
    let _ = Command::new("wineserver")
        .args(["-p", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let win_config = format!("Z:{}", config.display()).replace('/', "\\");
    let s = |t: &str| std::ffi::OsString::from(t);
    // Left over from an interrupted run? Then it goes first.
    let _ = wine(&[exe.as_os_str(), &s("service"), &s("uninstall")]);
    let (code, out) = wine(&[
        exe.as_os_str(),
        &s("--config"),
        &s(&win_config),
        &s("service"),
        &s("install"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    let uninstall = || wine(&[exe.as_os_str(), &s("service"), &s("uninstall")]);
    let state = dir.path().join(".protowatch");
    // Wine's `sc start` gives up when a service is slow to report itself running (a debug
    // build on a loaded machine): what counts is that the service runs, so ask twice.
    // Running means answering: on a loaded machine Wine's service manager may end a
    // process it gave up on, after it made its database.
    let answering = || {
        use std::io::Write;
        let Ok(mut c) = std::net::TcpStream::connect("127.0.0.1:8767") else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let mut answer = String::new();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8767\r\nConnection: close\r\n\r\n")
            .is_ok()
            && c.read_to_string(&mut answer).is_ok()
            && answer.starts_with("HTTP/1.1 200")
    };
    let mut started = String::new();
    for _ in 0..2 {
        let (_, out) = wine(&[&s("sc"), &s("start"), &s("protowatch")]);
        started.push_str(&out);
        if wait_until(Duration::from_secs(30), || {
            state.join("protowatch.db").exists() && answering()
        }) {
            break;
        }
    }
    if !answering() {
        let _ = uninstall();
        panic!("the service did not start: {started}");
    }
    std::thread::sleep(Duration::from_millis(800));
    append(
        &dir.path().join("p/a.log"),
        b"ERROR sent by the service\r\n",
    );
    // Wine's service manager may still end a process whose start it gave up on after that
    // process answered; started again, the service reads the file from its checkpoint and
    // delivers the line once all the same.
    let mut msgs = tg.wait_for(1, Duration::from_secs(20));
    for _ in 0..2 {
        if !msgs.is_empty() || answering() {
            break;
        }
        let (_, out) = wine(&[&s("sc"), &s("start"), &s("protowatch")]);
        started.push_str(&out);
        msgs = tg.wait_for(1, Duration::from_secs(30));
    }
    if msgs.is_empty() {
        msgs = tg.wait_for(1, Duration::from_secs(10));
    }
    let (code, out) = uninstall();
    let log = std::fs::read_to_string(state.join("protowatch.log")).unwrap_or_default();
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(msgs.len(), 1, "{log}\n{started}");
    assert!(
        msgs[0].body["text"]
            .as_str()
            .unwrap()
            .contains("sent by the service")
    );
    // The stop request was a graceful stop, logged to the file in the state folder.
    assert!(log.contains("service stop requested"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(!log.contains("TEST-token_abc"));
}
