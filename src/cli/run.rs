//! `protowatch run`: the agent in the foreground until SIGINT or SIGTERM (Ctrl-C on
//! Windows), then a graceful stop that finishes the sends in flight.

use super::{Cli, CliError, runtime};
use crate::agent;

pub fn run(cli: &Cli) -> Result<(), CliError> {
    let config = cli.load_config()?;
    if !config.has_service() {
        tracing::warn!("no service configured: events will be logged but not sent");
    }
    let rt = runtime()?;
    rt.block_on(agent::run(config, shutdown_signal()))
        .map_err(|e| CliError::failed(e.to_string()))
}

/// Completes on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
