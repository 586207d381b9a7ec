//! The original Python bot's config, read as it was written.
//!
//! The old bot took its values loosely: a port could be `25` or `"25"`, a channel id a
//! number or a string, and a single recipient a bare string. Those files must keep
//! loading unchanged, so these readers accept every form the old bot did; everything
//! new in the config is strict.

use serde_json::{Map, Value};

use super::check::{Checker, join};

/// `mail.port`: a number or a string of digits.
pub fn port(c: &mut Checker, map: &Map<String, Value>, path: &str) -> Option<u16> {
    let v = map.get("port")?;
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=65535).contains(&n) => Some(n as u16),
        _ => {
            c.problem(
                join(path, "port"),
                format!("expected a port number from 1 to 65535, found {}", short(v)),
            );
            None
        }
    }
}

/// `mail.recipients`: a list of addresses, or one address as a string.
pub fn recipients(c: &mut Checker, map: &Map<String, Value>, path: &str) -> Option<Vec<String>> {
    let v = map.get("recipients")?;
    let p = join(path, "recipients");
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(s) => out.push(s.to_string()),
                    None => {
                        c.wrong_type(&format!("{p}[{i}]"), "an e-mail address (a string)", item)
                    }
                }
            }
            Some(out)
        }
        other => {
            c.wrong_type(&p, "a list of e-mail addresses", other);
            None
        }
    }
}

/// `telegram.channel-id`: a number (`-1001234567890`) or a string (`"-100…"`, `"@name"`).
pub fn chat_id(c: &mut Checker, v: &Value, path: &str) -> Option<String> {
    let s = match v {
        Value::Number(n) if n.is_i64() => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        other => {
            c.wrong_type(path, "a chat id (a number, or \"@channelname\")", other);
            return None;
        }
    };
    if is_chat_id(&s) {
        Some(s)
    } else {
        c.problem(
            path,
            format!("expected a numeric chat id or \"@channelname\", found {s:?}"),
        );
        None
    }
}

fn is_chat_id(s: &str) -> bool {
    if let Some(name) = s.strip_prefix('@') {
        return name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    s.strip_prefix('-').unwrap_or(s).parse::<u64>().is_ok()
}

/// A value as shown in an error: strings quoted, everything else by its type.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => super::check::kind(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids() {
        assert!(is_chat_id("-1001234567890"));
        assert!(is_chat_id("12345"));
        assert!(is_chat_id("@sonix_alerts"));
        assert!(!is_chat_id("@ab"));
        assert!(!is_chat_id("sonix"));
        assert!(!is_chat_id("-"));
    }
}
