//! The on-call sections of the config — `escalation` (named policies), `maintenance`
//! (windows) and `digest` (handover messages) — and the `{"escalate": …}` entries of
//! `routes`, read into the rules of [`crate::oncall`] with every problem at its JSON
//! path, as the agent's other sections are.
//!
//! Each part is described once by a struct (`PolicyFile`, `StepFile`, `WindowFile`,
//! `WeeklyFile`, `Digest`, `DestinationFile`) read by `settings::section`, which also
//! gives the schema and the loader's key lists; checks across keys and against the
//! configured services and policies follow in one function each. A destination is
//! checked against the services by [`configured`], which routes share.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveTime;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::check::{Checker, index, join};
use super::{Destination, Sections, Service};
use crate::oncall::matcher::{self, Matchers};
use crate::oncall::window::{self, Schedule, Window, Zone};
use crate::oncall::{Policy, Step};
use crate::settings::forms::{NonBlank, Span, Text, TextForm};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Wording};
use crate::settings::unknown_scope;

/// The longest duration of a policy: 30 days, in seconds.
const LONGEST_SECS: u64 = 30 * 24 * 3600;

/// A scheduled handover digest: every day at `at` on the zone's clock, to `to`.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestConfig {
    pub at: NaiveTime,
    pub zone: Zone,
    pub to: Vec<Destination>,
}

/// The on-call part of the config; empty when the file has none of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnCall {
    pub escalation: BTreeMap<String, Policy>,
    pub maintenance: Vec<Window>,
    pub digest: Vec<DigestConfig>,
    /// Event name → the escalation policy its route names.
    pub escalate: BTreeMap<String, String>,
}

/// One destination.
// Of an escalation step or a digest; its doc line is its description in the schema.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Destination")]
pub struct DestinationFile {
    /// The service (`mail`, `signal`, …); it must be configured.
    #[schemars(schema_with = "super::schema::service")]
    pub service: Field<Text<ServiceName>>,
    /// One of the service's scopes. Default: the service's `default_scope`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub scope: Field<Text<NonBlank>>,
}

/// A service's name, in any case.
pub struct ServiceName;

impl TextForm for ServiceName {
    const EXPECTED: &'static str = "a string";
    type Value = Service;

    fn parse(text: &str) -> Result<Service, String> {
        Service::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<String> = Service::ALL
                    .iter()
                    .map(|s| format!("{:?}", s.as_str()))
                    .collect();
                format!("expected one of {}, found {text:?}", names.join(", "))
            })
    }
}

/// `to` of a step or a digest in problems.
pub struct Destinations;

impl Wording for Destinations {
    const EXPECTED: &'static str = "a non-empty list of {\"service\", \"scope\"}";
    const EMPTY: Option<&'static str> =
        Some("expected a non-empty list of {\"service\", \"scope\"}, found a list");
}

/// The list of `to`, each entry kept in its place so that its problems name its index.
pub type DestinationList = List<Field<DestinationFile>, Destinations>;

/// The destinations of `to` at `p` (`Absent`: missing, which is a problem), checked
/// against the configured services, each once.
fn destinations_read(
    c: &mut Checker,
    to: Field<DestinationList>,
    p: &str,
    services: &Sections,
) -> Vec<Destination> {
    let items = match to {
        Field::Given(list) => list.items,
        Field::Absent => {
            c.problem(p, "missing (required)");
            return Vec::new();
        }
        Field::Wrong => return Vec::new(),
    };
    let mut out: Vec<Destination> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let Field::Given(d) = item else { continue };
        let dp = index(p, i);
        let service = d.service.required(c, &join(&dp, "service")).map(|s| s.0);
        let wrong_scope = matches!(d.scope, Field::Wrong);
        let scope = d.scope.given().map(|s| s.0);
        if let Some(d) = service.and_then(|s| configured(c, s, scope, wrong_scope, &dp, services))
            && !out.contains(&d)
        {
            out.push(d);
        }
    }
    out
}

