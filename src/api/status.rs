//! What the agent is doing: channels and routes, health, and Prometheus metrics.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::{ApiError, ApiState};
use crate::config::{Config, Destination};
use crate::outbox::queue;
use crate::store::now_ms;

/// Every configured service:scope with its id: a hash of the name (FNV-1a), so an id
/// stays the same when other scopes come or go.
pub fn channel_list(config: &Config) -> Vec<(u32, Destination)> {
    config
        .destinations()
        .into_iter()
        .map(|d| (fnv1a(&d.to_string()), d))
        .collect()
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }) & 0x7fff_ffff
}

pub async fn channels(State(st): State<Arc<ApiState>>) -> Json<Value> {
    let config = st.config();
    let list: Vec<Value> = channel_list(&config)
        .into_iter()
        .map(|(id, d)| {
            json!({"id": id, "service": d.service.as_str(), "scope": d.scope, "name": d.to_string(),
                   "default": config.default_scope(d.service) == Some(d.scope.as_str())})
        })
        .collect();
    Json(Value::Array(list))
}

pub async fn routes(State(st): State<Arc<ApiState>>) -> Json<Value> {
    let config = st.config();
    let raw = st.shown.bec_routes.borrow().clone();
    let resolved = crate::bec::routes::Resolved::from_config(&config, raw.as_deref());
    let router = crate::routing::Router::new(&config).with_bec(&resolved.routes);
    let mut events: Vec<String> = config
        .routes
        .as_ref()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_else(|| {
            crate::routing::IMPLICIT_EVENTS
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
    events.extend(router.bec_routes().keys().cloned());
    events.sort();
    events.dedup();
    let map: serde_json::Map<String, Value> = events
        .into_iter()
        .map(|e| {
            let to: Vec<String> = router.route(&e).iter().map(|d| d.to_string()).collect();
            (e, json!(to))
        })
        .collect();
    // BEC's routes (`set_auto_notifications`), marked as such, and those we cannot serve.
    let bec: Vec<Value> = resolved.to_json();
    Json(json!({"explicit": config.routes.is_some(), "routes": map, "bec": bec}))
}

/// A destination as the public endpoints show it: a phone number a BEC session named
/// (`signal:+41791234567`) is a person's, and `/healthz` and `/metrics` need no access,
/// so it shows as `signal:+41…67`.
fn public_destination(d: &str) -> String {
    match d.split_once(':') {
        Some(("signal", scope)) if crate::messengers::signal::number::is_e164(scope) => {
            let digits = &scope[1..];
            format!(
                "signal:+{}…{}",
                &digits[..2],
                &digits[digits.len().saturating_sub(2)..]
            )
        }
        _ => d.to_string(),
    }
}

/// 200 with per-file lag and per-destination outbox depth; 503 when the store is not
/// usable.
pub async fn healthz(State(st): State<Arc<ApiState>>) -> Result<impl IntoResponse, ApiError> {
    let (checkpoints, depth) = st
        .db(|s| {
            let cps = crate::watcher::checkpoints::followed(s)?;
            let depth = queue::depth(s)?;
            Ok((cps, depth))
        })
        .await?;
    let files: Vec<Value> = checkpoints
        .iter()
        .map(|c| {
            let size = std::fs::metadata(&c.path).map(|m| m.len()).ok();
            json!({"path": c.path, "offset": c.offset, "size": size,
                   "lag_bytes": size.map(|s| s.saturating_sub(c.offset))})
        })
        .collect();
    let outbox: serde_json::Map<String, Value> = depth
        .into_iter()
        .map(|(d, n, oldest)| {
            (
                public_destination(&d),
                json!({"queued": n, "oldest_age_s": (now_ms() - oldest).max(0) / 1000}),
            )
        })
        .collect();
    // A folder that cannot be seen (a share away) is not down, but not all well either.
    // So is a BEC link that is down: BEC's notifications are lost meanwhile.
    let shown = &st.shown;
    let bec_routes = crate::bec::routes::count(shown.bec_routes.borrow().as_deref());
    let bec = shown.bec.snapshot(bec_routes);
    let bec_down = bec.is_some() && !shown.bec.is_up();
    let status = if shown.watch.degraded() || bec_down {
        "degraded"
    } else {
        "ok"
    };
    Ok((
        StatusCode::OK,
        Json(json!({"status": status, "files": files, "outbox": outbox,
                    "watch": shown.watch.snapshot(),
                    "bec": bec})),
    ))
}

pub async fn metrics(State(st): State<Arc<ApiState>>) -> Result<impl IntoResponse, ApiError> {
    let (depth, dead, active) = st
        .db(|s| {
            let depth = queue::depth(s)?;
            let dead = queue::dead_count(s)?;
            let active = crate::alerts::count_active(s, now_ms())?;
            Ok((depth, dead, active))
        })
        .await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP protowatch_outbox_depth Deliveries queued per destination.\n# TYPE protowatch_outbox_depth gauge"
    );
    for (d, n, _) in &depth {
        let d = public_destination(d);
        let _ = writeln!(out, "protowatch_outbox_depth{{destination=\"{d}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP protowatch_outbox_oldest_age_seconds Age of the oldest queued delivery per destination.\n# TYPE protowatch_outbox_oldest_age_seconds gauge"
    );
    for (d, _, oldest) in &depth {
        let d = public_destination(d);
        let _ = writeln!(
            out,
            "protowatch_outbox_oldest_age_seconds{{destination=\"{d}\"}} {}",
            (now_ms() - oldest).max(0) / 1000
        );
    }
    let _ = writeln!(
        out,
        "# HELP protowatch_outbox_dead Dead deliveries kept in the store.\n# TYPE protowatch_outbox_dead gauge\nprotowatch_outbox_dead {dead}"
    );
    let _ = writeln!(
        out,
        "# HELP protowatch_alerts_active Active alerts.\n# TYPE protowatch_alerts_active gauge\nprotowatch_alerts_active {active}"
    );
    st.shown.bec.metrics(&mut out);
    out.push_str(&crate::metrics::render());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

#[cfg(test)]
mod tests {
    use super::public_destination;

    #[test]
    fn a_named_phone_number_is_not_shown_whole() {
        assert_eq!(public_destination("signal:+41791234567"), "signal:+41…67");
        assert_eq!(public_destination("signal:oncall"), "signal:oncall");
        assert_eq!(public_destination("webhook:teams"), "webhook:teams");
    }
}
