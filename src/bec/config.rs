//! The `bec` section: where the deployment's Redis is, how to log in to it, which of our
//! services serve BEC's `scilog`, `signal` and `teams`, and whether to announce them.
//!
//! [`File`] describes the section once — keys, forms, schema — and is read with
//! `settings::section`; `validate` checks our services against the configured sections.
//! The Redis password is a [`Secret`]: masked by `check-config`, never logged. BEC puts
//! the `internal/*` channels behind admin ACLs, so a deployment with ACLs needs `user`
//! and `password` (or `password_file`) of a Redis user that may PSUBSCRIBE there.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::messengers::{Sections, Service};
use crate::settings::Secret;
use crate::settings::check::{Checker, join};
use crate::settings::forms::{Flag, NonBlank, SecretRef, Text, TextForm};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field};
use crate::settings::values::secret_or_file_field;

/// BEC's service names (`NotificationServiceTarget.service_name`): the keys of
/// [`Services`].
pub fn bec_services() -> &'static [&'static str] {
    section::keys::<Services>()
}

/// Redis' own port, when `redis` names a host only.
pub const DEFAULT_REDIS_PORT: u16 = 6379;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BecConfig {
    pub host: String,
    pub port: u16,
    /// The Redis ACL user; `None`: the `default` user.
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// BEC's service name → our service. Only services that are configured.
    pub services: BTreeMap<String, Service>,
    /// Write BEC's `available_messaging_services` describing what we serve, and read
    /// BEC's message stream (`bec::stream`): we are the deployment's messaging backend.
    pub publish_services: bool,
}

impl BecConfig {
    /// `host:port`, as logs and `/healthz` show it.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Our service for BEC's service name, if we serve it.
    pub fn service(&self, bec_name: &str) -> Option<Service> {
        self.services.get(bec_name).copied()
    }

    /// What `check-config` prints: the password masked.
    pub fn masked(&self) -> Value {
        let services: serde_json::Map<String, Value> = self
            .services
            .iter()
            .map(|(k, v)| (k.clone(), json!(v.as_str())))
            .collect();
        json!({
            "redis": self.address(),
            "user": self.user,
            "password": self.password,
            "services": services,
            "publish_services": self.publish_services,
        })
    }

    /// The secrets, for the reload's "what changed" (never printed).
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        self.password
            .iter()
            .map(|p| ("bec.password", p.expose().to_owned()))
            .collect()
    }
}

/// The section's keys by JSON path: those of [`File`] and of its `services`.
pub fn keys() -> [(&'static str, &'static [&'static str]); 2] {
    [
        ("bec", section::keys::<File>()),
        ("bec.services", section::keys::<Services>()),
    ]
}

/// Reads the section at `bec`; every problem is reported with its JSON path, and any
/// problem leaves the bridge out.
pub(crate) fn load(
    c: &mut Checker,
    v: &Value,
    base: &Path,
    sections: &Sections,
) -> Option<BecConfig> {
    let before = c.problems.len();
    section::load(c, v, "bec", |c, file| {
        validate(c, file, base, sections, before)
    })?
}

fn validate(
    c: &mut Checker,
    file: File,
    base: &Path,
    sections: &Sections,
    before: usize,
) -> Option<BecConfig> {
    let p = "bec";
    let (host, port) = file
        .redis
        .required(c, &join(p, "redis"))
        .map_or((String::new(), 0), |a| a.0);
    let user = file.user.given().map(|u| u.0);
    let password_file = file.password_file.map(|f| f.0);
    let password = secret_or_file_field(c, file.password, password_file, "password", p, base);
    let services = match file.services {
        Field::Absent => default_services(sections),
        Field::Wrong => return None,
        Field::Given(s) => {
            let mut out = BTreeMap::new();
            for (name, ours) in [
                ("scilog", s.scilog),
                ("signal", s.signal),
                ("teams", s.teams),
            ] {
                let Field::Given(Text(service)) = ours else {
                    continue;
                };
                if sections.scopes(service).is_some() {
                    out.insert(name.to_string(), service);
                } else {
                    c.problem(
                        join(&join(p, "services"), name),
                        format!(
                            "{service} is not configured (add its section, or leave {name} out)"
                        ),
                    );
                }
            }
            out
        }
    };
    if c.problems.len() > before {
        return None;
    }
    Some(BecConfig {
        host,
        port,
        user,
        password,
        services,
        publish_services: file.publish_services.given().is_some_and(|f| f.0),
    })
}

/// BEC's services served by ours of the same kind, where those are configured: SciLog
/// by `scilog`, Signal by `signal`, Teams by a `webhook` scope (docs/src/bec.md).
fn default_services(sections: &Sections) -> BTreeMap<String, Service> {
    [
        ("scilog", Service::Scilog),
        ("signal", Service::Signal),
        ("teams", Service::Webhook),
    ]
    .into_iter()
    .filter(|(_, s)| sections.scopes(*s).is_some())
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

/// `host:port`, `host` (port 6379) or `[v6]:port`.
fn parse_address(text: &str) -> Result<(String, u16), String> {
    let text = text.trim();
    let bad = || format!("expected host:port (e.g. \"localhost:6379\"), found {text:?}");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => return Err(bad()),
            Some((h, port)) => (h, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(bad());
    }
    let port = match port {
        None => DEFAULT_REDIS_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad()),
        },
    };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            parse_address("localhost:6379"),
            Ok(("localhost".into(), 6379))
        );
        assert_eq!(parse_address("bec-redis"), Ok(("bec-redis".into(), 6379)));
        assert_eq!(parse_address("[::1]:7000"), Ok(("::1".into(), 7000)));
        assert!(parse_address("host:0").is_err());
        assert!(parse_address("host:x").is_err());
        assert!(parse_address("redis://host:1").is_err());
        assert!(parse_address("::1:7000").is_err());
    }
}

