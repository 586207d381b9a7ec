//! The `bec` section: where the deployment's Redis is, how to log in to it, which of our
//! services serve BEC's `scilog`, `signal` and `teams`, and whether to announce them.
//!
//! The Redis password is a [`Secret`]: masked by `check-config`, never logged. BEC puts
//! the `internal/*` channels behind admin ACLs, so a deployment with ACLs needs `user`
//! and `password` (or `password_file`) of a Redis user that may PSUBSCRIBE there.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

use crate::messengers::{Sections, Service};
use crate::settings::Secret;
use crate::settings::check::{Checker, join};
use crate::settings::values::{secret_or_file, secret_value};

/// The keys of the section.
pub const KEYS: &[&str] = &[
    "redis",
    "user",
    "password",
    "password_file",
    "services",
    "publish_services",
];

/// BEC's service names (`NotificationServiceTarget.service_name`).
pub const BEC_SERVICES: &[&str] = &["scilog", "signal", "teams"];

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
            "password": self.password.as_ref().map(|_| Secret::MASK),
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

/// Reads the section at `bec`; every problem is reported with its JSON path.
pub(crate) fn load(
    c: &mut Checker,
    v: &Value,
    base: &Path,
    sections: &Sections,
) -> Option<BecConfig> {
    let p = "bec";
    let s = c.object(v, p, KEYS)?;
    let before = c.problems.len();
    let address = c.non_empty(s, "redis", p);
    let address = c.required(address, s, "redis", p);
    let (host, port) = match address.as_deref().map(parse_address) {
        Some(Ok(hp)) => hp,
        Some(Err(why)) => {
            c.problem(join(p, "redis"), why);
            (String::new(), 0)
        }
        None => (String::new(), 0),
    };
    let user = c.non_empty(s, "user", p);
    let password = secret_or_file(c, s, "password", p, base, |c, v| {
        secret_value(c, v, &join(p, "password"), base)
    });
    let services = match s.get("services") {
        None => default_services(sections),
        Some(v) => {
            let sp = join(p, "services");
            let map = c.object(v, &sp, BEC_SERVICES)?;
            let mut out = BTreeMap::new();
            for (name, ours) in map {
                let at = join(&sp, name);
                let Some(text) = ours.as_str() else {
                    c.wrong_type(&at, "the name of one of our services", ours);
                    continue;
                };
                match Service::parse(text) {
                    Some(service) if sections.scopes(service).is_some() => {
                        out.insert(name.clone(), service);
                    }
                    Some(service) => c.problem(
                        &at,
                        format!(
                            "{service} is not configured (add its section, or leave {name} out)"
                        ),
                    ),
                    None => c.problem(
                        &at,
                        format!(
                            "unknown service {text:?}; expected {}",
                            crate::messengers::section_names()
                        ),
                    ),
                }
            }
            out
        }
    };
    let publish_services = match s.get("publish_services") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            c.wrong_type(&join(p, "publish_services"), "true or false", other);
            false
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
        publish_services,
    })
}

/// BEC's services served by ours of the same kind, where those are configured: SciLog
/// by `scilog`, Signal by `signal`, Teams by a `webhook` scope (README, "With BEC").
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
    #[schemars(pattern(crate::settings::schema::NON_BLANK))]
    pub redis: String,
    /// The Redis ACL user (BEC puts `internal/*` behind admin ACLs). Default: Redis'
    /// `default` user.
    #[schemars(pattern(crate::settings::schema::NON_BLANK))]
    pub user: Option<String>,
    /// The user's password, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::settings::schema::secret_schema")]
    pub password: Option<Value>,
    /// A file holding the password (a trailing newline is dropped).
    #[schemars(pattern(crate::settings::schema::NON_BLANK))]
    pub password_file: Option<String>,
    /// BEC's service name (`scilog`, `signal`, `teams`) → our service that serves it.
    /// Default: `scilog` → scilog, `signal` → signal, `teams` → webhook, each where
    /// configured.
    pub services: Option<Services>,
    /// Write BEC's `available_messaging_services` so that `bec.messaging.<service>`
    /// works in a BEC session without Atlas, and deliver what a session sends straight
    /// to a service (BEC's message stream). Not with Atlas: two backends would both
    /// deliver.
    #[schemars(extend("default" = false))]
    pub publish_services: Option<bool>,
}

/// Which of our services serves each of BEC's.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// Our service for BEC's `scilog`.
    #[schemars(schema_with = "our_service")]
    pub scilog: Option<String>,
    /// Our service for BEC's `signal`.
    #[schemars(schema_with = "our_service")]
    pub signal: Option<String>,
    /// Our service for BEC's `teams` (a `webhook` with the `teams` preset).
    #[schemars(schema_with = "our_service")]
    pub teams: Option<String>,
}

fn our_service(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = Service::ALL.iter().map(Service::as_str).collect();
    crate::settings::schema::words(&names, false)
}
