//! Maintenance windows: when alarms are expected and held back — a weekly slot
//! ("Tuesdays 08:00–12:00") or a date range (a shutdown), in a named time zone.
//!
//! A window is defined on the wall clock of its zone, and an instant is inside it when
//! its local time is: that one rule makes it right across daylight-saving changes
//! without special cases. "08:00–12:00" is four hours every week of the year; a start
//! that falls in the hour skipped in spring begins at the first local time after it;
//! in the hour repeated in autumn both passes count. The zone database is chrono-tz's
//! (the IANA database compiled in, so Windows needs no zone files); without a zone the
//! PC's own is used, as the operator reads the clock on the wall.

use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

use super::matcher::Matchers;

/// A time zone: a named IANA zone, or the PC's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    Local,
    Named(Tz),
}

/// Why a window's text was refused; the config checker adds where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Zurich\"")]
    Zone(String),
    #[error("{0:?} is not a time of day: expected \"HH:MM\", e.g. \"08:00\"")]
    Time(String),
    #[error(
        "{0:?} is not a date and time: expected \"YYYY-MM-DDTHH:MM\", e.g. \"2026-12-21T00:00\""
    )]
    DateTime(String),
    #[error("{0:?} is not a day of the week: expected mon, tue, wed, thu, fri, sat or sun")]
    Day(String),
    #[error("from and to are the same time: the window would be empty")]
    Empty,
    #[error("to ({to}) is not after from ({from})")]
    Backwards { from: String, to: String },
}

impl Zone {
    /// An IANA name (`Europe/Zurich`); `local` or nothing is the PC's zone.
    pub fn parse(name: Option<&str>) -> Result<Zone, WindowError> {
        match name {
            None | Some("local") => Ok(Zone::Local),
            Some(n) => Tz::from_str(n)
                .map(Zone::Named)
                .map_err(|_| WindowError::Zone(n.to_string())),
        }
    }

    pub fn name(&self) -> String {
        match self {
            Zone::Local => "local".to_string(),
            Zone::Named(tz) => tz.name().to_string(),
        }
    }

    /// The wall-clock time in this zone at `t`.
    pub fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Local => t.with_timezone(&chrono::Local).naive_local(),
            Zone::Named(tz) => t.with_timezone(tz).naive_local(),
        }
    }

    /// The instant a wall-clock time names. A time the clock skips (spring forward) is
    /// the first one after it that exists; a time it passes twice (autumn) is the first
    /// pass.
    pub fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        // Clocks move by whole minutes and by at most a few hours; a day is a bound.
        let mut probe = local;
        for _ in 0..=24 * 60 {
            if let Some(t) = self.earliest(probe) {
                return t;
            }
            probe += Duration::minutes(1);
        }
        // Unreachable with the IANA database; read as UTC rather than fail.
        local.and_utc()
    }

    fn earliest(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        fn first<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<DateTime<Utc>> {
            match r {
                LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(a, b) => {
                    Some(a.with_timezone(&Utc).min(b.with_timezone(&Utc)))
                }
                LocalResult::None => None,
            }
        }
        match self {
            Zone::Local => first(chrono::Local.from_local_datetime(&local)),
            Zone::Named(tz) => first(tz.from_local_datetime(&local)),
        }
    }
}

/// `"HH:MM"`.
pub fn parse_time(text: &str) -> Result<NaiveTime, WindowError> {
    let ok = text.len() == 5 && text.as_bytes()[2] == b':';
    ok.then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
        .flatten()
        .ok_or_else(|| WindowError::Time(text.to_string()))
}

/// `"YYYY-MM-DDTHH:MM"` (seconds allowed), or a date alone for its midnight.
pub fn parse_date_time(text: &str) -> Result<NaiveDateTime, WindowError> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map(|d| d.and_time(NaiveTime::MIN))
        })
        .map_err(|_| WindowError::DateTime(text.to_string()))
}

/// `mon` … `sun`, or the English name (`Tuesday`), any case.
pub fn parse_day(text: &str) -> Result<Weekday, WindowError> {
    let t = text.to_ascii_lowercase();
    const DAYS: [(&str, Weekday); 7] = [
        ("mon", Weekday::Mon),
        ("tue", Weekday::Tue),
        ("wed", Weekday::Wed),
        ("thu", Weekday::Thu),
        ("fri", Weekday::Fri),
        ("sat", Weekday::Sat),
        ("sun", Weekday::Sun),
    ];
    DAYS.iter()
        .find(|(short, day)| t == *short || t == day_name(*day).to_ascii_lowercase())
        .map(|(_, d)| *d)
        .ok_or_else(|| WindowError::Day(text.to_string()))
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// When a window is open, on its zone's wall clock.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// On each listed day from `from` to `to`; a `to` at or before `from` ends on the
    /// next day ("22:00"–"06:00" is the night after each listed day).
    Weekly {
        days: Vec<Weekday>,
        from: NaiveTime,
        to: NaiveTime,
    },
    /// Once, from one wall-clock time to another.
    Range {
        from: NaiveDateTime,
        to: NaiveDateTime,
    },
}

