//! The JSON config: its resolved types, loading, the masked view `check-config` prints,
//! and ([`edit`]) changes to the file that keep its layout.
//!
//! Loading is two steps on purpose: `serde_json` turns the text into a `Value` (so invalid
//! JSON is reported with line and column), then `validate` walks that value and collects
//! every problem with its JSON path. What comes out is fully resolved — defaults filled,
//! relative paths made absolute against the config file's folder, secrets read from their
//! files — so no other module ever looks at raw JSON.

pub mod diff;
pub mod edit;
pub mod oncall;
pub mod schema;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

// The toolkit's pieces under the names the rest of the code has always used: an arrow
// from config down to settings, never back.
pub use crate::settings::{
    DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Problem, Secret, SecretFileError, SecretFileProblem,
    SecretSource, duration_text, host_name, mask_password, mask_url, unknown_scope,
};
pub(crate) use crate::settings::{check, hint};
pub use validate::{KNOWN_KEYS, KnownKeys};

// The services' sections are their modules' own; these names are where the rest of the
// code has always found them.
pub use crate::messengers::alertmanager::{
    ALERTMANAGER_LABELS, ALERTMANAGER_SCOPE, AlertmanagerConfig,
};
pub use crate::messengers::mail::{MailConfig, TlsMode};
pub use crate::messengers::telegram::TelegramConfig;
pub use crate::messengers::webhook::{Preset, WebhookBody, WebhookConfig, WebhookTarget};
pub use crate::messengers::{Destination, Sections, Service};

use crate::event::Severity;

/// Environment variable that names the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "PROTOWATCH_CONFIG";
/// Default maximum length of one protocol line; longer lines are cut with a marker.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Default of `watch[].max_files`: the most files one glob follows.
pub const DEFAULT_MAX_FILES: usize = 10_000;
/// Default of `watch[].forget_after`: how long the checkpoint of a file that went away is
/// kept, so that it resumes there if it comes back.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this was loaded from.
    pub file: PathBuf,
    /// Shown in every message so a reader can tell instruments apart.
    pub instrument: String,
    /// One section per service (`config.mail`, through `Deref`), each `None` when the
    /// file has none.
    pub services: Sections,
    pub watch: Vec<WatchConfig>,
    pub rules: Vec<RuleConfig>,
    /// `None` when the file has no `routes`: then the default routing applies.
    pub routes: Option<BTreeMap<String, Vec<Destination>>>,
    /// Escalation policies, maintenance windows, handover digests, and which events
    /// escalate (`{"escalate": …}` in `routes`).
    pub oncall: oncall::OnCall,
    pub throttle: ThrottleConfig,
    pub api: ApiConfig,
    pub state_dir: PathBuf,
    /// The BEC bridge (`bec`), `None` when the file has none.
    pub bec: Option<crate::bec::BecConfig>,
    /// Where each secret came from, by the JSON path of its key: for `check-config`'s
    /// warnings, and for commands that must not send with a secret they could not read.
    pub secrets: Vec<(String, SecretSource)>,
}

/// Whose load of the config this is. The agent needs every secret; a command that only
/// asks the running agent (`send-message`, `alerts`) needs none, and is run by members of
/// the group `protowatch`, who may read the config but not the secret files beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretAccess {
    /// A secret file that cannot be read is an error.
    #[default]
    Agent,
    /// A secret file this user may not read is noted ([`SecretSource::Unreadable`]) and
    /// its secret left empty ([`Secret::unread`]).
    UseTheAgent,
}

/// Built from the config, as callers always have; defined here and not in `messengers`
/// because the services sit below the assembled config and do not know it.
impl crate::messengers::Messengers {
    pub fn from_config(
        config: &Config,
    ) -> Result<crate::messengers::Messengers, crate::messengers::SetupError> {
        Self::from_sections(&config.services)
    }
}

