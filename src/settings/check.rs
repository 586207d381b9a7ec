//! The list of problems, each with its JSON path, and getters that walk the parsed JSON.
//!
//! serde's derive stops at the first error and cannot say `watch[1].encoding`; operators
//! edit this file by hand and deserve the whole list at once. So every problem goes here,
//! whether met by [`super::section`] (which reads a section with serde and still goes on
//! after a problem) or by the getters below, with which the parts not yet described by a
//! struct (the top level, a secret's `{"env"|"file"}` object, a maintenance window's
//! `match`, which silences read too) walk the `serde_json::Value` itself. Each reports what was expected and what
//! was found; an unknown key's problem is worded by [`super::hint`].

use std::time::Duration;

use serde_json::{Map, Value};

use super::secret::SecretSource;

/// One thing wrong with the config, at one place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `mail.port`, `watch[1].encoding`; empty for the top level.
    pub json_path: String,
    pub message: String,
}

#[derive(Default)]
pub struct Checker {
    pub problems: Vec<Problem>,
    /// Where each secret came from, by the JSON path of its key, in the order read.
    pub secrets: Vec<(String, SecretSource)>,
    /// A secret file this user may not read is noted, not a problem: set for commands
    /// that only talk to the running agent, run by members of the group `protowatch`
    /// who may use the agent but not read its credentials.
    pub unreadable_secrets_ok: bool,
}

/// How a JSON value's type is named in messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// What a duration is expected to be, in problems.
pub(crate) const DURATION: &str =
    "a duration: seconds as a number, or a string like \"90s\", \"10m\", \"24h\", \"2d\"";

impl Checker {
    pub fn problem(&mut self, json_path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            json_path: json_path.into(),
            message: message.into(),
        });
    }

    /// Notes where the secret at `json_path` came from; the first note of a path stands
    /// (a `{"file": …}` read inside a key that has its own `_file` form is one secret).
    pub fn secret_from(&mut self, json_path: impl Into<String>, source: SecretSource) {
        let json_path = json_path.into();
        if !self.secrets.iter().any(|(p, _)| *p == json_path) {
            self.secrets.push((json_path, source));
        }
    }

    pub fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        self.problem(path, format!("expected {expected}, found {}", kind(found)));
    }

    /// `v` as an object whose keys are all in `known`; unknown keys are reported.
    pub fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.wrong_type(path, "an object", v);
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.problem(join(path, key), super::hint::unknown_key(key, known));
            }
        }
        Some(map)
    }

    pub fn string(&mut self, map: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match map.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.wrong_type(&join(path, key), "a string", other);
                None
            }
        }
    }

    /// A string that must not be empty or blank.
    pub fn non_empty(&mut self, map: &Map<String, Value>, key: &str, path: &str) -> Option<String> {
        let s = self.string(map, key, path)?;
        if s.trim().is_empty() {
            self.problem(join(path, key), "expected a non-empty string");
            return None;
        }
        Some(s)
    }
}

/// `"90s"`, `"10m"`, `"24h"`, `"2d"` (also `min`, and fractions): the config's durations,
/// and the API's and commands' (`silences add --duration 2h`).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return None,
    };
    let secs = n * scale;
    (secs.is_finite() && secs <= 1e9).then(|| Duration::from_secs_f64(secs))
}
