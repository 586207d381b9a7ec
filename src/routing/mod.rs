//! Which destinations an event goes to.
//!
//! With `routes` in the config, exactly the listed `{service, scope}` pairs of the
//! event's name (BEC's explicit routing). Without, the old bot's behaviour: everything
//! worth a ping goes to every configured service's default scope (`default_scope`, which
//! is the old bot's `recipients` / `channel-id` unless the file says otherwise) — every
//! alarm, the interlock, `message`, and custom events a script sends on purpose; only the
//! routine `new_scan` and `scan_completed` stay quiet until a route asks for them.
//! Alertmanager is the exception of the implicit routing (a service that says it takes
//! alarms only): it mirrors alerts until they are dismissed, so it gets the alarms, the
//! interlock and the API's alerts, not a script's "sample 3 done" (a route can still send
//! it there).

pub mod pacing;
pub mod throttle;

use std::collections::BTreeMap;

use crate::config::{Config, Destination, Service};
use crate::event::names;

pub use crate::config::DEFAULT_SCOPE;

/// The built-in events that the implicit routing sends to every default scope, in the
/// order `routes list` shows them and `routes enable` writes them out.
pub const IMPLICIT_EVENTS: [&str; 5] = [
    names::ALARM_WARNING,
    names::ALARM_MINOR,
    names::ALARM_MAJOR,
    names::SCAN_INTERLOCK,
    names::MESSAGE,
];

/// The built-in events that the implicit routing keeps quiet: routine, not worth a ping.
pub const QUIET_EVENTS: [&str; 2] = [names::NEW_SCAN, names::SCAN_COMPLETED];

/// The events that are alarms: what the implicit routing sends to Alertmanager. `alert`
/// is what the API's `PUT /api/alerts` makes.
pub const ALARM_EVENTS: [&str; 5] = [
    names::ALARM_WARNING,
    names::ALARM_MINOR,
    names::ALARM_MAJOR,
    names::SCAN_INTERLOCK,
    names::ALERT,
];

#[derive(Debug, Clone)]
pub struct Router {
    routes: Option<BTreeMap<String, Vec<Destination>>>,
    defaults: Vec<Destination>,
    /// The defaults without the alarms-only services (Alertmanager): for messages and
    /// custom events.
    message_defaults: Vec<Destination>,
    /// Events that BEC's routing config also routes (`bec::routes`): our destinations
    /// for them with BEC's added, and BEC's alone, to show where a route came from.
    with_bec: BTreeMap<String, Vec<Destination>>,
    bec: BTreeMap<String, Vec<Destination>>,
}

impl Router {
    pub fn new(config: &Config) -> Router {
        let defaults = Service::ALL
            .into_iter()
            .filter_map(|service| {
                config.default_scope(service).map(|scope| Destination {
                    service,
                    scope: scope.to_string(),
                })
            })
            .collect::<Vec<Destination>>();
        let message_defaults = defaults
            .iter()
            .filter(|d| !d.service.alarms_only())
            .cloned()
            .collect();
        Router {
            routes: config.routes.clone(),
            defaults,
            message_defaults,
            with_bec: BTreeMap::new(),
            bec: BTreeMap::new(),
        }
    }

    /// This router with BEC's routes (already mapped to our services) added to each
    /// event's own destinations.
    pub fn with_bec(mut self, bec: &BTreeMap<String, Vec<Destination>>) -> Router {
        self.with_bec.clear();
        for (event, extra) in bec {
            let mut all = self.route(event).to_vec();
            for d in extra {
                if !all.contains(d) {
                    all.push(d.clone());
                }
            }
            self.with_bec.insert(event.clone(), all);
        }
        self.bec = bec.clone();
        self
    }

    /// BEC's routes alone, by event (empty without a BEC bridge).
    pub fn bec_routes(&self) -> &BTreeMap<String, Vec<Destination>> {
        &self.bec
    }

    pub fn route(&self, event: &str) -> &[Destination] {
        if let Some(all) = self.with_bec.get(event) {
            return all;
        }
        match &self.routes {
            Some(routes) => routes.get(event).map_or(&[], Vec::as_slice),
            None if QUIET_EVENTS.contains(&event) => &[],
            None if ALARM_EVENTS.contains(&event) => &self.defaults,
            None => &self.message_defaults,
        }
    }

    /// Whether the config lists its routes (`false`: the implicit routing applies).
    pub fn is_explicit(&self) -> bool {
        self.routes.is_some()
    }

    /// Each configured service's default scope: where the implicit routing sends alarms.
    pub fn defaults(&self) -> &[Destination] {
        &self.defaults
    }

    /// Where the implicit routing sends messages and custom events: the defaults but
    /// Alertmanager.
    pub fn message_defaults(&self) -> &[Destination] {
        &self.message_defaults
    }

    /// Every destination any event can reach: the outbox starts one worker for each.
    pub fn all_destinations(&self) -> Vec<Destination> {
        let mut all: Vec<Destination> = self.defaults.clone();
        if let Some(routes) = &self.routes {
            all.extend(routes.values().flatten().cloned());
        }
        all.extend(self.bec.values().flatten().cloned());
        all.sort();
        all.dedup();
        all
    }
}
