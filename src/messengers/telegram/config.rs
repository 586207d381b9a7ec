//! The `telegram` section: the old bot's `bot-id` and `channel-id`, more chats as
//! scopes (a chat id, or an object with a forum topic and a quiet threshold), the
//! operators who may act on alerts from the chat, its masked view and its schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Telegram;
use crate::event::Severity;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::schema::NON_BLANK;
use crate::settings::values::secret_or_file;
use crate::settings::{DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Secret, default_scope, legacy};

const TELEGRAM: &[&str] = &[
    "bot-id",
    "bot-id_file",
    "channel-id",
    "api-url",
    "scopes",
    "default_scope",
    "timeout_s",
    "operators",
    "snooze_s",
    "poll_timeout_s",
];

const TELEGRAM_SCOPE: &[&str] = &["chat", "thread", "silent_below"];

/// The Snooze buttons unless `telegram.snooze_s` says otherwise: an hour and four.
const DEFAULT_SNOOZE_S: [u64; 2] = [3600, 4 * 3600];

/// How long one `getUpdates` waits for news: one request every 25 s while nobody
/// presses anything, and a press seen at once.
const DEFAULT_POLL_TIMEOUT_S: u64 = 25;

/// Where a scope sends: a chat, optionally one forum topic of it, and the severities
/// that arrive without a sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatScope {
    /// A numeric chat id or `@channelname`.
    pub chat: String,
    /// A forum topic (`message_thread_id`).
    pub thread: Option<i32>,
    /// Events below this severity are sent with `disable_notification`.
    pub silent_below: Option<Severity>,
}

impl ChatScope {
    pub fn chat(chat: impl Into<String>) -> ChatScope {
        ChatScope {
            chat: chat.into(),
            thread: None,
            silent_below: None,
        }
    }

    /// The string form when that says it all, as the old config wrote it.
    fn masked(&self) -> Value {
        if self.thread.is_none() && self.silent_below.is_none() {
            return json!(self.chat);
        }
        json!({
            "chat": self.chat,
            "thread": self.thread,
            "silent_below": self.silent_below.map(|s| s.as_str()),
        })
    }
}

/// A scope that is just this chat, as the string form writes it.
impl PartialEq<&str> for ChatScope {
    fn eq(&self, other: &&str) -> bool {
        self.chat == *other && self.thread.is_none() && self.silent_below.is_none()
    }
}

/// Who may act on alerts from Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operator {
    Id(u64),
    /// Without the `@`, compared without regard to case as Telegram does.
    Username(String),
}

impl Operator {
    pub fn is(&self, id: u64, username: Option<&str>) -> bool {
        match self {
            Operator::Id(x) => *x == id,
            Operator::Username(name) => username.is_some_and(|u| u.eq_ignore_ascii_case(name)),
        }
    }

