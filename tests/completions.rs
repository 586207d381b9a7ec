//! `protowatch completions SHELL`: each shell's script names the subcommands, and bash
//! can parse its own.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::protowatch;

const SUBCOMMANDS: &[&str] = &[
    "run",
    "send-message",
    "check-config",
    "outbox",
    "alerts",
    "silences",
    "routes",
    "replay",
    "schema",
    "completions",
];

fn completions(shell: &str) -> String {
    let out = protowatch()
        .args(["completions", shell])
        .output()
        .expect("run protowatch completions");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("a script is text")
}

#[test]
fn every_shell_gets_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = completions(shell);
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "{shell}: {sub} missing from:\n{script}"
            );
        }
        // An option of a subcommand, not only the names.
        assert!(script.contains("encoding"), "{shell}: replay --encoding");
    }
}

#[test]
fn the_bash_script_parses() {
    let script = completions("bash");
    let mut bash = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash is installed");
    bash.stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = bash.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(script.contains("complete -F"), "registers itself with bash");
}

#[test]
fn an_unknown_shell_is_bad_usage() {
    let out = protowatch().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tcsh"));
}
