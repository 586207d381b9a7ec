//! A loopback Signal gateway in both forms protowatch speaks, answering and refusing as
//! the real ones do:
//!
//! - signal-cli-rest-api (`bbernhard/signal-cli-rest-api`, `src/api/api.go` `SendV2`,
//!   `src/client/client.go`): `POST /v2/send` — 400 "Couldn't process request - …" for a
//!   body of the wrong shape, no recipient or no number; groups as `group.` +
//!   base64(signal-cli id) whose double decoding must be 32 bytes; groups and numbers
//!   never mixed, one group at most; `text_mode: "styled"` parsed as its
//!   `textstyleparser.go` does; `base64_attachments` as data URIs that must decode; an
//!   unknown group 400, an unregistered number in the answer's per-recipient `errors`,
//!   a rate limit 429 with `challenge_tokens`. `GET /v1/about`, `GET /v1/groups/{number}`
//!   and `/v1/groups/{number}/{id}` (404 "No group with that id found").
//! - signal-cli's HTTP daemon (`AsamK/signal-cli`, `HttpServerHandler.java`,
//!   `man/signal-cli-jsonrpc.5.adoc`): `POST /api/v1/rpc` only (405), JSON only (415);
//!   JSON-RPC 2.0 with `send`, `version`, `listGroups`; parameters by signal-cli's names
//!   (single or list: `recipient`/`recipients`, `attachment`/`attachments`,
//!   `textStyle`/`textStyles`); errors with signal-cli's codes (-1 user error such as
//!   "Group not found: …" or "The user … is not registered.", -5 rate limit, -32600,
//!   -32601, -32602).
//!
//! Every accepted message is recorded as plain text with its styles and files, so a test
//! checks the same thing whichever gateway carried it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One message the gateway accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `rest` or `jsonrpc`.
    pub api: &'static str,
    /// The signal-cli group id, when sent to a group.
    pub group: Option<String>,
    pub recipients: Vec<String>,
    /// The text as the phone shows it.
    pub text: String,
    /// `start:length:STYLE`, UTF-16 units.
    pub styles: Vec<String>,
    /// `(file name, mime type, bytes)`.
    pub files: Vec<(String, String, Vec<u8>)>,
}

impl Sent {
    /// The text runs that are bold.
    pub fn bold(&self) -> Vec<String> {
        self.styled("BOLD")
    }

    pub fn styled(&self, style: &str) -> Vec<String> {
        let units: Vec<u16> = self.text.encode_utf16().collect();
        self.styles
            .iter()
            .filter_map(|s| {
                let mut p = s.splitn(3, ':');
                let start: usize = p.next()?.parse().ok()?;
                let len: usize = p.next()?.parse().ok()?;
                if p.next()? != style {
                    return None;
                }
                Some(String::from_utf16_lossy(units.get(start..start + len)?))
            })
            .collect()
    }
}

#[derive(Default)]
struct SignalState {
    account: String,
    /// signal-cli group id → name.
    groups: HashMap<String, String>,
    registered: Vec<String>,
    sent: Vec<Sent>,
    rate_limited: usize,
    /// Answer sends with the old `{"timestamp"}` object instead of a list.
    old_answers: bool,
    /// `(path, status)` of every request.
    log: Vec<(String, u16)>,
}

pub struct FakeSignal {
    pub url: String,
    state: Arc<Mutex<SignalState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// A signal-cli group id: base64 of 32 bytes.
pub fn group_id(seed: u8) -> String {
    B64.encode([seed; 32])
}

impl FakeSignal {
    /// A gateway for the account `account`.
    pub fn start(account: &str) -> FakeSignal {
        let state = Arc::new(Mutex::new(SignalState {
            account: account.into(),
            ..SignalState::default()
        }));
        let app = Router::new()
            .route("/v2/send", post(rest_send))
            .route("/v1/about", get(about))
            .route("/v1/groups/{number}", get(rest_groups))
            .route("/v1/groups/{number}/{id}", get(rest_group))
            .route("/api/v1/rpc", axum::routing::any(rpc))
            .with_state(state.clone());
        let (addr, stop) = super::serve(app, 0);
        FakeSignal {
            url: format!("http://{addr}"),
            state,
            _stop: stop,
        }
    }

