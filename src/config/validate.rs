//! Turns the parsed JSON into a resolved [`Config`], one section at a time, collecting
//! every problem instead of stopping at the first.
//!
//! `watch`'s entries, `rules`' entries, `routes`' entries, `throttle` and `api` are each
//! described once by a struct here ([`Watch`], [`Rule`], [`RouteFile`], [`Throttle`],
//! [`Api`]), the on-call sections by theirs in [`super::oncall`]: read with
//! `settings::section`, their keys and schema taken from it, their checks across keys in
//! one function each. Only the top level's own keys are still walked by hand with the
//! checker's getters; their schema is written in `schema.rs`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::check::{Checker, Problem, index, join};
use super::hint;
use super::oncall::{self, OnCall};
use super::{
    ApiConfig, Config, DEFAULT_FORGET_AFTER, DEFAULT_MAX_FILES, DEFAULT_MAX_LINE_BYTES,
    Destination, Encoding, Format, RuleConfig, SecretAccess, Sections, Service, StartAt,
    ThrottleConfig, WatchConfig, WatchMode, host_name,
};
use crate::event::Severity;
use crate::settings::forms::{
    Checked, Choices, Flag, NonBlank, Span, Text, TextForm, ValueForm, Whole, Word,
};
use crate::settings::resolve;
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::secret_or_file_field;

/// The top level's own keys; each service's section sits between `instrument` and
/// `watch`.
const TOP_BEFORE: &[&str] = &["instrument"];
const TOP_AFTER: &[&str] = &[
    "watch",
    "rules",
    "routes",
    "escalation",
    "maintenance",
    "digest",
    "throttle",
    "api",
    "state_dir",
    "bec",
];

/// Every key the loader accepts, by the JSON path of the object it is in (`watch[]`: each
/// entry of `watch`, `routes.*[]`: each destination of any event). The schema
/// (`schema.rs`) and its tests are held to this list. The services' keys come from their
/// modules, so the list is made once, on first use.
pub const KNOWN_KEYS: KnownKeys = KnownKeys;

/// The type of [`KNOWN_KEYS`]: iterates as a list of `(path, keys)`.
#[derive(Debug, Clone, Copy)]
pub struct KnownKeys;

type KeyList = Vec<(&'static str, &'static [&'static str])>;

static KEYS: LazyLock<KeyList> = LazyLock::new(|| {
    let leak = |v: Vec<&'static str>| -> &'static [&'static str] { Vec::leak(v) };
    let top: Vec<&str> = TOP_BEFORE
        .iter()
        .copied()
        .chain(Service::ALL.iter().map(Service::as_str))
        .chain(TOP_AFTER.iter().copied())
        .collect();
    let mut out: KeyList = vec![("", leak(top))];
    out.extend(Service::known_keys());
    out.extend([
        ("watch[]", section::keys::<Watch>()),
        ("rules[]", section::keys::<Rule>()),
        ("routes.*[]", section::keys::<RouteFile>()),
        ("escalation.*", section::keys::<oncall::PolicyFile>()),
        ("escalation.*.steps[]", section::keys::<oncall::StepFile>()),
        (
            "escalation.*.steps[].to[]",
            section::keys::<oncall::DestinationFile>(),
        ),
        ("maintenance[]", section::keys::<oncall::WindowFile>()),
        (
            "maintenance[].weekly",
            section::keys::<oncall::WeeklyFile>(),
        ),
        ("maintenance[].match", &crate::oncall::matcher::KEYS),
        ("digest[]", section::keys::<oncall::Digest>()),
        ("digest[].to[]", section::keys::<oncall::DestinationFile>()),
        ("throttle", section::keys::<Throttle>()),
        (
            "throttle.per_minute",
            leak(paced().map(|s| s.as_str()).collect()),
        ),
        ("api", section::keys::<Api>()),
    ]);
    out.extend(crate::bec::config::keys());
    out
});

impl KnownKeys {
    pub fn iter(self) -> std::slice::Iter<'static, (&'static str, &'static [&'static str])> {
        KEYS.iter()
    }

    /// The keys of the object at `path`.
    fn at(self, path: &str) -> &'static [&'static str] {
        self.iter()
            .find(|(p, _)| *p == path)
            .map_or(&[], |(_, keys)| keys)
    }
}

