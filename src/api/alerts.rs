//! `/api/alerts` as OnTakt defines it, and `/api/notify` as BEC's `connector.notify`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use serde_json::{Map, Value, json};

use super::access::Caller;
use super::{ApiError, ApiState};
use crate::alerts::{self, Alert, NewAlert};
use crate::config::Destination;
use crate::event::{Action, Attachment, Event, Message, Severity, Span};
use crate::inbox;
use crate::outbox::queue::{self, Delivery};
use crate::store::now_ms;

fn view(a: &Alert) -> Value {
    a.to_ontakt()
}

pub async fn list(State(st): State<Arc<ApiState>>) -> Result<Json<Value>, ApiError> {
    let now = now_ms();
    let windows = st.config().oncall.maintenance.clone();
    let list = st
        .db(move |s| alerts::holds::list_shown(s, now, false, &windows))
        .await?;
    let map: Map<String, Value> = list.iter().map(|a| (a.id.to_string(), view(a))).collect();
    Ok(Json(Value::Object(map)))
}

#[derive(serde::Deserialize)]
pub struct NotifyQuery {
    notify: Option<String>,
}

/// Fields a client may send back from a listing; they are the server's to set.
const READ_ONLY: &[&str] = &["id", "last_seen", "times_seen", "event", "level", "source"];
/// OnTakt's writable fields of a `PersistentAlert`.
const FIELDS: &[&str] = &[
    "key",
    "message",
    "details",
    "severity",
    "timestamp",
    "ttl",
    "machine_id",
    "actions",
    "data",
];

/// What one alert may hold: a short title, a page of details, a little data. A caller
/// cannot make the agent store (and list, and send) megabytes per alert.
pub const MAX_KEY_BYTES: usize = 1024;
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;
pub const MAX_DETAILS_BYTES: usize = 64 * 1024;
pub const MAX_DATA_BYTES: usize = 64 * 1024;
/// Files of one `POST /api/notify`: how many, and their bytes together.
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_ATTACHMENT_TOTAL: usize = 10 * 1024 * 1024;

/// At most this many buttons on one alert: Telegram and the cards show them all.
pub const MAX_ACTIONS: usize = 20;
/// A button's label, in characters: what fits on a phone's button.
const MAX_LABEL_CHARS: usize = 64;
/// An action's name after its underscores, and a URL, in bytes.
const MAX_ACTION_BYTES: usize = 2048;
/// The latest `timestamp` taken: the end of year 9999, as far as dates are written.
const MAX_EPOCH_S: f64 = 253_402_300_799.0;

