//! `protowatch send-message TEXT|-`: what measurement scripts call.
//!
//! While an agent runs with the same state folder, the message is handed to it (the
//! store's inbox) and goes the way of every event — alerts, throttling, pacing, the
//! durable outbox — and this command waits up to `--wait` seconds for the deliveries'
//! outcome: 0 delivered (or queued, when a service is down: the agent keeps trying, so a
//! script must not send again), 1 refused. Without a running agent it sends directly
//! and waits for each answer: 0 all accepted, 1 any refused or unreachable. stderr says
//! which destination failed and why; 2 is bad usage or config.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use super::{Cli, CliError, runtime};
use crate::config::Config;
use crate::event::{Attachment, Event, Message, Severity, names};
use crate::messengers::{Messengers, Notification};
use crate::routing::Router;
use crate::store::{AgentLock, Store};

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
    /// Attach a file (at most 5 MB); may be given several times
    #[arg(long = "attach", value_name = "FILE")]
    pub attachments: Vec<PathBuf>,
    /// A tag, shown as a hashtag; may be given several times
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// With a running agent: how long to wait for the deliveries, in seconds
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub wait: u64,
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
    let mut message = Message::plain(text);
    message.tags = args.tags.clone();
    for path in &args.attachments {
        message
            .attachments
            .push(Attachment::from_path(path).map_err(|e| CliError::usage(e.to_string()))?);
    }
    let config = cli.load_config()?;
    if !config.has_service() {
        return Err(CliError::usage(format!(
            "{}: no service configured: add a \"mail\" or a \"telegram\" section",
            config.file.display()
        )));
    }
    let router = Router::new(&config);
    let targets = router.route(&args.event).to_vec();
    if targets.is_empty() {
        return Err(CliError::failed(format!(
            "no destination for event {:?}: the config's routes do not list it",
            args.event
        )));
    }
    let event = Event::message(&args.event, severity, message);
    if AgentLock::is_held(&config.state_dir) {
        return through_agent(&config, &event, Duration::from_secs(args.wait));
    }
    let rt = runtime()?;
    // The mail transport's connection pool starts a task on the runtime it is built in.
    let _runtime = rt.enter();
    let messengers =
        Messengers::from_config(&config).map_err(|e| CliError::usage(e.to_string()))?;
    let n = Notification::single(&config.instrument, &event);
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

/// Hands the message to the running agent and reports what became of it.
fn through_agent(config: &Config, event: &Event, wait: Duration) -> Result<(), CliError> {
    let store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    let id = store
        .submit(event)
        .map_err(|e| CliError::failed(e.to_string()))?;
    let deadline = Instant::now() + wait;
    loop {
        let status = store
            .request_status(id)
            .map_err(|e| CliError::failed(e.to_string()))?;
        let answered = status.accepted && status.receipts.len() as u32 >= status.sent_to;
        if answered || Instant::now() >= deadline {
            return report(&status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn report(status: &crate::store::RequestStatus) -> Result<(), CliError> {
    if !status.accepted {
        eprintln!(
            "protowatch: handed to the running agent, which has not taken it yet; it will be sent"
        );
        return Ok(());
    }
    if status.counted > 0 {
        eprintln!(
            "protowatch: the same message went out shortly before: counted as a repeat for {} destination(s)",
            status.counted
        );
    }
    for (dest, last_error) in &status.queued {
        match last_error {
            Some(e) => eprintln!("protowatch: {dest}: queued, the agent keeps trying ({e})"),
            None => eprintln!("protowatch: {dest}: queued"),
        }
    }
    let refused: Vec<String> = status
        .receipts
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(d, _, e)| format!("{d}: {}", e.as_deref().unwrap_or("refused")))
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CliError::failed(format!(
            "{} of {} destinations refused the message:\n{}",
            refused.len(),
            status.receipts.len() + status.queued.len(),
            refused.join("\n")
        )))
    }
}
