//! The `scilog` section: the API's URL, how to log in (a user's password, or a token),
//! one logbook per scope, the tags every entry carries; its masked view and its schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Scilog;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::schema::{NON_BLANK, secret_schema};
use crate::settings::values::{http_url, secret_or_file, secret_value};
use crate::settings::{DEFAULT_SEND_TIMEOUT, Secret, default_scope, mask_url};

const SCILOG: &[&str] = &[
    "url",
    "user",
    "password",
    "password_file",
    "token",
    "token_file",
    "scopes",
    "default_scope",
    "tags",
    "timeout_s",
];
const SCILOG_SCOPE: &[&str] = &["logbook"];
/// The ways to log in; exactly one is set.
const CREDENTIALS: [&str; 4] = ["password", "password_file", "token", "token_file"];

/// SciLog, PSI's electronic logbook: one paragraph per message in a scope's logbook.
#[derive(Debug, Clone)]
pub struct ScilogConfig {
    /// The API's base URL, `https://scilog.example.org/api/v1`, without a trailing `/`.
    pub url: url::Url,
    pub login: Login,
    /// Scope name → logbook id.
    pub scopes: BTreeMap<String, String>,
    pub default_scope: Option<String>,
    /// Added to every entry's own tags.
    pub tags: Vec<String>,
    /// The longest one send (login, uploads and the entry) may take.
    pub timeout: Duration,
}

/// How the agent gets its bearer token.
#[derive(Debug, Clone)]
pub enum Login {
    /// `POST /users/login {"principal", "password"}`, again whenever the token is refused.
    Password { user: String, password: Secret },
    /// A token made for the agent; when it is refused, only a new one helps.
    Token(Secret),
}

impl ServiceConfig for ScilogConfig {
    const NAME: &'static str = "scilog";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("scilog", SCILOG), ("scilog.scopes.*", SCILOG_SCOPE)]
    }
    // A logbook is read later, not watched: a few entries a minute, the rest in digests.
    const PER_MINUTE: Option<u32> = Some(10);
    // A digest in a logbook is the record: it lists every event it can.
    const SHOWN_PER_MESSAGE: usize = 200;
    type File = File;
    type Messenger = Scilog;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        scilog(c, v, base)
    }

    fn masked(&self) -> Value {
        let login = match &self.login {
            Login::Password { user, .. } => json!({"user": user, "password": Secret::MASK}),
            Login::Token(_) => json!({"token": Secret::MASK}),
        };
        let scopes: serde_json::Map<String, Value> = self
            .scopes
            .iter()
            .map(|(name, logbook)| (name.clone(), json!({"logbook": logbook})))
            .collect();
        let mut out = json!({
            "url": mask_url(self.url.as_str()),
            "scopes": scopes,
            "default_scope": self.default_scope,
            "tags": self.tags,
            "timeout_s": self.timeout.as_secs(),
        });
        if let (Some(o), Some(l)) = (out.as_object_mut(), login.as_object()) {
            o.extend(l.clone());
        }
        out
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        match &self.login {
            Login::Password { password, .. } => {
                vec![("scilog.password", password.expose().to_owned())]
            }
            Login::Token(t) => vec![("scilog.token", t.expose().to_owned())],
        }
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.keys().map(String::as_str).collect()
    }

    fn default_scope(&self) -> Option<&str> {
        self.default_scope.as_deref()
    }

    fn reaches(&self, scope: &str) -> String {
        self.scopes
            .get(scope)
            .map(|l| format!("logbook {l} on {}", mask_url(self.url.as_str())))
            .unwrap_or_default()
    }

    fn messenger(&self) -> Result<Scilog, String> {
        Scilog::new(self)
    }
}

