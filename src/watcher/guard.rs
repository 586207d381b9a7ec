//! What a `watch` entry may open: the line between "whoever can write a protocol file"
//! and "whatever the agent can read".
//!
//! The protocol folder is often writable by every user of the instrument PC, while the
//! agent runs with rights of its own (its state folder, its config and tokens, and on a
//! careless set-up far more). Anything the watcher reads goes out to mail, Telegram and
//! webhooks, so a name in the folder must not become a way to read files the writer
//! could not read, or to stop the watcher. This module owns the checks made before and
//! after a protocol file is opened:
//!
//! - **Links stay inside.** The file a match really is (its canonical path, links and
//!   `..` resolved) must lie under the entry's base folder (the glob's part without
//!   wildcards), unless `watch[].follow_links` says links may lead anywhere.
//! - **Never the agent's own.** Nothing in the state folder and never the config file,
//!   by canonical path and by file identity (a hard link has another path), whatever
//!   `follow_links` says.
//! - **Regular files only, checked on the handle.** Discovery's `stat` is a look at the
//!   name, and the name can change before the open: the type is checked again with
//!   `fstat` on the opened handle (see [`super::identity::open_shared`], which opens
//!   without blocking), and the handle must be the very file that was checked.
//!
//! The checks are cheap (a `canonicalize`, a few `stat`s) and are made once per file
//! when it starts to be followed; a followed file is reopened only after checking that
//! it is still the same file.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::discovery::{self, Skipped};
use super::identity::{self, FileId};

/// How long the identities of the agent's own files are taken as known before they are
/// looked up again: a scan that starts to follow thousands of files asks once, and a
/// file the agent creates later is caught by its path anyway.
const OWN_IDS_FRESH: Duration = Duration::from_secs(5);

/// The files the agent keeps for itself, which no `watch` may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Own {
    /// The state folder: the database, the API token, the state id, the lock.
    pub state_dir: Option<PathBuf>,
    /// The config file.
    pub config_file: Option<PathBuf>,
}

/// Why a match is not opened. Each is named once in a warning, then skipped at every
/// scan for as long as it holds.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "a symbolic link to {} — outside the watched folder {}; set watch[].follow_links to follow links out of it",
        target.display(),
        base.display()
    )]
    Outside { target: PathBuf, base: PathBuf },
    #[error("{} — {what}, which the agent keeps for itself and never reads as a protocol", target.display())]
    AgentOwn { target: PathBuf, what: &'static str },
    #[error("{} (only regular files are read)", .0.as_str())]
    NotRegular(Skipped),
    /// The name changed between the look and the open (a link flipped, a file replaced):
    /// not an error, tried again at the next scan.
    #[error("changed while it was being opened")]
    Changed,
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl Refused {
    /// Whether this is a verdict on the file (warned about once), not a passing state.
    pub fn is_verdict(&self) -> bool {
        matches!(
            self,
            Refused::Outside { .. } | Refused::AgentOwn { .. } | Refused::NotRegular(_)
        )
    }

    /// The refusal an I/O error from [`identity::open_shared`] carries, if it is one.
    pub fn from_io(e: io::Error) -> Refused {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<NotRegular>())
        {
            Some(NotRegular(kind)) => Refused::NotRegular(*kind),
            None => Refused::Io(e),
        }
    }
}

/// The error inside the `io::Error` of an open that found no regular file.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{} (only regular files are read)", .0.as_str())]
pub struct NotRegular(pub Skipped);

impl NotRegular {
    /// As an `io::Error`, so that every opener of protocol files can return it.
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, self)
    }
}

/// What a file turned out to be before it was opened: where it really is, and which
/// file that is.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub target: PathBuf,
    pub id: FileId,
}

/// The checks of one `watch` entry.
pub struct Guard {
    /// The glob's fixed folder, as configured.
    base: PathBuf,
    follow_links: bool,
    own: Own,
    /// Canonical paths and identities of the agent's own files, and when they were
    /// looked up.
    own_seen: Option<(OwnSeen, Instant)>,
}

#[derive(Debug, Default)]
struct OwnSeen {
    state_dir: Option<PathBuf>,
    config_file: Option<PathBuf>,
    ids: HashSet<FileId>,
}

impl Guard {
    pub fn new(pattern: &str, follow_links: bool, own: Own) -> Guard {
        let (base, _) = discovery::base_dir(pattern);
        Guard {
            base,
            follow_links,
            own,
            own_seen: None,
        }
    }

