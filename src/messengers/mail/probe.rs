//! `check-config --probe` for mail: the SMTP conversation of a send, step by step, and
//! no mail — connect, EHLO, TLS as `mail.tls` asks, AUTH when credentials are set, QUIT.
//!
//! It is lettre's own client (`AsyncSmtpConnection`) with the [`Mail`] messenger's TLS
//! parameters, hello name and credentials, driven one step at a time in the order
//! lettre's transport takes them, so a pass means sending will get as far. Only the TCP
//! connection is made here, to tell "nothing listens" from what follows and to read the
//! negotiated TLS version off it ([`super::tls_sniff`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::transport::smtp::authentication::DEFAULT_MECHANISMS;
#[allow(deprecated)] // the only way to a TLS stream lettre's client will take; see Wrapped
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Tls};
use lettre::transport::smtp::extension::{Extension, ServerInfo};
use lettre::transport::smtp::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Mail;
use super::tls_sniff::{self, Tap};
use crate::messengers::Service;
use crate::messengers::probe::{Check, with_causes, within};

const MAIL: Service = Service::Mail;

impl Mail {
    /// Probes the server, reporting each step as it finishes; stops at the first failure
    /// (every later step would fail with it).
    pub(super) async fn run_probe(&self, report: &mut dyn FnMut(Check)) {
        if let Err(failed) = self.walk(report).await {
            report(failed);
        }
    }

    async fn walk(&self, report: &mut dyn FnMut(Check)) -> Result<(), Check> {
        let target = format!("{}:{}", self.server, self.port);
        let step = format!("connect {target}");
        let stream = within(
            self.timeout,
            tokio::net::TcpStream::connect((self.server.as_str(), self.port)),
            |e| with_causes(&e),
        )
        .await
        .map_err(|e| Check::failed(MAIL, &step, e))?;
        let peer = stream.peer_addr().ok().map(|a| a.to_string());
        report(Check::ok(MAIL, step, peer.filter(|p| *p != target)));
        let (stream, tap) = tls_sniff::tap(stream);

        // TLS from the first byte: the greeting itself comes encrypted.
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Tls::Wrapper(params) => {
                #[allow(deprecated)]
                let mut tls = AsyncNetworkStream::use_existing_tokio1(Box::new(stream));
                within(self.timeout, tls.upgrade_tls(params.clone()), |e| {
                    self.describe(&e)
                })
                .await
                .map_err(|e| Check::failed(MAIL, "TLS (wrapper)", e))?;
                report(Check::ok(MAIL, "TLS (wrapper)", tap.negotiated()));
                Box::new(Wrapped(tls))
            }
            _ => Box::new(stream),
        };
        let mut conn = within(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
            |e| self.describe(&e),
        )
        .await
        .map_err(|e| Check::failed(MAIL, "EHLO", e))?;
        report(Check::ok(MAIL, "EHLO", Some(offers(conn.server_info()))));

