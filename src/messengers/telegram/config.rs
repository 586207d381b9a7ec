//! The `telegram` section: the old bot's `bot-id` and `channel-id`, more chats as
//! scopes (a chat id, or an object with a forum topic and a quiet threshold), the
//! operators who may act on alerts from the chat. [`File`] describes the section once —
//! keys, forms (the old bot's loose chat id from `settings::legacy`), schema — and is
//! read with `settings::section`; [`validate`] reads the token and checks across keys,
//! making the resolved [`TelegramConfig`], whose `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::Telegram;
use crate::event::Severity;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::forms::{
    Checked, NonBlank, Text, TextForm, ValueForm, Whole, shown, shown_secs,
};
use crate::settings::schema::NON_BLANK;
use crate::settings::section::{self, Field, List, Named, Wording};
use crate::settings::values::secret_or_file_field;
use crate::settings::{DEFAULT_SCOPE, DEFAULT_SEND_TIMEOUT, Secret, chosen_default_scope, legacy};

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
}

impl Serialize for ChatScope {
    /// The string form when that says it all, as the old config wrote it.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.thread.is_none() && self.silent_below.is_none() {
            return s.serialize_str(&self.chat);
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("chat", &self.chat)?;
        m.serialize_entry("thread", &self.thread)?;
        m.serialize_entry("silent_below", &self.silent_below.map(|s| s.as_str()))?;
        m.end()
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
}

