//! What a silence or a maintenance window applies to: matchers over an event's name,
//! severity, source, key and text.
//!
//! All matchers given must match and none given matches everything (docs/ARCHITECTURE.md,
//! "On call"), the way Alertmanager's silences read. The subject is a borrowed view so
//! that a protocol event, an alert read back from the store and a BEC notification are
//! matched by one function without being converted into each other.

use regex::Regex;
use serde_json::{Map, Value};

use crate::event::Severity;

/// The keys a matcher set may have, as the config, the API and the store write them.
pub const KEYS: [&str; 5] = ["event", "severity_at_most", "source", "key", "text"];

/// Why a matcher set was refused: the key it is at, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("matchers must be an object with any of {keys}", keys = KEYS.join(", "))]
    NotObject,
    #[error("unknown matcher {0:?}: expected one of {keys}", keys = KEYS.join(", "))]
    UnknownKey(String),
    #[error("{0}: expected a non-empty string")]
    NotText(&'static str),
    #[error("severity_at_most: {0}")]
    Severity(String),
    #[error("text: not a valid regular expression: {0}")]
    Regex(String),
}

/// What is matched: the fields an operator can name in a silence.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub event: &'a str,
    pub severity: Severity,
    pub source: Option<&'a str>,
    pub key: &'a str,
    /// The message as it is shown (its subject line and body).
    pub text: &'a str,
}

/// A set of matchers; the empty set matches everything.
#[derive(Debug, Clone, Default)]
pub struct Matchers {
    /// The event's name, exactly (`alarm_major`).
    pub event: Option<String>,
    /// Matches this severity and every lower one: a silence "up to minor" keeps major
    /// alarms coming.
    pub severity_at_most: Option<Severity>,
    /// The protocol's source field, exactly (`detector`).
    pub source: Option<String>,
    /// The alert's key, exactly, as `alerts list` shows it.
    pub key: Option<String>,
    /// A regular expression searched in the text (not anchored, as `grep`).
    pub text: Option<Regex>,
}

impl PartialEq for Matchers {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
            && self.severity_at_most == other.severity_at_most
            && self.source == other.source
            && self.key == other.key
            && self.text.as_ref().map(Regex::as_str) == other.text.as_ref().map(Regex::as_str)
    }
}

impl Matchers {
    pub fn matches(&self, s: &Subject<'_>) -> bool {
        self.event.as_deref().is_none_or(|e| e == s.event)
            && self.severity_at_most.is_none_or(|max| s.severity <= max)
            && self
                .source
                .as_deref()
                .is_none_or(|want| s.source == Some(want))
            && self.key.as_deref().is_none_or(|k| k == s.key)
            && self.text.as_ref().is_none_or(|re| re.is_match(s.text))
    }

