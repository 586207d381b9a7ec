//! The parser over the protocol samples in `fixtures/` (see `fixtures/README.md`).
//!
//! Each fixture is fed line by line — split on `\n` as the watcher splits, `finish` at
//! the end — and the *whole* list of events it makes is compared with a table: the
//! lines of a fixture that are not in its table must make no event. Then a table of
//! single lines through `sonix::parse`, user rules, and property tests that no input
//! (invalid UTF-8, NULs, CRs, megabyte lines, thousands of lines) makes the parser panic.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use proptest::prelude::*;
use protowatch::config::{Encoding, RuleConfig};
use protowatch::event::{Event, Severity, dedup_key, names};
use protowatch::parser::sonix::{self, LineType, Stamp};
use protowatch::parser::traceback::MARK;
use protowatch::parser::{Counts, FileParser, Rules};

// ---------------------------------------------------------------------------------------
// Running a fixture
// ---------------------------------------------------------------------------------------

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixture(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines as the watcher hands them out: split on `\n`, the `\r` of CRLF still on;
/// a final `\n` does not start another line, an unterminated last line is a line.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn run_bytes(
    path: &Path,
    bytes: &[u8],
    encoding: Encoding,
    rules: Arc<Rules>,
) -> (Vec<Event>, Counts) {
    let mut parser = FileParser::new(path, encoding, rules);
    let mut events = Vec::new();
    for line in split_lines(bytes) {
        parser.line(line, &mut events);
    }
    parser.finish(&mut events);
    assert!(
        !parser.is_pending(),
        "a traceback is still open after finish"
    );
    (events, parser.counts.clone())
}

fn run_fixture(name: &str, encoding: Encoding, rules: Arc<Rules>) -> (Vec<Event>, Counts) {
    run_bytes(&fixture(name), &read_fixture(name), encoding, rules)
}

