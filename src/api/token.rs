//! The API's bearer token: the configured one, or one the agent makes for itself.
//!
//! Every API call needs a token, also on loopback: on a shared instrument PC anyone
//! logged in, and any web page open in a browser there, can reach `127.0.0.1`. Without
//! `api.token`/`api.token_file` the agent makes a random token (256 bits from the
//! system's CSPRNG) at its first start in `<state_dir>/api-token`, readable by the
//! agent and the group `protowatch` only (see `private`). The commands of the same
//! config read it from there, with the rights of whoever runs them: membership in the
//! group is what lets a person use the agent.
//!
//! `protowatch api-token --rotate` writes a new one (atomically, by rename); the running
//! agent re-reads the file when a presented token does not match, at most once a second,
//! so a rotation takes effect at the next call without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{Config, Secret};

/// The token's file in the state folder.
pub const TOKEN_FILE: &str = "api-token";

/// How often a mismatch may make the agent read the file again.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(
        "cannot read {}: permission denied — ask to be added to the group {}",
        path.display(), crate::private::GROUP
    )]
    Denied { path: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is empty; `protowatch api-token --rotate` makes a new token", path.display())]
    Empty { path: PathBuf },
    #[error("cannot get random bytes from the system: {0}")]
    Random(String),
}

/// Where the token in force comes from: the audit log names it, never the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Configured,
    Generated,
}

impl Origin {
    pub fn label(self) -> &'static str {
        match self {
            Origin::Configured => "configured",
            Origin::Generated => "generated",
        }
    }
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKEN_FILE)
}

