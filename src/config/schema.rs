//! The config file's format as a JSON Schema (`protowatch schema`), for editors to
//! complete and check `config.json` as it is typed.
//!
//! The loader does not use these types: it walks the parsed JSON by hand
//! ([`super::validate`]) so it can report every problem with its path, and what it makes
//! are resolved types (defaults filled, paths absolute). These types describe the *file*
//! instead, and exist only to derive the schema: doc comments become descriptions,
//! `deny_unknown_fields` becomes `"additionalProperties": false`, `rename` keeps the old
//! bot's `bot-id`, `channel-id` and `api-url`. They derive `Deserialize` too, so that
//! their serde attributes are the ones serde checks. A test holds them to the loader's
//! key lists ([`super::KNOWN_KEYS`]), and the tests in `tests/schema.rs` run both over the
//! same files.
//!
//! Where the loader reads something in more ways than a derive can say (choice words in
//! any case, a port as a number or digits, a duration as seconds or `"10m"`), a
//! `schema_with` function writes the schema by hand; such a field needs serde's `default`
//! and `skip_serializing_if` to stay optional in the schema. Checks across keys (a
//! route's scope must exist) stay the loader's: a schema that accepts a file is no
//! promise the loader does, but a key or a value of the wrong form is caught in the
//! editor.

use std::collections::BTreeMap;

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

/// The JSON Schema (draft 2020-12) of the config file.
pub fn schema() -> Schema {
    SchemaSettings::draft2020_12()
        .with_transform(RecursiveTransform(not_null))
        .with_transform(RecursiveTransform(unwrap_descriptions))
        .into_generator()
        .into_root_schema_for::<ConfigFile>()
}

/// A string that is not empty or blank, as the loader's `non_empty` wants.
const NON_BLANK: &str = r"\S";

/// The config of protowatch, which follows the protocol files of a measuring instrument
/// and sends their errors by e-mail, Telegram, webhooks and Alertmanager. Unknown keys
/// are errors; relative paths resolve against the config file's folder. The old Python bot's file (`mail`
/// with `user`, `password`, `port`, `server`, `recipients`; `telegram` with `bot-id`,
/// `channel-id`) loads unchanged.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "protowatch config")]
pub struct ConfigFile {
    /// The instrument's name, shown in every message. Default: the host name.
    #[schemars(pattern(NON_BLANK))]
    pub instrument: Option<String>,
    pub mail: Option<Mail>,
    pub telegram: Option<Telegram>,
    pub webhook: Option<Webhook>,
    pub alertmanager: Option<Alertmanager>,
    /// The protocol files to follow, by glob.
    pub watch: Option<Vec<Watch>>,
    /// User rules, tried in order before the built-in grammar's mapping; the first whose
    /// pattern matches a line decides what the line makes.
    pub rules: Option<Vec<Rule>>,
    /// Event name → where it goes. Without `routes`, every alarm, `scan_interlock` and
    /// `message` goes to every configured service's default scope, and `new_scan` and
    /// `scan_completed` go nowhere. With it, exactly the listed destinations get each event.
    pub routes: Option<BTreeMap<String, Vec<Route>>>,
    pub throttle: Option<Throttle>,
    pub api: Option<Api>,
    /// Where the state (the SQLite database) is kept.
    #[schemars(pattern(NON_BLANK), extend("default" = ".protowatch"))]
    pub state_dir: Option<String>,
}