/// The fixture's lines as text, for building the expected traceback details
/// independently of `parser::decode`.
fn decoded_lines(name: &str, encoding: Encoding) -> Vec<String> {
    split_lines(&read_fixture(name))
        .into_iter()
        .map(|raw| {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
            match (encoding, std::str::from_utf8(raw)) {
                (Encoding::Windows1251, _) | (Encoding::Auto, Err(_)) => encoding_rs::WINDOWS_1251
                    .decode_without_bom_handling(raw)
                    .0
                    .into_owned(),
                (_, Ok(s)) => s.to_string(),
                (Encoding::Utf8, Err(_)) => String::from_utf8_lossy(raw).into_owned(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Expected events
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Exp {
    /// 1-based line of the fixture the event comes from (for a traceback: its first line).
    line: u64,
    name: &'static str,
    severity: Severity,
    source: Option<&'static str>,
    message: &'static str,
    /// A traceback: the last fixture line (inclusive) its `details` hold.
    traceback_to: Option<u64>,
}

const fn ev(
    line: u64,
    name: &'static str,
    severity: Severity,
    source: Option<&'static str>,
    message: &'static str,
) -> Exp {
    Exp {
        line,
        name,
        severity,
        source,
        message,
        traceback_to: None,
    }
}

/// A folded Python traceback: lines `from..=to`, always `alarm_major`.
const fn tb(from: u64, to: u64, source: Option<&'static str>, message: &'static str) -> Exp {
    Exp {
        line: from,
        name: names::ALARM_MAJOR,
        severity: Severity::Major,
        source,
        message,
        traceback_to: Some(to),
    }
}

/// An ERROR line followed by its traceback, up to line `to`: the line's own event with
/// the traceback as details.
const fn with_traceback(e: Exp, to: u64) -> Exp {
    Exp {
        traceback_to: Some(to),
        ..e
    }
}

use Severity::{Info, Major, Minor, Warning};
use names::{
    ALARM_MAJOR as MAJOR, ALARM_MINOR as MINOR, ALARM_WARNING as WARN, NEW_SCAN, SCAN_COMPLETED,
    SCAN_INTERLOCK,
};

fn show(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        let _ = writeln!(
            s,
            "  line {:?}: {} {} source={:?} message={:?}{}",
            e.origin.as_ref().map(|o| o.line),
            e.name,
            e.severity,
            e.source,
            e.message.text(),
            if e.details.is_some() {
                " (+details)"
            } else {
                ""
            },
        );
    }
    s
}

/// Compares the whole list of events of a fixture with `expected`, in order.
fn check_events(name: &str, encoding: Encoding, events: &[Event], expected: &[Exp]) {
    let ctx = || format!("{name} ({encoding:?}); produced:\n{}", show(events));
    assert_eq!(
        events.len(),
        expected.len(),
        "event count differs in {}",
        ctx()
    );
    let lines = decoded_lines(name, encoding);
    for (e, x) in events.iter().zip(expected) {
        let origin = e.origin.as_ref().expect("protocol events have an origin");
        assert_eq!(origin.file, fixture(name), "origin file in {}", ctx());
        assert_eq!(origin.line, x.line, "origin line of {x:?} in {}", ctx());
        assert_eq!(e.name, x.name, "name of {x:?} in {}", ctx());
        assert_eq!(e.severity, x.severity, "severity of {x:?} in {}", ctx());
        assert_eq!(
            e.source.as_deref(),
            x.source,
            "source of {x:?} in {}",
            ctx()
        );
        assert_eq!(e.message.text(), x.message, "message of {x:?} in {}", ctx());
        assert_eq!(e.message.spans.len(), 1, "a plain message is one span");
        assert_eq!(
            e.key,
            dedup_key(x.name, x.source, x.message),
            "default key of {x:?}"
        );
        match x.traceback_to {
            None => assert_eq!(e.details, None, "details of {x:?} in {}", ctx()),
            Some(to) => {
                let details = e
                    .details
                    .as_ref()
                    .map(protowatch::event::Details::as_str)
                    .unwrap_or_else(|| panic!("traceback {x:?} has no details in {}", ctx()));
                let mut block = &lines[x.line as usize - 1..to as usize];
                // An ERROR line's traceback starts on the line after it.
                if !block[0].contains(MARK) {
                    block = &block[1..];
                }
                // The first line may carry a grammar prefix; details start at the mark.
                let first = &block[0][block[0].find(MARK).expect("a Traceback line")..];
                let mut want = vec![first.to_string()];
                want.extend(block[1..].iter().cloned());
                assert_eq!(details, want.join("\n"), "details of {x:?} in {name}");
                assert!(details.starts_with(MARK));
                assert!(!details.contains('\r'), "no CR in details of {x:?}");
            }
        }
    }
}

fn no_rules() -> Arc<Rules> {
    Arc::new(Rules::empty())
}

/// Runs a fixture with each encoding given and checks the events.
fn check_fixture(name: &str, encodings: &[Encoding], expected: &[Exp]) -> Counts {
    let mut counts = None;
    for &enc in encodings {
        let (events, c) = run_fixture(name, enc, no_rules());
        check_events(name, enc, &events, expected);
        if let Some(prev) = &counts {
            assert_eq!(prev, &c, "{name}: counts depend on the encoding");
        }
        counts = Some(c);
    }
    counts.expect("at least one encoding")
}

const UTF8_AND_AUTO: &[Encoding] = &[Encoding::Utf8, Encoding::Auto];

// ---------------------------------------------------------------------------------------
// The fixture tables
// ---------------------------------------------------------------------------------------

const TIMESTAMPS: &[Exp] = &[
    ev(
        1,
        MINOR,
        Minor,
        None,
        "time only before any full date: today's date",
    ),
    ev(2, MAJOR, Major, None, "date and time"),
    ev(3, MAJOR, Major, None, "date and time with milliseconds"),
    ev(4, MAJOR, Major, None, "ISO form with T"),
    ev(5, MAJOR, Major, None, "ISO form with fraction and Z"),
    ev(6, MAJOR, Major, None, "ISO form with +03:00"),
    ev(
        7,
        MINOR,
        Minor,
        None,
        "ISO form with a compact negative offset",
    ),
    ev(8, MAJOR, Major, None, "dotted date"),
    // 9: INFO, no event (but it sets the file's date).
    ev(
        10,
        MAJOR,
        Major,
        None,
        "time only takes the last date seen in the file",
    ),
    ev(11, WARN, Warning, None, "time only with a fraction"),
    ev(12, MAJOR, Major, None, "bracketed date and time"),
    ev(13, MAJOR, Major, None, "bracketed ISO form with Z"),
    ev(14, MAJOR, Major, None, "bracketed time only"),
    ev(15, MAJOR, Major, None, "comma before the fraction"),
    ev(
        16,
        MAJOR,
        Major,
        None,
        "leading blanks before the timestamp",
    ),
];

const TYPES_LEVELS: &[Exp] = &[
    ev(1, MAJOR, Major, None, "bare error without a level is major"),
    ev(2, MAJOR, Major, None, "lower case"),
    ev(3, MAJOR, Major, None, "title case"),
    ev(4, MAJOR, Major, None, "short form"),
    ev(
        5,
        MINOR,
        Minor,
        None,
        "short form in lower case with a level",
    ),
    ev(6, MAJOR, Major, None, "level one is major"),
    ev(7, MINOR, Minor, None, "level two is minor"),
    ev(8, MINOR, Minor, None, "level three in parentheses"),
    ev(9, WARN, Warning, None, "level four in brackets"),
    ev(10, WARN, Warning, None, "level five with L"),
    ev(11, MINOR, Minor, None, "level with a lower-case l"),
    ev(12, MINOR, Minor, None, "level with level="),
    ev(13, MAJOR, Major, None, "level= in upper case"),
    // A WARNING without a level is read as level 1 (see the report / sonix::classify).
    ev(
        14,
        WARN,
        Warning,
        None,
        "without a level is read as level one",
    ),
    ev(15, WARN, Warning, None, "warning level one"),
    // 16: WARNING 2, no event.
    ev(17, WARN, Warning, None, "warn with a level in parentheses"),
    // 18–21: warn 3, INFO, USER, DEBUG: no event.
    ev(22, MAJOR, Major, None, "датчик температуры не отвечает"),
    ev(23, MINOR, Minor, None, "давление вне диапазона"),
    ev(24, WARN, Warning, None, "низкий уровень гелия"),
    ev(25, WARN, Warning, None, "дверь бункера открыта"),
    // 26–30: Предупреждение 3, ИНФОРМАЦИЯ, ИНФО, ПОЛЬЗОВАТЕЛЬ ×2: no event.
    ev(31, MAJOR, Major, None, "the type word in brackets"),
    ev(32, WARN, Warning, None, "the type word in angle brackets"),
    ev(
        33,
        MAJOR,
        Major,
        None,
        "404 not found: a number is not a level",
    ),
    ev(34, MAJOR, Major, None, "7 seven is not a level"),
    ev(
        35,
        MAJOR,
        Major,
        None,
        "1.5 K too warm: a decimal is not a level",
    ),
    ev(36, MAJOR, Major, None, "3 detectors offline"),
    ev(
        37,
        MINOR,
        Minor,
        None,
        "after a colon only the explicit forms are levels",
    ),
    ev(38, MAJOR, Major, None, "a bare level between pipes"),
    ev(39, MAJOR, Major, None, ""),
];

const SEPARATORS_SOURCES: &[Exp] = &[
    ev(1, MAJOR, Major, Some("detector"), "spaces between fields"),
    ev(2, MINOR, Minor, Some("detector"), "tabs between fields"),
    ev(3, MINOR, Minor, Some("detector"), "pipes between fields"),
    ev(4, MINOR, Minor, Some("detector"), "colons between fields"),
    ev(
        5,
        MINOR,
        Minor,
        Some("detector"),
        "semicolons between fields",
    ),
    ev(6, MINOR, Minor, Some("detector"), "dashes between fields"),
    ev(
        7,
        MAJOR,
        Major,
        Some("motor"),
        "a source written name-colon",
    ),
    ev(
        8,
        MAJOR,
        Major,
        Some("sample changer"),
        "a bracketed source may hold blanks",
    ),
    ev(
        9,
        MINOR,
        Minor,
        Some("Детектор-1"),
        "a Cyrillic source in brackets",
    ),
    ev(
        10,
        MINOR,
        Minor,
        Some("detector_3"),
        "a source word with a digit and an underscore",
    ),
    ev(
        11,
        MAJOR,
        Major,
        Some("насос"),
        "русский источник с двоеточием",
    ),
    ev(
        12,
        MAJOR,
        Major,
        None,
        "motor:stuck no blank after the colon, so no source",
    ),
    ev(
        13,
        MINOR,
        Minor,
        None,
        "42: no letter in the word, so no source",
    ),
    ev(
        14,
        MAJOR,
        Major,
        None,
        "x-y scan - a dash inside the message stays",
    ),
    ev(15, MAJOR, Major, None, "-40 C below range"),
    ev(16, MAJOR, Major, None, "[] empty brackets are not a source"),
    // Ambiguity of the grammar: any `word: ` after TYPE is a source.
    ev(17, MAJOR, Major, Some("Temperature"), "300 K too high"),
    ev(
        18,
        WARN,
        Warning,
        Some("vacuum"),
        "motor: both forms, the bracket wins",
    ),
];

const SCAN_PHRASES: &[Exp] = &[
    ev(
        1,
        NEW_SCAN,
        Info,
        None,
        "Measurement started: sample A, 300 K",
    ),
    ev(
        2,
        NEW_SCAN,
        Info,
        None,
        "measurement start requested by the operator",
    ),
    ev(3, SCAN_COMPLETED, Info, None, "measurement FINISHED"),
    ev(
        4,
        SCAN_COMPLETED,
        Info,
        None,
        "Measurement completed in 600 s",
    ),
    ev(5, SCAN_COMPLETED, Info, None, "measurement   done"),
    ev(6, NEW_SCAN, Info, None, "Начало измерения: образец B"),
    ev(7, SCAN_COMPLETED, Info, None, "конец измерения"),
    // An interlock takes the alarm's severity, or warning on a line without one.
    ev(
        8,
        SCAN_INTERLOCK,
        Warning,
        None,
        "Interlock open on the beam shutter",
    ),
    ev(9, SCAN_INTERLOCK, Major, None, "INTERLOCK tripped"),
    ev(
        10,
        SCAN_INTERLOCK,
        Minor,
        Some("safety"),
        "interlock chain broken",
    ),
    ev(11, SCAN_INTERLOCK, Warning, None, "interlock closed again"),
    ev(
        12,
        SCAN_INTERLOCK,
        Warning,
        Some("safety"),
        "Interlock: door open",
    ),
    // `Interlock:` right after TYPE is read as the source; the phrase still counts.
    ev(13, SCAN_INTERLOCK, Major, Some("Interlock"), "door open"),
    // An ERROR line is an alarm even when it reads like a scan phrase.
    ev(14, MAJOR, Major, None, "measurement finished with errors"),
    // 15–18: aborted, "measurements list", phrases outside the grammar: no event.
];

const TRACEBACK_SIMPLE: &[Exp] = &[
    tb(2, 7, None, "motors.MotorError: omega stuck at 41.7"),
    tb(9, 12, None, "KeyboardInterrupt"),
];

const TRACEBACK_LONG: &[Exp] = &[
    // A chained exception is two tracebacks; the text between them makes no event.
    tb(
        2,
        8,
        None,
        "serial.serialutil.SerialTimeoutException: Read timeout",
    ),
    tb(
        12,
        41,
        None,
        "sonix.errors.DeviceError: temperature controller not answering (COM3)",
    ),
];

const TRACEBACK_PREFIXED: &[Exp] = &[
    tb(
        2,
        5,
        Some("script"),
        "ValueError: could not convert string to float: 'n/a'",
    ),
    // The level of the prefix does not matter: a traceback is always major.
    tb(6, 9, Some("script"), "ZeroDivisionError: division by zero"),
    tb(10, 13, Some("скрипт"), "RuntimeError: сбой"),
    // Even on an INFO line.
    tb(
        14,
        17,
        Some("script"),
        "ModuleNotFoundError: No module named 'numpy'",
    ),
];

const TRACEBACK_CUT: &[Exp] = &[
    // Cut short by a protocol line: the text is the last frame line, and the event
    // comes before the line that cut it.
    tb(1, 3, None, "detector.arm()"),
    // The traceback right after an ERROR line is that line's: one event, its details
    // the traceback. Ambiguity: `ERROR: text` looks like a final `SomeError: text`
    // line, so it closes the open traceback instead of being a line of its own.
    with_traceback(
        ev(
            4,
            MINOR,
            Minor,
            Some("detector"),
            "arm failed after the script died",
        ),
        8,
    ),
    // Still open at the end of the file: `finish` flushes it.
    tb(9, 11, None, "wait_for_beam()"),
];

const CRLF_BOM: &[Exp] = &[
    ev(
        1,
        MAJOR,
        Major,
        Some("detector"),
        "the first line follows the BOM",
    ),
    ev(2, WARN, Warning, Some("detector"), "a CRLF line"),
    ev(3, NEW_SCAN, Info, None, "Measurement started"),
    tb(4, 7, None, "OSError: a CRLF traceback"),
    ev(9, MINOR, Minor, Some("насос"), "UTF-8 Cyrillic with CRLF"),
    ev(
        10,
        MINOR,
        Minor,
        Some("motor"),
        "the last line has no terminator",
    ),
];

const CP1251: &[Exp] = &[
    ev(2, MAJOR, Major, Some("детектор"), "нет ответа от блока 3"),
    ev(3, WARN, Warning, Some("насос"), "давление растёт"),
    ev(4, NEW_SCAN, Info, None, "Начало измерения"),
    ev(5, SCAN_COMPLETED, Info, None, "конец измерения"),
    ev(7, MINOR, Minor, Some("Криостат"), "температура 4,2 K"),
    // Only the English word `interlock` is a scan phrase.
    ev(8, WARN, Warning, Some("Блокировка"), "дверь открыта"),
];

const MIXED: &[Exp] = &[
    ev(1, MAJOR, Major, Some("детектор"), "строка в UTF-8"),
    ev(3, MINOR, Minor, Some("детектор"), "строка в windows-1251"),
    ev(4, WARN, Warning, Some("насос"), "снова UTF-8"),
];

// ---------------------------------------------------------------------------------------
// Fixture tests
// ---------------------------------------------------------------------------------------

#[test]
fn timestamps() {
    let counts = check_fixture("timestamps.log", UTF8_AND_AUTO, TIMESTAMPS);
    assert_eq!(
        (counts.lines, counts.error, counts.warning, counts.info),
        (16, 14, 1, 1)
    );
}

#[test]
fn types_and_levels() {
    let counts = check_fixture("types_levels.log", UTF8_AND_AUTO, TYPES_LEVELS);
    let want = Counts {
        lines: 39,
        error: 24,
        warning: 8,
        info: 3,
        user: 3,
        debug: 1,
        other: 0,
    };
    assert_eq!(counts, want);
}

#[test]
fn separators_and_sources() {
    check_fixture("separators_sources.log", UTF8_AND_AUTO, SEPARATORS_SOURCES);
}

#[test]
fn scan_phrases() {
    let counts = check_fixture("scan_phrases.log", UTF8_AND_AUTO, SCAN_PHRASES);
    assert_eq!((counts.lines, counts.other), (18, 2));
}

#[test]
fn traceback_simple() {
    check_fixture("traceback_simple.log", UTF8_AND_AUTO, TRACEBACK_SIMPLE);
}

#[test]
fn traceback_long() {
    let counts = check_fixture("traceback_long.log", UTF8_AND_AUTO, TRACEBACK_LONG);
    // Every line of both tracebacks and the text between them is "other".
    assert_eq!((counts.lines, counts.other, counts.user), (42, 40, 1));
}

#[test]
fn traceback_with_grammar_prefix() {
    check_fixture("traceback_prefixed.log", UTF8_AND_AUTO, TRACEBACK_PREFIXED);
}

const TRACEBACK_AFTER_ERROR: &[Exp] = &[
    // `logging.exception("move failed")`: the line and its traceback are one alert.
    with_traceback(ev(2, MAJOR, Major, Some("scan"), "move failed"), 8),
    ev(9, MINOR, Minor, Some("motor"), "hit at -78.87"),
    ev(10, MINOR, Minor, Some("motor"), "hit at 64.62"),
    // The last line of the file: held for a traceback, let go by `finish`.
    ev(11, MAJOR, Major, Some("scan"), "scan aborted"),
];

#[test]
fn an_error_line_and_its_traceback_are_one_event() {
    let (events, _) = run_fixture("traceback_after_error.log", Encoding::Utf8, no_rules());
    check_events(
        "traceback_after_error.log",
        Encoding::Utf8,
        &events,
        TRACEBACK_AFTER_ERROR,
    );
    let details = events[0]
        .details
        .as_ref()
        .map(protowatch::event::Details::as_str);
    assert!(
        details.is_some_and(|d| d.ends_with("sonix.motors.MotorError: omega stuck at -78.87")),
        "{details:?}"
    );
    // A negative and a positive reading are one alert, not two.
    assert_eq!(events[1].key, events[2].key);
}

#[test]
fn an_error_line_waits_only_for_its_next_line() {
    let mut parser = FileParser::new(&fixture("x.log"), Encoding::Utf8, no_rules());
    let mut events = Vec::new();
    parser.line(b"2026-11-20 14:00:00 ERROR [motor] stuck", &mut events);
    assert!(events.is_empty() && parser.is_pending());
    // Any line but a traceback lets it go before that line's own events.
    parser.line(
        b"2026-11-20 14:00:01 ERROR 3 [motor] stuck again",
        &mut events,
    );
    assert_eq!(events.len(), 1, "{}", show(&events));
    assert_eq!(events[0].message.text(), "stuck");
    parser.line(b"free text", &mut events);
    assert_eq!(events.len(), 2, "{}", show(&events));
    assert!(!parser.is_pending());
    // The end of the lines read together lets it go: nothing waits for lines unwritten.
    parser.line(
        b"2026-11-20 14:00:02 ERROR [motor] stuck for good",
        &mut events,
    );
    assert!(parser.is_pending());
    parser.release(&mut events);
    assert!(!parser.is_pending());
    assert_eq!(events.len(), 3, "{}", show(&events));
}

#[test]
fn traceback_cut_short_and_open_at_end() {
    check_fixture("traceback_cut.log", UTF8_AND_AUTO, TRACEBACK_CUT);
}

#[test]
fn traceback_without_finish_stays_pending() {
    let bytes = read_fixture("traceback_cut.log");
    let mut parser = FileParser::new(&fixture("traceback_cut.log"), Encoding::Utf8, no_rules());
    let mut events = Vec::new();
    for line in split_lines(&bytes) {
        parser.line(line, &mut events);
    }
    assert_eq!(events.len(), 2, "{}", show(&events));
    assert!(parser.is_pending());
    parser.finish(&mut events);
    assert!(!parser.is_pending());
    assert_eq!(events.len(), 3);
    // A second finish has nothing left to flush.
    parser.finish(&mut events);
    assert_eq!(events.len(), 3);
}

#[test]
fn not_protocol_lines_make_no_event() {
    for enc in [Encoding::Utf8, Encoding::Auto, Encoding::Windows1251] {
        let (events, counts) = run_fixture("not_protocol.log", enc, no_rules());
        assert!(events.is_empty(), "{enc:?}:\n{}", show(&events));
        assert_eq!((counts.lines, counts.other), (27, 27), "{counts:?}");
    }
}

#[test]
fn crlf_and_bom() {
    let bytes = read_fixture("crlf_bom.log");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "the fixture lost its BOM"
    );
    assert!(
        bytes.windows(2).any(|w| w == b"\r\n"),
        "the fixture lost its CRLF"
    );
    assert!(!bytes.ends_with(b"\n"), "the last line is unterminated");
    let counts = check_fixture("crlf_bom.log", UTF8_AND_AUTO, CRLF_BOM);
    assert_eq!(counts.lines, 10);
}

#[test]
fn windows_1251() {
    let bytes = read_fixture("cp1251.log");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture must stay in windows-1251"
    );
    check_fixture(
        "cp1251.log",
        &[Encoding::Windows1251, Encoding::Auto],
        CP1251,
    );
    // Read as UTF-8 the Russian TYPE words are replacement characters: no event.
    let (events, counts) = run_fixture("cp1251.log", Encoding::Utf8, no_rules());
    assert!(events.is_empty(), "{}", show(&events));
    assert_eq!(counts.other, 8);
}

#[test]
fn mixed_encoding_is_decoded_per_line() {
    let bytes = read_fixture("mixed_encoding.log");
    let invalid: Vec<bool> = split_lines(&bytes)
        .iter()
        .map(|l| std::str::from_utf8(l).is_err())
        .collect();
    assert_eq!(
        invalid,
        [false, false, true, false],
        "fixture bytes changed"
    );

    let (events, _) = run_fixture("mixed_encoding.log", Encoding::Auto, no_rules());
    check_events("mixed_encoding.log", Encoding::Auto, &events, MIXED);

    // Strict UTF-8 loses only the windows-1251 line.
    let (events, _) = run_fixture("mixed_encoding.log", Encoding::Utf8, no_rules());
    let utf8_only = [MIXED[0], MIXED[2]];
    check_events("mixed_encoding.log", Encoding::Utf8, &events, &utf8_only);
}

// ---------------------------------------------------------------------------------------
// Event times
// ---------------------------------------------------------------------------------------

enum When {
    /// A stamp with an offset: exactly this instant.
    Utc(&'static str),
    /// A stamp without an offset: this wall-clock time in the local zone.
    Local(&'static str),
    /// A time-only stamp before any full date: today (local), at this time.
    Today(&'static str),
}

fn local(naive: NaiveDateTime) -> DateTime<Utc> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .expect("a valid local time")
        .with_timezone(&Utc)
}

fn check_times(name: &str, expected: &[(u64, When)]) {
    let before = Local::now().date_naive();
    let (events, _) = run_fixture(name, Encoding::Auto, no_rules());
    let after = Local::now().date_naive();
    for (line, when) in expected {
        let e = events
            .iter()
            .find(|e| e.origin.as_ref().is_some_and(|o| o.line == *line))
            .unwrap_or_else(|| panic!("{name}: no event from line {line}"));
        let ok = match when {
            When::Utc(s) => e.time == s.parse::<DateTime<Utc>>().unwrap(),
            When::Local(s) => {
                e.time == local(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap())
            }
            When::Today(s) => {
                let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f").unwrap();
                [before, after]
                    .iter()
                    .any(|d: &NaiveDate| e.time == local(d.and_time(t)))
            }
        };
        assert!(ok, "{name} line {line}: time {}", e.time);
    }
}

#[test]
fn event_times_come_from_the_stamp() {
    use When::*;
    check_times(
        "timestamps.log",
        &[
            (1, Today("14:03:00")),
            (2, Local("2026-11-20 14:03:12")),
            (3, Local("2026-11-20 14:03:12.345")),
            (4, Local("2026-11-20 14:03:12")),
            (5, Utc("2026-11-20T14:03:12.345Z")),
            (6, Utc("2026-11-20T11:03:12Z")),
            (7, Utc("2026-11-20T15:33:12Z")),
            (8, Local("2026-11-20 14:03:12")),
            // Line 9 (21.11.2026, INFO) makes no event but gives the next lines a date.
            (10, Local("2026-11-21 14:05:07")),
            (11, Local("2026-11-21 14:05:07.250")),
            (12, Local("2026-11-22 08:00:00")),
            (13, Utc("2026-11-22T08:00:01.5Z")),
            (14, Local("2026-11-22 08:00:02")),
            (15, Local("2026-11-22 08:00:03.125")),
            (16, Local("2026-11-22 08:00:04")),
        ],
    );
    // A traceback takes the time of its first line, a time-only prefix the file's date.
    check_times(
        "traceback_prefixed.log",
        &[
            (2, Local("2026-11-20 16:00:03")),
            (10, Local("2026-11-20 16:00:05")),
        ],
    );
    check_times("cp1251.log", &[(2, Local("2026-11-20 14:03:12"))]);
}

#[test]
fn a_line_without_stamp_is_stamped_when_read() {
    let before = Utc::now();
    let mut parser = FileParser::new(Path::new("p.log"), Encoding::Utf8, no_rules());
    let mut events = Vec::new();
    parser.line(b"ERROR no stamp", &mut events);
    let after = Utc::now();
    // Held for a traceback that may follow; its time is still when it was read.
    parser.finish(&mut events);
    assert_eq!(events.len(), 1);
    assert!(before <= events[0].time && events[0].time <= after);
}

// ---------------------------------------------------------------------------------------
// Tracebacks beyond the fixtures
// ---------------------------------------------------------------------------------------

#[test]
fn a_huge_traceback_is_one_capped_event() {
    let mut parser = FileParser::new(Path::new("p.log"), Encoding::Utf8, no_rules());
    let mut events = Vec::new();
    parser.line(MARK.as_bytes(), &mut events);
    for i in 0..5000 {
        parser.line(
            format!("  File \"x.py\", line {i}, in f").as_bytes(),
            &mut events,
        );
    }
    parser.line(
        b"RecursionError: maximum recursion depth exceeded",
        &mut events,
    );
    parser.finish(&mut events);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        e.message.text(),
        "RecursionError: maximum recursion depth exceeded"
    );
    let details = e.details.as_ref().unwrap().as_str();
    assert!(details.starts_with(MARK));
    assert!(details.ends_with("RecursionError: maximum recursion depth exceeded"));
    assert!(details.contains("more lines"), "the cut is marked");
    assert!(details.lines().count() < 300, "{}", details.lines().count());
    assert_eq!(parser.counts.lines, 5002);
}

// ---------------------------------------------------------------------------------------
// sonix::parse, line by line
// ---------------------------------------------------------------------------------------

type Fields = (LineType, Option<u8>, Option<&'static str>, &'static str);

#[test]
fn sonix_parse_table() {
    use LineType::{Debug, Error, Info, User, Warning};
    let table: &[(&str, Option<Fields>)] = &[
        // TYPE words, any case.
        ("ERROR x", Some((Error, None, None, "x"))),
        ("err x", Some((Error, None, None, "x"))),
        ("Warning x", Some((Warning, None, None, "x"))),
        ("WARN x", Some((Warning, None, None, "x"))),
        ("iNfO x", Some((Info, None, None, "x"))),
        ("USER x", Some((User, None, None, "x"))),
        ("debug x", Some((Debug, None, None, "x"))),
        ("ОШИБКА x", Some((Error, None, None, "x"))),
        ("Ошибка x", Some((Error, None, None, "x"))),
        ("предупреждение x", Some((Warning, None, None, "x"))),
        ("ИНФОРМАЦИЯ x", Some((Info, None, None, "x"))),
        ("Инфо x", Some((Info, None, None, "x"))),
        ("ПОЛЬЗОВАТЕЛЬ x", Some((User, None, None, "x"))),
        ("[ERROR] x", Some((Error, None, None, "x"))),
        ("<info> x", Some((Info, None, None, "x"))),
        ("ERROR", Some((Error, None, None, ""))),
        ("ERROR:", Some((Error, None, None, ""))),
        // Level forms.
        ("ERROR 1 x", Some((Error, Some(1), None, "x"))),
        ("ERROR (2) x", Some((Error, Some(2), None, "x"))),
        ("ERROR [3] x", Some((Error, Some(3), None, "x"))),
        ("ERROR L4 x", Some((Error, Some(4), None, "x"))),
        ("ERROR level=5 x", Some((Error, Some(5), None, "x"))),
        ("ERROR(1) x", Some((Error, Some(1), None, "x"))),
        ("ERROR 1: x", Some((Error, Some(1), None, "x"))),
        ("ERROR 1", Some((Error, Some(1), None, ""))),
        ("ERROR 0 x", Some((Error, None, None, "0 x"))),
        ("ERROR 6 x", Some((Error, None, None, "6 x"))),
        ("ERROR (6) x", Some((Error, None, None, "(6) x"))),
        ("ERROR 12 x", Some((Error, None, None, "12 x"))),
        ("ERROR 1x", Some((Error, None, None, "1x"))),
        ("ERROR 1_000 x", Some((Error, None, None, "1_000 x"))),
        ("ERROR L 1 x", Some((Error, None, None, "L 1 x"))),
        ("ERROR (1 x", Some((Error, None, None, "(1 x"))),
        ("ERROR level=6 x", Some((Error, None, None, "level=6 x"))),
        ("ERROR: 2 x", Some((Error, None, None, "2 x"))),
        ("ERROR: L2 x", Some((Error, Some(2), None, "x"))),
        // Separators.
        ("ERROR\t2\tx", Some((Error, Some(2), None, "x"))),
        ("ERROR | 2 | x", Some((Error, Some(2), None, "x"))),
        ("ERROR;2;x", Some((Error, Some(2), None, "x"))),
        ("ERROR - 2 - x", Some((Error, Some(2), None, "x"))),
        ("ERROR - x - y", Some((Error, None, None, "x - y"))),
        ("ERROR x   ", Some((Error, None, None, "x"))),
        // Sources.
        ("ERROR [det] x", Some((Error, None, Some("det"), "x"))),
        ("ERROR [ det ] x", Some((Error, None, Some("det"), "x"))),
        ("ERROR 2 [det]: x", Some((Error, Some(2), Some("det"), "x"))),
        ("ERROR det: x", Some((Error, None, Some("det"), "x"))),
        (
            "ERROR det.sub: x",
            Some((Error, None, Some("det.sub"), "x")),
        ),
        ("ERROR det:", Some((Error, None, Some("det"), ""))),
        ("ERROR det:x", Some((Error, None, None, "det:x"))),
        ("ERROR 12: x", Some((Error, None, None, "12: x"))),
        ("ERROR f(x): y", Some((Error, None, None, "f(x): y"))),
        ("ERROR \"q\": y", Some((Error, None, None, "\"q\": y"))),
        (
            "ERROR [unclosed x",
            Some((Error, None, None, "[unclosed x")),
        ),
        ("ERROR [] x", Some((Error, None, None, "[] x"))),
        (
            "ERROR 2 [det] [other] x",
            Some((Error, Some(2), Some("det"), "[other] x")),
        ),
        // Timestamps in front.
        (
            "2026-11-20 14:03:12 ERROR x",
            Some((Error, None, None, "x")),
        ),
        ("[14:03:12] INFO x", Some((Info, None, None, "x"))),
        (
            "  14:03:12.1 WARN 1 [m] x",
            Some((Warning, Some(1), Some("m"), "x")),
        ),
        // Not protocol lines.
        ("", None),
        ("   ", None),
        ("ERRORS x", None),
        ("ERROR1 x", None),
        ("ERROR_x", None),
        ("Errors: 0", None),
        ("INFORMATION x", None),
        ("ОШИБКИ x", None),
        ("x ERROR y", None),
        ("[det] ERROR x", None),
        ("[ERROR x", None),
        ("<ERROR] x", None),
        ("2026-11-20 14:03:12", None),
        ("2026-11-20 14:03:12ERROR x", None),
        ("2026-02-30 14:03:12 ERROR x", None),
        ("14:60:00 ERROR x", None),
        ("[14:03:12 ERROR x", None),
        ("Traceback (most recent call last):", None),
    ];
    for (line, want) in table {
        let got = sonix::parse(line).map(|p| (p.kind, p.level, p.source, p.message));
        assert_eq!(got, *want, "sonix::parse({line:?})");
    }
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn sonix_parse_stamps() {
    let off = |secs| Some(chrono::FixedOffset::east_opt(secs).unwrap());
    let t = |s| Stamp::Time(NaiveTime::parse_from_str(s, "%H:%M:%S%.f").unwrap());
    let table: &[(&str, Option<Stamp>)] = &[
        ("ERROR x", None),
        (
            "2026-11-20 14:03:12 ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), None)),
        ),
        (
            "2026-11-20 14:03:12.345 ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12.345"), None)),
        ),
        (
            "2026-11-20T14:03:12 ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), None)),
        ),
        (
            "2026-11-20T14:03:12.345Z ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12.345"), off(0))),
        ),
        (
            "2026-11-20T14:03:12+03:00 ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), off(3 * 3600))),
        ),
        (
            "2026-11-20T14:03:12.5-05:30 ERROR x",
            Some(Stamp::Full(
                dt("2026-11-20 14:03:12.5"),
                off(-(5 * 3600 + 1800)),
            )),
        ),
        (
            "20.11.2026 14:03:12 ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), None)),
        ),
        ("14:03:12 ERROR x", Some(t("14:03:12"))),
        ("14:03:12.345 ERROR x", Some(t("14:03:12.345"))),
        (
            "[2026-11-20 14:03:12] ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), None)),
        ),
        (
            "[2026-11-20T14:03:12Z] ERROR x",
            Some(Stamp::Full(dt("2026-11-20 14:03:12"), off(0))),
        ),
        ("[14:03:12] ERROR x", Some(t("14:03:12"))),
    ];
    for (line, want) in table {
        let got = sonix::parse(line).map(|p| p.stamp);
        assert_eq!(got, Some(*want), "sonix::parse({line:?}).stamp");
    }
}

