//! `protowatch` command-line entry: parse the arguments, set up logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use protowatch::cli::logging;

fn main() -> ExitCode {
    let cli = protowatch::cli::Cli::parse();
    let filter = match logging::filter(cli.log_level.as_deref()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("protowatch: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.logs_to_stderr() {
        logging::init(filter, cli.log_format, logging::Sink::Stderr);
    }
    protowatch::cli::dispatch(cli)
}
