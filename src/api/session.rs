//! The console's session cookie: a browser signs in with the API token once and then
//! presents this instead.
//!
//! The cookie is stateless — `v1.<issued at>.<HMAC-SHA-256>` keyed by the token in
//! force — so the agent keeps no session table: a session survives a restart of the
//! agent, and every session dies when the token is rotated or replaced (the HMAC no
//! longer verifies), which is what a rotation is for. It lasts [`MAX_AGE`]. The cookie
//! is `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site's page makes
//! the browser send it); `access` adds the same-origin check for requests that change
//! something.

use std::time::Duration;

use ring::hmac;

/// How long a sign-in lasts: a shift.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);

/// A cookie issued a little in the future (another clock) is taken; more is not.
const CLOCK_SLACK_S: i64 = 60;

/// What the MAC is over besides the time: a MAC for anything else never passes here.
const LABEL: &[u8] = b"protowatch console session v1\0";

/// The cookie's name for the API listening on `port`: cookies are per host, not per
/// port, so two agents on one PC must not overwrite each other's.
pub fn cookie_name(port: u16) -> String {
    format!("protowatch_session_{port}")
}

fn tag(token: &str, issued_at_s: i64) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(LABEL);
    ctx.update(issued_at_s.to_string().as_bytes());
    ctx.sign()
}

/// A session issued at `now_s` under `token`.
pub fn issue(token: &str, now_s: i64) -> String {
    let mac: String = tag(token, now_s)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1.{now_s}.{mac}")
}

/// Whether `value` is a session issued under `token` that has not expired at `now_s`.
pub fn verify(token: &str, value: &str, now_s: i64) -> bool {
    let mut parts = value.split('.');
    let (Some("v1"), Some(at), Some(mac), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(at) = at.parse::<i64>() else {
        return false;
    };
    if at > now_s + CLOCK_SLACK_S || now_s - at > MAX_AGE.as_secs() as i64 {
        return false;
    }
    let Some(mac) = unhex(mac) else { return false };
    let key = hmac::Key::new(hmac::HMAC_SHA256, token.as_bytes());
    let mut msg = LABEL.to_vec();
    msg.extend_from_slice(at.to_string().as_bytes());
    // Compares in constant time.
    hmac::verify(&key, &msg, &mac).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The value of cookie `name` in a `Cookie` header.
pub fn from_header<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(name: &str, value: &str) -> String {
    format!(
        "{name}={value}; Max-Age={}; Path=/; HttpOnly; SameSite=Strict",
        MAX_AGE.as_secs()
    )
}

/// `Set-Cookie` that ends the session in this browser.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_verifies_under_its_token_until_it_expires() {
        let s = issue("token-a", 1_000_000);
        assert!(verify("token-a", &s, 1_000_000));
        assert!(verify("token-a", &s, 1_000_000 + 11 * 3600));
        assert!(!verify("token-a", &s, 1_000_000 + 12 * 3600 + 1), "expired");
        assert!(!verify("token-b", &s, 1_000_000), "another token: rotated");
        assert!(!verify("token-a", &s, 1_000_000 - 120), "from the future");
        let forged = s.replace("v1.1000000.", "v1.1000001.");
        assert!(
            !verify("token-a", &forged, 1_000_001),
            "time is under the MAC"
        );
        for junk in [
            "",
            "v1",
            "v1.x.y",
            "v2.1000000.00",
            "v1.1000000.zz",
            &s[..s.len() - 1],
        ] {
            assert!(!verify("token-a", junk, 1_000_000), "{junk:?}");
        }
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let h = "a=1; protowatch_session_8767=v1.5.ab ; b=2";
        assert_eq!(from_header(h, "protowatch_session_8767"), Some("v1.5.ab"));
        assert_eq!(from_header(h, "protowatch_session_1"), None);
        let c = set_cookie("n", "v");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"));
    }
}
