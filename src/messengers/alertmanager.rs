//! Prometheus Alertmanager, through its API v2 (`POST /api/v2/alerts`).
//!
//! Alertmanager takes alert *states*, not messages: it groups, silences, inhibits and
//! repeats on its own. So this service is fed from the alert store by a delivery worker
//! of its own ([`worker`]), and this file only knows how an alert looks to Alertmanager
//! and how to post it:
//!
//! - labels `alertname` (the event), `severity`, `instrument`, `source` (when there is
//!   one) and `key` (the dedup key: two alerts of one event and source are still two
//!   alerts), plus the configured labels;
//! - annotations `summary` (one line) and `description` (the text, the details, how often
//!   and when it was seen);
//! - `startsAt` the first time it was seen; `endsAt` when it was dismissed, or when its
//!   `ttl` runs out; no `endsAt` for an alert without a `ttl` that is still active, so
//!   that Alertmanager's `resolve_timeout` ends it if this agent stops posting.
//!
//! Every post goes to every URL, as Prometheus does for an HA cluster: the members do not
//! share alerts. A post counts as delivered when at least one member took it; the others
//! get it with the next repost.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value, json};

mod config;
mod worker;

pub use config::{ALERTMANAGER_LABELS, ALERTMANAGER_SCOPE, AlertmanagerConfig};
pub use worker::{RESOLVED_RESEND, worker};

use super::probe::Check;
use super::render::Notification;
use super::{Deliver, SendError, Service};
use crate::event::alert::Alert;
use crate::event::{Event, Severity, names};
use crate::settings::mask_url;

/// How long an alert made from a one-off message (`test-notify`, a script's message
/// routed here) stays firing.
const ONE_OFF: Duration = Duration::from_secs(300);

/// A summary is one line.
const MAX_SUMMARY_CHARS: usize = 300;
/// A dedup key holds a whole message; as a label it is cut, with a hash of the whole so
/// that two long keys stay two alerts.
const MAX_KEY_LABEL_CHARS: usize = 200;

fn key_label(key: &str) -> String {
    if key.chars().count() <= MAX_KEY_LABEL_CHARS {
        return key.to_string();
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let head: String = key.chars().take(MAX_KEY_LABEL_CHARS).collect();
    format!("{head}…{hash:016x}")
}

/// Annotations are for people; a traceback of thousands of lines is cut.
const MAX_DESCRIPTION_CHARS: usize = 8000;

pub struct Alertmanager {
    pub timeout: Duration,
    pub repost_interval: Duration,
    client: super::http::Client,
    urls: Vec<url::Url>,
    labels: BTreeMap<String, String>,
}

/// What one alert is made of, from the store or from a single event.
struct Fields<'a> {
    event: &'a str,
    severity: Severity,
    source: Option<&'a str>,
    key: &'a str,
    text: String,
    /// Plain text: Alertmanager's annotations are shown as text.
    details: Option<String>,
    times_seen: u64,
    first_ms: i64,
    last_ms: i64,
    ends_ms: Option<i64>,
}

fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn when(ms: i64) -> String {
    let t: DateTime<Utc> = Utc.timestamp_millis_opt(ms).single().unwrap_or_default();
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

impl Alertmanager {
    pub fn new(cfg: &AlertmanagerConfig) -> Result<Alertmanager, String> {
        Ok(Alertmanager {
            timeout: cfg.timeout,
            repost_interval: cfg.repost_interval,
            client: super::http::client(cfg.timeout)?,
            urls: cfg.urls.clone(),
            labels: cfg.labels.clone(),
        })
    }

    /// An alert of the store as Alertmanager takes it.
    pub fn alert_of(&self, instrument: &str, a: &Alert) -> Value {
        // A script's message is news, not a firing alarm: it ends a few minutes on,
        // sooner than the hour the console keeps it (`alerts::SCRIPT_MESSAGE_TTL_S`),
        // and an old one stored without a time to live ends too.
        let one_off =
            (a.event == names::MESSAGE).then(|| a.last_seen_ms + ONE_OFF.as_millis() as i64);
        let ends_ms = match (a.ends_at_ms(), one_off) {
            (Some(ends), Some(one_off)) => Some(ends.min(one_off)),
            (ends, one_off) => ends.or(one_off),
        };
        self.alert(
            instrument,
            &Fields {
                event: &a.event,
                severity: a.severity,
                source: a.source.as_deref(),
                key: &a.key,
                text: a.message.text(),
                details: a.details.as_deref().map(super::html::to_text),
                times_seen: a.times_seen,
                first_ms: a.first_seen_ms,
                last_ms: a.last_seen_ms,
                ends_ms,
            },
        )
    }

    /// A one-off event as an alert that ends by itself after a few minutes.
    fn one_off(&self, instrument: &str, e: &Event, now_ms: i64) -> Value {
        self.alert(
            instrument,
            &Fields {
                event: &e.name,
                severity: e.severity,
                source: e.source.as_deref(),
                key: &e.key,
                text: e.message.text(),
                details: e.details.as_ref().map(super::render::details_text),
                times_seen: 1,
                first_ms: now_ms,
                last_ms: now_ms,
                ends_ms: Some(now_ms + ONE_OFF.as_millis() as i64),
            },
        )
    }

    fn alert(&self, instrument: &str, f: &Fields<'_>) -> Value {
        let mut labels: Map<String, Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        labels.insert("alertname".into(), json!(f.event));
        labels.insert("severity".into(), json!(f.severity.as_str()));
        labels.insert("instrument".into(), json!(instrument));
        labels.insert("key".into(), json!(key_label(f.key)));
        if let Some(s) = f.source.filter(|s| !s.is_empty()) {
            labels.insert("source".into(), json!(s));
        }
        let first_line: String = f
            .text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(MAX_SUMMARY_CHARS)
            .collect();
        let mut description = f.text.clone();
        if let Some(d) = &f.details {
            description.push_str("\n\n");
            description.push_str(d);
        }
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            description = description.chars().take(MAX_DESCRIPTION_CHARS).collect();
            description.push_str("\n[…]");
        }
        description.push_str(&format!(
            "\n\nSeen {} on {instrument}, first {}, last {}.",
            if f.times_seen == 1 {
                "once".to_string()
            } else {
                format!("{} times", f.times_seen)
            },
            when(f.first_ms),
            when(f.last_ms)
        ));
        // Alertmanager refuses an alert that ends before it starts; a protocol's own
        // timestamps may lie ahead of the dismissal's clock.
        let starts = f.ends_ms.map_or(f.first_ms, |e| f.first_ms.min(e));
        let mut out = json!({
            "labels": labels,
            "annotations": {
                "summary": format!("[{instrument}] {}: {first_line}", f.severity.as_str().to_ascii_uppercase()),
                "description": description,
            },
            "startsAt": rfc3339(starts),
        });
        if let (Some(end), Some(o)) = (f.ends_ms, out.as_object_mut()) {
            o.insert("endsAt".into(), json!(rfc3339(end)));
        }
        out
    }

    /// A posted alert again, ended now: how an alert whose labels changed takes its old
    /// identity out of Alertmanager.
    pub fn resolved(posted: &Value, now_ms: i64) -> Value {
        let mut v = posted.clone();
        if let Some(o) = v.as_object_mut() {
            o.insert("endsAt".into(), json!(rfc3339(now_ms)));
        }
        v
    }

    /// Posts alerts to every URL at once. Delivered when at least one took them; the
    /// members that failed are logged and get the alerts with the next repost.
    pub async fn post(&self, alerts: &[Value]) -> Result<(), SendError> {
        let body = Value::Array(alerts.to_vec()).to_string();
        let posts = self.urls.iter().map(|u| {
            let body = body.clone();
            async move {
                let target = format!("{}/api/v2/alerts", u.as_str().trim_end_matches('/'));
                let what = format!("alertmanager {}", mask_url(u.as_str()));
                let sent = async {
                    match self
                        .client
                        .post(&target)
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body)
                        .send()
                        .await
                    {
                        Ok(r) => super::http::classify(&what, r).await,
                        Err(e) => Err(SendError::transient(format!(
                            "{what}: {}",
                            super::probe::with_causes(&e.without_url())
                        ))),
                    }
                };
                // Each member on its own clock: one that hangs must not fail the post
                // that the others took.
                tokio::time::timeout(self.timeout, sent)
                    .await
                    .unwrap_or_else(|_| {
                        Err(SendError::transient(format!(
                            "{what}: no answer within {} s",
                            self.timeout.as_secs()
                        )))
                    })
            }
        });
        let results = futures_util::future::join_all(posts).await;
        let mut errors: Vec<SendError> = Vec::new();
        for r in results {
            if let Err(e) = r {
                errors.push(e);
            }
        }
        if errors.len() < self.urls.len() {
            for e in &errors {
                tracing::warn!(error = %e.message, "an Alertmanager did not take the alerts; it gets them with the next repost");
            }
            return Ok(());
        }
        let message = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        // Worth trying again if any member may take them later.
        let transient = errors.iter().any(|e| e.kind == super::Failure::Transient);
        let retry_after = errors.iter().filter_map(|e| e.retry_after).max();
        let mut e = if transient {
            SendError::transient(message)
        } else {
            SendError::permanent(message)
        };
        e.retry_after = retry_after;
        Err(e)
    }
}

impl Deliver for Alertmanager {
    /// Each member has its own `timeout` inside; this bounds the whole.
    fn timeout(&self) -> Duration {
        self.timeout + Duration::from_secs(2)
    }

    /// A message sent here directly (`test-notify`, a route of a script's message that
    /// has no alert behind it): each event as an alert that ends in a few minutes. The
    /// service has one scope.
    async fn send(&self, _scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let now = crate::store::now_ms();
        let alerts: Vec<Value> = n
            .items
            .iter()
            .map(|i| self.one_off(n.instrument, i.event, now))
            .collect();
        self.post(&alerts).await
    }

    /// Asks each member for its status (`GET /api/v2/status`): reachable, its version and
    /// its cluster's state.
    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        for u in &self.urls {
            let step = format!("status {}", mask_url(u.as_str()));
            let target = format!("{}/api/v2/status", u.as_str().trim_end_matches('/'));
            let got = self.client.get(&target).send().await;
            let check = match got {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or_default();
                    let version = v["versionInfo"]["version"].as_str().unwrap_or("?");
                    let cluster = v["cluster"]["status"].as_str().unwrap_or("?");
                    Check::ok(
                        Service::Alertmanager,
                        step,
                        Some(format!("Alertmanager {version}, cluster {cluster}")),
                    )
                }
                Ok(r) => Check::failed(Service::Alertmanager, step, format!("HTTP {}", r.status())),
                Err(e) => Check::failed(Service::Alertmanager, step, e.without_url().to_string()),
            };
            report(check);
        }
    }
}
