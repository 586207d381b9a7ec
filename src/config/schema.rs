//! The config file's format as a JSON Schema (`protowatch schema`), for editors to
//! complete and check `config.json` as it is typed.
//!
//! A service's section, and BEC's, is described by its own `File` struct in its module,
//! which the loader reads too (`settings::section`), so that section's schema and loader
//! cannot drift (docs/ARCHITECTURE.md, "Where things live"); so are the agent's own
//! `watch`, `rules`, `routes`, `throttle` and `api`, whose structs are
//! [`super::validate`]'s, and the on-call sections, whose are [`super::oncall`]'s. What is
//! still walked by hand (the top level's own keys, and a window's `match`, read as a
//! silence's is) is described by the types here, which exist only to derive the
//! schema: doc comments become descriptions,
//! `deny_unknown_fields` becomes `"additionalProperties": false`, and `rename` keeps a
//! key's spelling in the file. They derive `Deserialize` too, so that
//! their serde attributes are the ones serde checks. A test holds them to the loader's
//! key lists ([`super::KNOWN_KEYS`]), and the tests in `tests/schema.rs` run both over the
//! same files.
//!
//! Where the loader reads something in more ways than a derive can say (choice words in
//! any case, a port as a number or digits, a duration as seconds or `"10m"`), a
//! `schema_with` function writes the schema by hand; such a field needs serde's `default`
//! and `skip_serializing_if` to stay optional in the schema. Checks across keys (a
//! route's scope must exist) stay the loader's: a schema that accepts a file is no
//! promise the loader does, but a key or a value of the wrong form is caught in the
//! editor.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Service;
use crate::settings::schema::{NON_BLANK, words};

/// The JSON Schema (draft 2020-12) of the config file.
pub fn schema() -> Schema {
    SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(not_null))
        .with_transform(RecursiveTransform(unwrap_descriptions))
        .into_generator()
        .into_root_schema_for::<ConfigFile>()
}

/// The whole file: the top level's own keys, and each service's section from its module
/// (`ServiceConfig::File`), placed after `instrument` where an operator looks for them.
pub struct ConfigFile;

impl JsonSchema for ConfigFile {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConfigFile".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = <TopLevel as JsonSchema>::json_schema(generator);
        let services = Service::schemas(generator);
        if let Some(Value::Object(props)) = schema.get_mut("properties") {
            let own = std::mem::take(props);
            for (key, value) in own {
                let after_instrument = key == "instrument";
                props.insert(key, value);
                if after_instrument {
                    for (name, s) in &services {
                        props.insert((*name).to_string(), s.clone().to_value());
                    }
                }
            }
        }
        schema
    }
}

/// The config of protowatch, which follows the protocol files of a measuring instrument
/// and sends their errors by e-mail, Telegram and the other services. Unknown keys
/// are errors; relative paths resolve against the config file's folder. The old Python bot's file (`mail`
/// with `user`, `password`, `port`, `server`, `recipients`; `telegram` with `bot-id`,
/// `channel-id`) loads unchanged.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "protowatch config")]
pub struct TopLevel {
    /// The instrument's name, shown in every message. Default: the host name.
    #[schemars(pattern(NON_BLANK))]
    pub instrument: Option<String>,
    /// The protocol files to follow, by glob.
    pub watch: Option<Vec<super::validate::Watch>>,
    /// User rules, tried in order before the built-in grammar's mapping; the first whose
    /// pattern matches a line decides what the line makes.
    pub rules: Option<Vec<super::validate::Rule>>,
    /// Event name → where it goes. Without `routes`, every alarm, `scan_interlock` and
    /// `message` goes to every configured service's default scope, and `new_scan` and
    /// `scan_completed` go nowhere. With it, exactly the listed destinations get each event.
    pub routes: Option<BTreeMap<String, Vec<super::validate::RouteFile>>>,
    /// Escalation policies by name, referenced from `routes` with `{"escalate": name}`:
    /// who is told when nobody acknowledges or dismisses an alert in time.
    pub escalation: Option<BTreeMap<String, super::oncall::PolicyFile>>,
    /// Maintenance windows: alarms matching them are recorded and counted, not sent nor
    /// escalated; what is still active when a window ends is sent once.
    pub maintenance: Option<Vec<super::oncall::WindowFile>>,
    /// Handover digests: a summary of the alerts, once a day at a time of day.
    pub digest: Option<Vec<super::oncall::Digest>>,
    pub throttle: Option<super::validate::Throttle>,
    pub api: Option<super::validate::Api>,
    /// Where the state (the SQLite database) is kept.
    #[schemars(pattern(NON_BLANK), extend("default" = ".protowatch"))]
    pub state_dir: Option<String>,
    pub bec: Option<crate::bec::config::File>,
}