/// `service` and `scope` (`None`: absent, or `scope_wrong` when its problem is noted)
/// of the destination at `p`, checked against the configured services.
pub fn configured(
    c: &mut Checker,
    service: Service,
    scope: Option<String>,
    scope_wrong: bool,
    p: &str,
    services: &Sections,
) -> Option<Destination> {
    // Each service's scope names, and its default scope for entries without one.
    let Some((names, default)) = services
        .scopes(service)
        .map(|names| (names, services.default_scope(service)))
    else {
        c.problem(
            join(p, "service"),
            format!("the service {service} is not configured (no \"{service}\" section)"),
        );
        return None;
    };
    let scope = match (scope, default) {
        (Some(s), _) => s,
        // An empty or mistyped "scope" was reported already.
        (None, _) if scope_wrong => return None,
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            c.problem(
                join(p, "scope"),
                format!(
                    "missing, and {service} has no default scope: name one of {} here, or set {service}.default_scope",
                    if names.is_empty() {
                        "its scopes".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            );
            return None;
        }
    };
    if names.contains(&scope.as_str()) {
        Some(Destination { service, scope })
    } else {
        c.problem(
            join(p, "scope"),
            unknown_scope(service.as_str(), &scope, names),
        );
        None
    }
}

/// `escalation`: name → policy. A policy whose steps have a problem is left out, so a
/// route naming it is told so too.
pub fn escalation(c: &mut Checker, v: &Value, services: &Sections) -> BTreeMap<String, Policy> {
    let mut out = BTreeMap::new();
    let Some(obj) = v.as_object() else {
        c.wrong_type(
            "escalation",
            "an object mapping policy names to policies",
            v,
        );
        return out;
    };
    for (name, pv) in obj {
        let p = join("escalation", name);
        if let Some(Some(policy)) =
            section::load(c, pv, &p, |c, file| policy(c, file, name, &p, services))
        {
            out.insert(name.clone(), policy);
        }
    }
    out
}

/// An escalation policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Policy")]
pub struct PolicyFile {
    /// In order; each `after` counts from the alert's creation.
    #[schemars(length(min = 1))]
    pub steps: Field<List<Field<StepFile>, Steps>>,
    /// An acknowledgement holds escalation back this long; an alert still active after
    /// it escalates again. Default: until the alert ends.
    #[serde(default)]
    pub ack_timeout: Field<Span<1, LONGEST_SECS>>,
}

/// A step: after `after`, if nobody acknowledged or dismissed the alert, tell `to`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PolicyStep")]
pub struct StepFile {
    /// From the alert's creation: seconds, or a string like `"10m"`.
    pub after: Field<Span<0, LONGEST_SECS>>,
    #[schemars(length(min = 1))]
    pub to: Field<DestinationList>,
    /// On the last step only: tell them again this often until someone acts.
    #[serde(default)]
    pub repeat: Field<Span<1, LONGEST_SECS>>,
}

/// A policy's `steps` in problems.
pub struct Steps;

impl Wording for Steps {
    const EXPECTED: &'static str = "a non-empty list of steps";
    const EMPTY: Option<&'static str> = Some("expected a non-empty list of steps, found a list");
}

/// The policy `name` at `p`; `None` when its steps have a problem.
fn policy(
    c: &mut Checker,
    file: PolicyFile,
    name: &str,
    p: &str,
    services: &Sections,
) -> Option<Policy> {
    let steps_path = join(p, "steps");
    let items = file
        .steps
        .required_or(
            c,
            &steps_path,
            "missing (required): list the steps, each {\"after\", \"to\"}",
        )?
        .items;
    let count = items.len();
    let mut steps = Vec::new();
    let mut last_after: Option<Duration> = None;
    for (i, item) in items.into_iter().enumerate() {
        let Field::Given(step) = item else { continue };
        let sp = index(&steps_path, i);
        let after = step.after.required(c, &join(&sp, "after")).map(|a| a.0);
        let repeat = step.repeat.given().map(|r| r.0);
        if repeat.is_some() && i + 1 < count {
            c.problem(
                join(&sp, "repeat"),
                "only the last step may repeat: it is the one told again until someone acts",
            );
        }
        let to = destinations_read(c, step.to, &join(&sp, "to"), services);
        if let (Some(a), Some(prev)) = (after, last_after)
            && a < prev
        {
            c.problem(
                join(&sp, "after"),
                "steps are counted from the alert's creation: each must come at or after the one before",
            );
        }
        if let Some(a) = after {
            last_after = Some(a);
            steps.push(Step {
                after: a,
                to,
                repeat,
            });
        }
    }
    // Any problem in the steps, met while reading or checking, leaves the policy out.
    let in_steps = |path: &str| {
        path.strip_prefix(&steps_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('['))
    };
    if c.problems.iter().any(|pr| in_steps(&pr.json_path)) {
        return None;
    }
    Some(Policy {
        name: name.to_string(),
        steps,
        ack_timeout: file.ack_timeout.given().map(|t| t.0),
    })
}

/// `maintenance`: a list of windows.
pub fn maintenance(c: &mut Checker, v: &Value) -> Vec<Window> {
    let Some(items) = v.as_array() else {
        c.wrong_type("maintenance", "a list of maintenance windows", v);
        return Vec::new();
    };
    let mut out: Vec<Window> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index("maintenance", i);
        if let Some(Some(w)) = section::load(c, item, &p, |c, file| window(c, file, &p, &out)) {
            out.push(w);
        }
    }
    out
}