/// E-mail by SMTP. Needs `server`, and `recipients` or `scopes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = mail_rules)]
pub struct Mail {
    /// The SMTP server's host name or address.
    #[schemars(pattern(NON_BLANK))]
    pub server: String,
    /// The server's port: 465 with `tls` `wrapper`, 587 with `starttls`, else 25. A number,
    /// or a string of digits as the old bot's files have it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "port")]
    pub port: Option<Value>,
    /// `starttls` (required), `wrapper` (TLS from the first byte), `none`, or
    /// `opportunistic` (STARTTLS when the server offers it). Default: `wrapper` on port 465,
    /// else `opportunistic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "tls")]
    pub tls: Option<String>,
    /// The user name for SMTP AUTH; AUTH is used when a user and a password are set.
    pub user: Option<String>,
    /// The password for SMTP AUTH; empty means no AUTH. Or use `password_file`.
    pub password: Option<String>,
    /// A file holding the password (a trailing newline is dropped), instead of `password`.
    #[schemars(pattern(NON_BLANK))]
    pub password_file: Option<String>,
    /// The sender, `addr` or `"Name <addr>"`. Default: `user` if it is an address, else
    /// `protowatch@<host>`.
    #[schemars(pattern(NON_BLANK))]
    pub from: Option<String>,
    /// A PEM file of extra CA certificates to trust besides the system's (a site CA).
    /// Certificate checks cannot be switched off.
    #[schemars(pattern(NON_BLANK))]
    pub ca_file: Option<String>,
    /// The recipients, a list of addresses or one address: the scope `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "recipients")]
    pub recipients: Option<Value>,
    /// More recipient groups for `routes`: scope name → addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "mail_scopes")]
    pub scopes: Option<BTreeMap<String, Vec<String>>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// The longest one send may take, from connecting to the server's last reply, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

/// Telegram through the Bot API. Needs `bot-id`, and `channel-id` or `scopes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("anyOf" = [{"required": ["channel-id"]}, {"required": ["scopes"]}]))]
pub struct Telegram {
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

/// Webhooks: Microsoft Teams (Workflows), Slack, Mattermost, ntfy, or any HTTP endpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// Scope name → webhook.
    #[schemars(extend("minProperties" = 1))]
    pub scopes: BTreeMap<String, WebhookScope>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Option<String>,
    /// The longest one request may take, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 30))]
    pub timeout_s: Option<u64>,
}

/// One webhook. The body is a preset's, or `body`, or every field as a JSON object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["preset", "body"]}))]
pub struct WebhookScope {
    /// The webhook's http(s) URL; a secret (it is the webhook's credential), so it may be
    /// read from the environment or a file. For ntfy, the topic's URL.
    #[schemars(schema_with = "secret_value")]
    pub url: Value,
    /// The body in a service's format: `teams` (Workflows webhook, an Adaptive Card),
    /// `slack`, `mattermost`, `ntfy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "preset")]
    pub preset: Option<String>,
    /// `POST`, `PUT` or `PATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "method", extend("default" = "POST"))]
    pub method: Option<String>,
    /// Extra request headers: name → value, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "headers")]
    pub headers: Option<BTreeMap<String, Value>>,
    /// A body template: any JSON whose strings may name fields in `{{…}}` (`title`, `text`,
    /// `event`, `severity`, `severity_word`, `emoji`, `priority`, `count`, `message`,
    /// `source`, `key`, `details`, `time`, `instrument`). A string that is one field keeps
    /// the field's type; a template that is one string is sent as plain text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// Prometheus Alertmanager (API v2): alerts are posted to every URL while they are active,
/// and resolved when dismissed or expired.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Alertmanager {
    /// Base URLs of the cluster's members, e.g. `http://am1:9093`.
    #[schemars(extend("minItems" = 1))]
    pub urls: Vec<String>,
    /// Labels added to every alert (`alertname`, `severity`, `instrument`, `source` and
    /// `key` are set by protowatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "labels")]
    pub labels: Option<BTreeMap<String, String>>,
    /// How often active alerts are posted again, below Alertmanager's `resolve_timeout`.
    /// Seconds as a number, or a string like `"30s"`, `"1m"`; 1 s to 4 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "repost_interval", extend("default" = "60s"))]
    pub repost_interval: Option<Value>,
    /// The longest one post may take, in seconds.
    #[schemars(range(min = 1, max = 600), extend("default" = 10))]
    pub timeout_s: Option<u64>,
}

/// Protocol files to follow.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Watch {
    /// A glob, e.g. `C:\\Sonix\\protocol\\*.log` or `protocol/*.log`.
    #[schemars(pattern(NON_BLANK))]
    pub path: String,
    /// How lines are decoded: `auto` is UTF-8, and windows-1251 for a line that is not
    /// valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "encoding", extend("default" = "auto"))]
    pub encoding: Option<String>,
    /// `end`: files present at the very first start are read from their end, files that
    /// appear later whole. `beginning`: everything is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "start", extend("default" = "end"))]
    pub start: Option<String>,
    /// `notify`: file events, and a check every `poll_interval_ms`. `poll`: checks only, for
    /// network shares, which send no file events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "mode", extend("default" = "notify"))]
    pub mode: Option<String>,
    /// How often files are checked and the glob expanded again, in milliseconds.
    #[schemars(range(min = 50, max = 3_600_000), extend("default" = 1000))]
    pub poll_interval_ms: Option<u64>,
    /// The protocol grammar; `sonix` is the only one so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "format", extend("default" = "sonix"))]
    pub format: Option<String>,
    /// Longer lines are cut, with a marker.
    #[schemars(range(min = 1024, max = 268_435_456), extend("default" = 1_048_576))]
    pub max_line_bytes: Option<u64>,
    /// The most files this glob follows; a glob that matches more is reported (a
    /// warning, and in `/healthz`) and the files beyond it are not followed.
    #[schemars(range(min = 1, max = 10_000_000), extend("default" = 10_000))]
    pub max_files: Option<u64>,
    /// How long the checkpoint of a file that went away (deleted, rotated out of the
    /// glob, or on a share or in a folder that cannot be seen) is kept: a file that comes
    /// back within it resumes where it was instead of being read again. Seconds, or a
    /// string like `"12h"`, `"7d"` (1 minute … 366 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "forget_after", extend("default" = "7d"))]
    pub forget_after: Option<Value>,
}

