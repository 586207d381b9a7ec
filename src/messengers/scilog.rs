//! SciLog, PSI's electronic logbook (BEC's permanent record), through its REST API as
//! SciLog's own Python SDK uses it.
//!
//! A message is one paragraph in the scope's logbook: the logbook is read first
//! (`GET /logbooks/{id}`: it exists, and its ACL fields, which the entry copies as the
//! SDK's `pinned_to_logbook` does, so that whoever may read the logbook may read the
//! entry); each file is uploaded (`POST /filesnippet/files`, multipart `file` and
//! `fields`) and then referenced from the entry; the entry is `POST /basesnippets` with
//! `snippetType` and `linkType` `paragraph`. See [`entry`] for its HTML.
//!
//! Logging in is `POST /users/login {"principal", "password"}`, which answers a token
//! sent as `Bearer`. A token expires; a 401 on any request logs in again and repeats
//! that request once, so an expiry costs nothing. A configured token cannot be renewed:
//! its 401 is permanent.
//!
//! The multipart body is written here rather than by reqwest's `multipart` feature: two
//! parts, and one dependency less in a build that must also compile for Windows.

mod config;
mod entry;

pub use config::{Login, ScilogConfig};

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::probe::{Check, with_causes, within};
use super::render::Notification;
use super::{Deliver, SendError, Service};
use crate::settings::mask_url;

/// The logbook's fields an entry and its files copy (the SDK's `ACLS`).
const ACLS: [&str; 6] = [
    "createACL",
    "readACL",
    "updateACL",
    "deleteACL",
    "shareACL",
    "adminACL",
];

pub struct Scilog {
    timeout: Duration,
    client: super::http::Client,
    /// The API's base URL, without a trailing `/`.
    base: String,
    login: Login,
    /// The bearer token in use; `None` until the first login and after a refusal.
    token: Mutex<Option<String>>,
    scopes: std::collections::BTreeMap<String, String>,
    tags: Vec<String>,
}

/// A request's outcome, with a 401 told apart: the caller logs in again.
enum Answer {
    Ok(Value),
    Unauthorized(String),
}

impl Scilog {
    pub fn new(cfg: &ScilogConfig) -> Result<Scilog, String> {
        let token = match &cfg.login {
            Login::Token(t) => Some(bearer(t.expose())),
            Login::Password { .. } => None,
        };
        Ok(Scilog {
            timeout: cfg.timeout,
            client: super::http::client(cfg.timeout)?,
            base: cfg.url.as_str().trim_end_matches('/').to_string(),
            login: cfg.login.clone(),
            token: Mutex::new(token),
            scopes: cfg.scopes.clone(),
            tags: cfg.tags.clone(),
        })
    }

    /// Never a secret in what is reported: the password and tokens are scrubbed.
    fn scrub(&self, text: &str) -> String {
        match &self.login {
            Login::Password { password, .. } => password.scrub(text),
            Login::Token(t) => t.scrub(text),
        }
    }

