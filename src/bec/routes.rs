//! BEC's routing config as our destinations.
//!
//! BEC keeps its routes in `user/messaging_services/notification_config` (a
//! `NotificationConfigMessage{routes: {event: [{service_name, scope}]}}` that
//! `set_auto_notifications` SETs and PUBLISHes). A target's `service_name` maps through
//! `bec.services` to our service, and its scope name is our scope name (null: our
//! default scope of that service). They are added to our own `routes` for the event,
//! never replace them.
//!
//! The last routes received go to the running agent through a `watch` channel
//! ([`RoutesTx`], [`RoutesRx`]): the bridge sends, the pipeline rebuilds its router when
//! it sees a change, the API shows what is there now. They are also kept in
//! `<state_dir>/bec-routes.json`, so that the next start routes as before while Redis is
//! not there yet, and so that `protowatch routes list`, another process, can show them.
//!
//! This module maps BEC's names to our destinations with what it is handed
//! ([`Served`]); making a router of them is the pipeline's (docs/ARCHITECTURE.md,
//! "Layers").

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

use crate::messengers::Destination;

use super::Served;
use super::codec::BecRoutes;

/// The file, in the state folder, that keeps the last BEC routes received.
pub const SAVED_FILE: &str = "bec-routes.json";

/// Where the bridge sends BEC's routes as last received; `None` before any.
pub type RoutesTx = watch::Sender<Option<Arc<BecRoutes>>>;
/// Where the pipeline and the API read them: the latest value, and whether it changed
/// since the reader last looked.
pub type RoutesRx = watch::Receiver<Option<Arc<BecRoutes>>>;

/// The channel, starting from `saved` (the routes kept from the last run, which apply
/// while Redis is not reached yet).
pub fn channel(saved: Option<BecRoutes>) -> (RoutesTx, RoutesRx) {
    watch::channel(saved.map(Arc::new))
}

/// Takes the routes BEC published as the current ones; returns whether they changed.
/// Readers are told only of a change.
pub fn publish(tx: &RoutesTx, raw: BecRoutes) -> bool {
    tx.send_if_modified(|current| {
        if current.as_deref() == Some(&raw) {
            return false;
        }
        *current = Some(Arc::new(raw));
        true
    })
}

/// How many targets BEC's routes name, for `/healthz`.
pub fn count(raw: Option<&BecRoutes>) -> usize {
    raw.map_or(0, |r| r.values().map(Vec::len).sum())
}

/// A BEC route we cannot serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unserved {
    pub event: String,
    pub service_name: String,
    /// `None`: the service's default scope.
    pub scope: Option<String>,
    pub why: String,
}

/// BEC's routes resolved against what we serve.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub routes: BTreeMap<String, Vec<Destination>>,
    pub unserved: Vec<Unserved>,
}

impl Resolved {
    /// One JSON entry per route, marked `"from": "bec"`, the unserved with why: what
    /// `GET /api/routes` and `routes list --json` show.
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        let served = self.routes.iter().flat_map(|(e, to)| {
            to.iter()
                .map(move |d| serde_json::json!({"event": e, "to": d.to_string(), "from": "bec"}))
        });
        let unserved = self.unserved.iter().map(|u| {
            serde_json::json!({"event": u.event, "service_name": u.service_name, "scope": u.scope,
                               "from": "bec", "unserved": u.why})
        });
        served.chain(unserved).collect()
    }
}

/// Maps BEC's targets to our destinations; what we do not serve is listed with why.
pub fn resolve(served: &Served, raw: &BecRoutes) -> Resolved {
    let mut out = Resolved::default();
    for (event, targets) in raw {
        for t in targets {
            let unserved = |scope: Option<&str>, why: String| Unserved {
                event: event.clone(),
                service_name: t.service_name.clone(),
                scope: scope.map(str::to_string),
                why,
            };
            let Some(service) = served.service(&t.service_name) else {
                out.unserved.push(unserved(
                    t.scopes.first().map(String::as_str),
                    format!(
                        "no service of ours serves BEC's {:?} (bec.services)",
                        t.service_name
                    ),
                ));
                continue;
            };
            let scopes: Vec<Option<&str>> = if t.scopes.is_empty() {
                vec![None]
            } else {
                t.scopes.iter().map(|s| Some(s.as_str())).collect()
            };
            let known = served.scopes(service).unwrap_or_default();
            for scope in scopes {
                let ours = match scope {
                    Some(s) => Some(s),
                    None => served.default_scope(service),
                };
                match ours {
                    Some(s) if known.contains(&s) => {
                        let d = Destination {
                            service,
                            scope: s.to_string(),
                        };
                        let list = out.routes.entry(event.clone()).or_default();
                        if !list.contains(&d) {
                            list.push(d);
                        }
                    }
                    Some(s) => out
                        .unserved
                        .push(unserved(scope, format!("{service} has no scope {s:?}"))),
                    None => out
                        .unserved
                        .push(unserved(scope, format!("{service} has no default scope"))),
                }
            }
        }
    }
    out
}

