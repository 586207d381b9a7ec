//! `protowatch check-config [--probe]`: every problem at once, or the resolved config with
//! secrets masked — what an operator runs after editing the file by hand.
//!
//! `--probe` then asks each configured service whether it would take a message, one line
//! per step (`messengers::probe`), and sends nothing: the config can be right and the
//! password, the certificate or the chat id still wrong. A failed step is exit 1, as a
//! refused delivery is; a config that does not load is 2 before anything is probed.
//!
//! What loads but looks wrong (a watch folder that does not exist, a secret more people
//! can read than the agent) is a warning on stderr and keeps exit 0: the administrator may
//! mean it (a share mounted later), and the last line counts the warnings so an `OK` is
//! not read past them.

use clap::Args as ClapArgs;

use super::{Cli, CliError, runtime};
use crate::messengers::Messengers;
use crate::watcher::discovery;

#[derive(Debug, Default, ClapArgs)]
pub struct Args {
    /// Then connect to each service as a send would and report each step; nothing is
    /// sent: SMTP up to AUTH and QUIT, Telegram's getMe and getChat, SciLog's login and
    /// logbooks, Signal's account and groups, Alertmanager's status, a webhook's host
    #[arg(long)]
    pub probe: bool,
}

/// What makes a config that loads unusable for the agent: `check-config` and `run`
/// refuse it alike (exit 2).
pub fn refusals(config: &crate::config::Config) -> Result<(), CliError> {
    let mut problems = Vec::new();
    if !config.has_service() {
        problems.push(format!(
            "{}: no service configured: add a {} section, or nothing will be sent",
            config.file.display(),
            crate::messengers::section_names()
        ));
    }
    if let Some(p) = state_dir_problem(&config.state_dir) {
        problems.push(format!("{}: state_dir: {p}", config.file.display()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::usage(problems.join("\n")))
    }
}

/// Whether the agent could keep its state in `dir`: a folder (or one it can create) it
/// can write to. Tried with a file of its own, which says what permission bits cannot
/// (ACLs, a read-only mount, root).
fn state_dir_problem(dir: &std::path::Path) -> Option<String> {
    let mut existing = dir;
    while !existing.exists() {
        existing = existing.parent()?;
    }
    match std::fs::metadata(existing) {
        Ok(m) if !m.is_dir() => {
            return Some(format!(
                "{} is a file, not a folder: point state_dir at a folder",
                existing.display()
            ));
        }
        Ok(_) => {}
        Err(e) => return Some(format!("cannot look at {}: {e}", existing.display())),
    }
    let probe = existing.join(format!(".protowatch-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!(
            "cannot write in {} ({e}): the agent keeps its database there; make it writable for the agent's user",
            existing.display()
        )),
    }
}

pub fn run(cli: &Cli, args: &Args) -> Result<(), CliError> {
    let config = cli.load_config()?;
    refusals(&config)?;
    // `--probe` shows its table alone; the resolved config is `check-config`'s own output.
    if !args.probe {
        let text = serde_json::to_string_pretty(&config.masked_json())
            .map_err(|e| CliError::failed(e.to_string()))?;
        outln!("{text}");
    }
    let mut warnings = 0;
    for (i, w) in config.watch.iter().enumerate() {
        if !discovery::matches(&w.path).is_empty() {
            continue;
        }
        // A folder that is not there is most often a typo: a warning that shows its
        // neighbours, not a note. It stays a warning (exit 0): the folder may be made
        // later (a share mounted at boot), and the agent watches it from then on.
        let (folder, _) = discovery::base_dir(&w.path);
        let missing = std::fs::metadata(&folder)
            .err()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        if missing {
            warnings += 1;
            eprintln!(
                "warning: watch[{i}].path {:?}: {}",
                w.path,
                discovery::never_there_nearby(&folder)
            );
        } else {
            eprintln!(
                "note: watch[{i}].path {:?} matches no file yet; the agent will pick files up when they appear",
                w.path
            );
        }
    }
    for warning in secret_warnings(&config) {
        warnings += 1;
        eprintln!("warning: {warning}");
    }
    match warnings {
        0 => eprintln!("{}: OK", config.file.display()),
        1 => eprintln!("{}: OK, with the warning above", config.file.display()),
        n => eprintln!("{}: OK, with the {n} warnings above", config.file.display()),
    }
    if args.probe {
        probe(&config)?;
    }
    Ok(())
}

/// Secrets that more people can read than the agent's user: written in a config that the
/// group (or everyone) may read, or in a file that they may. Warnings, not errors — the
/// agent works either way, and only the administrator can say whether those readers are
/// meant to hold the credentials. The API's token is the exception: it is the permission
/// to use the agent, for the group by design, and only warned about when everyone may
/// read it.
fn secret_warnings(config: &crate::config::Config) -> Vec<String> {
    use crate::config::SecretSource;
    use crate::private::{Readers, readable_by_others};
    let for_the_group = |key: &str| key.starts_with("api.");
    let too_many =
        |key: &str, readers: &Readers| *readers == Readers::Everyone || !for_the_group(key);
    let in_config = readable_by_others(&config.file);
    let mut out = Vec::new();
    for (key, source) in &config.secrets {
        match source {
            SecretSource::Inline { instead } => {
                if let Some(readers) = in_config.as_ref().filter(|r| too_many(key, r)) {
                    out.push(format!(
                        "{} is readable by {readers} and holds {key}: move the secret to {instead}, \
                         a file readable by the agent's user only",
                        config.file.display()
                    ));
                }
            }
            SecretSource::File(file) => {
                if let Some(readers) = readable_by_others(file).filter(|r| too_many(key, r)) {
                    out.push(format!(
                        "{key}: {} is readable by {readers}: make it readable by the agent's \
                         user only (owned by that user, mode 0600)",
                        file.display()
                    ));
                }
            }
            SecretSource::Unreadable(_) => {}
        }
    }
    out
}

fn probe(config: &crate::config::Config) -> Result<(), CliError> {
    let rt = runtime()?;
    // The mail transport's connection pool starts a task on the runtime it is built in.
    let _runtime = rt.enter();
    let messengers = Messengers::from_config(config).map_err(|e| CliError::usage(e.to_string()))?;
    let (mut checks, mut failed) = (0, 0);
    rt.block_on(messengers.probe(&mut |check| {
        checks += 1;
        if check.is_failed() {
            failed += 1;
        }
        outln!("{check}");
    }));
    if failed > 0 {
        return Err(CliError::failed(format!(
            "probe: {failed} of {checks} checks failed"
        )));
    }
    eprintln!("probe: all {checks} checks passed; nothing was sent");
    Ok(())
}