/// A named maintenance window and what it holds back.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub schedule: Schedule,
    pub zone: Zone,
    pub matchers: Matchers,
}

impl Schedule {
    pub fn weekly(days: Vec<Weekday>, from: NaiveTime, to: NaiveTime) -> Result<Self, WindowError> {
        if from == to {
            return Err(WindowError::Empty);
        }
        Ok(Schedule::Weekly { days, from, to })
    }

    pub fn range(from: NaiveDateTime, to: NaiveDateTime) -> Result<Self, WindowError> {
        if to <= from {
            return Err(WindowError::Backwards {
                from: from.format("%Y-%m-%dT%H:%M").to_string(),
                to: to.format("%Y-%m-%dT%H:%M").to_string(),
            });
        }
        Ok(Schedule::Range { from, to })
    }
}

impl Window {
    /// Whether `t` falls inside the window.
    pub fn open_at(&self, t: DateTime<Utc>) -> bool {
        let local = self.zone.local(t);
        match &self.schedule {
            Schedule::Range { from, to } => {
                // Compared as instants: a range that ends in the repeated autumn hour ends
                // at its first pass, not an hour later.
                self.zone.instant(*from) <= t && t < self.zone.instant(*to)
            }
            Schedule::Weekly { days, from, to } => {
                let time = local.time();
                let day = local.weekday();
                if from < to {
                    days.contains(&day) && *from <= time && time < *to
                } else {
                    (days.contains(&day) && time >= *from)
                        || (days.contains(&day.pred()) && time < *to)
                }
            }
        }
    }

    /// The first instant after `t` at which the window opens or closes, if it ever does
    /// again: when the agent must look again (a held-back alert still active when a
    /// window closes is sent then).
    pub fn next_change(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let now_open = self.open_at(t);
        let mut candidates: Vec<DateTime<Utc>> = match &self.schedule {
            Schedule::Range { from, to } => {
                vec![self.zone.instant(*from), self.zone.instant(*to)]
            }
            Schedule::Weekly { from, to, .. } => {
                let today = self.zone.local(t).date();
                // Yesterday's night slot may still be open; eight days cover a week.
                (-1..=8)
                    .filter_map(|d| today.checked_add_signed(Duration::days(d)))
                    .flat_map(|date| {
                        let end_date = if to <= from {
                            date.succ_opt()
                        } else {
                            Some(date)
                        };
                        let start = self.zone.instant(date.and_time(*from));
                        let end = end_date.map(|e| self.zone.instant(e.and_time(*to)));
                        std::iter::once(start).chain(end)
                    })
                    .collect()
            }
        };
        candidates.retain(|c| *c > t);
        candidates.sort();
        candidates
            .into_iter()
            .find(|c| self.open_at(*c) != now_open)
    }