/// Matchers of silences and maintenance windows.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// The event's name, exactly.
    #[schemars(pattern(NON_BLANK))]
    pub event: Option<String>,
    /// This severity and every lower one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "severity")]
    pub severity_at_most: Option<String>,
    /// The protocol's source field, exactly.
    #[schemars(pattern(NON_BLANK))]
    pub source: Option<String>,
    /// The alert's key, exactly.
    #[schemars(pattern(NON_BLANK))]
    pub key: Option<String>,
    /// A regular expression searched in the message.
    #[schemars(pattern(NON_BLANK))]
    pub text: Option<String>,
}

/// Optional keys may be left out, but the loader takes no `null` for them: schemars's
/// `Option` says "or null", which this takes back out of every subschema.
fn not_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    let null = json!({"type": "null"});
    if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
        any.retain(|s| *s != null);
        if any.len() == 1
            && let Some(Value::Object(only)) = any.pop()
        {
            obj.remove("anyOf");
            for (k, v) in only {
                obj.entry(k).or_insert(v);
            }
        }
    }
}

/// Doc comments are wrapped at 90 columns; an editor's hover wraps by itself, so only
/// paragraph breaks are kept.
fn unwrap_descriptions(schema: &mut Schema) {
    if let Some(Value::String(d)) = schema.get_mut("description") {
        *d = d
            .split("\n\n")
            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
}

pub(super) fn service(_: &mut SchemaGenerator) -> Schema {
    words(&Service::ALL.map(|s| s.as_str()), false)
}

/// Each paced service by name, with its default.
pub(super) fn per_minute(_: &mut SchemaGenerator) -> Schema {
    let props: serde_json::Map<String, Value> = Service::ALL
        .into_iter()
        .filter_map(|s| {
            let default = s.default_per_minute()?;
            Some((
                s.as_str().to_string(),
                json!({"type": "integer", "minimum": 1, "maximum": 10_000, "default": default,
                       "description": format!("To one {s} scope.")}),
            ))
        })
        .collect();
    json_schema!({
        "type": "object",
        "properties": props,
        "additionalProperties": false,
    })
}

pub(super) fn severity(_: &mut SchemaGenerator) -> Schema {
    words(
        &[
            "info", "warning", "minor", "major", "report", "problem", "warn",
        ],
        true,
    )
}

/// A rule's severity may be left out only when it silences lines.
pub(super) fn rule_rules(schema: &mut Schema) {
    schema.insert(
        "if".into(),
        json!({"properties": {"event": {"const": "ignore"}}}),
    );
    schema.insert("else".into(), json!({"required": ["severity"]}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KNOWN_KEYS;

    /// The object schema at a path of [`KNOWN_KEYS`] (`watch[]`, `routes.*[]`), following
    /// `$ref`s into `$defs`.
    fn object_at<'s>(root: &'s Value, path: &str) -> &'s serde_json::Map<String, Value> {
        let resolve = |v: &'s Value| -> &'s Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.trim_start_matches("#/$defs/");
                    &root["$defs"][name]
                }
                None => v,
            }
        };
        let mut at = root;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, list) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            at = if key == "*" {
                resolve(&at["additionalProperties"])
            } else {
                resolve(&at["properties"][key])
            };
            if list {
                at = resolve(&at["items"]);
            }
        }
        at.as_object()
            .unwrap_or_else(|| panic!("no object schema at {path:?}"))
    }

    #[test]
    fn the_schema_has_exactly_the_loaders_keys() {
        let root = schema().to_value();
        for (path, keys) in KNOWN_KEYS {
            let obj = object_at(&root, path);
            let mut have: Vec<&str> = obj["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{path:?} has no properties"))
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = keys.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            assert_eq!(have, want, "keys of {path:?}");
            assert_eq!(
                obj.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{path:?} must refuse unknown keys"
            );
        }
    }

    #[test]
    fn nothing_takes_null() {
        let text = schema().to_value().to_string();
        assert!(!text.contains("\"null\""), "{text}");
    }

    #[test]
    fn choice_words_in_any_case() {
        let s = words(&["utf-8", "auto"], false).to_value();
        let pattern = s["anyOf"][1]["pattern"].as_str().unwrap();
        let re = regex::Regex::new(pattern).unwrap();
        assert!(re.is_match("UTF-8") && re.is_match("Auto"));
        assert!(!re.is_match("utf8") && !re.is_match(" auto"));
    }
}