impl Serialize for Operator {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Operator::Id(id) => s.serialize_u64(*id),
            Operator::Username(name) => s.serialize_str(&format!("@{name}")),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TelegramConfig {
    /// The Bot API token (`bot-id` in the old bot's file).
    #[serde(rename = "bot-id")]
    pub token: Secret,
    #[serde(rename = "api-url", serialize_with = "shown_api_url")]
    pub api_url: url::Url,
    /// Scope name → chat. The legacy `channel-id` is the scope `default`.
    pub scopes: BTreeMap<String, ChatScope>,
    /// As [`MailConfig::default_scope`], from `telegram.default_scope`.
    pub default_scope: Option<String>,
    /// The longest one send may take.
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
    /// Who may press an alert's buttons and give commands; none: the bot only sends.
    pub operators: Vec<Operator>,
    /// The Snooze buttons, each a duration.
    #[serde(rename = "snooze_s", serialize_with = "shown_secs_list")]
    pub snooze: Vec<Duration>,
    /// How long one `getUpdates` long poll waits.
    #[serde(rename = "poll_timeout_s", serialize_with = "shown_secs")]
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
    // A scope is a chat id or an object (`ScopeFile`, read by `validate`): the schema's
    // `anyOf` has no one object to list its keys in.
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("telegram", section::keys::<File>())]
    }
    // Telegram's own limit for a group.
    const PER_MINUTE: Option<u32> = Some(20);
    // A Telegram message should fit one screen.
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Telegram;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, |c, file| validate(c, file, base))?
    }

    fn masked(&self) -> Value {
        shown(self)
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

/// What the section says, defaults filled; `None` when the token, the API's URL or a
/// chat cannot be used (every problem is noted already).
fn validate(c: &mut Checker, file: File, base: &Path) -> Option<TelegramConfig> {
    let p = "telegram";
    let (has_inline, has_file) = (
        !matches!(file.bot_id, Field::Absent),
        !matches!(file.bot_id_file, Field::Absent),
    );
    let token = secret_or_file_field(
        c,
        file.bot_id,
        file.bot_id_file.map(|f| f.0),
        "bot-id",
        p,
        base,
    );
    if !has_inline && !has_file {
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
        let (key, what) = if has_inline {
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
    let api_url = match file.api_url {
        Field::Given(u) => Some(u.0),
        Field::Wrong => None,
        Field::Absent => url::Url::parse(DEFAULT_API_URL).ok(),
    };
    let mut scopes = BTreeMap::new();
    let (has_channel, has_scopes) = (
        !matches!(file.channel_id, Field::Absent),
        !matches!(file.scopes, Field::Absent),
    );
    if let Field::Given(id) = file.channel_id {
        scopes.insert(DEFAULT_SCOPE.to_string(), ChatScope::chat(id.0));
    }
    let sp = join(p, "scopes");
    for (name, scope) in file.scopes.given().map(|s| s.0).unwrap_or_default() {
        let lp = join(&sp, &name);
        if name == DEFAULT_SCOPE && scopes.contains_key(DEFAULT_SCOPE) {
            // The scope is taken: what it says is not read.
            c.problem(
                &lp,
                "the scope \"default\" is already given by telegram.channel-id",
            );
            continue;
        }
        if let Some(scope) = chat_scope(c, scope.0, &lp) {
            scopes.insert(name, scope);
        }
    }
    if !has_channel && !has_scopes {
        c.problem(
            join(p, "channel-id"),
            "missing: set telegram.channel-id (or telegram.scopes) to the chat to send to",
        );
    }
    let default_scope = chosen_default_scope(
        c,
        file.default_scope.map(|s| s.0),
        p,
        "telegram",
        scopes.keys(),
    );
    Some(TelegramConfig {
        operators: file
            .operators
            .given()
            .map(|l| l.items.into_iter().map(|o| o.0).collect())
            .unwrap_or_default(),
        snooze: file.snooze_s.given().map_or_else(
            || DEFAULT_SNOOZE_S.map(Duration::from_secs).to_vec(),
            |s| s.0,
        ),
        poll_timeout: Duration::from_secs(
            file.poll_timeout_s
                .given()
                .map_or(DEFAULT_POLL_TIMEOUT_S, |s| s.0),
        ),
        timeout: file
            .timeout_s
            .given()
            .map_or(DEFAULT_SEND_TIMEOUT, |s| Duration::from_secs(s.0)),
        token: token?,
        api_url: api_url?,
        scopes,
        default_scope,
    })
}

/// The Bot API server unless `api-url` names another.
const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// A scope: a chat id as the old config writes it, or `{"chat", "thread",
/// "silent_below"}`, read as [`ScopeFile`] at `path`.
fn chat_scope(c: &mut Checker, v: Value, path: &str) -> Option<ChatScope> {
    if !v.is_object() {
        return match legacy::ChatId::parse(v) {
            Ok(id) => Some(ChatScope::chat(id)),
            Err(problem) => {
                c.problem(path, problem);
                None
            }
        };
    }
    section::load(c, &v, path, |c, scope: ScopeFile| {
        let chat = scope.chat.required(c, &join(path, "chat"));
        Some(ChatScope {
            chat: chat?.0,
            thread: scope.thread.given().map(|t| t.0 as i32),
            silent_below: scope.silent_below.given().map(|s| s.0),
        })
    })?
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
    #[serde(rename = "bot-id", default)]
    #[schemars(pattern(r"^[0-9]+:[A-Za-z0-9_-]+$"))]
    pub bot_id: Field<Text<NonBlank>>,
    /// A file holding the token (a trailing newline is dropped), instead of `bot-id`: it
    /// can be readable by the agent's user alone while the config is readable by the
    /// group `protowatch`.
    #[serde(rename = "bot-id_file", default)]
    #[schemars(pattern(NON_BLANK))]
    pub bot_id_file: Field<Text<NonBlank>>,
    /// The chat to send to, a numeric chat id (a number or a string) or `@channelname`:
    /// the scope `default`.
    #[serde(rename = "channel-id", default)]
    #[schemars(schema_with = "chat_id")]
    pub channel_id: Field<Checked<legacy::ChatId>>,
    /// The Bot API server, for a self-hosted one.
    #[serde(rename = "api-url", default)]
    #[schemars(
        pattern(r"^\s*[Hh][Tt][Tt][Pp][Ss]?://\S"),
        extend("default" = "https://api.telegram.org")
    )]
    pub api_url: Field<Text<ApiUrl>>,
    /// More chats for `routes`: scope name → chat id or `@channelname`.
    #[serde(default)]
    #[schemars(schema_with = "chat_scopes")]
    pub scopes: Field<Named<RawScope, Scopes>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Field<Text<NonBlank>>,
    /// The longest one send may take, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 30))]
    pub timeout_s: Field<Whole<1, 600>>,
    /// Who may act on alerts from Telegram (buttons, `/alerts`): Telegram user ids and
    /// `@usernames`. Turns on the bot's side: long polling, buttons, edits in place.
    #[serde(default)]
    #[schemars(schema_with = "operators_schema")]
    pub operators: Field<List<Checked<OperatorForm>, Operators>>,
    /// The Snooze buttons, in seconds.
    #[serde(default)]
    #[schemars(schema_with = "snooze_schema")]
    pub snooze_s: Field<Snooze>,
    /// How long one long poll for button presses and commands waits, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 25))]
    pub poll_timeout_s: Field<Whole<1, 50>>,
}

/// A scope given as an object: a chat, a forum topic, a quiet threshold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeFile {
    #[serde(default)]
    pub chat: Field<Checked<legacy::ChatId>>,
    #[serde(default)]
    pub thread: Field<Whole<1, { i32::MAX as u64 }>>,
    #[serde(default)]
    pub silent_below: Field<Text<SilentBelow>>,
}