/// Reads a PUT body, naming every bad or missing field at once.
pub fn new_alert(body: &Value) -> Result<NewAlert, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request("body: expected a JSON object"));
    };
    let mut problems = Vec::new();
    for k in obj.keys() {
        if !FIELDS.contains(&k.as_str()) && !READ_ONLY.contains(&k.as_str()) {
            problems.push(format!(
                "{k}: unknown field (expected one of {})",
                FIELDS.join(", ")
            ));
        }
    }
    let text = |k: &str, problems: &mut Vec<String>, required: bool| match obj.get(k) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Null) | None if !required => None,
        None => {
            problems.push(format!("{k}: missing (required)"));
            None
        }
        Some(v) => {
            problems.push(format!("{k}: expected a non-empty string, found {v}"));
            None
        }
    };
    let key = text("key", &mut problems, true);
    let message = text("message", &mut problems, true);
    let details = text("details", &mut problems, false);
    for (field, value, max) in [
        ("key", &key, MAX_KEY_BYTES),
        ("message", &message, MAX_MESSAGE_BYTES),
        ("details", &details, MAX_DETAILS_BYTES),
    ] {
        if let Some(v) = value
            && v.len() > max
        {
            problems.push(format!("{field}: {} bytes, at most {max}", v.len()));
        }
    }
    let machine_id = match obj.get("machine_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(n) => Some(n),
            None => {
                problems.push(format!(
                    "machine_id: expected a whole number (the machine's id) or null, found {v}"
                ));
                None
            }
        },
    };
    let severity = match text("severity", &mut problems, false).map(|s| s.parse::<Severity>()) {
        None => Severity::Info,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            problems.push(format!("severity: {e}"));
            Severity::Info
        }
    };
    let timestamp_ms = match obj.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && (0.0..=MAX_EPOCH_S).contains(&t) => {
                Some((t * 1000.0).round() as i64)
            }
            _ => {
                problems.push(format!(
                    "timestamp: expected seconds since 1970-01-01 UTC (a number, as 1692300658), found {v}"
                ));
                None
            }
        },
    };
    let ttl_s = match obj.get("ttl") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= crate::alerts::MAX_TTL_S => Some(n),
            _ => {
                problems.push(format!(
                    "ttl: expected a whole number of seconds from 1 to {} (ten years), found {v}",
                    crate::alerts::MAX_TTL_S
                ));
                None
            }
        },
    };
    let actions = actions(obj.get("actions"), &mut problems);
    let data = match obj.get("data") {
        None | Some(Value::Null) => json!({}),
        Some(Value::Object(o)) if Value::Object(o.clone()).to_string().len() > MAX_DATA_BYTES => {
            problems.push(format!("data: more than {MAX_DATA_BYTES} bytes as JSON"));
            json!({})
        }
        Some(Value::Object(o)) => Value::Object(o.clone()),
        Some(v) => {
            problems.push(format!("data: expected an object, found {v}"));
            json!({})
        }
    };
    if !problems.is_empty() {
        return Err(ApiError::bad_request(problems.join("; ")));
    }
    let (Some(key), Some(message)) = (key, message) else {
        return Err(ApiError::bad_request("key and message are required"));
    };
    Ok(NewAlert {
        key: format!("custom|{key}"),
        message,
        details,
        severity,
        ttl_s,
        machine_id,
        actions,
        data,
        timestamp_ms,
    })
}

/// OnTakt's `actions`: an object of button label → action string, each a server action
/// (`__name`), a client action (`_name`) or a URL to open (absolute `http(s)`, or a
/// path on the server as OnTakt's own alerts carry). Each bad one is named by its label.
fn actions(v: Option<&Value>, problems: &mut Vec<String>) -> Vec<Action> {
    let map = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(map)) => map,
        Some(v) => {
            problems.push(format!(
                "actions: expected an object of button label → action string \
                 (as {{\"View forecast\": \"https://…\"}}), found {v}"
            ));
            return Vec::new();
        }
    };
    if map.len() > MAX_ACTIONS {
        problems.push(format!(
            "actions: {} buttons; at most {MAX_ACTIONS}",
            map.len()
        ));
        return Vec::new();
    }
    let mut out = Vec::new();
    for (label, value) in map {
        let at = format!("actions.{label}");
        if label.trim().is_empty()
            || label.chars().count() > MAX_LABEL_CHARS
            || label.chars().any(char::is_control)
        {
            problems.push(format!(
                "{at}: a label must be 1 to {MAX_LABEL_CHARS} characters, without control characters"
            ));
            continue;
        }
        let Some(action) = value.as_str() else {
            problems.push(format!("{at}: expected an action string, found {value}"));
            continue;
        };
        if let Err(why) = check_action(action) {
            problems.push(format!("{at}: {why}, found {value}"));
            continue;
        }
        out.push(Action {
            label: label.clone(),
            action: action.to_string(),
        });
    }
    out
}

