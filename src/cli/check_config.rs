//! `protowatch check-config`: every problem at once, or the resolved config with secrets
//! masked — what an operator runs after editing the file by hand.

use super::{Cli, CliError};
use crate::watcher::discovery;

pub fn run(cli: &Cli) -> Result<(), CliError> {
    let config = cli.load_config()?;
    if !config.has_service() {
        return Err(CliError::usage(format!(
            "{}: no service configured: add a \"mail\" or a \"telegram\" section, or nothing will be sent",
            config.file.display()
        )));
    }
    let text = serde_json::to_string_pretty(&config.masked_json())
        .map_err(|e| CliError::failed(e.to_string()))?;
    println!("{text}");
    for (i, w) in config.watch.iter().enumerate() {
        if discovery::matches(&w.path).is_empty() {
            eprintln!(
                "note: watch[{i}].path {:?} matches no file yet; the agent will pick files up when they appear",
                w.path
            );
        }
    }
    eprintln!("{}: OK", config.file.display());
    Ok(())
}
