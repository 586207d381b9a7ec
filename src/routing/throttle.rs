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
//!
//! In a burst almost every event is a counted repeat, so offering one allocates nothing:
//! the windows are found by the event's key as a `&str`, then by destination among the
//! few of that key; the latest occurrence is one `Arc` shared by the windows of every
//! destination that counted it; and a window that changes is marked, its key listed for
//! the next commit only the first time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, params};

use crate::config::Destination;
use crate::event::{Event, Repeat};
use crate::store::Tx;

#[derive(Debug, Clone)]
struct Window {
    start_ms: i64,
    suppressed: u64,
    first_suppressed_ms: i64,
    /// The latest counted occurrence: what the summary shows.
    last: Option<Arc<Event>>,
    /// Changed since the last [`Throttle::take_changes`].
    dirty: bool,
}

impl Window {
    fn open(now_ms: i64) -> Window {
        Window {
            start_ms: now_ms,
            suppressed: 0,
            first_suppressed_ms: 0,
            last: None,
            dirty: true,
        }
    }
}

/// The windows of one dedup key, one per destination it went to: a route has a few
/// destinations, so a scan beats a second map.
#[derive(Debug)]
struct KeyWindows {
    /// The map's key again, for [`Throttle::changed`] without another allocation.
    key: Arc<str>,
    windows: Vec<(Destination, Window)>,
    /// Destinations whose window closed since the last [`Throttle::take_changes`]: their
    /// rows are deleted then, unless a new window opened meanwhile.
    closed: Vec<Destination>,
    /// Whether the key is in [`Throttle::changed`] already.
    listed: bool,
}

impl KeyWindows {
    fn new(key: Arc<str>) -> KeyWindows {
        KeyWindows {
            key,
            windows: Vec::new(),
            closed: Vec::new(),
            listed: false,
        }
    }

    fn list(&mut self, changed: &mut Vec<Arc<str>>) {
        if !self.listed {
            self.listed = true;
            changed.push(self.key.clone());
        }
    }

    /// [`Throttle::offer`] for this key; `last` gives the occurrence to keep if it is
    /// counted.
    fn offer(
        &mut self,
        to: &Destination,
        last: &mut impl FnMut() -> Arc<Event>,
        now_ms: i64,
        interval_ms: i64,
        changed: &mut Vec<Arc<str>>,
    ) -> bool {
        let at = self.windows.iter().position(|(d, _)| d == to);
        let send = match at {
            // Inside the window; or after it, with counts that `due` has not summarised
            // yet: counted too, so the summary stays ahead of the next message.
            Some(i)
                if now_ms < self.windows[i].1.start_ms + interval_ms
                    || self.windows[i].1.suppressed > 0 =>
            {
                let w = &mut self.windows[i].1;
                if w.suppressed == 0 {
                    w.first_suppressed_ms = now_ms;
                }
                w.suppressed += 1;
                w.last = Some(last());
                w.dirty = true;
                false
            }
            Some(i) => {
                self.windows[i].1 = Window::open(now_ms);
                true
            }
            None => {
                self.windows.push((to.clone(), Window::open(now_ms)));
                true
            }
        };
        self.list(changed);
        send
    }

    /// Ends the window at `i`: one with counts is summarised into `out` and, if
    /// `reopen`, opens the next interval; any other is removed.
    fn close(
        &mut self,
        i: usize,
        now_ms: i64,
        reopen: bool,
        out: &mut Vec<Summary>,
        changed: &mut Vec<Arc<str>>,
    ) {
        self.list(changed);
        let (destination, w) = &mut self.windows[i];
        if w.suppressed > 0
            && let Some(event) = w.last.take()
        {
            out.push(Summary {
                destination: destination.clone(),
                event: Arc::unwrap_or_clone(event),
                repeat: Repeat {
                    count: w.suppressed,
                    since_ms: w.first_suppressed_ms,
                },
            });
            if reopen {
                *w = Window::open(now_ms);
                return;
            }
        }
        let (destination, _) = self.windows.swap_remove(i);
        if !self.closed.contains(&destination) {
            self.closed.push(destination);
        }
    }
}

/// A window to write to or delete from the store.
#[derive(Debug, Clone)]
pub enum Change {
    Upsert {
        destination: Destination,
        key: Arc<str>,
        start_ms: i64,
        suppressed: u64,
        first_suppressed_ms: i64,
        last: Option<Arc<Event>>,
    },
    Delete {
        destination: Destination,
        key: Arc<str>,
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
    keys: HashMap<Arc<str>, KeyWindows>,
    /// Keys with a window changed or closed since the last `take_changes`.
    changed: Vec<Arc<str>>,
}

impl Throttle {
    pub fn new(interval: Duration) -> Throttle {
        Throttle {
            interval_ms: interval.as_millis() as i64,
            keys: HashMap::new(),
            changed: Vec::new(),
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
                let k = self
                    .keys
                    .entry(key.clone())
                    .or_insert_with(|| KeyWindows::new(key));
                let w = Window {
                    start_ms,
                    suppressed,
                    first_suppressed_ms,
                    last,
                    dirty: false,
                };
                match k.windows.iter_mut().find(|(d, _)| *d == destination) {
                    Some((_, old)) => *old = w,
                    None => k.windows.push((destination, w)),
                }
            }
        }
    }

