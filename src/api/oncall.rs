//! The on-call routes: acknowledging an alert, and silences — made, listed and ended.
//!
//! Who may use them: whoever holds the API's token, or a console session (checked for
//! every route in `access.rs`); a change is recorded with who made it (`api`, `console`).
//! Each handler calls the one function every surface shares (`alerts::acknowledge`,
//! `oncall::silences`), then wakes the pipeline so that a silence is in force at once.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::access::Caller;
use super::{ApiError, ApiState};
use crate::alerts;
use crate::oncall::matcher::Matchers;
use crate::oncall::silences::{self, NewSilence, SilenceError};
use crate::settings::check::parse_duration;
use crate::store::now_ms;

fn alert_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found(format!("id: no alert {id:?}")))
}

/// `POST /api/alerts/{id}/ack`: "I'm on it". 204, or 404 when there is no active alert
/// with that id.
pub async fn ack(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = alert_id(&id)?;
    let now = now_ms();
    let by = caller.actor();
    if st.db(move |s| alerts::acknowledge(s, id, now, by)).await? {
        (st.wake)();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("id: no active alert {id}")))
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Also the silences that ended in the last week.
    #[serde(default)]
    all: bool,
}

/// `GET /api/silences[?all=true]`: in force and coming, soonest-ending first.
pub async fn list(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let week = 7 * 24 * 3_600_000;
    let all = st
        .db(move |s| silences::list(s, now, q.all.then_some(week)))
        .await?;
    let items: Vec<Value> = all.iter().map(|s| s.to_json(now)).collect();
    Ok(Json(json!({ "silences": items })))
}

/// `POST /api/silences` with `{"matchers": {…}, "duration": "2h" | "ends_at": epoch,
/// "starts_at": epoch (default now), "comment": "…"}` → 201 `{"id": …}`.
pub async fn add(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let now = now_ms();
    let new = new_silence(&body, now, caller.actor()).map_err(ApiError::bad_request)?;
    let id = st
        .db(move |s| match silences::add(s, &new) {
            Ok(id) => Ok(Ok(id)),
            Err(SilenceError::Store(e)) => Err(e),
            Err(e) => Ok(Err(e.to_string())),
        })
        .await?
        .map_err(ApiError::bad_request)?;
    tracing::info!(target: "protowatch::audit", silence = id, by = caller.actor(), "silence made");
    (st.wake)();
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))))
}

/// Reads a new silence from the API's JSON; the error names the key.
pub fn new_silence(body: &Value, now_ms: i64, by: &str) -> Result<NewSilence, String> {
    const KEYS: [&str; 5] = ["matchers", "duration", "ends_at", "starts_at", "comment"];
    let map = body
        .as_object()
        .ok_or("expected an object with matchers, duration or ends_at, and comment")?;
    if let Some(k) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(format!("{k}: unknown key; known keys: {}", KEYS.join(", ")));
    }
    let matchers = match map.get("matchers") {
        None => Matchers::default(),
        Some(v) => Matchers::from_json(v).map_err(|e| format!("matchers: {e}"))?,
    };
    let epoch_ms = |key: &str| -> Result<Option<i64>, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e11)
                .map(|s| Some((s * 1000.0) as i64))
                .ok_or_else(|| format!("{key}: expected epoch seconds, found {v}")),
        }
    };
    let starts_at_ms = epoch_ms("starts_at")?.unwrap_or(now_ms);
    let ends_at_ms = match (map.get("duration"), epoch_ms("ends_at")?) {
        (Some(_), Some(_)) => return Err("give duration or ends_at, not both".into()),
        (Some(d), None) => {
            let d: Option<Duration> = match d {
                Value::String(s) => parse_duration(s),
                Value::Number(n) => n
                    .as_f64()
                    .filter(|s| *s > 0.0 && *s < 1e9)
                    .map(Duration::from_secs_f64),
                _ => None,
            };
            let d = d.filter(|d| !d.is_zero()).ok_or(
                "duration: expected a duration such as \"2h\", \"30m\" or seconds as a number",
            )?;
            starts_at_ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        (None, Some(end)) => end,
        (None, None) => return Err("duration or ends_at: missing (required)".into()),
    };
    let comment = match map.get("comment") {
        Some(Value::String(c)) => c.clone(),
        Some(other) => return Err(format!("comment: expected a string, found {other}")),
        None => String::new(),
    };
    Ok(NewSilence {
        matchers,
        starts_at_ms,
        ends_at_ms,
        created_by: by.to_string(),
        comment,
    })
}

/// `DELETE /api/silences/{id}`: ends it now. 204, or 404.
pub async fn expire(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no silence {id:?}")))?;
    let now = now_ms();
    let by = caller.actor();
    let done = st
        .db(move |s| match silences::expire(s, id, by, now) {
            Ok(_) => Ok(true),
            Err(SilenceError::Store(e)) => Err(e),
            Err(_) => Ok(false),
        })
        .await?;
    if !done {
        return Err(ApiError::not_found(format!("id: no silence {id}")));
    }
    tracing::info!(target: "protowatch::audit", silence = id, by, "silence ended");
    (st.wake)();
    Ok(StatusCode::NO_CONTENT)
}
