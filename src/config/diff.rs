//! What changed between two configs, as JSON paths (`routes.alarm_major`, `watch[1]`),
//! so that a reload can say in one log line what it applied.
//!
//! It compares the masked views ([`super::Config::masked_json`]), which are resolved
//! (defaults filled, paths absolute) and carry no secret: a changed password shows up
//! through [`secrets_changed`], never as a value.

use serde_json::Value;

use super::Config;

/// Paths that differ, each marked `(added)` or `(removed)` when only one side has it.
/// Objects and arrays are descended into; anything else is a leaf.
pub fn changed_paths(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(String::new(), old, new, &mut out);
    out
}

fn walk(path: String, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (None, Some(y)) if !y.is_null() => out.push(format!("{p} (added)")),
                    (Some(x), None) if !x.is_null() => out.push(format!("{p} (removed)")),
                    _ => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(p, x, y, out),
                    (None, Some(_)) => out.push(format!("{p} (added)")),
                    (Some(_), None) => out.push(format!("{p} (removed)")),
                    (None, None) => {}
                }
            }
        }
        (Value::Null, y) if !y.is_null() => out.push(format!("{path} (added)")),
        (x, Value::Null) if !x.is_null() => out.push(format!("{path} (removed)")),
        (x, y) if x != y => out.push(path),
        _ => {}
    }
}

/// The secrets whose values changed (names only).
pub fn secrets_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    let (before, after) = (old.services.secrets(), new.services.secrets());
    let names = before.iter().chain(&after).map(|(name, _)| *name);
    for name in names {
        let value = |list: &[(&'static str, String)]| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        if value(&before) != value(&after) && !out.contains(&name) {
            out.push(name);
        }
    }
    let bec = |c: &Config| c.bec.as_ref().map(crate::bec::BecConfig::secrets);
    if bec(old) != bec(new) {
        out.push("bec.password");
    }
    let api = |c: &Config| c.api.token.as_ref().map(|t| t.expose().to_owned());
    if api(old) != api(new) {
        out.push("api.token");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_each_changed_leaf_and_what_came_or_went() {
        let old = json!({
            "instrument": "IN5",
            "routes": {"alarm_major": ["mail:default"], "message": ["mail:default"]},
            "watch": [{"path": "/a/*.log", "encoding": "auto"}],
            "mail": {"password": "********", "scopes": {"default": ["a@x"]}},
        });
        let new = json!({
            "instrument": "IN5",
            "routes": {"alarm_major": ["mail:default", "telegram:ops"]},
            "watch": [{"path": "/a/*.log", "encoding": "utf-8"}, {"path": "/b/*.log"}],
            "mail": {"password": "********", "scopes": {"default": ["a@x"]}},
            "telegram": {"scopes": {}},
        });
        assert_eq!(
            changed_paths(&old, &new),
            [
                "routes.alarm_major[1] (added)",
                "routes.message (removed)",
                "telegram (added)",
                "watch[0].encoding",
                "watch[1] (added)",
            ]
        );
        assert!(changed_paths(&new, &new).is_empty());
    }
}
