//! The `mail` section: its resolved type, how the file's section is read (the old
//! bot's loose forms included, see `config::legacy`), its masked view and its schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Mail;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, index, join};
use crate::settings::schema::{NON_BLANK, words};
use crate::settings::values::secret_or_file;
use crate::settings::{
    DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Secret, default_scope, host_name, legacy, resolve,
};

const MAIL: &[&str] = &[
    "user",
    "password",
    "password_file",
    "port",
    "server",
    "recipients",
    "from",
    "tls",
    "ca_file",
    "scopes",
    "default_scope",
    "timeout_s",
];

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

impl TlsMode {
    pub const CHOICES: [(&'static str, TlsMode); 4] = [
        ("starttls", TlsMode::StartTls),
        ("wrapper", TlsMode::Wrapper),
        ("none", TlsMode::None),
        ("opportunistic", TlsMode::Opportunistic),
    ];

    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("opportunistic", |(n, _)| n)
    }
}

#[derive(Debug, Clone)]
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
    pub timeout: Duration,
}

impl ServiceConfig for MailConfig {
    const NAME: &'static str = "mail";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("mail", MAIL)]
    }
    const PER_MINUTE: Option<u32> = Some(10);
    // A mail may be read at a desk.
    const SHOWN_PER_MESSAGE: usize = 25;
    type File = File;
    type Messenger = Mail;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        mail(c, v, base)
    }

    fn masked(&self) -> Value {
        json!({
            "server": self.server,
            "port": self.port,
            "user": self.user,
            "password": self.password.as_ref().map(|_| Secret::MASK),
            "from": self.from,
            "tls": self.tls.as_str(),
            "ca_file": self.ca_file,
            "scopes": self.scopes,
            "default_scope": self.default_scope,
            "timeout_s": self.timeout.as_secs(),
        })
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

fn mail(c: &mut Checker, v: &Value, base: &Path) -> Option<MailConfig> {
    let p = "mail";
    let m = c.object(v, p, MAIL)?;
    let server = c.non_empty(m, "server", p);
    let server = c.required(server, m, "server", p);
    let tls = c.choice(m, "tls", p, &TlsMode::CHOICES);
    let port = legacy::port(c, m, p);
    let (tls, port) = match (tls, port) {
        (Some(t), Some(port)) => (t, port),
        (None, Some(465)) => (TlsMode::Wrapper, 465),
        (None, Some(port)) => (TlsMode::Opportunistic, port),
        (Some(TlsMode::Wrapper), None) => (TlsMode::Wrapper, 465),
        (Some(TlsMode::StartTls), None) => (TlsMode::StartTls, 587),
        (Some(t), None) => (t, 25),
        (None, None) => (TlsMode::Opportunistic, 25),
    };
    let user = c.string(m, "user", p).filter(|u| !u.is_empty());
    // The old bot's files carry `"password": ""` for servers without AUTH.
    let password = secret_or_file(c, m, "password", p, base, |c, _| {
        c.string(m, "password", p)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
    });
    if password.is_some() && user.is_none() {
        c.problem(
            join(p, "user"),
            "a password is set but no user to log in with",
        );
    }
    let from = match c.non_empty(m, "from", p) {
        Some(f) => {
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
        None => Some(default_from(user.as_deref())),
    };
    let ca_file = c.non_empty(m, "ca_file", p).map(|f| resolve(base, &f));
    if let Some(f) = &ca_file
        && !f.is_file()
    {
        c.problem(join(p, "ca_file"), format!("no such file: {}", f.display()));
    }

    let mut scopes = BTreeMap::new();
    if let Some(list) = legacy::recipients(c, m, p) {
        let list: Vec<String> = list
            .iter()
            .enumerate()
            .filter_map(|(i, a)| address(c, a, &index(&join(p, "recipients"), i)))
            .collect();
        scopes.insert(DEFAULT_SCOPE.to_string(), list);
    }
    if let Some(sv) = m.get("scopes") {
        let sp = join(p, "scopes");
        if let Some(obj) = sv.as_object() {
            for (name, list) in obj {
                let lp = join(&sp, name);
                if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
                    c.problem(
                        &lp,
                        "the scope \"default\" is already given by mail.recipients",
                    );
                    continue;
                }
                let Some(items) = list.as_array() else {
                    c.wrong_type(&lp, "a list of e-mail addresses", list);
                    continue;
                };
                let mut addrs = Vec::new();
                for (i, a) in items.iter().enumerate() {
                    match a.as_str() {
                        Some(s) => addrs.extend(address(c, s, &index(&lp, i))),
                        None => c.wrong_type(&index(&lp, i), "an e-mail address (a string)", a),
                    }
                }
                if items.is_empty() {
                    c.problem(&lp, "a scope needs at least one address");
                }
                scopes.insert(name.clone(), addrs);
            }
        } else {
            c.wrong_type(&sp, "an object mapping scope names to address lists", sv);
        }
    }
    if scopes.values().all(Vec::is_empty) {
        c.problem(
            join(p, "recipients"),
            "no recipients: set mail.recipients (or mail.scopes) to at least one address",
        );
    }
    let default_scope = default_scope(c, m, p, "mail", scopes.keys());
    let timeout = c.uint(m, "timeout_s", p, 1, 600);
    Some(MailConfig {
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
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
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Mail")]
#[serde(deny_unknown_fields)]
#[schemars(transform = mail_rules)]
pub struct File {
    /// The SMTP server's host name or address.
    #[schemars(pattern(NON_BLANK))]
    pub server: String,
    /// The server's port: 465 with `tls` `wrapper`, 587 with `starttls`, else 25. A number,
    /// or a string of digits as the old bot's files have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "port")]
    pub port: Option<Value>,
    /// `starttls` (required), `wrapper` (TLS from the first byte), `none`, or
    /// `opportunistic` (STARTTLS when the server offers it). Default: `wrapper` on port 465,
    /// else `opportunistic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "tls")]
    pub tls: Option<String>,
    /// The user name for SMTP AUTH; AUTH is used when a user and a password are set.
    pub user: Option<String>,
    /// The password for SMTP AUTH; empty means no AUTH. Or use `password_file`.
    pub password: Option<String>,
    /// A file holding the password (a trailing newline is dropped), instead of `password`.
    #[schemars(pattern(NON_BLANK))]
    pub password_file: Option<String>,
    /// The sender, `addr` or `"Name <addr>"`. Default: `user` if it is an address, else
    /// `protowatch@<host>`.
    #[schemars(pattern(NON_BLANK))]
    pub from: Option<String>,
    /// A PEM file of extra CA certificates to trust besides the system's (a site CA).
    /// Certificate checks cannot be switched off.
    #[schemars(pattern(NON_BLANK))]
    pub ca_file: Option<String>,
    /// The recipients, a list of addresses or one address: the scope `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "recipients")]
    pub recipients: Option<Value>,
    /// More recipient groups for `routes`: scope name → addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "mail_scopes")]
    pub scopes: Option<BTreeMap<String, Vec<String>>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// The longest one send may take, from connecting to the server's last reply, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

fn tls(_: &mut SchemaGenerator) -> Schema {
    words(&["starttls", "wrapper", "none", "opportunistic"], false)
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

/// `mail` needs recipients somewhere, and takes a password one way only.
fn mail_rules(schema: &mut Schema) {
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