/// What BEC may name, from the config: built here for the same reason as the
/// messengers, the bridge sitting below the config (docs/ARCHITECTURE.md, "Layers").
impl crate::bec::Served {
    /// `None` without a `bec` section.
    pub fn from_config(config: &Config) -> Option<crate::bec::Served> {
        let bec = config.bec.as_ref()?;
        Some(Self::new(bec, &config.services))
    }
}

impl crate::bec::routes::Resolved {
    /// BEC's routes `raw` against `config`; none without a `bec` section or routes.
    pub fn from_config(
        config: &Config,
        raw: Option<&crate::bec::codec::BecRoutes>,
    ) -> crate::bec::routes::Resolved {
        match (crate::bec::Served::from_config(config), raw) {
            (Some(served), Some(raw)) => crate::bec::routes::resolve(&served, raw),
            _ => Self::default(),
        }
    }
}

/// The service sections read as fields of the config (`config.mail`), as they were
/// before they became their modules' own.
impl std::ops::Deref for Config {
    type Target = Sections;

    fn deref(&self) -> &Sections {
        &self.services
    }
}

/// The local HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Required off loopback. Without it the agent makes one of its own
    /// (`<state_dir>/api-token`); every request needs one or the other.
    pub token: Option<Secret>,
    /// Names besides IP addresses, `localhost` and this PC's name that `Host` may give
    /// (a reverse proxy's, a DNS alias).
    pub hosts: Vec<String>,
    /// Active API alerts at most; a `PUT` beyond is 429.
    pub max_alerts: usize,
}

/// `api.max_alerts` by default.
pub const DEFAULT_MAX_ALERTS: usize = 10_000;

/// `api.listen` by default: loopback only.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8767";

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8767)),
            token: None,
            hosts: Vec::new(),
            max_alerts: DEFAULT_MAX_ALERTS,
        }
    }
}

/// How often messages may go out: repeats of one alert, and messages per destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Repeats of one dedup key within this time after a message are counted, and sent
    /// as one "repeated N times" message when it ends. Zero turns this off.
    pub repeat_interval: Duration,
    /// A delivery that could not be made for this long is given up (kept as dead).
    pub max_age: Duration,
    /// At most this many messages a minute to one scope, per paced service
    /// (`throttle.per_minute.<service>`, else the service's own default); more events are
    /// grouped into digests.
    pub per_minute: std::collections::BTreeMap<Service, u32>,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            repeat_interval: Duration::from_secs(600),
            max_age: Duration::from_secs(24 * 3600),
            per_minute: Service::ALL
                .into_iter()
                .filter_map(|s| Some((s, s.default_per_minute()?)))
                .collect(),
        }
    }
}

impl ThrottleConfig {
    /// Messages a minute to one scope of `service`; unlimited for a service that paces
    /// itself (Alertmanager).
    pub fn per_minute(&self, service: Service) -> u32 {
        self.per_minute
            .get(&service)
            .copied()
            .or(service.default_per_minute())
            .unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Auto,
    Utf8,
    Windows1251,
}

impl Encoding {
    pub const CHOICES: [(&'static str, Encoding); 3] = [
        ("auto", Encoding::Auto),
        ("utf-8", Encoding::Utf8),
        ("windows-1251", Encoding::Windows1251),
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    End,
    Beginning,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchMode {
    Notify,
    Poll,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Sonix,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Absolute glob pattern.
    pub path: String,
    pub encoding: Encoding,
    pub start: StartAt,
    pub mode: WatchMode,
    /// How often files are stat'ed and the glob re-expanded (in notify mode too, as a
    /// safety net for missed events).
    pub poll_interval: Duration,
    pub format: Format,
    pub max_line_bytes: usize,
    /// The most files the glob follows; more are reported, not followed.
    pub max_files: usize,
    /// How long the checkpoint of a file that is gone (or cannot be seen) is kept: a file
    /// that comes back within it resumes where it was.
    pub forget_after: Duration,
    /// Whether a symbolic link in the folder may lead to a file outside the glob's base
    /// folder. Off by default: whoever can write the protocol folder could otherwise
    /// make the agent read, and send, any file the agent can read.
    pub follow_links: bool,
}

#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub name: String,
    pub pattern: regex::Regex,
    /// `None`: the rule silences matching lines (`"event": "ignore"`).
    pub event: Option<String>,
    pub severity: Severity,
    /// A template over the pattern's named captures (`$name`), or the default key.
    pub key: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "no config file at {}: give one with --config PATH or the environment variable {CONFIG_ENV}, or create config.json here (config.example.json is a start)",
        path.display()
    )]
    Missing { path: PathBuf },
    #[error("{}: the file is empty; a config is a JSON object (see config.example.json)", path.display())]
    Empty { path: PathBuf },
    #[error("{}:{line}:{column}: invalid JSON: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{}", list_problems(path, problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn list_problems(path: &Path, problems: &[Problem]) -> String {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| {
            if p.json_path.is_empty() {
                format!("{}: {}", path.display(), p.message)
            } else {
                format!("{}: {}: {}", path.display(), p.json_path, p.message)
            }
        })
        .collect();
    lines.join("\n")
}

