//! The settings toolkit: what every config section is read, checked, described and
//! shown with — the checker that collects problems by JSON path, the reader of a section
//! from its one typed struct ([`section`]) and the value forms its fields take
//! ([`forms`], [`legacy`]), value readers for the sections still walked by hand,
//! durations, secrets and their one file reader (`Secret::from_file`), schema pieces,
//! masking, the scope rules all sections share, and the hints a problem may carry
//! ([`hint`]: "did you mean …" for an unknown key, the JSON way of writing a Windows
//! path).
//!
//! It is the bottom of the config's layers (docs/ARCHITECTURE.md, "Layers"): it names no
//! section and imports nothing of the crate above it, so each service and the BEC bridge
//! can own its section by importing this alone, and the assembled `config::Config` is
//! built above them from their sections. A helper that needs to know a section belongs
//! to that section, not here.

pub mod check;
pub mod forms;
pub mod hint;
pub mod legacy;
pub mod placeholder;
pub mod schema;
mod scope;
mod secret;
pub mod section;
pub mod values;

use std::time::Duration;

pub use check::Problem;
pub use scope::{DEFAULT_SCOPE, chosen_default_scope, unknown_scope};
pub use secret::{Secret, SecretFileError, SecretFileProblem, SecretSource};
pub use values::resolve;

/// Default `timeout_s` of the services that send messages.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A URL as `check-config` may show it: scheme and host, the rest masked. Webhook URLs
/// carry their token in the path, and any URL may carry a password.
pub fn mask_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() == "/" && u.query().is_none() {
                ""
            } else {
                "/********"
            };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => Secret::MASK.to_string(),
    }
}

/// A duration as the config writes it: `"24h"`, `"10m"`, `"90s"`, `"2d"`, `"0s"` — the
/// largest whole unit, so `check-config` shows what the book (docs/src/configuration.md) and the operator wrote.
pub fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        // "24h" reads better than "1d"; whole days from two on.
        s if s % 86_400 == 0 && s >= 2 * 86_400 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A URL with the password it may carry (`https://user:pw@host/`) masked, the rest as
/// it is: for URLs whose path is no secret (a self-hosted Bot API's).
pub fn mask_password(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some(Secret::MASK));
            u.to_string()
        }
        Ok(_) => text.to_string(),
        Err(_) => Secret::MASK.to_string(),
    }
}

/// The machine's host name, for the default `instrument` and `mail.from`.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
