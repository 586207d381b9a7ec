//! Values the service sections share: secrets that may be kept out of the file
//! (`<key>_file`, `{"env": "NAME"}`, `{"file": "path"}`) — a Slack or Teams webhook URL is
//! itself the credential, an `Authorization` header or a SciLog password one too — and
//! URLs.
//!
//! Every secret notes where it came from ([`Checker::secret_from`]): `check-config` warns
//! when a secret sits where more people can read it than the agent's user.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Secret;
use super::check::{Checker, join};
use super::forms::{NonBlank, SecretRef, Text};
use super::secret::SecretSource;
use super::section::Field;

/// The secret at `key`, written in the file, or in the file named at `<key>_file`; not
/// both. For a section read into its struct: `inline` is the value of `key`, `file` that
/// of `<key>_file` (its form's problems noted already), `path` the section's.
pub(crate) fn secret_or_file_field<V: InlineSecret>(
    c: &mut Checker,
    inline: Field<V>,
    file: Field<String>,
    key: &str,
    path: &str,
    base: &Path,
) -> Option<Secret> {
    let file_key = format!("{key}_file");
    match (inline, file) {
        (Field::Absent, Field::Given(f)) => {
            read_secret_file(c, &resolve(base, &f), &join(path, &file_key))
        }
        (Field::Given(v), Field::Absent) => {
            if v.text().is_some_and(|s| !s.trim().is_empty()) {
                c.secret_from(
                    join(path, key),
                    SecretSource::Inline {
                        instead: join(path, &file_key),
                    },
                );
            }
            v.read(c, &join(path, key), base)
        }
        (Field::Absent | Field::Wrong, Field::Absent | Field::Wrong) => None,
        _ => {
            c.problem(
                join(path, &file_key),
                format!("set either {key} or {file_key}, not both"),
            );
            None
        }
    }
}

/// A secret's form in the file, beside its `_file`: each section's own (mail's may be
/// empty, for a server without AUTH).
pub(crate) trait InlineSecret {
    /// The text written in the file, if it is one.
    fn text(&self) -> Option<&str>;
    fn read(self, c: &mut Checker, path: &str, base: &Path) -> Option<Secret>;
}

impl InlineSecret for SecretRef {
    fn text(&self) -> Option<&str> {
        self.0.as_str()
    }

    fn read(self, c: &mut Checker, path: &str, base: &Path) -> Option<Secret> {
        self.resolve(c, path, base)
    }
}

/// A secret written as a string that must not be blank (a token).
impl InlineSecret for Text<NonBlank> {
    fn text(&self) -> Option<&str> {
        Some(&self.0)
    }

    fn read(self, _: &mut Checker, _: &str, _: &Path) -> Option<Secret> {
        Some(Secret::new(self.0))
    }
}

/// The secret in the file named at `key` (`mail.password_file`), relative to the
/// config's folder.
pub(crate) fn secret_file(
    c: &mut Checker,
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    base: &Path,
) -> Option<Secret> {
    let f = c.non_empty(map, key, path)?;
    read_secret_file(c, &resolve(base, &f), &join(path, key))
}

fn read_secret_file(c: &mut Checker, file: &Path, json_path: &str) -> Option<Secret> {
    match Secret::from_file(file, json_path) {
        Ok(s) => {
            c.secret_from(json_path, SecretSource::File(file.to_path_buf()));
            Some(s)
        }
        Err(e) if e.is_permission_denied() && c.unreadable_secrets_ok => {
            c.secret_from(json_path, SecretSource::Unreadable(file.to_path_buf()));
            Some(Secret::unread())
        }
        Err(e) => {
            c.problem(json_path, e.detail());
            None
        }
    }
}

/// The keys of a value kept out of the file.
const SECRET_REF: &[&str] = &["env", "file"];

/// A value given in the file (`"…"`), in an environment variable (`{"env": "NAME"}`) or
/// in a file (`{"file": "path"}`, a trailing newline dropped). Never echoed in a problem.
pub(crate) fn secret_value(c: &mut Checker, v: &Value, path: &str, base: &Path) -> Option<Secret> {
    match v {
        Value::String(s) if !s.trim().is_empty() => {
            c.secret_from(
                path,
                SecretSource::Inline {
                    instead: format!("{{\"file\": \"…\"}} at {path}"),
                },
            );
            Some(Secret::new(s.trim()))
        }
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
                (None, Some(_)) => secret_file(c, o, "file", path, base),
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
    parse_http_url(text).map_err(|e| c.problem(path, e)).ok()
}

/// As [`http_url`], the problem returned rather than noted.
pub(crate) fn parse_http_url(text: &str) -> Result<url::Url, String> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
        Ok(u) => Err(format!(
            "expected an http:// or https:// URL with a host, found a {}: URL",
            u.scheme()
        )),
        Err(e) => Err(format!("expected an http:// or https:// URL ({e})")),
    }
}

/// `p` as written in the config, made absolute against the config file's folder `base`.
pub fn resolve(base: &Path, p: &str) -> PathBuf {
    // Windows accepts both separators; one kind reads better in messages and logs.
    #[cfg(windows)]
    let p = &p.replace('/', "\\");
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
