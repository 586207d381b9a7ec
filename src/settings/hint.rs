//! Hints for the two mistakes made most when the file is edited by hand: a Windows path
//! written with single backslashes, which JSON reads as escapes, and a key spelled a
//! little wrong.
//!
//! Both come from here for every section, so that each problem of either kind is worded
//! alike wherever it is met: the reader of a section ([`super::section`]) and the
//! checker's walk ([`super::check`]) ask [`unknown_key`] for an unknown key's problem,
//! and the config's loader asks [`json_syntax`] whether a parse error has a hint.

/// The problem of a key that the object it is in does not have: the keys it does have,
/// and the nearest of them when the key looks like a slip of it.
pub fn unknown_key(key: &str, known: &[&str]) -> String {
    let list = known.join(", ");
    match nearest(key, known) {
        Some(near) => {
            format!("unknown key {key:?}; did you mean {near:?}? known keys here: {list}")
        }
        None => format!("unknown key {key:?}; known keys here: {list}"),
    }
}

/// The known key nearest to `key`, if it is near enough to be what was meant.
///
/// Near is an optimal-string-alignment (Damerau–Levenshtein) distance of at most 2, and
/// at most a third of the longer word: a dropped, doubled, swapped or wrong letter or two
/// (`recipents`, `chanel-id`, `bot_id`), but not one short word for another (`to` for
/// `tz`, where the list already says everything). The nearest wins; on a tie, the first
/// in the section's own order.
fn nearest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key_lower = key.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::osa_distance(&key_lower, &k.to_lowercase()), *k))
        .filter(|(d, k)| {
            let longer = key.chars().count().max(k.chars().count());
            *d > 0 && *d <= 2 && *d * 3 <= longer
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
        // A key that differs from a known one by case alone is still that key misspelt.
        .or_else(|| {
            known
                .iter()
                .find(|k| **k != key && k.eq_ignore_ascii_case(key))
                .copied()
        })
}

/// A hint for serde_json's parse error `message` at `line` and `column` (1-based, as
/// serde_json counts them) of `text`, the whole file.
///
/// The one given so far: an `invalid escape` inside a string, which is nearly always a
/// Windows path written as Explorer shows it. The hint writes that string as JSON wants
/// it, and with forward slashes, which Windows takes as well.
pub fn json_syntax(message: &str, text: &str, line: usize, column: usize) -> Option<String> {
    if !message.starts_with("invalid escape") {
        return None;
    }
    let meant = string_at(text.lines().nth(line.checked_sub(1)?)?, column)
        .map(|raw| as_meant(&raw))
        .filter(|s| s.contains('\\'));
    let Some(meant) = meant else {
        return Some(
            r#"hint: in JSON a backslash is written twice ("C:\\Sonix\\protocol\\*.log"), or use forward slashes ("C:/Sonix/protocol/*.log")"#
                .to_string(),
        );
    };
    let doubled = serde_json::to_string(&meant).ok()?;
    let forward = serde_json::to_string(&meant.replace('\\', "/")).ok()?;
    Some(format!(
        "hint: in JSON a backslash is written twice: {doubled} (or use forward slashes: {forward})"
    ))
}

/// The text between the quotes of the string that `column` of `line` is in, as written.
fn string_at(line: &str, column: usize) -> Option<String> {
    let stop = column.saturating_sub(1);
    let mut open: Option<usize> = None;
    let mut chars = line.char_indices();
    while let Some((i, ch)) = chars.next() {
        if i >= stop && open.is_some() {
            break;
        }
        match ch {
            '"' => open = if open.is_some() { None } else { Some(i + 1) },
            '\\' if open.is_some() => {
                chars.next();
            }
            _ => {}
        }
    }
    let start = open?;
    let rest = &line[start..];
    // Its end: the next quote not escaped, or the line's end (JSON strings do not span
    // lines).
    let mut end = rest.len();
    let mut chars = rest.char_indices();
    while let Some((i, ch)) = chars.next() {
        match ch {
            '"' => {
                end = i;
                break;
            }
            '\\' => {
                chars.next();
            }
            _ => {}
        }
    }
    Some(rest[..end].to_string())
}

/// What the operator meant by a string written with single backslashes: each backslash
/// is one, but for `\\` and `\"`, which say it already the JSON way.
fn as_meant(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(ch) = chars.next() {
        if ch == '\\'
            && let Some(next @ ('\\' | '"')) = chars.peek().copied()
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slip_of_a_known_key_is_named() {
        let known = [
            "server",
            "recipients",
            "scopes",
            "default_scope",
            "timeout_s",
        ];
        assert_eq!(nearest("recipents", &known), Some("recipients"));
        assert_eq!(nearest("Recipients", &known), Some("recipients"));
        assert_eq!(nearest("scopse", &known), Some("scopes"));
        assert_eq!(nearest("colour", &known), None);
        assert_eq!(nearest("xy", &["tz", "to"]), None);
        assert_eq!(
            nearest("bot_id", &["bot-id", "bot-id_file"]),
            Some("bot-id")
        );
    }

    #[test]
    fn the_unknown_keys_problem_keeps_its_words() {
        assert_eq!(
            unknown_key("extra", &["a", "b"]),
            "unknown key \"extra\"; known keys here: a, b"
        );
        assert_eq!(
            unknown_key("pth", &["path", "mode"]),
            "unknown key \"pth\"; did you mean \"path\"? known keys here: path, mode"
        );
    }

    #[test]
    fn a_windows_path_is_written_back_as_json_wants_it() {
        let text = "{\n  \"watch\": [{\"path\": \"C:\\Sonix\\protocol\\*.log\"}]\n}";
        let e = serde_json::from_str::<serde_json::Value>(text).unwrap_err();
        let hint = json_syntax(&e.to_string(), text, e.line(), e.column()).unwrap();
        assert_eq!(
            hint,
            r#"hint: in JSON a backslash is written twice: "C:\\Sonix\\protocol\\*.log" (or use forward slashes: "C:/Sonix/protocol/*.log")"#
        );
        assert_eq!(json_syntax("trailing comma", text, 1, 1), None);
        // Half written the JSON way already: each backslash is still one.
        assert_eq!(as_meant(r#"C:\\Sonix\protocol"#), r"C:\Sonix\protocol");
    }
}
