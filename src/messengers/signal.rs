//! Signal, the messenger of beamline operator groups, through one of two gateways that
//! hold the Signal account (`signal.api`):
//!
//! - `rest`: bbernhard's signal-cli-rest-api, `POST /v2/send` with `number`,
//!   `recipients` (one group as `"group." + base64(signal-cli group id)`, or numbers —
//!   never mixed: it refuses them together), `message` in `text_mode: "styled"`, and
//!   `base64_attachments` as data URIs with the file's name. Its answer is a
//!   `{"timestamp"}`, or a list of them with per-recipient `errors` (both are read: a
//!   recipient it could not reach is a failure, named).
//! - `jsonrpc`: signal-cli's own HTTP daemon (`signal-cli daemon --http`), `POST
//!   /api/v1/rpc` with JSON-RPC 2.0 method `send` (`groupId` or `recipient`, `message`,
//!   `textStyle` ranges, `attachments` as data URIs), the one BEC's Atlas uses.
//!
//! Rate limits (HTTP 429, signal-cli's error -5, a recipient's `RATE_LIMIT_FAILURE`)
//! are transient and retried with the outbox's backoff; an unknown group or an
//! unregistered number is permanent and named.

mod config;
pub mod number;
mod text;

pub use config::{Api, SignalConfig, Target};

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::probe::{Check, with_causes, within};
use super::render::Notification;
use super::{Deliver, SendError, Service};
use crate::settings::mask_url;

const SIGNAL: Service = Service::Signal;

pub struct Signal {
    timeout: Duration,
    client: super::http::Client,
    base: String,
    api: Api,
    number: String,
    scopes: std::collections::BTreeMap<String, Target>,
    /// JSON-RPC request ids.
    next_id: AtomicU64,
}

/// signal-cli-rest-api's form of a group: `group.` and the base64 of signal-cli's id.
fn rest_group(id: &str) -> String {
    format!(
        "group.{}",
        base64::engine::general_purpose::STANDARD.encode(id.as_bytes())
    )
}

/// `data:image/png;filename=plot.png;base64,…` (RFC 2397 with signal-cli's `filename`).
fn data_uri(a: &crate::event::Attachment) -> String {
    let name = a.filename.replace([';', ',', '"'], "_");
    format!(
        "data:{};filename={name};base64,{}",
        a.content_type(),
        base64::engine::general_purpose::STANDARD.encode(&a.data)
    )
}

impl Signal {
    pub fn new(cfg: &SignalConfig) -> Result<Signal, String> {
        Ok(Signal {
            timeout: cfg.timeout,
            client: super::http::client(cfg.timeout)?,
            base: cfg.url.as_str().trim_end_matches('/').to_string(),
            api: cfg.api,
            number: cfg.number.clone(),
            scopes: cfg.scopes.clone(),
            next_id: AtomicU64::new(1),
        })
    }

    fn unreachable(&self, what: &str, e: reqwest::Error) -> SendError {
        SendError::transient(format!("{what}: {}", with_causes(&e.without_url())))
    }

