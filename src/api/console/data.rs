//! The console's JSON: a page of alerts with its counts and their on-call state, the
//! history, the files, the outbox, the routes and the status summary, and the two
//! changes only the console makes (snooze for a chosen time, retry of a dead row).
//! Every endpoint here needs the token or the session (`access`); each answers only
//! what its part of the page shows. Acknowledging and silences go through the API's
//! own routes (`api::oncall`), as every other client's do.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::alerts::{self, Alert, page};
use crate::api::access::Caller;
use crate::api::{ApiError, ApiState};
use crate::event::Severity;
use crate::oncall::escalation::next_step;
use crate::oncall::window::Zone;
use crate::outbox::queue;
use crate::store::now_ms;

/// Dead rows listed at most; `protowatch outbox list --dead` has them all.
const MAX_DEAD_SHOWN: u32 = 200;

/// The longest snooze the console offers is hours; the API takes up to a week.
const MAX_SNOOZE_S: u64 = 7 * 24 * 3600;

/// An alert as the console shows it: OnTakt's fields, the file it came from, its
/// snooze, and its details made safe to put into the page.
fn view(alert: &Alert) -> Value {
    let mut v = alert.to_ontakt();
    v["details"] = json!(alert.details.as_deref().map(sanitize).unwrap_or_default());
    v["file"] = json!(alert.origin);
    v["snoozed_until"] = json!(alert.snoozed_until_ms.map(|ms| ms / 1000));
    v["dismissed_at"] = json!(alert.dismissed_at_ms.map(|ms| ms / 1000));
    v["ends_at"] = json!(alert.ends_at_ms().map(|ms| ms / 1000));
    v
}

/// `details` comes from whoever could call the API: only harmless tags and attributes
/// reach the page, links only to `http(s)`/`mailto`, no images (a remote image tells
/// someone that the page was looked at). The page's CSP forbids script besides.
fn sanitize(html: &str) -> String {
    let mut b = ammonia::Builder::default();
    b.rm_tags(["img"])
        .url_schemes(["http", "https", "mailto"].into())
        .url_relative(ammonia::UrlRelative::Deny);
    b.clean(html).to_string()
}

#[derive(serde::Deserialize, Default)]
pub struct AlertsQuery {
    offset: Option<u64>,
    limit: Option<u32>,
    severity: Option<String>,
    event: Option<String>,
    q: Option<String>,
}

/// `GET /api/console/alerts`: a page of active alerts, the worst severity first and then
/// the latest activity (`page::active`), with the counts per severity and per event.
pub async fn alerts(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let severity = match q.severity.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.parse::<Severity>()
                .map_err(|e| ApiError::bad_request(format!("severity: {e}")))?,
        ),
    };
    let filter = page::Filter {
        severity,
        event: q.event.filter(|e| !e.is_empty()),
        text: q.q,
    };
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(100).clamp(1, page::MAX_PAGE);
    let now = now_ms();
    let config = st.config();
    let windows = config.oncall.maintenance.clone();
    let p = st
        .db(move |s| {
            let mut p = page::active(s, now, &filter, offset, limit)?;
            let holds = alerts::holds::Holds::load(s, now, &windows)?;
            for a in &mut p.rows {
                a.silenced_by = holds.silenced_by(a, now);
            }
            Ok(p)
        })
        .await?;
    let [info, warning, minor, major] = p.by_severity;
    let shown = |a: &Alert| {
        let mut v = view(a);
        v["next_step"] = json!(a.escalation.as_ref().and_then(|e| {
            next_step(
                &config.oncall.escalation,
                &e.policy,
                e.fired,
                e.next_at_ms,
                now,
            )
        }));
        v
    };
    Ok(Json(json!({
        "alerts": p.rows.iter().map(shown).collect::<Vec<_>>(),
        "matching": p.matching,
        "offset": offset,
        "limit": limit,
        "counts": {"info": info, "warning": warning, "minor": minor, "major": major,
                   "total": info + warning + minor + major},
        "events": p.by_event.iter().map(|(e, n)| json!({"event": e, "count": n}))
            .collect::<Vec<_>>(),
        "now": now / 1000,
        "instrument": config.instrument,
    })))
}

/// `GET /api/console/silences`: those in force and to come, soonest-ending first, each
/// with its matchers as a person reads them (`key=… text~"vacuum"`).
pub async fn silences(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let list = st
        .db(move |s| crate::oncall::silences::list(s, now, None))
        .await?;
    let items: Vec<Value> = list
        .iter()
        .map(|s| {
            let mut v = s.to_json(now);
            v["describe"] = json!(s.matchers.describe());
            v
        })
        .collect();
    Ok(Json(json!({ "silences": items, "now": now / 1000 })))
}

/// The status summary covers this much: a day, as Telegram's `/status` does.
const STATUS_SPAN_MS: i64 = 24 * 3_600_000;

/// `GET /api/console/status` → `{"text", "watch"}`: the handover digest's summary of the
/// last 24 hours, composed as the digest and Telegram's `/status` compose it, in the zone
/// of the first configured digest (this PC's otherwise); and what each watch entry whose
/// folder never existed says ("not watching anything under …").
pub async fn status(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let summary = st
        .db(move |s| alerts::summary::gather(s, now.saturating_sub(STATUS_SPAN_MS), now))
        .await?;
    let config = st.config();
    let zone = config.oncall.digest.first().map_or(Zone::Local, |d| d.zone);
    let message = crate::oncall::digest::compose("Status", &summary, &zone);
    Ok(Json(json!({
        "text": message.text(),
        "watch": st.shown.watch.never_there(),
    })))
}

