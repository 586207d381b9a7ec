//! Scopes, as every service's section names them: the default scope's name, how a
//! section picks its default, and the message for a scope it does not have.
//!
//! Shared by the sections (which read `default_scope`) and the assembled config (which
//! checks routes against the sections' scopes), so it sits below both.

use super::check::{Checker, join};
use super::section::Field;

/// The scope that the old bot's single `recipients` / `channel-id` become.
pub const DEFAULT_SCOPE: &str = "default";

/// `<service>.default_scope`, `given` as its section's struct read it: the explicit
/// name, which must be one of the service's scopes; else `default` when that scope exists
/// (the old bot's `recipients` / `channel-id`); else none, and then every route entry of
/// the service has to name its scope.
pub fn chosen_default_scope<'a>(
    c: &mut Checker,
    given: Field<String>,
    path: &str,
    service: &str,
    scopes: impl Iterator<Item = &'a String> + Clone,
) -> Option<String> {
    match given {
        Field::Absent => scopes
            .clone()
            .any(|s| s == DEFAULT_SCOPE)
            .then(|| DEFAULT_SCOPE.to_string()),
        Field::Wrong => None,
        Field::Given(name) if scopes.clone().any(|s| *s == name) => Some(name),
        Field::Given(name) => {
            c.problem(
                join(path, "default_scope"),
                unknown_scope(service, &name, scopes),
            );
            None
        }
    }
}

/// The message for a scope name that the service does not have, with the ones it has.
pub fn unknown_scope<S: AsRef<str>>(
    service: &str,
    name: &str,
    scopes: impl IntoIterator<Item = S>,
) -> String {
    let names: Vec<String> = scopes.into_iter().map(|s| s.as_ref().to_string()).collect();
    format!(
        "unknown {service} scope {name:?}; configured scopes: {}",
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    )
}