/// Logs each unserved route once per run (`warned` holds those logged): a route BEC's
/// users set and nobody delivers is worth a warning, not one per notification.
pub fn warn_unserved(resolved: &Resolved, warned: &mut HashSet<String>) {
    for u in &resolved.unserved {
        let id = format!("{}|{}|{:?}", u.event, u.service_name, u.scope);
        if warned.insert(id) {
            tracing::warn!(event = %u.event, service = %u.service_name, scope = ?u.scope, why = %u.why, "a BEC route is not served");
        }
    }
}

fn saved_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SAVED_FILE)
}

/// Keeps `raw` for the next start and for `routes list` (written whole, then renamed).
pub fn save(state_dir: &Path, raw: &BecRoutes) -> std::io::Result<()> {
    let path = saved_path(state_dir);
    let tmp = state_dir.join(format!("{SAVED_FILE}.tmp"));
    let text = serde_json::to_vec_pretty(raw).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)
}

/// The routes [`save`] kept; `None` when there are none or the file is unreadable.
pub fn load_saved(state_dir: &Path) -> Option<BecRoutes> {
    let text = std::fs::read(saved_path(state_dir)).ok()?;
    match serde_json::from_slice(&text) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(file = %saved_path(state_dir).display(), error = %e, "the saved BEC routes are unreadable; ignored");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::Target;
    use super::*;
    use crate::messengers::Service;

    /// Telegram with its default; SciLog with `default` and `beamtime`; a webhook
    /// `teams`; BEC's `teams` and `scilog` mapped, `signal` not.
    fn served() -> Served {
        Served::default()
            .map("teams", Service::Webhook)
            .map("scilog", Service::Scilog)
            .scopes_of(Service::Telegram, &["default"], Some("default"))
            .scopes_of(Service::Scilog, &["default", "beamtime"], Some("default"))
            .scopes_of(Service::Webhook, &["teams"], None)
    }

    fn t(service: &str, scopes: &[&str]) -> Target {
        Target {
            service_name: service.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn bec_names_map_to_our_services_and_scopes() {
        let mut raw = BecRoutes::new();
        raw.insert(
            "alarm_major".into(),
            vec![
                t("teams", &["teams"]),
                t("scilog", &[]),
                t("scilog", &["beamtime", "nope"]),
            ],
        );
        raw.insert("new_scan".into(), vec![t("signal", &["beamline-ops"])]);
        let r = resolve(&served(), &raw);
        let names: Vec<String> = r.routes["alarm_major"]
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            names,
            ["webhook:teams", "scilog:default", "scilog:beamtime"]
        );
        assert!(!r.routes.contains_key("new_scan"));
        assert_eq!(r.unserved.len(), 2);
        assert!(
            r.unserved[0].why.contains("no scope \"nope\""),
            "{:?}",
            r.unserved
        );
        assert!(r.unserved[1].why.contains("\"signal\""), "{:?}", r.unserved);
    }

    #[test]
    fn readers_see_a_change_and_only_a_change() {
        let (tx, mut rx) = channel(None);
        assert!(!rx.has_changed().unwrap_or(false));
        let mut raw = BecRoutes::new();
        raw.insert("alarm_major".into(), vec![t("teams", &["teams"])]);
        assert!(publish(&tx, raw.clone()));
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(count(rx.borrow_and_update().as_deref()), 1);
        // The same routes again: nothing to rebuild.
        assert!(!publish(&tx, raw));
        assert!(!rx.has_changed().unwrap_or(true));
    }
}