/// A maintenance window: weekly (`weekly`) or once (`from`–`to`), on the clock of `tz`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Window")]
#[schemars(extend("oneOf" = [{"required": ["weekly"]}, {"required": ["from", "to"]}]))]
pub struct WindowFile {
    /// Shown where an alert is held back by it.
    #[schemars(pattern(NON_BLANK))]
    pub name: Field<Text<NonBlank>>,
    #[serde(default)]
    pub weekly: Field<WeeklyFile>,
    /// The start of a one-off window: `"2026-12-21T00:00"`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub from: Field<Text<DateTime>>,
    /// Its end: `"2027-01-05T00:00"`.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub to: Field<Text<DateTime>>,
    /// An IANA time zone (`Europe/Zurich`). Default: the PC's.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub tz: Field<Text<ZoneName>>,
    /// What it holds back; all given must match. Default: everything.
    #[serde(rename = "match", default)]
    pub matchers: Field<MatchValue>,
}

/// A weekly window: on each of `days`, from `from` to `to` (a `to` at or before `from`
/// ends the next day).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Weekly")]
pub struct WeeklyFile {
    /// `mon` … `sun`.
    #[schemars(length(min = 1))]
    pub days: Field<List<Text<DayName>, Days>>,
    /// `"HH:MM"`.
    #[schemars(pattern(r"^[0-2][0-9]:[0-5][0-9]$"))]
    pub from: Field<Text<ClockTime>>,
    /// `"HH:MM"`.
    #[schemars(pattern(r"^[0-2][0-9]:[0-5][0-9]$"))]
    pub to: Field<Text<ClockTime>>,
}

/// A window's `match`, taken as it stands: [`Matchers::from_json`] reads it, as it reads
/// a silence's, so both say the same of it.
#[derive(Debug)]
pub struct MatchValue(Value);

impl<'de> Deserialize<'de> for MatchValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        section::raw(d).map(MatchValue)
    }
}

impl JsonSchema for MatchValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        super::schema::Match::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        super::schema::Match::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::schema::Match::json_schema(generator)
    }
}

/// A date and time, `"2026-12-21T00:00"`.
pub struct DateTime;

impl TextForm for DateTime {
    const EXPECTED: &'static str = "a string";
    type Value = chrono::NaiveDateTime;

    fn parse(text: &str) -> Result<chrono::NaiveDateTime, String> {
        window::parse_date_time(&NonBlank::parse(text)?).map_err(|e| e.to_string())
    }
}

/// A day of the week, `"tue"`.
pub struct DayName;

impl TextForm for DayName {
    const EXPECTED: &'static str = "a day such as \"tue\"";
    type Value = chrono::Weekday;

    fn parse(text: &str) -> Result<chrono::Weekday, String> {
        window::parse_day(text).map_err(|e| e.to_string())
    }
}

/// A weekly window's `days` in problems.
pub struct Days;

