//! `protowatch outbox list|retry`: what is queued or was given up, and a second chance
//! for a dead row once its cause (a wrong chat id, a full mailbox) is fixed.
//!
//! Reads the state database directly, so it works whether or not the agent runs; a
//! running agent notices the change within a second and sends the revived row.

use clap::Subcommand;

use super::{Cli, CliError};
use crate::store::{OutboxEntry, Store};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued and dead deliveries, oldest first
    List {
        /// Only the dead ones (refused, or given up after 24 h)
        #[arg(long)]
        dead: bool,
        /// JSON lines instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Queue a dead delivery again
    Retry {
        /// The row's id, as `outbox list` shows it
        id: i64,
    },
}

pub fn run(cli: &Cli, cmd: &OutboxCommand) -> Result<(), CliError> {
    let config = cli.load_config()?;
    let store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    match cmd {
        OutboxCommand::List { dead, json } => {
            let rows: Vec<OutboxEntry> = store
                .outbox_rows()
                .map_err(|e| CliError::failed(e.to_string()))?
                .into_iter()
                .filter(|r| !dead || r.dead)
                .collect();
            if *json {
                for r in &rows {
                    let line =
                        serde_json::to_string(r).map_err(|e| CliError::failed(e.to_string()))?;
                    println!("{line}");
                }
            } else {
                print!("{}", table(&rows));
            }
            Ok(())
        }
        OutboxCommand::Retry { id } => {
            if store
                .revive(*id)
                .map_err(|e| CliError::failed(e.to_string()))?
            {
                println!("row {id} queued again");
                Ok(())
            } else {
                Err(CliError::failed(format!(
                    "no dead row {id} in {} (see `protowatch outbox list --dead`)",
                    config.state_dir.display()
                )))
            }
        }
    }
}

fn table(rows: &[OutboxEntry]) -> String {
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
        "{:>6}  {:<5}  {:<20}  {:<16}  {:<19}  {:>8}  {}\n",
        "ID", "STATE", "DESTINATION", "EVENT", "QUEUED", "ATTEMPTS", "LAST ERROR"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>6}  {:<5}  {:<20}  {:<16}  {:<19}  {:>8}  {}\n",
            r.id,
            if r.dead { "dead" } else { "queue" },
            r.destination,
            r.event,
            time(r.created_at_ms),
            r.attempts,
            r.last_error.as_deref().unwrap_or("")
        ));
    }
    if rows.is_empty() {
        out.push_str("(empty)\n");
    }
    out
}