/// The BEC bridge: protowatch joins a BEC deployment's Redis as BEC's SciHub does, takes
/// every `connector.notify(event, message)` through its own alerts, routes, throttling
/// and outbox, and follows BEC's `set_auto_notifications` routes.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Bec")]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["password", "password_file"]}))]
pub struct File {
    /// The deployment's Redis, `host:port` (`host` alone: port 6379).
    #[schemars(pattern(NON_BLANK))]
    pub redis: Field<Text<RedisAddress>>,
    /// The Redis ACL user (BEC puts `internal/*` behind admin ACLs). Default: Redis'
    /// `default` user.
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
    /// BEC's service name (`scilog`, `signal`, `teams`) → our service that serves it.
    /// Default: `scilog` → scilog, `signal` → signal, `teams` → webhook, each where
    /// configured.
    #[serde(default)]
    pub services: Field<Services>,
    /// Write BEC's `available_messaging_services` so that `bec.messaging.<service>`
    /// works in a BEC session without Atlas, and deliver what a session sends straight
    /// to a service (BEC's message stream). Not with Atlas: two backends would both
    /// deliver.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub publish_services: Field<Flag>,
}

/// Which of our services serves each of BEC's.
// Each is optional to the loader; the schema has always listed them as required.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// Our service for BEC's `scilog`.
    #[schemars(schema_with = "our_service")]
    pub scilog: Field<Text<OurService>>,
    /// Our service for BEC's `signal`.
    #[schemars(schema_with = "our_service")]
    pub signal: Field<Text<OurService>>,
    /// Our service for BEC's `teams` (a `webhook` with the `teams` preset).
    #[schemars(schema_with = "our_service")]
    pub teams: Field<Text<OurService>>,
}

/// `host:port`, `host` (port 6379) or `[v6]:port`.
pub struct RedisAddress;

impl TextForm for RedisAddress {
    const EXPECTED: &'static str = "a string";
    type Value = (String, u16);

    fn parse(text: &str) -> Result<(String, u16), String> {
        parse_address(&NonBlank::parse(text)?)
    }
}

/// One of our services, by its name.
pub struct OurService;

impl TextForm for OurService {
    const EXPECTED: &'static str = "the name of one of our services";
    type Value = Service;

    fn parse(text: &str) -> Result<Service, String> {
        Service::parse(text).ok_or_else(|| {
            format!(
                "unknown service {text:?}; expected {}",
                crate::messengers::section_names()
            )
        })
    }
}

fn our_service(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Service::ALL.iter().map(Service::as_str).collect();
    crate::settings::schema::words(&names, false)
}
