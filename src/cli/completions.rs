//! `protowatch completions SHELL`: a completion script for the shell, generated from
//! the same `clap` definitions the binary parses with, so it never lists a command or
//! option that does not exist.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, CliError};

pub fn run(shell: Shell) -> Result<(), CliError> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "protowatch", &mut script);
    super::print(&String::from_utf8_lossy(&script))
}
