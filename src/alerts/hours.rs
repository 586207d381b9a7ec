//! Events per hour and severity: what the console's chart draws.
//!
//! Counted where alerts are recorded, in the transaction that stores a batch, so the
//! chart says exactly what the store holds: a crash loses or repeats none of it. The
//! table is small (an hour has at most four rows, one per severity) and keeps
//! [`KEEP_HOURS`]; the chart reads it with one query whatever the number of alerts.

use rusqlite::{Connection, params};

use crate::event::Severity;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// How many hours are kept: the chart's 7 days and a day to spare.
pub const KEEP_HOURS: i64 = 8 * 24;

/// Counts of one key's events in a batch: (hour since the epoch, severity, count).
#[derive(Debug, Clone, Default)]
pub struct Counts(Vec<(i64, Severity, u64)>);

impl Counts {
    /// Counts one event that happened at `at_ms`.
    pub fn add(&mut self, at_ms: i64, severity: Severity) {
        let hour = at_ms.div_euclid(HOUR_MS);
        // A burst is one key in one hour: the last entry is the one to count up.
        if let Some(last) = self.0.last_mut()
            && last.0 == hour
            && last.1 == severity
        {
            last.2 += 1;
            return;
        }
        match self
            .0
            .iter_mut()
            .find(|(h, s, _)| *h == hour && *s == severity)
        {
            Some(e) => e.2 += 1,
            None => self.0.push((hour, severity, 1)),
        }
    }
}

/// Adds `counts` to the table, inside the caller's transaction.
pub fn record<'a>(
    c: &Connection,
    counts: impl IntoIterator<Item = &'a Counts>,
) -> rusqlite::Result<()> {
    let mut up = c.prepare_cached(
        "INSERT INTO event_hours (hour, severity, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (hour, severity) DO UPDATE SET count = count + excluded.count",
    )?;
    for counts in counts {
        for (hour, severity, n) in &counts.0 {
            up.execute(params![hour, severity.as_str(), *n as i64])?;
        }
    }
    Ok(())
}

/// Forgets hours the chart no longer shows.
pub fn purge(c: &Connection, now_ms: i64) -> rusqlite::Result<()> {
    c.execute(
        "DELETE FROM event_hours WHERE hour < ?1",
        [now_ms.div_euclid(HOUR_MS) - KEEP_HOURS],
    )?;
    Ok(())
}

/// The counts of the `hours` hours up to and including the one of `now_ms`, oldest
/// first: for each hour, its counts per severity in [`Severity`] order (info first).
pub fn recent(c: &Connection, now_ms: i64, hours: i64) -> rusqlite::Result<Vec<[u64; 4]>> {
    let last = now_ms.div_euclid(HOUR_MS);
    let first = last - hours + 1;
    let mut out = vec![[0u64; 4]; hours.max(0) as usize];
    let mut stmt = c.prepare_cached(
        "SELECT hour, severity, count FROM event_hours WHERE hour BETWEEN ?1 AND ?2",
    )?;
    let rows = stmt.query_map([first, last], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (hour, severity, n) = row?;
        let Ok(severity) = severity.parse::<Severity>() else {
            continue;
        };
        if let Some(slot) = out.get_mut((hour - first) as usize) {
            slot[severity_index(severity)] += n.max(0) as u64;
        }
    }
    Ok(out)
}

/// A severity's place in a row of [`recent`].
pub fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Minor => 2,
        Severity::Major => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_fold_per_hour_and_severity() {
        let mut c = Counts::default();
        for at in [0, 10, HOUR_MS - 1] {
            c.add(at, Severity::Major);
        }
        c.add(5, Severity::Info);
        c.add(HOUR_MS, Severity::Major);
        c.add(20, Severity::Major);
        assert_eq!(
            c.0,
            vec![
                (0, Severity::Major, 4),
                (0, Severity::Info, 1),
                (1, Severity::Major, 1)
            ]
        );
    }
}
