//! The `alertmanager` section: the cluster's URLs, extra labels, how often active
//! alerts are posted again; its masked view and its schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Alertmanager;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, index, join};
use crate::settings::schema::duration;
use crate::settings::values::http_url;
use crate::settings::{DEFAULT_SCOPE, mask_url};

const ALERTMANAGER: &[&str] = &["urls", "labels", "repost_interval", "timeout_s"];

/// Alertmanager's default `resolve_timeout` is 5 minutes: a repost interval at or above it
/// would let alerts without an end flicker to resolved between posts.
const MAX_REPOST: Duration = Duration::from_secs(240);

/// Prometheus Alertmanager: alerts, not messages. Each active alert is posted to every
/// URL (as Prometheus does for an HA cluster) and posted again while it lasts.
#[derive(Debug, Clone)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://am1:9093`); alerts go to `<url>/api/v2/alerts`.
    pub urls: Vec<url::Url>,
    /// Added to every alert's own labels (`alertname`, `severity`, `instrument`, `source`,
    /// `key`), which they may not replace.
    pub labels: BTreeMap<String, String>,
    /// How often active alerts are posted again; well inside Alertmanager's
    /// `resolve_timeout` (5 minutes by default), which ends an alert that has no `endsAt`
    /// and is not posted again.
    pub repost_interval: Duration,
    /// The longest one post may take.
    pub timeout: Duration,
}

/// The one scope of the `alertmanager` service: every URL gets every alert.
pub const ALERTMANAGER_SCOPE: &str = DEFAULT_SCOPE;

/// The labels every alert posted to Alertmanager carries; configured labels may not use them.
pub const ALERTMANAGER_LABELS: [&str; 5] = ["alertname", "severity", "instrument", "source", "key"];

impl ServiceConfig for AlertmanagerConfig {
    const NAME: &'static str = "alertmanager";
    const KEYS: &'static [(&'static str, &'static [&'static str])] =
        &[("alertmanager", ALERTMANAGER)];
    // Alertmanager gets alert states, not messages: it groups and paces itself, and
    // takes every alert as it is.
    const PER_MINUTE: Option<u32> = None;
    const SHOWN_PER_MESSAGE: usize = usize::MAX;
    // It mirrors alerts until they are dismissed: alarms, not a script's "sample 3 done".
    const ALARMS_ONLY: bool = true;
    type File = File;
    type Messenger = Alertmanager;

    fn load(c: &mut Checker, v: &Value, _base: &Path) -> Option<Self> {
        alertmanager(c, v)
    }

    fn masked(&self) -> Value {
        let urls: Vec<String> = self.urls.iter().map(|u| mask_url(u.as_str())).collect();
        json!({
            "urls": urls,
            "labels": self.labels,
            "repost_interval": crate::settings::duration_text(self.repost_interval),
            "timeout_s": self.timeout.as_secs(),
        })
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        let urls: Vec<&str> = self.urls.iter().map(url::Url::as_str).collect();
        vec![("alertmanager.urls", urls.join("\n"))]
    }

    fn scopes(&self) -> Vec<&str> {
        vec![ALERTMANAGER_SCOPE]
    }

    fn default_scope(&self) -> Option<&str> {
        Some(ALERTMANAGER_SCOPE)
    }

    fn reaches(&self, _scope: &str) -> String {
        let urls: Vec<String> = self.urls.iter().map(|u| mask_url(u.as_str())).collect();
        urls.join(", ")
    }

    fn messenger(&self) -> Result<Alertmanager, String> {
        Alertmanager::new(self)
    }
}

fn alertmanager(c: &mut Checker, v: &Value) -> Option<AlertmanagerConfig> {
    let p = "alertmanager";
    let a = c.object(v, p, ALERTMANAGER)?;
    let up = join(p, "urls");
    let mut urls = Vec::new();
    match a.get("urls") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let ip = index(&up, i);
                match item.as_str() {
                    Some(s) => match http_url(c, s.trim().trim_end_matches('/'), &ip) {
                        Some(u) if u.query().is_some() || u.fragment().is_some() => c.problem(
                            &ip,
                            "expected a base URL without ?query or #fragment (alerts go to <url>/api/v2/alerts)",
                        ),
                        Some(u) => urls.push(u),
                        None => {}
                    },
                    None => c.wrong_type(&ip, "a URL (a string)", item),
                }
            }
        }
        Some(Value::Array(_)) => c.problem(&up, "no URLs: list at least one Alertmanager"),
        Some(other) => c.wrong_type(&up, "a list of Alertmanager URLs", other),
        None => c.problem(&up, "missing (required): list the Alertmanager URLs"),
    }
    let mut labels = BTreeMap::new();
    match a.get("labels") {
        None => {}
        Some(Value::Object(obj)) => {
            for (name, value) in obj {
                let lp = join(&join(p, "labels"), name);
                if ALERTMANAGER_LABELS.contains(&name.as_str()) {
                    c.problem(
                        &lp,
                        format!("{name:?} is set by protowatch for every alert; choose another label name"),
                    );
                    continue;
                }
                if !is_label_name(name) {
                    c.problem(
                        &lp,
                        format!("{name:?} is not a label name: letters, digits and _, not starting with a digit (nor with __)"),
                    );
                    continue;
                }
                match value.as_str() {
                    Some(s) if !s.is_empty() => {
                        labels.insert(name.clone(), s.to_string());
                    }
                    Some(_) => c.problem(&lp, "expected a label value, found an empty string"),
                    None => c.wrong_type(&lp, "a label value (a string)", value),
                }
            }
        }
        Some(other) => c.wrong_type(
            &join(p, "labels"),
            "an object mapping label names to values",
            other,
        ),
    }
    let repost_interval = c
        .duration(a, "repost_interval", p, Duration::from_secs(1), MAX_REPOST)
        .unwrap_or(Duration::from_secs(60));
    let timeout = c.uint(a, "timeout_s", p, 1, 600);
    Some(AlertmanagerConfig {
        urls,
        labels,
        repost_interval,
        timeout: timeout.map_or(Duration::from_secs(10), Duration::from_secs),
    })
}

/// Prometheus' label names: `[a-zA-Z_][a-zA-Z0-9_]*`, `__` reserved for internal use.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

/// Prometheus Alertmanager (API v2): alerts are posted to every URL while they are active,
/// and resolved when dismissed or expired.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Alertmanager")]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Base URLs of the cluster's members, e.g. `http://am1:9093`.
    #[schemars(extend("minItems" = 1))]
    pub urls: Vec<String>,
    /// Labels added to every alert (`alertname`, `severity`, `instrument`, `source` and
    /// `key` are set by protowatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// How often active alerts are posted again, below Alertmanager's `resolve_timeout`.
    /// Seconds as a number, or a string like `"30s"`, `"1m"`; 1 s to 4 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "repost_interval", extend("default" = "60s"))]
    pub repost_interval: Option<Value>,
    /// The longest one post may take, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 10))]
    pub timeout_s: Option<u64>,
}

fn labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": {
            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
            "not": {"enum": ["alertname", "severity", "instrument", "source", "key"]},
        },
        "additionalProperties": {"type": "string", "minLength": 1},
    })
}

fn repost_interval(_: &mut SchemaGenerator) -> Schema {
    duration(1, 240)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        assert!(is_label_name("facility") && is_label_name("_x1"));
        assert!(!is_label_name("1x") && !is_label_name("a-b") && !is_label_name("__name"));
        assert!(!is_label_name(""));
    }
}