impl IntoIterator for KnownKeys {
    type Item = &'static (&'static str, &'static [&'static str]);
    type IntoIter = std::slice::Iter<'static, (&'static str, &'static [&'static str])>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The services that `throttle.per_minute` paces.
fn paced() -> impl Iterator<Item = Service> {
    Service::ALL
        .into_iter()
        .filter(|s| s.default_per_minute().is_some())
}

pub fn config(
    value: &Value,
    file: &Path,
    base: &Path,
    access: SecretAccess,
) -> Result<Config, Vec<Problem>> {
    let mut c = Checker {
        unreadable_secrets_ok: access == SecretAccess::UseTheAgent,
        ..Checker::default()
    };
    let Some(top) = c.object(value, "", KNOWN_KEYS.at("")) else {
        return Err(c.problems);
    };
    let instrument = c.non_empty(top, "instrument", "").unwrap_or_else(host_name);
    let services = Sections::load(&mut c, top, base);
    let watch = match top.get("watch") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let p = index("watch", i);
                section::load(&mut c, w, &p, |c, file| watch(c, file, &p, base)).flatten()
            })
            .collect(),
        Some(other) => {
            c.wrong_type("watch", "a list of watch entries", other);
            Vec::new()
        }
    };
    let rules = match top.get("rules") {
        None => Vec::new(),
        Some(Value::Array(items)) => rules(&mut c, items),
        Some(other) => {
            c.wrong_type("rules", "a list of rules", other);
            Vec::new()
        }
    };
    let escalation = top
        .get("escalation")
        .map(|v| oncall::escalation(&mut c, v, &services))
        .unwrap_or_default();
    let mut escalate = BTreeMap::new();
    let routes = top
        .get("routes")
        .and_then(|v| routes(&mut c, v, &services, &escalation, &mut escalate));
    let oncall = OnCall {
        maintenance: top
            .get("maintenance")
            .map(|v| oncall::maintenance(&mut c, v))
            .unwrap_or_default(),
        digest: top
            .get("digest")
            .map(|v| oncall::digest(&mut c, v, &services))
            .unwrap_or_default(),
        escalation,
        escalate,
    };
    let throttle = top
        .get("throttle")
        .and_then(|v| section::load(&mut c, v, "throttle", throttle))
        .unwrap_or_default();
    let api = match top.get("api") {
        Some(v) => section::load(&mut c, v, "api", |c, file| api(c, file, base)).flatten(),
        None => Some(ApiConfig::default()),
    };
    let state_dir = resolve(
        base,
        &c.non_empty(top, "state_dir", "")
            .unwrap_or_else(|| ".protowatch".into()),
    );
    let bec = top
        .get("bec")
        .and_then(|v| crate::bec::config::load(&mut c, v, base, &services));
    if c.problems.is_empty() {
        Ok(Config {
            file: file.to_path_buf(),
            instrument,
            services,
            watch,
            rules,
            routes,
            oncall,
            throttle,
            api: api.unwrap_or_default(),
            state_dir,
            bec,
            secrets: c.secrets,
        })
    } else {
        Err(c.problems)
    }
}

/// Protocol files to follow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// A glob, e.g. `C:\\Sonix\\protocol\\*.log` or `protocol/*.log`.
    #[schemars(pattern(NON_BLANK))]
    pub path: Field<Text<NonBlank>>,
    /// How lines are decoded: `auto` is UTF-8, and windows-1251 for a line that is not
    /// valid UTF-8.
    #[serde(default)]
    #[schemars(extend("default" = "auto"))]
    pub encoding: Field<Word<Encoding>>,
    /// `end`: files present at the very first start are read from their end, files that
    /// appear later whole. `beginning`: everything is read.
    #[serde(default)]
    #[schemars(extend("default" = "end"))]
    pub start: Field<Word<StartAt>>,
    /// `notify`: file events, and a check every `poll_interval_ms`. `poll`: checks only, for
    /// network shares, which send no file events.
    #[serde(default)]
    #[schemars(extend("default" = "notify"))]
    pub mode: Field<Word<WatchMode>>,
    /// How often files are checked and the glob expanded again, in milliseconds.
    #[serde(default)]
    #[schemars(extend("default" = 1000))]
    pub poll_interval_ms: Field<Whole<50, 3_600_000>>,
    /// The protocol grammar; `sonix` is the only one so far.
    #[serde(default)]
    #[schemars(extend("default" = "sonix"))]
    pub format: Field<Word<Format>>,
    /// Longer lines are cut, with a marker.
    #[serde(default)]
    #[schemars(extend("default" = 1_048_576))]
    pub max_line_bytes: Field<Whole<1024, 268_435_456>>,
    /// The most files this glob follows; a glob that matches more is reported (a
    /// warning, and in `/healthz`) and the files beyond it are not followed.
    #[serde(default)]
    #[schemars(extend("default" = 10_000))]
    pub max_files: Field<Whole<1, 10_000_000>>,
    /// How long the checkpoint of a file that went away (deleted, rotated out of the
    /// glob, or on a share or in a folder that cannot be seen) is kept: a file that comes
    /// back within it resumes where it was instead of being read again. Seconds, or a
    /// string like `"12h"`, `"7d"` (1 minute … 366 days).
    #[serde(default)]
    #[schemars(extend("default" = "7d"))]
    pub forget_after: Field<Span<60, { 366 * 24 * 3600 }>>,
    /// Whether symbolic links in the folder may lead out of it (out of the glob's part
    /// without wildcards). Off: such a link is named in a warning and not read, so that
    /// whoever can write the protocol folder cannot make the agent send files it can
    /// read and they cannot. The agent's own state folder and config file are never
    /// read either way.
    #[serde(default)]
    #[schemars(extend("default" = false))]
    pub follow_links: Field<Flag>,
}