    async fn send_rest(&self, to: &Target, n: &Notification<'_>) -> Result<(), SendError> {
        let runs = text::runs(n);
        let recipients = match to {
            Target::Group(g) => vec![rest_group(g)],
            Target::Recipients(r) => r.clone(),
        };
        let mut body = json!({
            "number": self.number,
            "recipients": recipients,
            "message": text::styled(&runs),
            "text_mode": "styled",
        });
        let files: Vec<String> = n.attachments().map(data_uri).collect();
        if !files.is_empty() {
            body["base64_attachments"] = json!(files);
        }
        let what = "Signal (signal-cli-rest-api)";
        let response = self
            .client
            .post(format!("{}/v2/send", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.unreachable(what, e))?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            // `{"timestamp"}`, or one such per request it made, each with the recipients
            // it could not reach.
            let answers = match &answer {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            let failed: Vec<(String, String)> = answers
                .iter()
                .flat_map(|a| {
                    a["errors"]["recipients"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .map(|r| {
                    let who = ["number", "username", "uuid"]
                        .iter()
                        .find_map(|k| r[*k].as_str().filter(|s| !s.is_empty()))
                        .unwrap_or("?")
                        .to_string();
                    (who, r["reason"].as_str().unwrap_or("?").to_string())
                })
                .collect();
            return recipient_failures(what, &failed);
        }
        let said = answer["error"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| answer.to_string());
        let message = format!("{what}: HTTP {status}: {}", cut(&said));
        Err(
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                SendError::transient(message)
            } else if status == StatusCode::BAD_REQUEST && is_io_error(&said) {
                // signal-cli-rest-api answers 400 to everything signal-cli fails at, a
                // network failure on Signal's side included.
                SendError::transient(message)
            } else {
                SendError::permanent(named(message, to))
            },
        )
    }

    /// One JSON-RPC call; its `result`, or the error with its code.
    async fn rpc(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, (i64, String)>, SendError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let what = format!("Signal (signal-cli JSON-RPC {method})");
        let response = self
            .client
            .post(format!("{}/api/v1/rpc", self.base))
            .json(&json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}))
            .send()
            .await
            .map_err(|e| self.unreachable(&what, e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = format!("{what}: HTTP {status}: {}", cut(&body));
            return Err(
                if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                    SendError::transient(message)
                } else {
                    SendError::permanent(message)
                },
            );
        }
        let answer: Value = response
            .json()
            .await
            .map_err(|e| SendError::transient(format!("{what}: unreadable answer: {e}")))?;
        if let Some(e) = answer.get("error").filter(|e| !e.is_null()) {
            let code = e["code"].as_i64().unwrap_or(0);
            let message = e["message"].as_str().unwrap_or("?").to_string();
            return Ok(Err((code, message)));
        }
        Ok(Ok(answer.get("result").cloned().unwrap_or(Value::Null)))
    }

    async fn send_jsonrpc(&self, to: &Target, n: &Notification<'_>) -> Result<(), SendError> {
        let (message, styles) = text::plain_with_styles(&text::runs(n));
        let mut params = json!({"account": self.number, "message": message});
        match to {
            Target::Group(g) => params["groupId"] = json!(g),
            Target::Recipients(r) => params["recipient"] = json!(r),
        }
        if !styles.is_empty() {
            params["textStyle"] = json!(styles);
        }
        let files: Vec<String> = n.attachments().map(data_uri).collect();
        if !files.is_empty() {
            params["attachments"] = json!(files);
        }
        let what = "Signal (signal-cli JSON-RPC send)";
        match self.rpc("send", params).await? {
            Ok(result) => {
                let failed: Vec<(String, String)> = result["results"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| r["type"].as_str().is_some_and(|t| t != "SUCCESS"))
                    .map(|r| {
                        let a = &r["recipientAddress"];
                        let who = a["number"]
                            .as_str()
                            .or(a["uuid"].as_str())
                            .unwrap_or("?")
                            .to_string();
                        (who, r["type"].as_str().unwrap_or("?").to_string())
                    })
                    .collect();
                recipient_failures(what, &failed)
            }
            // signal-cli's codes: -5 rate limited, -3 I/O (the network), -1 the user's
            // error (no such group, an unregistered number), -4 untrusted keys.
            Err((code, said)) => {
                let message = format!("{what}: error {code}: {}", cut(&said));
                Err(match code {
                    -5 | -3 => SendError::transient(message),
                    -32603 => SendError::transient(message),
                    _ => SendError::permanent(named(message, to)),
                })
            }
        }
    }
}

/// Per-recipient failures: a rate limit or a network failure passes later; anything
/// else (an unregistered number) will not, and is named.
fn recipient_failures(what: &str, failed: &[(String, String)]) -> Result<(), SendError> {
    if failed.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = failed.iter().map(|(w, r)| format!("{w} ({r})")).collect();
    let message = format!("{what}: not delivered to {}", list.join(", "));
    let passing = failed
        .iter()
        .all(|(_, r)| r.contains("RATE_LIMIT") || r.contains("NETWORK"));
    Err(if passing {
        SendError::transient(message)
    } else {
        SendError::permanent(message)
    })
}

fn is_io_error(said: &str) -> bool {
    ["IOException", "I/O", "Connection", "timed out", "Timeout"]
        .iter()
        .any(|w| said.contains(w))
}

/// A refusal with the scope's group or numbers, so that the operator sees which.
fn named(message: String, to: &Target) -> String {
    match to {
        Target::Group(g) if !message.contains(g.as_str()) => format!("{message} (group {g})"),
        Target::Recipients(r) if !r.iter().any(|n| message.contains(n.as_str())) => {
            format!("{message} (recipients {})", r.join(", "))
        }
        _ => message,
    }
}

fn cut(s: &str) -> String {
    s.trim().chars().take(300).collect()
}

impl Deliver for Signal {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        // A scope that is a phone number reaches that number: what a BEC session
        // names in `send(scope="+41…")`. Only that sender writes such destinations.
        let number;
        let to = match self.scopes.get(scope) {
            Some(to) => to,
            None if number::is_e164(scope) => {
                number = Target::Recipients(vec![scope.to_string()]);
                &number
            }
            None => return Err(SendError::permanent(format!("no signal scope {scope:?}"))),
        };
        match self.api {
            Api::Rest => self.send_rest(to, n).await,
            Api::JsonRpc => self.send_jsonrpc(to, n).await,
        }
    }

    /// `GET /v1/about` and each group (rest), or `version` and `listGroups` (jsonrpc);
    /// nothing is sent.
    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        match self.api {
            Api::Rest => self.probe_rest(report).await,
            Api::JsonRpc => self.probe_jsonrpc(report).await,
        }
    }
}

