//! The console's sessions: a browser signs in with the API token once and then sends a
//! session id in the `X-Protowatch-Session` header of each request.
//!
//! Why a header and not a cookie: cookies are scoped to the host, not to the port, so a
//! cookie for `127.0.0.1:8767` is sent to every server on `127.0.0.1` — another local
//! user's server, reached by a link planted in an alert, received it and replayed it.
//! The page keeps the id in `sessionStorage`, which belongs to its origin (scheme, host
//! *and port*) and to its tab: no page of another port can read it, and the browser
//! sends it nowhere by itself. A header also cannot be added by another site's page
//! without a CORS preflight, which this API never grants: no cross-site request forgery
//! either.
//!
//! Sessions are kept by the agent, so that signing out and rotating the token end them
//! at once: each remembers a digest of the token it was made under and is void when
//! another is in force. They are also written to the store (the table
//! `console_sessions`, by the digest of the id: the id itself is nowhere but in the
//! browser), so that a restart of the agent signs no console out. There are at most
//! [`MAX_SESSIONS`]; the oldest makes way.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ring::digest;
use rusqlite::{Connection, params};

use crate::store::{Store, StoreError, now_ms};

/// How long a sign-in lasts: a shift.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at once: a console per operator and a few spare.
pub const MAX_SESSIONS: usize = 64;

/// The request header that carries a session id.
pub const HEADER: &str = "x-protowatch-session";

type Digest = [u8; 32];

#[derive(Default)]
pub struct Sessions {
    /// Digest of the id → (digest of the token, created at, ms).
    open: Mutex<HashMap<Digest, (Digest, i64)>>,
}

fn sha256(s: &str) -> Digest {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, s.as_bytes()).as_ref());
    out
}

fn expired(created_ms: i64, now: i64) -> bool {
    now - created_ms >= MAX_AGE.as_millis() as i64 || created_ms > now + 60_000
}

impl Sessions {
    /// The sessions kept in `store` that have not expired.
    pub fn load(store: &Store) -> Result<Sessions, StoreError> {
        let now = now_ms();
        let rows = store.with_conn(|c| {
            c.execute(
                "DELETE FROM console_sessions WHERE created_ms < ?1",
                [now - MAX_AGE.as_millis() as i64],
            )?;
            let mut stmt =
                c.prepare("SELECT id_digest, token_digest, created_ms FROM console_sessions")?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?, r.get(2)?))
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let open = rows
            .into_iter()
            .filter_map(|(id, token, at)| Some((id.try_into().ok()?, (token.try_into().ok()?, at))))
            .collect();
        Ok(Sessions {
            open: Mutex::new(open),
        })
    }

    /// A new session under `token`, kept in `c`; `None` without randomness to make one
    /// or a store to keep it in.
    pub fn issue(&self, c: &Connection, token: &str) -> Option<String> {
        let id = super::token::random_hex(32).ok()?;
        let now = now_ms();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, (_, at)| !expired(*at, now));
        while open.len() >= MAX_SESSIONS {
            let Some(oldest) = open.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) else {
                break;
            };
            open.remove(&oldest);
        }
        let (key, token) = (sha256(&id), sha256(token));
        let kept = c
            .execute(
                "DELETE FROM console_sessions WHERE created_ms < ?1",
                [now - MAX_AGE.as_millis() as i64],
            )
            .and_then(|_| {
                c.execute(
                    "INSERT OR REPLACE INTO console_sessions (id_digest, token_digest, created_ms)
                     VALUES (?1, ?2, ?3)",
                    params![&key[..], &token[..], now],
                )
            });
        if let Err(e) = kept {
            tracing::warn!(error = %e, "cannot keep a console session in the store");
            return None;
        }
        open.insert(key, (token, now));
        Some(id)
    }

    /// Whether `id` is a session made under `token` (the one in force) that has not
    /// expired or been ended.
    pub fn check(&self, id: &str, token: &str) -> bool {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&sha256(id)).is_some_and(|(t, at)| {
            !expired(*at, now_ms()) && super::token::constant_time_eq(t, &sha256(token))
        })
    }

    /// Ends session `id`, here and in `c`; whether there was one.
    pub fn end(&self, c: &Connection, id: &str) -> bool {
        let key = sha256(id);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = c.execute(
            "DELETE FROM console_sessions WHERE id_digest = ?1",
            [&key[..]],
        ) {
            tracing::warn!(error = %e, "cannot forget a console session in the store");
        }
        open.remove(&key).is_some()
    }
}

/// The session id a request carries, if any.
pub fn from_headers(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_holds_under_its_token_until_ended_and_outlives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = Sessions::load(&store).unwrap();
        let id = store
            .with_conn(|c| Ok(s.issue(c, "token-a")))
            .unwrap()
            .unwrap();
        assert_eq!(id.len(), 64);
        assert!(s.check(&id, "token-a"));
        assert!(!s.check(&id, "token-b"), "another token: rotated");
        assert!(!s.check("not-a-session", "token-a"));
        // The agent again.
        let again = Sessions::load(&store).unwrap();
        assert!(again.check(&id, "token-a"));
        assert!(store.with_conn(|c| Ok(again.end(c, &id))).unwrap());
        assert!(!again.check(&id, "token-a"), "signed out");
        assert!(!Sessions::load(&store).unwrap().check(&id, "token-a"));
        // The id itself is not in the store.
        let dump: Vec<Vec<u8>> = store
            .with_conn(|c| {
                let mut st = c.prepare("SELECT id_digest FROM console_sessions")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .unwrap();
        assert!(dump.iter().all(|d| d.len() == 32));
    }

    #[test]
    fn the_oldest_makes_way() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = Sessions::load(&store).unwrap();
        let first = store.with_conn(|c| Ok(s.issue(c, "t"))).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        for _ in 0..MAX_SESSIONS {
            store.with_conn(|c| Ok(s.issue(c, "t"))).unwrap().unwrap();
        }
        assert!(!s.check(&first, "t"));
        assert_eq!(s.open.lock().unwrap().len(), MAX_SESSIONS);
    }
}