impl Choices for Encoding {
    const CHOICES: &'static [(&'static str, Encoding)] = &Encoding::CHOICES;
}

impl Choices for StartAt {
    const CHOICES: &'static [(&'static str, StartAt)] =
        &[("end", StartAt::End), ("beginning", StartAt::Beginning)];
}

impl Choices for WatchMode {
    const CHOICES: &'static [(&'static str, WatchMode)] =
        &[("notify", WatchMode::Notify), ("poll", WatchMode::Poll)];
}

impl Choices for Format {
    const CHOICES: &'static [(&'static str, Format)] = &[("sonix", Format::Sonix)];
}

/// One entry of `watch`, defaults filled; `None` without a usable glob.
fn watch(c: &mut Checker, file: Watch, p: &str, base: &Path) -> Option<WatchConfig> {
    let path = file.path.required(c, &join(p, "path")).and_then(|raw| {
        let full = resolve(base, &raw.0).to_string_lossy().into_owned();
        match glob::Pattern::new(&full) {
            Ok(_) => Some(full),
            Err(e) => {
                c.problem(join(p, "path"), format!("invalid glob {:?}: {e}", raw.0));
                None
            }
        }
    });
    Some(WatchConfig {
        path: path?,
        encoding: file.encoding.given().map_or(Encoding::Auto, |w| w.0),
        start: file.start.given().map_or(StartAt::End, |w| w.0),
        mode: file.mode.given().map_or(WatchMode::Notify, |w| w.0),
        poll_interval: Duration::from_millis(file.poll_interval_ms.given().map_or(1000, |n| n.0)),
        format: file.format.given().map_or(Format::Sonix, |w| w.0),
        max_line_bytes: file
            .max_line_bytes
            .given()
            .map_or(DEFAULT_MAX_LINE_BYTES, |n| n.0 as usize),
        max_files: file
            .max_files
            .given()
            .map_or(DEFAULT_MAX_FILES, |n| n.0 as usize),
        forget_after: file
            .forget_after
            .given()
            .map_or(DEFAULT_FORGET_AFTER, |d| d.0),
        follow_links: file.follow_links.given().is_some_and(|f| f.0),
    })
}

fn rules(c: &mut Checker, items: &[Value]) -> Vec<RuleConfig> {
    let mut out: Vec<RuleConfig> = Vec::new();
    for (i, v) in items.iter().enumerate() {
        let p = index("rules", i);
        if let Some(Some(rule)) = section::load(c, v, &p, |c, file| rule(c, file, &p, &out)) {
            out.push(rule);
        }
    }
    out
}

