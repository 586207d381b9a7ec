//! The `alertmanager` section: the cluster's URLs, extra labels, how often active
//! alerts are posted again. [`File`] describes the section once — its keys, their forms
//! and the schema — and is read with `settings::section`; [`validate`] turns it into the
//! resolved [`AlertmanagerConfig`], whose `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Alertmanager;
use crate::messengers::ServiceConfig;
use crate::settings::check::Checker;
use crate::settings::forms::{
    Span, Text, TextForm, Whole, shown, shown_duration, shown_secs, shown_urls,
};
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::parse_http_url;
use crate::settings::{DEFAULT_SCOPE, mask_url};

/// Alertmanager's default `resolve_timeout` is 5 minutes: a repost interval at or above it
/// would let alerts without an end flicker to resolved between posts.
const MAX_REPOST: Duration = Duration::from_secs(240);

/// Prometheus Alertmanager: alerts, not messages. Each active alert is posted to every
/// URL (as Prometheus does for an HA cluster) and posted again while it lasts.
#[derive(Debug, Clone, Serialize)]
pub struct AlertmanagerConfig {
    /// Base URLs (`http://am1:9093`); alerts go to `<url>/api/v2/alerts`.
    #[serde(serialize_with = "shown_urls")]
    pub urls: Vec<url::Url>,
    /// Added to every alert's own labels (`alertname`, `severity`, `instrument`, `source`,
    /// `key`), which they may not replace.
    pub labels: BTreeMap<String, String>,
    /// How often active alerts are posted again; well inside Alertmanager's
    /// `resolve_timeout` (5 minutes by default), which ends an alert that has no `endsAt`
    /// and is not posted again.
    #[serde(serialize_with = "shown_duration")]
    pub repost_interval: Duration,
    /// The longest one post may take.
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
}

/// The one scope of the `alertmanager` service: every URL gets every alert.
pub const ALERTMANAGER_SCOPE: &str = DEFAULT_SCOPE;

/// The labels every alert posted to Alertmanager carries; configured labels may not use them.
pub const ALERTMANAGER_LABELS: [&str; 5] = ["alertname", "severity", "instrument", "source", "key"];

impl ServiceConfig for AlertmanagerConfig {
    const NAME: &'static str = "alertmanager";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("alertmanager", section::keys::<File>())]
    }
    // Alertmanager gets alert states, not messages: it groups and paces itself, and
    // takes every alert as it is.
    const PER_MINUTE: Option<u32> = None;
    const SHOWN_PER_MESSAGE: usize = usize::MAX;
    // It mirrors alerts until they are dismissed: alarms, not a script's "sample 3 done".
    const ALARMS_ONLY: bool = true;
    type File = File;
    type Messenger = Alertmanager;

    fn load(c: &mut Checker, v: &Value, _base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, validate)
    }

    fn masked(&self) -> Value {
        shown(self)
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

/// What the section says, defaults filled; every problem of its values is noted already.
fn validate(c: &mut Checker, file: File) -> AlertmanagerConfig {
    let urls = file
        .urls
        .required_or(
            c,
            "alertmanager.urls",
            "missing (required): list the Alertmanager URLs",
        )
        .map(|l| l.items.into_iter().map(|u| u.0).collect())
        .unwrap_or_default();
    AlertmanagerConfig {
        urls,
        labels: file
            .labels
            .given()
            .map(|l| l.0.into_iter().map(|(k, v)| (k, v.0)).collect())
            .unwrap_or_default(),
        repost_interval: file
            .repost_interval
            .given()
            .map_or(Duration::from_secs(60), |s| s.0),
        timeout: file
            .timeout_s
            .given()
            .map_or(Duration::from_secs(10), |s| Duration::from_secs(s.0)),
    }
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
    pub urls: Field<List<Text<BaseUrl>, Urls>>,
    /// Labels added to every alert (`alertname`, `severity`, `instrument`, `source` and
    /// `key` are set by protowatch).
    #[serde(default)]
    #[schemars(schema_with = "labels")]
    pub labels: Field<Named<Text<LabelValue>, Labels>>,
    /// How often active alerts are posted again, below Alertmanager's `resolve_timeout`.
    /// Seconds as a number, or a string like `"30s"`, `"1m"`; 1 s to 4 minutes.
    #[serde(default)]
    #[schemars(extend("default" = "60s"))]
    pub repost_interval: Field<Span<1, { MAX_REPOST.as_secs() }>>,
    /// The longest one post may take, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 10))]
    pub timeout_s: Field<Whole<1, 600>>,
}

/// `urls` in problems.
pub struct Urls;

impl Wording for Urls {
    const EXPECTED: &'static str = "a list of Alertmanager URLs";
    const EMPTY: Option<&'static str> = Some("no URLs: list at least one Alertmanager");
}

/// `labels` in problems; a label name is checked before its value.
pub struct Labels;

impl Wording for Labels {
    const EXPECTED: &'static str = "an object mapping label names to values";

    fn key(name: &str) -> Result<(), String> {
        if ALERTMANAGER_LABELS.contains(&name) {
            Err(format!(
                "{name:?} is set by protowatch for every alert; choose another label name"
            ))
        } else if !is_label_name(name) {
            Err(format!(
                "{name:?} is not a label name: letters, digits and _, not starting with a digit (nor with __)"
            ))
        } else {
            Ok(())
        }
    }
}

/// One member's base URL: http(s), with a host, without a query or fragment.
pub struct BaseUrl;

impl TextForm for BaseUrl {
    const EXPECTED: &'static str = "a URL (a string)";
    type Value = url::Url;

    fn parse(text: &str) -> Result<url::Url, String> {
        let u = parse_http_url(text.trim().trim_end_matches('/'))?;
        if u.query().is_some() || u.fragment().is_some() {
            return Err("expected a base URL without ?query or #fragment (alerts go to <url>/api/v2/alerts)".into());
        }
        Ok(u)
    }
}

/// A label's value: a string, not empty.
pub struct LabelValue;

impl TextForm for LabelValue {
    const EXPECTED: &'static str = "a label value (a string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        if text.is_empty() {
            return Err("expected a label value, found an empty string".into());
        }
        Ok(text.to_string())
    }
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
