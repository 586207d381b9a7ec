//! Delivery to the outside world: one module per service, the list of them, and what
//! they share.
//!
//! Each service's module owns everything about it — its config section (types,
//! defaults, validation, schema, masking), rendering, sending, answer classification,
//! probe and pace — behind the traits of [`service`]; the list below is the only place
//! that names them all.
//!
//! A [`Messenger`] sends one rendered notification to one destination (a service and a
//! scope) and reports the outcome as a [`SendError`] that says whether trying again can
//! help — the outbox's retry logic lives on that distinction, not on any service's
//! error types. Every send is bounded by the service's `timeout_s`, whole: a server that
//! accepts the connection and then hangs must not hang the queue behind it (lettre's own
//! timeout covers each read, the HTTP client's the request, neither the whole send).

#[macro_use]
mod service;
pub mod alertmanager;
pub mod html;
mod http;
pub mod mail;
pub mod probe;
pub mod render;
pub mod runtime;
pub mod scilog;
pub mod signal;
pub mod telegram;
pub mod webhook;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use render::Notification;
pub use service::{Deliver, ServiceConfig};

// The services, in the order they are listed, probed and written. Adding a service is
// its module and one line here, which names its long-lived side if it has one
// (`[runs …]`, `[worker …]`: see `runtime`).
services! {
    Mail => mail: mail::MailConfig,
    Telegram => telegram: telegram::TelegramConfig [runs telegram::start],
    Webhook => webhook: webhook::WebhookConfig,
    Alertmanager => alertmanager: alertmanager::AlertmanagerConfig [worker alertmanager::worker],
    Scilog => scilog: scilog::ScilogConfig,
    Signal => signal: signal::SignalConfig,
}

/// One place messages go: a service and one of its scopes (`telegram:default`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Destination {
    pub service: Service,
    pub scope: String,
}

impl Destination {
    /// Reads back what `Display` wrote (`telegram:default`).
    pub fn parse(s: &str) -> Option<Destination> {
        let (service, scope) = s.split_once(':')?;
        let service = Service::parse(service)?;
        Some(Destination {
            service,
            scope: scope.to_string(),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.scope)
    }
}

/// `"mail", "telegram", … or "signal"`: the sections that configure a service, for the
/// message of a config that has none.
pub fn section_names() -> String {
    let names: Vec<String> = Service::ALL
        .iter()
        .map(|s| format!("{:?}", s.as_str()))
        .collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth trying again later: a server down, a timeout, a 4xx SMTP reply, Telegram's
    /// 429 or 5xx.
    Transient,
    /// Trying again will fail the same way: a refused recipient, a bad token, a 400.
    Permanent,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: Failure,
    /// What went wrong, with the server's own words; never contains a secret.
    pub message: String,
    /// The server asked us to wait this long (Telegram's `retry_after`).
    pub retry_after: Option<Duration>,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError {
            kind: Failure::Transient,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError {
            kind: Failure::Permanent,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl Messenger {
    pub async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let timeout = self.timeout();
        match tokio::time::timeout(timeout, self.deliver(scope, n)).await {
            Ok(result) => result,
            Err(_) => Err(SendError::transient(format!(
                "no answer within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

/// The configured services, each built once from the config.
pub struct Messengers {
    by_service: BTreeMap<Service, Messenger>,
}

#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct SetupError {
    pub service: Service,
    pub message: String,
}

impl Messengers {
    /// Each configured section's messenger. (`Messengers::from_config`, in `config`,
    /// hands in the config's sections: the services sit below the assembled config.)
    pub fn from_sections(sections: &Sections) -> Result<Messengers, SetupError> {
        let by_service = sections
            .messengers()?
            .into_iter()
            .map(|m| (m.service(), m))
            .collect();
        Ok(Messengers { by_service })
    }

    /// Probes every configured service in turn (see [`probe`]), reporting each step as
    /// it finishes.
    pub async fn probe(&self, report: &mut dyn FnMut(probe::Check)) {
        for m in self.by_service.values() {
            m.probe(report).await;
        }
    }

    /// Hands each sender what its service's running side left for it (see
    /// [`runtime::Links`]).
    pub fn attach(&mut self, links: &runtime::Links) {
        for m in self.by_service.values_mut() {
            m.attach(links);
        }
    }

    pub fn get(&self, service: &Service) -> Option<&Messenger> {
        self.by_service.get(service)
    }

    pub async fn send(&self, to: &Destination, n: &Notification<'_>) -> Result<(), SendError> {
        match self.get(&to.service) {
            Some(m) => m.send(&to.scope, n).await,
            None => Err(SendError::permanent(format!(
                "{} is not configured",
                to.service
            ))),
        }
    }
}
