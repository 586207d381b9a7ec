//! The `webhook` section: one webhook per scope, its URL and header values possibly kept
//! out of the file (they are credentials), a preset or a body template. [`File`]
//! describes the section once — keys, forms, schema — and is read with
//! `settings::section`; [`validate`] reads the secrets and checks across keys, making
//! the resolved [`WebhookConfig`], whose `Serialize` is the masked view.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

use super::Webhook;
use crate::messengers::ServiceConfig;
use crate::settings::check::{Checker, join};
use crate::settings::forms::{
    Choices, NonBlank, SecretRef, Text, Whole, Word, shown, shown_pairs, shown_secret_url,
    shown_secs,
};
use crate::settings::schema::{NON_BLANK, secret_schema, words};
use crate::settings::section::{self, Field, Named, Wording};
use crate::settings::values::http_url;
use crate::settings::{DEFAULT_SEND_TIMEOUT, Secret, chosen_default_scope, mask_url};

/// The methods a webhook may use: the ones that carry a body.
#[derive(Debug, Clone, Copy)]
pub struct Method(&'static str);

impl Choices for Method {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("POST", Method("POST")),
        ("PUT", Method("PUT")),
        ("PATCH", Method("PATCH")),
    ];
}

/// Chat tools and anything else that takes an HTTP request per message.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookConfig {
    /// Scope name → where and how to post.
    pub scopes: BTreeMap<String, WebhookTarget>,
    /// As [`MailConfig::default_scope`], from `webhook.default_scope`.
    pub default_scope: Option<String>,
    /// The longest one request may take.
    #[serde(rename = "timeout_s", serialize_with = "shown_secs")]
    pub timeout: Duration,
}

/// One webhook: its address, and how a notification becomes a request body.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookTarget {
    /// An http(s) URL. Slack's, Teams' and Mattermost's webhook URLs are their own
    /// credential, so the URL is a secret: never printed, only its host.
    #[serde(serialize_with = "shown_secret_url")]
    pub url: Secret,
    /// `POST` (the default), `PUT` or `PATCH`.
    pub method: String,
    /// Extra request headers; values may be read from a file or the environment, and are
    /// never printed.
    #[serde(serialize_with = "shown_pairs")]
    pub headers: Vec<(String, Secret)>,
    #[serde(flatten)]
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

/// Shown as the key that chose it: `preset`, `body`, or none.
impl Serialize for WebhookBody {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            WebhookBody::Preset(p) => map.serialize_entry("preset", p.as_str())?,
            WebhookBody::Template(v) => map.serialize_entry("body", v)?,
            WebhookBody::Fields => {}
        }
        map.end()
    }
}

impl Choices for Preset {
    const CHOICES: &'static [(&'static str, Preset)] = &[
        ("teams", Preset::Teams),
        ("slack", Preset::Slack),
        ("mattermost", Preset::Mattermost),
        ("ntfy", Preset::Ntfy),
    ];
}

impl Preset {
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
        vec![
            ("webhook", section::keys::<File>()),
            ("webhook.scopes.*", section::keys::<WebhookScope>()),
        ]
    }
    // Slack's and Teams' incoming webhooks allow about one a second.
    const PER_MINUTE: Option<u32> = Some(20);
    const SHOWN_PER_MESSAGE: usize = 10;
    type File = File;
    type Messenger = Webhook;

    fn load(c: &mut Checker, v: &Value, base: &Path) -> Option<Self> {
        section::load(c, v, Self::NAME, |c, file| validate(c, file, base))
    }

    fn masked(&self) -> Value {
        shown(self)
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

/// What the section says, its secrets read, defaults filled; every problem of its
/// values is noted already.
fn validate(c: &mut Checker, file: File, base: &Path) -> WebhookConfig {
    let p = "webhook";
    let scopes: BTreeMap<String, WebhookTarget> = file
        .scopes
        .required_or(
            c,
            &join(p, "scopes"),
            "missing (required): name each webhook here",
        )
        .map(|s| s.0)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, scope)| {
            let target = target(c, scope, &join(&join(p, "scopes"), &name), base)?;
            Some((name, target))
        })
        .collect();
    let default_scope = chosen_default_scope(
        c,
        file.default_scope.map(|s| s.0),
        p,
        "webhook",
        scopes.keys(),
    );
    WebhookConfig {
        scopes,
        default_scope,
        timeout: file
            .timeout_s
            .given()
            .map_or(DEFAULT_SEND_TIMEOUT, |s| Duration::from_secs(s.0)),
    }
}