fn check_action(a: &str) -> Result<(), &'static str> {
    const EXPECTED: &str = "expected a server action (__name), a client action (_name) or a URL \
         (https://…, or a path on the server such as /tools/)";
    if a.len() > MAX_ACTION_BYTES {
        return Err("longer than 2048 bytes");
    }
    let name = a.strip_prefix("__").or_else(|| a.strip_prefix('_'));
    if let Some(name) = name {
        let ok = !name.is_empty()
            && !name.starts_with('_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        return if ok { Ok(()) } else { Err(EXPECTED) };
    }
    // No backslash anywhere: browsers read `/\\host/` as `//host/`, a link to another
    // server (another local user's port) dressed as a path of ours.
    let clean = !a.is_empty()
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\');
    let relative = a.starts_with('/') && !a.starts_with("//");
    if clean && (relative || crate::event::is_absolute_http(a)) {
        Ok(())
    } else {
        Err(EXPECTED)
    }
}

/// `?notify=service[:scope]` or a channel's numeric id.
fn channel(st: &ApiState, spec: &str) -> Result<Destination, ApiError> {
    let config = st.config();
    let channels = super::status::channel_list(&config);
    if let Ok(id) = spec.parse::<u32>() {
        return channels
            .into_iter()
            .find(|(n, _)| *n == id)
            .map(|(_, d)| d)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "notify: no channel with id {id} (see /api/channels)"
                ))
            });
    }
    let (service, scope) = spec.split_once(':').unwrap_or((spec, ""));
    let scope = if scope.is_empty() {
        crate::config::Service::ALL
            .into_iter()
            .find(|s| s.as_str() == service)
            .and_then(|s| config.default_scope(s))
            .unwrap_or("")
            .to_string()
    } else {
        scope.to_string()
    };
    let wanted = format!("{service}:{scope}");
    channels
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d.to_string() == wanted)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "notify: {spec:?} is not a configured channel (see /api/channels)"
            ))
        })
}

pub async fn put(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<NotifyQuery>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let input = new_alert(&body)?;
    let target = q.notify.as_deref().map(|n| channel(&st, n)).transpose()?;
    let now = now_ms();
    let max = st.config().api.max_alerts;
    let alert = st
        .db(move |s| alerts::put_bounded(s, &input, now, max))
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "alerts: {max} API alerts are active (api.max_alerts); dismiss some, or let them expire"
                ),
            )
        })?;
    if let Some(dest) = target {
        let event = alert.to_event();
        let d = dest.clone();
        st.db(move |s| {
            queue::send(
                s,
                &[Delivery {
                    event,
                    to: vec![d],
                    repeat: None,
                    request: None,
                }],
            )
        })
        .await?;
        st.outbox
            .ensure_workers(std::slice::from_ref(&dest))
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        st.outbox.wake(&dest);
    }
    Ok((StatusCode::CREATED, Json(view(&alert))))
}

pub async fn dismiss(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no alert {id:?}")))?;
    let now = now_ms();
    let by = caller.actor();
    if st.db(move |s| alerts::dismiss(s, id, now, by)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("id: no active alert {id}")))
    }
}