/// A user rule: lines matching `pattern` make the event `event`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = super::schema::rule_rules)]
pub struct Rule {
    /// The rule's name, unique among the rules; errors and `protowatch replay` name it.
    #[schemars(pattern(NON_BLANK))]
    pub name: Field<Text<NonBlank>>,
    /// A regular expression (Rust's `regex` syntax) tried on each decoded line. The named
    /// captures `message` and `source` fill those fields of the event.
    #[schemars(pattern(NON_BLANK))]
    pub pattern: Field<Text<NonBlank>>,
    /// The event name to make (`alarm_major`, `scan_interlock`, or any other), or `ignore`
    /// to silence matching lines.
    #[schemars(pattern(NON_BLANK))]
    pub event: Field<Text<NonBlank>>,
    /// The event's severity: `info`, `warning`, `minor`, `major` (or OnTakt's `INFO`,
    /// `REPORT`, `WARNING`, `PROBLEM`), any case. Required unless `event` is `ignore`.
    // A string here: its word is read in `rule`, whose problem names the rule.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::severity")]
    pub severity: Field<String>,
    /// The dedup key, a template over the named captures (`"vacuum-$pump"`). Default: the
    /// event name, source and message with its digits folded.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub key: Field<Text<NonBlank>>,
}

/// One rule, checked across its keys and against the rules before it (`earlier`);
/// `None` when it cannot be used.
fn rule(c: &mut Checker, file: Rule, p: &str, earlier: &[RuleConfig]) -> Option<RuleConfig> {
    let name = file.name.required(c, &join(p, "name")).map(|n| n.0);
    if let Some(n) = &name
        && earlier.iter().any(|o| &o.name == n)
    {
        c.problem(join(p, "name"), format!("a rule named {n:?} comes earlier"));
    }
    let pattern = file
        .pattern
        .required(c, &join(p, "pattern"))
        .and_then(|pat| match regex::Regex::new(&pat.0) {
            Ok(re) => Some(re),
            Err(e) => {
                c.problem(
                    join(p, "pattern"),
                    format!("invalid regex{}: {e}", of_rule(name.as_deref())),
                );
                None
            }
        });
    let event = file.event.required(c, &join(p, "event")).map(|e| e.0);
    let ignore = event.as_deref() == Some("ignore");
    let severity = match file.severity {
        Field::Given(s) => match s.parse::<Severity>() {
            Ok(sev) => Some(sev),
            Err(e) => {
                c.problem(
                    join(p, "severity"),
                    format!(
                        "unknown severity {:?}{}: expected {}",
                        e.0,
                        of_rule(name.as_deref()),
                        Severity::ACCEPTED
                    ),
                );
                None
            }
        },
        Field::Absent if !ignore => {
            c.problem(
                join(p, "severity"),
                format!(
                    "missing (required){}: one of {}",
                    of_rule(name.as_deref()),
                    Severity::ACCEPTED
                ),
            );
            None
        }
        _ => None,
    };
    Some(RuleConfig {
        name: name?,
        pattern: pattern?,
        event: (!ignore).then_some(event?),
        severity: severity.unwrap_or(Severity::Info),
        key: file.key.given().map(|k| k.0),
    })
}

/// ` in rule "name"`: a rule's problems name it, as operators know rules by name.
fn of_rule(name: Option<&str>) -> String {
    name.map(|n| format!(" in rule {n:?}")).unwrap_or_default()
}

/// The local HTTP API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["token", "token_file"]}))]
pub struct Api {
    /// Address and port to listen on. Any address but loopback needs a token.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK), extend("default" = "127.0.0.1:8767"))]
    pub listen: Field<Text<Listen>>,
    /// The bearer token every request must carry. Or use `token_file`. Without either
    /// the agent makes one in `<state_dir>/api-token`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub token: Field<Text<NonBlank>>,
    /// A file holding the token, instead of `token`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub token_file: Field<Text<NonBlank>>,
    /// Names that requests may give in `Host` besides IP addresses, `localhost` and this
    /// PC's name (a reverse proxy's, a DNS alias); others are refused (DNS rebinding).
    #[serde(default)]
    #[schemars(schema_with = "host_names")]
    pub hosts: Field<Hosts>,
    /// Active alerts that `PUT /api/alerts` may hold; beyond, 429.
    #[serde(default)]
    #[schemars(schema_with = "max_alerts", extend("default" = 10_000))]
    pub max_alerts: Field<Checked<MaxAlerts>>,
}

