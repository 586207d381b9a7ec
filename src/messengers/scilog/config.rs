//! The `scilog` section: the API's URL, how to log in (a user's password, or a token),
//! one logbook per scope, the tags every entry carries. [`File`] describes the section
//! once — keys, forms, schema — and is read with `settings::section`; [`validate`] reads
//! the credential and checks across keys, making the resolved [`ScilogConfig`], whose
//! `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

use super::Scilog;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::forms::{
    NonBlank, SecretRef, Text, TextForm, Whole, shown, shown_secs, shown_url,
};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::{parse_http_url, secret_or_file_field};
use crate::settings::{DEFAULT_SEND_TIMEOUT, Secret, chosen_default_scope, mask_url};
/// The ways to log in; exactly one is set.
const CREDENTIALS: [&str; 4] = ["password", "password_file", "token", "token_file"];

/// SciLog, PSI's electronic logbook: one paragraph per message in a scope's logbook.
#[derive(Debug, Clone, Serialize)]
pub struct ScilogConfig {
    /// The API's base URL, `https://scilog.example.org/api/v1`, without a trailing `/`.
    #[serde(serialize_with = "shown_url")]
    pub url: url::Url,
    /// Scope name → logbook id.
    #[serde(serialize_with = "shown_logbooks")]
    pub scopes: BTreeMap<String, String>,
    pub default_scope: Option<String>,
    /// Added to every entry's own tags.
    pub tags: Vec<String>,
    /// The longest one send (login, uploads and the entry) may take.
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
    #[serde(flatten)]
    pub login: Login,
}

/// Each scope as the file writes it: `{"logbook": "<id>"}`.
fn shown_logbooks<S: Serializer>(
    scopes: &BTreeMap<String, String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(
        scopes
            .iter()
            .map(|(name, id)| (name, json!({"logbook": id}))),
    )
}

/// How the agent gets its bearer token.
#[derive(Debug, Clone)]
pub enum Login {
    /// `POST /users/login {"principal", "password"}`, again whenever the token is refused.
    Password { user: String, password: Secret },
    /// A token made for the agent; when it is refused, only a new one helps.
    Token(Secret),
}

/// Shown as the keys that chose it, the secret masked.
impl Serialize for Login {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Login::Password { user, password } => {
                map.serialize_entry("user", user)?;
                map.serialize_entry("password", password)?;
            }
            Login::Token(token) => map.serialize_entry("token", token)?,
        }
        map.end()
    }
}

