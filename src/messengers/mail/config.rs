//! The `mail` section. [`File`] describes it once — keys, forms (the old bot's loose
//! ones from `settings::legacy`), schema — and is read with `settings::section`;
//! [`validate`] reads the password, fills the defaults and checks across keys, making the
//! resolved [`MailConfig`], whose `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Value, json};

use super::Mail;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, index, join};
use crate::settings::forms::{
    Checked, Choices, NonBlank, Text, TextForm, Whole, Word, shown, shown_secs,
};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::{InlineSecret, secret_or_file_field};
use crate::settings::{
    DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Secret, chosen_default_scope, host_name, legacy, resolve,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// STARTTLS required: the send fails rather than go out in clear text.
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Wrapper,
    None,
    /// STARTTLS when the server offers it, clear text otherwise (the old bot's way).
    Opportunistic,
}

impl Choices for TlsMode {
    const CHOICES: &'static [(&'static str, TlsMode)] = &[
        ("starttls", TlsMode::StartTls),
        ("wrapper", TlsMode::Wrapper),
        ("none", TlsMode::None),
        ("opportunistic", TlsMode::Opportunistic),
    ];
}

impl Serialize for TlsMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("opportunistic", |(n, _)| n)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MailConfig {
    pub server: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub tls: TlsMode,
    /// Extra CA certificates (PEM) trusted besides the system store: a site's own CA.
    pub ca_file: Option<PathBuf>,
    /// Scope name → recipients. The legacy `recipients` is the scope `default`.
    pub scopes: BTreeMap<String, Vec<String>>,
    /// The scope of route entries without one, and of the implicit routing:
    /// `mail.default_scope`, else `default` if that scope exists, else none.
    pub default_scope: Option<String>,
    /// The longest one send may take, connect to the server's last reply.
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
}

impl ServiceConfig for MailConfig {
    const NAME: &'static str = "mail";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("mail", section::keys::<File>())]
    }
    const PER_MINUTE: Option<u32> = Some(10);
    // A mail may be read at a desk.
    const SHOWN_PER_MESSAGE: usize = 25;
    type File = File;
    type Messenger = Mail;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, |c, file| validate(c, file, base))?
    }

    fn masked(&self) -> Value {
        shown(self)
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        let password = self.password.as_ref().map(|p| p.expose().to_owned());
        vec![("mail.password", password.unwrap_or_default())]
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
            .map(|a| a.join(", "))
            .unwrap_or_default()
    }

    fn messenger(&self) -> Result<Mail, String> {
        Mail::new(self)
    }
}

fn address(c: &mut Checker, s: &str, path: &str) -> Option<String> {
    match lettre::Address::from_str(s.trim()) {
        Ok(_) => Some(s.trim().to_string()),
        Err(e) => {
            c.problem(
                path,
                format!("expected an e-mail address, found {s:?} ({e})"),
            );
            None
        }
    }
}

/// What the section says, its password read, defaults filled (the port from `tls`, `tls`
/// from the port, `from` from `user`); `None` when the server or the sender cannot be
/// used (every problem is noted already).
fn validate(c: &mut Checker, file: File, base: &Path) -> Option<MailConfig> {
    let p = "mail";
    let server = file.server.required(c, &join(p, "server")).map(|s| s.0);
    let (tls, port) = match (
        file.tls.given().map(|t| t.0),
        file.port.given().map(|p| p.0),
    ) {
        (Some(t), Some(port)) => (t, port),
        (None, Some(465)) => (TlsMode::Wrapper, 465),
        (None, Some(port)) => (TlsMode::Opportunistic, port),
        (Some(TlsMode::Wrapper), None) => (TlsMode::Wrapper, 465),
        (Some(TlsMode::StartTls), None) => (TlsMode::StartTls, 587),
        (Some(t), None) => (t, 25),
        (None, None) => (TlsMode::Opportunistic, 25),
    };
    let user = file.user.given().filter(|u| !u.is_empty());
    let password_file = file.password_file.map(|f| f.0);
    let password = secret_or_file_field(c, file.password, password_file, "password", p, base);
    if password.is_some() && user.is_none() {
        c.problem(
            join(p, "user"),
            "a password is set but no user to log in with",
        );
    }
    let from = match file.from {
        Field::Given(Text(f)) => {
            match lettre::message::Mailbox::from_str(&f) {
                Ok(_) => Some(f),
                Err(e) => {
                    c.problem(
                    join(p, "from"),
                    format!("expected an address like \"Sonix <sonix@example.org>\", found {f:?} ({e})"),
                );
                    None
                }
            }
        }
        _ => Some(default_from(user.as_deref())),
    };
    let ca_file = file.ca_file.given().map(|f| resolve(base, &f.0));
    if let Some(f) = &ca_file
        && !f.is_file()
    {
        c.problem(join(p, "ca_file"), format!("no such file: {}", f.display()));
    }
    let mut scopes = BTreeMap::new();
    if let Some(list) = file.recipients.given() {
        let list: Vec<String> = list
            .0
            .iter()
            .enumerate()
            .filter_map(|(i, a)| address(c, a, &index(&join(p, "recipients"), i)))
            .collect();
        scopes.insert(DEFAULT_SCOPE.to_string(), list);
    }
    for (name, list) in file.scopes.given().map(|s| s.0).unwrap_or_default() {
        let lp = join(&join(p, "scopes"), &name);
        if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
            c.problem(
                &lp,
                "the scope \"default\" is already given by mail.recipients",
            );
            continue;
        }
        if list.whole && list.items.is_empty() {
            c.problem(&lp, "a scope needs at least one address");
        }
        scopes.insert(name, list.items.into_iter().map(|a| a.0).collect());
    }
    if scopes.values().all(Vec::is_empty) {
        c.problem(
            join(p, "recipients"),
            "no recipients: set mail.recipients (or mail.scopes) to at least one address",
        );
    }
    let default_scope =
        chosen_default_scope(c, file.default_scope.map(|s| s.0), p, "mail", scopes.keys());
    Some(MailConfig {
        timeout: file
            .timeout_s
            .given()
            .map_or(DEFAULT_SEND_TIMEOUT, |s| Duration::from_secs(s.0)),
        server: server?,
        port,
        user,
        password,
        from: from?,
        tls,
        ca_file,
        scopes,
        default_scope,
    })
}

