//! `protowatch alerts list|dismiss|clear`: the alerts the agent keeps, one per dedup key,
//! and the operator's way to say "seen, dealt with".
//!
//! Dismissing an alert also ends its repeat counting in a running agent (within a
//! second): what was counted goes out as a summary, and the next occurrence is sent at
//! once, as news. Goes through the running agent's HTTP API when it answers (the state
//! folder may be the service's, not readable by the user), else to the state database.
//!
//! Acknowledging ("I'm on it") keeps the alert active and counting but stops its
//! escalation and its repeats; the list says who acknowledged, what silences an alert
//! and its escalation's next step on a line under its row, so the table is no wider.

use clap::Subcommand;

use super::client::{AgentClient, ClientError};
use super::table::{Align, Table};
use super::{Cli, CliError};
use crate::alerts::{self, Alert};
use crate::oncall::Policy;
use crate::oncall::escalation::next_step;
use crate::store::{Store, now_ms};

type Policies = std::collections::BTreeMap<String, Policy>;

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
        /// Dates and times instead of "5 min ago"
        #[arg(long)]
        absolute: bool,
    },
    /// Dismiss one alert
    Dismiss {
        /// The alert's id, as `alerts list` shows it
        id: i64,
    },
    /// Dismiss every active alert
    Clear,
    /// Acknowledge one alert ("I'm on it"): it stays active, escalation and repeats stop
    Ack {
        /// The alert's id, as `alerts list` shows it
        id: i64,
    },
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
            return rt.block_on(through_agent(&agent, cmd, &config.oncall.escalation));
        }
    }
    let store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    let failed = |e: crate::store::StoreError| CliError::failed(e.to_string());
    let now = now_ms();
    match cmd {
        AlertsCommand::List {
            all,
            json,
            absolute,
        } => {
            let list = alerts::holds::list_shown(&store, now, *all, &config.oncall.maintenance)
                .map_err(failed)?;
            let rows: Vec<(serde_json::Value, &str)> = list
                .iter()
                .map(|a| (a.to_ontakt(), state(a, now)))
                .collect();
            show(&rows, *json, *absolute, &config.oncall.escalation)
        }
        AlertsCommand::Ack { id } => {
            if alerts::acknowledge(&store, *id, now, "cli").map_err(failed)? {
                outln!("alert {id} acknowledged");
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "no active alert {id} (see `protowatch alerts list`)"
                )))
            }
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
fn show(
    rows: &[(serde_json::Value, &str)],
    json: bool,
    absolute: bool,
    policies: &Policies,
) -> Result<(), CliError> {
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
    let now = now_ms();
    let time = |v: &serde_json::Value| {
        v.as_f64()
            .map(|s| super::table::when((s * 1000.0).round() as i64, now, absolute))
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
    ])
    .droppable(&["FIRST", "SEVERITY"]);
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
        if let Some(note) = on_call(a, policies, now_ms()) {
            t.note(note);
        }
    }
    let mut text = t.render(super::table::terminal_width());
    if rows.is_empty() {
        text.push_str("(none)\n");
    }
    super::print(&text)
}

/// An alert's on-call state in a few words: "acknowledged by cli", "silenced (silence
/// 3)", "next: signal:oncall in 4 min"; `None` when there is nothing to say.
fn on_call(a: &serde_json::Value, policies: &Policies, now_ms: i64) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(by) = a["acknowledged_by"].as_str() {
        parts.push(format!("acknowledged by {by}"));
    }
    let silenced: Vec<&str> = a["silenced_by"]
        .as_array()
        .map(|l| l.iter().filter_map(|s| s.as_str()).collect())
        .unwrap_or_default();
    if !silenced.is_empty() {
        parts.push(format!("silenced ({})", silenced.join(", ")));
    } else if let Some(e) = a["escalation"].as_object() {
        let policy = e.get("policy").and_then(|p| p.as_str()).unwrap_or("");
        let fired = e
            .get("step")
            .and_then(|s| s.as_u64())
            .unwrap_or(1)
            .saturating_sub(1);
        let next_at = e
            .get("next_at")
            .and_then(|t| t.as_f64())
            .map(|s| (s * 1000.0).round() as i64);
        let fired = u32::try_from(fired).unwrap_or(u32::MAX);
        if let Some(next) = next_step(policies, policy, fired, next_at, now_ms) {
            parts.push(next);
        }
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The same commands over the agent's API (`--all` needs the database: the API lists the
/// active alerts only).
async fn through_agent(
    agent: &AgentClient,
    cmd: &AlertsCommand,
    policies: &Policies,
) -> Result<(), CliError> {
    let failed = |e: ClientError| match e {
        ClientError::Refused {
            status: 404,
            message,
        } => CliError::failed(message),
        e => CliError::failed(e.to_string()),
    };
    match cmd {
        AlertsCommand::List { json, absolute, .. } => {
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
            show(&rows, *json, *absolute, policies)
        }
        AlertsCommand::Ack { id } => {
            agent
                .post(&format!("/api/alerts/{id}/ack"), &serde_json::Value::Null)
                .await
                .map_err(failed)?;
            outln!("alert {id} acknowledged");
            Ok(())
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