/// A user rule: lines matching `pattern` make the event `event`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = rule_rules)]
pub struct Rule {
    /// The rule's name, unique among the rules; errors and `protowatch replay` name it.
    #[schemars(pattern(NON_BLANK))]
    pub name: String,
    /// A regular expression (Rust's `regex` syntax) tried on each decoded line. The named
    /// captures `message` and `source` fill those fields of the event.
    #[schemars(pattern(NON_BLANK))]
    pub pattern: String,
    /// The event name to make (`alarm_major`, `scan_interlock`, or any other), or `ignore`
    /// to silence matching lines.
    #[schemars(pattern(NON_BLANK))]
    pub event: String,
    /// The event's severity: `info`, `warning`, `minor`, `major` (or OnTakt's `INFO`,
    /// `REPORT`, `WARNING`, `PROBLEM`), any case. Required unless `event` is `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "severity")]
    pub severity: Option<String>,
    /// The dedup key, a template over the named captures (`"vacuum-$pump"`). Default: the
    /// event name, source and message with its digits folded.
    #[schemars(pattern(NON_BLANK))]
    pub key: Option<String>,
}

/// One destination of an event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The service: `mail`, `telegram`, `webhook` or `alertmanager`; it must be configured.
    #[schemars(schema_with = "service")]
    pub service: String,
    /// One of the service's scopes. Default: the service's `default_scope`.
    #[schemars(pattern(NON_BLANK))]
    pub scope: Option<String>,
}

/// How often messages go out.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Repeats of one alert within this time after a message are counted and sent as one
    /// message when it ends; `0` sends every occurrence. Seconds as a number, or a string
    /// like `"90s"`, `"10m"`, `"24h"`, `"2d"`; at most a day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "repeat_interval", extend("default" = "10m"))]
    pub repeat_interval: Option<Value>,
    /// A delivery still failing after this long is given up and kept as dead. Seconds as a
    /// number, or a string like `"90s"`, `"10m"`, `"24h"`, `"2d"`; 1 minute to 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "max_age", extend("default" = "24h"))]
    pub max_age: Option<Value>,
    pub per_minute: Option<PerMinute>,
}

/// At most this many messages a minute to one destination; more events are grouped
/// into digests, none dropped.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerMinute {
    /// To one mail scope.
    #[schemars(range(min = 1, max = 10_000), extend("default" = 10))]
    pub mail: Option<u64>,
    /// To one Telegram chat (Telegram's own limit for a group is 20).
    #[schemars(range(min = 1, max = 10_000), extend("default" = 20))]
    pub telegram: Option<u64>,
    /// To one webhook.
    #[schemars(range(min = 1, max = 10_000), extend("default" = 20))]
    pub webhook: Option<u64>,
}

