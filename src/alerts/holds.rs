//! What holds an event's messages back now: a snooze of its key, an acknowledgement of
//! its alert, a silence or a maintenance window — one answer for the pipeline's one
//! routing function, and for every surface that shows why an alert is quiet.
//!
//! Read from the store when it changes (a dismissal, an acknowledgement or a silence
//! made by another surface) and at the once-a-second tick, never per event: the
//! pipeline asks thousands of times a second in a burst.

use std::collections::{HashMap, HashSet};

use crate::alerts;
use crate::event::Event;
use crate::event::alert::Alert;
use crate::oncall::matcher::Subject;
use crate::oncall::silences::{self, Silence};
use crate::oncall::window::Window;
use crate::store::{Store, StoreError};

/// Why an event is not sent now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Its key is snoozed (the `__snooze` action, Telegram's button).
    Snoozed,
    /// Someone acknowledged its alert: repeats wait until it clears or is dismissed.
    Acknowledged,
    /// Silences (their ids) and maintenance windows (their names) in force that match
    /// it. Recorded and counted, sent once when they end if the alert is still active.
    Silenced {
        silences: Vec<i64>,
        windows: Vec<String>,
    },
}

/// The alerts as every surface shows them (`alerts::list`), each with what silences it
/// now filled in: the API, the console and `alerts list` read `silenced_by` from here.
pub fn list_shown(
    store: &Store,
    now_ms: i64,
    all: bool,
    windows: &[Window],
) -> Result<Vec<Alert>, StoreError> {
    let holds = Holds::load(store, now_ms, windows)?;
    let mut list = alerts::list(store, now_ms, all)?;
    for a in &mut list {
        a.silenced_by = holds.silenced_by(a, now_ms);
    }
    Ok(list)
}

/// The holds in force, as last read.
#[derive(Debug, Default, Clone)]
pub struct Holds {
    snoozed: HashMap<String, i64>,
    acknowledged: HashSet<String>,
    silences: Vec<Silence>,
    windows: Vec<Window>,
}

impl Holds {
    /// Reads snoozes, acknowledgements and silences; `windows` come from the config.
    pub fn load(store: &Store, now_ms: i64, windows: &[Window]) -> Result<Holds, StoreError> {
        Ok(Holds {
            snoozed: alerts::snoozed(store, now_ms)?,
            acknowledged: alerts::acknowledged(store, now_ms)?,
            silences: silences::list(store, now_ms, None)?,
            windows: windows.to_vec(),
        })
    }

    /// Why `e` is held back at `now_ms`, if it is.
    pub fn hold(&self, e: &Event, now_ms: i64) -> Option<Hold> {
        if self.snoozed(&e.key, now_ms) {
            return Some(Hold::Snoozed);
        }
        if self.acknowledged.contains(&e.key) {
            return Some(Hold::Acknowledged);
        }
        self.event_silenced(e, now_ms)
    }

    /// Whether `e` is snoozed or silenced now — what holds escalation back besides an
    /// acknowledgement, which the policy weighs itself (its `ack_timeout`).
    pub fn quiet(&self, e: &Event, now_ms: i64) -> bool {
        self.snoozed(&e.key, now_ms) || self.event_silenced(e, now_ms).is_some()
    }

    fn snoozed(&self, key: &str, now_ms: i64) -> bool {
        self.snoozed.get(key).is_some_and(|until| *until > now_ms)
    }

    fn event_silenced(&self, e: &Event, now_ms: i64) -> Option<Hold> {
        // Asked for every event of a burst: with nothing to match, no text is made.
        if self.silences.is_empty() && self.windows.is_empty() {
            return None;
        }
        let text = e.message.text();
        let subject = Subject {
            event: &e.name,
            severity: e.severity,
            source: e.source.as_deref(),
            key: &e.key,
            text: &text,
        };
        self.silenced(&subject, now_ms)
    }

    fn silenced(&self, subject: &Subject<'_>, now_ms: i64) -> Option<Hold> {
        let silences = silences::holding(&self.silences, subject, now_ms);
        let at = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let windows: Vec<String> = self
            .windows
            .iter()
            .filter(|w| w.matchers.matches(subject) && w.open_at(at))
            .map(|w| w.name.clone())
            .collect();
        (!silences.is_empty() || !windows.is_empty())
            .then_some(Hold::Silenced { silences, windows })
    }

    /// What holds an alert back now, as it is shown (`silence 3`, `maintenance tuesday`).
    pub fn silenced_by(&self, a: &Alert, now_ms: i64) -> Vec<String> {
        let text = a.message.text();
        let subject = Subject {
            event: &a.event,
            severity: a.severity,
            source: a.source.as_deref(),
            key: &a.key,
            text: &text,
        };
        match self.silenced(&subject, now_ms) {
            Some(Hold::Silenced { silences, windows }) => silences
                .iter()
                .map(|id| format!("silence {id}"))
                .chain(windows.iter().map(|w| format!("maintenance {w}")))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The next time a silence or window starts or ends after `now_ms`: when alerts held
    /// back must be looked at again.
    pub fn next_change_ms(&self, now_ms: i64) -> Option<i64> {
        let at = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        let silences = self
            .silences
            .iter()
            .flat_map(|s| [s.starts_at_ms, s.ends_at_ms])
            .filter(|t| *t > now_ms);
        let windows = self
            .windows
            .iter()
            .filter_map(|w| w.next_change(at))
            .map(|t| t.timestamp_millis());
        silences.chain(windows).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Message, Severity};
    use crate::oncall::matcher::Matchers;
    use crate::oncall::silences::NewSilence;
    use crate::oncall::window::{Schedule, Zone, parse_date_time};

    #[test]
    fn a_silence_and_a_window_hold_what_they_match_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let h = 3_600_000;
        let id = silences::add(
            &mut store,
            &NewSilence {
                matchers: Matchers {
                    text: Some(regex::Regex::new("vacuum").unwrap()),
                    ..Matchers::default()
                },
                starts_at_ms: 0,
                ends_at_ms: 2 * h,
                created_by: "cli".into(),
                comment: "pump swap".into(),
            },
        )
        .unwrap();
        let shutdown = Window {
            name: "shutdown".into(),
            schedule: Schedule::range(
                parse_date_time("1970-01-01T01:30").unwrap(),
                parse_date_time("1970-01-01T05:00").unwrap(),
            )
            .unwrap(),
            zone: Zone::parse(Some("UTC")).unwrap(),
            matchers: Matchers {
                severity_at_most: Some(Severity::Minor),
                ..Matchers::default()
            },
        };
        let holds = Holds::load(&store, h, std::slice::from_ref(&shutdown)).unwrap();
        let vacuum = Event::message(
            "alarm_major",
            Severity::Major,
            Message::plain("vacuum lost"),
        );
        let minor = Event::message("alarm_minor", Severity::Minor, Message::plain("slit stuck"));
        assert_eq!(
            holds.hold(&vacuum, h),
            Some(Hold::Silenced {
                silences: vec![id],
                windows: vec![]
            })
        );
        assert_eq!(holds.hold(&minor, h), None, "the window opens at 01:30");
        assert_eq!(
            holds.hold(&minor, 2 * h),
            Some(Hold::Silenced {
                silences: vec![],
                windows: vec!["shutdown".into()]
            })
        );
        assert_eq!(
            holds.hold(&vacuum, 3 * h),
            None,
            "the silence ended, the window spares major"
        );
        assert_eq!(holds.next_change_ms(h), Some(h + h / 2));
        assert_eq!(holds.next_change_ms(h + h / 2), Some(2 * h));
    }
}
