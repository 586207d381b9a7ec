//! `protowatch run`: the agent in the foreground until SIGINT or SIGTERM (Ctrl-C on
//! Windows), then a graceful stop that finishes the sends in flight.
//!
//! A config that `check-config` rejects is refused here too, with the same words and
//! exit 2: an agent that cannot tell anybody, or cannot keep its state, is no agent.

use clap::Args as ClapArgs;
use tokio_util::sync::CancellationToken;

use super::{Cli, CliError, check_config, runtime};
use crate::agent;

#[derive(Debug, Default, ClapArgs)]
pub struct Args {
    /// Start with a new, empty state database on purpose (the old one is kept aside as
    /// protowatch.db.<time>.bak): queued deliveries are dropped, and files are taken up
    /// as at a first start
    #[arg(long)]
    pub reset_state: bool,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let config = cli.load_config()?;
    check_config::refusals(&config)?;
    raise_open_file_limit();
    let rt = runtime()?;
    rt.block_on(async {
        // The agent's one stop signal, given by the first SIGINT or SIGTERM.
        let stop = CancellationToken::new();
        let signal = tokio::spawn(cancel_on_signal(stop.clone()));
        let result = agent::run_with(config, stop, args.reset_state).await;
        signal.abort();
        result
    })
    .map_err(|e| CliError::failed(e.to_string()))
}

/// Raises the soft limit of open files to the hard one. The watcher keeps few files open
/// whatever the folder holds, but the HTTP API's connections and a burst of reopened
/// files should not meet the usual soft limit of 1,024 while the hard one is far higher.
#[cfg(unix)]
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur >= lim.rlim_max {
        tracing::debug!(limit = lim.rlim_cur, "open file limit");
        return;
    }
    let from = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::debug!(from, to = lim.rlim_cur, "open file limit raised");
    } else {
        tracing::debug!(
            limit = from,
            error = %std::io::Error::last_os_error(),
            "open file limit not raised"
        );
    }
}

/// Windows has no such per-process limit on handles worth raising.
#[cfg(not(unix))]
fn raise_open_file_limit() {}

/// Cancels `stop` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(stop: CancellationToken) {
    shutdown_signal().await;
    stop.cancel();
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
