//! `protowatch send-message TEXT|-`: what measurement scripts call.
//!
//! While the agent of this config runs, the message goes to its HTTP API (`/api/notify`)
//! and the way of every event — alerts, throttling, pacing, the durable outbox — and the
//! command returns once it is durably queued: exit 0. With `--wait N` it also waits up to
//! N seconds for the deliveries' outcome and exits 1 if one was refused (a service that
//! is down keeps it queued: the agent keeps trying, so a script must not send again).
//! When no agent answers, or with `--direct`, it sends itself and waits for each answer:
//! 0 all accepted, 1 any refused or unreachable. stderr says which destination failed
//! and why; 2 is bad usage or config.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args as ClapArgs;

use super::{Cli, CliError, runtime};
use serde_json::{Value, json};

use super::client::{AgentClient, ClientError};
use crate::event::{Attachment, Event, Message, Severity, names};
use crate::inbox::RequestStatus;
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
    /// Attach a file (at most 5 MB); may be given several times
    #[arg(long = "attach", value_name = "FILE")]
    pub attachments: Vec<PathBuf>,
    /// A tag, shown as a hashtag; may be given several times
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// With a running agent: also wait up to this many seconds for the deliveries'
    /// outcome (0: return once the message is durably queued)
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    pub wait: u64,
    /// Send directly, not through the running agent
    #[arg(long)]
    pub direct: bool,
    /// Say nothing on success (errors are still reported)
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let severity: Severity = args
        .severity
        .parse()
        .map_err(|e: crate::event::UnknownSeverity| CliError::usage(format!("--severity: {e}")))?;
    crate::event::check_name(&args.event).map_err(|e| CliError::usage(format!("--event: {e}")))?;
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
    let config = cli.load_config_to_use_the_agent()?;
    if !config.has_service() {
        return Err(CliError::usage(format!(
            "{}: no service configured: add a {} section",
            config.file.display(),
            crate::messengers::section_names()
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
    let rt = runtime()?;
    if !args.direct {
        // Sending directly is for when no agent runs, never a way around one that
        // refused this user.
        match rt
            .block_on(AgentClient::find(&config))
            .map_err(|e| CliError::failed(e.to_string()))?
        {
            Some(agent) => {
                let to: Vec<String> = targets.iter().map(ToString::to_string).collect();
                return rt.block_on(through_agent(
                    &agent,
                    &event,
                    Duration::from_secs(args.wait),
                    &to,
                    args.quiet,
                ));
            }
            None => eprintln!(
                "protowatch: no agent answers for {}: sending directly",
                config.file.display()
            ),
        }
    }
    let unreadable = config.unreadable_secrets();
    if !unreadable.is_empty() {
        let files: Vec<String> = unreadable
            .iter()
            .map(|(key, file)| format!("{} ({key})", file.display()))
            .collect();
        return Err(CliError::failed(format!(
            "cannot send directly: only the agent's user may read {}; start the agent and send through it",
            files.join(", ")
        )));
    }
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

/// Hands the message to the running agent — files as their bytes, read here with this
/// user's rights (the agent opens no file a caller names) — and, with a wait, reports
/// what became of it.
async fn through_agent(
    agent: &AgentClient,
    event: &Event,
    wait: Duration,
    to: &[String],
    quiet: bool,
) -> Result<(), CliError> {
    use base64::Engine;
    let attachments: Vec<Value> = event
        .message
        .attachments
        .iter()
        .map(|a| {
            json!({"filename": a.filename,
                   "data_base64": base64::engine::general_purpose::STANDARD.encode(&a.data)})
        })
        .collect();
    let body = json!({
        "event": event.name,
        "severity": event.severity.as_str(),
        "message": {"text": event.message.spans, "tags": event.message.tags, "attachments": attachments},
    });
    let failed = |e: ClientError| match e {
        ClientError::Refused {
            status: 400,
            message,
        } => CliError::usage(message),
        e => CliError::failed(e.to_string()),
    };
    let id = agent.post("/api/notify", &body).await.map_err(failed)?["id"]
        .as_i64()
        .ok_or_else(|| CliError::failed("the agent's answer has no id"))?;
    if !quiet {
        eprintln!(
            "protowatch: queued as #{id} for {} (the agent delivers it; see `protowatch outbox list`)",
            to.join(", ")
        );
    }
    if wait.is_zero() {
        return Ok(());
    }
    let deadline = Instant::now() + wait;
    loop {
        let v = agent
            .get(&format!("/api/notify/{id}"))
            .await
            .map_err(failed)?;
        let status = RequestStatus {
            accepted: v["accepted"].as_bool().unwrap_or(false),
            sent_to: v["sent_to"].as_u64().unwrap_or(0) as u32,
            counted: v["counted"].as_u64().unwrap_or(0) as u32,
            receipts: v["receipts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["destination"].as_str().unwrap_or("").to_string(),
                        r["delivered"].as_bool().unwrap_or(false),
                        r["error"].as_str().map(String::from),
                    )
                })
                .collect(),
            queued: v["queued"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["destination"].as_str().unwrap_or("").to_string(),
                        r["last_error"].as_str().map(String::from),
                    )
                })
                .collect(),
        };
        let answered = status.accepted && status.receipts.len() as u32 >= status.sent_to;
        if answered || Instant::now() >= deadline {
            return report(&status, quiet);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Says what became of every destination — delivered, still queued (with why), refused —
/// so a script's log shows the whole picture, not only what is left to do.
fn report(status: &RequestStatus, quiet: bool) -> Result<(), CliError> {
    if !status.accepted {
        eprintln!(
            "protowatch: handed to the running agent, which has not taken it yet; it will be sent"
        );
        return Ok(());
    }
    if status.counted > 0 && !quiet {
        eprintln!(
            "protowatch: the same message went out shortly before: counted as a repeat for {} destination(s)",
            status.counted
        );
    }
    if !quiet {
        for (dest, _, _) in status.receipts.iter().filter(|(_, ok, _)| *ok) {
            eprintln!("protowatch: {dest}: delivered");
        }
    }
    for (dest, last_error) in &status.queued {
        match last_error {
            Some(e) => {
                eprintln!("protowatch: {dest}: queued, the agent keeps trying (last error: {e})")
            }
            None if !quiet => eprintln!("protowatch: {dest}: queued, not answered yet"),
            None => {}
        }
    }
    let refused: Vec<String> = status
        .receipts
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(d, _, e)| {
            format!(
                "{d}: refused: {}",
                e.as_deref().unwrap_or("no reason given")
            )
        })
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