    fn masked(&self) -> Value {
        match self {
            Operator::Id(id) => json!(id),
            Operator::Username(name) => json!(format!("@{name}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The Bot API token (`bot-id` in the old bot's file).
    pub token: Secret,
    pub api_url: url::Url,
    /// Scope name → chat. The legacy `channel-id` is the scope `default`.
    pub scopes: BTreeMap<String, ChatScope>,
    /// As [`MailConfig::default_scope`], from `telegram.default_scope`.
    pub default_scope: Option<String>,
    /// The longest one send may take.
    pub timeout: Duration,
    /// Who may press an alert's buttons and give commands; none: the bot only sends.
    pub operators: Vec<Operator>,
    /// The Snooze buttons, each a duration.
    pub snooze: Vec<Duration>,
    /// How long one `getUpdates` long poll waits.
    pub poll_timeout: Duration,
}

impl TelegramConfig {
    /// Whether the bot's side (buttons, commands, edits) is on.
    pub fn two_way(&self) -> bool {
        !self.operators.is_empty()
    }
}

impl ServiceConfig for TelegramConfig {
    const NAME: &'static str = "telegram";
    // A scope is a chat id or an object (`TELEGRAM_SCOPE`, checked by the loader): the
    // schema's `anyOf` has no one object to list its keys in.
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("telegram", TELEGRAM)]
    }
    // Telegram's own limit for a group.
    const PER_MINUTE: Option<u32> = Some(20);
    // A Telegram message should fit one screen.
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Telegram;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        telegram(c, v, base)
    }

    fn masked(&self) -> Value {
        json!({
            "bot-id": Secret::MASK,
            "api-url": masked_api_url(&self.api_url),
            "scopes": self.scopes.iter().map(|(k, v)| (k.clone(), v.masked())).collect::<serde_json::Map<_, _>>(),
            "default_scope": self.default_scope,
            "timeout_s": self.timeout.as_secs(),
            "operators": self.operators.iter().map(Operator::masked).collect::<Vec<_>>(),
            "snooze_s": self.snooze.iter().map(Duration::as_secs).collect::<Vec<_>>(),
            "poll_timeout_s": self.poll_timeout.as_secs(),
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
        self.scopes
            .get(scope)
            .map(|s| s.chat.clone())
            .unwrap_or_default()
    }

    fn messenger(&self) -> Result<Telegram, String> {
        Ok(Telegram::new(self))
    }
}

fn telegram(c: &mut Checker, v: &Value, base: &Path) -> Option<TelegramConfig> {
    let p = "telegram";
    let t = c.object(v, p, TELEGRAM)?;
    let token = secret_or_file(c, t, "bot-id", p, base, |c, _| {
        c.non_empty(t, "bot-id", p).map(Secret::new)
    });
    if !t.contains_key("bot-id") && !t.contains_key("bot-id_file") {
        c.problem(
            join(p, "bot-id"),
            "missing (required): the Bot API token, or bot-id_file naming a file that holds it",
        );
    }
    if let Some(tok) = &token
        && !tok.is_unread()
        && !looks_like_token(tok.expose())
    {
        // Never echo the value: it may be a real token with a typo in it.
        let (key, what) = if t.contains_key("bot-id") {
            ("bot-id", "expected a Bot API token")
        } else {
            ("bot-id_file", "expected the file to hold a Bot API token")
        };
        c.problem(
            join(p, key),
            format!(
                "{what} of the form <digits>:<letters, digits, - and _> (as BotFather gives it)"
            ),
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
        scopes.insert(DEFAULT_SCOPE.to_string(), ChatScope::chat(id));
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
                    if let Some(scope) = chat_scope(c, id, &lp) {
                        scopes.insert(name.clone(), scope);
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
    let operators = operators(c, t.get("operators"), &join(p, "operators"));
    let snooze = snooze(c, t.get("snooze_s"), &join(p, "snooze_s"));
    let poll_timeout = c.uint(t, "poll_timeout_s", p, 1, 50);
    Some(TelegramConfig {
        operators,
        snooze,
        poll_timeout: Duration::from_secs(poll_timeout.unwrap_or(DEFAULT_POLL_TIMEOUT_S)),
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
        token: token?,
        api_url: api_url?,
        scopes,
        default_scope,
    })
}

/// A scope: a chat id as the old config writes it, or `{"chat", "thread",
/// "silent_below"}`.
fn chat_scope(c: &mut Checker, v: &Value, path: &str) -> Option<ChatScope> {
    let Value::Object(_) = v else {
        return legacy::chat_id(c, v, path).map(ChatScope::chat);
    };
    let o = c.object(v, path, TELEGRAM_SCOPE)?;
    let chat = match o.get("chat") {
        Some(id) => legacy::chat_id(c, id, &join(path, "chat")),
        None => {
            c.problem(join(path, "chat"), "missing (required)");
            None
        }
    };
    let thread = c
        .uint(o, "thread", path, 1, i32::MAX as u64)
        .map(|t| t as i32);
    let silent_below = match c.string(o, "silent_below", path) {
        None => None,
        Some(s) => {
            match s.parse::<Severity>() {
                Ok(s) => Some(s),
                Err(_) => {
                    c.problem(
                    join(path, "silent_below"),
                    format!("expected one of \"info\", \"warning\", \"minor\", \"major\", found {s:?}"),
                );
                    None
                }
            }
        }
    };
    Some(ChatScope {
        chat: chat?,
        thread,
        silent_below,
    })
}

/// `operators`: Telegram user ids (numbers, or digits in a string) and `@usernames`.
fn operators(c: &mut Checker, v: Option<&Value>, path: &str) -> Vec<Operator> {
    let Some(v) = v else {
        return Vec::new();
    };
    let Some(list) = v.as_array() else {
        c.wrong_type(path, "a list of Telegram user ids and \"@usernames\"", v);
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let at = crate::settings::check::index(path, i);
        let op = match item {
            Value::Number(n) => n.as_u64().filter(|n| *n > 0).map(Operator::Id),
            Value::String(s) => {
                let s = s.trim();
                match s.strip_prefix('@') {
                    Some(name)
                        if (4..=32).contains(&name.len())
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                    {
                        Some(Operator::Username(name.to_string()))
                    }
                    Some(_) => None,
                    None => s.parse::<u64>().ok().filter(|n| *n > 0).map(Operator::Id),
                }
            }
            _ => None,
        };
        match op {
            Some(op) => out.push(op),
            None => c.problem(
                at,
                format!(
                    "expected a Telegram user id (a positive number) or \"@username\", found {item}"
                ),
            ),
        }
    }
    out
}

/// `snooze_s`: the Snooze buttons, each a number of seconds (1 minute to 7 days).
fn snooze(c: &mut Checker, v: Option<&Value>, path: &str) -> Vec<Duration> {
    let default = || {
        DEFAULT_SNOOZE_S
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect()
    };
    let Some(v) = v else {
        return default();
    };
    let expected = "a list of up to 4 durations in seconds, each from 60 to 604800";
    match v.as_array() {
        Some(list) if list.len() <= 4 => {
            let mut out = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match s.as_u64().filter(|s| (60..=7 * 24 * 3600).contains(s)) {
                    Some(s) => out.push(Duration::from_secs(s)),
                    None => c.problem(
                        crate::settings::check::index(path, i),
                        format!("expected seconds from 60 to 604800, found {s}"),
                    ),
                }
            }
            out
        }
        _ => {
            c.wrong_type(path, expected, v);
            default()
        }
    }
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
#[schemars(extend(
    "anyOf" = [{"required": ["channel-id"]}, {"required": ["scopes"]}],
    "oneOf" = [{"required": ["bot-id"]}, {"required": ["bot-id_file"]}],
))]
pub struct File {
    /// The Bot API token, as BotFather gives it (`123456:ABC-def…`). Or use `bot-id_file`.
    #[serde(rename = "bot-id")]
    #[schemars(pattern(r"^[0-9]+:[A-Za-z0-9_-]+$"))]
    pub bot_id: Option<String>,
    /// A file holding the token (a trailing newline is dropped), instead of `bot-id`: it
    /// can be readable by the agent's user alone while the config is readable by the
    /// group `protowatch`.
    #[serde(rename = "bot-id_file")]
    #[schemars(pattern(NON_BLANK))]
    pub bot_id_file: Option<String>,
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
    /// Who may act on alerts from Telegram (buttons, `/alerts`): Telegram user ids and
    /// `@usernames`. Turns on the bot's side: long polling, buttons, edits in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "operators_schema")]
    pub operators: Option<Vec<Value>>,
    /// The Snooze buttons, in seconds.
    #[schemars(length(max = 4), inner(range(min = 60, max = 604800)), extend("default" = [3600, 14400]))]
    pub snooze_s: Option<Vec<u64>>,
    /// How long one long poll for button presses and commands waits, in seconds.
    #[schemars(range(min = 1, max = 50), extend("default" = 25))]
    pub poll_timeout_s: Option<u64>,
}

fn operators_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\s*(?:[0-9]+|@[A-Za-z0-9_]{4,32})\s*$"},
            ],
        },
    })
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
        "additionalProperties": {
            "anyOf": [
                chat_id(generator),
                {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["chat"],
                    "properties": {
                        "chat": chat_id(generator),
                        "thread": {"type": "integer", "minimum": 1},
                        "silent_below": {"enum": ["info", "warning", "minor", "major"]},
                    },
                },
            ],
        },
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

/// `api-url` as it may be shown: its password and its query (a proxy's key, say) masked;
/// the path stays (a self-hosted Bot API server's prefix says which server it is).
fn masked_api_url(u: &url::Url) -> String {
    let mut shown = u.clone();
    if shown.query().is_some() {
        shown.set_query(Some("********"));
    }
    shown.set_fragment(None);
    crate::settings::mask_password(shown.as_str())
}

#[cfg(test)]
mod masking_tests {
    #[test]
    fn the_api_urls_query_and_password_are_masked() {
        let u = url::Url::parse("https://bot:pw@tg.example.org/prefix/?key=s3cret#x").unwrap();
        let shown = super::masked_api_url(&u);
        assert!(
            !shown.contains("s3cret") && !shown.contains(":pw@"),
            "{shown}"
        );
        assert!(shown.contains("tg.example.org/prefix/"), "{shown}");
    }
}
