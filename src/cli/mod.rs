//! The command line: argument parsing and dispatch, one file per subcommand.
//!
//! Exit codes are part of the contract (docs/src/getting-started.md, "Commands"): 0 ok, 1 the work failed (a delivery
//! refused), 2 bad usage or bad config. Every subcommand returns a [`CliError`] carrying
//! one of those, and only `main` prints it.

/// `println!` for a command's output: a reader that closed stdout (`| head`) ends the
/// command quietly with exit 0, as `rg | head` does, instead of a panic.
macro_rules! outln {
    () => { $crate::cli::write_out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::cli::write_out(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` for a command's output; see [`outln!`].
macro_rules! out {
    ($($t:tt)*) => { $crate::cli::write_out(format_args!($($t)*)) };
}

mod alerts;
mod api_token;
mod check_config;
mod client;
mod completions;
pub mod logging;
mod outbox;
mod replay;
mod routes;
mod run;
mod schema;
mod send_message;
#[cfg(windows)]
pub mod service;
mod silences;
mod table;
mod test_notify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, SecretAccess};

/// The heading under which `--help` lists the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Parser)]
#[command(
    name = "protowatch",
    version,
    about = "Follows instrument protocol files and notifies people by e-mail, Telegram, webhooks, Alertmanager, SciLog and Signal"
)]
pub struct Cli {
    /// The config file [default: $PROTOWATCH_CONFIG, then ./config.json]
    #[arg(long, global = true, value_name = "PATH", help_heading = GLOBAL, display_order = 900)]
    pub config: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) or a RUST_LOG-style filter
    #[arg(long, global = true, value_name = "LEVEL", help_heading = GLOBAL, display_order = 901,
          value_parser = logging::parse_level)]
    pub log_level: Option<String>,
    /// How log lines look: `human` or `json`
    #[arg(long, global = true, value_name = "FORMAT", default_value = "human",
          help_heading = GLOBAL, display_order = 902, hide_possible_values = true)]
    pub log_format: logging::LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent until SIGINT/SIGTERM
    Run(run::Args),
    /// Send a message to every destination of its event; `-` reads the text from stdin
    SendMessage(send_message::Args),
    /// Check the config and print it resolved, with secrets masked; `--probe` also asks
    /// each service whether it would take a message
    CheckConfig(check_config::Args),
    /// Send a marked test message to every configured destination, or to those selected,
    /// directly, and report each one
    TestNotify(test_notify::Args),
    /// List queued and dead deliveries, or queue a dead one again
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// List the alerts (one per dedup key, with how often it was seen), acknowledge or
    /// dismiss them
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// Make, list or end silences: alerts that match are recorded, not sent
    #[command(subcommand)]
    Silences(silences::SilencesCommand),
    /// Show where each event goes, or change it in the config file
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Read protocol files offline and show what would be sent (to try out new rules)
    Replay(replay::Args),
    /// Print the API token of this config's agent, or make a new one with `--rotate`
    ApiToken(api_token::Args),
    /// Print the JSON Schema of the config file (for editors)
    Schema,
    /// Print a completion script for a shell
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Install, remove or run protowatch as a Windows service
    #[cfg(windows)]
    #[command(subcommand)]
    Service(service::ServiceCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Failed = 1,
    Usage = 2,
}

#[derive(Debug)]
pub struct CliError {
    pub exit: Exit,
    pub message: String,
}

impl CliError {
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Failed,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            exit: Exit::Usage,
            message: message.into(),
        }
    }
}

impl From<ConfigError> for CliError {
    fn from(e: ConfigError) -> CliError {
        CliError::usage(e.to_string())
    }
}

impl Cli {
    /// Whether logs go to stderr: everywhere but in a Windows service, which has none
    /// and logs to a file.
    pub fn logs_to_stderr(&self) -> bool {
        #[cfg(windows)]
        if matches!(self.command, Command::Service(service::ServiceCommand::Run)) {
            return false;
        }
        true
    }

    pub fn load_config(&self) -> Result<Config, CliError> {
        Ok(Config::load(&Config::locate(self.config.as_deref()))?)
    }

    /// The config for a command that asks the running agent, run by whoever may use it:
    /// the secret files only the agent's user may read are left unread.
    pub fn load_config_to_use_the_agent(&self) -> Result<Config, CliError> {
        Ok(Config::load_for(
            &Config::locate(self.config.as_deref()),
            SecretAccess::UseTheAgent,
        )?)
    }
}

/// Runs the parsed command; the caller turns the result into the process exit code.
pub fn dispatch(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Run(args) => run::run(&cli, args),
        Command::SendMessage(args) => send_message::run(&cli, args),
        Command::CheckConfig(args) => check_config::run(&cli, args),
        Command::TestNotify(args) => test_notify::run(&cli, args),
        Command::Outbox(cmd) => outbox::run(&cli, cmd),
        Command::Alerts(cmd) => alerts::run(&cli, cmd),
        Command::Silences(cmd) => silences::run(&cli, cmd),
        Command::Routes(cmd) => routes::run(&cli, cmd),
        Command::Replay(args) => replay::run(&cli, args),
        Command::ApiToken(args) => api_token::run(&cli, args),
        Command::Schema => schema::run(),
        Command::Completions { shell } => completions::run(*shell),
        #[cfg(windows)]
        Command::Service(cmd) => service::run(&cli, cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("protowatch: {}", e.message.replace('\n', "\nprotowatch: "));
            ExitCode::from(e.exit as u8)
        }
    }
}

/// Writes a command's output to stdout, ending it with a newline.
fn print(text: &str) -> Result<(), CliError> {
    if text.ends_with('\n') {
        out!("{text}");
    } else {
        outln!("{text}");
    }
    Ok(())
}

/// Where [`outln!`] and [`out!`] write. A closed stdout means the reader has all it
/// wanted: the command ends here, exit 0. Any other failure to write is reported once,
/// exit 1.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("protowatch: cannot write to standard output: {e}");
        std::process::exit(Exit::Failed as i32);
    }
}

/// A multi-threaded runtime for the agent, a small one for one-shot commands.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}
