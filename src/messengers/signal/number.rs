//! Phone numbers as Signal addresses them: E.164, `+` and 8 to 15 digits.
//!
//! A BEC session may name a phone number where a scope goes
//! (`bec.messaging.signal.new(…).send(scope="079 123 45 67")`); bec_lib normalises it
//! with Google's libphonenumber (`phonenumbers`, default region `CH`) and leaves what it
//! cannot read as a scope name. We read the same way without libphonenumber's
//! metadata: the separators people write (spaces, `-`, `.`, `/`, brackets, a `(0)`
//! after the country code) are dropped; `00` is the international prefix; a leading
//! `0` or a bare national number takes the default country. Swiss numbers (`+41`) are
//! checked as libphonenumber checks them (nine digits after the country code, none
//! starting with 0); others by E.164's length only, so a number libphonenumber would
//! call invalid for its country may pass here — the gateway refuses it then, named.

/// A number in E.164 (`+41791234567`), if `text` reads as one; `None` for a scope name.
/// `country` is the calling code a national number (`079…`) belongs to.
pub fn to_e164(text: &str, country: &str) -> Option<String> {
    let candidate = text.trim();
    if candidate.is_empty() || candidate.len() > 40 {
        return None;
    }
    let mut plus = false;
    let mut digits = String::new();
    let mut rest = candidate;
    if let Some(r) = rest.strip_prefix('+') {
        plus = true;
        rest = r;
    }
    // `+41 (0)79 …`: the national prefix written in brackets is not dialled.
    let rest = rest.replacen("(0)", "", usize::from(plus));
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '/' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    let international = if plus {
        digits
    } else if let Some(d) = digits.strip_prefix("00") {
        d.to_string()
    } else if let Some(d) = digits.strip_prefix('0') {
        format!("{country}{d}")
    } else if digits.starts_with(country) && valid(&digits) {
        digits
    } else {
        format!("{country}{digits}")
    };
    valid(&international).then(|| format!("+{international}"))
}

/// Whether `digits` (country code first, no `+`) is a number: Swiss ones exactly as
/// libphonenumber has them, others by E.164's bounds.
fn valid(digits: &str) -> bool {
    if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
        return false;
    }
    match digits.strip_prefix("41") {
        Some(national) => national.len() == 9 && !national.starts_with('0'),
        None => true,
    }
}

/// Whether `scope` is a number as [`to_e164`] writes it.
pub fn is_e164(scope: &str) -> bool {
    scope
        .strip_prefix('+')
        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()) && valid(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each input with what bec_lib 4.3.2's `SignalMessagingService._normalize_phone_number`
    /// returns for it (run against the wheel); `None` where it returns the input as is.
    #[test]
    fn as_bec_lib_normalises() {
        let cases: &[(&str, Option<&str>)] = &[
            ("+41791234567", Some("+41791234567")),
            ("079 123 45 67", Some("+41791234567")),
            ("0791234567", Some("+41791234567")),
            ("0041791234567", Some("+41791234567")),
            ("+41 79 123 45 67", Some("+41791234567")),
            ("+1 650 253 0000", Some("+16502530000")),
            ("+4179123456", None),
            ("beamline-ops", None),
            ("+49 30 12345678", Some("+493012345678")),
            ("41791234567", Some("+41791234567")),
            ("791234567", Some("+41791234567")),
            ("+41-79-123-45-67", Some("+41791234567")),
            ("(079) 123 45 67", Some("+41791234567")),
            ("+44 7911 123456", Some("+447911123456")),
            ("+41 (0)79 123 45 67", Some("+41791234567")),
            ("+999 123", None),
            ("00 49 30 1234567", Some("+49301234567")),
        ];
        for (input, want) in cases {
            assert_eq!(to_e164(input, "41").as_deref(), *want, "{input:?}");
        }
        assert!(is_e164("+41791234567"));
        assert!(!is_e164("+4179123456"));
        assert!(!is_e164("oncall"));
    }
}