impl Config {
    /// The file named by `--config`, else `$PROTOWATCH_CONFIG`, else `./config.json`.
    pub fn locate(explicit: Option<&Path>) -> PathBuf {
        if let Some(p) = explicit {
            return p.to_path_buf();
        }
        match std::env::var_os(CONFIG_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => PathBuf::from("config.json"),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_for(path, SecretAccess::Agent)
    }

    /// As [`Config::load`], for whom `access` says.
    pub fn load_for(path: &Path, access: SecretAccess) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ConfigError::Missing {
                    path: path.to_path_buf(),
                }
            } else {
                ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Self::from_text_for(path, &text, access)
    }

    /// Parses `text` as if it were the content of `path` (relative paths in it resolve
    /// against `path`'s folder).
    pub fn from_text(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::from_text_for(path, text, SecretAccess::Agent)
    }

    /// As [`Config::from_text`], for whom `access` says.
    pub fn from_text_for(
        path: &Path,
        text: &str,
        access: SecretAccess,
    ) -> Result<Config, ConfigError> {
        // An editor on Windows may save with a BOM; it is not part of the JSON.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(ConfigError::Empty {
                path: path.to_path_buf(),
            });
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            let message = strip_position(&e.to_string());
            // The hint on a line of its own, under the position it explains.
            let message = match hint::json_syntax(&message, text, e.line(), e.column()) {
                Some(hint) => format!("{message}\n{hint}"),
                None => message,
            };
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })?;
        let base = absolute_dir(path);
        // Values left for the operator (docs/src/operations.md) are refused here, where
        // every load passes, so that `check-config`, `run` and a reload agree.
        let placeholders = crate::settings::placeholder::find(&value);
        crate::settings::placeholder::merge(
            validate::config(&value, path, &base, access),
            placeholders,
        )
        .map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })
    }

    /// The resolved config as JSON with every secret masked: what `check-config` prints.
    pub fn masked_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        out.insert("instrument".into(), json!(self.instrument));
        self.services.masked(&mut out);
        let watch: Vec<Value> = self
            .watch
            .iter()
            .map(|w| {
                json!({
                    "path": w.path,
                    "encoding": Encoding::CHOICES.iter().find(|(_, e)| *e == w.encoding).map(|(n, _)| *n),
                    "start": match w.start { StartAt::End => "end", StartAt::Beginning => "beginning" },
                    "mode": match w.mode { WatchMode::Notify => "notify", WatchMode::Poll => "poll" },
                    "poll_interval_ms": w.poll_interval.as_millis() as u64,
                    "format": "sonix",
                    "max_line_bytes": w.max_line_bytes,
                    "max_files": w.max_files,
                    "forget_after": duration_text(w.forget_after),
                    "follow_links": w.follow_links,
                })
            })
            .collect();
        out.insert("watch".into(), Value::Array(watch));
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "pattern": r.pattern.as_str(),
                    "event": r.event.as_deref().unwrap_or("ignore"),
                    "severity": r.severity.as_str(),
                    "key": r.key,
                })
            })
            .collect();
        out.insert("rules".into(), Value::Array(rules));
        if let Some(routes) = &self.routes {
            let routes: serde_json::Map<String, Value> = routes
                .iter()
                .map(|(event, targets)| {
                    let mut t: Vec<Value> = targets
                        .iter()
                        .map(|t| json!({"service": t.service.as_str(), "scope": t.scope}))
                        .collect();
                    if let Some(policy) = self.oncall.escalate.get(event) {
                        t.push(json!({"escalate": policy}));
                    }
                    (event.clone(), Value::Array(t))
                })
                .collect();
            out.insert("routes".into(), Value::Object(routes));
        }
        for (key, value) in oncall::shown(&self.oncall) {
            out.insert(key.into(), value);
        }
        out.insert(
            "throttle".into(),
            json!({
                "repeat_interval": duration_text(self.throttle.repeat_interval),
                "max_age": duration_text(self.throttle.max_age),
                "per_minute": self.throttle.per_minute.iter()
                    .map(|(s, n)| (s.as_str().to_string(), json!(n)))
                    .collect::<serde_json::Map<String, Value>>(),
            }),
        );
        out.insert(
            "api".into(),
            json!({
                "listen": self.api.listen.to_string(),
                "token": self.api.token.as_ref().map(|_| Secret::MASK),
                "hosts": self.api.hosts,
                "max_alerts": self.api.max_alerts,
            }),
        );
        out.insert("state_dir".into(), json!(self.state_dir));
        if let Some(bec) = &self.bec {
            out.insert("bec".into(), bec.masked());
        }
        // Which file a secret came from is no secret, and says where to look when it is
        // wrong: `"bot-id_file"` beside the masked `"bot-id"`.
        for (json_path, source) in &self.secrets {
            let (SecretSource::File(file) | SecretSource::Unreadable(file)) = source else {
                continue;
            };
            if let Some((section, key)) = json_path.split_once('.')
                && key.ends_with("_file")
                && !key.contains('.')
                && let Some(Value::Object(o)) = out.get_mut(section)
            {
                o.insert(key.to_string(), json!(file));
            }
        }
        Value::Object(out)
    }

    /// The secrets in files this user may not read, as `(key, file)`: a command that
    /// would send itself must refuse instead of sending with an empty token.
    pub fn unreadable_secrets(&self) -> Vec<(&str, &Path)> {
        self.secrets
            .iter()
            .filter_map(|(key, source)| match source {
                SecretSource::Unreadable(file) => Some((key.as_str(), file.as_path())),
                _ => None,
            })
            .collect()
    }

    /// Whether any service is configured at all; a config without one can watch but
    /// tell nobody, which `check-config` reports as an error.
    pub fn has_service(&self) -> bool {
        Service::ALL.into_iter().any(|s| self.scopes(s).is_some())
    }

    /// The scope names of `service`, sorted; `None` when the file has no section for it.
    /// Every configured `service:scope`, in service then scope order.
    pub fn destinations(&self) -> Vec<Destination> {
        Service::ALL
            .into_iter()
            .flat_map(|service| {
                self.scopes(service)
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |scope| Destination {
                        service,
                        scope: scope.to_string(),
                    })
            })
            .collect()
    }

    pub fn scopes(&self, service: Service) -> Option<Vec<&str>> {
        self.services.scopes(service)
    }

    /// The default scope of `service`; `None` when it has none or is not configured.
    pub fn default_scope(&self, service: Service) -> Option<&str> {
        self.services.default_scope(service)
    }

    /// Who a destination reaches, as the config names them (never a secret).
    pub fn reaches(&self, to: &Destination) -> String {
        self.services.reaches(to)
    }
}

/// serde_json appends " at line L column C"; we print the position in front instead.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn absolute_dir(config_file: &Path) -> PathBuf {
    let dir = config_file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    std::path::absolute(&dir).unwrap_or(dir)
}
