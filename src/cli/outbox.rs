//! `protowatch outbox list|retry`: what is queued or was given up, and a second chance
//! for a dead row once its cause (a wrong chat id, a full mailbox) is fixed.
//!
//! Reads the state database directly, so it works whether or not the agent runs; a
//! running agent notices the change within a second and sends the revived row.

use clap::Subcommand;

use super::table::{Align, Table};
use super::{Cli, CliError};
use crate::outbox::queue::{self, OutboxEntry};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List queued and dead deliveries, oldest first
    List {
        /// Only the dead ones (refused, or given up after 24 h)
        #[arg(long)]
        dead: bool,
        /// One JSON document (a list of rows) instead of a table
        #[arg(long)]
        json: bool,
        /// Dates and times instead of "5 min ago" and "in 30 s"
        #[arg(long)]
        absolute: bool,
    },
    /// Queue a dead delivery again
    Retry {
        /// The row's id, as `outbox list` shows it
        id: i64,
    },
}

pub fn run(cli: &Cli, cmd: &OutboxCommand) -> Result<(), CliError> {
    let config = cli.load_config_to_use_the_agent()?;
    let store = Store::open(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
    match cmd {
        OutboxCommand::List {
            dead,
            json,
            absolute,
        } => {
            let rows: Vec<OutboxEntry> = queue::list(&store)
                .map_err(|e| CliError::failed(e.to_string()))?
                .into_iter()
                .filter(|r| !dead || r.dead)
                .collect();
            if *json {
                let doc = serde_json::to_string_pretty(&rows)
                    .map_err(|e| CliError::failed(e.to_string()))?;
                return super::print(&doc);
            }
            super::print(&table(&rows, *absolute))
        }
        OutboxCommand::Retry { id } => {
            if queue::revive(&store, *id).map_err(|e| CliError::failed(e.to_string()))? {
                outln!("row {id} queued again");
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

/// The rows as a table whose last column, the error, is what a narrow terminal keeps:
/// NEXT says when the row is tried again, or that it is dead (given up).
fn table(rows: &[OutboxEntry], absolute: bool) -> String {
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("DESTINATION", Align::Left),
        ("EVENT", Align::Left),
        ("QUEUED", Align::Left),
        ("TRIES", Align::Right),
        ("NEXT", Align::Left),
        ("LAST ERROR", Align::Left),
    ])
    .droppable(&["QUEUED", "EVENT"]);
    let now = crate::store::now_ms();
    for r in rows {
        let next = if r.dead {
            "dead".to_string()
        } else if r.next_attempt_at_ms <= now {
            "now".to_string()
        } else {
            super::table::when(r.next_attempt_at_ms, now, absolute)
        };
        t.push(vec![
            r.id.to_string(),
            r.destination.clone(),
            r.event.clone(),
            super::table::when(r.created_at_ms, now, absolute),
            r.attempts.to_string(),
            next,
            r.last_error.clone().unwrap_or_default(),
        ]);
    }
    let mut out = t.render(super::table::terminal_width());
    if rows.is_empty() {
        out.push_str("(empty)\n");
    }
    out
}
