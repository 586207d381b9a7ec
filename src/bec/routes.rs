//! BEC's routing config as our destinations.
//!
//! BEC keeps its routes in `user/messaging_services/notification_config` (a
//! `NotificationConfigMessage{routes: {event: [{service_name, scope}]}}` that
//! `set_auto_notifications` SETs and PUBLISHes). A target's `service_name` maps through
//! `bec.services` to our service, and its scope name is our scope name (null: our
//! default scope of that service). They are added to our own `routes` for the event,
//! never replace them.
//!
//! The last routes received are held here for the running agent (the pipeline rebuilds
//! its router when [`generation`] moves) and kept in `<state_dir>/bec-routes.json`, so
//! that the next start routes as before while Redis is not there yet, and so that
//! `protowatch routes list`, another process, can show them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::config::{Config, Destination};
use crate::routing::Router;

use super::codec::BecRoutes;

/// The file, in the state folder, that keeps the last BEC routes received.
pub const SAVED_FILE: &str = "bec-routes.json";

static CURRENT: RwLock<Option<Arc<BecRoutes>>> = RwLock::new(None);
static GENERATION: AtomicU64 = AtomicU64::new(0);
static WARNED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// A BEC route we cannot serve, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Unserved {
    pub event: String,
    pub service_name: String,
    /// `None`: the service's default scope.
    pub scope: Option<String>,
    pub why: String,
}

/// BEC's routes resolved against a config.
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
pub fn resolve(config: &Config, raw: &BecRoutes) -> Resolved {
    let mut out = Resolved::default();
    let Some(bec) = &config.bec else {
        return out;
    };
    for (event, targets) in raw {
        for t in targets {
            let unserved = |scope: Option<&str>, why: String| Unserved {
                event: event.clone(),
                service_name: t.service_name.clone(),
                scope: scope.map(str::to_string),
                why,
            };
            let Some(service) = bec.service(&t.service_name) else {
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
            let known = config.scopes(service).unwrap_or_default();
            for scope in scopes {
                let ours = match scope {
                    Some(s) => Some(s),
                    None => config.default_scope(service),
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

/// Takes the routes BEC published as the current ones; returns whether they changed.
pub fn set(raw: BecRoutes) -> bool {
    let mut current = CURRENT.write().unwrap_or_else(|p| p.into_inner());
    if current.as_deref() == Some(&raw) {
        return false;
    }
    *current = Some(Arc::new(raw));
    GENERATION.fetch_add(1, Ordering::SeqCst);
    true
}

/// The routes BEC published last, if any were received or saved.
pub fn current() -> Option<Arc<BecRoutes>> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Moves each time [`set`] changes the routes.
pub fn generation() -> u64 {
    GENERATION.load(Ordering::SeqCst)
}

/// Our router for `config`, with the current BEC routes added.
pub fn router(config: &Config) -> Router {
    let router = Router::new(config);
    match (&config.bec, current()) {
        (Some(_), Some(raw)) => router.with_bec(&resolve(config, &raw).routes),
        _ => router,
    }
}

/// Logs each unserved route once per run: a route BEC's users set and nobody delivers
/// is worth a warning, not one per notification.
pub fn warn_unserved(config: &Config, raw: &BecRoutes) {
    let mut warned = WARNED.lock().unwrap_or_else(|p| p.into_inner());
    let warned = warned.get_or_insert_with(HashSet::new);
    for u in resolve(config, raw).unserved {
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

    fn config() -> Config {
        let text = r#"{
            "telegram": {"bot-id": "1:x", "channel-id": "1"},
            "scilog": {"url": "http://127.0.0.1:1/api/v1", "token": "t",
                       "scopes": {"default": {"logbook": "lb1"}, "beamtime": {"logbook": "lb2"}}},
            "webhook": {"scopes": {"teams": {"url": "http://127.0.0.1:1/hook", "preset": "teams"}}},
            "bec": {"redis": "127.0.0.1:6379"}
        }"#;
        Config::from_text(Path::new("/x/config.json"), text).unwrap()
    }

    fn t(service: &str, scopes: &[&str]) -> Target {
        Target {
            service_name: service.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn bec_names_map_to_our_services_and_scopes() {
        let c = config();
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
        let r = resolve(&c, &raw);
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
    fn bec_routes_add_to_ours() {
        let c = config();
        let mut raw = BecRoutes::new();
        raw.insert("alarm_major".into(), vec![t("teams", &["teams"])]);
        raw.insert("beamline_ready".into(), vec![t("scilog", &["default"])]);
        let router = Router::new(&c).with_bec(&resolve(&c, &raw).routes);
        let shown =
            |e: &str| -> Vec<String> { router.route(e).iter().map(|d| d.to_string()).collect() };
        // The implicit routing's defaults stay; BEC's route comes on top.
        assert!(shown("alarm_major").contains(&"telegram:default".to_string()));
        assert!(shown("alarm_major").contains(&"webhook:teams".to_string()));
        assert!(shown("beamline_ready").contains(&"scilog:default".to_string()));
        assert!(
            router
                .all_destinations()
                .iter()
                .any(|d| d.to_string() == "webhook:teams")
        );
    }
}