impl Wording for Days {
    const EXPECTED: &'static str = "a non-empty list of days such as [\"tue\"]";
    const EMPTY: Option<&'static str> =
        Some("expected a non-empty list of days such as [\"tue\"], found a list");
}

/// The window at `p`, its name unique among the windows before it (`earlier`).
fn window(c: &mut Checker, file: WindowFile, p: &str, earlier: &[Window]) -> Option<Window> {
    let name = file.name.required(c, &join(p, "name")).map(|n| n.0);
    if let Some(n) = &name
        && earlier.iter().any(|w| &w.name == n)
    {
        c.problem(
            join(p, "name"),
            format!("{n:?} names another window already"),
        );
    }
    let zone = zone_read(c, file.tz, p);
    let match_path = join(p, "match");
    let matchers = match file.matchers {
        Field::Absent => Some(Matchers::default()),
        Field::Wrong => None,
        // Unknown keys are reported as everywhere else in the file.
        Field::Given(MatchValue(m)) => match c.object(&m, &match_path, &matcher::KEYS) {
            None => None,
            Some(_) => match Matchers::from_json(&m) {
                Ok(m) => Some(m),
                Err(matcher::MatcherError::UnknownKey(_)) => None,
                Err(e) => {
                    c.problem(match_path, e.to_string());
                    None
                }
            },
        },
    };
    let schedule = match file.weekly {
        Field::Absent => {
            let from = file.from.required(c, &join(p, "from")).map(|t| t.0);
            let to = file.to.required(c, &join(p, "to")).map(|t| t.0);
            match (from, to) {
                (Some(f), Some(t)) => match Schedule::range(f, t) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        c.problem(join(p, "to"), e.to_string());
                        None
                    }
                },
                _ => None,
            }
        }
        weekly => {
            if !matches!(file.from, Field::Absent) || !matches!(file.to, Field::Absent) {
                c.problem(
                    p,
                    "a window is either \"weekly\" or a \"from\"–\"to\" date range, not both",
                );
            }
            weekly
                .given()
                .and_then(|w| weekly_schedule(c, w, &join(p, "weekly")))
        }
    };
    Some(Window {
        name: name?,
        schedule: schedule?,
        zone: zone?,
        matchers: matchers?,
    })
}

/// The schedule of the weekly window at `p`.
fn weekly_schedule(c: &mut Checker, file: WeeklyFile, p: &str) -> Option<Schedule> {
    let days = file.days.required(c, &join(p, "days")).map(|list| {
        let mut days = Vec::new();
        for day in list.items {
            if !days.contains(&day.0) {
                days.push(day.0);
            }
        }
        days
    });
    let from = file.from.required(c, &join(p, "from")).map(|t| t.0);
    let to = file.to.required(c, &join(p, "to")).map(|t| t.0);
    match Schedule::weekly(days?, from?, to?) {
        Ok(s) => Some(s),
        Err(e) => {
            c.problem(join(p, "to"), e.to_string());
            None
        }
    }
}

/// `digest`: a list of scheduled handover digests.
pub fn digest(c: &mut Checker, v: &Value, services: &Sections) -> Vec<DigestConfig> {
    let Some(items) = v.as_array() else {
        c.wrong_type("digest", "a list of digests, each {\"at\", \"to\"}", v);
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let p = index("digest", i);
            section::load(c, item, &p, |c, file| digest_checked(c, file, &p, services)).flatten()
        })
        .collect()
}

/// A handover digest.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    /// The time of day, `"HH:MM"`, on the clock of `tz`.
    #[schemars(pattern(r"^[0-2][0-9]:[0-5][0-9]$"))]
    pub at: Field<Text<ClockTime>>,
    /// An IANA time zone (`Europe/Zurich`). Default: the PC's.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub tz: Field<Text<ZoneName>>,
    #[schemars(length(min = 1))]
    pub to: Field<DestinationList>,
}

/// A time of day, `"HH:MM"`.
pub struct ClockTime;

impl TextForm for ClockTime {
    const EXPECTED: &'static str = "a string";
    type Value = NaiveTime;

