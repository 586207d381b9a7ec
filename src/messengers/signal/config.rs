//! The `signal` section: where the Signal gateway is and which of the two it is, the
//! account's number, and per scope a group or a list of numbers; its masked view and its
//! schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Signal;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, index, join};
use crate::settings::schema::{NON_BLANK, words};
use crate::settings::values::http_url;
use crate::settings::{DEFAULT_SEND_TIMEOUT, default_scope, mask_url};

const SIGNAL: &[&str] = &[
    "url",
    "api",
    "number",
    "scopes",
    "default_scope",
    "timeout_s",
];
const SIGNAL_SCOPE: &[&str] = &["group", "recipients"];

/// Which gateway `signal.url` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// bbernhard's signal-cli-rest-api: `POST /v2/send`.
    Rest,
    /// signal-cli's own HTTP daemon (`signal-cli daemon --http`): JSON-RPC at
    /// `/api/v1/rpc`, what BEC's Atlas talks to.
    JsonRpc,
}

impl Api {
    pub const CHOICES: [(&'static str, Api); 2] = [("rest", Api::Rest), ("jsonrpc", Api::JsonRpc)];

    pub fn as_str(self) -> &'static str {
        match self {
            Api::Rest => "rest",
            Api::JsonRpc => "jsonrpc",
        }
    }
}

/// Where one scope's messages go: one group, or numbers — never both in one request,
/// as signal-cli-rest-api refuses them mixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// signal-cli's group id (base64 of the group's 32 bytes, as `listGroups` shows it).
    Group(String),
    /// Phone numbers in international form (`+41…`).
    Recipients(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct SignalConfig {
    /// The gateway's base URL, without a trailing `/`.
    pub url: url::Url,
    pub api: Api,
    /// The Signal account that sends (`+41…`).
    pub number: String,
    pub scopes: BTreeMap<String, Target>,
    pub default_scope: Option<String>,
    pub timeout: Duration,
}

impl ServiceConfig for SignalConfig {
    const NAME: &'static str = "signal";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("signal", SIGNAL), ("signal.scopes.*", SIGNAL_SCOPE)]
    }
    // Like a Telegram group: a chat read on a phone.
    const PER_MINUTE: Option<u32> = Some(20);
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Signal;

    fn load(c: &mut Checker, v: &Value, _base: &Path) -> Option<Self> {
        signal(c, v)
    }

    fn masked(&self) -> Value {
        let scopes: serde_json::Map<String, Value> = self
            .scopes
            .iter()
            .map(|(name, t)| {
                let v = match t {
                    Target::Group(g) => json!({"group": g}),
                    Target::Recipients(r) => json!({"recipients": r}),
                };
                (name.clone(), v)
            })
            .collect();
        json!({
            "url": mask_url(self.url.as_str()),
            "api": self.api.as_str(),
            "number": self.number,
            "scopes": scopes,
            "default_scope": self.default_scope,
            "timeout_s": self.timeout.as_secs(),
        })
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

fn signal(c: &mut Checker, v: &Value) -> Option<SignalConfig> {
    let p = "signal";
    let s = c.object(v, p, SIGNAL)?;
    let url = match s.get("url") {
        Some(Value::String(u)) => http_url(c, u.trim().trim_end_matches('/'), &join(p, "url")),
        Some(other) => {
            c.wrong_type(&join(p, "url"), "the gateway's URL (a string)", other);
            None
        }
        None => {
            c.problem(
                join(p, "url"),
                "missing (required): the Signal gateway's URL, e.g. http://127.0.0.1:8080",
            );
            None
        }
    };
    let api = if s.contains_key("api") {
        c.choice(s, "api", p, &Api::CHOICES)
    } else {
        Some(Api::Rest)
    };
    let number = c.non_empty(s, "number", p);
    let number = c.required(number, s, "number", p).filter(|n| {
        let ok = is_number(n);
        if !ok {
            c.problem(
                join(p, "number"),
                format!("expected the account's number in international form (+41…), found {n:?}"),
            );
        }
        ok
    });
    let mut scopes = BTreeMap::new();
    let sp = join(p, "scopes");
    match s.get("scopes") {
        Some(Value::Object(obj)) => {
            if obj.is_empty() {
                c.problem(&sp, "no scopes: name at least one group or list of numbers");
            }
            for (name, scope) in obj {
                if let Some(t) = target(c, scope, &join(&sp, name)) {
                    scopes.insert(name.clone(), t);
                }
            }
        }
        Some(other) => c.wrong_type(&sp, "an object mapping scope names to groups", other),
        None => c.problem(
            &sp,
            "missing (required): e.g. {\"beamline-ops\": {\"group\": \"<signal-cli group id>\"}}",
        ),
    }
    let default_scope = default_scope(c, s, p, "signal", scopes.keys());
    let timeout = c.uint(s, "timeout_s", p, 1, 600);
    Some(SignalConfig {
        url: url?,
        api: api?,
        number: number?,
        scopes,
        default_scope,
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
    })
}

fn target(c: &mut Checker, v: &Value, p: &str) -> Option<Target> {
    let o = c.object(v, p, SIGNAL_SCOPE)?;
    match (o.get("group"), o.get("recipients")) {
        (Some(_), Some(_)) => {
            c.problem(
                p,
                "set either group or recipients, not both: Signal sends to a group or to numbers, one request each",
            );
            None
        }
        (Some(g), None) => match g.as_str().map(str::trim) {
            Some(g) if is_group_id(g) => Some(Target::Group(g.to_string())),
            Some(g) => {
                c.problem(
                    join(p, "group"),
                    format!("expected a signal-cli group id (the base64 of 32 bytes, as `signal-cli listGroups` shows it), found {g:?}"),
                );
                None
            }
            None => {
                c.wrong_type(&join(p, "group"), "a signal-cli group id (a string)", g);
                None
            }
        },
        (None, Some(Value::Array(items))) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(str::trim) {
                    Some(n) if is_number(n) => out.push(n.to_string()),
                    _ => c.problem(
                        index(&join(p, "recipients"), i),
                        format!("expected a number in international form (+41…), found {item}"),
                    ),
                }
            }
            if items.is_empty() {
                c.problem(join(p, "recipients"), "no numbers: list at least one");
            }
            (out.len() == items.len() && !out.is_empty()).then_some(Target::Recipients(out))
        }
        (None, Some(other)) => {
            c.wrong_type(&join(p, "recipients"), "a list of numbers", other);
            None
        }
        (None, None) => {
            c.problem(
                p,
                "missing: set group (a signal-cli group id) or recipients (numbers)",
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
    pub url: String,
    /// `rest` (signal-cli-rest-api, `POST /v2/send`) or `jsonrpc` (signal-cli's HTTP
    /// daemon, `POST /api/v1/rpc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "api", extend("default" = "rest"))]
    pub api: Option<String>,
    /// The account that sends, in international form (`+41…`).
    #[schemars(pattern(r"^\s*\+[0-9]{6,15}\s*$"))]
    pub number: String,
    /// Scope name → `{"group": "<signal-cli group id>"}` or `{"recipients": ["+41…"]}`.
    /// BEC's Signal scopes (`beamline-ops`, …) are these names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "targets", extend("minProperties" = 1))]
    pub scopes: Option<BTreeMap<String, Value>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// The longest one send may take, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

fn api(_: &mut SchemaGenerator) -> Schema {
    words(&["rest", "jsonrpc"], false)
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
