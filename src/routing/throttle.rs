//! Repeats of one alert, per destination: the first occurrence goes out at once; the
//! repeats within `throttle.repeat_interval` after it are counted, and when the interval
//! ends they go out as one message ("repeated 57 times since 14:03"), which opens the
//! next interval. A failing detector thus pings once, then at most once per interval,
//! and every occurrence is accounted for in some message.
//!
//! The logic is pure over a clock the caller passes in (`now_ms`), so tests drive it
//! through hours in microseconds. The windows live in memory for speed (a burst offers
//! every event) and are written through to the store in the same commit as the events
//! they counted ([`Throttle::take_changes`]), so a restart neither forgets a count nor
//! sends a repeat early.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rusqlite::{Connection, Transaction, params};

use crate::config::Destination;
use crate::event::Event;
use crate::store::Repeat;

type WindowKey = (Destination, String);

#[derive(Debug, Clone)]
struct Window {
    start_ms: i64,
    suppressed: u64,
    first_suppressed_ms: i64,
    /// The latest counted occurrence: what the summary shows.
    last: Option<Event>,
}

/// A window to write to or delete from the store.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert {
        destination: Destination,
        key: String,
        start_ms: i64,
        suppressed: u64,
        first_suppressed_ms: i64,
        last: Option<Box<Event>>,
    },
    Delete {
        destination: Destination,
        key: String,
    },
}

/// A summary of counted repeats, due to be sent.
#[derive(Debug, Clone)]
pub struct Summary {
    pub destination: Destination,
    pub event: Event,
    pub repeat: Repeat,
}

pub struct Throttle {
    interval_ms: i64,
    windows: HashMap<WindowKey, Window>,
    changed: HashSet<WindowKey>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval_ms: interval.as_millis() as i64,
            windows: HashMap::new(),
            changed: HashSet::new(),
        }
    }

    /// A reload may change the interval; open windows end by the new one.
    pub fn set_interval(&mut self, interval: Duration) {
        self.interval_ms = interval.as_millis() as i64;
    }

    /// Restores the windows a previous run stored.
    pub fn restore(&mut self, saved: Vec<Change>) {
        for c in saved {
            if let Change::Upsert {
                destination,
                key,
                start_ms,
                suppressed,
                first_suppressed_ms,
                last,
            } = c
            {
                self.windows.insert(
                    (destination, key),
                    Window {
                        start_ms,
                        suppressed,
                        first_suppressed_ms,
                        last: last.map(|e| *e),
                    },
                );
            }
        }
    }

    /// `true`: send `event` to `to` now. `false`: it was counted as a repeat.
    pub fn offer(&mut self, to: &Destination, event: &Event, now_ms: i64) -> bool {
        if self.interval_ms == 0 {
            return true;
        }
        let k = (to.clone(), event.key.clone());
        match self.windows.get_mut(&k) {
            // Inside the window; or after it, with counts that `due` has not summarised
            // yet: counted too, so the summary stays ahead of the next message.
            Some(w) if now_ms < w.start_ms + self.interval_ms || w.suppressed > 0 => {
                if w.suppressed == 0 {
                    w.first_suppressed_ms = now_ms;
                }
                w.suppressed += 1;
                w.last = Some(event.clone());
                self.changed.insert(k);
                false
            }
            _ => {
                self.windows.insert(
                    k.clone(),
                    Window {
                        start_ms: now_ms,
                        suppressed: 0,
                        first_suppressed_ms: 0,
                        last: None,
                    },
                );
                self.changed.insert(k);
                true
            }
        }
    }

    /// Summaries of windows that ended by `now_ms`. A window with counts opens the next
    /// one; an empty one is closed.
    pub fn due(&mut self, now_ms: i64) -> Vec<Summary> {
        let mut out = Vec::new();
        let interval = self.interval_ms;
        let ended: Vec<WindowKey> = self
            .windows
            .iter()
            .filter(|(_, w)| now_ms >= w.start_ms + interval)
            .map(|(k, _)| k.clone())
            .collect();
        for k in ended {
            self.close(k, now_ms, true, &mut out);
        }
        out.sort_by_key(|s| s.repeat.since_ms);
        out
    }

    /// Ends the windows of `key` at once (the alert was dismissed: its next occurrence is
    /// news again), summarising what they counted.
    pub fn end_key(&mut self, key: &str, now_ms: i64) -> Vec<Summary> {
        let mut out = Vec::new();
        let keys: Vec<WindowKey> = self
            .windows
            .keys()
            .filter(|(_, k)| k == key)
            .cloned()
            .collect();
        for k in keys {
            self.close(k, now_ms, false, &mut out);
        }
        out
    }

    fn close(&mut self, k: WindowKey, now_ms: i64, reopen: bool, out: &mut Vec<Summary>) {
        let Some(w) = self.windows.get_mut(&k) else {
            return;
        };
        if w.suppressed > 0
            && let Some(event) = w.last.take()
        {
            out.push(Summary {
                destination: k.0.clone(),
                event,
                repeat: Repeat {
                    count: w.suppressed,
                    since_ms: w.first_suppressed_ms,
                },
            });
            if reopen {
                *w = Window {
                    start_ms: now_ms,
                    suppressed: 0,
                    first_suppressed_ms: 0,
                    last: None,
                };
                self.changed.insert(k);
                return;
            }
        }
        self.windows.remove(&k);
        self.changed.insert(k);
    }

    /// When the next window ends, for the caller's timer.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.windows
            .values()
            .map(|w| w.start_ms + self.interval_ms)
            .min()
    }

    /// Repeats counted and not yet sent, over every window.
    pub fn pending_repeats(&self) -> u64 {
        self.windows.values().map(|w| w.suppressed).sum()
    }

    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// What changed since the last call, to store with the batch.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.changed
            .drain()
            .map(|k| match self.windows.get(&k) {
                Some(w) => Change::Upsert {
                    destination: k.0,
                    key: k.1,
                    start_ms: w.start_ms,
                    suppressed: w.suppressed,
                    first_suppressed_ms: w.first_suppressed_ms,
                    last: w.last.clone().map(Box::new),
                },
                None => Change::Delete {
                    destination: k.0,
                    key: k.1,
                },
            })
            .collect()
    }
}