    /// The token to send: the one in use, or a fresh login.
    async fn token(&self) -> Result<String, SendError> {
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref() {
            return Ok(t.clone());
        }
        let Login::Password { user, password } = &self.login else {
            return Err(SendError::permanent(
                "SciLog refused the configured token; set a new scilog.token",
            ));
        };
        let url = format!("{}/users/login", self.base);
        let response = self
            .client
            .post(&url)
            .json(&json!({"principal": user, "password": password.expose()}))
            .send()
            .await
            .map_err(|e| {
                SendError::transient(
                    self.scrub(&format!("SciLog login: {}", with_causes(&e.without_url()))),
                )
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let what = format!("SciLog login as {user:?}: HTTP {status}: {}", said(&body));
            return Err(classify_status(status, self.scrub(&what)));
        }
        let token = body["token"].as_str().ok_or_else(|| {
            SendError::permanent(format!("SciLog login as {user:?}: no token in the answer"))
        })?;
        let token = bearer(token);
        *held = Some(token.clone());
        Ok(token)
    }

    /// Forgets a token the server refused, unless another request already replaced it.
    async fn refused(&self, token: &str) {
        let mut held = self.token.lock().await;
        if held.as_deref() == Some(token) && matches!(self.login, Login::Password { .. }) {
            *held = None;
        }
    }

    /// Sends one request with the current token; on 401, logs in again and sends it once
    /// more. `make` builds the request anew for each try.
    async fn call(
        &self,
        what: &str,
        make: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<Value, SendError> {
        for attempt in 0..2 {
            let token = self.token().await?;
            match self.once(what, make(&token)).await? {
                Answer::Ok(v) => return Ok(v),
                Answer::Unauthorized(message) => {
                    self.refused(&token).await;
                    if attempt == 1 || matches!(self.login, Login::Token(_)) {
                        return Err(SendError::permanent(message));
                    }
                    tracing::info!(what, "SciLog refused the token; logging in again");
                }
            }
        }
        Err(SendError::permanent(format!("{what}: refused")))
    }

    async fn once(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Answer, SendError> {
        let response = req.send().await.map_err(|e| {
            SendError::transient(self.scrub(&format!("{what}: {}", with_causes(&e.without_url()))))
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = self.scrub(&format!("{what}: HTTP {status}: {}", said(&body)));
        if status.is_success() {
            Ok(Answer::Ok(body))
        } else if status == StatusCode::UNAUTHORIZED {
            Ok(Answer::Unauthorized(message))
        } else {
            Err(classify_status(status, message))
        }
    }

    /// The logbook of `scope`: it exists, and its fields.
    async fn logbook(&self, id: &str) -> Result<Map<String, Value>, SendError> {
        let url = format!("{}/logbooks/{}", self.base, path_segment(id));
        let what = format!("SciLog logbook {id}");
        let v = self
            .call(&what, |t| {
                self.client
                    .get(&url)
                    .header("Authorization", t)
                    .header("Accept", "application/json")
            })
            .await?;
        match v {
            Value::Object(o) => Ok(o),
            _ => Err(SendError::permanent(format!(
                "{what}: the answer is not a logbook"
            ))),
        }
    }

    /// Uploads one file as a file snippet with the entry's ACLs and tags; its id and
    /// access hash.
    async fn upload(
        &self,
        a: &crate::event::Attachment,
        acl: &Map<String, Value>,
        tags: &[String],
    ) -> Result<(String, String), SendError> {
        let mut fields = acl.clone();
        fields.insert("snippetType".into(), json!("image"));
        fields.insert("fileExtension".into(), json!(entry::extension(a)));
        if !tags.is_empty() {
            fields.insert("tags".into(), json!(tags));
        }
        let boundary = format!("protowatch-{:032x}", fastrand::u128(..));
        let body = multipart(&boundary, a, &Value::Object(fields).to_string());
        let url = format!("{}/filesnippet/files", self.base);
        let what = format!("SciLog upload of {}", a.filename);
        let v = self
            .call(&what, |t| {
                self.client
                    .post(&url)
                    .header("Authorization", t)
                    .header("Accept", "application/json")
                    .header(
                        "Content-Type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body.clone())
            })
            .await?;
        // The SDK takes the first of a list, too.
        let snippet = match &v {
            Value::Array(items) => items.first().cloned().unwrap_or(Value::Null),
            other => other.clone(),
        };
        match (snippet["id"].as_str(), snippet["accessHash"].as_str()) {
            (Some(id), Some(hash)) => Ok((id.to_string(), hash.to_string())),
            _ => Err(SendError::permanent(format!(
                "{what}: the answer has no id and accessHash"
            ))),
        }
    }
}

impl Deliver for Scilog {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let id = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no scilog scope {scope:?}")))?;
        let logbook = self.logbook(id).await?;
        let acl: Map<String, Value> = ACLS
            .iter()
            .filter_map(|k| {
                logbook
                    .get(*k)
                    .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                    .map(|v| (k.to_string(), v.clone()))
            })
            .collect();
        let tags = entry::tags(n, &self.tags);
        let mut files = Vec::new();
        let mut shown = Vec::new();
        for a in n.attachments() {
            let (file_id, access_hash) = self.upload(a, &acl, &tags).await?;
            let r = entry::file_ref(a, &file_id, &access_hash);
            shown.push(r.html);
            files.push(r.info);
        }
        let html = entry::html(n, &shown);
        let mut snippet = acl.clone();
        snippet.insert("snippetType".into(), json!("paragraph"));
        snippet.insert("linkType".into(), json!("paragraph"));
        snippet.insert("parentId".into(), json!(id));
        snippet.insert("textcontent".into(), json!(html));
        snippet.insert("tags".into(), json!(tags));
        if !files.is_empty() {
            snippet.insert("files".into(), Value::Array(files));
        }
        let body = Value::Object(snippet);
        let url = format!("{}/basesnippets", self.base);
        let what = format!("SciLog entry in logbook {id}");
        self.call(&what, |t| {
            self.client
                .post(&url)
                .header("Authorization", t)
                .header("Accept", "application/json")
                .json(&body)
        })
        .await
        .map(drop)
    }

    /// Logs in (or checks the token), then reads each scope's logbook; writes nothing.
    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        const SCILOG: Service = Service::Scilog;
        let step = match &self.login {
            Login::Password { user, .. } => {
                format!("login {user} at {}", mask_url(&self.base))
            }
            Login::Token(_) => format!("token at {}", mask_url(&self.base)),
        };
        match &self.login {
            Login::Password { .. } => match within(self.timeout, self.token(), |e| e.message).await
            {
                Ok(_) => report(Check::ok(SCILOG, step, None)),
                Err(e) => return report(Check::failed(SCILOG, step, e)),
            },
            Login::Token(_) => report(Check::skipped(
                SCILOG,
                step,
                "a configured token; the logbooks below show whether it works",
            )),
        }
        for (scope, id) in &self.scopes {
            let step = format!("logbook {scope} ({id})");
            report(
                match within(self.timeout, self.logbook(id), |e| e.message).await {
                    Ok(lb) => {
                        let name = lb.get("name").and_then(Value::as_str).unwrap_or("?");
                        Check::ok(SCILOG, step, Some(format!("{name:?}, nothing written")))
                    }
                    Err(e) => Check::failed(SCILOG, step, e),
                },
            );
        }
    }
}

/// `Bearer <token>`, as the SDK sends it; a configured token may carry the word already.
fn bearer(token: &str) -> String {
    if token.starts_with("Bearer ") {
        token.to_string()
    } else {
        format!("Bearer {token}")
    }
}

/// 408, 429 and 5xx may pass later; any other refusal will be the same next time.
fn classify_status(status: StatusCode, message: String) -> SendError {
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        SendError::transient(message)
    } else {
        SendError::permanent(message)
    }
}

/// What SciLog (LoopBack) said: `{"error": {"message", "details"}}`, cut short.
fn said(body: &Value) -> String {
    let e = &body["error"];
    let mut text = e["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| body.to_string());
    if let Some(d) = e.get("details").filter(|d| !d.is_null()) {
        text.push_str(&format!(" {d}"));
    }
    text.chars().take(300).collect()
}

/// A logbook id as one path segment.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// `multipart/form-data` with the file (as the SDK sends it: its name, and `image/png`
/// or `file/<ext>` as its type) and the snippet's `fields` as JSON.
fn multipart(boundary: &str, a: &crate::event::Attachment, fields: &str) -> Vec<u8> {
    let name = a.filename.replace(['"', '\r', '\n'], "_");
    let mut body = Vec::with_capacity(a.data.len() + fields.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {}\r\n\r\n",
            entry::kind(a)
        )
        .as_bytes(),
    );
    body.extend_from_slice(&a.data);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"fields\"\r\n\r\n{fields}\r\n--{boundary}--\r\n"
        )
        .as_bytes(),
    );
    body
}