        let result = self.after_ehlo(&mut conn, &tap, report).await;
        if result.is_err() {
            // Polite, but nothing to report: the failure is.
            let _ = tokio::time::timeout(self.timeout, conn.abort()).await;
        }
        result
    }

    async fn after_ehlo(
        &self,
        conn: &mut AsyncSmtpConnection,
        tap: &Tap,
        report: &mut dyn FnMut(Check),
    ) -> Result<(), Check> {
        let offered = conn.server_info().supports_feature(Extension::StartTls);
        match &self.tls {
            Tls::Required(params) | Tls::Opportunistic(params) if offered => {
                within(
                    self.timeout,
                    conn.starttls(params.clone(), &self.hello),
                    |e| self.describe(&e),
                )
                .await
                .map_err(|e| Check::failed(MAIL, "STARTTLS", e))?;
                report(Check::ok(MAIL, "STARTTLS", tap.negotiated()));
            }
            Tls::Required(_) => {
                return Err(Check::failed(
                    MAIL,
                    "STARTTLS",
                    "the server does not offer STARTTLS, and mail.tls \"starttls\" requires it",
                ));
            }
            Tls::Opportunistic(_) => report(Check::ok(
                MAIL,
                "STARTTLS",
                Some("not offered by the server: mail goes in clear text".into()),
            )),
            Tls::None => report(Check::skipped(
                MAIL,
                "TLS",
                "mail.tls is \"none\": mail goes in clear text",
            )),
            // Done before EHLO.
            Tls::Wrapper(_) => {}
        }

        match &self.credentials {
            Some(credentials) => {
                let mechanism = conn.server_info().get_auth_mechanism(DEFAULT_MECHANISMS);
                let step = match mechanism {
                    Some(m) => format!("AUTH {m}"),
                    None => "AUTH".to_string(),
                };
                let answer = within(
                    self.timeout,
                    conn.auth(DEFAULT_MECHANISMS, credentials),
                    |e| self.describe(&e),
                )
                .await
                .map_err(|e| Check::failed(MAIL, &step, e))?;
                report(Check::ok(MAIL, step, Some(self.reply(&answer))));
            }
            None => report(Check::skipped(
                MAIL,
                "AUTH",
                "no mail.user and password configured",
            )),
        }

        let answer = within(self.timeout, conn.quit(), |e| self.describe(&e))
            .await
            .map_err(|e| Check::failed(MAIL, "QUIT", e))?;
        report(Check::ok(MAIL, "QUIT", Some(self.reply(&answer))));
        Ok(())
    }

    /// `535 5.7.8 Authentication credentials invalid`: a server's refusal as it said it;
    /// anything else as lettre words it.
    fn describe(&self, e: &lettre::transport::smtp::Error) -> String {
        let text = match (e.status(), std::error::Error::source(e)) {
            (Some(code), Some(said)) => format!("{code} {said}"),
            _ => with_causes(e),
        };
        self.scrub(&text)
    }

    fn reply(&self, r: &Response) -> String {
        let text: Vec<&str> = r.message().collect();
        self.scrub(&format!("{} {}", r.code(), text.join(" ")))
    }

    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => p.scrub(text),
            None => text.to_string(),
        }
    }
}

/// `smtp.example.org: STARTTLS, AUTH PLAIN LOGIN, 8BITMIME`: what a send can use.
fn offers(info: &ServerInfo) -> String {
    use lettre::transport::smtp::authentication::Mechanism;
    let mut offers = Vec::new();
    if info.supports_feature(Extension::StartTls) {
        offers.push("STARTTLS".to_string());
    }
    let mechanisms: Vec<String> = [Mechanism::Plain, Mechanism::Login, Mechanism::Xoauth2]
        .into_iter()
        .filter(|m| info.supports_auth_mechanism(*m))
        .map(|m| m.to_string())
        .collect();
    if !mechanisms.is_empty() {
        offers.push(format!("AUTH {}", mechanisms.join(" ")));
    }
    if info.supports_feature(Extension::EightBitMime) {
        offers.push("8BITMIME".to_string());
    }
    if info.supports_feature(Extension::SmtpUtfEight) {
        offers.push("SMTPUTF8".to_string());
    }
    if offers.is_empty() {
        info.name().to_string()
    } else {
        format!("{}: {}", info.name(), offers.join(", "))
    }
}

/// A stream lettre encrypted, handed back to lettre's client as a plain one.
///
/// lettre's client reads the greeting as it connects, so for TLS from the first byte the
/// handshake must come first; lettre does that with the same `TlsParameters` on its own
/// `AsyncNetworkStream` (public, but deprecated as "not meant to be public"), and this
/// adapter lets the client read through it. The client then thinks the connection is
/// clear, which matters only for STARTTLS, never tried on a TLS connection.
#[allow(deprecated)]
#[derive(Debug)]
struct Wrapped(AsyncNetworkStream);

#[allow(deprecated)]
impl AsyncRead for Wrapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use futures_util::io::AsyncRead as _;
        match Pin::new(&mut self.0).poll_read(cx, buf.initialize_unfilled()) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[allow(deprecated)]
impl AsyncWrite for Wrapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use futures_util::io::AsyncWrite as _;
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use futures_util::io::AsyncWrite as _;
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use futures_util::io::AsyncWrite as _;
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[allow(deprecated)]
impl AsyncTokioStream for Wrapped {
    fn peer_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.0.peer_addr()
    }
}