    pub fn add_group(&self, id: &str, name: &str) {
        self.state
            .lock()
            .unwrap()
            .groups
            .insert(id.into(), name.into());
    }

    pub fn register(&self, number: &str) {
        self.state.lock().unwrap().registered.push(number.into());
    }

    /// The next `n` sends are refused for Signal's rate limit.
    pub fn rate_limit(&self, n: usize) {
        self.state.lock().unwrap().rate_limited = n;
    }

    pub fn old_answers(&self) {
        self.state.lock().unwrap().old_answers = true;
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.state.lock().unwrap().sent.clone()
    }

    pub fn log(&self) -> Vec<(String, u16)> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn wait_for(&self, n: usize, timeout: std::time::Duration) -> Vec<Sent> {
        super::wait_until(timeout, || self.sent().len() >= n);
        self.sent()
    }
}

fn note(st: &Arc<Mutex<SignalState>>, path: &str, r: Response) -> Response {
    st.lock()
        .unwrap()
        .log
        .push((path.into(), r.status().as_u16()));
    r
}

fn rest_error(status: u16, msg: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({ "error": msg })),
    )
        .into_response()
}

/// signal-cli-rest-api's `textstyleparser.go`: markers out, styles as ranges.
pub fn parse_styled(input: &str) -> (String, Vec<String>) {
    let chars: Vec<char> = input.chars().collect();
    let mut full = String::new();
    let mut styles = Vec::new();
    let mut stack: Vec<(usize, &str)> = Vec::new();
    let mut prev = '\0';
    let mut i = 0;
    let len16 = |s: &str| s.encode_utf16().count();
    let mut token = |full: &str, kind: &'static str, styles: &mut Vec<String>| {
        let at = len16(full);
        match stack.last() {
            Some((begin, k)) if *k == kind => {
                let begin = *begin;
                stack.pop();
                let n = at - begin;
                if kind == "BOLD_ITALIC" {
                    styles.push(format!("{begin}:{n}:BOLD"));
                    styles.push(format!("{begin}:{n}:ITALIC"));
                } else {
                    styles.push(format!("{begin}:{n}:{kind}"));
                }
            }
            _ => stack.push((at, kind)),
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied().unwrap_or('\0');
        i += 1;
        if c == '*' {
            if next == '*' {
                i += 1;
                if chars.get(i) == Some(&'*') {
                    i += 1;
                    if prev == '\\' {
                        full.push_str("***");
                        prev = c;
                        continue;
                    }
                    token(&full, "BOLD_ITALIC", &mut styles);
                } else {
                    if prev == '\\' {
                        full.push_str("**");
                        prev = c;
                        continue;
                    }
                    token(&full, "BOLD", &mut styles);
                }
            } else {
                if prev == '\\' {
                    full.push('*');
                    prev = c;
                    continue;
                }
                token(&full, "ITALIC", &mut styles);
            }
        } else if c == '|' && next == '|' {
            i += 1;
            if prev == '\\' {
                full.push_str("||");
                prev = c;
                continue;
            }
            token(&full, "SPOILER", &mut styles);
        } else if c == '~' || c == '`' {
            if prev == '\\' {
                full.push(c);
                prev = c;
                continue;
            }
            token(
                &full,
                if c == '~' {
                    "STRIKETHROUGH"
                } else {
                    "MONOSPACE"
                },
                &mut styles,
            );
        } else if c == '\\' && ['*', '`', '|', '~'].contains(&next) {
            prev = c;
            continue;
        } else {
            full.push(c);
        }
        prev = c;
    }
    (full, styles)
}

