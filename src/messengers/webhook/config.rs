//! The `webhook` section: one webhook per scope, its URL and header values possibly kept
//! out of the file (they are credentials), a preset or a body template; its masked view
//! and its schema.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Webhook;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::schema::{NON_BLANK, secret_schema, words};
use crate::settings::values::{http_url, secret_value};
use crate::settings::{DEFAULT_SEND_TIMEOUT, Secret, default_scope, mask_url};

const WEBHOOK: &[&str] = &["scopes", "default_scope", "timeout_s"];
const WEBHOOK_SCOPE: &[&str] = &["url", "preset", "method", "headers", "body"];

/// The methods a webhook may use: the ones that carry a body.
const METHODS: [(&str, &str); 3] = [("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")];

/// Chat tools and anything else that takes an HTTP request per message.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Scope name → where and how to post.
    pub scopes: BTreeMap<String, WebhookTarget>,
    /// As [`MailConfig::default_scope`], from `webhook.default_scope`.
    pub default_scope: Option<String>,
    /// The longest one request may take.
    pub timeout: Duration,
}

/// One webhook: its address, and how a notification becomes a request body.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// An http(s) URL. Slack's, Teams' and Mattermost's webhook URLs are their own
    /// credential, so the URL is a secret: never printed, only its host.
    pub url: Secret,
    /// `POST` (the default), `PUT` or `PATCH`.
    pub method: String,
    /// Extra request headers; values may be read from a file or the environment, and are
    /// never printed.
    pub headers: Vec<(String, Secret)>,
    pub body: WebhookBody,
}

/// What the request body is.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookBody {
    /// A service's documented format.
    Preset(Preset),
    /// A JSON value whose strings are templates over the notification's fields
    /// (`{{title}}`, `{{text}}`, …); a template that is one string is sent as plain text.
    Template(Value),
    /// Every field of the notification as one JSON object.
    Fields,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// A Microsoft Teams Workflows (Power Automate) webhook: an Adaptive Card.
    Teams,
    /// A Slack incoming webhook: `text` in Slack's mrkdwn.
    Slack,
    /// A Mattermost incoming webhook: `text` in Markdown.
    Mattermost,
    /// An ntfy server; the URL's last path segment is the topic.
    Ntfy,
}

impl Preset {
    pub const CHOICES: [(&'static str, Preset); 4] = [
        ("teams", Preset::Teams),
        ("slack", Preset::Slack),
        ("mattermost", Preset::Mattermost),
        ("ntfy", Preset::Ntfy),
    ];

    pub fn as_str(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("teams", |(n, _)| n)
    }
}

impl ServiceConfig for WebhookConfig {
    const NAME: &'static str = "webhook";
    fn keys() -> Vec<(&'static str, &'static [&'static str])> {
        vec![("webhook", WEBHOOK), ("webhook.scopes.*", WEBHOOK_SCOPE)]
    }
    // Slack's and Teams' incoming webhooks allow about one a second.
    const PER_MINUTE: Option<u32> = Some(20);
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Webhook;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        webhook(c, v, base)
    }

    fn masked(&self) -> Value {
        let scopes: serde_json::Map<String, Value> = self
            .scopes
            .iter()
            .map(|(name, t)| {
                let headers: serde_json::Map<String, Value> = t
                    .headers
                    .iter()
                    .map(|(k, _)| (k.clone(), json!(Secret::MASK)))
                    .collect();
                let body = match &t.body {
                    WebhookBody::Preset(p) => json!({"preset": p.as_str()}),
                    WebhookBody::Template(v) => json!({"body": v}),
                    WebhookBody::Fields => json!({}),
                };
                let mut entry = json!({
                    "url": mask_url(t.url.expose()),
                    "method": t.method,
                    "headers": headers,
                });
                if let (Some(e), Some(b)) = (entry.as_object_mut(), body.as_object()) {
                    e.extend(b.clone());
                }
                (name.clone(), entry)
            })
            .collect();
        json!({
            "scopes": scopes,
            "default_scope": self.default_scope,
            "timeout_s": self.timeout.as_secs(),
        })
    }

    fn secrets(&self) -> Vec<(&'static str, String)> {
        // URLs and header values are shown masked past the host: one name for them all,
        // their values in one string to compare.
        let all: Vec<String> = self
            .scopes
            .iter()
            .map(|(name, t)| {
                let headers: Vec<String> = t
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.expose()))
                    .collect();
                format!("{name}\n{}\n{}", t.url.expose(), headers.join("\n"))
            })
            .collect();
        vec![("webhook.scopes", all.join("\n\n"))]
    }

    fn scopes(&self) -> Vec<&str> {
        self.scopes.keys().map(String::as_str).collect()
    }

    fn default_scope(&self) -> Option<&str> {
        self.default_scope.as_deref()
    }

    fn reaches(&self, scope: &str) -> String {
        // The URL is the webhook's credential: its host only.
        self.scopes
            .get(scope)
            .map(|t| mask_url(t.url.expose()))
            .unwrap_or_default()
    }

    fn messenger(&self) -> Result<Webhook, String> {
        Webhook::new(self)
    }
}

