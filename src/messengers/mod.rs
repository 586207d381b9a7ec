//! Delivery to the outside world: one file per service, and what they share.
//!
//! A [`Messenger`] sends one rendered notification to one destination (a service and a
//! scope) and reports the outcome as a [`SendError`] that says whether trying again can
//! help — the outbox's retry logic lives on that distinction, not on any service's
//! error types. Every send is bounded by the service's `timeout_s`, whole: a server that
//! accepts the connection and then hangs must not hang the queue behind it (lettre's own
//! timeout covers each read, the HTTP client's the request, neither the whole send).

pub mod alertmanager;
pub mod html;
mod http;
pub mod mail;
pub mod probe;
pub mod render;
pub mod telegram;
pub mod webhook;

use std::time::Duration;

use crate::config::{Config, Destination, Service};
pub use render::Notification;

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

/// A configured service, ready to send.
pub enum Messenger {
    Mail(mail::Mail),
    Telegram(telegram::Telegram),
    Webhook(webhook::Webhook),
    Alertmanager(alertmanager::Alertmanager),
}

impl Messenger {
    pub async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let timeout = match self {
            Messenger::Mail(m) => m.timeout,
            Messenger::Telegram(t) => t.timeout,
            Messenger::Webhook(w) => w.timeout,
            // Each member has its own `timeout` inside; this bounds the whole.
            Messenger::Alertmanager(a) => a.timeout + Duration::from_secs(2),
        };
        let fut = async {
            match self {
                Messenger::Mail(m) => m.send(scope, n).await,
                Messenger::Telegram(t) => t.send(scope, n).await,
                Messenger::Webhook(w) => w.send(scope, n).await,
                Messenger::Alertmanager(a) => a.send(n).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
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
    mail: Option<Messenger>,
    telegram: Option<Messenger>,
    webhook: Option<Messenger>,
    alertmanager: Option<Messenger>,
}

#[derive(Debug, thiserror::Error)]
#[error("{service}: {message}")]
pub struct SetupError {
    pub service: Service,
    pub message: String,
}

impl Messengers {
    pub fn from_config(config: &Config) -> Result<Messengers, SetupError> {
        let mail = match &config.mail {
            Some(m) => Some(Messenger::Mail(mail::Mail::new(m).map_err(|message| {
                SetupError {
                    service: Service::Mail,
                    message,
                }
            })?)),
            None => None,
        };
        let telegram = config
            .telegram
            .as_ref()
            .map(|t| Messenger::Telegram(telegram::Telegram::new(t)));
        let setup = |service: Service| move |message: String| SetupError { service, message };
        let webhook = match &config.webhook {
            Some(w) => Some(Messenger::Webhook(
                webhook::Webhook::new(w).map_err(setup(Service::Webhook))?,
            )),
            None => None,
        };
        let alertmanager = match &config.alertmanager {
            Some(a) => Some(Messenger::Alertmanager(
                alertmanager::Alertmanager::new(a).map_err(setup(Service::Alertmanager))?,
            )),
            None => None,
        };
        Ok(Messengers {
            mail,
            telegram,
            webhook,
            alertmanager,
        })
    }

    /// Probes every configured service in turn (see [`probe`]), reporting each step as
    /// it finishes.
    pub async fn probe(&self, report: &mut dyn FnMut(probe::Check)) {
        for service in Service::ALL {
            match self.get(&service) {
                Some(Messenger::Mail(m)) => m.probe(report).await,
                Some(Messenger::Telegram(t)) => t.probe(report).await,
                Some(Messenger::Webhook(w)) => w.probe(report).await,
                Some(Messenger::Alertmanager(a)) => a.probe(report).await,
                None => {}
            }
        }
    }

    pub fn get(&self, service: &Service) -> Option<&Messenger> {
        match service {
            Service::Mail => self.mail.as_ref(),
            Service::Telegram => self.telegram.as_ref(),
            Service::Webhook => self.webhook.as_ref(),
            Service::Alertmanager => self.alertmanager.as_ref(),
        }
    }

    /// The Alertmanager service, for the worker that keeps it in step with the alerts.
    pub fn alertmanager(&self) -> Option<&alertmanager::Alertmanager> {
        match &self.alertmanager {
            Some(Messenger::Alertmanager(a)) => Some(a),
            _ => None,
        }
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
