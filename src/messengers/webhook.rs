//! Webhooks: one HTTP request per notification, to chat tools (Microsoft Teams, Slack,
//! Mattermost, ntfy) or to anything else that takes a request.
//!
//! One mechanism makes every body: a *template*, a JSON value whose strings may name the
//! notification's fields in `{{…}}`. A preset is such a template written to its
//! service's documented format (plus the service's escaping, and for ntfy the topic taken
//! from the URL); an operator's `body` is another. Because substitution happens inside
//! JSON strings, no field can break the document: a string that is exactly one
//! `{{field}}` takes the field's JSON value (so `"{{priority}}"` stays a number), any
//! other string has the fields' text put in. A template that is one string at the top is
//! sent as plain text. Without a preset or a body, the request carries every field as one
//! JSON object.
//!
//! The URL is a secret (Slack's, Teams' and Mattermost's webhook URLs are their own
//! credential): errors are reported without it.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

mod config;

pub use config::{Preset, WebhookBody, WebhookConfig, WebhookTarget};

use super::probe::Check;
use super::render::{self, Notification};
use super::{Deliver, SendError, Service};
use crate::event::Severity;

/// The fields a template may name, with what they hold (for errors and the docs).
pub const FIELDS: [(&str, &str); 16] = [
    ("instrument", "the instrument's name"),
    (
        "title",
        "one line: \"[instrument] MAJOR: first line of the text\"",
    ),
    (
        "text",
        "the whole message as plain text (every event of a digest)",
    ),
    ("event", "the (first) event's name"),
    (
        "severity",
        "the worst severity: info, warning, minor or major",
    ),
    (
        "severity_word",
        "the same in capitals: INFO, WARNING, MINOR, MAJOR",
    ),
    ("emoji", "a colored circle for the severity"),
    (
        "priority",
        "the severity as a number: info 2, warning 3, minor 4, major 5",
    ),
    (
        "count",
        "how many events the message accounts for (a number)",
    ),
    ("message", "the (first) event's text"),
    ("source", "the (first) event's source, or empty"),
    ("key", "the (first) event's dedup key"),
    (
        "details",
        "the (first) event's details as plain text (a traceback, an alert's details), or empty",
    ),
    ("time", "the (first) event's time, RFC 3339"),
    (
        "links",
        "the (first) event's URL actions, one \"label: url\" line each, or empty",
    ),
    (
        "card_actions",
        "the (first) event's URL actions as Adaptive Card Action.OpenUrl objects (a list)",
    ),
];

/// Checks that a `body` template names only known fields: a typo is a config error, not
/// an empty string in every message.
pub fn check_template(t: &Value) -> Result<(), String> {
    let mut unknown = Vec::new();
    visit_strings(t, &mut |s| {
        for name in placeholders(s) {
            if !FIELDS.iter().any(|(f, _)| *f == name) && !unknown.contains(&name) {
                unknown.push(name);
            }
        }
    });
    if unknown.is_empty() {
        return Ok(());
    }
    let known: Vec<&str> = FIELDS.iter().map(|(f, _)| *f).collect();
    Err(format!(
        "unknown field {} in the template; the fields are {}",
        unknown
            .iter()
            .map(|u| format!("{{{{{u}}}}}"))
            .collect::<Vec<_>>()
            .join(", "),
        known.join(", ")
    ))
}

fn visit_strings<'v>(v: &'v Value, f: &mut impl FnMut(&'v str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|i| visit_strings(i, f)),
        Value::Object(map) => map.values().for_each(|i| visit_strings(i, f)),
        _ => {}
    }
}

