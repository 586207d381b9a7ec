//! The `signal` section: where the Signal gateway is and which of the two it is, the
//! account's number, and per scope a group or a list of numbers. [`File`] describes the
//! section once — keys, forms, schema — and is read with `settings::section`;
//! [`validate`] checks across keys, making the resolved [`SignalConfig`], whose
//! `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::Signal;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::forms::{
    Checked, Choices, NonBlank, Text, TextForm, ValueForm, Whole, Word, shown, shown_secs,
    shown_url,
};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::parse_http_url;
use crate::settings::{DEFAULT_SEND_TIMEOUT, chosen_default_scope};

/// Which gateway `signal.url` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// bbernhard's signal-cli-rest-api: `POST /v2/send`.
    Rest,
    /// signal-cli's own HTTP daemon (`signal-cli daemon --http`): JSON-RPC at
    /// `/api/v1/rpc`, what BEC's Atlas talks to.
    JsonRpc,
}

impl Choices for Api {
    const CHOICES: &'static [(&'static str, Api)] =
        &[("rest", Api::Rest), ("jsonrpc", Api::JsonRpc)];
}

impl Serialize for Api {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::JsonRpc => "jsonrpc",
        }
    }
}

/// Where one scope's messages go: one group, or numbers — never both in one request,
/// as signal-cli-rest-api refuses them mixed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// signal-cli's group id (base64 of the group's 32 bytes, as `listGroups` shows it).
    Group(String),
    /// Phone numbers in international form (`+41…`).
    Recipients(Vec<String>),
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalConfig {
    /// The gateway's base URL, without a trailing `/`.
    #[serde(serialize_with = "shown_url")]
    pub url: url::Url,
    pub api: Api,
    /// The Signal account that sends (`+41…`).
    pub number: String,
    pub scopes: BTreeMap<String, Target>,
    pub default_scope: Option<String>,
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
}

impl ServiceConfig for SignalConfig {
    const NAME: &'static str = "signal";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![
            ("signal", section::keys::<File>()),
            ("signal.scopes.*", section::keys::<SignalScope>()),
        ]
    }
    // Like a Telegram group: a chat read on a phone.
    const PER_MINUTE: Option<u32> = Some(20);
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Signal;

    fn load(c: &mut Checker, v: &Value, _base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, validate)?
    }

    fn masked(&self) -> Value {
        shown(self)
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        // The gateway has no credential of its own; its URL may carry one.
        vec![("signal.url", self.url.as_str().to_owned())]
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.keys().map(String::as_str).collect()
    }

    fn default_scope(&self) -> Option<&str> {
        self.default_scope.as_deref()
    }

    fn reaches(&self, scope: &str) -> String {
        match self.scopes.get(scope) {
            Some(Target::Group(g)) => format!("group {g}"),
            Some(Target::Recipients(r)) => r.join(", "),
            None => String::new(),
        }
    }

    fn messenger(&self) -> Result<Signal, String> {
        Signal::new(self)
    }
}