/// A data URI (`data:<mime>;filename=<name>;base64,<data>`) or bare base64.
fn attachment(s: &str) -> Result<(String, String, Vec<u8>), String> {
    let (meta, data) = match s.rfind("base64,") {
        Some(i) if s.contains("data:") => (&s[..i], &s[i + 7..]),
        _ => ("", s),
    };
    let bytes = B64
        .decode(data)
        .map_err(|e| format!("illegal base64 data: {e}"))?;
    let mut mime = String::new();
    let mut name = String::new();
    for item in meta.trim_end_matches(';').split(';') {
        if let Some(m) = item.strip_prefix("data:") {
            mime = m.to_string();
        } else if let Some(n) = item.strip_prefix("filename=") {
            name = n.to_string();
        }
    }
    Ok((name, mime, bytes))
}

fn is_phone(s: &str) -> bool {
    s.starts_with('+') && s[1..].chars().all(|c| c.is_ascii_digit() || c == ' ')
}

async fn rest_send(State(st): State<Arc<Mutex<SignalState>>>, body: Bytes) -> Response {
    let r = rest_send_inner(&st, &body);
    note(&st, "/v2/send", r)
}

fn rest_send_inner(st: &Arc<Mutex<SignalState>>, body: &[u8]) -> Response {
    let invalid = || rest_error(400, "Couldn't process request - invalid request");
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return invalid();
    };
    // Go's decoder: each known field must have its type.
    let string = |k: &str| req.get(k).is_none_or(|v| v.is_string() || v.is_null());
    let strings = |k: &str| {
        req.get(k).is_none_or(|v| {
            v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
        })
    };
    if !(string("number")
        && string("message")
        && string("recipient")
        && string("text_mode")
        && strings("recipients")
        && strings("base64_attachments"))
    {
        return invalid();
    }
    let mut recipients: Vec<String> = req
        .get("recipients")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if let Some(r) = req
        .get("recipient")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
    {
        recipients.push(r.to_string());
    }
    if recipients.is_empty() {
        return rest_error(
            400,
            "Couldn't process request - please provide at least one recipient",
        );
    }
    let number = req.get("number").and_then(Value::as_str).unwrap_or("");
    if number.is_empty() {
        return rest_error(
            400,
            "Couldn't process request - please provide a valid number",
        );
    }
    let mut groups = Vec::new();
    let mut numbers = Vec::new();
    for r in &recipients {
        if let Some(rest) = r.strip_prefix("group.") {
            let inner = B64
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            match inner.as_deref().map(|i| (i, B64.decode(i))) {
                Some((i, Ok(raw))) if raw.len() == 32 => groups.push(i.to_string()),
                Some((_, Ok(raw))) => {
                    return rest_error(400, &format!("Invalid Signal group size ({}", raw.len()));
                }
                _ => return rest_error(400, &format!("Invalid identifier {r}")),
            }
        } else if is_phone(r) {
            numbers.push(r.clone());
        } else {
            return rest_error(400, "Invalid recipient type");
        }
    }
    if !groups.is_empty() && !numbers.is_empty() {
        return rest_error(
            400,
            "Signal Messenger Groups and phone numbers cannot be specified together in one request! Please split them up into multiple REST API calls.",
        );
    }
    if groups.len() > 1 {
        return rest_error(
            400,
            "A signal message cannot be sent to more than one group at once! Please use multiple REST API calls for that.",
        );
    }
    let mut files = Vec::new();
    for a in req
        .get("base64_attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match attachment(a.as_str().unwrap_or("")) {
            Ok(f) => files.push(f),
            Err(e) => return rest_error(400, &e),
        }
    }
    let message = req.get("message").and_then(Value::as_str).unwrap_or("");
    let styled = req.get("text_mode").and_then(Value::as_str) == Some("styled");
    let (text, styles) = if styled {
        parse_styled(message)
    } else {
        (message.to_string(), Vec::new())
    };
    let mut s = st.lock().unwrap();
    if number != s.account {
        return rest_error(400, &format!("User {number} is not registered."));
    }
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({
                "error": "Failed to send message due to rate limiting. Use the attached challenge tokens to lift the rate limit restrictions via the '/v1/accounts/{number}/rate-limit-challenge' endpoint.",
                "challenge_tokens": ["3b4cd8e0-0d1f-4d3c-9e1c-1f2a3b4c5d6e"],
                "account": number,
            })),
        )
            .into_response();
    }
    if let Some(g) = groups.first()
        && !s.groups.contains_key(g)
    {
        return rest_error(400, &format!("Group not found: {g}"));
    }
    let timestamp = "1763647392000";
    let unregistered: Vec<Value> = numbers
        .iter()
        .filter(|n| !s.registered.contains(n))
        .map(|n| json!({"number": n, "reason": "UNREGISTERED_FAILURE"}))
        .collect();
    let mut one = json!({ "timestamp": timestamp });
    if !unregistered.is_empty() {
        one["errors"] = json!({ "recipients": unregistered });
    }
    if unregistered.len() < numbers.len() || !groups.is_empty() {
        s.sent.push(Sent {
            api: "rest",
            group: groups.first().cloned(),
            recipients: numbers.clone(),
            text,
            styles,
            files,
        });
    }
    let answer = if s.old_answers { one } else { json!([one]) };
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn about(State(st): State<Arc<Mutex<SignalState>>>) -> Response {
    let r = axum::Json(json!({
        "versions": ["v1", "v2"], "build": 2, "mode": "json-rpc", "version": "0.92",
        "capabilities": {"v2/send": ["quotes", "mentions"]},
    }))
    .into_response();
    note(&st, "/v1/about", r)
}

