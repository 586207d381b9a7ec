//! A real browser for the console's tests: Debian's headless Chromium driven through
//! its chromedriver (WebDriver) with fantoccini, each test with a fresh profile.
//!
//! Without Chromium a test says why and passes, so that a developer without it can run
//! the rest; `PROTOWATCH_REQUIRE_BROWSER=1` (set by CI) makes that a failure instead.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

const CHROMIUM: &[&str] = &["/usr/bin/chromium", "/usr/bin/chromium-browser"];
const DRIVER: &[&str] = &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn first_existing(paths: &[&str]) -> Option<PathBuf> {
    paths.iter().map(PathBuf::from).find(|p| p.exists())
}

/// The colour scheme the browser prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Light,
    Dark,
}

impl Browser {
    /// A fresh headless Chromium, or `None` (after saying why) if there is none here.
    pub async fn start(scheme: Scheme) -> Option<Browser> {
        Browser::start_at(scheme, 1400, 1000).await
    }

    /// One whose page is `width` × `height` CSS pixels. Below 600 px wide it is a phone
    /// as Chromium emulates one (its viewport, touch, twice the pixels): a desktop
    /// window is not made that narrow.
    pub async fn start_at(scheme: Scheme, width: u32, height: u32) -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (first_existing(CHROMIUM), first_existing(DRIVER))
        else {
            let why =
                "no chromium and chromedriver here (apt-get install chromium chromium-driver)";
            if std::env::var_os("PROTOWATCH_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
                panic!("{why}, and PROTOWATCH_REQUIRE_BROWSER=1");
            }
            eprintln!("skipped: {why}");
            return None;
        };
        // A session refused at its start (the driver's port taken by another program
        // between `free_port` and its bind, or a reset while a loaded machine starts it)
        // is tried again with a new driver on a new port and a new profile; the third failure fails.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let profile = tempfile::tempdir().expect("a profile folder");
            let mut args = vec![
                "--headless".to_string(),
                "--no-sandbox".into(),
                "--disable-gpu".into(),
                "--disable-quic".into(),
                "--no-first-run".into(),
                "--disable-background-networking".into(),
                "--disable-component-update".into(),
                "--disable-sync".into(),
                "--disable-dev-shm-usage".into(),
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", profile.path().display()),
            ];
            if scheme == Scheme::Dark {
                args.push("--force-dark-mode".into());
                args.push("--blink-settings=preferredColorScheme=0".into());
            } else {
                args.push("--blink-settings=preferredColorScheme=1".into());
            }
            let mut caps = json!({
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args},
            });
            if width < 600 {
                caps["goog:chromeOptions"]["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2.0},
                });
            }
            let Value::Object(caps) = caps else {
                unreachable!()
            };
            let port = free_port();
            // A process group of its own, with the browser it starts: a test that fails
            // half-way ends them all (see `Drop`), leaving no Chromium behind.
            let mut child = std::os::unix::process::CommandExt::process_group(
                Command::new(&driver)
                    .arg(format!("--port={port}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                0,
            )
            .spawn()
            .expect("start chromedriver");
            let end = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < end, "chromedriver did not listen");
                std::thread::sleep(Duration::from_millis(50));
            }
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver: child,
                        _profile: profile,
                    });
                }
                Err(e) => {
                    end_group(&mut child);
                    assert!(attempt < 3, "a WebDriver session with Chromium: {e}");
                    eprintln!("no WebDriver session at attempt {attempt}: {e}; trying again");
                }
            }
        }
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Waits until `script` returns `true`; how long it took, or `None` after `timeout`.
    pub async fn wait_for(&self, script: &str, timeout: Duration) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if self.client.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
                return Some(start.elapsed());
            }
            if start.elapsed() > timeout {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A PNG of the window, kept under `target/console-screenshots/` as a test artifact.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("the screenshots folder");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        end_group(&mut self.driver);
    }
}

/// Ends chromedriver and every browser process it started: its process group.
fn end_group(driver: &mut Child) {
    let group = format!("-{}", driver.id());
    let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
    let _ = driver.wait();
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