/// Reads the generated token of `state_dir`; `Ok(None)` if there is none yet.
pub fn read(state_dir: &Path) -> Result<Option<Secret>, TokenError> {
    let path = path(state_dir);
    match std::fs::read_to_string(&path) {
        Ok(t) if t.trim().is_empty() => Err(TokenError::Empty { path }),
        Ok(t) => Ok(Some(Secret::new(t.trim()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(TokenError::Denied { path })
        }
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

/// The token a command of `config` presents: the configured one, else the generated
/// one. `Ok(None)` when neither exists (no agent has started with this state folder).
pub fn for_client(config: &Config) -> Result<Option<Secret>, TokenError> {
    match &config.api.token {
        // `api.token_file` that this user may not read: the token is for the group.
        Some(t) if t.is_unread() => Err(TokenError::Denied {
            path: config
                .unreadable_secrets()
                .into_iter()
                .find(|(key, _)| *key == "api.token_file")
                .map(|(_, file)| file.to_path_buf())
                .unwrap_or_default(),
        }),
        Some(t) => Ok(Some(t.clone())),
        None => read(&config.state_dir),
    }
}

/// `bytes` as lower-case hex: the API's tokens, session ids, nonces and MACs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` bytes from the system's random source, as hex.
pub fn random_hex(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// Writes a new random token to `state_dir`, private from its first byte, replacing
/// any other by rename.
pub fn generate(state_dir: &Path) -> Result<Secret, TokenError> {
    let token = random_hex(32).map_err(|e| TokenError::Random(e.to_string()))?;
    let path = path(state_dir);
    let tmp = state_dir.join(format!("{TOKEN_FILE}.new"));
    let write = |source| TokenError::Write {
        path: path.clone(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp).map_err(write)?;
    // Narrowed (and given to the group) before the token is in it.
    crate::private::secure_file(&tmp).map_err(write)?;
    std::io::Write::write_all(&mut f, format!("{token}\n").as_bytes()).map_err(write)?;
    f.sync_all().map_err(write)?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(write)?;
    Ok(Secret::new(token))
}

/// The generated token at the agent's start: the one in the state folder, or a new one;
/// `None` while the config sets its own.
pub fn at_start(config: &Config) -> Result<Option<Secret>, TokenError> {
    if config.api.token.is_some() {
        return Ok(None);
    }
    match read(&config.state_dir)? {
        Some(t) => {
            // A file left wider than it should be (an older release, a copy) is narrowed.
            if let Err(e) = crate::private::secure_file(&path(&config.state_dir)) {
                tracing::warn!(error = %e, "cannot restrict the permissions of the API token file");
            }
            Ok(Some(t))
        }
        None => {
            let t = generate(&config.state_dir)?;
            tracing::info!(file = %path(&config.state_dir).display(), "made an API token");
            Ok(Some(t))
        }
    }
}

/// The token the API checks against: the config's (which follows reloads), else the
/// generated one, following its rotations.
pub struct Tokens {
    state_dir: PathBuf,
    generated: Mutex<Generated>,
}

struct Generated {
    token: Option<Secret>,
    read_at: Option<Instant>,
}

impl Tokens {
    /// `generated`: the token of the state folder, as [`at_start`] found or made it.
    pub fn new(state_dir: &Path, generated: Option<Secret>) -> Tokens {
        Tokens {
            state_dir: state_dir.to_path_buf(),
            generated: Mutex::new(Generated {
                token: generated,
                read_at: Some(Instant::now()),
            }),
        }
    }

    /// Whether `given` is the token in force (`configured`: the config's `api.token`);
    /// which kind it is, if so.
    pub fn check(&self, configured: Option<&Secret>, given: &str) -> Option<Origin> {
        if let Some(t) = configured {
            return constant_time_eq(given.as_bytes(), t.expose().as_bytes())
                .then_some(Origin::Configured);
        }
        let matches = |t: &Option<Secret>| {
            t.as_ref()
                .is_some_and(|t| constant_time_eq(given.as_bytes(), t.expose().as_bytes()))
        };
        let mut g = self.generated.lock().unwrap_or_else(|p| p.into_inner());
        if matches(&g.token) {
            return Some(Origin::Generated);
        }
        if g.read_at.is_some_and(|at| at.elapsed() < RELOAD_EVERY) {
            return None;
        }
        self.reread(&mut g);
        matches(&g.token).then_some(Origin::Generated)
    }

    /// The token in force, for what is derived from it (the console's sessions): the
    /// configured one, else the generated one, read again from its file if that was
    /// more than a second ago, so that a rotation ends the sessions made under the old
    /// one within a second.
    pub fn in_force(&self, configured: Option<&Secret>) -> Option<Secret> {
        if let Some(t) = configured {
            return Some(t.clone());
        }
        let mut g = self.generated.lock().unwrap_or_else(|p| p.into_inner());
        if g.read_at.is_none_or(|at| at.elapsed() >= RELOAD_EVERY) {
            self.reread(&mut g);
        }
        g.token.clone()
    }

    fn reread(&self, g: &mut Generated) {
        g.read_at = Some(Instant::now());
        let fresh = match read(&self.state_dir) {
            Ok(Some(t)) => Some(t),
            // The config lost its token while the agent ran: one of its own, then.
            Ok(None) => generate(&self.state_dir)
                .inspect_err(|e| tracing::warn!(error = %e, "cannot make an API token"))
                .ok(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the API token again");
                None
            }
        };
        if let Some(t) = fresh {
            if g.token
                .as_ref()
                .is_some_and(|old| old.expose() != t.expose())
            {
                tracing::info!("the API token was rotated; the new one is in force");
            }
            g.token = Some(t);
        }
    }
}

/// Equal-length inputs take the same time whatever their content; a length mismatch
/// says only that the length is wrong.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn a_generated_token_is_long_random_private_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let a = generate(dir.path()).unwrap();
        assert_eq!(a.expose().len(), 64, "256 bits in hex");
        assert_eq!(read(dir.path()).unwrap().unwrap().expose(), a.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o007, 0, "not for others: {mode:o}");
        }
        let tokens = Tokens::new(dir.path(), Some(a.clone()));
        assert_eq!(tokens.check(None, a.expose()), Some(Origin::Generated));
        let b = generate(dir.path()).unwrap();
        assert_ne!(a.expose(), b.expose());
        std::thread::sleep(RELOAD_EVERY);
        assert_eq!(
            tokens.check(None, b.expose()),
            Some(Origin::Generated),
            "rotation seen"
        );
        assert_eq!(tokens.check(None, a.expose()), None, "the old one is gone");
    }
}