fn group_entries(s: &SignalState) -> Vec<Value> {
    s.groups
        .iter()
        .map(|(id, name)| {
            json!({"name": name, "description": "", "id": format!("group.{}", B64.encode(id)),
                   "internal_id": id, "members": [s.account], "blocked": false,
                   "pending_invites": [], "pending_requests": [], "invite_link": "",
                   "admins": [s.account]})
        })
        .collect()
}

async fn rest_groups(
    State(st): State<Arc<Mutex<SignalState>>>,
    UrlPath(number): UrlPath<String>,
) -> Response {
    let r = {
        let s = st.lock().unwrap();
        if number != s.account {
            rest_error(400, &format!("User {number} is not registered."))
        } else {
            axum::Json(Value::Array(group_entries(&s))).into_response()
        }
    };
    note(&st, "/v1/groups", r)
}

async fn rest_group(
    State(st): State<Arc<Mutex<SignalState>>>,
    UrlPath((number, id)): UrlPath<(String, String)>,
) -> Response {
    let r = {
        let s = st.lock().unwrap();
        if number != s.account {
            rest_error(400, &format!("User {number} is not registered."))
        } else {
            match group_entries(&s).into_iter().find(|g| g["id"] == id) {
                Some(g) => axum::Json(g).into_response(),
                None => rest_error(404, "No group with that id found"),
            }
        }
    };
    note(&st, "/v1/groups/{id}", r)
}

/// A parameter given as one value or a list, by its name or its plural (signal-cli's
/// `JsonRpcNamespace.getList`).
fn list(params: &serde_json::Map<String, Value>, name: &str) -> Option<Vec<Value>> {
    let v = params
        .get(name)
        .or_else(|| params.get(&format!("{name}s")))?;
    Some(match v {
        Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    })
}

async fn rpc(
    State(st): State<Arc<Mutex<SignalState>>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let r = if method != Method::POST {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    } else if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response()
    } else {
        let (id, answer) = rpc_inner(&st, &body);
        let mut out = json!({"jsonrpc": "2.0", "id": id});
        match answer {
            Ok(result) => out["result"] = result,
            Err((code, message)) => {
                out["error"] = json!({"code": code, "message": message, "data": null})
            }
        }
        axum::Json(out).into_response()
    };
    note(&st, "/api/v1/rpc", r)
}

