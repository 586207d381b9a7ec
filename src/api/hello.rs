//! `GET /api/hello?nonce=…`: the agent proves that it knows the API token before a
//! command sends it the token.
//!
//! The commands find the agent through the address in its state folder. A port is no
//! proof of who holds it: after a crash, or on `[::1]` where only `127.0.0.1` was
//! bound, another local user's server may answer there, and a command that sent
//! `Authorization: Bearer <token>` to it would hand that user the token. So a command
//! first sends a fresh nonce; the agent answers HMAC-SHA-256 keyed by the token over the
//! nonce *and the address the request arrived on*; the command checks it with the token
//! it already holds, and sends nothing more to a server that cannot answer. The address
//! is in the MAC so that a server on another address cannot relay the challenge to the
//! real agent and pass its answer on.
//!
//! The route is public (it must be: the caller has not shown the token yet). It reveals
//! only MACs of caller-chosen nonces bound to the agent's own addresses, which prove
//! nothing anywhere else.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use ring::hmac;
use serde_json::{Value, json};

use super::{ApiError, ApiState};

/// What the MAC is over besides the nonce and the address.
const LABEL: &[u8] = b"protowatch hello v1\0";

/// A nonce: 16 to 128 characters of hex.
const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=128;

/// The address a connection was accepted on, set by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct LocalAddr(pub SocketAddr);

/// The proof for `nonce` on `addr` under `token`, as hex.
pub fn proof(token: &str, nonce: &str, addr: SocketAddr) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(LABEL);
    ctx.update(nonce.as_bytes());
    ctx.update(b"\0");
    ctx.update(addr.to_string().as_bytes());
    super::token::hex(ctx.sign().as_ref())
}

/// Whether `answer` proves the token for `nonce` on `addr` (in constant time).
pub fn verify(token: &str, nonce: &str, addr: SocketAddr, answer: &str) -> bool {
    super::token::constant_time_eq(proof(token, nonce, addr).as_bytes(), answer.as_bytes())
}

/// A fresh nonce for a command to send.
pub fn nonce() -> String {
    // Without randomness no proof can be asked for: an empty nonce is refused below,
    // and the command then treats the server as unproven.
    super::token::random_hex(16).unwrap_or_default()
}

#[derive(serde::Deserialize)]
pub struct Hello {
    nonce: String,
}

pub async fn hello(
    State(st): State<Arc<ApiState>>,
    local: Option<axum::Extension<LocalAddr>>,
    Query(q): Query<Hello>,
) -> Result<Json<Value>, ApiError> {
    if !NONCE_LEN.contains(&q.nonce.len()) || !q.nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "nonce: 16 to 128 hexadecimal characters",
        ));
    }
    let Some(axum::Extension(LocalAddr(addr))) = local else {
        return Err(ApiError::internal("the connection's address is unknown"));
    };
    let config = st.config();
    let Some(token) = st.tokens.in_force(config.api.token.as_ref()) else {
        return Err(ApiError::unavailable("this agent has no API token"));
    };
    Ok(Json(
        json!({"proof": proof(token.expose(), &q.nonce, addr)}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_holds_for_its_token_nonce_and_address_only() {
        let a: SocketAddr = "127.0.0.1:8767".parse().unwrap();
        let b: SocketAddr = "[::1]:8767".parse().unwrap();
        let p = proof("tok", "00112233445566778899aabbccddeeff", a);
        assert!(verify("tok", "00112233445566778899aabbccddeeff", a, &p));
        assert!(!verify("tok", "00112233445566778899aabbccddeeff", b, &p));
        assert!(!verify("other", "00112233445566778899aabbccddeeff", a, &p));
        assert!(!verify("tok", "ffeeddccbbaa99887766554433221100", a, &p));
        assert_eq!(nonce().len(), 32);
        assert_ne!(nonce(), nonce());
    }
}