    /// As a person reads it: `Tuesday 08:00–12:00 (Europe/Zurich)`.
    pub fn describe(&self) -> String {
        let when = match &self.schedule {
            Schedule::Weekly { days, from, to } => {
                let names: Vec<&str> = days.iter().map(|d| day_name(*d)).collect();
                format!(
                    "{} {}–{}",
                    names.join(", "),
                    from.format("%H:%M"),
                    to.format("%H:%M")
                )
            }
            Schedule::Range { from, to } => format!(
                "{} – {}",
                from.format("%Y-%m-%d %H:%M"),
                to.format("%Y-%m-%d %H:%M")
            ),
        };
        format!("{when} ({})", self.zone.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zurich() -> Zone {
        Zone::parse(Some("Europe/Zurich")).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn tuesday_morning() -> Window {
        Window {
            name: "tuesday".into(),
            schedule: Schedule::weekly(
                vec![Weekday::Tue],
                parse_time("08:00").unwrap(),
                parse_time("12:00").unwrap(),
            )
            .unwrap(),
            zone: zurich(),
            matchers: Matchers::default(),
        }
    }

    #[test]
    fn a_weekly_window_holds_on_the_wall_clock_across_dst() {
        let w = tuesday_morning();
        // Winter (CET, UTC+1): Tuesday 2026-03-24 08:00 local is 07:00 UTC.
        assert!(!w.open_at(utc("2026-03-24T06:59:59Z")));
        assert!(w.open_at(utc("2026-03-24T07:00:00Z")));
        assert!(w.open_at(utc("2026-03-24T10:59:59Z")));
        assert!(!w.open_at(utc("2026-03-24T11:00:00Z")));
        // Clocks go forward on Sunday 2026-03-29; summer (CEST, UTC+2) the next Tuesday:
        // the same 08:00 local is 06:00 UTC.
        assert!(!w.open_at(utc("2026-03-31T05:59:59Z")));
        assert!(w.open_at(utc("2026-03-31T06:00:00Z")));
        assert!(!w.open_at(utc("2026-03-31T10:00:00Z")));
        // Back in winter after 2026-10-25.
        assert!(w.open_at(utc("2026-10-27T07:00:00Z")));
        assert!(!w.open_at(utc("2026-10-27T06:30:00Z")));
        // Not on other days.
        assert!(!w.open_at(utc("2026-03-25T08:00:00Z")));
        assert_eq!(w.describe(), "Tuesday 08:00–12:00 (Europe/Zurich)");
    }

    #[test]
    fn next_change_finds_the_next_opening_and_closing_across_dst() {
        let w = tuesday_morning();
        // From the Friday before the spring change, the next opening is the Tuesday after
        // it, at 08:00 summer time.
        let t = utc("2026-03-27T12:00:00Z");
        let open = w.next_change(t).unwrap();
        assert_eq!(open, utc("2026-03-31T06:00:00Z"));
        assert_eq!(w.next_change(open).unwrap(), utc("2026-03-31T10:00:00Z"));
    }

    #[test]
    fn a_night_window_runs_past_midnight() {
        let w = Window {
            schedule: Schedule::weekly(
                vec![Weekday::Sat],
                parse_time("22:00").unwrap(),
                parse_time("06:00").unwrap(),
            )
            .unwrap(),
            ..tuesday_morning()
        };
        // Saturday 2026-07-04 22:00 CEST = 20:00 UTC, until Sunday 06:00 = 04:00 UTC.
        assert!(w.open_at(utc("2026-07-04T20:00:00Z")));
        assert!(w.open_at(utc("2026-07-05T03:59:00Z")));
        assert!(!w.open_at(utc("2026-07-05T04:00:00Z")));
        assert!(!w.open_at(utc("2026-07-04T19:59:00Z")));
        // Friday night is not in it.
        assert!(!w.open_at(utc("2026-07-03T21:00:00Z")));
        assert_eq!(
            w.next_change(utc("2026-07-05T01:00:00Z")).unwrap(),
            utc("2026-07-05T04:00:00Z")
        );
    }

    #[test]
    fn a_start_in_the_skipped_hour_begins_when_the_clock_reaches_it() {
        // 02:30 does not exist in Zurich on 2026-03-29: the clock jumps from 02:00 to
        // 03:00 (01:00 UTC).
        let w = Window {
            schedule: Schedule::weekly(
                vec![Weekday::Sun],
                parse_time("02:30").unwrap(),
                parse_time("04:00").unwrap(),
            )
            .unwrap(),
            ..tuesday_morning()
        };
        assert_eq!(
            zurich().instant(parse_date_time("2026-03-29T02:30").unwrap()),
            utc("2026-03-29T01:00:00Z")
        );
        assert!(!w.open_at(utc("2026-03-29T00:59:00Z")));
        assert!(w.open_at(utc("2026-03-29T01:00:00Z")));
        assert!(!w.open_at(utc("2026-03-29T02:00:00Z")));
        // In autumn the hour 02:00–03:00 passes twice: the window is open in both passes.
        assert!(w.open_at(utc("2026-10-25T00:45:00Z"))); // 02:45 CEST
        assert!(w.open_at(utc("2026-10-25T01:45:00Z"))); // 02:45 CET
        assert!(!w.open_at(utc("2026-10-25T03:00:00Z"))); // 04:00 CET
    }

    #[test]
    fn a_date_range_is_open_once() {
        let w = Window {
            name: "winter shutdown".into(),
            schedule: Schedule::range(
                parse_date_time("2026-12-21T00:00").unwrap(),
                parse_date_time("2027-01-05T00:00").unwrap(),
            )
            .unwrap(),
            ..tuesday_morning()
        };
        assert!(!w.open_at(utc("2026-12-20T22:59:59Z")));
        assert!(w.open_at(utc("2026-12-20T23:00:00Z")));
        assert!(w.open_at(utc("2027-01-04T22:59:59Z")));
        assert!(!w.open_at(utc("2027-01-04T23:00:00Z")));
        assert_eq!(
            w.next_change(utc("2026-12-01T00:00:00Z")),
            Some(utc("2026-12-20T23:00:00Z"))
        );
        assert_eq!(w.next_change(utc("2027-02-01T00:00:00Z")), None);
    }

    #[test]
    fn bad_text_is_named() {
        assert_eq!(
            Zone::parse(Some("Europe/Zürich")),
            Err(WindowError::Zone("Europe/Zürich".into()))
        );
        assert_eq!(parse_time("8:00"), Err(WindowError::Time("8:00".into())));
        assert_eq!(parse_time("24:00"), Err(WindowError::Time("24:00".into())));
        assert_eq!(parse_day("Tuesday"), Ok(Weekday::Tue));
        assert_eq!(parse_day("tues"), Err(WindowError::Day("tues".into())));
        assert!(
            Schedule::weekly(
                vec![],
                parse_time("08:00").unwrap(),
                parse_time("08:00").unwrap()
            )
            .is_err()
        );
        let r = Schedule::range(
            parse_date_time("2027-01-05").unwrap(),
            parse_date_time("2026-12-21").unwrap(),
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "to (2026-12-21T00:00) is not after from (2027-01-05T00:00)"
        );
    }
}