/// The field names in `s`, `{{ name }}` with or without spaces.
fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// A notification's fields, as the templates see them.
pub fn fields(n: &Notification<'_>) -> Map<String, Value> {
    let first = n.items[0].event;
    let worst = n
        .items
        .iter()
        .map(|i| i.event.severity)
        .max()
        .unwrap_or(Severity::Info);
    // The links go in a field of their own: chat tools show `text` in a code block,
    // where a URL is not a link.
    let mut text = render::plain_text(n, false);
    let files: Vec<&str> = n.attachments().map(|a| a.filename.as_str()).collect();
    if !files.is_empty() {
        text.push_str(&format!(
            "\n(files not sent by a webhook: {})\n",
            files.join(", ")
        ));
    }
    let mut m = Map::new();
    m.insert("instrument".into(), json!(n.instrument));
    m.insert("title".into(), json!(render::title(n)));
    m.insert("text".into(), json!(text.trim_end()));
    m.insert("event".into(), json!(first.name));
    m.insert("severity".into(), json!(worst.as_str()));
    m.insert(
        "severity_word".into(),
        json!(worst.as_str().to_ascii_uppercase()),
    );
    m.insert("emoji".into(), json!(render::severity_mark(worst)));
    m.insert("priority".into(), json!(priority(worst)));
    m.insert("count".into(), json!(n.event_count()));
    m.insert("message".into(), json!(first.message.text()));
    m.insert(
        "source".into(),
        json!(first.source.as_deref().unwrap_or("")),
    );
    m.insert("key".into(), json!(first.key));
    m.insert(
        "details".into(),
        json!(
            first
                .details
                .as_ref()
                .map(render::details_text)
                .unwrap_or_default()
        ),
    );
    m.insert("links".into(), json!(render::links_text(first)));
    let card_actions: Vec<Value> = first
        .actions
        .iter()
        .filter_map(|a| {
            a.absolute_url()
                .map(|u| json!({"type": "Action.OpenUrl", "title": a.label, "url": u}))
        })
        .collect();
    m.insert("card_actions".into(), Value::Array(card_actions));
    m.insert("time".into(), json!(first.time.to_rfc3339()));
    m
}

/// ntfy's priorities: 1 min, 2 low, 3 default, 4 high, 5 urgent.
fn priority(s: Severity) -> u8 {
    match s {
        Severity::Info => 2,
        Severity::Warning => 3,
        Severity::Minor => 4,
        Severity::Major => 5,
    }
}

/// Fills a template. `escape` is the service's escaping of inserted text (Slack's).
pub fn fill(template: &Value, fields: &Map<String, Value>, escape: fn(&str) -> String) -> Value {
    match template {
        Value::String(s) => {
            let names = placeholders(s);
            if names.len() == 1 && is_single(s) {
                return match fields.get(names[0]) {
                    Some(Value::String(v)) => Value::String(escape(v)),
                    Some(v) => v.clone(),
                    None => Value::String(String::new()),
                };
            }
            Value::String(substitute(s, fields, escape))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| fill(i, fields, escape)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, fields, escape)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `"{{name}}"` (spaces inside the braces allowed) and nothing else around it.
fn is_single(s: &str) -> bool {
    s.starts_with("{{") && s.len() >= 4 && s[2..].find("}}") == Some(s.len() - 4)
}

fn substitute(s: &str, fields: &Map<String, Value>, escape: fn(&str) -> String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        match fields.get(after[..end].trim()) {
            Some(Value::String(v)) => out.push_str(&escape(v)),
            Some(v) => out.push_str(&v.to_string()),
            None => {}
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn no_escape(s: &str) -> String {
    s.to_string()
}

/// The most text a service shows of one message; a longer one is refused (ntfy,
/// Teams) or cut by the service (Slack, Mattermost). A traceback can be far longer.
fn max_text_chars(p: Preset) -> usize {
    match p {
        Preset::Teams => 20_000,
        Preset::Slack => 35_000,
        Preset::Mattermost => 15_000,
        Preset::Ntfy => 3_500,
    }
}

/// The fields with `text` and `title` cut to what the preset's service takes, marked.
fn cut_text(mut f: Map<String, Value>, p: Preset) -> Map<String, Value> {
    for (field, max) in [("text", max_text_chars(p)), ("title", 250)] {
        if let Some(Value::String(s)) = f.get_mut(field)
            && s.chars().count() > max
        {
            *s = s.chars().take(max).collect::<String>() + "\n[…]";
        }
    }
    f
}

/// Mattermost notifies a whole channel for `@channel`, `@all` and `@here` outside a code
/// block: a protocol line must not.
fn mattermost_escape(s: &str) -> String {
    s.replace('@', "@\u{200B}")
}

/// Slack's mrkdwn: `&`, `<` and `>` are control characters and must be escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The body template of a preset, in its service's documented format.
pub fn preset_template(p: Preset) -> Value {
    match p {
        // Teams Workflows ("Post to a channel when a webhook request is received")
        // take a message with Adaptive Card attachments.
        Preset::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        {"type": "TextBlock", "text": "{{emoji}} {{title}}", "weight": "Bolder",
                         "size": "Medium", "wrap": true},
                        {"type": "FactSet", "facts": [
                            {"title": "Instrument", "value": "{{instrument}}"},
                            {"title": "Severity", "value": "{{severity_word}}"},
                            {"title": "Event", "value": "{{event}}"}
                        ]},
                        {"type": "TextBlock", "text": "{{text}}", "wrap": true, "fontType": "Monospace"}
                    ],
                    "actions": "{{card_actions}}"
                }
            }]
        }),
        Preset::Slack => json!({
            "text": "{{emoji}} *{{title}}*\n```{{text}}```\n{{links}}"
        }),
        Preset::Mattermost => json!({
            "text": "{{emoji}} **{{title}}**\n```\n{{text}}\n```\n{{links}}"
        }),
        // ntfy's JSON publishing; the topic is added from the URL.
        Preset::Ntfy => json!({
            "title": "{{title}}",
            "message": "{{text}}",
            "priority": "{{priority}}",
            "tags": ["{{severity}}", "{{instrument}}"]
        }),
    }
}