    /// Checks `path` (whose `stat` gave `listed`) before it is opened.
    pub fn admit(&mut self, path: &Path, listed: FileId) -> Result<Admitted, Refused> {
        let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        // The base resolved now, not once: a share mounted again, a folder replaced.
        let (target, base) = match (
            std::fs::canonicalize(path),
            std::fs::canonicalize(&self.base),
        ) {
            (Ok(target), Ok(base)) => (target, base),
            // A link that cannot be resolved is not followed.
            (Err(e), _) | (_, Err(e)) if link => return Err(e.into()),
            // Some network file systems (on Windows) cannot resolve paths: a name that is
            // no link is what the listing found under the base, and is taken as it is.
            _ => (path.to_path_buf(), self.base.clone()),
        };
        let meta = std::fs::metadata(&target)?;
        // The listing took only regular files: anything else now is a name that changed
        // since (looked at again at the next scan, where the listing tells).
        let id = identity::id_of(&target, &meta).map_err(Refused::from_io)?;
        if id != listed || !meta.is_file() {
            return Err(Refused::Changed);
        }
        if let Some(what) = self.own_file(&target, id) {
            return Err(Refused::AgentOwn { target, what });
        }
        if !self.follow_links && !target.starts_with(&base) {
            return Err(Refused::Outside {
                target,
                base: self.base.clone(),
            });
        }
        Ok(Admitted { target, id })
    }

    /// Which of the agent's own files `target` (canonical, identity `id`) is, if any.
    fn own_file(&mut self, target: &Path, id: FileId) -> Option<&'static str> {
        let stale = self
            .own_seen
            .as_ref()
            .is_none_or(|(_, at)| at.elapsed() >= OWN_IDS_FRESH);
        if stale {
            self.own_seen = Some((self.look_up_own(), Instant::now()));
        }
        let (seen, _) = self.own_seen.as_ref()?;
        if seen
            .state_dir
            .as_ref()
            .is_some_and(|d| target.starts_with(d))
        {
            return Some("in the agent's state folder");
        }
        if seen.config_file.as_deref() == Some(target) {
            return Some("the agent's config file");
        }
        // Another name of the same file (a hard link).
        seen.ids
            .contains(&id)
            .then_some("the same file as one of the agent's own (config or state)")
    }

    fn look_up_own(&self) -> OwnSeen {
        let mut seen = OwnSeen::default();
        if let Some(dir) = &self.own.state_dir {
            seen.state_dir = std::fs::canonicalize(dir).ok();
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if let Ok(meta) = std::fs::metadata(&path)
                        && meta.is_file()
                        && let Ok(id) = identity::id_of(&path, &meta)
                    {
                        seen.ids.insert(id);
                    }
                }
            }
        }
        if let Some(file) = &self.own.config_file {
            seen.config_file = std::fs::canonicalize(file).ok();
            if let Ok(meta) = std::fs::metadata(file)
                && let Ok(id) = identity::id_of(file, &meta)
            {
                seen.ids.insert(id);
            }
        }
        seen
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn listed(path: &Path) -> FileId {
        identity::path_id(path).unwrap()
    }

    #[test]
    fn links_out_of_the_base_and_the_agents_own_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("p/sub")).unwrap();
        std::fs::create_dir_all(root.join("state")).unwrap();
        std::fs::write(root.join("p/a.log"), "a\n").unwrap();
        std::fs::write(root.join("p/sub/b"), "b\n").unwrap();
        std::fs::write(root.join("secret"), "s\n").unwrap();
        std::fs::write(root.join("config.json"), "{}").unwrap();
        std::fs::write(root.join("state/api-token"), "t").unwrap();
        let link = |to: &str, name: &str| {
            std::os::unix::fs::symlink(root.join(to), root.join("p").join(name)).unwrap();
            root.join("p").join(name)
        };
        let inside = link("p/sub/b", "inside.log");
        let outside = link("secret", "outside.log");
        let token = link("state/api-token", "token.log");
        let config = link("config.json", "config.log");
        let hard = root.join("p/hard.log");
        std::fs::hard_link(root.join("config.json"), &hard).unwrap();
        let own = Own {
            state_dir: Some(root.join("state")),
            config_file: Some(root.join("config.json")),
        };
        let pattern = format!("{}/*.log", root.join("p").display());
        let mut g = Guard::new(&pattern, false, own.clone());
        assert!(
            g.admit(&root.join("p/a.log"), listed(&root.join("p/a.log")))
                .is_ok()
        );
        assert!(g.admit(&inside, listed(&inside)).is_ok());
        assert!(matches!(
            g.admit(&outside, listed(&outside)),
            Err(Refused::Outside { .. })
        ));
        let mut g = Guard::new(&pattern, true, own);
        assert!(g.admit(&outside, listed(&outside)).is_ok());
        for own in [&token, &config, &hard] {
            assert!(
                matches!(g.admit(own, listed(own)), Err(Refused::AgentOwn { .. })),
                "{}",
                own.display()
            );
        }
        // The name now is another file than the one listed.
        assert!(matches!(
            g.admit(&inside, listed(&outside)),
            Err(Refused::Changed)
        ));
    }
}