pub async fn clear(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
) -> Result<StatusCode, ApiError> {
    let now = now_ms();
    let by = caller.actor();
    st.db(move |s| alerts::dismiss_all(s, now, by)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// BEC's message: a string, or `{"text": [spans], "tags": [...], "attachments": [...]}`.
fn message(v: Option<&Value>, problems: &mut Vec<String>) -> Message {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Message::plain(s.clone()),
        Some(Value::Object(o)) => {
            let mut m = Message::default();
            match o.get("text") {
                Some(Value::String(s)) => m.spans.push(Span { text: s.clone(), ..Span::default() }),
                Some(Value::Array(spans)) => {
                    for (i, sp) in spans.iter().enumerate() {
                        match serde_json::from_value::<Span>(sp.clone()) {
                            Ok(s) => m.spans.push(s),
                            Err(e) => problems.push(format!("message.text[{i}]: {e}")),
                        }
                    }
                }
                other => problems.push(format!(
                    "message.text: expected a string or a list of {{\"text\", \"bold\", \"italic\", \"color\"}}, found {}",
                    other.map_or("nothing".to_string(), |v| v.to_string())
                )),
            }
            if m.text().trim().is_empty() && problems.is_empty() {
                problems.push("message.text: empty".into());
            }
            match o.get("tags") {
                None | Some(Value::Null) => {}
                Some(Value::Array(t)) if t.iter().all(Value::is_string) => {
                    m.tags = t
                        .iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect();
                }
                Some(v) => problems.push(format!(
                    "message.tags: expected a list of strings, found {v}"
                )),
            }
            if let Some(list) = o.get("attachments") {
                let Some(list) = list.as_array() else {
                    problems.push("message.attachments: expected a list".into());
                    return m;
                };
                if list.len() > MAX_ATTACHMENTS {
                    problems.push(format!(
                        "message.attachments: {} files, at most {MAX_ATTACHMENTS}",
                        list.len()
                    ));
                    return m;
                }
                for (i, a) in list.iter().enumerate() {
                    match attachment(a) {
                        Ok(a) => m.attachments.push(a),
                        Err(e) => problems.push(format!("message.attachments[{i}]: {e}")),
                    }
                }
                let total: usize = m.attachments.iter().map(|a| a.data.len()).sum();
                if total > MAX_ATTACHMENT_TOTAL {
                    problems.push(format!(
                        "message.attachments: {total} bytes together, at most {MAX_ATTACHMENT_TOTAL} (10 MB)"
                    ));
                }
            }
            m
        }
        Some(v) => {
            problems.push(format!(
                "message: expected a non-empty string or an object, found {v}"
            ));
            Message::default()
        }
        None => {
            problems.push("message: missing (required)".into());
            Message::default()
        }
    }
}

/// A file as bytes in the body. The API never opens a file a caller names: the agent
/// may run with rights the caller has not (root, LocalSystem), and a path on a share
/// would make it authenticate elsewhere. `send-message --attach` reads the file with
/// the caller's own rights and sends its bytes.
fn attachment(a: &Value) -> Result<Attachment, String> {
    use base64::Engine;
    if a.get("path").is_some() {
        return Err("path: the API reads no files; send the file's bytes as \"data_base64\" (protowatch send-message --attach does)".into());
    }
    let name = a.get("filename").and_then(Value::as_str);
    match a.get("data_base64").and_then(Value::as_str) {
        Some(data) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| format!("data_base64: {e}"))?;
            Attachment::new(name.ok_or("filename: required with data_base64")?, bytes)
                .map_err(|e| e.to_string())
        }
        None => Err("expected \"data_base64\" and \"filename\"".into()),
    }
}

pub async fn notify(
    State(st): State<Arc<ApiState>>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body?;
    let NotifyBody {
        event,
        severity,
        message,
    } = notify_body(&body)?;
    let e = Event::message(&event, severity, message);
    let id = st.db(move |s| inbox::submit(s, &e, None)).await?;
    (st.wake)();
    Ok((StatusCode::ACCEPTED, Json(json!({"id": id}))))
}

/// A `POST /api/notify` body as read: what the notification will say.
#[derive(Debug)]
pub struct NotifyBody {
    pub event: String,
    pub severity: Severity,
    pub message: Message,
}

/// Reads a notify body, naming every bad or missing field at once. Kept apart from the
/// handler so that it can be tested (and fuzzed) without a server.
pub fn notify_body(body: &Value) -> Result<NotifyBody, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::bad_request("body: expected a JSON object"));
    };
    let mut problems = Vec::new();
    let event = match obj.get("event") {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if let Err(e) = crate::event::check_name(s) {
                problems.push(format!("event: {e}"));
            }
            s.clone()
        }
        Some(v) => {
            problems.push(format!("event: expected a non-empty string, found {v}"));
            String::new()
        }
        None => {
            problems.push("event: missing (required)".into());
            String::new()
        }
    };
    let severity = match obj
        .get("severity")
        .and_then(Value::as_str)
        .map(str::parse::<Severity>)
    {
        None => Severity::Info,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            problems.push(format!("severity: {e}"));
            Severity::Info
        }
    };
    let message = message(obj.get("message"), &mut problems);
    if !problems.is_empty() {
        return Err(ApiError::bad_request(problems.join("; ")));
    }
    Ok(NotifyBody {
        event,
        severity,
        message,
    })
}

