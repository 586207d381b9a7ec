//! Each rotation kind and restart trap, one named test each, through the real binary:
//! the test writes and rotates protocol files the way instruments and logrotate do, and
//! checks which lines came out at the fake Bot API — every line once, none twice.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{FakeTelegram, TOKEN, append, protowatch, wait_until};

struct Setup {
    dir: tempfile::TempDir,
    tg: FakeTelegram,
    config: PathBuf,
}

impl Setup {
    fn new(watch: serde_json::Value) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("p")).unwrap();
        let tg = FakeTelegram::start();
        let config = support::write_config(
            dir.path(),
            &json!({
                "instrument": "T",
                "telegram": {"bot-id": TOKEN, "channel-id": "1", "api-url": tg.url},
                "watch": [watch],
                // Each line its own message: these tests count lines, not alerts.
                "throttle": {"repeat_interval": 0, "per_minute": {"telegram": 10000}},
                "api": {"listen": "127.0.0.1:0"},
            }),
        );
        Setup { dir, tg, config }
    }

    fn default() -> Setup {
        Setup::new(json!({"path": "p/*.log", "poll_interval_ms": 100}))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join("p").join(name)
    }

    fn start(&self) -> Agent {
        let child = support::spawn(
            protowatch()
                .arg("--config")
                .arg(&self.config)
                .arg("run")
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        // Up (its API's address written, which comes after the store is open), then
        // time to take up the files that exist now: a slow start (Wine on a loaded
        // machine) must not turn files written after it into files present at it.
        let addr = self.config.with_file_name(".protowatch").join("api.addr");
        wait_until(Duration::from_secs(20), || addr.exists());
        std::thread::sleep(Duration::from_millis(700));
        Agent(child)
    }

    /// The text of each message that reached Telegram, by count.
    fn received(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for m in self.tg.messages() {
            let text = m.body["text"].as_str().unwrap_or_default();
            // The event text is the second line of the rendered message.
            let line = text.lines().nth(1).unwrap_or_default().to_string();
            *out.entry(line).or_insert(0) += 1;
        }
        out
    }

    /// Waits until each of `texts` arrived, then checks that exactly they arrived, once.
    fn expect(&self, texts: &[&str]) {
        wait_until(Duration::from_secs(15), || {
            let got = self.received();
            texts.iter().all(|t| got.contains_key(*t))
        });
        std::thread::sleep(Duration::from_millis(300));
        let want: BTreeMap<String, usize> = texts.iter().map(|t| (t.to_string(), 1)).collect();
        assert_eq!(self.received(), want);
    }
}

struct Agent(Child);

