//! The `telegram` section: the old bot's `bot-id` and `channel-id`, more chats as
//! scopes, its masked view and its schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Telegram;
use crate::config::check::{Checker, join};
use crate::config::schema::NON_BLANK;
use crate::config::{DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Secret, default_scope, legacy};
use crate::messengers::ServiceConfig;

const TELEGRAM: &[&str] = &[
    "bot-id",
    "channel-id",
    "api-url",
    "scopes",
    "default_scope",
    "timeout_s",
];

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The Bot API token (`bot-id` in the old bot's file).
    pub token: Secret,
    pub api_url: url::Url,
    /// Scope name → chat id or `@channel`. The legacy `channel-id` is the scope `default`.
    pub scopes: BTreeMap<String, String>,
    /// As [`MailConfig::default_scope`], from `telegram.default_scope`.
    pub default_scope: Option<String>,
    /// The longest one send may take.
    pub timeout: Duration,
}

impl ServiceConfig for TelegramConfig {
    const NAME: &'static str = "telegram";
    const KEYS: &'static [(&'static str, &'static [&'static str])] = &[("telegram", TELEGRAM)];
    // Telegram's own limit for a group.
    const PER_MINUTE: Option<u32> = Some(20);
    // A Telegram message should fit one screen.
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Telegram;

    fn load(c: &mut Checker, v: &Value, _base: &Path) -> Option<Self> {
        telegram(c, v)
    }

    fn masked(&self) -> Value {
        json!({
            "bot-id": Secret::MASK,
            "api-url": crate::config::mask_password(self.api_url.as_str()),
            "scopes": self.scopes,
            "default_scope": self.default_scope,
            "timeout_s": self.timeout.as_secs(),
        })
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        vec![("telegram.bot-id", self.token.expose().to_owned())]
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.keys().map(String::as_str).collect()
    }

    fn default_scope(&self) -> Option<&str> {
        self.default_scope.as_deref()
    }

    fn reaches(&self, scope: &str) -> String {
        self.scopes.get(scope).cloned().unwrap_or_default()
    }

    fn messenger(&self) -> Result<Telegram, String> {
        Ok(Telegram::new(self))
    }
}

fn telegram(c: &mut Checker, v: &Value) -> Option<TelegramConfig> {
    let p = "telegram";
    let t = c.object(v, p, TELEGRAM)?;
    let token = c.non_empty(t, "bot-id", p);
    let token = c.required(token, t, "bot-id", p);
    if let Some(tok) = &token
        && !looks_like_token(tok)
    {
        // Never echo the value: it may be a real token with a typo in it.
        c.problem(
            join(p, "bot-id"),
            "expected a Bot API token of the form <digits>:<letters, digits, - and _> (as BotFather gives it)",
        );
    }
    let api_url = c
        .non_empty(t, "api-url", p)
        .unwrap_or_else(|| "https://api.telegram.org".to_string());
    let api_url = match url::Url::parse(api_url.trim_end_matches('/')) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        _ => {
            c.problem(
                join(p, "api-url"),
                format!("expected an http:// or https:// URL, found {api_url:?}"),
            );
            None
        }
    };
    let mut scopes = BTreeMap::new();
    if let Some(id) = t.get("channel-id")
        && let Some(id) = legacy::chat_id(c, id, &join(p, "channel-id"))
    {
        scopes.insert(DEFAULT_SCOPE.to_string(), id);
    }
    if let Some(sv) = t.get("scopes") {
        let sp = join(p, "scopes");
        match sv.as_object() {
            Some(obj) => {
                for (name, id) in obj {
                    let lp = join(&sp, name);
                    if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
                        c.problem(
                            &lp,
                            "the scope \"default\" is already given by telegram.channel-id",
                        );
                        continue;
                    }
                    if let Some(id) = legacy::chat_id(c, id, &lp) {
                        scopes.insert(name.clone(), id);
                    }
                }
            }
            None => c.wrong_type(&sp, "an object mapping scope names to chat ids", sv),
        }
    }
    if scopes.is_empty() && !t.contains_key("channel-id") && !t.contains_key("scopes") {
        c.problem(
            join(p, "channel-id"),
            "missing: set telegram.channel-id (or telegram.scopes) to the chat to send to",
        );
    }
    let default_scope = default_scope(c, t, p, "telegram", scopes.keys());
    let timeout = c.uint(t, "timeout_s", p, 1, 600);
    Some(TelegramConfig {
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
        token: Secret::new(token?),
        api_url: api_url?,
        scopes,
        default_scope,
    })
}

fn looks_like_token(t: &str) -> bool {
    match t.split_once(':') {
        Some((id, rest)) => {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        None => false,
    }
}

/// Telegram through the Bot API. Needs `bot-id`, and `channel-id` or `scopes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Telegram")]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [{"required": ["channel-id"]}, {"required": ["scopes"]}]))]
pub struct File {
    /// The Bot API token, as BotFather gives it (`123456:ABC-def…`).
    #[serde(rename = "bot-id")]
    #[schemars(pattern(r"^[0-9]+:[A-Za-z0-9_-]+$"))]
    pub bot_id: String,
    /// The chat to send to, a numeric chat id (a number or a string) or `@channelname`:
    /// the scope `default`.
    #[serde(rename = "channel-id")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "chat_id")]
    pub channel_id: Option<Value>,
    /// The Bot API server, for a self-hosted one.
    #[serde(rename = "api-url")]
    #[schemars(
        pattern(r"^\s*[Hh][Tt][Tt][Pp][Ss]?://\S"),
        extend("default" = "https://api.telegram.org")
    )]
    pub api_url: Option<String>,
    /// More chats for `routes`: scope name → chat id or `@channelname`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "chat_scopes")]
    pub scopes: Option<BTreeMap<String, Value>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// The longest one send may take, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

fn chat_id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "integer"},
            {"type": "string", "pattern": r"^\s*(?:-?[0-9]+|@[A-Za-z0-9_]{4,})\s*$"},
        ],
    })
}

fn chat_scopes(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": chat_id(generator),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert!(looks_like_token("123456:ABC-def_9"));
        assert!(!looks_like_token("123456"));
        assert!(!looks_like_token("abc:def"));
        assert!(!looks_like_token("1:"));
    }
}
