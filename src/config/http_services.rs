//! The sections of the services reached by plain HTTP: `webhook` and `alertmanager`.
//!
//! They share what `mail` and `telegram` do not: URLs, and values that may be secrets
//! kept out of the file (`{"env": "NAME"}`, `{"file": "path"}`), because a Slack or
//! Teams webhook URL is itself the credential and an `Authorization` header is one too.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::check::{Checker, join};
use super::validate::{default_scope, resolve};
use super::{
    ALERTMANAGER_LABELS, AlertmanagerConfig, DEFAULT_SEND_TIMEOUT, Preset, Secret, WebhookBody,
    WebhookConfig, WebhookTarget,
};

pub const WEBHOOK: &[&str] = &["scopes", "default_scope", "timeout_s"];
pub const WEBHOOK_SCOPE: &[&str] = &["url", "preset", "method", "headers", "body"];
pub const ALERTMANAGER: &[&str] = &["urls", "labels", "repost_interval", "timeout_s"];
/// The keys of a value kept out of the file.
const SECRET_REF: &[&str] = &["env", "file"];

/// The methods a webhook may use: the ones that carry a body.
const METHODS: [(&str, &str); 3] = [("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH")];

/// Alertmanager's default `resolve_timeout` is 5 minutes: a repost interval at or above it
/// would let alerts without an end flicker to resolved between posts.
const MAX_REPOST: Duration = Duration::from_secs(240);

/// A value given in the file (`"…"`), in an environment variable (`{"env": "NAME"}`) or
/// in a file (`{"file": "path"}`, a trailing newline dropped). Never echoed in a problem.
fn secret_value(c: &mut Checker, v: &Value, path: &str, base: &Path) -> Option<Secret> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
        Value::String(_) => {
            c.problem(path, "expected a value, found an empty string");
            None
        }
        Value::Object(_) => {
            let o = c.object(v, path, SECRET_REF)?;
            match (o.get("env"), o.get("file")) {
                (Some(_), None) => {
                    let name = c.non_empty(o, "env", path)?;
                    match std::env::var(&name) {
                        Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                        Ok(_) => {
                            c.problem(
                                join(path, "env"),
                                format!("the environment variable {name} is empty"),
                            );
                            None
                        }
                        Err(_) => {
                            c.problem(
                                join(path, "env"),
                                format!("the environment variable {name} is not set"),
                            );
                            None
                        }
                    }
                }
                (None, Some(_)) => {
                    let f = c.non_empty(o, "file", path)?;
                    let file = resolve(base, &f);
                    match std::fs::read_to_string(&file) {
                        Ok(s) if !s.trim().is_empty() => Some(Secret::new(s.trim())),
                        Ok(_) => {
                            c.problem(join(path, "file"), format!("{} is empty", file.display()));
                            None
                        }
                        Err(e) => {
                            c.problem(
                                join(path, "file"),
                                format!("cannot read {}: {e}", file.display()),
                            );
                            None
                        }
                    }
                }
                _ => {
                    c.problem(path, "expected exactly one of \"env\" or \"file\"");
                    None
                }
            }
        }
        other => {
            c.wrong_type(
                path,
                "a string, {\"env\": \"NAME\"} or {\"file\": \"path\"}",
                other,
            );
            None
        }
    }
}

/// An http(s) URL with a host. The text is not echoed: it may hold a token.
fn http_url(c: &mut Checker, text: &str, path: &str) -> Option<url::Url> {
    match url::Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(u),
        Ok(u) => {
            c.problem(
                path,
                format!(
                    "expected an http:// or https:// URL with a host, found a {}: URL",
                    u.scheme()
                ),
            );
            None
        }
        Err(e) => {
            c.problem(path, format!("expected an http:// or https:// URL ({e})"));
            None
        }
    }
}

pub fn webhook(c: &mut Checker, v: &Value, base: &Path) -> Option<WebhookConfig> {
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

pub fn alertmanager(c: &mut Checker, v: &Value) -> Option<AlertmanagerConfig> {
    let p = "alertmanager";
    let a = c.object(v, p, ALERTMANAGER)?;
    let up = join(p, "urls");
    let mut urls = Vec::new();
    match a.get("urls") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                let ip = super::check::index(&up, i);
                match item.as_str() {
                    Some(s) => match http_url(c, s.trim().trim_end_matches('/'), &ip) {
                        Some(u) if u.query().is_some() || u.fragment().is_some() => c.problem(
                            &ip,
                            "expected a base URL without ?query or #fragment (alerts go to <url>/api/v2/alerts)",
                        ),
                        Some(u) => urls.push(u),
                        None => {}
                    },
                    None => c.wrong_type(&ip, "a URL (a string)", item),
                }
            }
        }
        Some(Value::Array(_)) => c.problem(&up, "no URLs: list at least one Alertmanager"),
        Some(other) => c.wrong_type(&up, "a list of Alertmanager URLs", other),
        None => c.problem(&up, "missing (required): list the Alertmanager URLs"),
    }
    let mut labels = BTreeMap::new();
    match a.get("labels") {
        None => {}
        Some(Value::Object(obj)) => {
            for (name, value) in obj {
                let lp = join(&join(p, "labels"), name);
                if ALERTMANAGER_LABELS.contains(&name.as_str()) {
                    c.problem(
                        &lp,
                        format!("{name:?} is set by protowatch for every alert; choose another label name"),
                    );
                    continue;
                }
                if !is_label_name(name) {
                    c.problem(
                        &lp,
                        format!("{name:?} is not a label name: letters, digits and _, not starting with a digit (nor with __)"),
                    );
                    continue;
                }
                match value.as_str() {
                    Some(s) if !s.is_empty() => {
                        labels.insert(name.clone(), s.to_string());
                    }
                    Some(_) => c.problem(&lp, "expected a label value, found an empty string"),
                    None => c.wrong_type(&lp, "a label value (a string)", value),
                }
            }
        }
        Some(other) => c.wrong_type(
            &join(p, "labels"),
            "an object mapping label names to values",
            other,
        ),
    }
    let repost_interval = c
        .duration(a, "repost_interval", p, Duration::from_secs(1), MAX_REPOST)
        .unwrap_or(Duration::from_secs(60));
    let timeout = c.uint(a, "timeout_s", p, 1, 600);
    Some(AlertmanagerConfig {
        urls,
        labels,
        repost_interval,
        timeout: timeout.map_or(Duration::from_secs(10), Duration::from_secs),
    })
}

/// Prometheus' label names: `[a-zA-Z_][a-zA-Z0-9_]*`, `__` reserved for internal use.
fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names() {
        assert!(is_label_name("facility") && is_label_name("_x1"));
        assert!(!is_label_name("1x") && !is_label_name("a-b") && !is_label_name("__name"));
        assert!(!is_label_name(""));
    }
}