/// `+` and 6 to 15 digits: a number in international form, as Signal takes it.
pub fn is_number(s: &str) -> bool {
    s.strip_prefix('+')
        .is_some_and(|d| (6..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// signal-cli's group ids are the base64 of 32 bytes.
pub fn is_group_id(s: &str) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .is_ok_and(|b| b.len() == 32)
}

/// What the section says, defaults filled; `None` when the gateway, its API or the
/// number cannot be used (every problem is noted already).
fn validate(c: &mut Checker, file: File) -> Option<SignalConfig> {
    let p = "signal";
    let url = file.url.required_or(
        c,
        &join(p, "url"),
        "missing (required): the Signal gateway's URL, e.g. http://127.0.0.1:8080",
    );
    let api = match file.api {
        Field::Absent => Some(Api::Rest),
        api => api.given().map(|a| a.0),
    };
    let number = file.number.required(c, &join(p, "number"));
    let sp = join(p, "scopes");
    let scopes: BTreeMap<String, Target> = file
        .scopes
        .required_or(
            c,
            &sp,
            "missing (required): e.g. {\"beamline-ops\": {\"group\": \"<signal-cli group id>\"}}",
        )
        .map(|s| s.0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, scope)| Some((name.clone(), target(c, scope, &join(&sp, &name))?)))
        .collect();
    let default_scope = chosen_default_scope(
        c,
        file.default_scope.map(|s| s.0),
        p,
        "signal",
        scopes.keys(),
    );
    Some(SignalConfig {
        url: url?.0,
        api: api?,
        number: number?.0,
        scopes,
        default_scope,
        timeout: file
            .timeout_s
            .given()
            .map_or(DEFAULT_SEND_TIMEOUT, |s| Duration::from_secs(s.0)),
    })
}

fn target(c: &mut Checker, scope: SignalScope, p: &str) -> Option<Target> {
    match (scope.group, scope.recipients) {
        (Field::Absent, Field::Absent) => {
            c.problem(
                p,
                "missing: set group (a signal-cli group id) or recipients (numbers)",
            );
            None
        }
        (Field::Absent, recipients) => recipients
            .given()
            .filter(|r| r.whole)
            .map(|r| Target::Recipients(r.items.into_iter().map(|n| n.0).collect())),
        (group, Field::Absent) => group.given().map(|g| Target::Group(g.0)),
        _ => {
            // Which of the two was meant is unknown: their own problems would be noise.
            let (group, recipients) = (join(p, "group"), join(p, "recipients"));
            c.problems.retain(|q| {
                let at = q.json_path.as_str();
                at != group && at != recipients && !at.starts_with(&format!("{recipients}["))
            });
            c.problem(
                p,
                "set either group or recipients, not both: Signal sends to a group or to numbers, one request each",
            );
            None
        }
    }
}

/// Signal, through signal-cli-rest-api (`api: rest`) or signal-cli's JSON-RPC daemon
/// (`api: jsonrpc`). Needs `url`, `number` and `scopes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Signal")]
#[serde(deny_unknown_fields)]
#[schemars(extend("required" = ["url", "number", "scopes"]))]
pub struct File {
    /// The gateway's base URL, e.g. `http://127.0.0.1:8080`.
    #[schemars(pattern(r"^\s*[Hh][Tt][Tt][Pp][Ss]?://\S"))]
    pub url: Field<Text<GatewayUrl>>,
    /// `rest` (signal-cli-rest-api, `POST /v2/send`) or `jsonrpc` (signal-cli's HTTP
    /// daemon, `POST /api/v1/rpc`).
    #[serde(default)]
    #[schemars(extend("default" = "rest"))]
    pub api: Field<Word<Api>>,
    /// The account that sends, in international form (`+41…`).
    #[schemars(pattern(r"^\s*\+[0-9]{6,15}\s*$"))]
    pub number: Field<Text<Account>>,
    /// Scope name → `{"group": "<signal-cli group id>"}` or `{"recipients": ["+41…"]}`.
    /// BEC's Signal scopes (`beamline-ops`, …) are these names.
    #[serde(default)]
    #[schemars(schema_with = "targets", extend("minProperties" = 1))]
    pub scopes: Field<Named<SignalScope, Scopes>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Field<Text<NonBlank>>,
    /// The longest one send may take, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 30))]
    pub timeout_s: Field<Whole<1, 600>>,
}

/// One scope: a group, or numbers (described in the schema by `targets`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalScope {
    #[serde(default)]
    pub group: Field<Text<GroupId>>,
    #[serde(default)]
    pub recipients: Field<List<Checked<Recipient>, Numbers>>,
}

/// `scopes` in problems.
pub struct Scopes;

impl Wording for Scopes {
    const EXPECTED: &'static str = "an object mapping scope names to groups";
    const EMPTY: Option<&'static str> =
        Some("no scopes: name at least one group or list of numbers");
}

/// A scope's `recipients` in problems.
pub struct Numbers;

impl Wording for Numbers {
    const EXPECTED: &'static str = "a list of numbers";
    const EMPTY: Option<&'static str> = Some("no numbers: list at least one");
}

/// The gateway's URL, without a trailing `/`.
pub struct GatewayUrl;

impl TextForm for GatewayUrl {
    const EXPECTED: &'static str = "the gateway's URL (a string)";
    type Value = url::Url;

    fn parse(text: &str) -> Result<url::Url, String> {
        parse_http_url(text.trim().trim_end_matches('/'))
    }
}

/// The account's number, in international form.
pub struct Account;

impl TextForm for Account {
    const EXPECTED: &'static str = "a string";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        let n = NonBlank::parse(text)?;
        if !is_number(&n) {
            return Err(format!(
                "expected the account's number in international form (+41…), found {n:?}"
            ));
        }
        Ok(n)
    }
}

/// A signal-cli group id, blanks around it dropped.
pub struct GroupId;

impl TextForm for GroupId {
    const EXPECTED: &'static str = "a signal-cli group id (a string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        let g = text.trim();
        if !is_group_id(g) {
            return Err(format!(
                "expected a signal-cli group id (the base64 of 32 bytes, as `signal-cli listGroups` shows it), found {g:?}"
            ));
        }
        Ok(g.to_string())
    }
}

/// One recipient's number; any other value is named as the file has it.
pub struct Recipient;

impl ValueForm for Recipient {
    type Value = String;

    fn parse(item: Value) -> Result<String, String> {
        match item.as_str().map(str::trim) {
            Some(n) if is_number(n) => Ok(n.to_string()),
            _ => Err(format!(
                "expected a number in international form (+41…), found {item}"
            )),
        }
    }
}

fn targets(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "group": {"type": "string", "pattern": NON_BLANK,
                          "description": "signal-cli's group id (base64 of 32 bytes)."},
                "recipients": {"type": "array", "minItems": 1,
                               "items": {"type": "string", "pattern": r"^\s*\+[0-9]{6,15}\s*$"},
                               "description": "Numbers in international form."},
            },
            "additionalProperties": false,
            "oneOf": [{"required": ["group"]}, {"required": ["recipients"]}],
        },
    })
}