// ---------------------------------------------------------------------------------------
// User rules
// ---------------------------------------------------------------------------------------

fn rule(
    name: &str,
    pattern: &str,
    event: Option<&str>,
    severity: Severity,
    key: Option<&str>,
) -> RuleConfig {
    RuleConfig {
        name: name.to_string(),
        pattern: regex::Regex::new(pattern).unwrap(),
        event: event.map(str::to_string),
        severity,
        key: key.map(str::to_string),
    }
}

fn fixture_rules() -> Rules {
    Rules::new(&[
        // A key template over a capture: each channel is an alert of its own.
        rule(
            "hv",
            r"HV trip on channel (?P<ch>\d+)",
            Some("hv_trip"),
            Major,
            Some("hv:$ch"),
        ),
        // Would match the HV lines too, but the earlier rule wins.
        rule(
            "trip",
            r"(?P<message>\w+ trip)\b",
            Some("trip"),
            Minor,
            None,
        ),
        rule("heartbeat", r"\[heartbeat\]", None, Info, None),
        rule(
            "beam",
            r"(?P<message>beam current 0 mA)",
            Some("beam_lost"),
            Major,
            None,
        ),
        rule(
            "changer",
            r"^(?P<source>SAMPLE CHANGER): (?P<message>position \d+ reached)$",
            Some("sample_position"),
            Info,
            Some("${source}/pos"),
        ),
        // Overrides the built-in mapping (ERROR without level would be alarm_major).
        rule(
            "chopper",
            r"\[chopper\] phase lost",
            Some(names::ALARM_MINOR),
            Minor,
            None,
        ),
    ])
    .unwrap()
}

