//! The original Python bot's config, read as it was written.
//!
//! The old bot took its values loosely: a port could be `25` or `"25"`, a channel id a
//! number or a string, and a single recipient a bare string. Those files must keep
//! loading unchanged, so these forms accept every one the old bot did; everything new in
//! the config is strict. Each is a field's form in its section's struct: `mail`'s
//! [`Port`] and [`Recipients`], `telegram`'s [`ChatId`].

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;

use super::forms::{Text, TextForm, ValueForm};
use super::section::{List, Wording};

/// `telegram.channel-id` (and a Telegram scope's chat) as a field's form: a number
/// (`-1001234567890`) or a string (`"-100…"`, `"@name"`), blanks around it dropped.
pub struct ChatId;

impl ValueForm for ChatId {
    type Value = String;

    fn parse(v: Value) -> Result<String, String> {
        let s = match &v {
            Value::Number(n) if n.is_i64() => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            other => {
                return Err(format!(
                    "expected a chat id (a number, or \"@channelname\"), found {}",
                    super::check::kind(other)
                ));
            }
        };
        if is_chat_id(&s) {
            Ok(s)
        } else {
            Err(format!(
                "expected a numeric chat id or \"@channelname\", found {s:?}"
            ))
        }
    }
}

fn is_chat_id(s: &str) -> bool {
    if let Some(name) = s.strip_prefix('@') {
        return name.len() >= 4 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    }
    s.strip_prefix('-').unwrap_or(s).parse::<u64>().is_ok()
}

/// `mail.port` as a field's form: a number or a string of digits, from 1 to 65535.
pub struct Port;

impl ValueForm for Port {
    type Value = u16;

    fn parse(v: Value) -> Result<u16, String> {
        let n = match &v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n.and_then(|n| u16::try_from(n).ok()) {
            Some(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "expected a port number from 1 to 65535, found {}",
                short(&v)
            )),
        }
    }
}

/// `mail.recipients` as a field's form: a list of addresses, or one address as a string;
/// an entry that is not a string is noted and left out.
#[derive(Debug)]
pub struct Recipients(pub Vec<String>);

impl<'de> Deserialize<'de> for Recipients {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Recipients;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of e-mail addresses")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Recipients, E> {
                Ok(Recipients(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Recipients, A::Error> {
                let list = List::<Text<AddressText>, AddressList>::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Recipients(list.items.into_iter().map(|a| a.0).collect()))
            }
        }
        d.deserialize_any(V)
    }
}

/// An entry of `recipients`, read as text (the address is checked by the section).
pub struct AddressText;

impl TextForm for AddressText {
    const EXPECTED: &'static str = "an e-mail address (a string)";
    type Value = String;

    fn parse(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
}

/// A list of addresses in problems.
pub struct AddressList;

impl Wording for AddressList {
    const EXPECTED: &'static str = "a list of e-mail addresses";
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
