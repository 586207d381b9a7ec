//! `protowatch api-token [--rotate]`: the API token of this config's agent.
//!
//! It prints the token to whoever may read it (the agent's user and the group
//! `protowatch`), for a browser or a script that calls the API itself, and `--rotate`
//! makes a new one when the old one was seen where it should not have been: the running
//! agent takes the new one at its next call and refuses the old one from then on.

use super::{CliError, print};
use crate::api::token;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Make a new token; the old one stops working, also for a running agent
    #[arg(long)]
    pub rotate: bool,
}

pub fn run(cli: &super::Cli, args: &Args) -> Result<(), CliError> {
    let config = cli.load_config_to_use_the_agent()?;
    if config.api.token.is_some() {
        // The config's token is the operator's to show and to change.
        return Err(CliError::usage(format!(
            "{}: the API token is set in the config (api.token or api.token_file); change it there",
            config.file.display()
        )));
    }
    let path = token::path(&config.state_dir);
    if args.rotate {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            CliError::failed(format!("cannot create {}: {e}", config.state_dir.display()))
        })?;
        token::generate(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))?;
        eprintln!(
            "protowatch: a new API token is in {}; a running agent takes it at its next call",
            path.display()
        );
        return Ok(());
    }
    match token::read(&config.state_dir).map_err(|e| CliError::failed(e.to_string()))? {
        Some(t) => print(t.expose()),
        None => Err(CliError::failed(format!(
            "{} does not exist yet: the agent makes it at its first start (or run `protowatch api-token --rotate`)",
            path.display()
        ))),
    }
}