#[test]
fn user_rules_come_before_the_grammar() {
    let (events, counts) = run_fixture("rules.log", Encoding::Utf8, Arc::new(fixture_rules()));
    let got: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.origin.as_ref().unwrap().line,
                e.name.as_str(),
                e.severity,
                e.source.as_deref(),
                e.message.text(),
                e.key.as_str(),
            )
        })
        .collect();
    let want = vec![
        (
            1,
            "hv_trip",
            Major,
            Some("detector"),
            "HV trip on channel 7".to_string(),
            "hv:7",
        ),
        (
            2,
            "hv_trip",
            Major,
            Some("detector"),
            "HV trip on channel 12".to_string(),
            "hv:12",
        ),
        (
            3,
            "alarm_minor",
            Minor,
            Some("chopper"),
            "phase lost".to_string(),
            "alarm_minor|chopper|phase lost",
        ),
        (
            4,
            "beam_lost",
            Major,
            None,
            "beam current 0 mA".to_string(),
            "beam_lost||beam current # mA",
        ),
        // 5: [heartbeat] ERROR line silenced by the "ignore" rule.
        (
            6,
            "sample_position",
            Info,
            Some("SAMPLE CHANGER"),
            "position 5 reached".to_string(),
            "SAMPLE CHANGER/pos",
        ),
        // 7: no rule matches: the built-in mapping.
        (
            7,
            "alarm_warning",
            Warning,
            Some("vacuum"),
            "pressure 2e-3 mbar".to_string(),
            "alarm_warning|vacuum|pressure #e-# mbar",
        ),
        (
            8,
            "trip",
            Minor,
            Some("cryostat"),
            "quench trip".to_string(),
            "trip|cryostat|quench trip",
        ),
    ];
    assert_eq!(got, want, "\n{}", show(&events));
    assert_eq!(counts.lines, 8);
    // The ignored line is still counted as an ERROR line.
    assert_eq!(counts.error, 5);

    // Without the rules the same file is the built-in mapping only.
    let (events, _) = run_fixture("rules.log", Encoding::Utf8, no_rules());
    let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [MAJOR, MAJOR, MAJOR, MAJOR, WARN, MINOR],
        "{}",
        show(&events)
    );
}