fn target(c: &mut Checker, t: WebhookScope, p: &str, base: &Path) -> Option<WebhookTarget> {
    let url = t.url.required(c, &join(p, "url"));
    let url = url
        .and_then(|u| u.resolve(c, &join(p, "url"), base))
        .filter(|u| http_url(c, u.expose(), &join(p, "url")).is_some());
    if matches!(t.preset, Field::Given(Word(Preset::Ntfy)))
        && let Some(u) = url.as_ref().and_then(|u| url::Url::parse(u.expose()).ok())
        && u.path_segments().is_none_or(|mut s| s.all(str::is_empty))
    {
        c.problem(
            join(p, "url"),
            "an ntfy URL names its topic: https://ntfy.example.org/<topic>",
        );
    }
    let method = t.method.given().map_or("POST", |m| m.0.0).to_string();
    let mut headers = Vec::new();
    for (name, value) in t.headers.given().map(|h| h.0).unwrap_or_default() {
        let hp = join(&join(p, "headers"), &name);
        if let Some(s) = value.resolve(c, &hp, base) {
            if reqwest::header::HeaderValue::from_str(s.expose()).is_err() {
                c.problem(
                    &hp,
                    "the value is not a valid HTTP header value (control characters or non-ASCII)",
                );
                continue;
            }
            headers.push((name, s));
        }
    }
    let body = match (t.preset, t.body.given()) {
        (Field::Absent, None) => WebhookBody::Fields,
        (Field::Absent, Some(b)) => {
            crate::messengers::webhook::check_template(&b)
                .map_err(|e| c.problem(join(p, "body"), e))
                .ok()?;
            WebhookBody::Template(b)
        }
        (_, Some(_)) => {
            c.problem(
                join(p, "body"),
                "set either preset or body, not both (a preset is a body of its own)",
            );
            return None;
        }
        (preset, None) => WebhookBody::Preset(preset.given()?.0),
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
    pub scopes: Field<Named<WebhookScope, Scopes>>,
    /// The scope of route entries without `scope`, and of the implicit routing; one of the
    /// scopes. Default: `default` if that scope exists.
    #[serde(default)]
    #[schemars(pattern(NON_BLANK))]
    pub default_scope: Field<Text<NonBlank>>,
    /// The longest one request may take, in seconds.
    #[serde(default)]
    #[schemars(extend("default" = 30))]
    pub timeout_s: Field<Whole<1, 600>>,
}

/// `scopes` in problems.
pub struct Scopes;

impl Wording for Scopes {
    const EXPECTED: &'static str = "an object mapping scope names to webhooks";
    const EMPTY: Option<&'static str> = Some("no scopes: add at least one webhook");
}

/// `headers` in problems; a header's name is checked before its value is read.
pub struct Headers;

impl Wording for Headers {
    const EXPECTED: &'static str = "an object mapping header names to values";

    fn key(name: &str) -> Result<(), String> {
        match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{name:?} is not a valid HTTP header name")),
        }
    }
}

/// One webhook. The body is a preset's, or `body`, or every field as a JSON object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("not" = {"required": ["preset", "body"]}))]
pub struct WebhookScope {
    /// The webhook's http(s) URL; a secret (it is the webhook's credential), so it may be
    /// read from the environment or a file. For ntfy, the topic's URL.
    pub url: Field<SecretRef>,
    /// The body in a service's format: `teams` (Workflows webhook, an Adaptive Card),
    /// `slack`, `mattermost`, `ntfy`.
    #[serde(default)]
    pub preset: Field<Word<Preset>>,
    /// `POST`, `PUT` or `PATCH`.
    #[serde(default)]
    #[schemars(schema_with = "method", extend("default" = "POST"))]
    pub method: Field<Word<Method>>,
    /// Extra request headers: name → value, or `{"env": "NAME"}` / `{"file": "path"}`.
    #[serde(default)]
    #[schemars(schema_with = "headers")]
    pub headers: Field<Named<SecretRef, Headers>>,
    /// A body template: any JSON whose strings may name fields in `{{…}}` (`title`, `text`,
    /// `event`, `severity`, `severity_word`, `emoji`, `priority`, `count`, `message`,
    /// `source`, `key`, `details`, `time`, `instrument`). A string that is one field keeps
    /// the field's type; a template that is one string is sent as plain text.
    #[serde(default)]
    pub body: Field<Value>,
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