    /// Runs `f` on the windows of `key`, made if there are none: the key is allocated
    /// only then.
    fn with_key<R>(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut KeyWindows, &mut Vec<Arc<str>>) -> R,
    ) -> R {
        match self.keys.get_mut(key) {
            Some(k) => f(k, &mut self.changed),
            None => {
                let key: Arc<str> = Arc::from(key);
                let k = self
                    .keys
                    .entry(key.clone())
                    .or_insert_with(|| KeyWindows::new(key));
                f(k, &mut self.changed)
            }
        }
    }

    /// `true`: send `event` to `to` now. `false`: it was counted as a repeat.
    pub fn offer(&mut self, to: &Destination, event: &Event, now_ms: i64) -> bool {
        if self.interval_ms == 0 {
            return true;
        }
        let interval = self.interval_ms;
        self.with_key(&event.key, |k, changed| {
            k.offer(
                to,
                &mut || Arc::new(event.clone()),
                now_ms,
                interval,
                changed,
            )
        })
    }

    /// [`Throttle::offer`] to each of `routed` in turn, with one lookup of the key and
    /// `event` itself kept as the latest occurrence wherever it is counted; returns the
    /// destinations to send it to now.
    pub fn offer_all(
        &mut self,
        routed: &[Destination],
        event: &Arc<Event>,
        now_ms: i64,
    ) -> Vec<Destination> {
        if self.interval_ms == 0 {
            return routed.to_vec();
        }
        let interval = self.interval_ms;
        self.with_key(&event.key, |k, changed| {
            routed
                .iter()
                .filter(|d| k.offer(d, &mut || event.clone(), now_ms, interval, changed))
                .cloned()
                .collect()
        })
    }

    /// Summaries of windows that ended by `now_ms`. A window with counts opens the next
    /// one; an empty one is closed.
    pub fn due(&mut self, now_ms: i64) -> Vec<Summary> {
        let mut out = Vec::new();
        let interval = self.interval_ms;
        for k in self.keys.values_mut() {
            // Backwards: closing swaps the last window into the closed one's place.
            for i in (0..k.windows.len()).rev() {
                if now_ms >= k.windows[i].1.start_ms + interval {
                    k.close(i, now_ms, true, &mut out, &mut self.changed);
                }
            }
        }
        out.sort_by_key(|s| s.repeat.since_ms);
        out
    }

    /// Ends the windows of `key` at once (the alert was dismissed: its next occurrence is
    /// news again), summarising what they counted.
    pub fn end_key(&mut self, key: &str, now_ms: i64) -> Vec<Summary> {
        let mut out = Vec::new();
        if let Some(k) = self.keys.get_mut(key) {
            for i in (0..k.windows.len()).rev() {
                k.close(i, now_ms, false, &mut out, &mut self.changed);
            }
        }
        out
    }

    /// When the next window ends, for the caller's timer.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.windows().map(|w| w.start_ms + self.interval_ms).min()
    }

    /// Repeats counted and not yet sent, over every window.
    pub fn pending_repeats(&self) -> u64 {
        self.windows().map(|w| w.suppressed).sum()
    }

    fn windows(&self) -> impl Iterator<Item = &Window> {
        self.keys
            .values()
            .flat_map(|k| k.windows.iter().map(|(_, w)| w))
    }

    pub fn has_changes(&self) -> bool {
        !self.changed.is_empty()
    }

    /// What changed since the last call, to store with the batch.
    pub fn take_changes(&mut self) -> Vec<Change> {
        let mut out = Vec::new();
        for key in self.changed.drain(..) {
            let Some(k) = self.keys.get_mut(&key) else {
                continue;
            };
            k.listed = false;
            for destination in k.closed.drain(..) {
                // A window opened again since is written whole by its upsert.
                if !k.windows.iter().any(|(d, _)| *d == destination) {
                    out.push(Change::Delete {
                        destination,
                        key: key.clone(),
                    });
                }
            }
            for (destination, w) in k.windows.iter_mut().filter(|(_, w)| w.dirty) {
                w.dirty = false;
                out.push(Change::Upsert {
                    destination: destination.clone(),
                    key: key.clone(),
                    start_ms: w.start_ms,
                    suppressed: w.suppressed,
                    first_suppressed_ms: w.first_suppressed_ms,
                    last: w.last.clone(),
                });
            }
            if k.windows.is_empty() {
                self.keys.remove(&key);
            }
        }
        out
    }
}