/// The local HTTP API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["token", "token_file"]}))]
pub struct Api {
    /// Address and port to listen on. Any address but loopback needs a token.
    #[schemars(pattern(NON_BLANK), extend("default" = "127.0.0.1:8767"))]
    pub listen: Option<String>,
    /// The bearer token every request must carry. Or use `token_file`. Without either
    /// the agent makes one in `<state_dir>/api-token`.
    #[schemars(pattern(NON_BLANK))]
    pub token: Option<String>,
    /// A file holding the token, instead of `token`.
    #[schemars(pattern(NON_BLANK))]
    pub token_file: Option<String>,
    /// Names that requests may give in `Host` besides IP addresses, `localhost` and this
    /// PC's name (a reverse proxy's, a DNS alias); others are refused (DNS rebinding).
    pub hosts: Option<Vec<String>>,
    /// Active alerts that `PUT /api/alerts` may hold; beyond, 429.
    #[schemars(range(min = 1, max = 1_000_000), extend("default" = 10_000))]
    pub max_alerts: Option<u64>,
}

/// Optional keys may be left out, but the loader takes no `null` for them: schemars's
/// `Option` says "or null", which this takes back out of every subschema.
fn not_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    let null = json!({"type": "null"});
    if let Some(Value::Array(any)) = obj.get_mut("anyOf") {
        any.retain(|s| *s != null);
        if any.len() == 1
            && let Some(Value::Object(only)) = any.pop()
        {
            obj.remove("anyOf");
            for (k, v) in only {
                obj.entry(k).or_insert(v);
            }
        }
    }
}

/// Doc comments are wrapped at 90 columns; an editor's hover wraps by itself, so only
/// paragraph breaks are kept.
fn unwrap_descriptions(schema: &mut Schema) {
    if let Some(Value::String(d)) = schema.get_mut("description") {
        *d = d
            .split("\n\n")
            .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n\n");
    }
}

/// One of a fixed set of words; the loader takes them in any case, so besides the list
/// (which editors offer) any casing matches. `trim`: blanks around the word are fine.
fn words(list: &[&str], trim: bool) -> Schema {
    let alternatives: Vec<String> = list
        .iter()
        .map(|w| {
            w.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                    } else {
                        // Digits and `-` stand for themselves; escaping `-` outside a
                        // class is an error in the ECMA-262 regexes of editors.
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect();
    let blank = if trim { r"\s*" } else { "" };
    let pattern = format!("^{blank}(?:{}){blank}$", alternatives.join("|"));
    json_schema!({
        "type": "string",
        "anyOf": [{"enum": list}, {"pattern": pattern}],
    })
}

fn tls(_: &mut SchemaGenerator) -> Schema {
    words(&["starttls", "wrapper", "none", "opportunistic"], false)
}

fn encoding(_: &mut SchemaGenerator) -> Schema {
    words(&["auto", "utf-8", "windows-1251"], false)
}

fn start(_: &mut SchemaGenerator) -> Schema {
    words(&["end", "beginning"], false)
}

fn mode(_: &mut SchemaGenerator) -> Schema {
    words(&["notify", "poll"], false)
}

fn format(_: &mut SchemaGenerator) -> Schema {
    words(&["sonix"], false)
}

fn service(_: &mut SchemaGenerator) -> Schema {
    words(&["mail", "telegram", "webhook", "alertmanager"], false)
}

fn preset(_: &mut SchemaGenerator) -> Schema {
    words(&["teams", "slack", "mattermost", "ntfy"], false)
}

fn method(_: &mut SchemaGenerator) -> Schema {
    words(&["post", "put", "patch"], false)
}

/// A value in the file, or kept out of it.
fn secret_value(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "string", "pattern": NON_BLANK},
            {"type": "object", "properties": {"env": {"type": "string", "pattern": NON_BLANK}},
             "required": ["env"], "additionalProperties": false},
            {"type": "object", "properties": {"file": {"type": "string", "pattern": NON_BLANK}},
             "required": ["file"], "additionalProperties": false},
        ],
    })
}

fn headers(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        "additionalProperties": secret_value(generator),
    })
}

fn labels(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": {
            "pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$",
            "not": {"enum": ["alertname", "severity", "instrument", "source", "key"]},
        },
        "additionalProperties": {"type": "string", "minLength": 1},
    })
}