    /// Reads `{"event": …, "severity_at_most": …, "source": …, "key": …, "text": …}`.
    pub fn from_json(v: &Value) -> Result<Matchers, MatcherError> {
        let map = v.as_object().ok_or(MatcherError::NotObject)?;
        if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(MatcherError::UnknownKey(k.clone()));
        }
        let text = |key: &'static str| -> Result<Option<String>, MatcherError> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
                Some(_) => Err(MatcherError::NotText(key)),
            }
        };
        let severity_at_most = text("severity_at_most")?
            .map(|s| s.parse::<Severity>())
            .transpose()
            .map_err(|e| MatcherError::Severity(e.to_string()))?;
        let regex = text("text")?
            .map(|t| Regex::new(&t))
            .transpose()
            .map_err(|e| MatcherError::Regex(e.to_string()))?;
        Ok(Matchers {
            event: text("event")?,
            severity_at_most,
            source: text("source")?,
            key: text("key")?,
            text: regex,
        })
    }

    /// What [`Matchers::from_json`] reads back; only the keys given.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                m.insert(k.to_string(), Value::String(v.to_string()));
            }
        };
        put("event", self.event.as_deref());
        put(
            "severity_at_most",
            self.severity_at_most.map(Severity::as_str),
        );
        put("source", self.source.as_deref());
        put("key", self.key.as_deref());
        put("text", self.text.as_ref().map(Regex::as_str));
        Value::Object(m)
    }

    /// True when nothing is named: such a silence holds back everything.
    pub fn is_empty(&self) -> bool {
        self.event.is_none()
            && self.severity_at_most.is_none()
            && self.source.is_none()
            && self.key.is_none()
            && self.text.is_none()
    }

    /// As a user reads it back: `event=alarm_major severity<=minor text~"vacuum"`;
    /// `everything` for the empty set.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(e) = &self.event {
            parts.push(format!("event={e}"));
        }
        if let Some(s) = self.severity_at_most {
            parts.push(format!("severity<={}", s.as_str()));
        }
        if let Some(s) = &self.source {
            parts.push(format!("source={s}"));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key={k}"));
        }
        if let Some(t) = &self.text {
            parts.push(format!("text~{:?}", t.as_str()));
        }
        if parts.is_empty() {
            "everything".to_string()
        } else {
            parts.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(severity: Severity) -> Subject<'static> {
        Subject {
            event: "alarm_major",
            severity,
            source: Some("detector"),
            key: "alarm_major|detector|HV trip",
            text: "HV trip on bank 3",
        }
    }

    #[test]
    fn the_empty_set_matches_everything() {
        let m = Matchers::default();
        assert!(m.is_empty());
        assert!(m.matches(&subject(Severity::Major)));
        assert_eq!(m.describe(), "everything");
    }

    #[test]
    fn every_matcher_given_must_match() {
        let m = Matchers {
            event: Some("alarm_major".into()),
            source: Some("detector".into()),
            text: Some(Regex::new("HV (trip|fault)").unwrap()),
            ..Matchers::default()
        };
        assert!(m.matches(&subject(Severity::Major)));
        let other_source = Subject {
            source: Some("motor"),
            ..subject(Severity::Major)
        };
        assert!(!m.matches(&other_source));
        let no_source = Subject {
            source: None,
            ..subject(Severity::Major)
        };
        assert!(!m.matches(&no_source));
        let other_text = Subject {
            text: "vacuum lost",
            ..subject(Severity::Major)
        };
        assert!(!m.matches(&other_text));
    }

    #[test]
    fn json_reads_back_what_it_wrote_and_names_what_is_wrong() {
        let v = serde_json::json!({"event": "alarm_major", "severity_at_most": "minor", "text": "HV (trip|fault)"});
        let m = Matchers::from_json(&v).unwrap();
        assert_eq!(m.to_json(), v);
        assert_eq!(Matchers::from_json(&m.to_json()).unwrap(), m);
        let e = |v: serde_json::Value| Matchers::from_json(&v).unwrap_err().to_string();
        assert_eq!(
            e(serde_json::json!({"evnt": "x"})),
            "unknown matcher \"evnt\": expected one of event, severity_at_most, source, key, text"
        );
        assert_eq!(
            e(serde_json::json!({"severity_at_most": "huge"})),
            "severity_at_most: unknown severity \"huge\": expected info, warning, minor, major (or OnTakt's INFO, REPORT, WARNING, PROBLEM)"
        );
        assert!(
            e(serde_json::json!({"text": "(unclosed"}))
                .starts_with("text: not a valid regular expression: ")
        );
        assert_eq!(
            e(serde_json::json!({"key": 3})),
            "key: expected a non-empty string"
        );
        assert_eq!(
            e(serde_json::json!(["x"])),
            "matchers must be an object with any of event, severity_at_most, source, key, text"
        );
    }

    #[test]
    fn severity_at_most_spares_what_is_above() {
        let m = Matchers {
            severity_at_most: Some(Severity::Minor),
            ..Matchers::default()
        };
        assert!(m.matches(&subject(Severity::Info)));
        assert!(m.matches(&subject(Severity::Minor)));
        assert!(!m.matches(&subject(Severity::Major)));
        assert_eq!(m.describe(), "severity<=minor");
    }
}