/// What `api` says, defaults filled; a listener off loopback needs a token.
fn api(c: &mut Checker, file: Api, base: &Path) -> Option<ApiConfig> {
    let p = "api";
    let mut out = ApiConfig::default();
    if let Field::Given(listen) = file.listen {
        out.listen = listen.0;
    }
    out.token = secret_or_file_field(
        c,
        file.token,
        file.token_file.map(|f| f.0),
        "token",
        p,
        base,
    );
    if let Field::Given(hosts) = file.hosts {
        out.hosts = hosts.0;
    }
    if let Field::Given(n) = file.max_alerts {
        out.max_alerts = n.0;
    }
    if !out.listen.ip().is_loopback() && out.token.is_none() {
        c.problem(
            join(p, "token"),
            format!(
                "required when api.listen is not a loopback address ({}): anyone on the network could read and send alerts",
                out.listen
            ),
        );
    }
    Some(out)
}

/// `api.listen`: an address and a port.
pub struct Listen;

impl TextForm for Listen {
    const EXPECTED: &'static str = "a string";
    type Value = std::net::SocketAddr;

    fn parse(text: &str) -> Result<std::net::SocketAddr, String> {
        let listen = NonBlank::parse(text)?;
        listen.parse().map_err(|_| {
            format!("expected an address and port like \"127.0.0.1:8767\", found {listen:?}")
        })
    }
}

/// `api.hosts`: host names, lower case; a wrong one is noted at its index and left out.
/// Its problems name the value found, not only its type.
#[derive(Debug)]
pub struct Hosts(Vec<String>);

