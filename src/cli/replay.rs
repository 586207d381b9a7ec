//! `protowatch replay FILE…`: protocol files through the parser and the config's `rules`,
//! offline, and what would be sent — per event its count, severities, dedup keys (each
//! with one example) and destinations. It is how operators try out new `rules` before
//! the agent runs them, so its output is stable (sorted, no timings on stdout) and two
//! runs can be compared with `diff`.
//!
//! Each file is read as the agent would read it: with the encoding and `max_line_bytes`
//! of the `watch` entry whose glob matches it (else `auto` and the default), unless
//! `--encoding` says otherwise. A file that cannot be read is reported and the others
//! are still replayed; the exit code is then 1.
//!
//! Without a config file at the default place (no `--config`, no `$PROTOWATCH_CONFIG`)
//! the built-in grammar alone is replayed, with no rules and no destinations, and a note
//! on stderr says so: a protocol can be looked at before any config exists. A config
//! that is named but missing, or broken, is an error (exit 2).

use std::fs::File;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use super::{Cli, CliError};
use crate::config::{
    CONFIG_ENV, Config, ConfigError, DEFAULT_MAX_LINE_BYTES, Encoding, SecretAccess,
};
use crate::parser::Counts;
use crate::parser::Rules;
use crate::parser::replay::{FileResult, ReadAs, Summary, replay_file};
use crate::routing::{QUIET_EVENTS, Router};
use crate::watcher::discovery;

/// Files smaller than this are read too fast for a progress bar to be worth drawing.
const PROGRESS_MIN_BYTES: u64 = 8 << 20;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Protocol files to read from their beginning
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Decode every file so (auto, utf-8, windows-1251) instead of as its watch entry says
    #[arg(long, value_name = "ENCODING", value_parser = parse_encoding)]
    encoding: Option<Encoding>,
    /// Print one JSON document (every key of every event) instead of text
    #[arg(long)]
    json: bool,
    /// Dedup keys shown per event in the text output, the most frequent first (0: all)
    #[arg(long, value_name = "N", default_value_t = 10)]
    keys: usize,
}

fn parse_encoding(s: &str) -> Result<Encoding, String> {
    Encoding::CHOICES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(s))
        .map(|(_, e)| *e)
        .ok_or_else(|| "expected auto, utf-8 or windows-1251".to_string())
}

fn encoding_name(e: Encoding) -> &'static str {
    Encoding::CHOICES
        .iter()
        .find(|(_, c)| *c == e)
        .map_or("auto", |(n, _)| n)
}

/// One file as replayed.
struct FileReport {
    path: PathBuf,
    read_as: ReadAs,
    /// The `watch` entry that matched the file, if any.
    watch: Option<usize>,
    outcome: Result<FileResult, String>,
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let config = load_config(cli)?;
    let rules = match &config {
        Some(c) => Rules::new(&c.rules)
            .map_err(|e| CliError::usage(format!("{}: rules: {e}", c.file.display())))?,
        None => Rules::empty(),
    };
    let rules = Arc::new(rules);
    let progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut watch_files = WatchFiles::new(config.as_ref());
    let mut summary = Summary::default();
    let mut files = Vec::new();
    for path in &args.files {
        let (mut read_as, watch) = watch_files.read_as(path);
        if let Some(encoding) = args.encoding {
            read_as.encoding = encoding;
        }
        let outcome = replay_one(path, read_as, rules.clone(), &mut summary, progress);
        if let Err(e) = &outcome {
            eprintln!("protowatch: {}: {e}", path.display());
        }
        files.push(FileReport {
            path: path.clone(),
            read_as,
            watch,
            outcome,
        });
    }
    if progress {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "replayed {} bytes in {secs:.2} s ({:.0} MB/s)",
            summary.bytes,
            summary.bytes as f64 / 1e6 / secs.max(1e-9)
        );
    }

    let router = config.as_ref().map(Router::new);
    let report = Report {
        config: config.as_ref(),
        router: router.as_ref(),
        rules: &rules,
        files: &files,
        summary: &summary,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report.json()).map_err(|e| CliError::failed(e.to_string()))?
    } else {
        report.text(args.keys)
    };
    super::print(&text)?;

    let failed = files.iter().filter(|f| f.outcome.is_err()).count();
    if failed > 0 {
        return Err(CliError::failed(format!(
            "{failed} of {} files could not be replayed",
            files.len()
        )));
    }
    Ok(())
}