impl Agent {
    /// A clean stop (SIGTERM on Unix); elsewhere a kill, which the store survives too.
    fn stop(mut self) {
        #[cfg(unix)]
        {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(self.0.id().to_string())
                .status();
            let _ = self.0.wait();
        }
        // No signal to ask for a clean stop here: give the last delivery time to be
        // committed, or it is (rightly) sent again after the restart.
        #[cfg(not(unix))]
        std::thread::sleep(Duration::from_millis(1000));
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn err(text: &str) -> Vec<u8> {
    format!("ERROR {text}\n").into_bytes()
}

#[test]
fn rename_and_create() {
    let s = Setup::default();
    let _agent = s.start();
    let log = s.path("a.log");
    // The writer keeps its handle across the rename, as a program does until it reopens.
    let mut writer = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    use std::io::Write;
    writer.write_all(&err("before rotation")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&log, s.path("a.log.1")).unwrap();
    writer
        .write_all(&err("late line in the rotated file"))
        .unwrap();
    writer.write_all(b"ERROR unterminated last line").unwrap();
    drop(writer);
    append(&log, &err("first line of the new file"));
    s.expect(&[
        "before rotation",
        "late line in the rotated file",
        "unterminated last line",
        "first line of the new file",
    ]);
}

#[test]
fn copy_and_truncate() {
    let s = Setup::default();
    let _agent = s.start();
    let log = s.path("a.log");
    append(
        &log,
        &err("a long line written before the copy and the truncate"),
    );
    wait_until(Duration::from_secs(10), || !s.received().is_empty());
    std::fs::copy(&log, s.path("a.log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, &err("after truncate"));
    s.expect(&[
        "a long line written before the copy and the truncate",
        "after truncate",
    ]);
}

#[test]
fn truncate_and_rewrite_longer() {
    let s = Setup::default();
    let _agent = s.start();
    let log = s.path("a.log");
    append(&log, &err("short"));
    wait_until(Duration::from_secs(10), || !s.received().is_empty());
    // Emptied and rewritten past the old length between two looks: the first bytes changed.
    std::fs::write(
        &log,
        err("rewritten, and longer than the first content was"),
    )
    .unwrap();
    s.expect(&["short", "rewritten, and longer than the first content was"]);
}

#[test]
fn delete_and_recreate() {
    let s = Setup::default();
    let _agent = s.start();
    let log = s.path("a.log");
    append(&log, &err("in the first file"));
    append(&log, b"ERROR no newline before delete");
    wait_until(Duration::from_secs(10), || !s.received().is_empty());
    // Where files are not held open (Windows) what is deleted must have been read first.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(&log).unwrap();
    // The last line, without its newline, comes out when the deleted file is let go.
    // Waited for: Wine reuses a deleted file's index at once for the next file, so a
    // file made again before that looks like the same one, truncated (NTFS does not).
    wait_until(Duration::from_secs(10), || {
        s.received().contains_key("no newline before delete")
    });
    append(&log, &err("in the recreated file"));
    s.expect(&[
        "in the first file",
        "no newline before delete",
        "in the recreated file",
    ]);
}

#[test]
fn half_written_first_appearance() {
    let s = Setup::default();
    let _agent = s.start();
    let log = s.path("a.log");
    append(&log, b"ERROR complete\nERROR half");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(s.received().keys().collect::<Vec<_>>(), vec!["complete"]);
    append(&log, b" and done\n");
    s.expect(&["complete", "half and done"]);
}

#[test]
fn many_files_at_once() {
    let s = Setup::default();
    let _agent = s.start();
    let names: Vec<String> = (0..40).map(|i| format!("file {i:02} failed")).collect();
    for (i, n) in names.iter().enumerate() {
        append(&s.path(&format!("m{i:02}.log")), &err(n));
    }
    let want: Vec<&str> = names.iter().map(String::as_str).collect();
    s.expect(&want);
}

#[test]
fn start_end_skips_history_then_resumes_after_restart() {
    let s = Setup::default();
    let log = s.path("a.log");
    append(&log, &err("history before the very first start"));
    let agent = s.start();
    append(&log, &err("while running"));
    wait_until(Duration::from_secs(10), || {
        s.received().contains_key("while running")
    });
    agent.stop();
    append(&log, &err("written while the agent was down"));
    append(&s.path("b.log"), &err("a file that appeared while down"));
    let _agent = s.start();
    s.expect(&[
        "while running",
        "written while the agent was down",
        "a file that appeared while down",
    ]);
}

#[test]
fn replaced_while_down() {
    let s = Setup::default();
    let log = s.path("a.log");
    let agent = s.start();
    append(
        &log,
        &err("old file, line one, a little longer than the new one"),
    );
    wait_until(Duration::from_secs(10), || !s.received().is_empty());
    agent.stop();
    std::fs::remove_file(&log).unwrap();
    append(&log, &err("new file"));
    let _agent = s.start();
    s.expect(&[
        "old file, line one, a little longer than the new one",
        "new file",
    ]);
}

#[test]
fn rotation_while_down_with_the_rotated_name_still_watched() {
    let s = Setup::new(json!({"path": "p/*.log*", "poll_interval_ms": 100}));
    let log = s.path("a.log");
    let agent = s.start();
    append(&log, &err("before"));
    wait_until(Duration::from_secs(10), || !s.received().is_empty());
    agent.stop();
    append(&log, &err("appended while down, then rotated"));
    std::fs::rename(&log, s.path("a.log.1")).unwrap();
    append(&log, &err("new file after rotation"));
    let _agent = s.start();
    s.expect(&[
        "before",
        "appended while down, then rotated",
        "new file after rotation",
    ]);
}

#[test]
fn windows_1251_and_mixed_encoding_files() {
    let s = Setup::new(json!({"path": "p/*.log", "poll_interval_ms": 100, "encoding": "auto"}));
    let _agent = s.start();
    let cp = |t: &str| encoding_rs::WINDOWS_1251.encode(t).0.into_owned();
    append(&s.path("cp.log"), &cp("ОШИБКА датчик не отвечает\r\n"));
    append(&s.path("mixed.log"), "ERROR по-русски в UTF-8\n".as_bytes());
    append(
        &s.path("mixed.log"),
        &cp("ERROR а эта строка в windows-1251\n"),
    );
    s.expect(&[
        "датчик не отвечает",
        "по-русски в UTF-8",
        "а эта строка в windows-1251",
    ]);
}

#[test]
fn a_50_mb_single_line_is_cut_not_held() {
    let s = Setup::new(json!({"path": "p/*.log", "poll_interval_ms": 100}));
    let _agent = s.start();
    let log = s.path("big.log");
    let mut line = b"ERROR huge ".to_vec();
    line.resize(50 << 20, b'x');
    line.push(b'\n');
    append(&log, &line);
    append(&log, &err("after the huge line"));
    wait_until(Duration::from_secs(30), || s.received().len() >= 2);
    let got = s.received();
    assert_eq!(got.get("after the huge line"), Some(&1));
    let huge: Vec<&String> = got.keys().filter(|k| k.starts_with("huge xxx")).collect();
    assert_eq!(
        huge.len(),
        1,
        "{:?}",
        got.keys().map(|k| k.len()).collect::<Vec<_>>()
    );
    // The event text is capped; the rest of the line was never held in memory.
    assert!(
        huge[0].contains("more characters]"),
        "{}",
        &huge[0][huge[0].len() - 60..]
    );
    assert!(s.tg.messages().len() == 2, "one message each");
}