impl<'de> Deserialize<'de> for Hosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl V {
            fn not_a_list<E: de::Error>(found: Value) -> Result<Hosts, E> {
                Err(E::custom(format_args!(
                    "expected a list of host names, found {found}"
                )))
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Hosts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of host names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Hosts, A::Error> {
                let list = List::<Checked<HostName>, HostNames>::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Hosts(list.items.into_iter().map(|h| h.0).collect()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Hosts, E> {
                Self::not_a_list(Value::from(b))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Hosts, E> {
                Self::not_a_list(Value::from(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Hosts, E> {
                Self::not_a_list(Value::from(n))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Hosts, E> {
                Self::not_a_list(Value::from(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Hosts, E> {
                Self::not_a_list(Value::from(s))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Hosts, E> {
                Self::not_a_list(Value::Null)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Hosts, A::Error> {
                Self::not_a_list(Value::deserialize(de::value::MapAccessDeserializer::new(
                    map,
                ))?)
            }
        }
        d.deserialize_any(V)
    }
}

/// `api.hosts` in problems.
pub struct HostNames;

impl Wording for HostNames {
    const EXPECTED: &'static str = "a list of host names";
}

/// One of `api.hosts`: letters, digits, dots and dashes; no port, no scheme.
pub struct HostName;

impl ValueForm for HostName {
    type Value = String;

    fn parse(h: Value) -> Result<String, String> {
        match h.as_str().map(str::trim) {
            Some(name)
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') =>
            {
                Ok(name.to_ascii_lowercase())
            }
            _ => Err(format!(
                "expected a host name such as \"in5-pc.example.org\" (no port, no scheme), found {h}"
            )),
        }
    }
}

/// `api.max_alerts`; its problem names the value found.
pub struct MaxAlerts;

impl ValueForm for MaxAlerts {
    type Value = usize;

    fn parse(v: Value) -> Result<usize, String> {
        match v.as_u64() {
            Some(n) if (1..=1_000_000).contains(&n) => Ok(n as usize),
            _ => Err(format!(
                "expected a whole number from 1 to 1000000, found {v}"
            )),
        }
    }
}

fn host_names(generator: &mut SchemaGenerator) -> Schema {
    <Vec<String>>::json_schema(generator)
}

fn max_alerts(generator: &mut SchemaGenerator) -> Schema {
    <Whole<1, 1_000_000>>::json_schema(generator)
}

/// How often messages go out.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Repeats of one alert within this time after a message are counted and sent as one
    /// message when it ends; `0` sends every occurrence. Seconds as a number, or a string
    /// like `"90s"`, `"10m"`, `"24h"`, `"2d"`; at most a day.
    #[serde(default)]
    #[schemars(extend("default" = "10m"))]
    pub repeat_interval: Field<Span<0, { 24 * 3600 }>>,
    /// A delivery still failing after this long is given up and kept as dead. Seconds as a
    /// number, or a string like `"90s"`, `"10m"`, `"24h"`, `"2d"`; 1 minute to 30 days.
    #[serde(default)]
    #[schemars(extend("default" = "24h"))]
    pub max_age: Field<Span<60, { 30 * 24 * 3600 }>>,
    /// At most this many messages a minute to one destination (scope) of a service;
    /// more events are grouped into digests, none dropped.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::per_minute")]
    pub per_minute: Field<Named<Whole<1, 10_000>, PerMinute>>,
}

/// `throttle.per_minute` in problems: its keys are the paced services.
pub struct PerMinute;

impl Wording for PerMinute {
    const EXPECTED: &'static str = "an object";

    fn key(name: &str) -> Result<(), String> {
        let paced = KNOWN_KEYS.at("throttle.per_minute");
        if paced.contains(&name) {
            Ok(())
        } else {
            Err(hint::unknown_key(name, paced))
        }
    }
}

/// What `throttle` says, over the defaults.
fn throttle(_: &mut Checker, file: Throttle) -> ThrottleConfig {
    let mut out = ThrottleConfig::default();
    if let Field::Given(d) = file.repeat_interval {
        out.repeat_interval = d.0;
    }
    if let Field::Given(d) = file.max_age {
        out.max_age = d.0;
    }
    for (name, n) in file.per_minute.given().map(|m| m.0).unwrap_or_default() {
        if let Some(service) = paced().find(|s| s.as_str() == name) {
            out.per_minute.insert(service, n.0 as u32);
        }
    }
    out
}

/// One destination of an event, or (`{"escalate": name}`) the escalation policy it
/// follows.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Route")]
#[schemars(extend("oneOf" = [{"required": ["service"]}, {"required": ["escalate"]}]))]
pub struct RouteFile {
    /// The service (`mail`, `telegram`, …); it must be configured.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::service")]
    pub service: Field<Text<oncall::ServiceName>>,
    /// One of the service's scopes. Default: the service's `default_scope`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub scope: Field<Text<NonBlank>>,
    /// The name of an escalation policy (under `escalation`) the event's alerts follow.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub escalate: Field<Text<NonBlank>>,
}

/// What a route entry says, once checked.
enum RouteTo {
    Destination(Destination),
    Escalate(String),
}

/// The route entry at `p`: a destination, or (`escalate`) a policy's name, never both.
fn route(
    c: &mut Checker,
    file: RouteFile,
    p: &str,
    services: &Sections,
    policies: &BTreeMap<String, crate::oncall::Policy>,
) -> Option<RouteTo> {
    if !matches!(file.escalate, Field::Absent) {
        if !matches!(file.service, Field::Absent) || !matches!(file.scope, Field::Absent) {
            c.problem(
                p,
                "a route entry is a destination ({\"service\", \"scope\"}) or an escalation ({\"escalate\"}), not both",
            );
            return None;
        }
        let name = file.escalate.given()?.0;
        return oncall::escalate_entry(c, name, p, policies).map(RouteTo::Escalate);
    }
    let service = file.service.required(c, &join(p, "service"))?.0;
    let wrong_scope = matches!(file.scope, Field::Wrong);
    let scope = file.scope.given().map(|s| s.0);
    oncall::configured(c, service, scope, wrong_scope, p, services).map(RouteTo::Destination)
}

fn routes(
    c: &mut Checker,
    v: &Value,
    services: &Sections,
    policies: &BTreeMap<String, crate::oncall::Policy>,
    escalate: &mut BTreeMap<String, String>,
) -> Option<BTreeMap<String, Vec<Destination>>> {
    let Some(obj) = v.as_object() else {
        c.wrong_type("routes", "an object mapping event names to destinations", v);
        return None;
    };
    let mut out = BTreeMap::new();
    for (event, targets) in obj {
        let ep = join("routes", event);
        let Some(items) = targets.as_array() else {
            c.wrong_type(&ep, "a list of {\"service\", \"scope\"}", targets);
            continue;
        };
        let mut list = Vec::new();
        for (i, t) in items.iter().enumerate() {
            let tp = index(&ep, i);
            let entry = section::load(c, t, &tp, |c, file| route(c, file, &tp, services, policies));
            match entry.flatten() {
                Some(RouteTo::Escalate(policy)) => {
                    if escalate.contains_key(event) {
                        c.problem(
                            tp,
                            "an event follows one escalation policy: this route names a second",
                        );
                    } else {
                        escalate.insert(event.clone(), policy);
                    }
                }
                Some(RouteTo::Destination(target)) if !list.contains(&target) => list.push(target),
                Some(RouteTo::Destination(_)) | None => {}
            }
        }
        out.insert(event.clone(), list);
    }
    Some(out)
}
