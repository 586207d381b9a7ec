//! `protowatch send-message TEXT|-`: what measurement scripts call.
//!
//! Sends directly to every destination of the event and waits for each answer, so a
//! script learns from the exit code whether its message arrived: 0 all accepted, 1 any
//! refused or unreachable (stderr says which and why), 2 bad usage or config.

use std::io::Read;

use clap::Args as ClapArgs;

use super::{Cli, CliError, runtime};
use crate::event::{Event, Message, Severity, names};
use crate::messengers::{Messengers, Notification};
use crate::routing::Router;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The text to send, or `-` to read it from standard input
    pub text: String,
    /// The event name, for routing
    #[arg(long, default_value = names::MESSAGE)]
    pub event: String,
    /// info, warning, minor, major (also INFO, REPORT, WARNING, PROBLEM)
    #[arg(long, default_value = "info")]
    pub severity: String,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let severity: Severity = args
        .severity
        .parse()
        .map_err(|e: crate::event::UnknownSeverity| CliError::usage(format!("--severity: {e}")))?;
    if args.event.trim().is_empty() {
        return Err(CliError::usage("--event: the event name is empty"));
    }
    let text = if args.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::usage(format!("cannot read the message from stdin: {e}")))?;
        s.trim_end_matches(['\r', '\n']).to_string()
    } else {
        args.text.clone()
    };
    if text.trim().is_empty() {
        return Err(CliError::usage("the message is empty"));
    }
    let config = cli.load_config()?;
    if !config.has_service() {
        return Err(CliError::usage(format!(
            "{}: no service configured: add a \"mail\" or a \"telegram\" section",
            config.file.display()
        )));
    }
    let messengers =
        Messengers::from_config(&config).map_err(|e| CliError::usage(e.to_string()))?;
    let router = Router::new(&config);
    let targets = router.route(&args.event).to_vec();
    if targets.is_empty() {
        return Err(CliError::failed(format!(
            "no destination for event {:?}: the config's routes do not list it",
            args.event
        )));
    }
    let event = Event::message(&args.event, severity, Message::plain(text));
    let n = Notification {
        instrument: &config.instrument,
        items: vec![crate::messengers::render::Item {
            event: &event,
            repeat: None,
        }],
        more: Vec::new(),
    };
    let rt = runtime()?;
    let results = rt.block_on(async {
        let sends = targets.iter().map(|t| messengers.send(t, &n));
        futures_util::future::join_all(sends).await
    });
    let failures: Vec<String> = targets
        .iter()
        .zip(results)
        .filter_map(|(t, r)| r.err().map(|e| format!("{t}: {}", e.message)))
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} of {} destinations failed:\n{}",
            failures.len(),
            targets.len(),
            failures.join("\n")
        )))
    }
}