fn rpc_inner(st: &Arc<Mutex<SignalState>>, body: &[u8]) -> (Value, Result<Value, (i64, String)>) {
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return (Value::Null, Err((-32700, "Parse error".into())));
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    if req.get("jsonrpc") != Some(&json!("2.0")) {
        return (id, Err((-32600, "jsonrpc field must be \"2.0\"".into())));
    }
    let Some(method) = req.get("method").and_then(Value::as_str) else {
        return (id, Err((-32600, "method field must be set".into())));
    };
    let params = match req.get("params") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return (id, Err((-32602, "params must be an object".into()))),
    };
    let mut s = st.lock().unwrap();
    if let Some(a) = params.get("account")
        && a.as_str() != Some(s.account.as_str())
    {
        return (
            id,
            Err((-32602, "Method requires valid account parameter".into())),
        );
    }
    let answer = match method {
        "version" => Ok(json!({"version": "0.13.22"})),
        "listGroups" => Ok(Value::Array(
            s.groups
                .iter()
                .map(|(gid, name)| {
                    json!({"id": gid, "name": name, "description": "", "isMember": true,
                           "isBlocked": false, "members": [{"number": s.account}],
                           "pendingMembers": [], "requestingMembers": [], "admins": [],
                           "groupInviteLink": null})
                })
                .collect(),
        )),
        "send" => rpc_send(&mut s, &params),
        _ => Err((-32601, "Method not implemented".into())),
    };
    (id, answer)
}

fn rpc_send(
    s: &mut SignalState,
    params: &serde_json::Map<String, Value>,
) -> Result<Value, (i64, String)> {
    let strings = |name: &str| -> Result<Vec<String>, (i64, String)> {
        list(params, name)
            .unwrap_or_default()
            .into_iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or((-32602, format!("{name}: expected a string")))
            })
            .collect()
    };
    let recipients = strings("recipient")?;
    let groups = strings("groupId")?;
    if recipients.is_empty() && groups.is_empty() {
        return Err((-1, "No recipients given".into()));
    }
    let message = match params.get("message") {
        None => String::new(),
        Some(Value::String(m)) => m.clone(),
        Some(_) => return Err((-32602, "message: expected a string".into())),
    };
    let styles = strings("textStyle")?;
    let units = message.encode_utf16().count();
    for style in &styles {
        let parts: Vec<&str> = style.split(':').collect();
        let ok = parts.len() == 3
            && parts[0]
                .parse::<usize>()
                .is_ok_and(|a| parts[1].parse::<usize>().is_ok_and(|n| a + n <= units));
        if !ok {
            return Err((
                -1,
                format!("Invalid textStyle syntax ({style}) expected 'start:length:STYLE'"),
            ));
        }
        if ![
            "NORMAL",
            "ITALIC",
            "BOLD",
            "SPOILER",
            "STRIKETHROUGH",
            "MONOSPACE",
        ]
        .contains(&parts[2])
        {
            return Err((-1, format!("Invalid style: {}", parts[2])));
        }
    }
    let mut files = Vec::new();
    for a in strings("attachment")? {
        if !a.starts_with("data:") {
            return Err((
                -1,
                format!("Failed to send message: {a} (NoSuchFileException)"),
            ));
        }
        files.push(attachment(&a).map_err(|e| {
            (
                -1,
                format!("Failed to send message: {e} (AttachmentInvalidException)"),
            )
        })?);
    }
    if s.rate_limited > 0 {
        s.rate_limited -= 1;
        return Err((-5, "Failed to send message due to rate limiting".into()));
    }
    for g in &groups {
        if !s.groups.contains_key(g) {
            return Err((-1, format!("Group not found: {g}")));
        }
    }
    for r in &recipients {
        if !s.registered.contains(r) {
            return Err((-1, format!("The user {r} is not registered.")));
        }
    }
    s.sent.push(Sent {
        api: "jsonrpc",
        group: groups.first().cloned(),
        recipients: recipients.clone(),
        text: message,
        styles,
        files,
    });
    let results: Vec<Value> = recipients
        .iter()
        .map(|r| json!({"recipientAddress": {"uuid": "a1b2c3d4-0000-4000-8000-000000000001", "number": r},
                        "type": "SUCCESS"}))
        .collect();
    Ok(json!({"timestamp": 1_763_647_392_000_i64, "results": results}))
}
