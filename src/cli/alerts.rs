//! `protowatch alerts list|dismiss|clear`: the alerts the agent keeps, one per dedup key,
//! and the operator's way to say "seen, dealt with".
//!
//! Dismissing an alert also ends its repeat counting in a running agent (within a
//! second): what was counted goes out as a summary, and the next occurrence is sent at
//! once, as news. Goes through the running agent's HTTP API when it answers (the state
//! folder may be the service's, not readable by the user), else to the state database.

use clap::Subcommand;

use super::client::{AgentClient, ClientError};
use super::{Cli, CliError};
use crate::alerts::{self, Alert};
use crate::store::{Store, now_ms};

#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List the active alerts, most recently seen first
    List {
        /// Dismissed and expired alerts too
        #[arg(long)]
        all: bool,
        /// JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Dismiss one alert
    Dismiss {
        /// The alert's id, as `alerts list` shows it
        id: i64,
    },
    /// Dismiss every active alert
    Clear,
}

pub fn run(cli: &Cli, cmd: &AlertsCommand) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let all = matches!(cmd, AlertsCommand::List { all: true, .. });
    if !all {
        let rt = super::runtime()?;
        if let Some(agent) = rt
            .block_on(AgentClient::find(&config))
            .map_err(|e| CliError::failed(e.to_string()))?
        {
            return rt.block_on(through_agent(&agent, cmd));
        }
    }
    let store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    let failed = |e: crate::store::StoreError| CliError::failed(e.to_string());
    let now = now_ms();
    match cmd {
        AlertsCommand::List { all, json } => {
            let list = alerts::list(&store, now, *all).map_err(failed)?;
            if *json {
                for a in &list {
                    println!("{}", a.to_ontakt());
                }
            } else {
                print!("{}", table(&list, now));
            }
            Ok(())
        }
        AlertsCommand::Dismiss { id } => {
            if alerts::dismiss(&store, *id, now).map_err(failed)? {
                println!("alert {id} dismissed");
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "no active alert {id} (see `protowatch alerts list`)"
                )))
            }
        }
        AlertsCommand::Clear => {
            let n = alerts::dismiss_all(&store, now).map_err(failed)?;
            println!("{n} alerts dismissed");
            Ok(())
        }
    }
}

fn table(list: &[Alert], now: i64) -> String {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| {
                t.with_timezone(&chrono::Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default()
    };
    let mut out = format!(
        "{:>6}  {:<8}  {:<8}  {:>7}  {:<19}  {:<19}  {}\n",
        "ID", "STATE", "SEVERITY", "SEEN", "FIRST", "LAST", "MESSAGE"
    );
    for a in list {
        let state = if a.dismissed {
            "dismissed"
        } else if a.is_active(now) {
            "active"
        } else {
            "expired"
        };
        let text = a.message.text();
        let first_line = text.lines().next().unwrap_or("");
        out.push_str(&format!(
            "{:>6}  {:<8}  {:<8}  {:>7}  {:<19}  {:<19}  {}\n",
            a.id,
            state,
            a.severity.as_str(),
            a.times_seen,
            time(a.first_seen_ms),
            time(a.last_seen_ms),
            first_line
        ));
    }
    if list.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

/// The same commands over the agent's API (`--all` needs the database: the API lists the
/// active alerts only).
async fn through_agent(agent: &AgentClient, cmd: &AlertsCommand) -> Result<(), CliError> {
    let failed = |e: ClientError| match e {
        ClientError::Refused {
            status: 404,
            message,
        } => CliError::failed(message),
        e => CliError::failed(e.to_string()),
    };
    match cmd {
        AlertsCommand::List { json, .. } => {
            let v = agent.get("/api/alerts").await.map_err(failed)?;
            let mut list: Vec<&serde_json::Value> = v
                .as_object()
                .map(|o| o.values().collect())
                .unwrap_or_default();
            let last = |a: &serde_json::Value| a["last_seen"].as_f64().unwrap_or(0.0);
            list.sort_by(|a, b| last(b).total_cmp(&last(a)));
            if *json {
                for a in list {
                    println!("{a}");
                }
            } else {
                let mut out = format!(
                    "{:>6}  {:<8}  {:>7}  {:<25}  {}\n",
                    "ID", "SEVERITY", "SEEN", "LAST", "MESSAGE"
                );
                for a in &list {
                    let text = a["message"].as_str().unwrap_or("");
                    out.push_str(&format!(
                        "{:>6}  {:<8}  {:>7}  {:<25}  {}\n",
                        a["id"],
                        a["level"].as_str().unwrap_or(""),
                        a["times_seen"],
                        a["last_seen"]
                            .as_f64()
                            .and_then(|s| chrono::DateTime::from_timestamp_millis(
                                (s * 1000.0) as i64
                            ))
                            .map(|t| t
                                .with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string())
                            .unwrap_or_default(),
                        text.lines().next().unwrap_or("")
                    ));
                }
                if list.is_empty() {
                    out.push_str("(none)\n");
                }
                print!("{out}");
            }
            Ok(())
        }
        AlertsCommand::Dismiss { id } => {
            agent
                .delete(&format!("/api/alerts/{id}"))
                .await
                .map_err(failed)?;
            println!("alert {id} dismissed");
            Ok(())
        }
        AlertsCommand::Clear => {
            agent
                .post("/api/alerts/clear", &serde_json::Value::Null)
                .await
                .map_err(failed)?;
            println!("alerts dismissed");
            Ok(())
        }
    }
}