#[test]
fn rules_apply_to_the_decoded_line() {
    let rules = Rules::new(&[rule(
        "pump",
        r"(?P<source>насос): (?P<message>.+)$",
        Some("pump"),
        Warning,
        None,
    )])
    .unwrap();
    let (events, _) = run_fixture("cp1251.log", Encoding::Windows1251, Arc::new(rules));
    let pump: Vec<_> = events.iter().filter(|e| e.name == "pump").collect();
    assert_eq!(pump.len(), 1, "{}", show(&events));
    assert_eq!(pump[0].source.as_deref(), Some("насос"));
    assert_eq!(pump[0].message.text(), "давление растёт");
    assert_eq!(pump[0].origin.as_ref().unwrap().line, 3);
    // The other lines still go through the grammar.
    assert_eq!(events.len(), CP1251.len());
}

#[test]
fn an_ignore_rule_silences_a_traceback() {
    let rules = Rules::new(&[rule(
        "no tracebacks",
        r"^Traceback \(most recent call last\):$",
        None,
        Info,
        None,
    )])
    .unwrap();
    let (events, _) = run_fixture("traceback_simple.log", Encoding::Utf8, Arc::new(rules));
    // The Traceback line is dropped; its frames are not protocol lines, and its final
    // line is neither: nothing is left.
    assert!(events.is_empty(), "{}", show(&events));
}