fn repost_interval(_: &mut SchemaGenerator) -> Schema {
    duration(1, 240)
}

fn severity(_: &mut SchemaGenerator) -> Schema {
    words(
        &[
            "info", "warning", "minor", "major", "report", "problem", "warn",
        ],
        true,
    )
}

fn port(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 65535},
            {"type": "string", "pattern": r"^\s*0*[1-9][0-9]{0,4}\s*$"},
        ],
    })
}

fn recipients(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ],
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
        "additionalProperties": chat_id(generator),
    })
}

fn mail_scopes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    })
}

/// A duration between `min` and `max` seconds as a number, or a string with a unit (the
/// string's range is the loader's to check).
fn duration(min: u64, max: u64) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "number", "minimum": min, "maximum": max},
            {"type": "string", "pattern": r"^\s*(?:[0-9]+\.?[0-9]*|\.[0-9]+)\s*(?:s|m|min|h|d)\s*$"},
        ],
    })
}

fn repeat_interval(_: &mut SchemaGenerator) -> Schema {
    duration(0, 24 * 3600)
}

fn max_age(_: &mut SchemaGenerator) -> Schema {
    duration(60, 30 * 24 * 3600)
}

fn forget_after(_: &mut SchemaGenerator) -> Schema {
    duration(60, 366 * 24 * 3600)
}

/// `mail` needs recipients somewhere, and takes a password one way only.
fn mail_rules(schema: &mut Schema) {
    schema.insert(
        "anyOf".into(),
        json!([{"required": ["recipients"]}, {"required": ["scopes"]}]),
    );
    schema.insert(
        "not".into(),
        json!({"required": ["password", "password_file"]}),
    );
}

/// A rule's severity may be left out only when it silences lines.
fn rule_rules(schema: &mut Schema) {
    schema.insert(
        "if".into(),
        json!({"properties": {"event": {"const": "ignore"}}}),
    );
    schema.insert("else".into(), json!({"required": ["severity"]}));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KNOWN_KEYS;

    /// The object schema at a path of [`KNOWN_KEYS`] (`watch[]`, `routes.*[]`), following
    /// `$ref`s into `$defs`.
    fn object_at<'s>(root: &'s Value, path: &str) -> &'s serde_json::Map<String, Value> {
        let resolve = |v: &'s Value| -> &'s Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    let name = r.trim_start_matches("#/$defs/");
                    &root["$defs"][name]
                }
                None => v,
            }
        };
        let mut at = root;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, list) = match part.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (part, false),
            };
            at = if key == "*" {
                resolve(&at["additionalProperties"])
            } else {
                resolve(&at["properties"][key])
            };
            if list {
                at = resolve(&at["items"]);
            }
        }
        at.as_object()
            .unwrap_or_else(|| panic!("no object schema at {path:?}"))
    }

    #[test]
    fn the_schema_has_exactly_the_loaders_keys() {
        let root = schema().to_value();
        for (path, keys) in KNOWN_KEYS {
            let obj = object_at(&root, path);
            let mut have: Vec<&str> = obj["properties"]
                .as_object()
                .unwrap_or_else(|| panic!("{path:?} has no properties"))
                .keys()
                .map(String::as_str)
                .collect();
            let mut want = keys.to_vec();
            have.sort_unstable();
            want.sort_unstable();
            assert_eq!(have, want, "keys of {path:?}");
            assert_eq!(
                obj.get("additionalProperties"),
                Some(&Value::Bool(false)),
                "{path:?} must refuse unknown keys"
            );
        }
    }

    #[test]
    fn nothing_takes_null() {
        let text = schema().to_value().to_string();
        assert!(!text.contains("\"null\""), "{text}");
    }

    #[test]
    fn choice_words_in_any_case() {
        let s = words(&["utf-8", "auto"], false).to_value();
        let pattern = s["anyOf"][1]["pattern"].as_str().unwrap();
        let re = regex::Regex::new(pattern).unwrap();
        assert!(re.is_match("UTF-8") && re.is_match("Auto"));
        assert!(!re.is_match("utf8") && !re.is_match(" auto"));
    }
}
