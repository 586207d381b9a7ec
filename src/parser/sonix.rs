//! The default protocol grammar (`format: "sonix"`) and its mapping to events.
//!
//! ```text
//! [timestamp] [sep] TYPE [level] [sep] [source] [sep] message
//! ```
//! No public specimen of a Sonix+ protocol exists, so the grammar is tolerant: every part
//! but TYPE is optional, and each part accepts the spellings docs/src/what-gets-sent.md lists ("The grammar in detail"). It is a
//! hand-written scanner rather than one big regex because it runs on every line of every
//! protocol; a regex still decides the few message phrases (scan start, interlock) where
//! its literal prefilters do the work.

use std::sync::LazyLock;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};
use regex::RegexSet;

use crate::event::{Severity, names};

/// The message TYPE word of a protocol line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineType {
    Error,
    Warning,
    Info,
    User,
    Debug,
}

impl LineType {
    pub fn as_str(self) -> &'static str {
        match self {
            LineType::Error => "error",
            LineType::Warning => "warning",
            LineType::Info => "info",
            LineType::User => "user",
            LineType::Debug => "debug",
        }
    }
}

/// A timestamp as the line wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// Date and time, with the offset if the line gave one.
    Full(NaiveDateTime, Option<FixedOffset>),
    /// Time only: the date comes from the file (see `FileParser`).
    Time(NaiveTime),
}

/// A line that follows the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub stamp: Option<Stamp>,
    pub kind: LineType,
    pub level: Option<u8>,
    pub source: Option<&'a str>,
    pub message: &'a str,
}

/// Parses one decoded line (no line terminator). `None`: the line has no TYPE word where
/// the grammar expects one, so it is not a protocol line.
pub fn parse(line: &str) -> Option<Parsed<'_>> {
    let b = line.as_bytes();
    let mut i = skip_ws(b, 0);
    let stamp = match timestamp(b, i) {
        Some((s, j)) => {
            i = j;
            Some(s)
        }
        None => None,
    };
    i = skip_sep(b, i);
    let (kind, j) = type_word(line, i)?;
    i = j;
    let mut level = None;
    let k = skip_sep(b, i);
    // "ERROR: 3 detectors offline" is a message, not level 3: after a colon only the
    // explicit forms ((1), [1], L1, level=1) count as a level.
    let bare_ok = !b[i..k].contains(&b':');
    if let Some((l, j)) = parse_level(b, k).filter(|_| bare_ok || !b[k].is_ascii_digit()) {
        level = Some(l);
        i = j;
    }
    i = skip_sep(b, i);
    let mut source = None;
    if let Some((s, j)) = parse_source(line, i) {
        source = Some(s);
        i = skip_sep(b, j);
    }
    Some(Parsed {
        stamp,
        kind,
        level,
        source,
        message: line[i..].trim_end(),
    })
}

static PHRASES: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)interlock",
        r"(?i)measurement\s+start|начало\s+измерения",
        r"(?i)measurement\s+(?:finished|completed|done)|конец\s+измерения",
    ])
    .expect("built-in phrase patterns are valid")
});

/// The default mapping (docs/src/what-gets-sent.md). `None`: the line is counted but makes no event.
///
/// An interlock wins over everything (it is the most specific alarm); then the ERROR /
/// WARNING levels; then the scan phrases. A line without a level counts as level 1, as
/// docs/src/what-gets-sent.md says for ERROR; WARNING is read the same way for consistency.
pub fn classify(p: &Parsed<'_>) -> Option<(&'static str, Severity)> {
    let level = p.level.unwrap_or(1);
    let alarm = match p.kind {
        LineType::Error => Some(match level {
            1 => (names::ALARM_MAJOR, Severity::Major),
            2 | 3 => (names::ALARM_MINOR, Severity::Minor),
            _ => (names::ALARM_WARNING, Severity::Warning),
        }),
        LineType::Warning if level == 1 => Some((names::ALARM_WARNING, Severity::Warning)),
        _ => None,
    };
    // Almost no line holds a phrase: a plain yes/no first spares most lines the search
    // for which phrase (and its allocation), and a byte scan spares most of them even
    // the yes/no (see `may_hold_phrase`).
    let has_phrase = |s: &str| may_hold_phrase(s) && PHRASES.is_match(s);
    if !has_phrase(p.message) && !p.source.is_some_and(has_phrase) {
        return alarm;
    }
    // A phrase may have been read as the source ("ERROR Interlock: door open").
    let in_message = PHRASES.matches(p.message);
    let in_source = p.source.map(|s| PHRASES.matches(s));
    let matched =
        |i: usize| in_message.matched(i) || in_source.as_ref().is_some_and(|m| m.matched(i));
    if matched(0) {
        return Some((
            names::SCAN_INTERLOCK,
            alarm.map_or(Severity::Warning, |(_, s)| s),
        ));
    }
    if alarm.is_some() {
        return alarm;
    }
    if matched(1) {
        return Some((names::NEW_SCAN, Severity::Info));
    }
    if matched(2) {
        return Some((names::SCAN_COMPLETED, Severity::Info));
    }
    None
}