/// Writes window changes inside the caller's transaction.
pub fn save(tx: &Transaction<'_>, changes: &[Change]) -> rusqlite::Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO throttle (destination, key, window_start, suppressed, first_suppressed, last_event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (destination, key) DO UPDATE SET window_start = ?3, suppressed = ?4,
             first_suppressed = ?5, last_event = ?6",
    )?;
    let mut del = tx.prepare_cached("DELETE FROM throttle WHERE destination = ?1 AND key = ?2")?;
    for c in changes {
        match c {
            Change::Upsert {
                destination,
                key,
                start_ms,
                suppressed,
                first_suppressed_ms,
                last,
            } => {
                let last = last
                    .as_ref()
                    .map(|e| serde_json::to_string(e).unwrap_or_default());
                up.execute(params![
                    destination.to_string(),
                    key,
                    start_ms,
                    *suppressed as i64,
                    first_suppressed_ms,
                    last
                ])?;
            }
            Change::Delete { destination, key } => {
                del.execute(params![destination.to_string(), key])?;
            }
        }
    }
    Ok(())
}

/// The windows a previous run stored. Rows for a destination that no longer parses are
/// skipped (the config changed; their counts no longer have anywhere to go).
pub fn load(conn: &Connection) -> rusqlite::Result<Vec<Change>> {
    let mut stmt = conn.prepare(
        "SELECT destination, key, window_start, suppressed, first_suppressed, last_event FROM throttle",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (dest, key, start_ms, suppressed, first, last) = row?;
        let Some(destination) = Destination::parse(&dest) else {
            continue;
        };
        out.push(Change::Upsert {
            destination,
            key,
            start_ms,
            suppressed: suppressed.max(0) as u64,
            first_suppressed_ms: first.unwrap_or(start_ms),
            last: last
                .and_then(|l| serde_json::from_str(&l).ok())
                .map(Box::new),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Service;
    use crate::event::{Message, Severity};

    const MIN: i64 = 60_000;

    fn dest() -> Destination {
        Destination {
            service: Service::Telegram,
            scope: "default".into(),
        }
    }

    fn ev(text: &str) -> Event {
        Event::message("alarm_major", Severity::Major, Message::plain(text))
    }

    #[test]
    fn first_goes_out_repeats_are_counted_then_summarised() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let d = dest();
        let e = ev("HV trip");
        assert!(t.offer(&d, &e, 0));
        for i in 1..=57 {
            assert!(!t.offer(&d, &e, i * 1000));
        }
        assert!(t.due(10 * MIN - 1).is_empty());
        let s = t.due(10 * MIN);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].repeat,
            Repeat {
                count: 57,
                since_ms: 1000
            }
        );
        // The next interval runs from the summary: a repeat now is counted again.
        assert!(!t.offer(&d, &e, 10 * MIN + 1));
        assert_eq!(t.due(20 * MIN)[0].repeat.count, 1);
        // A quiet interval closes the window; the next occurrence is news.
        assert!(t.due(30 * MIN).is_empty());
        assert_eq!(t.next_due_ms(), None);
        assert!(t.offer(&d, &e, 31 * MIN));
    }

    #[test]
    fn keys_and_destinations_are_separate() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let mail = Destination {
            service: Service::Mail,
            scope: "default".into(),
        };
        assert!(t.offer(&dest(), &ev("a"), 0));
        assert!(t.offer(&mail, &ev("a"), 0));
        assert!(t.offer(&dest(), &ev("b"), 0));
        assert!(!t.offer(&dest(), &ev("a"), 1));
    }

    #[test]
    fn zero_interval_sends_everything() {
        let mut t = Throttle::new(Duration::ZERO);
        for i in 0..10 {
            assert!(t.offer(&dest(), &ev("a"), i));
        }
        assert!(t.due(i64::MAX / 2).is_empty());
    }

    #[test]
    fn dismissal_ends_the_window_with_its_summary() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let e = ev("a");
        assert!(t.offer(&dest(), &e, 0));
        assert!(!t.offer(&dest(), &e, 5));
        let s = t.end_key(&e.key, 10);
        assert_eq!(s.len(), 1);
        assert!(t.offer(&dest(), &e, 11));
    }

    #[test]
    fn changes_round_trip_through_the_store_format() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let e = ev("a");
        t.offer(&dest(), &e, 0);
        t.offer(&dest(), &e, 5);
        let changes = t.take_changes();
        assert_eq!(changes.len(), 1);
        let mut u = Throttle::new(Duration::from_secs(600));
        u.restore(changes);
        assert!(!u.offer(&dest(), &e, 6));
        assert_eq!(u.due(10 * MIN)[0].repeat.count, 2);
    }
}