/// `GET /api/console/history`: dismissed and expired alerts, latest first.
pub async fn history(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(50).clamp(1, page::MAX_PAGE);
    let now = now_ms();
    let (rows, total) = st.db(move |s| page::history(s, now, offset, limit)).await?;
    Ok(Json(json!({
        "alerts": rows.iter().map(view).collect::<Vec<_>>(),
        "total": total,
        "offset": offset,
        "limit": limit,
    })))
}

/// `GET /api/console/files`: each followed file, where it was read to and when, and
/// the encoding its `watch` entry sets.
pub async fn files(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let states = st.db(|s| crate::watcher::checkpoints::states(s)).await?;
    let config = st.config();
    let list: Vec<Value> = states
        .iter()
        .map(|(c, updated_ms)| {
            let size = std::fs::metadata(&c.path).map(|m| m.len()).ok();
            let encoding = config
                .watch
                .iter()
                .find(|w| glob::Pattern::new(&w.path).is_ok_and(|p| p.matches_path(&c.path)))
                .and_then(|w| {
                    crate::config::Encoding::CHOICES
                        .iter()
                        .find(|(_, e)| *e == w.encoding)
                        .map(|(name, _)| *name)
                });
            json!({
                "path": c.path,
                "offset": c.offset,
                "size": size,
                "lag_bytes": size.map(|s| s.saturating_sub(c.offset)),
                "encoding": encoding,
                "last_line_at": updated_ms / 1000,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /api/console/outbox`: what is queued per destination, since when, why it has
/// not gone yet and when it is tried again (as `protowatch outbox list` tells per row),
/// and the latest dead rows with their error.
pub async fn outbox(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let (pending, dead, dead_total) = st
        .db(|s| {
            Ok((
                queue::pending(s)?,
                queue::dead(s, MAX_DEAD_SHOWN)?,
                queue::dead_count(s)?,
            ))
        })
        .await?;
    let now = now_ms();
    Ok(Json(json!({
        "queues": pending.iter().map(|p| json!({
            "destination": p.destination, "queued": p.queued,
            "oldest_age_s": (now - p.oldest_ms).max(0) / 1000,
            "attempts": p.attempts, "last_error": p.last_error,
            "next_attempt_at": p.next_attempt_ms / 1000,
        })).collect::<Vec<_>>(),
        "now": now / 1000,
        "dead": dead.iter().map(|r| json!({
            "id": r.id, "destination": r.destination, "event": r.event, "key": r.key,
            "attempts": r.attempts, "error": r.last_error, "created_at": r.created_at_ms / 1000,
        })).collect::<Vec<_>>(),
        "dead_total": dead_total,
    })))
}

/// `GET /api/console/routes`: event → destinations, and where each route comes from:
/// the config's `routes`, or the implicit routing when it has none. (BEC's routes will
/// be marked `bec` when the bridge adds them.)
pub async fn routes(State(st): State<Arc<ApiState>>) -> Json<Value> {
    let config = st.config();
    let router = crate::routing::Router::new(&config);
    let from = if router.is_explicit() {
        "config"
    } else {
        "implicit"
    };
    let mut events: Vec<String> = match &config.routes {
        Some(r) => r.keys().cloned().collect(),
        None => crate::routing::IMPLICIT_EVENTS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    events.sort();
    let mut list: Vec<Value> = events
        .iter()
        .map(|e| {
            let to: Vec<String> = router.route(e).iter().map(|d| d.to_string()).collect();
            json!({"event": e, "to": to, "from": from})
        })
        .collect();
    // BEC's routes (`set_auto_notifications`), added to ours: marked, the unserved with
    // why.
    let raw = st.shown.bec_routes.borrow().clone();
    let r = crate::bec::routes::Resolved::from_config(&config, raw.as_deref());
    for (e, to) in &r.routes {
        let to: Vec<String> = to.iter().map(|d| d.to_string()).collect();
        list.push(json!({"event": e, "to": to, "from": "bec"}));
    }
    for u in &r.unserved {
        let scope = u.scope.as_deref().unwrap_or("(default)");
        list.push(json!({"event": u.event,
                         "to": [format!("{}:{scope} — unserved: {}", u.service_name, u.why)],
                         "from": "bec"}));
    }
    Json(json!({"explicit": router.is_explicit(), "routes": list}))
}

#[derive(serde::Deserialize)]
struct SnoozeBody {
    seconds: u64,
}

/// `POST /api/alerts/{id}/snooze {"seconds": n}`: no messages for the alert's key for
/// that long (the console's Snooze 1h / 4h). The same `alerts::snooze` as the
/// `__snooze` action and Telegram's button.
pub async fn snooze(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no alert {id:?}")))?;
    let SnoozeBody { seconds } = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body: expected {{\"seconds\": n}}: {e}")))?;
    if seconds == 0 || seconds > MAX_SNOOZE_S {
        return Err(ApiError::bad_request(format!(
            "seconds: from 1 to {MAX_SNOOZE_S} (a week), found {seconds}"
        )));
    }
    let now = now_ms();
    let active = st
        .db(move |s| alerts::get(s, id))
        .await?
        .is_some_and(|a| a.is_active(now));
    if !active {
        return Err(ApiError::not_found(format!("id: no active alert {id}")));
    }
    let until = now.saturating_add(seconds as i64 * 1000);
    let by = caller.actor();
    st.db(move |s| alerts::snooze(s, id, until, by)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/outbox/{id}/retry`: a dead row queued again, as `protowatch outbox
/// retry` does.
pub async fn retry(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no outbox row {id:?}")))?;
    if st.db(move |s| queue::revive(s, id)).await? {
        st.outbox.wake_all();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("id: no dead outbox row {id}")))
    }
}