/// Whether `s` can match [`PHRASES`], asked before the set: `false` only when it cannot.
///
/// Every phrase holds `interlock` or `measurement` (any case), or the Russian
/// `измерения`. Unicode case folding lets two non-ASCII characters stand for ASCII
/// letters — the Kelvin sign for `k`, the long s for `s` — so a text with non-ASCII
/// characters is asked only for what they cannot replace: `interloc`, `mea`, or a `з` of
/// either case. A pure ASCII text is asked for the whole words.
fn may_hold_phrase(s: &str) -> bool {
    let b = s.as_bytes();
    let ascii = s.is_ascii();
    let (i_word, m_word): (&[u8], &[u8]) = if ascii {
        (b"interlock", b"measurement")
    } else {
        (b"interloc", b"mea")
    };
    let at = |i: usize, word: &[u8]| {
        b.get(i..i + word.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(word))
    };
    // One pass over the bytes for both words: this runs on every typed line.
    b.iter().enumerate().any(|(i, c)| match c | 0x20 {
        b'i' => at(i, i_word),
        b'm' => at(i, m_word),
        _ => false,
    }) || (!ascii
        && (memchr::memmem::find(b, "з".as_bytes()).is_some()
            || memchr::memmem::find(b, "З".as_bytes()).is_some()))
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// Separators: spaces, tabs, `|`, `:`, `;`, and ` - ` (a dash followed by a blank).
fn skip_sep(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' | b'|' | b':' | b';' => i += 1,
            b'-' if matches!(b.get(i + 1), Some(b' ' | b'\t') | None) => i += 1,
            _ => break,
        }
    }
    i
}

fn digits(b: &[u8], i: usize, n: usize) -> Option<u32> {
    let s = b.get(i..i + n)?;
    let mut v = 0u32;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `HH:MM:SS[.fff]` at `i`; returns the time and the index after it.
fn clock(b: &[u8], i: usize) -> Option<(NaiveTime, usize)> {
    let h = digits(b, i, 2)?;
    if b.get(i + 2) != Some(&b':') {
        return None;
    }
    let m = digits(b, i + 3, 2)?;
    if b.get(i + 5) != Some(&b':') {
        return None;
    }
    let s = digits(b, i + 6, 2)?;
    let mut j = i + 8;
    let mut nanos = 0u32;
    if matches!(b.get(j), Some(b'.' | b',')) && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
        j += 1;
        let mut scale = 100_000_000u32;
        while let Some(&c) = b.get(j).filter(|c| c.is_ascii_digit()) {
            nanos += u32::from(c - b'0') * scale;
            scale /= 10;
            j += 1;
        }
    }
    let t = NaiveTime::from_hms_nano_opt(h, m, s, nanos)?;
    Some((t, j))
}