/// The request a notification makes for a target: the URL, the content type, the body.
pub fn request_body(t: &WebhookTarget, n: &Notification<'_>) -> (String, &'static str, Vec<u8>) {
    let f = fields(n);
    let url = t.url.expose().to_string();
    match &t.body {
        WebhookBody::Fields => {
            let mut doc = f;
            let events: Vec<Value> = n
                .items
                .iter()
                .map(|i| {
                    json!({
                        "event": i.event.name,
                        "severity": i.event.severity.as_str(),
                        "source": i.event.source,
                        "key": i.event.key,
                        "message": i.event.message.text(),
                        "details": i.event.details.as_ref().map(render::details_text),
                        "links": i.event.actions.iter().filter_map(|a| a.absolute_url().map(|u| json!({"label": a.label, "url": u}))).collect::<Vec<_>>(),
                        "time": i.event.time.to_rfc3339(),
                        "repeated": i.repeat.map(|r| r.count),
                    })
                })
                .collect();
            doc.insert("events".into(), Value::Array(events));
            let more: Map<String, Value> =
                n.more.iter().map(|(k, c)| (k.clone(), json!(c))).collect();
            doc.insert("more".into(), Value::Object(more));
            (
                url,
                "application/json",
                Value::Object(doc).to_string().into_bytes(),
            )
        }
        // A template that is one string is text, whatever its one field holds.
        WebhookBody::Template(Value::String(tpl)) => {
            let text = match fill(&Value::String(tpl.clone()), &f, no_escape) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            encode(url, Value::String(text))
        }
        WebhookBody::Template(tpl) => encode(url, fill(tpl, &f, no_escape)),
        WebhookBody::Preset(Preset::Ntfy) => {
            let (root, topic) = ntfy_split(&url);
            let f = cut_text(f, Preset::Ntfy);
            let mut body = fill(&preset_template(Preset::Ntfy), &f, no_escape);
            if let Some(o) = body.as_object_mut() {
                o.insert("topic".into(), json!(topic));
            }
            encode(root, body)
        }
        WebhookBody::Preset(p) => {
            let escape = match p {
                Preset::Slack => slack_escape,
                Preset::Mattermost => mattermost_escape,
                _ => no_escape,
            };
            encode(url, fill(&preset_template(*p), &cut_text(f, *p), escape))
        }
    }
}

fn encode(url: String, body: Value) -> (String, &'static str, Vec<u8>) {
    match body {
        Value::String(s) => (url, "text/plain; charset=utf-8", s.into_bytes()),
        other => (url, "application/json", other.to_string().into_bytes()),
    }
}

