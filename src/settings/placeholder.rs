//! Placeholders: values a shipped config leaves for the operator to fill in. The
//! packaged config names no server it does not know (a loopback SMTP server or Bot API
//! would take an operator's real token and queue messages forever); it writes
//! `REPLACE-…` instead, and every value that still starts so is refused, naming its key,
//! wherever a config is loaded (`check-config`, `run`, a reload). One marker, one rule,
//! here in the toolkit so that a secret file (read in `secret.rs`) and the JSON
//! (scanned by `config` before it is read into sections) obey the same one. The book's
//! chapter docs/src/operations.md, "Installing on Linux", tells the operator about it.

use serde_json::Value;

use super::check::{Problem, index, join};

/// What every placeholder starts with: upper case and a hyphen, so that no ordinary
/// value (a host, an address, a chat id, a path) is taken for one.
pub const MARKER: &str = "REPLACE-";

/// Whether `text` is a value still to be filled in.
pub fn is_placeholder(text: &str) -> bool {
    text.trim_start().starts_with(MARKER)
}

/// Every string in `value` that is a placeholder, as a problem at its JSON path
/// (`mail.server`, `watch[0].path`), in the file's order.
pub fn find(value: &Value) -> Vec<Problem> {
    let mut found = Vec::new();
    walk(value, "", &mut found);
    found
}

fn walk(value: &Value, path: &str, found: &mut Vec<Problem>) {
    match value {
        Value::String(s) if is_placeholder(s) => found.push(Problem {
            json_path: path.to_string(),
            // The placeholder is shown: it is the package's text, never a secret.
            message: format!(
                "replace {} with your own value: it is a placeholder of the packaged config",
                Value::String(s.trim().to_string())
            ),
        }),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, &index(path, i), found);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                walk(v, &join(path, k), found);
            }
        }
        _ => {}
    }
}

/// The placeholders first, then the loader's own problems except those about a value
/// that is a placeholder, or about the list holding one (a chat id `"REPLACE-…"` is no
/// chat id, and a list of one placeholder address has no address, but one line saying
/// what to do is clearer than two; once it is replaced the loader speaks again).
pub fn merge<T>(
    loaded: Result<T, Vec<Problem>>,
    placeholders: Vec<Problem>,
) -> Result<T, Vec<Problem>> {
    match loaded {
        Ok(v) if placeholders.is_empty() => Ok(v),
        Ok(_) => Err(placeholders),
        Err(problems) => {
            let mut all = placeholders;
            let rest: Vec<Problem> = problems
                .into_iter()
                .filter(|p| {
                    !all.iter().any(|f| {
                        f.json_path == p.json_path
                            || f.json_path.starts_with(&format!("{}[", p.json_path))
                    })
                })
                .collect();
            all.extend(rest);
            Err(all)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_each_placeholder_by_its_path_and_nothing_else() {
        let v = json!({
            "mail": {"server": "REPLACE-with-your-SMTP-server", "recipients": ["a@b.org", " REPLACE-x"]},
            "telegram": {"bot-id": "123456:replace-with-the-token", "channel-id": "REPLACEMENT"},
            "watch": [{"path": "REPLACE-with-the-protocol-folder/*.log"}]
        });
        let paths: Vec<String> = find(&v).into_iter().map(|p| p.json_path).collect();
        assert_eq!(
            paths,
            ["mail.server", "mail.recipients[1]", "watch[0].path"],
            "lower case and a word that merely begins alike are values"
        );
        let first = &find(&v)[0];
        assert_eq!(
            first.message,
            "replace \"REPLACE-with-your-SMTP-server\" with your own value: it is a placeholder of the packaged config"
        );
    }

    #[test]
    fn merge_drops_the_loaders_problem_about_a_placeholder_and_keeps_the_others() {
        let p = |path: &str, m: &str| Problem {
            json_path: path.into(),
            message: m.into(),
        };
        let placeholders = vec![
            p("telegram.channel-id", "replace …"),
            p("mail.recipients[0]", "replace …"),
        ];
        let loaded: Result<(), _> = Err(vec![
            p("telegram.channel-id", "not a chat id"),
            p("mail.recipients", "no recipients"),
            p("mail", "no server"),
            p("mail.port", "not a port"),
        ]);
        let all = merge(loaded, placeholders).unwrap_err();
        let messages: Vec<&str> = all.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            ["replace …", "replace …", "no server", "not a port"]
        );
        assert!(merge(Ok(1), vec![p("a", "b")]).is_err());
        assert_eq!(merge::<i32>(Ok(1), vec![]).unwrap(), 1);
    }
}