fn webhook(c: &mut Checker, v: &Value, base: &Path) -> Option<WebhookConfig> {
    let p = "webhook";
    let w = c.object(v, p, WEBHOOK)?;
    let mut scopes = BTreeMap::new();
    let sp = join(p, "scopes");
    match w.get("scopes") {
        Some(Value::Object(obj)) => {
            if obj.is_empty() {
                c.problem(&sp, "no scopes: add at least one webhook");
            }
            for (name, target) in obj {
                if let Some(t) = webhook_target(c, target, &join(&sp, name), base) {
                    scopes.insert(name.clone(), t);
                }
            }
        }
        Some(other) => c.wrong_type(&sp, "an object mapping scope names to webhooks", other),
        None => c.problem(&sp, "missing (required): name each webhook here"),
    }
    let default_scope = default_scope(c, w, p, "webhook", scopes.keys());
    let timeout = c.uint(w, "timeout_s", p, 1, 600);
    Some(WebhookConfig {
        scopes,
        default_scope,
        timeout: timeout.map_or(DEFAULT_SEND_TIMEOUT, Duration::from_secs),
    })
}

fn webhook_target(c: &mut Checker, v: &Value, p: &str, base: &Path) -> Option<WebhookTarget> {
    let t = c.object(v, p, WEBHOOK_SCOPE)?;
    let url = match t.get("url") {
        Some(u) => secret_value(c, u, &join(p, "url"), base),
        None => {
            c.problem(join(p, "url"), "missing (required)");
            None
        }
    };
    let url = url.filter(|u| http_url(c, u.expose(), &join(p, "url")).is_some());
    if t.get("preset")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("ntfy"))
        && let Some(u) = url.as_ref().and_then(|u| url::Url::parse(u.expose()).ok())
        && u.path_segments().is_none_or(|mut s| s.all(str::is_empty))
    {
        c.problem(
            join(p, "url"),
            "an ntfy URL names its topic: https://ntfy.example.org/<topic>",
        );
    }
    let method = c
        .choice(t, "method", p, &METHODS)
        .unwrap_or("POST")
        .to_string();
    let mut headers = Vec::new();
    match t.get("headers") {
        None => {}
        Some(Value::Object(obj)) => {
            for (name, value) in obj {
                let hp = join(&join(p, "headers"), name);
                if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    c.problem(&hp, format!("{name:?} is not a valid HTTP header name"));
                    continue;
                }
                if let Some(s) = secret_value(c, value, &hp, base) {
                    if reqwest::header::HeaderValue::from_str(s.expose()).is_err() {
                        c.problem(
                            &hp,
                            "the value is not a valid HTTP header value (control characters or non-ASCII)",
                        );
                        continue;
                    }
                    headers.push((name.clone(), s));
                }
            }
        }
        Some(other) => c.wrong_type(
            &join(p, "headers"),
            "an object mapping header names to values",
            other,
        ),
    }
    let preset = c.choice(t, "preset", p, &Preset::CHOICES);
    let body = match (t.contains_key("preset"), t.get("body")) {
        (true, Some(_)) => {
            c.problem(
                join(p, "body"),
                "set either preset or body, not both (a preset is a body of its own)",
            );
            return None;
        }
        (true, None) => WebhookBody::Preset(preset?),
        (false, Some(b)) => {
            crate::messengers::webhook::check_template(b)
                .map_err(|e| c.problem(join(p, "body"), e))
                .ok()?;
            WebhookBody::Template(b.clone())
        }
        (false, None) => WebhookBody::Fields,
    };
    Some(WebhookTarget {
        url: url?,
        method,
        headers,
        body,
    })
}

/// Webhooks: Microsoft Teams (Workflows), Slack, Mattermost, ntfy, or any HTTP endpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(rename = "Webhook")]
#[serde(deny_unknown_fields)]
pub struct File {
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
    #[schemars(schema_with = "secret_schema")]
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

fn preset(_: &mut SchemaGenerator) -> Schema {
    words(&["teams", "slack", "mattermost", "ntfy"], false)
}

fn method(_: &mut SchemaGenerator) -> Schema {
    words(&["post", "put", "patch"], false)
}

fn headers(generator: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "propertyNames": {"pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"},
        "additionalProperties": secret_schema(generator),
    })
}
