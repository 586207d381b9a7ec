//! `protowatch silences add|list|expire`: "hold these back until then", made and ended
//! from the command line.
//!
//! Goes through the running agent's API when it answers, so that the agent holds the
//! new silence back at once and records who made it; else straight to the state
//! database, which the agent reads when it starts. Either way the silence is read from
//! the same JSON by the same function (`api::oncall::new_silence`), so the command and
//! the API refuse the same things with the same words.

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::client::{AgentClient, ClientError};
use super::table::{Align, Table};
use super::{Cli, CliError};
use crate::oncall::escalation::relative;
use crate::oncall::silences;
use crate::store::{Store, now_ms};

#[derive(Debug, Subcommand)]
pub enum SilencesCommand {
    /// Hold back the alerts that match, for a while; prints the new silence's id
    Add(AddArgs),
    /// List the silences in force and to come, soonest-ending first
    List {
        /// Those that ended in the last week too
        #[arg(long)]
        all: bool,
        /// One JSON document (a list of silences) instead of a table
        #[arg(long)]
        json: bool,
    },
    /// End a silence now
    Expire {
        /// The silence's id, as `silences list` shows it
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// How long it lasts (`30m`, `2h`, `3d`; at most 31 days)
    #[arg(long, value_name = "D", default_value = "2h")]
    duration: String,
    /// Only this event (`alarm_major`)
    #[arg(long, value_name = "E")]
    event: Option<String>,
    /// Only alerts of this severity or lower (`info`, `warning`, `minor`, `major`)
    #[arg(long, value_name = "S")]
    severity_at_most: Option<String>,
    /// Only alerts from this source
    #[arg(long, value_name = "S")]
    source: Option<String>,
    /// Only the alert of this dedup key
    #[arg(long, value_name = "K")]
    key: Option<String>,
    /// Only alerts whose text matches this regular expression
    #[arg(long, value_name = "REGEX")]
    text: Option<String>,
    /// Why: for whoever finds the silence later (required)
    #[arg(long, value_name = "C")]
    comment: String,
}

impl AddArgs {
    /// The API's JSON for this silence (`POST /api/silences`).
    fn body(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("event", &self.event),
            ("severity_at_most", &self.severity_at_most),
            ("source", &self.source),
            ("key", &self.key),
            ("text", &self.text),
        ] {
            if let Some(v) = v {
                m.insert(k.to_string(), json!(v));
            }
        }
        json!({"matchers": m, "duration": self.duration, "comment": self.comment})
    }
}

pub fn run(cli: &Cli, cmd: &SilencesCommand) -> Result<(), CliError> {
    let config = cli.load_config_to_use_the_agent()?;
    let rt = super::runtime()?;
    if let Some(agent) = rt
        .block_on(AgentClient::find(&config))
        .map_err(|e| CliError::failed(e.to_string()))?
    {
        return rt.block_on(through_agent(&agent, cmd));
    }
    let mut store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    let now = now_ms();
    match cmd {
        SilencesCommand::Add(args) => {
            let new = crate::api::oncall::new_silence(&args.body(), now, "cli")
                .map_err(CliError::usage)?;
            let id = silences::add(&mut store, &new).map_err(|e| match e {
                silences::SilenceError::Store(e) => CliError::failed(e.to_string()),
                e => CliError::usage(e.to_string()),
            })?;
            tracing::info!(target: "protowatch::audit", silence = id, by = "cli", "silence made");
            outln!("{id}");
            Ok(())
        }
        SilencesCommand::List { all, json } => {
            let week = 7 * 24 * 3_600_000;
            let list = silences::list(&store, now, all.then_some(week))
                .map_err(|e| CliError::failed(e.to_string()))?;
            let rows: Vec<Value> = list.iter().map(|s| s.to_json(now)).collect();
            show(&rows, *json, now)
        }
        SilencesCommand::Expire { id } => match silences::expire(&mut store, *id, "cli", now) {
            Ok(_) => {
                tracing::info!(target: "protowatch::audit", silence = id, by = "cli", "silence ended");
                outln!("silence {id} ended");
                Ok(())
            }
            Err(silences::SilenceError::Store(e)) => Err(CliError::failed(e.to_string())),
            Err(_) => Err(CliError::failed(format!(
                "no silence {id} (see `protowatch silences list`)"
            ))),
        },
    }
}

/// The one way a list of silences is shown, whether it came from the database or from
/// the agent's API: the API's silence objects.
fn show(rows: &[Value], json: bool, now_ms: i64) -> Result<(), CliError> {
    if json {
        return super::print(&serde_json::to_string_pretty(rows).unwrap_or_default());
    }
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("MATCHERS", Align::Left),
        ("ENDS", Align::Left),
        ("BY", Align::Left),
        ("HELD", Align::Right),
        ("COMMENT", Align::Left),
    ]);
    for s in rows {
        let matchers = crate::oncall::Matchers::from_json(&s["matchers"])
            .map(|m| m.describe())
            .unwrap_or_else(|_| s["matchers"].to_string());
        let ends = s["ends_at"]
            .as_i64()
            .map(|e| {
                let delta = e.saturating_mul(1000).saturating_sub(now_ms);
                match s["expired_by"].as_str() {
                    Some(by) if delta <= 0 => format!("ended by {by}"),
                    _ if delta <= 0 => format!("ended {}", relative(delta)),
                    _ => relative(delta),
                }
            })
            .unwrap_or_default();
        t.push(vec![
            s["id"].to_string(),
            matchers,
            ends,
            s["created_by"].as_str().unwrap_or("").to_string(),
            s["held"].to_string(),
            s["comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    let mut text = t.render(super::table::terminal_width());
    if rows.is_empty() {
        text.push_str("(none)\n");
    }
    super::print(&text)
}

/// The same commands over the agent's API.
async fn through_agent(agent: &AgentClient, cmd: &SilencesCommand) -> Result<(), CliError> {
    let failed = |e: ClientError| match e {
        ClientError::Refused {
            status: 400,
            message,
        } => CliError::usage(message),
        ClientError::Refused {
            status: 404,
            message,
        } => CliError::failed(message),
        e => CliError::failed(e.to_string()),
    };
    match cmd {
        SilencesCommand::Add(args) => {
            let v = agent
                .post("/api/silences", &args.body())
                .await
                .map_err(failed)?;
            outln!("{}", v["id"]);
            Ok(())
        }
        SilencesCommand::List { all, json } => {
            let path = if *all {
                "/api/silences?all=true"
            } else {
                "/api/silences"
            };
            let v = agent.get(path).await.map_err(failed)?;
            let rows = v["silences"].as_array().cloned().unwrap_or_default();
            show(&rows, *json, now_ms())
        }
        SilencesCommand::Expire { id } => {
            agent
                .delete(&format!("/api/silences/{id}"))
                .await
                .map_err(failed)?;
            outln!("silence {id} ended");
            Ok(())
        }
    }
}
