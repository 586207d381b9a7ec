//! The handover digest: what the night left for the morning shift, in one message —
//! new alerts by severity, what is still active and who acknowledged it, what silences
//! held back, the keys seen most and the deliveries that failed.
//!
//! Composed as a [`Message`] like any other, so every service renders it its own way
//! (mail, Telegram, SciLog, …) and it is routed, queued and retried on the one path;
//! `/status` and the console show the same summary composed now. The figures are
//! gathered by the caller from the store; this module only words them, so the text can
//! be tested for a known set of alerts.

use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use rusqlite::OptionalExtension;

use crate::event::{Message, Severity, Span};
use crate::messengers::Destination;
use crate::store::{Store, StoreError, Tx};

use super::window::Zone;

/// An alert as the digest lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub id: i64,
    pub severity: Severity,
    pub subject: String,
    pub times_seen: u64,
    /// Who acknowledged it (`telegram:@anna (42)`), if anyone.
    pub acknowledged_by: Option<String>,
}

/// The figures of one digest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    /// The period covered: since the previous digest (or a day), until now.
    pub since_ms: i64,
    pub until_ms: i64,
    /// Alerts first seen in the period, per severity.
    pub new: Vec<(Severity, u64)>,
    /// Alerts active at the end of the period, most severe first.
    pub active: Vec<Line>,
    /// Events held back by silences and maintenance windows in the period.
    pub silenced: u64,
    /// The keys seen most in the period (at most five): what the alert says, and how often.
    pub top: Vec<(String, u64)>,
    /// Deliveries that failed for good in the period, per destination (`mail:heads`).
    pub failed: Vec<(String, u64)>,
}

/// At most this many active alerts are listed by name; the rest are counted.
const LISTED: usize = 10;

fn when(ms: i64, zone: &Zone) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
    zone.local(t).format("%a %d %b %H:%M").to_string()
}

fn bold(text: impl Into<String>) -> Span {
    Span {
        text: text.into(),
        bold: true,
        ..Span::default()
    }
}

fn plain(text: impl Into<String>) -> Span {
    Span {
        text: text.into(),
        ..Span::default()
    }
}

/// The digest's message. `title` names what it is (`Handover` for the scheduled one,
/// `Status` for `/status`).
pub fn compose(title: &str, s: &Summary, zone: &Zone) -> Message {
    let mut spans = vec![bold(format!(
        "{title}: {} – {}\n",
        when(s.since_ms, zone),
        when(s.until_ms, zone)
    ))];

    let new_total: u64 = s.new.iter().map(|(_, n)| n).sum();
    let mut new = format!("New alerts: {new_total}");
    if new_total > 0 {
        let mut by: Vec<&(Severity, u64)> = s.new.iter().filter(|(_, n)| *n > 0).collect();
        by.sort_by_key(|b| std::cmp::Reverse(b.0));
        let parts: Vec<String> = by
            .iter()
            .map(|(sev, n)| format!("{n} {}", sev.as_str()))
            .collect();
        let _ = write!(new, " ({})", parts.join(", "));
    }
    spans.push(plain(new + "\n"));

    if s.active.is_empty() {
        spans.push(plain("Still active: none\n"));
    } else {
        spans.push(bold(format!("Still active: {}\n", s.active.len())));
        for a in s.active.iter().take(LISTED) {
            let mut line = format!("#{} {} {}", a.id, a.severity.as_str(), a.subject);
            if a.times_seen > 1 {
                let _ = write!(line, " (seen {} times)", a.times_seen);
            }
            match &a.acknowledged_by {
                Some(by) => {
                    let _ = write!(line, " — acknowledged by {by}");
                }
                None => line.push_str(" — not acknowledged"),
            }
            spans.push(plain(format!("  {line}\n")));
        }
        if s.active.len() > LISTED {
            spans.push(plain(format!("  … and {} more\n", s.active.len() - LISTED)));
        }
    }

    if s.silenced > 0 {
        spans.push(plain(format!(
            "Held back by silences and maintenance: {} event{}\n",
            s.silenced,
            if s.silenced == 1 { "" } else { "s" }
        )));
    }

    if !s.top.is_empty() {
        spans.push(plain("Seen most:\n"));
        for (subject, n) in s.top.iter().take(5) {
            spans.push(plain(format!("  {n}× {subject}\n")));
        }
    }

    if s.failed.is_empty() {
        spans.push(plain("Failed deliveries: none"));
    } else {
        let parts: Vec<String> = s.failed.iter().map(|(d, n)| format!("{d} {n}")).collect();
        spans.push(bold(format!("Failed deliveries: {}", parts.join(", "))));
    }

    Message {
        spans,
        ..Message::default()
    }
}

