//! E-mail through SMTP with lettre, on rustls.
//!
//! One message per notification and scope, addressed to every recipient of the scope,
//! HTML with a plain-text alternative, and the event's files as attachment parts. `mail.tls` decides the transport: STARTTLS
//! required, TLS from the first byte, clear text, or STARTTLS when offered (the old
//! bot's behaviour and the default). Certificates are checked against the system store
//! plus `mail.ca_file`; there is deliberately no switch to turn checking off.
//!
//! [`Mail`] keeps the pieces its transport is built from (TLS parameters, hello name,
//! credentials) so that [`probe`] walks the same steps with the same settings, one by one.

mod config;
mod probe;
pub mod render;
mod tls_sniff;

pub use config::{MailConfig, TlsMode};

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncTransport, Tokio1Executor};

use super::render::Notification;
use super::{Deliver, SendError};
use crate::messengers::probe::Check;
use crate::settings::Secret;

pub struct Mail {
    pub timeout: std::time::Duration,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    port: u16,
    tls: Tls,
    hello: ClientId,
    credentials: Option<Credentials>,
    /// To scrub from what a server answers, however unlikely it is to repeat it.
    password: Option<Secret>,
    from: Mailbox,
    scopes: std::collections::BTreeMap<String, Vec<Mailbox>>,
}

impl Mail {
    /// Builds the transport; fails (with a message naming the problem) when the CA file
    /// cannot be used or an address does not parse.
    pub fn new(cfg: &MailConfig) -> Result<Mail, String> {
        let mut params = TlsParameters::builder(cfg.server.clone());
        if let Some(ca) = &cfg.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("cannot read mail.ca_file {}: {e}", ca.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "mail.ca_file {} holds no usable PEM certificate: {e}",
                    ca.display()
                )
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build_rustls()
            .map_err(|e| format!("TLS setup failed: {e}"))?;
        let tls = match cfg.tls {
            TlsMode::StartTls => Tls::Required(params),
            TlsMode::Wrapper => Tls::Wrapper(params),
            TlsMode::Opportunistic => Tls::Opportunistic(params),
            TlsMode::None => Tls::None,
        };
        let hello = ClientId::Domain(crate::settings::host_name());
        let credentials = match (&cfg.user, &cfg.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose().to_string(),
            )),
            _ => None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.server)
            .port(cfg.port)
            .tls(tls.clone())
            .timeout(Some(cfg.timeout))
            .hello_name(hello.clone());
        if let Some(credentials) = &credentials {
            builder = builder.credentials(credentials.clone());
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| format!("mail.from {:?}: {e}", cfg.from))?;
        let mut scopes = std::collections::BTreeMap::new();
        for (name, addrs) in &cfg.scopes {
            let list = addrs
                .iter()
                .map(|a| {
                    a.parse::<Mailbox>()
                        .map_err(|e| format!("address {a:?}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            scopes.insert(name.clone(), list);
        }
        Ok(Mail {
            timeout: cfg.timeout,
            transport: builder.build(),
            server: cfg.server.clone(),
            port: cfg.port,
            tls,
            hello,
            credentials,
            password: cfg.password.clone(),
            from,
            scopes,
        })
    }
}

impl Deliver for Mail {
    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        self.run_probe(report).await
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let recipients = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no mail scope {scope:?}")))?;
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(render::mail_subject(n));
        for r in recipients {
            builder = builder.to(r.clone());
        }
        let body = MultiPart::alternative_plain_html(render::mail_text(n), render::mail_html(n));
        let mut files = n.attachments().peekable();
        let body = if files.peek().is_some() {
            let mut mixed = MultiPart::mixed().multipart(body);
            for a in files {
                let content_type =
                    ContentType::parse(a.content_type()).unwrap_or(ContentType::TEXT_PLAIN);
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(a.filename.clone())
                        .body(a.data.clone(), content_type),
                );
            }
            mixed
        } else {
            body
        };
        let message = builder
            .multipart(body)
            .map_err(|e| SendError::permanent(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let text = format!("SMTP: {}", super::probe::with_causes(e));
    if e.is_permanent() {
        SendError::permanent(text)
    } else {
        // 4xx replies, timeouts, refused connections, TLS hiccups: the server may be back.
        SendError::transient(text)
    }
}