/// The group a scope sends to, which a probe asks about; a scope of numbers is reported
/// as skipped, whichever API is used: a number is known only by sending to it.
fn probed_group<'a>(scope: &str, to: &'a Target, report: &mut dyn FnMut(Check)) -> Option<&'a str> {
    match to {
        Target::Group(g) => Some(g),
        _ => {
            report(Check::skipped(
                SIGNAL,
                format!("recipients {scope}"),
                "numbers are checked by sending: use test-notify",
            ));
            None
        }
    }
}

impl Signal {
    async fn get_json(&self, path: &str) -> Result<(StatusCode, Value), String> {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .map_err(|e| with_causes(&e.without_url()))?;
        let status = r.status();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    async fn probe_rest(&self, report: &mut dyn FnMut(Check)) {
        let step = format!("about {}", mask_url(&self.base));
        match within(self.timeout, self.get_json("/v1/about"), |e| e).await {
            Ok((s, v)) if s.is_success() && v["versions"].is_array() => {
                let detail = format!(
                    "signal-cli-rest-api {}, mode {}",
                    v["version"].as_str().unwrap_or("?"),
                    v["mode"].as_str().unwrap_or("?")
                );
                report(Check::ok(SIGNAL, step, Some(detail)));
            }
            Ok((s, v)) => {
                return report(Check::failed(
                    SIGNAL,
                    step,
                    format!(
                        "HTTP {s}: not signal-cli-rest-api ({})",
                        cut(&v.to_string())
                    ),
                ));
            }
            Err(e) => return report(Check::failed(SIGNAL, step, e)),
        }
        for (scope, to) in &self.scopes {
            let Some(g) = probed_group(scope, to, report) else {
                continue;
            };
            let step = format!("group {scope}");
            let number: String =
                url::form_urlencoded::byte_serialize(self.number.as_bytes()).collect();
            let path = format!("/v1/groups/{number}/{}", rest_group(g));
            report(
                match within(self.timeout, self.get_json(&path), |e| e).await {
                    Ok((s, v)) if s.is_success() => Check::ok(
                        SIGNAL,
                        step,
                        Some(format!("{:?}", v["name"].as_str().unwrap_or("?"))),
                    ),
                    Ok((s, v)) => Check::failed(
                        SIGNAL,
                        step,
                        format!(
                            "HTTP {s}: {} (group {g})",
                            v["error"].as_str().unwrap_or("?")
                        ),
                    ),
                    Err(e) => Check::failed(SIGNAL, step, e),
                },
            );
        }
    }

    async fn probe_jsonrpc(&self, report: &mut dyn FnMut(Check)) {
        let step = format!("version {}", mask_url(&self.base));
        let asked = within(self.timeout, self.rpc("version", json!({})), |e| e.message).await;
        match asked {
            Ok(Ok(v)) => report(Check::ok(
                SIGNAL,
                step,
                Some(format!(
                    "signal-cli {}",
                    v["version"].as_str().unwrap_or("?")
                )),
            )),
            Ok(Err((code, m))) => {
                return report(Check::failed(SIGNAL, step, format!("error {code}: {m}")));
            }
            Err(e) => return report(Check::failed(SIGNAL, step, e)),
        }
        let step = format!("listGroups {}", self.number);
        let groups = match within(
            self.timeout,
            self.rpc("listGroups", json!({"account": self.number})),
            |e| e.message,
        )
        .await
        {
            Ok(Ok(Value::Array(groups))) => {
                report(Check::ok(
                    SIGNAL,
                    step,
                    Some(format!("{} groups", groups.len())),
                ));
                groups
            }
            Ok(Ok(other)) => {
                return report(Check::failed(
                    SIGNAL,
                    step,
                    format!("not a list: {}", cut(&other.to_string())),
                ));
            }
            Ok(Err((code, m))) => {
                return report(Check::failed(SIGNAL, step, format!("error {code}: {m}")));
            }
            Err(e) => return report(Check::failed(SIGNAL, step, e)),
        };
        for (scope, to) in &self.scopes {
            let Some(g) = probed_group(scope, to, report) else {
                continue;
            };
            let step = format!("group {scope}");
            let found = groups.iter().find(|x| x["id"].as_str() == Some(g));
            report(match found {
                Some(x) if x["isMember"] == json!(false) => Check::failed(
                    SIGNAL,
                    step,
                    format!("{} is not a member of group {g}", self.number),
                ),
                Some(x) => Check::ok(
                    SIGNAL,
                    step,
                    Some(format!("{:?}", x["name"].as_str().unwrap_or("?"))),
                ),
                None => Check::failed(SIGNAL, step, format!("no group {g} for {}", self.number)),
            });
        }
    }
}