/// The config, or `None` when there is none at the default place (see the module doc).
fn load_config(cli: &Cli) -> Result<Option<Config>, CliError> {
    let path = Config::locate(cli.config.as_deref());
    match Config::load_for(&path, SecretAccess::UseTheAgent) {
        Ok(c) => Ok(Some(c)),
        Err(ConfigError::Missing { .. }) if !config_named(cli) => {
            eprintln!(
                "note: no config file {}: replaying with the built-in grammar only (no rules, no destinations)",
                path.display()
            );
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn config_named(cli: &Cli) -> bool {
    cli.config.is_some() || std::env::var_os(CONFIG_ENV).is_some_and(|v| !v.is_empty())
}

fn replay_one(
    path: &Path,
    read_as: ReadAs,
    rules: Arc<Rules>,
    summary: &mut Summary,
    progress: bool,
) -> Result<FileResult, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = (progress && len >= PROGRESS_MIN_BYTES).then(|| progress_bar(path, len));
    let mut tick = |read: u64| {
        if let Some(bar) = &bar {
            bar.set_position(read);
        }
    };
    let result = replay_file(path, file, read_as, rules, summary, &mut tick);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result.map_err(|e| e.to_string())
}

fn progress_bar(path: &Path, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(path.display().to_string());
    bar
}

/// The files each `watch` glob matches, found on first use: a file given to replay is
/// read as the entry the agent would read it under.
struct WatchFiles<'c> {
    config: Option<&'c Config>,
    matched: Vec<Option<Vec<PathBuf>>>,
}

impl<'c> WatchFiles<'c> {
    fn new(config: Option<&'c Config>) -> WatchFiles<'c> {
        let n = config.map_or(0, |c| c.watch.len());
        WatchFiles {
            config,
            matched: vec![None; n],
        }
    }

    fn read_as(&mut self, file: &Path) -> (ReadAs, Option<usize>) {
        let default = ReadAs {
            encoding: Encoding::Auto,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        };
        let (Some(config), Ok(file)) = (self.config, std::fs::canonicalize(file)) else {
            return (default, None);
        };
        for (i, w) in config.watch.iter().enumerate() {
            // Compared as canonical paths: the config's globs are absolute, the files on
            // the command line are as the operator typed them.
            let matched = self.matched[i].get_or_insert_with(|| {
                discovery::matches(&w.path)
                    .iter()
                    .filter_map(|p| std::fs::canonicalize(p).ok())
                    .collect()
            });
            if matched.contains(&file) {
                let read_as = ReadAs {
                    encoding: w.encoding,
                    max_line_bytes: w.max_line_bytes,
                };
                return (read_as, Some(i));
            }
        }
        (default, None)
    }
}

/// What the replay found, as text or JSON.
struct Report<'a> {
    config: Option<&'a Config>,
    router: Option<&'a Router>,
    rules: &'a Rules,
    files: &'a [FileReport],
    summary: &'a Summary,
}

impl Report<'_> {
    /// Where events of `name` would go, or why nowhere.
    fn destinations(&self, name: &str) -> Result<Vec<String>, &'static str> {
        let (Some(config), Some(router)) = (self.config, self.router) else {
            return Err("no config");
        };
        if !config.has_service() {
            return Err("no service configured");
        }
        let to: Vec<String> = router.route(name).iter().map(|d| d.to_string()).collect();
        if !to.is_empty() {
            Ok(to)
        } else if router.is_explicit() {
            Err("not in routes")
        } else if QUIET_EVENTS.contains(&name) {
            Err("routine event: sent only where routes name it")
        } else {
            Err("no default scope")
        }
    }

    fn rule_rows(&self) -> Vec<(&str, Option<&str>, u64)> {
        self.rules
            .configs()
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let hits = self.summary.rule_hits.get(i).copied().unwrap_or(0);
                (r.name.as_str(), r.event.as_deref(), hits)
            })
            .collect()
    }

    fn text(&self, max_keys: usize) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = match self.config {
            Some(c) => writeln!(s, "config: {}", c.file.display()),
            None => writeln!(s, "config: none"),
        };
        for f in self.files {
            let how = format!(
                "{}{}",
                encoding_name(f.read_as.encoding),
                f.watch.map(|i| format!(", watch[{i}]")).unwrap_or_default()
            );
            let _ = match &f.outcome {
                Ok(r) => writeln!(
                    s,
                    "file: {}: {}, {}, {} ({how})",
                    f.path.display(),
                    plural(r.counts.lines, "line"),
                    plural(r.bytes, "byte"),
                    plural(r.events, "event")
                ),
                Err(e) => writeln!(s, "file: {}: FAILED: {e}", f.path.display()),
            };
        }
        let c = &self.summary.counts;
        let _ = writeln!(
            s,
            "total: {} lines (error {}, warning {}, info {}, user {}, debug {}, other {}), {} bytes",
            c.lines, c.error, c.warning, c.info, c.user, c.debug, c.other, self.summary.bytes
        );
        for (name, event, hits) in self.rule_rows() {
            let what = event.map_or("ignored".to_string(), |e| format!("→ {e}"));
            let _ = writeln!(s, "rule {name:?}: {} matched, {what}", plural(hits, "line"));
        }
        if self.summary.events.is_empty() {
            let _ = writeln!(s, "\nno events: nothing would be sent");
        }
        for (name, tally) in &self.summary.events {
            let severities: Vec<String> = tally
                .severities
                .iter()
                .rev()
                .map(|(sev, n)| format!("{sev} {n}"))
                .collect();
            let to = match self.destinations(name) {
                Ok(to) => to.join(", "),
                Err(why) => format!("nowhere ({why})"),
            };
            let keys = tally.keys();
            let _ = writeln!(
                s,
                "\n{name}: {}, {} ({}) → {to}",
                plural(tally.count, "event"),
                plural(keys.len() as u64, "key"),
                severities.join(", ")
            );
            let shown = if max_keys == 0 { keys.len() } else { max_keys };
            for (key, k) in keys.iter().take(shown) {
                let at = match (&k.file, k.line) {
                    (Some(f), Some(l)) => format!(", first at {}:{l}", f.display()),
                    _ => String::new(),
                };
                let _ = writeln!(s, "  {:>7}× {:?} (key {key:?}{at})", k.count, k.example);
            }
            if keys.len() > shown {
                let _ = writeln!(
                    s,
                    "  … {} more keys (--keys 0 shows all, --json too)",
                    keys.len() - shown
                );
            }
        }
        s
    }

    fn json(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let mut v = json!({
                    "path": f.path,
                    "encoding": encoding_name(f.read_as.encoding),
                    "max_line_bytes": f.read_as.max_line_bytes,
                    "watch": f.watch,
                });
                match &f.outcome {
                    Ok(r) => {
                        v["bytes"] = json!(r.bytes);
                        v["lines"] = counts_json(&r.counts);
                        v["events"] = json!(r.events);
                    }
                    Err(e) => v["error"] = json!(e),
                }
                v
            })
            .collect();
        let rules: Vec<Value> = self
            .rule_rows()
            .into_iter()
            .map(|(name, event, hits)| {
                json!({"name": name, "event": event.unwrap_or("ignore"), "lines": hits})
            })
            .collect();
        let events: serde_json::Map<String, Value> = self
            .summary
            .events
            .iter()
            .map(|(name, tally)| {
                let keys: Vec<Value> = tally
                    .keys()
                    .into_iter()
                    .map(|(key, k)| {
                        json!({
                            "key": key,
                            "count": k.count,
                            "severity": k.severity,
                            "source": k.source,
                            "example": k.example,
                            "file": k.file,
                            "line": k.line,
                        })
                    })
                    .collect();
                let mut v = json!({
                    "count": tally.count,
                    "severities": tally
                        .severities
                        .iter()
                        .map(|(sev, n)| (sev.as_str().to_string(), json!(n)))
                        .collect::<serde_json::Map<_, _>>(),
                    "keys": keys,
                });
                match self.destinations(name) {
                    Ok(to) => v["routes"] = json!(to),
                    Err(why) => {
                        v["routes"] = json!([]);
                        v["not_sent"] = json!(why);
                    }
                }
                (name.clone(), v)
            })
            .collect();
        json!({
            "config": self.config.map(|c| &c.file),
            "files": files,
            "bytes": self.summary.bytes,
            "lines": counts_json(&self.summary.counts),
            "rules": rules,
            "events": events,
        })
    }
}

fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn counts_json(c: &Counts) -> Value {
    json!({
        "total": c.lines,
        "error": c.error,
        "warning": c.warning,
        "info": c.info,
        "user": c.user,
        "debug": c.debug,
        "other": c.other,
    })
}