/// `Z`, `+hh:mm`, `-hhmm` right after a time.
fn offset(b: &[u8], i: usize) -> Option<(FixedOffset, usize)> {
    match b.get(i)? {
        b'Z' | b'z' => Some((FixedOffset::east_opt(0)?, i + 1)),
        sign @ (b'+' | b'-') => {
            let h = digits(b, i + 1, 2)? as i32;
            let (m, end) = if b.get(i + 3) == Some(&b':') {
                (digits(b, i + 4, 2)? as i32, i + 6)
            } else {
                (digits(b, i + 3, 2)? as i32, i + 5)
            };
            let secs = (h * 3600 + m * 60) * if *sign == b'-' { -1 } else { 1 };
            Some((FixedOffset::east_opt(secs)?, end))
        }
        _ => None,
    }
}

fn timestamp(b: &[u8], i: usize) -> Option<(Stamp, usize)> {
    if b.get(i) == Some(&b'[') {
        let (s, j) = bare_timestamp(b, i + 1)?;
        return (b.get(j) == Some(&b']')).then_some((s, j + 1));
    }
    bare_timestamp(b, i)
}

fn bare_timestamp(b: &[u8], i: usize) -> Option<(Stamp, usize)> {
    // 2026-11-20[ T]14:03:12[.345][Z|±hh:mm]
    if let (Some(y), Some(b'-'), Some(mo), Some(b'-'), Some(d)) = (
        digits(b, i, 4),
        b.get(i + 4),
        digits(b, i + 5, 2),
        b.get(i + 7),
        digits(b, i + 8, 2),
    ) {
        if !matches!(b.get(i + 10), Some(b' ' | b'T' | b't')) {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
        let (t, j) = clock(b, i + 11)?;
        let (off, j) = match offset(b, j) {
            Some((o, k)) => (Some(o), k),
            None => (None, j),
        };
        return ends_word(b, j).then_some((Stamp::Full(date.and_time(t), off), j));
    }
    // 20.11.2026 14:03:12[.345]
    if let (Some(d), Some(b'.'), Some(mo), Some(b'.'), Some(y)) = (
        digits(b, i, 2),
        b.get(i + 2),
        digits(b, i + 3, 2),
        b.get(i + 5),
        digits(b, i + 6, 4),
    ) {
        if b.get(i + 10) != Some(&b' ') {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(y as i32, mo, d)?;
        let (t, j) = clock(b, i + 11)?;
        return ends_word(b, j).then_some((Stamp::Full(date.and_time(t), None), j));
    }
    // 14:03:12[.345]
    let (t, j) = clock(b, i)?;
    ends_word(b, j).then_some((Stamp::Time(t), j))
}

fn ends_word(b: &[u8], i: usize) -> bool {
    !b.get(i).is_some_and(|c| c.is_ascii_alphanumeric())
}

const ASCII_TYPES: &[(&str, LineType)] = &[
    ("error", LineType::Error),
    ("err", LineType::Error),
    ("warning", LineType::Warning),
    ("warn", LineType::Warning),
    ("info", LineType::Info),
    ("user", LineType::User),
    ("debug", LineType::Debug),
];

const RUSSIAN_TYPES: &[(&str, LineType)] = &[
    ("ошибка", LineType::Error),
    ("предупреждение", LineType::Warning),
    ("информация", LineType::Info),
    ("инфо", LineType::Info),
    ("пользователь", LineType::User),
];

/// The TYPE word at `i`, bare or in `[ ]` / `< >`, as a whole word.
fn type_word(line: &str, i: usize) -> Option<(LineType, usize)> {
    let b = line.as_bytes();
    let close = match b.get(i)? {
        b'[' => Some(b']'),
        b'<' => Some(b'>'),
        _ => None,
    };
    let start = if close.is_some() { i + 1 } else { i };
    let rest = line.get(start..)?;
    // Most words are ASCII: bytes first, characters only once a non-ASCII one shows up.
    let ascii_len = rest
        .bytes()
        .position(|c| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    let word_len = if rest
        .as_bytes()
        .get(ascii_len)
        .is_some_and(|c| !c.is_ascii())
    {
        rest[ascii_len..]
            .char_indices()
            .find(|(_, c)| !is_cyrillic_letter(*c) && !c.is_alphabetic())
            .map_or(rest.len(), |(k, _)| ascii_len + k)
    } else {
        ascii_len
    };
    if word_len == 0 {
        return None;
    }
    let word = &rest[..word_len];
    let mut end = start + word_len;
    // A whole word: "ERRORS" or "ERROR_1" is not the TYPE "ERROR".
    if b.get(end).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        return None;
    }
    let kind = if word.is_ascii() {
        ASCII_TYPES
            .iter()
            .find(|(w, _)| w.eq_ignore_ascii_case(word))?
            .1
    } else {
        // Compared character by character: a lowercased copy of the word per line was
        // a tenth of the parser's time on Russian protocols.
        RUSSIAN_TYPES.iter().find(|(w, _)| lowercase_is(word, w))?.1
    };
    if let Some(c) = close {
        if b.get(end) != Some(&c) {
            return None;
        }
        end += 1;
    }
    Some((kind, end))
}

/// А…я and Ё, ё: the letters of the Russian TYPE words, known alphabetic without
/// Unicode's tables.
fn is_cyrillic_letter(c: char) -> bool {
    matches!(c, '\u{410}'..='\u{44F}' | 'Ё' | 'ё')
}

/// Whether `word` lowercased is `lower` (a word of Russian letters), without making the
/// lowercased copy.
///
/// Only the Russian capital letters lowercase to Russian small ones, and both take two
/// bytes, so words of other lengths cannot be equal; А…Я lowercase by an offset, and any
/// other character by Unicode's rules.
fn lowercase_is(word: &str, lower: &str) -> bool {
    word.len() == lower.len()
        && word
            .chars()
            .flat_map(|c| match c {
                'А'..='Я' => char::from_u32(c as u32 + 0x20).unwrap_or(c).to_lowercase(),
                _ => c.to_lowercase(),
            })
            .eq(lower.chars())
}

/// Level `1`…`5` as `1`, `(1)`, `[1]`, `L1`, `level=1`, followed by a non-word character.
fn parse_level(b: &[u8], i: usize) -> Option<(u8, usize)> {
    let (digit_at, close) = match b.get(i)? {
        b'(' => (i + 1, Some(b')')),
        b'[' => (i + 1, Some(b']')),
        b'L' | b'l' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => (i + 1, None),
        b'l' | b'L'
            if b.get(i..i + 6)
                .is_some_and(|w| w.eq_ignore_ascii_case(b"level=")) =>
        {
            (i + 6, None)
        }
        _ => (i, None),
    };
    let d = *b.get(digit_at)?;
    if !(b'1'..=b'5').contains(&d) {
        return None;
    }
    let mut end = digit_at + 1;
    if let Some(c) = close {
        if b.get(end) != Some(&c) {
            return None;
        }
        end += 1;
    } else if b
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
    {
        return None;
    }
    Some((d - b'0', end))
}

/// A source `[name]` or `name:` (a word without blanks followed by `:` and a blank).
fn parse_source(line: &str, i: usize) -> Option<(&str, usize)> {
    let b = line.as_bytes();
    if b.get(i) == Some(&b'[') {
        let rest = &line[i + 1..];
        let end = rest.find(']')?;
        let name = rest[..end].trim();
        if name.is_empty() || end > 64 {
            return None;
        }
        return Some((name, i + 1 + end + 1));
    }
    let rest = &line[i..];
    let end = rest.find(|c: char| c.is_whitespace() || c == ':')?;
    if end == 0 || end > 64 || rest.as_bytes()[end] != b':' {
        return None;
    }
    if !matches!(rest.as_bytes().get(end + 1), Some(b' ' | b'\t') | None) {
        return None;
    }
    let name = &rest[..end];
    if !name.chars().any(char::is_alphabetic) || name.contains(['(', ')', '"', '\'']) {
        return None;
    }
    Some((name, i + end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Parsed<'_> {
        parse(line).unwrap_or_else(|| panic!("no parse: {line:?}"))
    }

    #[test]
    fn minimal_and_full_forms() {
        let x = p("ERROR detector lost");
        assert_eq!(
            (x.kind, x.level, x.source, x.message),
            (LineType::Error, None, None, "detector lost")
        );
        let x = p("2026-11-20 14:03:12.345 | ERROR | 2 | [detector] | HV trip");
        assert_eq!(x.level, Some(2));
        assert_eq!(x.source, Some("detector"));
        assert_eq!(x.message, "HV trip");
        assert!(matches!(x.stamp, Some(Stamp::Full(_, None))));
        let x = p("2026-11-20T14:03:12+03:00 warn L1 motor: stuck");
        assert_eq!(
            (x.kind, x.level, x.source, x.message),
            (LineType::Warning, Some(1), Some("motor"), "stuck")
        );
        match x.stamp {
            Some(Stamp::Full(_, Some(o))) => assert_eq!(o.local_minus_utc(), 3 * 3600),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn russian_type_words_in_any_case() {
        for line in ["ОШИБКА x", "ошибка x", "ОшИбКа x", "[Ошибка] x"] {
            assert_eq!(p(line).kind, LineType::Error, "{line}");
        }
        assert_eq!(p("ПРЕДУПРЕЖДЕНИЕ 1 x").kind, LineType::Warning);
        assert_eq!(p("Информация x").kind, LineType::Info);
        assert!(parse("ОШИБКИ x").is_none());
        assert!(parse("ОШИБКАx x").is_none());
        assert!(parse("ОШИБКА1 x").is_none());
    }

    #[test]
    fn not_protocol_lines() {
        assert!(parse("").is_none());
        assert!(parse("just text").is_none());
        assert!(parse("ERRORS were found").is_none());
        assert!(parse("2026-11-20 14:03:12 nothing").is_none());
    }

    #[test]
    fn level_does_not_eat_numbers() {
        let x = p("ERROR 404 not found");
        assert_eq!((x.level, x.message), (None, "404 not found"));
        let x = p("ERROR 1.5 K too warm");
        assert_eq!((x.level, x.message), (None, "1.5 K too warm"));
        let x = p("ERROR: 3 detectors offline");
        assert_eq!((x.level, x.message), (None, "3 detectors offline"));
        let x = p("ERROR: (3) detectors offline");
        assert_eq!((x.level, x.message), (Some(3), "detectors offline"));
    }

    #[test]
    fn mapping() {
        let ev = |l: &str| classify(&p(l));
        assert_eq!(ev("ERROR x"), Some((names::ALARM_MAJOR, Severity::Major)));
        assert_eq!(ev("ERROR 3 x"), Some((names::ALARM_MINOR, Severity::Minor)));
        assert_eq!(
            ev("ERROR 5 x"),
            Some((names::ALARM_WARNING, Severity::Warning))
        );
        assert_eq!(
            ev("WARNING 1 x"),
            Some((names::ALARM_WARNING, Severity::Warning))
        );
        assert_eq!(ev("WARNING 2 x"), None);
        assert_eq!(
            ev("INFO Measurement started"),
            Some((names::NEW_SCAN, Severity::Info))
        );
        assert_eq!(
            ev("INFO measurement DONE"),
            Some((names::SCAN_COMPLETED, Severity::Info))
        );
        assert_eq!(
            ev("ИНФО Конец измерения"),
            Some((names::SCAN_COMPLETED, Severity::Info))
        );
        assert_eq!(
            ev("ERROR 2 Interlock open"),
            Some((names::SCAN_INTERLOCK, Severity::Minor))
        );
        assert_eq!(ev("INFO all fine"), None);
        // Past the byte scan: upper case, and a Kelvin sign that folds to `k`.
        assert_eq!(
            ev("INFO MEASUREMENT  STARTED"),
            Some((names::NEW_SCAN, Severity::Info))
        );
        assert_eq!(
            ev("INFO interloc\u{212A} open"),
            Some((names::SCAN_INTERLOCK, Severity::Warning))
        );
        assert_eq!(ev("INFO measure interlo"), None);
        assert_eq!(
            ev("ИНФО meaſurement started"),
            Some((names::NEW_SCAN, Severity::Info))
        );
        assert_eq!(
            ev("инфо НАЧАЛО Измерения 5"),
            Some((names::NEW_SCAN, Severity::Info))
        );
        assert_eq!(ev("ИНФО счёт 5 имп/с"), None);
    }
}
