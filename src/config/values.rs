//! Values the service sections share: secrets that may be kept out of the file
//! (`{"env": "NAME"}`, `{"file": "path"}`) — a Slack or Teams webhook URL is itself the
//! credential, an `Authorization` header or a SciLog password one too — and URLs.

use std::path::Path;

use serde_json::Value;

use super::Secret;
use super::check::{Checker, join};
use super::validate::resolve;

/// The keys of a value kept out of the file.
const SECRET_REF: &[&str] = &["env", "file"];

/// A value given in the file (`"…"`), in an environment variable (`{"env": "NAME"}`) or
/// in a file (`{"file": "path"}`, a trailing newline dropped). Never echoed in a problem.
pub(crate) fn secret_value(c: &mut Checker, v: &Value, path: &str, base: &Path) -> Option<Secret> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
        Value::String(_) => {
            c.problem(path, "expected a value, found an empty string");
            None
        }
        Value::Object(_) => {
            let o = c.object(v, path, SECRET_REF)?;
            match (o.get("env"), o.get("file")) {
                (Some(_), None) => {
                    let name = c.non_empty(o, "env", path)?;
                    match std::env::var(&name) {
                        Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                        Ok(_) => {
                            c.problem(
                                join(path, "env"),
                                format!("the environment variable {name} is empty"),
                            );
                            None
                        }
                        Err(_) => {
                            c.problem(
                                join(path, "env"),
                                format!("the environment variable {name} is not set"),
                            );
                            None
                        }
                    }
                }
                (None, Some(_)) => {
                    let f = c.non_empty(o, "file", path)?;
                    let file = resolve(base, &f);
                    match std::fs::read_to_string(&file) {
                        Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                        Ok(_) => {
                            c.problem(join(path, "file"), format!("{} is empty", file.display()));
                            None
                        }
                        Err(e) => {
                            c.problem(
                                join(path, "file"),
                                format!("cannot read {}: {e}", file.display()),
                            );
                            None
                        }
                    }
                }
                _ => {
                    c.problem(path, "expected exactly one of \"env\" or \"file\"");
                    None
                }
            }
        }
        other => {
            c.wrong_type(
                path,
                "a string, {\"env\": \"NAME\"} or {\"file\": \"path\"}",
                other,
            );
            None
        }
    }
}

/// An http(s) URL with a host. The text is not echoed: it may hold a token.
pub(crate) fn http_url(c: &mut Checker, text: &str, path: &str) -> Option<url::Url> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            c.problem(
                path,
                format!(
                    "expected an http:// or https:// URL with a host, found a {}: URL",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            c.problem(path, format!("expected an http:// or https:// URL ({e})"));
            None
        }
    }
}