// ---------------------------------------------------------------------------------------
// Property tests: nothing panics
// ---------------------------------------------------------------------------------------

/// Pieces of protocol lines, and bytes that are trouble for a decoder.
const FRAGMENTS: &[&[u8]] = &[
    b"2026-11-20 14:03:12",
    b"2026-11-20T14:03:12",
    b"20.11.2026 14:03:12",
    b"14:03:12",
    b"99:99:99",
    b"9999-99-99 ",
    b".345",
    b",1234567890123",
    b"Z",
    b"+03:00",
    b"-0130",
    b"+99:99",
    b"[",
    b"]",
    b"(",
    b")",
    b"<",
    b">",
    b" ",
    b"\t",
    b"|",
    b":",
    b";",
    b" - ",
    b"-",
    b"ERROR",
    b"err",
    b"WARNING",
    b"warn",
    b"INFO",
    b"USER",
    b"DEBUG",
    "ОШИБКА".as_bytes(),
    "Предупреждение".as_bytes(),
    "ИНФО".as_bytes(),
    b"\xCE\xD8\xC8\xC1\xCA\xC0", // ОШИБКА in windows-1251
    b"1",
    b"3",
    b"9",
    b"L1",
    b"level=",
    b"[det]",
    b"motor:",
    b"Traceback (most recent call last):",
    b"  File \"x.py\", line 1, in f",
    b"ValueError: x",
    b"KeyboardInterrupt",
    b"measurement started",
    "конец измерения".as_bytes(),
    b"interlock",
    b"\r",
    b"\0",
    b"\xEF\xBB\xBF",
    b"\xFF",
    b"\xC3",
    b"\xE2\x82",
    b"\xF0\x9F\x98",
    "é𝄞\u{FFFD}".as_bytes(),
];

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::sample::select(FRAGMENTS).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..16),
    ]
}

