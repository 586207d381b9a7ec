//! `protowatch test-notify [--service S] [--scope X]`: one clearly marked test message to
//! every configured destination (each scope of each service, routed or not), or to the
//! ones selected, and per destination whether its server took it and why not.
//!
//! It sends directly, not through a running agent's outbox, on purpose: the question is
//! "does this path work now, with this file?". The outbox would queue the message behind
//! whatever waits, pace it into a digest, and keep retrying a server that is down for a
//! day without saying so — right for alarms, useless for a test; and a running agent may
//! still hold the config from before the edit being tested. Directly, each destination
//! answers within its `timeout_s`, with the server's own reason when it refuses.
//! (`send-message --wait` is the test of the agent's path.)

use clap::Args as ClapArgs;

use super::{Cli, CliError, runtime};
use crate::config::{Config, Destination, Service};
use crate::event::{Event, Message, Severity};
use crate::messengers::{Messengers, Notification};

/// The event name of a test message: shown in the mail subject, never routed.
const EVENT: &str = "test";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Only this service (mail, telegram, …: a section of the config)
    #[arg(long, value_name = "SERVICE")]
    pub service: Option<String>,
    /// Only this scope (of --service, or of every service that has one of that name)
    #[arg(long, value_name = "SCOPE")]
    pub scope: Option<String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let targets = select(&config, args)?;
    let host = crate::config::host_name();
    let now = chrono::Local::now()
        .format("%Y-%m-%d %H:%M:%S %:z")
        .to_string();
    let events: Vec<Event> = targets
        .iter()
        .map(|to| {
            let text = format!(
                "protowatch test message from {} (host {host}) at {now}, to {to}. \
                 Nothing is wrong: this only checks that messages arrive here.",
                config.instrument
            );
            Event::message(EVENT, Severity::Info, Message::plain(text))
        })
        .collect();

    let rt = runtime()?;
    // The mail transport's connection pool starts a task on the runtime it is built in.
    let _runtime = rt.enter();
    let messengers =
        Messengers::from_config(&config).map_err(|e| CliError::usage(e.to_string()))?;
    let notifications: Vec<Notification<'_>> = events
        .iter()
        .map(|e| Notification::single(&config.instrument, e))
        .collect();
    let results = rt.block_on(futures_util::future::join_all(
        targets
            .iter()
            .zip(&notifications)
            .map(|(to, n)| messengers.send(to, n)),
    ));

    let width = targets
        .iter()
        .map(|t| t.to_string().len())
        .max()
        .unwrap_or(0);
    let mut failed = 0;
    for (to, result) in targets.iter().zip(results) {
        let name = to.to_string();
        match result {
            Ok(()) => outln!("{name:<width$}  delivered  ({})", config.reaches(to)),
            Err(e) => {
                failed += 1;
                outln!("{name:<width$}  FAILED: {}", e.message);
            }
        }
    }
    if failed > 0 {
        return Err(CliError::failed(format!(
            "{failed} of {} destinations failed",
            targets.len()
        )));
    }
    eprintln!(
        "protowatch: the test message went to {} destination(s); check that it arrived",
        targets.len()
    );
    Ok(())
}

/// Every configured `service:scope`, narrowed to what the arguments name; a name that is
/// not configured is bad usage, answered with what there is.
fn select(config: &Config, args: &Args) -> Result<Vec<Destination>, CliError> {
    let all: Vec<Destination> = config.destinations();
    let listed = || {
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let service = match args.service.as_deref() {
        None => None,
        Some(name) => {
            let service = Service::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .ok_or_else(|| {
                    CliError::usage(format!(
                        "--service: unknown service {name:?}; there are: {}",
                        Service::ALL.map(|s| s.as_str()).join(", ")
                    ))
                })?;
            if config.scopes(service).is_none() {
                return Err(CliError::usage(format!(
                    "--service: {service} is not configured in {}; configured destinations: {}",
                    config.file.display(),
                    listed()
                )));
            }
            Some(service)
        }
    };
    let chosen: Vec<Destination> = all
        .iter()
        .filter(|d| service.is_none_or(|s| d.service == s))
        .filter(|d| args.scope.as_deref().is_none_or(|s| d.scope == s))
        .cloned()
        .collect();
    if chosen.is_empty() {
        let what = match (&args.scope, service) {
            (Some(scope), Some(service)) => format!("--scope: {service} has no scope {scope:?}"),
            (Some(scope), None) => format!("--scope: no service has a scope {scope:?}"),
            (None, Some(service)) => format!("{service} has no scope"),
            (None, None) => "no destination is configured".to_string(),
        };
        return Err(CliError::usage(format!(
            "{what}; configured destinations: {}",
            listed()
        )));
    }
    Ok(chosen)
}