/// `user` when it is an address, else `protowatch@<host>`.
fn default_from(user: Option<&str>) -> String {
    if let Some(u) = user
        && lettre::Address::from_str(u).is_ok()
    {
        return u.to_string();
    }
    let host = host_name().to_ascii_lowercase();
    let candidate = format!("protowatch@{host}");
    if lettre::Address::from_str(&candidate).is_ok() {
        candidate
    } else {
        "protowatch@localhost".to_string()
    }
}

/// E-mail by SMTP. Needs `server`, and `recipients` or `scopes`.
// The keys in the old bot's order (`user`, `password`, `port`, `server`, `recipients`
// first): problems list them so; the schema shows them as `mail_rules` orders them.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Mail")]
#[serde(deny_unknown_fields)]
#[schemars(transform = mail_rules)]
pub struct File {
    /// The user name for SMTP AUTH; AUTH is used when a user and a password are set.
    #[serde(default)]
    pub user: Field<String>,
    /// The password for SMTP AUTH; empty means no AUTH. Or use `password_file`.
    #[serde(default)]
    pub password: Field<String>,
    /// A file holding the password (a trailing newline is dropped), instead of `password`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub password_file: Field<Text<NonBlank>>,
    /// The server's port: 465 with `tls` `wrapper`, 587 with `starttls`, else 25. A number,
    /// or a string of digits as the old bot's files have it.
    #[serde(default)]
    #[schemars(schema_with = "port")]
    pub port: Field<Checked<legacy::Port>>,
    /// The SMTP server's host name or address.
    #[schemars(pattern(NON_BLANK))]
    pub server: Field<Text<NonBlank>>,
    /// The recipients, a list of addresses or one address: the scope `default`.
    #[serde(default)]
    #[schemars(schema_with = "recipients")]
    pub recipients: Field<legacy::Recipients>,
    /// The sender, `addr` or `"Name <addr>"`. Default: `user` if it is an address, else
    /// `protowatch@<host>`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub from: Field<Text<NonBlank>>,
    /// `starttls` (required), `wrapper` (TLS from the first byte), `none`, or
    /// `opportunistic` (STARTTLS when the server offers it). Default: `wrapper` on port 465,
    /// else `opportunistic`.
    #[serde(default)]
    pub tls: Field<Word<TlsMode>>,
    /// A PEM file of extra CA certificates to trust besides the system's (a site CA).
    /// Certificate checks cannot be switched off.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub ca_file: Field<Text<NonBlank>>,
    /// More recipient groups for `routes`: scope name → addresses.
    #[serde(default)]
    #[schemars(schema_with = "mail_scopes")]
    pub scopes: Field<Named<List<Text<Address>, legacy::AddressList>, Scopes>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Field<Text<NonBlank>>,
    /// The longest one send may take, from connecting to the server's last reply, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 30))]
    pub timeout_s: Field<Whole<1, 600>>,
}

/// `scopes` in problems.
pub struct Scopes;

impl Wording for Scopes {
    const EXPECTED: &'static str = "an object mapping scope names to address lists";
}

/// An e-mail address in a scope's list, blanks around it dropped.
pub struct Address;

impl TextForm for Address {
    const EXPECTED: &'static str = "an e-mail address (a string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        match lettre::Address::from_str(text.trim()) {
            Ok(_) => Ok(text.trim().to_string()),
            Err(e) => Err(format!("expected an e-mail address, found {text:?} ({e})")),
        }
    }
}

/// A password written in the file: any string, empty for a server without AUTH.
impl InlineSecret for String {
    fn text(&self) -> Option<&str> {
        Some(self)
    }

    fn read(self, _: &mut Checker, _: &str, _: &Path) -> Option<Secret> {
        (!self.is_empty()).then(|| Secret::new(self))
    }
}

fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": r"^\s*0*[1-9][0-9]{0,4}\s*$"},
        ],
    })
}

fn recipients(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ],
    })
}

fn mail_scopes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    })
}

/// `mail` needs recipients somewhere, and takes a password one way only. Its keys are
/// shown in the schema as an editor offers them, the server first; the struct keeps the
/// old bot's order, which problems list them in.
fn mail_rules(schema: &mut Schema) {
    const SHOWN: [&str; 12] = [
        "server",
        "port",
        "tls",
        "user",
        "password",
        "password_file",
        "from",
        "ca_file",
        "recipients",
        "scopes",
        "default_scope",
        "timeout_s",
    ];
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        let mut all = std::mem::take(props);
        for key in SHOWN {
            if let Some(v) = all.remove(key) {
                props.insert(key.to_string(), v);
            }
        }
        props.extend(all);
    }
    schema.insert(
        "anyOf".into(),
        json!([{"required": ["recipients"]}, {"required": ["scopes"]}]),
    );
    schema.insert(
        "not".into(),
        json!({"required": ["password", "password_file"]}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_from_uses_user_when_an_address() {
        assert_eq!(default_from(Some("bot@example.org")), "bot@example.org");
        assert!(default_from(Some("sonix-bot")).starts_with("protowatch@"));
    }
}
