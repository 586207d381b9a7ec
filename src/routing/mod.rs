//! Which destinations an event goes to.
//!
//! With `routes` in the config, exactly the listed `{service, scope}` pairs of the
//! event's name (BEC's explicit routing). Without, the old bot's behaviour: everything
//! worth a ping goes to every configured service's `default` scope — every alarm, the
//! interlock, `message`, and custom events a script sends on purpose; only the routine
//! `new_scan` and `scan_completed` stay quiet until a route asks for them.

pub mod pacing;
pub mod throttle;

use std::collections::BTreeMap;

use crate::config::{Config, Destination, Service};
use crate::event::names;

pub use crate::config::DEFAULT_SCOPE;

pub struct Router {
    routes: Option<BTreeMap<String, Vec<Destination>>>,
    defaults: Vec<Destination>,
}

impl Router {
    pub fn new(config: &Config) -> Router {
        let has_default = |service: &Service| match service {
            Service::Mail => config
                .mail
                .as_ref()
                .is_some_and(|m| m.scopes.contains_key(DEFAULT_SCOPE)),
            Service::Telegram => config
                .telegram
                .as_ref()
                .is_some_and(|t| t.scopes.contains_key(DEFAULT_SCOPE)),
        };
        let defaults = [Service::Mail, Service::Telegram]
            .into_iter()
            .filter(has_default)
            .map(|service| Destination {
                service,
                scope: DEFAULT_SCOPE.into(),
            })
            .collect();
        Router {
            routes: config.routes.clone(),
            defaults,
        }
    }

    pub fn route(&self, event: &str) -> &[Destination] {
        match &self.routes {
            Some(routes) => routes.get(event).map_or(&[], Vec::as_slice),
            None if event == names::NEW_SCAN || event == names::SCAN_COMPLETED => &[],
            None => &self.defaults,
        }
    }

    /// Every destination any event can reach: the outbox starts one worker for each.
    pub fn all_destinations(&self) -> Vec<Destination> {
        let mut all: Vec<Destination> = self.defaults.clone();
        if let Some(routes) = &self.routes {
            all.extend(routes.values().flatten().cloned());
        }
        all.sort();
        all.dedup();
        all
    }
}
