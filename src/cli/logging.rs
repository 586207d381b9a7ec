//! Where the log goes and how it looks: one setup for the terminal, systemd's journal,
//! log collectors that want JSON, and the Windows service's file.
//!
//! The journal stamps and colours nothing itself, so under systemd (stderr is the
//! stream named by `JOURNAL_STREAM`) lines carry no timestamp and no colour, or
//! `journalctl` would show two times per line and escape codes. Colour is for a
//! terminal only: a log file or a pipe gets plain text.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One readable line per event (multi-line messages stay multi-line).
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Where the lines go.
pub enum Sink {
    Stderr,
    /// A file opened for appending (the Windows service, which has no console).
    File(std::fs::File),
}

/// Checks `--log-level`: a level word, or a `RUST_LOG`-style filter (`target=level`,
/// comma-separated). A bare word that is not a level would be taken by the filter as a
/// module name and silently log nothing: it is refused.
pub fn parse_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let t = s.trim();
    let directive = t.contains('=') || t.contains(',');
    if !directive && !LEVELS.contains(&t.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "expected one of {} or a filter such as \"protowatch=debug\"",
            LEVELS.join(", ")
        ));
    }
    EnvFilter::try_new(t).map_err(|e| e.to_string())?;
    Ok(t.to_string())
}

/// `--log-level` (a level or a `RUST_LOG`-style filter), else `RUST_LOG`, else `info`.
pub fn filter(level: Option<&str>) -> Result<EnvFilter, String> {
    match level {
        Some(level) => EnvFilter::try_new(level).map_err(|e| format!("--log-level {level:?}: {e}")),
        None => EnvFilter::try_from_default_env()
            .or_else(|_| EnvFilter::try_new("info"))
            .map_err(|e| format!("RUST_LOG: {e}")),
    }
}

/// Installs the global subscriber; a second call (tests) changes nothing.
pub fn init(filter: EnvFilter, format: LogFormat, sink: Sink) {
    let (journal, terminal) = match sink {
        Sink::Stderr => (stderr_is_journal(), std::io::stderr().is_terminal()),
        Sink::File(_) => (false, false),
    };
    let ansi = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let writer = match sink {
        Sink::Stderr => tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::io::stderr),
        Sink::File(file) => {
            tracing_subscriber::fmt::writer::BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    // `try_init` fails only when a subscriber is already set, and then that one stays.
    let _ = match (format, journal) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Human, true) => builder.without_time().try_init(),
        (LogFormat::Human, false) => builder.try_init(),
    };
}

/// Whether stderr is the journal stream systemd connected: `JOURNAL_STREAM` names its
/// device and inode (`dev:ino`), and must match, or a program started from a unit's
/// shell with its stderr redirected to a file would drop its timestamps.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::MetadataExt;
        let Some((dev, ino)) = stream
            .to_str()
            .and_then(|s| s.split_once(':'))
            .and_then(|(d, i)| Some((d.parse::<u64>().ok()?, i.parse::<u64>().ok()?)))
        else {
            return false;
        };
        let meta = std::io::stderr()
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .and_then(|f| f.metadata());
        meta.is_ok_and(|m| m.dev() == dev && m.ino() == ino)
    }
    #[cfg(not(unix))]
    {
        let _ = stream;
        false
    }
}