    fn parse(text: &str) -> Result<NaiveTime, String> {
        window::parse_time(&NonBlank::parse(text)?).map_err(|e| e.to_string())
    }
}

/// An IANA time zone's name.
pub struct ZoneName;

impl TextForm for ZoneName {
    const EXPECTED: &'static str = "a string";
    type Value = Zone;

    fn parse(text: &str) -> Result<Zone, String> {
        Zone::parse(Some(&NonBlank::parse(text)?)).map_err(|e| e.to_string())
    }
}

/// The zone `tz` names at `p`, the PC's when it names none.
fn zone_read(c: &mut Checker, tz: Field<Text<ZoneName>>, p: &str) -> Option<Zone> {
    match tz {
        Field::Given(z) => Some(z.0),
        Field::Wrong => None,
        Field::Absent => match Zone::parse(None) {
            Ok(z) => Some(z),
            Err(e) => {
                c.problem(join(p, "tz"), e.to_string());
                None
            }
        },
    }
}

/// One digest at `p`, its destinations checked against the configured services.
fn digest_checked(
    c: &mut Checker,
    file: Digest,
    p: &str,
    services: &Sections,
) -> Option<DigestConfig> {
    let at = file.at.required(c, &join(p, "at")).map(|t| t.0);
    let zone = zone_read(c, file.tz, p);
    let to = destinations_read(c, file.to, &join(p, "to"), services);
    match (at, zone, to.is_empty()) {
        (Some(at), Some(zone), false) => Some(DigestConfig { at, zone, to }),
        _ => None,
    }
}

/// The policy a route entry `{"escalate": "night"}` at `p` names, if there is one.
pub fn escalate_entry(
    c: &mut Checker,
    name: String,
    p: &str,
    policies: &BTreeMap<String, Policy>,
) -> Option<String> {
    if policies.contains_key(&name) {
        return Some(name);
    }
    let known: Vec<&str> = policies.keys().map(String::as_str).collect();
    c.problem(
        join(p, "escalate"),
        if known.is_empty() {
            format!("no escalation policy {name:?}: define it under \"escalation\"")
        } else {
            format!(
                "no escalation policy {name:?}: expected one of {}",
                known.join(", ")
            )
        },
    );
    None
}

/// What `check-config` shows of the on-call sections.
pub fn shown(o: &OnCall) -> Vec<(&'static str, Value)> {
    use serde_json::json;
    let dest = |d: &Destination| json!({"service": d.service.as_str(), "scope": d.scope});
    let mut out = Vec::new();
    if !o.escalation.is_empty() {
        let policies: Map<String, Value> = o
            .escalation
            .iter()
            .map(|(name, p)| {
                let steps: Vec<Value> = p
                    .steps
                    .iter()
                    .map(|s| {
                        let mut step = json!({
                            "after": super::duration_text(s.after),
                            "to": s.to.iter().map(dest).collect::<Vec<_>>(),
                        });
                        if let Some(r) = s.repeat {
                            step["repeat"] = json!(super::duration_text(r));
                        }
                        step
                    })
                    .collect();
                let mut policy = json!({"steps": steps});
                if let Some(t) = p.ack_timeout {
                    policy["ack_timeout"] = json!(super::duration_text(t));
                }
                (name.clone(), policy)
            })
            .collect();
        out.push(("escalation", Value::Object(policies)));
    }
    if !o.maintenance.is_empty() {
        let windows: Vec<Value> = o
            .maintenance
            .iter()
            .map(|w| {
                let mut v = json!({"name": w.name, "when": w.describe()});
                if !w.matchers.is_empty() {
                    v["match"] = w.matchers.to_json();
                }
                v
            })
            .collect();
        out.push(("maintenance", Value::Array(windows)));
    }
    if !o.digest.is_empty() {
        let digests: Vec<Value> = o
            .digest
            .iter()
            .map(|d| {
                json!({
                    "at": d.at.format("%H:%M").to_string(),
                    "tz": d.zone.name(),
                    "to": d.to.iter().map(dest).collect::<Vec<_>>(),
                })
            })
            .collect();
        out.push(("digest", Value::Array(digests)));
    }
    out
}