/// A line made of protocol pieces: more often parsed than random bytes.
fn grammarish_line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(fragment(), 0..12).prop_map(|v| v.concat())
}

fn any_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        grammarish_line(),
    ]
}

fn encoding() -> impl Strategy<Value = Encoding> {
    prop_oneof![
        Just(Encoding::Auto),
        Just(Encoding::Utf8),
        Just(Encoding::Windows1251),
    ]
}

/// Rules that match often, so the rule path sees the odd inputs too (compiled once:
/// building regexes per case dominates a debug run).
fn fuzz_rules() -> Arc<Rules> {
    static RULES: LazyLock<Arc<Rules>> = LazyLock::new(|| {
        Arc::new(
            Rules::new(&[
                rule("ignore", r"\x00", None, Info, None),
                rule(
                    "caps",
                    r"(?P<source>\w+)?:(?P<message>.*)(?P<n>\d)",
                    Some("custom"),
                    Warning,
                    Some("$source-$n-${message}"),
                ),
            ])
            .unwrap(),
        )
    });
    Arc::clone(&RULES)
}

/// Feeds every line, then finishes, and checks what must hold for any input.
fn feed_all(lines: &[Vec<u8>], encoding: Encoding, rules: Arc<Rules>) -> Vec<Event> {
    let mut parser = FileParser::new(Path::new("fuzz.log"), encoding, rules);
    let mut events = Vec::new();
    for line in lines {
        parser.line(line, &mut events);
    }
    parser.finish(&mut events);
    assert!(!parser.is_pending());
    let c = &parser.counts;
    assert_eq!(c.lines, lines.len() as u64);
    assert_eq!(
        c.lines,
        c.error + c.warning + c.info + c.user + c.debug + c.other
    );
    for e in &events {
        let line = e.origin.as_ref().unwrap().line;
        assert!((1..=lines.len() as u64).contains(&line), "origin {line}");
        assert!(!e.name.is_empty());
        if let Some(d) = e.details.as_ref().map(protowatch::event::Details::as_str) {
            assert!(
                d.starts_with(MARK),
                "{:?}",
                d.chars().take(200).collect::<String>()
            );
            assert_eq!(e.severity, Severity::Major);
        }
    }
    events
}