/// A scope's value as the file has it: a chat id or an object, which [`chat_scope`]
/// tells apart (the reader has no form for "this or that").
#[derive(Debug)]
pub struct RawScope(Value);

impl<'de> Deserialize<'de> for RawScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        section::raw(d).map(RawScope)
    }
}

/// `scopes` in problems.
pub struct Scopes;

impl Wording for Scopes {
    const EXPECTED: &'static str = "an object mapping scope names to chat ids";
}

/// `operators` in problems.
pub struct Operators;

impl Wording for Operators {
    const EXPECTED: &'static str = "a list of Telegram user ids and \"@usernames\"";
}

/// `api-url`: an http(s) URL with a host, without a trailing `/`.
pub struct ApiUrl;

impl TextForm for ApiUrl {
    const EXPECTED: &'static str = "a string";
    type Value = url::Url;

    fn parse(text: &str) -> Result<url::Url, String> {
        let text = NonBlank::parse(text)?;
        match url::Url::parse(text.trim_end_matches('/')) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u),
            _ => Err(format!(
                "expected an http:// or https:// URL, found {text:?}"
            )),
        }
    }
}

/// A scope's `silent_below`: one of the four severities.
pub struct SilentBelow;

impl TextForm for SilentBelow {
    const EXPECTED: &'static str = "a string";
    type Value = Severity;

    fn parse(text: &str) -> Result<Severity, String> {
        text.parse::<Severity>().map_err(|_| {
            format!("expected one of \"info\", \"warning\", \"minor\", \"major\", found {text:?}")
        })
    }
}

/// One operator: a Telegram user id (a number, or digits in a string) or `@username`.
pub struct OperatorForm;

impl ValueForm for OperatorForm {
    type Value = Operator;

    fn parse(item: Value) -> Result<Operator, String> {
        let op = match &item {
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
        op.ok_or_else(|| {
            format!(
                "expected a Telegram user id (a positive number) or \"@username\", found {item}"
            )
        })
    }
}

/// `snooze_s`: up to four Snooze buttons, each a number of seconds (1 minute to 7 days);
/// a wrong entry is noted and left out.
#[derive(Debug)]
pub struct Snooze(Vec<Duration>);

/// What `snooze_s` is expected to be, in its problems.
const SNOOZE: &str = "a list of up to 4 durations in seconds, each from 60 to 604800";

impl<'de> Deserialize<'de> for Snooze {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Snooze;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(SNOOZE)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Snooze, A::Error> {
                if seq.size_hint().is_some_and(|n| n > 4) {
                    return Err(de::Error::custom(format_args!(
                        "expected {SNOOZE}, found a list"
                    )));
                }
                let list = List::<Checked<SnoozeSeconds>, SnoozeList>::deserialize(
                    de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Snooze(list.items.into_iter().map(|s| s.0).collect()))
            }
        }
        d.deserialize_seq(V)
    }
}

/// `snooze_s` in problems.
pub struct SnoozeList;

impl Wording for SnoozeList {
    const EXPECTED: &'static str = SNOOZE;
}

/// One Snooze button's seconds.
pub struct SnoozeSeconds;

impl ValueForm for SnoozeSeconds {
    type Value = Duration;

    fn parse(s: Value) -> Result<Duration, String> {
        match s.as_u64().filter(|s| (60..=7 * 24 * 3600).contains(s)) {
            Some(s) => Ok(Duration::from_secs(s)),
            None => Err(format!("expected seconds from 60 to 604800, found {s}")),
        }
    }
}

/// The Snooze buttons as the file writes them: seconds.
fn shown_secs_list<S: Serializer>(list: &[Duration], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(list.iter().map(Duration::as_secs))
}

fn snooze_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {"type": "integer", "format": "uint64", "minimum": 60, "maximum": 604800},
        "maxItems": 4,
        "default": [3600, 14400],
    })
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
fn shown_api_url<S: Serializer>(u: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&masked_api_url(u))
}

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