/// ntfy publishes JSON to the server's root, with the topic in the body: the topic is the
/// URL's last path segment.
fn ntfy_split(url: &str) -> (String, String) {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let mut segments: Vec<String> = u
                .path_segments()
                .map(|s| s.filter(|x| !x.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            let topic = segments.pop().unwrap_or_default();
            if segments.is_empty() {
                u.set_path("/");
            } else {
                u.set_path(&format!("/{}/", segments.join("/")));
            }
            (u.to_string(), topic)
        }
        Err(_) => (url.to_string(), String::new()),
    }
}

pub struct Webhook {
    pub timeout: Duration,
    client: super::http::Client,
    scopes: std::collections::BTreeMap<String, WebhookTarget>,
}

impl Webhook {
    pub fn new(cfg: &WebhookConfig) -> Result<Webhook, String> {
        Ok(Webhook {
            timeout: cfg.timeout,
            client: super::http::client(cfg.timeout)?,
            scopes: cfg.scopes.clone(),
        })
    }
}

impl Deliver for Webhook {
    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let t = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no webhook scope {scope:?}")))?;
        let (url, content_type, body) = request_body(t, n);
        let method = reqwest::Method::from_bytes(t.method.as_bytes())
            .map_err(|_| SendError::permanent(format!("bad method {:?}", t.method)))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in &t.headers {
            // Both were checked when the config was read.
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value.expose()),
            ) {
                headers.insert(k, v);
            }
        }
        let response = self
            .client
            .request(method, &url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| {
                SendError::transient(format!(
                    "webhook {scope}: {}",
                    super::probe::with_causes(&e.without_url())
                ))
            })?;
        super::http::classify(scope, response).await
    }

    /// A webhook cannot be tried without posting a message; the probe connects to its
    /// host, which finds a wrong address, a closed port or a firewall.
    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        for (scope, t) in &self.scopes {
            let Ok(u) = url::Url::parse(t.url.expose()) else {
                continue;
            };
            // An IPv6 host comes in brackets, which a socket address does not take.
            let host = u
                .host_str()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = u.port_or_known_default().unwrap_or(443);
            let step = format!("connect {scope} ({host}:{port})");
            let connect = tokio::net::TcpStream::connect((host.as_str(), port));
            match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok(_)) => report(Check::ok(
                    Service::Webhook,
                    step,
                    Some("not posted to: use test-notify to send a message".into()),
                )),
                Ok(Err(e)) => report(Check::failed(Service::Webhook, step, e.to_string())),
                Err(_) => report(Check::failed(
                    Service::Webhook,
                    step,
                    format!("no answer within {} s", self.timeout.as_secs()),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_known_fields() {
        assert!(check_template(&json!({"a": "{{title}} {{ text }}"})).is_ok());
        let e = check_template(&json!({"a": ["{{titel}}"]})).unwrap_err();
        assert!(e.contains("{{titel}}") && e.contains("title"), "{e}");
    }

    #[test]
    fn a_lone_field_keeps_its_type_and_text_is_escaped_once() {
        let mut f = Map::new();
        f.insert("count".into(), json!(3));
        f.insert("title".into(), json!("a <b> & c"));
        let out = fill(
            &json!({"n": "{{count}}", "t": "x {{title}}", "lone": "{{ title }}", "s": " {{count}}"}),
            &f,
            slack_escape,
        );
        assert_eq!(
            out,
            json!({"n": 3, "t": "x a &lt;b&gt; &amp; c", "lone": "a &lt;b&gt; &amp; c", "s": " 3"})
        );
    }

    #[test]
    fn ntfy_topic_from_the_url() {
        assert_eq!(
            ntfy_split("https://ntfy.example.org/beamline-7"),
            (
                "https://ntfy.example.org/".to_string(),
                "beamline-7".to_string()
            )
        );
        assert_eq!(
            ntfy_split("http://127.0.0.1:8080/ntfy/alerts/"),
            (
                "http://127.0.0.1:8080/ntfy/".to_string(),
                "alerts".to_string()
            )
        );
    }
}