impl ServiceConfig for ScilogConfig {
    const NAME: &'static str = "scilog";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![
            ("scilog", section::keys::<File>()),
            ("scilog.scopes.*", section::keys::<ScilogScope>()),
        ]
    }
    // A logbook is read later, not watched: a few entries a minute, the rest in digests.
    const PER_MINUTE: Option<u32> = Some(10);
    // A digest in a logbook is the record: it lists every event it can.
    const SHOWN_PER_MESSAGE: usize = 200;
    type File = File;
    type Messenger = Scilog;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, |c, file| validate(c, file, base))?
    }

    fn masked(&self) -> Value {
        shown(self)
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

/// What the section says, its credential read, defaults filled; `None` when the URL or
/// the login cannot be used (every problem is noted already).
fn validate(c: &mut Checker, file: File, base: &Path) -> Option<ScilogConfig> {
    let p = "scilog";
    let url = file.url.required_or(
        c,
        &join(p, "url"),
        "missing (required): the API's URL, e.g. https://scilog.example.org/api/v1",
    );
    let user = file.user.given().map(|u| u.0);
    let given: Vec<&str> = [
        !matches!(file.password, Field::Absent),
        !matches!(file.password_file, Field::Absent),
        !matches!(file.token, Field::Absent),
        !matches!(file.token_file, Field::Absent),
    ]
    .into_iter()
    .zip(CREDENTIALS)
    .filter_map(|(given, key)| given.then_some(key))
    .collect();
    let login = match given.as_slice() {
        [] => {
            c.problem(
                join(p, "password"),
                "missing: set password or password_file (with user), or token or token_file",
            );
            None
        }
        ["password" | "password_file"] => {
            let file_ = file.password_file.map(|f| f.0);
            match secret_or_file_field(c, file.password, file_, "password", p, base) {
                Some(password) => match user {
                    Some(user) => Some(Login::Password { user, password }),
                    None => {
                        c.problem(
                            join(p, "user"),
                            "missing: a password is set but no user to log in with",
                        );
                        None
                    }
                },
                None => None,
            }
        }
        [_] => {
            let file_ = file.token_file.map(|f| f.0);
            secret_or_file_field(c, file.token, file_, "token", p, base).map(Login::Token)
        }
        [first, second, ..] => {
            // Which way was meant is unknown: the values' own problems would be noise.
            c.problems.retain(|q| {
                !given.iter().any(|k| {
                    let at = join(p, k);
                    q.json_path == at || q.json_path.starts_with(&format!("{at}."))
                })
            });
            c.problem(
                join(p, second),
                format!("set one way to log in, not both {first} and {second}"),
            );
            None
        }
    };
    let sp = join(p, "scopes");
    let scopes: BTreeMap<String, String> = file
        .scopes
        .required_or(
            c,
            &sp,
            "missing (required): name each logbook here, e.g. {\"default\": {\"logbook\": \"<logbook id>\"}}",
        )
        .map(|s| s.0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, scope)| {
            let id = scope.logbook.required_or(
                c,
                &join(&join(&sp, &name), "logbook"),
                "missing (required): the id of the logbook this scope writes to",
            )?;
            Some((name, id.0))
        })
        .collect();
    let default_scope = chosen_default_scope(
        c,
        file.default_scope.map(|s| s.0),
        p,
        "scilog",
        scopes.keys(),
    );
    Some(ScilogConfig {
        url: url?.0,
        login: login?,
        scopes,
        default_scope,
        tags: file
            .tags
            .given()
            .map(|t| t.items.into_iter().map(|t| t.0).collect())
            .unwrap_or_default(),
        timeout: file
            .timeout_s
            .given()
            .map_or(DEFAULT_SEND_TIMEOUT, |s| Duration::from_secs(s.0)),
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
    pub url: Field<Text<ApiUrl>>,
    /// The user to log in as (`POST /users/login`), with `password` or `password_file`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub user: Field<Text<NonBlank>>,
    /// The user's password, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default)]
    pub password: Field<SecretRef>,
    /// A file holding the password (a trailing newline is dropped).
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub password_file: Field<Text<NonBlank>>,
    /// A bearer token instead of logging in, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default)]
    pub token: Field<SecretRef>,
    /// A file holding the token.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub token_file: Field<Text<NonBlank>>,
    /// Scope name → the logbook it writes to. BEC's SciLog scopes (`default`, …) are
    /// these names.
    #[serde(default)]
    #[schemars(schema_with = "logbooks", extend("minProperties" = 1))]
    pub scopes: Field<Named<ScilogScope, Logbooks>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Field<Text<NonBlank>>,
    /// Tags every entry carries besides the message's own.
    #[serde(default)]
    #[schemars(schema_with = "tags")]
    pub tags: Field<List<Text<Tag>, Tags>>,
    /// The longest one send may take (login, uploads, the entry), in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 30))]
    pub timeout_s: Field<Whole<1, 600>>,
}

/// One scope: the logbook it writes to (described in the schema by `logbooks`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScilogScope {
    pub logbook: Field<Text<LogbookId>>,
}

/// `scopes` in problems.
pub struct Logbooks;

impl Wording for Logbooks {
    const EXPECTED: &'static str = "an object mapping scope names to logbooks";
    const EMPTY: Option<&'static str> = Some("no scopes: name at least one logbook");
}

/// `tags` in problems.
pub struct Tags;

impl Wording for Tags {
    const EXPECTED: &'static str = "a list of tags";
}

/// The API's URL, without a trailing `/`.
pub struct ApiUrl;

impl TextForm for ApiUrl {
    const EXPECTED: &'static str = "the API's URL (a string)";
    type Value = url::Url;

    fn parse(text: &str) -> Result<url::Url, String> {
        parse_http_url(text.trim().trim_end_matches('/'))
    }
}

/// A logbook's id, blanks around it dropped.
pub struct LogbookId;

impl TextForm for LogbookId {
    const EXPECTED: &'static str = "the logbook's id (a non-empty string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        match text.trim() {
            "" => Err(format!("expected {}, found a string", Self::EXPECTED)),
            id => Ok(id.to_string()),
        }
    }
}

/// A tag, blanks around it dropped.
pub struct Tag;

impl TextForm for Tag {
    const EXPECTED: &'static str = "a tag (a non-empty string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        match text.trim() {
            "" => Err(format!("expected {}, found a string", Self::EXPECTED)),
            t => Ok(t.to_string()),
        }
    }
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