fn bytes_with_newlines() -> impl Strategy<Value = Vec<u8>> {
    // Random bytes with about one in eight turned into a line break, a CR, a NUL or a
    // blank (mapping is much cheaper than a `prop_oneof!` per byte in a debug build).
    proptest::collection::vec(any::<u8>(), 0..4096).prop_map(|mut v| {
        for b in &mut v {
            *b = match *b {
                0..=11 => b'\n',
                12..=17 => b'\r',
                18..=23 => 0,
                24..=31 => b' ',
                other => other,
            };
        }
        v
    })
}

const HUGE_PREFIXES: &[&[u8]] = &[b"", b"ERROR 1 [det] ", b"14:03:12 WARN ", b"  "];

/// A line of about `len` bytes: a piece repeated, or pseudo-random bytes from a seed.
fn huge_line() -> impl Strategy<Value = Vec<u8>> {
    let repeated = (grammarish_line(), 1usize..=(1 << 20)).prop_map(|(piece, len)| {
        if piece.is_empty() {
            vec![b'x'; len]
        } else {
            piece.iter().copied().cycle().take(len).collect()
        }
    });
    let random = (any::<u64>(), 1usize..=(1 << 20)).prop_map(|(seed, len)| {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect()
    });
    (
        proptest::sample::select(HUGE_PREFIXES),
        prop_oneof![repeated, random],
    )
        .prop_map(|(prefix, body)| [prefix, &body[..]].concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn file_parser_never_panics_on_lines(
        lines in proptest::collection::vec(any_line(), 0..40),
        enc in encoding(),
        with_rules in any::<bool>(),
    ) {
        let rules = if with_rules { fuzz_rules() } else { no_rules() };
        feed_all(&lines, enc, rules);
    }

    #[test]
    fn file_parser_never_panics_on_a_byte_stream(
        bytes in bytes_with_newlines(),
        enc in encoding(),
        with_rules in any::<bool>(),
    ) {
        let lines: Vec<Vec<u8>> = split_lines(&bytes).into_iter().map(<[u8]>::to_vec).collect();
        let rules = if with_rules { fuzz_rules() } else { no_rules() };
        feed_all(&lines, enc, rules);
    }

    #[test]
    fn sonix_parse_never_panics(s in any::<String>()) {
        check_parsed(&s);
    }

    #[test]
    fn sonix_parse_never_panics_on_protocol_pieces(raw in grammarish_line()) {
        check_parsed(&String::from_utf8_lossy(&raw));
    }
}

/// What holds for any line `sonix::parse` accepts.
fn check_parsed(line: &str) {
    if let Some(p) = sonix::parse(line) {
        assert!(line.contains(p.message), "{p:?}");
        assert_eq!(p.message, p.message.trim_end());
        if let Some(l) = p.level {
            assert!((1..=5).contains(&l), "{p:?}");
        }
        if let Some(s) = p.source {
            assert!(!s.is_empty() && line.contains(s), "{p:?}");
        }
        let _ = sonix::classify(&p);
    }
}

proptest! {
    // Megabyte lines are slow to build and scan in a debug build: few cases.
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn file_parser_never_panics_on_huge_lines(
        line in huge_line(),
        enc in encoding(),
        with_rules in any::<bool>(),
        traceback_open in any::<bool>(),
    ) {
        let mut lines = Vec::new();
        if traceback_open {
            lines.push(MARK.as_bytes().to_vec());
        }
        lines.push(line.clone());
        lines.push(line);
        let rules = if with_rules { fuzz_rules() } else { no_rules() };
        feed_all(&lines, enc, rules);
    }

    #[test]
    fn file_parser_never_panics_on_many_lines(
        lines in proptest::collection::vec(grammarish_line(), 1000..3000),
        enc in encoding(),
    ) {
        feed_all(&lines, enc, no_rules());
    }
}