/// What became of a notification: whether the agent took it, where it went, and each
/// delivery's outcome (for `send-message --wait`).
pub async fn notify_status(
    State(st): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no notification {id:?}")))?;
    let status = st.db(move |s| inbox::status(s, id)).await?;
    let receipts: Vec<Value> = status
        .receipts
        .iter()
        .map(|(d, ok, e)| json!({"destination": d, "delivered": ok, "error": e}))
        .collect();
    let queued: Vec<Value> = status
        .queued
        .iter()
        .map(|(d, e)| json!({"destination": d, "last_error": e}))
        .collect();
    Ok(Json(json!({
        "id": id,
        "accepted": status.accepted,
        "sent_to": status.sent_to,
        "counted": status.counted,
        "receipts": receipts,
        "queued": queued,
    })))
}

/// `POST /api/alerts/{id}/action/{action}`, with OnTakt's codes: 404 no such active
/// alert, or it carries no action with that string; 501 an action the server has no
/// handler for (a client action, a URL, an unknown `__` name); 424 the handler failed;
/// 204 done. The handlers: `__dismiss` (as `DELETE`), `__ack` (as `POST …/ack`), `__snooze` (no messages for its
/// key for `data.snooze_s` seconds, an hour without it) and `__resend` (the alert again,
/// through its event's routes).
pub async fn action(
    State(st): State<Arc<ApiState>>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let by = caller.actor();
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("id: no alert {id:?}")))?;
    let now = now_ms();
    let alert = st
        .db(move |s| alerts::get(s, id))
        .await?
        .filter(|a| a.is_active(now))
        .ok_or_else(|| ApiError::not_found(format!("id: no active alert {id}")))?;
    if !alert.actions.iter().any(|a| a.action == action) {
        return Err(ApiError::not_found(format!(
            "action: alert {id} does not carry the action {action:?}"
        )));
    }
    let failed = |m: String| ApiError::new(StatusCode::FAILED_DEPENDENCY, m);
    match action.as_str() {
        "__dismiss" => {
            st.db(move |s| alerts::dismiss(s, id, now, by)).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        "__ack" => {
            st.db(move |s| alerts::acknowledge(s, id, now, by)).await?;
            (st.wake)();
            Ok(StatusCode::NO_CONTENT)
        }
        "__resend" => {
            let config = st.config();
            let name = alert.event.clone();
            let wake = st.db(move |s| alerts::resend(s, &alert, &config)).await?;
            if wake.is_empty() {
                return Err(failed(format!("__resend: no route for the event {name:?}")));
            }
            let _ = st.outbox.ensure_workers(&wake);
            for d in &wake {
                st.outbox.wake(d);
            }
            Ok(StatusCode::NO_CONTENT)
        }
        "__snooze" => {
            let secs = match alert.data.get("snooze_s") {
                None => alerts::DEFAULT_SNOOZE_S,
                Some(v) => v.as_u64().filter(|s| *s > 0).ok_or_else(|| {
                    failed(format!(
                        "__snooze: the alert's data.snooze_s is {v}, not a whole number of seconds"
                    ))
                })?,
            };
            let until = now.saturating_add((secs.min(alerts::MAX_TTL_S) as i64) * 1000);
            st.db(move |s| alerts::snooze(s, id, until, by)).await?;
            Ok(StatusCode::NO_CONTENT)
        }
        other => Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("action: {other:?} has no handler on the server"),
        )),
    }
}
