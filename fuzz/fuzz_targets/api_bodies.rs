//! Fuzz target `api_bodies`: arbitrary JSON text as the body of `PUT /api/alerts`
//! (`api::new_alert`) and of `POST /api/notify` (`api::notify_body`), and arbitrary
//! bytes as a request head for the access checks (`api::verdict`).
//!
//! Scripts and dashboards send these bodies, and a wrong one must be a 400 naming the
//! field, never a panic in the agent that watches the instrument; and no head may pass
//! the checks without the token, with a foreign `Host`, with a foreign `Origin` on a
//! change, or with a body over its limit.
//!
//! Input: the body's bytes, parsed as the HTTP API's JSON extractor does (`serde_json`
//! from bytes; what it refuses never reaches the readers); the same bytes as a request
//! line and header lines. The API reads no file a body names, so any `path` is safe.
//!
//! Invariants, besides not panicking:
//! - an accepted alert has the non-empty key and message that the store and the
//!   listing need, `ttl` > 0, a list of action names and a data object;
//! - an accepted notification has a non-empty event name and text, and attachments
//!   with a bare, non-empty file name within the size limit;
//! - what was accepted, written back as a body, reads back the same (the readers
//!   normalise once: no field changes meaning on a second pass).

#![no_main]

use libfuzzer_sys::fuzz_target;
use protowatch::api::{NotifyBody, new_alert, notify_body, verdict};
use protowatch::event::MAX_ATTACHMENT_BYTES;
use serde_json::{Map, Value, json};

fn check_alert(body: &Value) {
    let Ok(a) = new_alert(body) else { return };
    let key = a.key.strip_prefix("custom|").unwrap_or_else(|| {
        panic!(
            "an API alert's key is not in the custom namespace: {:?}",
            a.key
        )
    });
    assert!(!key.trim().is_empty(), "empty key accepted");
    assert!(!a.message.trim().is_empty(), "empty message accepted");
    if let Some(d) = &a.details {
        assert!(!d.trim().is_empty(), "an empty optional field kept");
    }
    assert!(a.ttl_s.is_none_or(|t| t > 0));
    for act in &a.actions {
        assert!(!act.label.trim().is_empty(), "an action without a label");
        let s = act.action.as_str();
        let shaped = s.starts_with('_')
            || s.starts_with('/')
            || s.starts_with("http://")
            || s.starts_with("https://");
        assert!(shaped, "an action that is none of OnTakt's forms: {s:?}");
        assert!(!s.chars().any(char::is_whitespace), "white space in {s:?}");
    }
    assert!(a.data.is_object(), "data: {}", a.data);

    let back = json!({
        "key": key,
        "message": a.message,
        "details": a.details,
        "severity": a.severity.as_str(),
        "ttl": a.ttl_s,
        "machine_id": a.machine_id,
        "timestamp": a.timestamp_ms.map(|ms| ms as f64 / 1000.0),
        "actions": protowatch::alerts::actions_json(&a.actions),
        "data": a.data,
    });
    let b = new_alert(&back).unwrap_or_else(|e| panic!("accepted, written back refused: {e:?}"));
    assert_eq!(
        (&a.key, &a.message, &a.details, a.severity, a.ttl_s),
        (&b.key, &b.message, &b.details, b.severity, b.ttl_s)
    );
    assert_eq!(
        (&a.machine_id, &a.actions, &a.data, a.timestamp_ms),
        (&b.machine_id, &b.actions, &b.data, b.timestamp_ms)
    );
}

fn check_notify(body: &Value) {
    let Ok(n) = notify_body(body) else { return };
    assert!(!n.event.trim().is_empty(), "empty event accepted");
    assert!(!n.message.text().trim().is_empty(), "empty text accepted");
    for a in &n.message.attachments {
        assert!(!a.filename.is_empty(), "an attachment without a name");
        assert!(
            !a.filename.contains(['/', '\\']),
            "a path as a file name: {:?}",
            a.filename
        );
        assert!(a.data.len() <= MAX_ATTACHMENT_BYTES);
    }

    // Written back the way a client would send it: spans, tags, base64 attachments.
    let attachments: Vec<Value> = n
        .message
        .attachments
        .iter()
        .map(|a| {
            let mut v = serde_json::to_value(a).unwrap_or_else(|e| panic!("{e}"));
            if let Some(obj) = v.as_object_mut()
                && let Some(data) = obj.remove("data")
            {
                obj.insert("data_base64".into(), data);
            }
            v
        })
        .collect();
    let mut message = Map::new();
    message.insert(
        "text".into(),
        serde_json::to_value(&n.message.spans).unwrap_or_else(|e| panic!("{e}")),
    );
    message.insert("tags".into(), json!(n.message.tags));
    message.insert("attachments".into(), Value::Array(attachments));
    let back = json!({
        "event": n.event,
        "severity": n.severity.as_str(),
        "message": message,
    });
    let b: NotifyBody =
        notify_body(&back).unwrap_or_else(|e| panic!("accepted, written back refused: {e:?}"));
    assert_eq!(
        (&n.event, n.severity, &n.message),
        (&b.event, b.severity, &b.message)
    );
}

/// The token the access checks are run with.
const TOKEN: &str = "fuzz-token-0123456789";

/// Reads `data` as `METHOD PATH\nName: value\n…` and checks what passes.
fn check_access(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let Ok(method) = http::Method::from_bytes(parts.next().unwrap_or("").as_bytes()) else {
        return;
    };
    let path = parts.next().unwrap_or("/");
    let mut headers = http::HeaderMap::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.trim().as_bytes()),
            http::HeaderValue::from_str(v.trim()),
        ) else {
            continue;
        };
        headers.append(k, v);
    }
    let hosts = ["in5-pc.example.org".to_string()];
    if verdict(&method, path, &headers, &hosts, |t| t == TOKEN).is_err() {
        return;
    }
    let get = |h: http::header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let public = method == http::Method::GET && matches!(path, "/healthz" | "/metrics");
    if !public {
        assert_eq!(
            get(http::header::AUTHORIZATION),
            Some(format!("Bearer {TOKEN}").as_str()),
            "passed without the token"
        );
    }
    if let Some(h) = get(http::header::HOST) {
        let name = h.rsplit_once(':').map_or(h, |(n, _)| n).trim_matches(['[', ']']);
        assert!(
            name.parse::<std::net::IpAddr>().is_ok()
                || name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
                || name.eq_ignore_ascii_case("in5-pc.example.org")
                || hostname_is(name),
            "a foreign Host passed: {h:?}"
        );
    }
    let changes = !matches!(method, http::Method::GET | http::Method::HEAD | http::Method::OPTIONS);
    if changes && let Some(o) = get(http::header::ORIGIN) {
        let host = get(http::header::HOST).unwrap_or("");
        assert_eq!(o.to_ascii_lowercase(), format!("http://{}", host.to_ascii_lowercase()), "a foreign Origin passed");
    }
}

fn hostname_is(name: &str) -> bool {
    std::process::Command::new("hostname")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim().eq_ignore_ascii_case(name))
}

fuzz_target!(|data: &[u8]| {
    check_access(data);
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    check_alert(&body);
    check_notify(&body);
});
