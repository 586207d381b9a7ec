//! What of ours BEC may name: which of our services each BEC service is (`bec.services`),
//! each configured service's scopes and its default scope, and the few details BEC's
//! clients are told (SciLog's logbook, Signal's group).
//!
//! The bridge, its stream reader and the mapping of BEC's routes need these names and
//! nothing else of the config: not the credentials beside them, not the agent's own
//! sections. So they are read once from the `bec` section and the services' sections
//! ([`Served::new`]) and handed in as data; the services layer never sees the assembled
//! config (docs/ARCHITECTURE.md, "Layers").

use std::collections::BTreeMap;

use crate::messengers::signal::Target as SignalTarget;
use crate::messengers::{Sections, Service};

use super::BecConfig;

/// What we serve to BEC; see the module's comment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// BEC's service name → our service; only services that are configured.
    by_bec_name: BTreeMap<String, Service>,
    /// Each configured service's scope names (sorted) and its default scope.
    services: BTreeMap<Service, (Vec<String>, Option<String>)>,
    /// SciLog's logbook per scope.
    logbooks: BTreeMap<String, String>,
    /// Signal's group per scope that is a group.
    signal_groups: BTreeMap<String, String>,
}

impl Served {
    pub fn new(bec: &BecConfig, sections: &Sections) -> Served {
        let services = Service::ALL
            .into_iter()
            .filter_map(|s| {
                let names = sections
                    .scopes(s)?
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                Some((s, (names, sections.default_scope(s).map(str::to_string))))
            })
            .collect();
        let logbooks = sections
            .scilog
            .as_ref()
            .map(|c| c.scopes.clone())
            .unwrap_or_default();
        let signal_groups = sections
            .signal
            .as_ref()
            .map(|c| {
                c.scopes
                    .iter()
                    .filter_map(|(scope, t)| match t {
                        SignalTarget::Group(g) => Some((scope.clone(), g.clone())),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Served {
            by_bec_name: super::config::bec_services()
                .iter()
                .filter_map(|name| Some((name.to_string(), bec.service(name)?)))
                .collect(),
            services,
            logbooks,
            signal_groups,
        }
    }

    /// Our service for BEC's service name, if we serve it.
    pub fn service(&self, bec_name: &str) -> Option<Service> {
        self.by_bec_name.get(bec_name).copied()
    }

    /// The scope names of `service`, sorted; `None` when it is not configured.
    pub fn scopes(&self, service: Service) -> Option<Vec<&str>> {
        self.services
            .get(&service)
            .map(|(names, _)| names.iter().map(String::as_str).collect())
    }

    /// The default scope of `service`; `None` when it has none or is not configured.
    pub fn default_scope(&self, service: Service) -> Option<&str> {
        self.services.get(&service)?.1.as_deref()
    }

    /// SciLog's logbook of `scope`.
    pub fn logbook(&self, scope: &str) -> Option<&str> {
        self.logbooks.get(scope).map(String::as_str)
    }

    /// Signal's group of `scope`, when that scope is a group.
    pub fn signal_group(&self, scope: &str) -> Option<&str> {
        self.signal_groups.get(scope).map(String::as_str)
    }
}

/// For tests of the mapping: a `Served` put together by hand.
#[cfg(test)]
impl Served {
    pub(crate) fn map(mut self, bec_name: &str, ours: Service) -> Served {
        self.by_bec_name.insert(bec_name.to_string(), ours);
        self
    }

    pub(crate) fn scopes_of(
        mut self,
        ours: Service,
        names: &[&str],
        default: Option<&str>,
    ) -> Served {
        let mut names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        names.sort();
        self.services
            .insert(ours, (names, default.map(str::to_string)));
        self
    }
}