/// An event as a window keeps it in the store: without its files, which its own
/// delivery carries and which would otherwise stay in the database as long as the
/// window (hours), long after they were delivered.
fn stored(e: &Event) -> String {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = v.get_mut("message").and_then(|m| m.as_object_mut()) {
        m.remove("attachments");
    }
    v.to_string()
}

/// Writes window changes (the table `throttle`, this module's) inside the pipeline's
/// commit of the events they counted.
pub fn save(tx: &Tx<'_>, changes: &[Change]) -> rusqlite::Result<()> {
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
    // The windows of one key come together and share their latest occurrence: it is
    // written as JSON once for all of them.
    let mut json: Option<(&Arc<Event>, String)> = None;
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
                let last = match last {
                    Some(e) => {
                        if !json.as_ref().is_some_and(|(j, _)| Arc::ptr_eq(j, e)) {
                            json = Some((e, stored(e)));
                        }
                        json.as_ref().map(|(_, j)| j.as_str())
                    }
                    None => None,
                };
                up.execute(params![
                    destination.to_string(),
                    &**key,
                    start_ms,
                    *suppressed as i64,
                    first_suppressed_ms,
                    last
                ])?;
            }
            Change::Delete { destination, key } => {
                del.execute(params![destination.to_string(), &**key])?;
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
            key: Arc::from(key),
            start_ms,
            suppressed: suppressed.max(0) as u64,
            first_suppressed_ms: first.unwrap_or(start_ms),
            last: last
                .and_then(|l| serde_json::from_str(&l).ok())
                .map(Arc::new),
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

    /// A window keeps its latest event without the files, which its own delivery
    /// carried: they would stay in the database for as long as the window.
    #[test]
    fn a_windows_event_is_kept_without_its_files() {
        let mut e = ev("HV trip");
        e.message.attachments =
            vec![crate::event::Attachment::new("plot.png", b"FILE-BYTES-MARKER".to_vec()).unwrap()];
        let kept = stored(&e);
        assert!(
            !kept.contains("plot.png") && !kept.contains("RklMRS1CWVRFUy1NQVJLRVI"),
            "{kept}"
        );
        let back: Event = serde_json::from_str(&kept).unwrap();
        assert_eq!(back.message.text(), "HV trip");
        assert!(back.message.attachments.is_empty());
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

    fn mail() -> Destination {
        Destination {
            service: Service::Mail,
            scope: "default".into(),
        }
    }

    #[test]
    fn offer_all_answers_as_offers_one_by_one_and_shares_the_last_occurrence() {
        let both = [dest(), mail()];
        let mut t = Throttle::new(Duration::from_secs(600));
        let mut u = Throttle::new(Duration::from_secs(600));
        let e = Arc::new(ev("a"));
        assert_eq!(t.offer_all(&both, &e, 0), both.to_vec());
        assert!(both.iter().all(|d| u.offer(d, &e, 0)));
        assert!(t.offer_all(&both, &e, 5).is_empty());
        assert!(both.iter().all(|d| !u.offer(d, &e, 5)));
        // A destination added to the route later starts its own window.
        let night = Destination {
            service: Service::Telegram,
            scope: "night".into(),
        };
        let three = [dest(), mail(), night.clone()];
        assert_eq!(t.offer_all(&three, &e, 6), vec![night.clone()]);
        assert!(!u.offer(&dest(), &e, 6) && !u.offer(&mail(), &e, 6) && u.offer(&night, &e, 6));
        let changes = t.take_changes();
        assert_eq!(changes.len(), 3);
        let lasts: Vec<&Arc<Event>> = changes
            .iter()
            .filter_map(|c| match c {
                Change::Upsert { last, .. } => last.as_ref(),
                Change::Delete { .. } => None,
            })
            .collect();
        assert_eq!(lasts.len(), 2);
        assert!(lasts.iter().all(|l| Arc::ptr_eq(l, &e)));
        assert!(!t.has_changes());
        assert_eq!(t.pending_repeats(), u.pending_repeats());
        assert_eq!(t.due(10 * MIN).len(), 2);
    }

    #[test]
    fn a_closed_window_is_deleted_unless_it_opened_again_before_the_commit() {
        let mut t = Throttle::new(Duration::from_secs(600));
        let e = ev("a");
        t.offer(&dest(), &e, 0);
        t.take_changes();
        // Quiet for an interval: closed, and its row goes.
        assert!(t.due(10 * MIN).is_empty());
        assert!(t.has_changes());
        let changes = t.take_changes();
        assert!(matches!(&changes[..], [Change::Delete { key, .. }] if **key == *e.key));
        assert_eq!(t.next_due_ms(), None);
        // Closed and opened again within one batch: one upsert, no delete.
        t.offer(&dest(), &e, 11 * MIN);
        t.take_changes();
        assert!(t.due(21 * MIN).is_empty());
        assert!(t.offer(&dest(), &e, 21 * MIN));
        let changes = t.take_changes();
        assert!(matches!(&changes[..], [Change::Upsert { start_ms, .. }] if *start_ms == 21 * MIN));
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
