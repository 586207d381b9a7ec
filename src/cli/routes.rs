//! `protowatch routes list|enable|disable|default-scope`: where each event goes, and
//! changing it without opening an editor.
//!
//! The changes follow BEC's rules: only configured services and scopes can be named;
//! enabling what is enabled, or disabling what is not, changes nothing and is not an
//! error; an event whose last destination is disabled loses its route entirely. The file
//! is edited in place with [`crate::config::edit`], so the operator's layout survives and
//! a diff shows just the change, and it is written only when something changed.
//!
//! A file without `routes` uses the implicit routing (every alarm and `message` to every
//! service's default scope). Writing a first explicit route would silence everything
//! else, so the first change writes out the implicit routing first.

use std::collections::BTreeMap;
use std::path::Path;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

use super::{Cli, CliError};
use crate::config::edit::{self, Document, EditError, Json};
use crate::config::{Config, ConfigError, Destination, SecretAccess, Service, unknown_scope};
use crate::routing::{IMPLICIT_EVENTS, QUIET_EVENTS, Router};

#[derive(Debug, Subcommand)]
pub enum RoutesCommand {
    /// Every event with its destinations, and each service's scopes
    List {
        /// One JSON object instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send EVENT to a service's scope (its default scope without --scope)
    Enable(Target),
    /// Stop sending EVENT to a service's scope (its default scope without --scope)
    Disable(Target),
    /// Set the scope that route entries without a "scope", and the implicit routing, use
    DefaultScope {
        /// The service
        #[arg(value_enum)]
        service: Service,
        /// One of its configured scopes
        scope: String,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// The event name: alarm_major, message, new_scan, … or any custom name
    event: String,
    /// The service
    #[arg(long, value_enum)]
    service: Service,
    /// One of the service's configured scopes [default: the service's default scope]
    #[arg(long)]
    scope: Option<String>,
}

/// Any service of the list, by its name: `--service` takes exactly what the config's
/// sections and routes spell.
impl ValueEnum for Service {
    fn value_variants<'a>() -> &'a [Self] {
        &Service::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

pub fn run(cli: &Cli, cmd: &RoutesCommand) -> Result<(), CliError> {
    let path = Config::locate(cli.config.as_deref());
    let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let config = Config::from_text_for(&path, &text, SecretAccess::UseTheAgent)?;
    match cmd {
        RoutesCommand::List { json } => {
            list(&config, *json);
            Ok(())
        }
        RoutesCommand::Enable(t) => change(&path, &text, &config, t, true),
        RoutesCommand::Disable(t) => change(&path, &text, &config, t, false),
        RoutesCommand::DefaultScope { service, scope } => {
            default_scope(&path, &text, &config, *service, scope)
        }
    }
}

/// The built-in events, then every other event the routes name.
fn events(config: &Config) -> Vec<String> {
    let mut all: Vec<String> = IMPLICIT_EVENTS
        .iter()
        .chain(QUIET_EVENTS.iter())
        .map(|e| e.to_string())
        .collect();
    for event in config.routes.iter().flat_map(BTreeMap::keys) {
        if !all.contains(event) {
            all.push(event.clone());
        }
    }
    all
}

fn names(dests: &[Destination]) -> Vec<String> {
    dests.iter().map(Destination::to_string).collect()
}

fn show(dests: &[Destination]) -> String {
    if dests.is_empty() {
        "(nothing)".to_string()
    } else {
        names(dests).join(", ")
    }
}

fn list(config: &Config, as_json: bool) {
    let router = Router::new(config);
    let events = events(config);
    let other: &[Destination] = if router.is_explicit() {
        &[]
    } else {
        router.message_defaults()
    };
    if as_json {
        let routes: serde_json::Map<String, Value> = events
            .iter()
            .map(|e| (e.clone(), json!(names(router.route(e)))))
            .collect();
        let services: serde_json::Map<String, Value> = Service::ALL
            .into_iter()
            .filter_map(|s| {
                let scopes = config.scopes(s)?;
                Some((
                    s.to_string(),
                    json!({"scopes": scopes, "default_scope": config.default_scope(s)}),
                ))
            })
            .collect();
        let out = json!({
            "file": config.file,
            "implicit": !router.is_explicit(),
            "routes": routes,
            "other_events": names(other),
            "services": services,
            "bec": bec_json(config),
        });
        outln!("{out}");
        return;
    }
    let file = config.file.display();
    if router.is_explicit() {
        outln!("routes of {file}:");
    } else {
        outln!(
            "{file} has no \"routes\": the implicit routing applies (alarms and messages to every service's default scope, only alarms to Alertmanager):"
        );
    }
    let width = events.iter().map(|e| e.chars().count()).max().unwrap_or(0);
    let width = width.max("any other event".len());
    for e in &events {
        outln!("  {e:<width$}  {}", show(router.route(e)));
    }
    outln!("  {:<width$}  {}", "any other event", show(other));
    outln!("services:");
    for s in Service::ALL {
        match config.scopes(s) {
            None => outln!("  {:<12}  not configured", s.as_str()),
            Some(scopes) => outln!(
                "  {:<12}  scopes: {}; default scope: {}",
                s.as_str(),
                if scopes.is_empty() {
                    "(none)".to_string()
                } else {
                    scopes.join(", ")
                },
                config.default_scope(s).unwrap_or("(none)")
            ),
        }
    }
    bec_list(config);
}

/// BEC's routes as the agent last received them (kept in the state folder), resolved
/// against this config: served ones and the ones nobody serves.
fn bec_resolved(config: &Config) -> Option<crate::bec::routes::Resolved> {
    config.bec.as_ref()?;
    let raw = crate::bec::routes::load_saved(&config.state_dir)?;
    Some(crate::bec::routes::Resolved::from_config(
        config,
        Some(&raw),
    ))
}

fn bec_json(config: &Config) -> Value {
    let Some(r) = bec_resolved(config) else {
        return json!([]);
    };
    Value::Array(r.to_json())
}

fn bec_list(config: &Config) {
    if config.bec.is_none() {
        return;
    }
    let Some(r) = bec_resolved(config) else {
        outln!("from BEC: no routes received yet");
        return;
    };
    outln!("from BEC (set_auto_notifications; added to the routes above):");
    if r.routes.is_empty() && r.unserved.is_empty() {
        outln!("  (none)");
    }
    for (event, to) in &r.routes {
        outln!("  {event}  {}", show(to));
    }
    for u in &r.unserved {
        outln!(
            "  {}  {}:{}  unserved: {}",
            u.event,
            u.service_name,
            u.scope.as_deref().unwrap_or("(default)"),
            u.why
        );
    }
}

/// The destination that `--service` and `--scope` name, checked against the config.
fn destination(config: &Config, t: &Target) -> Result<Destination, CliError> {
    let service: Service = t.service;
    let file = config.file.display();
    let Some(scopes) = config.scopes(service) else {
        return Err(CliError::usage(format!(
            "{file}: the service {service} is not configured (no \"{service}\" section)"
        )));
    };
    let scope = match (&t.scope, config.default_scope(service)) {
        (Some(s), _) => s.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(CliError::usage(format!(
                "{file}: {service} has no default scope: give --scope (one of {}), or set one with `protowatch routes default-scope {service} SCOPE`",
                scopes.join(", ")
            )));
        }
    };
    if !scopes.contains(&scope.as_str()) {
        return Err(CliError::usage(format!(
            "{file}: {}",
            unknown_scope(service.as_str(), &scope, scopes)
        )));
    }
    Ok(Destination { service, scope })
}

fn route_json(d: &Destination) -> Json {
    Json::Object(vec![
        ("service".into(), Json::str(d.service.as_str())),
        ("scope".into(), Json::str(&d.scope)),
    ])
}

/// The destination one raw route entry stands for (`scope` left out: the default scope).
fn resolve(config: &Config, entry: &Value) -> Option<Destination> {
    let service = entry.get("service")?.as_str()?;
    let service = Service::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(service))?;
    let scope = match entry.get("scope") {
        Some(s) => s.as_str()?.to_string(),
        None => config.default_scope(service)?.to_string(),
    };
    Some(Destination { service, scope })
}

fn edit_failed(path: &Path, e: EditError) -> CliError {
    match e {
        EditError::Io { .. } | EditError::Changed { .. } | EditError::Invalid(_) => {
            CliError::failed(e.to_string())
        }
        other => CliError::failed(format!("{}: {other}", path.display())),
    }
}

fn change(
    path: &Path,
    text: &str,
    config: &Config,
    t: &Target,
    enable: bool,
) -> Result<(), CliError> {
    let event = t.event.as_str();
    if event.trim().is_empty() {
        return Err(CliError::usage("the event name must not be empty"));
    }
    let dest = destination(config, t)?;
    let router = Router::new(config);
    let now = router.route(event);
    let file = path.display();
    let by = if router.is_explicit() {
        ""
    } else {
        " (by the implicit routing: the file has no \"routes\")"
    };
    if enable && now.contains(&dest) {
        outln!("{event} → {dest} is already enabled{by}; {file} unchanged");
        return Ok(());
    }
    if !enable && !now.contains(&dest) {
        outln!("{event} → {dest} is not enabled{by}, nothing to disable; {file} unchanged");
        return Ok(());
    }
    let mut doc = Document::parse(text).map_err(|e| edit_failed(path, e))?;
    let mut notes = Vec::new();
    match &config.routes {
        None => {
            // Write what the implicit routing does, then change it: the built-in alarm
            // events and `message`, and this event if it is a custom one.
            let defaults = router.defaults().to_vec();
            let mut routes: Vec<(String, Vec<Destination>)> = IMPLICIT_EVENTS
                .iter()
                .map(|e| (e.to_string(), router.route(e).to_vec()))
                .collect();
            if !routes.iter().any(|(e, _)| e == event) {
                routes.push((event.to_string(), now.to_vec()));
            }
            for (e, list) in &mut routes {
                if e == event {
                    if enable {
                        list.push(dest.clone());
                    } else {
                        list.retain(|d| *d != dest);
                    }
                }
            }
            routes.retain(|(_, list)| !list.is_empty());
            let value = Json::Object(
                routes
                    .iter()
                    .map(|(e, list)| {
                        (
                            e.clone(),
                            Json::Array(list.iter().map(route_json).collect()),
                        )
                    })
                    .collect(),
            );
            doc.insert(&[], "routes", &value)
                .map_err(|e| edit_failed(path, e))?;
            notes.push(format!(
                "{file} had no \"routes\": wrote out the implicit routing first ({} → {}{}), so what was sent is still sent",
                IMPLICIT_EVENTS.join(", "),
                show(&defaults),
                if defaults.len() == router.message_defaults().len() {
                    ""
                } else {
                    "; message not to Alertmanager"
                }
            ));
            notes.push(
                "note: from now on an event that \"routes\" does not list goes nowhere (before, custom events went to every default scope); add them with `protowatch routes enable EVENT`"
                    .to_string(),
            );
        }
        Some(_) => {
            let at = ["routes", event];
            let entries = doc.get(&at);
            if enable {
                match entries {
                    Some(Value::Array(_)) => doc.push(&at, &route_json(&dest)),
                    _ => doc.insert(&["routes"], event, &Json::Array(vec![route_json(&dest)])),
                }
                .map_err(|e| edit_failed(path, e))?;
            } else {
                let items = match entries {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let (gone, kept): (Vec<usize>, Vec<usize>) = (0..items.len())
                    .partition(|&i| resolve(config, &items[i]).as_ref() == Some(&dest));
                if kept.is_empty() {
                    doc.remove(&at).map_err(|e| edit_failed(path, e))?;
                    notes.push(format!(
                        "{dest} was the last destination of {event}: removed routes.{event}, {event} now goes nowhere"
                    ));
                } else {
                    for i in gone.into_iter().rev() {
                        doc.remove_item(&at, i).map_err(|e| edit_failed(path, e))?;
                    }
                }
            }
        }
    }
    let new = edit::save(path, text, &doc.text()).map_err(|e| edit_failed(path, e))?;
    let verb = if enable { "enabled" } else { "disabled" };
    outln!("{verb} {event} → {dest} in {file}");
    for n in notes {
        outln!("{n}");
    }
    outln!(
        "{event} now goes to: {}",
        show(Router::new(&new).route(event))
    );
    Ok(())
}

fn default_scope(
    path: &Path,
    text: &str,
    config: &Config,
    service: Service,
    scope: &str,
) -> Result<(), CliError> {
    let file = path.display();
    let Some(scopes) = config.scopes(service) else {
        return Err(CliError::usage(format!(
            "{file}: the service {service} is not configured (no \"{service}\" section)"
        )));
    };
    if !scopes.contains(&scope) {
        return Err(CliError::usage(format!(
            "{file}: {}",
            unknown_scope(service.as_str(), scope, scopes)
        )));
    }
    let old = config.default_scope(service);
    if old == Some(scope) {
        outln!("the default scope of {service} is already {scope:?}; {file} unchanged");
        return Ok(());
    }
    let mut doc = Document::parse(text).map_err(|e| edit_failed(path, e))?;
    doc.set(&[service.as_str(), "default_scope"], &Json::str(scope))
        .map_err(|e| edit_failed(path, e))?;
    edit::save(path, text, &doc.text()).map_err(|e| edit_failed(path, e))?;
    outln!(
        "{service}.default_scope: {} → {scope:?} in {file}",
        old.map_or_else(|| "(none)".to_string(), |o| format!("{o:?}"))
    );
    if config.routes.is_none() {
        outln!("the implicit routing now sends alarms and messages to {service}:{scope}");
    }
    let implicit = implicit_entries(&doc, service);
    if implicit.values().any(|n| *n > 0) {
        let events: Vec<&str> = implicit.keys().map(String::as_str).collect();
        outln!(
            "route entries of {service} without a \"scope\" now go to {service}:{scope} ({})",
            events.join(", ")
        );
    }
    Ok(())
}

/// Per event, how many route entries of `service` name no scope (and so follow the
/// default scope).
fn implicit_entries(doc: &Document, service: Service) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(routes)) = doc.get(&["routes"]) {
        for (event, entries) in routes {
            let n = entries.as_array().map_or(0, |items| {
                items
                    .iter()
                    .filter(|e| {
                        e.get("scope").is_none()
                            && e.get("service")
                                .and_then(Value::as_str)
                                .is_some_and(|s| s.eq_ignore_ascii_case(service.as_str()))
                    })
                    .count()
            });
            if n > 0 {
                out.insert(event, n);
            }
        }
    }
    out
}
