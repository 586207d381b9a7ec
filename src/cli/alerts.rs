//! `protowatch alerts list|dismiss|clear`: the alerts the agent keeps, one per dedup key,
//! and the operator's way to say "seen, dealt with".
//!
//! Dismissing an alert also ends its repeat counting in a running agent (within a
//! second): what was counted goes out as a summary, and the next occurrence is sent at
//! once, as news. Goes through the running agent's HTTP API when it answers (the state
//! folder may be the service's, not readable by the user), else to the state database.

use clap::Subcommand;

use super::client::{AgentClient, ClientError};
use super::table::{Align, Table};
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
        /// One JSON document (a list of OnTakt's alert objects) instead of a table
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
    let config = cli.load_config_to_use_the_agent()?;
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
            let rows: Vec<(serde_json::Value, &str)> = list
                .iter()
                .map(|a| (a.to_ontakt(), state(a, now)))
                .collect();
            show(&rows, *json)
        }
        AlertsCommand::Dismiss { id } => {
            if alerts::dismiss(&store, *id, now, "cli").map_err(failed)? {
                outln!("alert {id} dismissed");
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "no active alert {id} (see `protowatch alerts list`)"
                )))
            }
        }
        AlertsCommand::Clear => {
            let n = alerts::dismiss_all(&store, now, "cli").map_err(failed)?;
            outln!("{n} alerts dismissed");
            Ok(())
        }
    }
}

fn state(a: &Alert, now: i64) -> &'static str {
    if a.dismissed {
        "dismissed"
    } else if a.is_active(now) {
        "active"
    } else {
        "expired"
    }
}

/// The one way a list of alerts is shown, whether it came from the database or from the
/// agent's API: OnTakt's alert objects, each with its state.
fn show(rows: &[(serde_json::Value, &str)], json: bool) -> Result<(), CliError> {
    if json {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(a, st)| {
                let mut a = a.clone();
                a["state"] = serde_json::json!(st);
                a
            })
            .collect();
        return super::print(&serde_json::to_string_pretty(&list).unwrap_or_default());
    }
    let time = |v: &serde_json::Value| {
        v.as_f64()
            .map(|s| super::table::local_time((s * 1000.0).round() as i64))
            .unwrap_or_default()
    };
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("STATE", Align::Left),
        ("SEVERITY", Align::Left),
        ("SEEN", Align::Right),
        ("FIRST", Align::Left),
        ("LAST", Align::Left),
        ("MESSAGE", Align::Left),
    ]);
    for (a, st) in rows {
        let text = a["message"].as_str().unwrap_or("");
        t.push(vec![
            a["id"].to_string(),
            st.to_string(),
            a["level"].as_str().unwrap_or("").to_string(),
            a["times_seen"].to_string(),
            time(&a["timestamp"]),
            time(&a["last_seen"]),
            text.lines().next().unwrap_or("").to_string(),
        ]);
    }
    let mut text = t.render(super::table::terminal_width());
    if rows.is_empty() {
        text.push_str("(none)\n");
    }
    super::print(&text)
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
            let mut list: Vec<serde_json::Value> = v
                .as_object()
                .map(|o| o.values().cloned().collect())
                .unwrap_or_default();
            // The database's order: most recently seen first, then the newest id.
            let key = |a: &serde_json::Value| {
                (
                    a["last_seen"].as_f64().unwrap_or(0.0),
                    a["id"].as_i64().unwrap_or(0),
                )
            };
            list.sort_by(|a, b| {
                key(b)
                    .partial_cmp(&key(a))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            // The API lists the active alerts only.
            let rows: Vec<(serde_json::Value, &str)> =
                list.into_iter().map(|a| (a, "active")).collect();
            show(&rows, *json)
        }
        AlertsCommand::Dismiss { id } => {
            agent
                .delete(&format!("/api/alerts/{id}"))
                .await
                .map_err(failed)?;
            outln!("alert {id} dismissed");
            Ok(())
        }
        AlertsCommand::Clear => {
            agent
                .post("/api/alerts/clear", &serde_json::Value::Null)
                .await
                .map_err(failed)?;
            outln!("alerts dismissed");
            Ok(())
        }
    }
}