/// The first instant after `after` at which the clock of `zone` reads `at`: when a daily
/// digest is next due. A time the clock skips that day (spring forward) is the first
/// one after it.
pub fn next_at(at: NaiveTime, zone: &Zone, after: DateTime<Utc>) -> DateTime<Utc> {
    let today = zone.local(after).date();
    (0..=2)
        .filter_map(|d| today.checked_add_signed(Duration::days(d)))
        .map(|date| zone.instant(date.and_time(at)))
        .find(|t| *t > after)
        .unwrap_or(after + Duration::days(1))
}

/// Where a digest's last sending is kept (`meta`): by what it is, so that a digest whose
/// time, zone or recipients were changed starts afresh.
pub fn schedule_key(at: NaiveTime, zone: &Zone, to: &[Destination]) -> String {
    let to: Vec<String> = to.iter().map(|d| d.to_string()).collect();
    format!(
        "digest {} {} {}",
        at.format("%H:%M"),
        zone.name(),
        to.join(",")
    )
}

/// When the digest of `key` was last sent (ms), if ever.
pub fn last_sent(store: &Store, key: &str) -> Result<Option<i64>, StoreError> {
    store.with_conn(|c| {
        c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map(|v| v.and_then(|v| v.parse().ok()))
    })
}

/// Records the sending, in the transaction that queues the digest: a restart never
/// sends one twice.
pub fn mark_sent(tx: &Tx<'_>, key: &str, at_ms: i64) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        rusqlite::params![key, at_ms.to_string()],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zurich() -> Zone {
        Zone::parse(Some("Europe/Zurich")).unwrap()
    }

    /// 2025-12-06 07:30 and 2025-12-07 07:30 in Zurich (CET, UTC+1).
    const SINCE: i64 = 1_765_002_600_000;
    const UNTIL: i64 = 1_765_089_000_000;

    #[test]
    fn the_text_for_a_known_night() {
        let s = Summary {
            since_ms: SINCE,
            until_ms: UNTIL,
            new: vec![
                (Severity::Minor, 5),
                (Severity::Major, 2),
                (Severity::Warning, 0),
            ],
            active: vec![
                Line {
                    id: 12,
                    severity: Severity::Major,
                    subject: "HV trip on bank 3".into(),
                    times_seen: 4,
                    acknowledged_by: Some("telegram:@anna (42)".into()),
                },
                Line {
                    id: 15,
                    severity: Severity::Minor,
                    subject: "vacuum lost in sample chamber".into(),
                    times_seen: 1,
                    acknowledged_by: None,
                },
            ],
            silenced: 17,
            top: vec![
                ("motor x: limit switch hit".into(), 40),
                ("HV trip on bank 3".into(), 4),
            ],
            failed: vec![("mail:heads".into(), 2)],
        };
        let m = compose("Handover", &s, &zurich());
        assert_eq!(
            m.text(),
            "Handover: Sat 06 Dec 07:30 – Sun 07 Dec 07:30\n\
             New alerts: 7 (2 major, 5 minor)\n\
             Still active: 2\n\
             \x20 #12 major HV trip on bank 3 (seen 4 times) — acknowledged by telegram:@anna (42)\n\
             \x20 #15 minor vacuum lost in sample chamber — not acknowledged\n\
             Held back by silences and maintenance: 17 events\n\
             Seen most:\n\
             \x20 40× motor x: limit switch hit\n\
             \x20 4× HV trip on bank 3\n\
             Failed deliveries: mail:heads 2"
        );
        assert!(m.spans[0].bold, "the title stands out");
    }

    #[test]
    fn the_next_digest_is_at_its_time_on_the_zones_clock() {
        let at = NaiveTime::from_hms_opt(7, 30, 0).unwrap();
        let z = zurich();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Winter: 07:30 CET is 06:30 UTC; asked at 06:00 UTC, it is today.
        assert_eq!(
            next_at(at, &z, utc("2026-03-27T06:00:00Z")),
            utc("2026-03-27T06:30:00Z")
        );
        // Asked at the very time, it is tomorrow.
        assert_eq!(
            next_at(at, &z, utc("2026-03-27T06:30:00Z")),
            utc("2026-03-28T06:30:00Z")
        );
        // Across the spring change (2026-03-29): 07:30 CEST is 05:30 UTC.
        assert_eq!(
            next_at(at, &z, utc("2026-03-28T07:00:00Z")),
            utc("2026-03-29T05:30:00Z")
        );
    }

    #[test]
    fn a_quiet_night_says_so() {
        let s = Summary {
            since_ms: SINCE,
            until_ms: UNTIL,
            ..Summary::default()
        };
        assert_eq!(
            compose("Status", &s, &zurich()).text(),
            "Status: Sat 06 Dec 07:30 – Sun 07 Dec 07:30\n\
             New alerts: 0\n\
             Still active: none\n\
             Failed deliveries: none"
        );
    }
}