fn scilog(c: &mut Checker, v: &Value, base: &Path) -> Option<ScilogConfig> {
    let p = "scilog";
    let s = c.object(v, p, SCILOG)?;
    let url = match s.get("url") {
        Some(Value::String(u)) => {
            let u = u.trim().trim_end_matches('/');
            http_url(c, u, &join(p, "url"))
        }
        Some(other) => {
            c.wrong_type(&join(p, "url"), "the API's URL (a string)", other);
            None
        }
        None => {
            c.problem(
                join(p, "url"),
                "missing (required): the API's URL, e.g. https://scilog.example.org/api/v1",
            );
            None
        }
    };
    let user = c.non_empty(s, "user", p);
    let given: Vec<&str> = CREDENTIALS
        .into_iter()
        .filter(|k| s.contains_key(*k))
        .collect();
    let login = match given.as_slice() {
        [] => {
            c.problem(
                join(p, "password"),
                "missing: set password or password_file (with user), or token or token_file",
            );
            None
        }
        [key] => {
            let inline_key = key.trim_end_matches("_file");
            let secret = secret_or_file(c, s, inline_key, p, base, |c, v| {
                secret_value(c, v, &join(p, inline_key), base)
            });
            match (*key, secret) {
                ("password" | "password_file", Some(password)) => match user.clone() {
                    Some(user) => Some(Login::Password { user, password }),
                    None => {
                        c.problem(
                            join(p, "user"),
                            "missing: a password is set but no user to log in with",
                        );
                        None
                    }
                },
                (_, Some(token)) => Some(Login::Token(token)),
                (_, None) => None,
            }
        }
        [first, second, ..] => {
            c.problem(
                join(p, second),
                format!("set one way to log in, not both {first} and {second}"),
            );
            None
        }
    };
    let mut scopes = BTreeMap::new();
    let sp = join(p, "scopes");
    match s.get("scopes") {
        Some(Value::Object(obj)) => {
            if obj.is_empty() {
                c.problem(&sp, "no scopes: name at least one logbook");
            }
            for (name, scope) in obj {
                let lp = join(&sp, name);
                let Some(o) = c.object(scope, &lp, SCILOG_SCOPE) else {
                    continue;
                };
                match o.get("logbook") {
                    Some(Value::String(id)) if !id.trim().is_empty() => {
                        scopes.insert(name.clone(), id.trim().to_string());
                    }
                    Some(other) => c.wrong_type(
                        &join(&lp, "logbook"),
                        "the logbook's id (a non-empty string)",
                        other,
                    ),
                    None => c.problem(
                        join(&lp, "logbook"),
                        "missing (required): the id of the logbook this scope writes to",
                    ),
                }
            }
        }
        Some(other) => c.wrong_type(&sp, "an object mapping scope names to logbooks", other),
        None => c.problem(
            &sp,
            "missing (required): name each logbook here, e.g. {\"default\": {\"logbook\": \"<logbook id>\"}}",
        ),
    }
    let default_scope = default_scope(c, s, p, "scilog", scopes.keys());
    let mut tags = Vec::new();
    match s.get("tags") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, t) in items.iter().enumerate() {
                match t.as_str().map(str::trim) {
                    Some(t) if !t.is_empty() => tags.push(t.to_string()),
                    _ => c.wrong_type(
                        &crate::settings::check::index(&join(p, "tags"), i),
                        "a tag (a non-empty string)",
                        t,
                    ),
                }
            }
        }
        Some(other) => c.wrong_type(&join(p, "tags"), "a list of tags", other),
    }
    let timeout = c.uint(s, "timeout_s", p, 1, 600);
    Some(ScilogConfig {
        url: url?,
        login: login?,
        scopes,
        default_scope,
        tags,
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
    })
}

/// SciLog, PSI's electronic logbook: each message a paragraph in the scope's logbook.
/// Needs `url`, `scopes`, and `user` with `password` / `password_file`, or `token` /
/// `token_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Scilog")]
#[serde(deny_unknown_fields)]
#[schemars(transform = one_login)]
pub struct File {
    /// The API's base URL, e.g. `https://scilog.psi.ch/api/v1`.
    #[schemars(pattern(r"^\s*[Hh][Tt][Tt][Pp][Ss]?://\S"))]
    pub url: String,
    /// The user to log in as (`POST /users/login`), with `password` or `password_file`.
    #[schemars(pattern(NON_BLANK))]
    pub user: Option<String>,
    /// The user's password, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "secret_schema")]
    pub password: Option<Value>,
    /// A file holding the password (a trailing newline is dropped).
    #[schemars(pattern(NON_BLANK))]
    pub password_file: Option<String>,
    /// A bearer token instead of logging in, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "secret_schema")]
    pub token: Option<Value>,
    /// A file holding the token.
    #[schemars(pattern(NON_BLANK))]
    pub token_file: Option<String>,
    /// Scope name → the logbook it writes to. BEC's SciLog scopes (`default`, …) are
    /// these names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "logbooks", extend("minProperties" = 1))]
    pub scopes: Option<BTreeMap<String, Value>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// Tags every entry carries besides the message's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "tags")]
    pub tags: Option<Vec<String>>,
    /// The longest one send may take (login, uploads, the entry), in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

fn logbooks(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "type": "object",
            "properties": {"logbook": {"type": "string", "pattern": NON_BLANK,
                                       "description": "The logbook's id."}},
            "required": ["logbook"],
            "additionalProperties": false,
        },
    })
}

fn tags(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "array", "items": {"type": "string", "pattern": NON_BLANK}})
}

/// `url` and `scopes` are required, and exactly one way to log in.
fn one_login(schema: &mut Schema) {
    schema.insert("required".into(), json!(["url", "scopes"]));
    schema.insert(
        "oneOf".into(),
        json!(CREDENTIALS.map(|k| json!({"required": [k]}))),
    );
}
