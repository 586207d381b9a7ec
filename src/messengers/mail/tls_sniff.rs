//! Which TLS version and cipher suite a connection negotiated, read off the wire.
//!
//! lettre keeps its TLS session to itself, and the probe should not build a TLS client of
//! its own: it must test the one sending uses. So the TCP stream lettre is handed keeps a
//! copy of the first bytes the server sends, and the server's `ServerHello` — the first
//! TLS record, in clear even in TLS 1.3 — is read from that copy afterwards. The SMTP text
//! before it (greeting, EHLO and STARTTLS replies) is 7-bit text that never holds the byte
//! a TLS handshake record starts with. Reading is passive: nothing is changed on the way.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::AsyncTokioStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Enough for any greeting, EHLO reply and `ServerHello`; the rest is not kept.
const KEEP: usize = 16 * 1024;

/// A TCP stream that keeps a copy of the first [`KEEP`] bytes it reads.
#[derive(Debug)]
pub(super) struct Tapped {
    stream: TcpStream,
    seen: Arc<Mutex<Vec<u8>>>,
}

/// The other end of a [`Tapped`] stream: what it has read so far.
#[derive(Clone)]
pub(super) struct Tap(Arc<Mutex<Vec<u8>>>);

pub(super) fn tap(stream: TcpStream) -> (Tapped, Tap) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    (
        Tapped {
            stream,
            seen: seen.clone(),
        },
        Tap(seen),
    )
}

impl Tap {
    /// `TLS 1.3, TLS_AES_256_GCM_SHA384`, once the handshake went through.
    pub(super) fn negotiated(&self) -> Option<String> {
        let seen = self.0.lock().ok()?;
        let (version, suite) = server_hello(&seen)?;
        Some(format!("{}, {}", version_name(version), suite_name(suite)))
    }
}

impl AsyncRead for Tapped {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Ok(mut seen) = self.seen.lock()
        {
            let new = &buf.filled()[before..];
            let room = KEEP.saturating_sub(seen.len()).min(new.len());
            seen.extend_from_slice(&new[..room]);
        }
        polled
    }
}

impl AsyncWrite for Tapped {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Tapped {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }
}

const HANDSHAKE: u8 = 0x16;
const SERVER_HELLO: u8 = 0x02;
const SUPPORTED_VERSIONS: u16 = 0x002b;

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// The version and cipher suite of the first `ServerHello` in `bytes`. A TLS 1.3 server
/// says 1.2 in the legacy field and its real version in the `supported_versions`
/// extension (RFC 8446, 4.1.3).
fn server_hello(bytes: &[u8]) -> Option<(u16, u16)> {
    let record = &bytes[bytes.iter().position(|&b| b == HANDSHAKE)?..];
    if record.get(1) != Some(&3) {
        return None;
    }
    // The record may hold more handshake messages than were kept; the hello comes first.
    let length = usize::from(u16_at(record, 3)?);
    let body = record.get(5..)?;
    let body = &body[..length.min(body.len())];
    if body.first() != Some(&SERVER_HELLO) {
        return None;
    }
    let hello = body.get(4..)?;
    let mut version = u16_at(hello, 0)?;
    let session_id = usize::from(*hello.get(2 + 32)?);
    let mut at = 2 + 32 + 1 + session_id;
    let suite = u16_at(hello, at)?;
    at += 2 + 1; // the suite, and the compression method
    if let Some(total) = u16_at(hello, at) {
        at += 2;
        let end = (at + usize::from(total)).min(hello.len());
        let extensions = hello.get(at..end)?;
        let mut i = 0;
        while let (Some(kind), Some(len)) = (u16_at(extensions, i), u16_at(extensions, i + 2)) {
            let len = usize::from(len);
            if kind == SUPPORTED_VERSIONS && len == 2 {
                version = u16_at(extensions, i + 4)?;
            }
            i += 4 + len;
        }
    }
    Some((version, suite))
}

fn version_name(version: u16) -> String {
    match version {
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        v => format!("TLS version 0x{v:04x}"),
    }
}

/// The suites rustls offers, by their IANA names.
fn suite_name(suite: u16) -> String {
    let name = match suite {
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        s => return format!("cipher suite 0x{s:04x}"),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ServerHello record as a server sends it, after `prefix` (the SMTP text).
    fn hello(prefix: &[u8], suite: u16, extensions: &[u8]) -> Vec<u8> {
        let mut hs = vec![0x03, 0x03];
        hs.extend([7u8; 32]); // random
        hs.push(32);
        hs.extend([9u8; 32]); // session id
        hs.extend(suite.to_be_bytes());
        hs.push(0);
        hs.extend((extensions.len() as u16).to_be_bytes());
        hs.extend(extensions);
        let mut body = vec![SERVER_HELLO, 0];
        body.extend((hs.len() as u16).to_be_bytes());
        body.extend(hs);
        let mut out = prefix.to_vec();
        out.extend([HANDSHAKE, 3, 3]);
        out.extend((body.len() as u16).to_be_bytes());
        out.extend(body);
        out
    }

    #[test]
    fn tls13_is_read_from_supported_versions_after_the_smtp_text() {
        // key_share (ignored), then supported_versions = TLS 1.3.
        let ext = [
            0x00, 0x33, 0x00, 0x02, 0xaa, 0xbb, 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,
        ];
        let bytes = hello(b"220 2.0.0 Ready to start TLS\r\n", 0x1302, &ext);
        assert_eq!(server_hello(&bytes), Some((0x0304, 0x1302)));
        let tap = Tap(Arc::new(Mutex::new(bytes)));
        assert_eq!(
            tap.negotiated().as_deref(),
            Some("TLS 1.3, TLS_AES_256_GCM_SHA384")
        );
    }

    #[test]
    fn tls12_without_the_extension() {
        let bytes = hello(b"", 0xc02f, &[]);
        assert_eq!(server_hello(&bytes), Some((0x0303, 0xc02f)));
    }

    #[test]
    fn clear_text_or_a_cut_hello_is_nothing() {
        assert_eq!(
            server_hello(b"220 smtp.example.org ESMTP\r\n250 OK\r\n"),
            None
        );
        let bytes = hello(b"220 go ahead\r\n", 0x1301, &[]);
        for cut in 0..bytes.len() - 3 {
            // Never panics; a hello cut before its suite is not reported.
            let _ = server_hello(&bytes[..cut]);
        }
        assert_eq!(server_hello(&bytes[..20]), None);
    }
}
