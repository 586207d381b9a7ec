//! Silences: an operator's "hold these back until then" — matchers, a start and an end,
//! who made it and why — and their table (`silences`), owned here.
//!
//! One set of functions for every surface (the CLI through the API, the API, the
//! console, Telegram), so that a silence made anywhere reads the same everywhere and
//! is ended the same way. A silenced event is still recorded and counted (the alert's
//! `times_seen`, `held`); only sending and escalating wait. Silences are never deleted
//! by expiry: what held back what stays readable for the handover digest and the audit.

use rusqlite::{OptionalExtension, params};

use super::matcher::{Matchers, Subject};
use crate::store::{Store, StoreError, Tx};

/// The longest a silence may last: a forgotten "until further notice" must end.
pub const MAX_DURATION_MS: i64 = 31 * 24 * 3_600_000;

/// A silence as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: i64,
    pub matchers: Matchers,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    /// Who made it: `api`, `cli`, `console`, `telegram:@anna (42)`.
    pub created_by: String,
    pub comment: String,
    /// Who ended it before its time, if anyone.
    pub expired_by: Option<String>,
    /// Events held back by it so far.
    pub held: u64,
}

impl Silence {
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.starts_at_ms <= now_ms && now_ms < self.ends_at_ms
    }

    /// As the API and `silences list --json` show it.
    pub fn to_json(&self, now_ms: i64) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "matchers": self.matchers.to_json(),
            "starts_at": self.starts_at_ms / 1000,
            "ends_at": self.ends_at_ms / 1000,
            "created_by": self.created_by,
            "comment": self.comment,
            "expired_by": self.expired_by,
            "active": self.in_force(now_ms),
            "held": self.held,
        })
    }
}

/// Why a silence was refused.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error("a silence needs a comment: say why, for whoever finds it later")]
    NoComment,
    #[error("a silence must end after it starts")]
    Backwards,
    #[error(
        "a silence may last at most 31 days; for a planned shutdown, use a maintenance window in the config"
    )]
    TooLong,
    #[error("no silence {0}")]
    Unknown(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new silence says.
#[derive(Debug, Clone)]
pub struct NewSilence {
    pub matchers: Matchers,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Silence> {
    let matchers: String = row.get(1)?;
    // Written by `add` from checked matchers; a row that no longer reads (edited by
    // hand) matches nothing rather than everything.
    let matchers = serde_json::from_str(&matchers)
        .ok()
        .and_then(|v| Matchers::from_json(&v).ok())
        .unwrap_or_else(|| Matchers {
            key: Some(String::from("\u{0}unreadable silence")),
            ..Matchers::default()
        });
    Ok(Silence {
        id: row.get(0)?,
        matchers,
        starts_at_ms: row.get(2)?,
        ends_at_ms: row.get(3)?,
        created_by: row.get(4)?,
        comment: row.get(5)?,
        expired_by: row.get(6)?,
        held: row.get::<_, i64>(7)?.max(0) as u64,
    })
}

const COLUMNS: &str = "id, matchers, starts_at, ends_at, created_by, comment, expired_by, held";

/// Makes a silence; its id.
pub fn add(store: &mut Store, s: &NewSilence) -> Result<i64, SilenceError> {
    if s.comment.trim().is_empty() {
        return Err(SilenceError::NoComment);
    }
    if s.ends_at_ms <= s.starts_at_ms {
        return Err(SilenceError::Backwards);
    }
    if s.ends_at_ms - s.starts_at_ms > MAX_DURATION_MS {
        return Err(SilenceError::TooLong);
    }
    let matchers = s.matchers.to_json().to_string();
    Ok(store.write(|tx| {
        tx.execute(
            "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                matchers,
                s.starts_at_ms,
                s.ends_at_ms,
                s.created_by,
                s.comment.trim()
            ],
        )?;
        Ok(tx.last_insert_rowid())
    })?)
}

/// Ends a silence now; what was held back by it is sent at the pipeline's next look.
/// Ending one that already ended is not an error (two operators may both press).
pub fn expire(store: &mut Store, id: i64, by: &str, now_ms: i64) -> Result<Silence, SilenceError> {
    let found = store.transaction(|tx| {
        let Some(s) = get_tx(tx, id)? else {
            return Ok(None);
        };
        if s.ends_at_ms > now_ms {
            tx.execute(
                "UPDATE silences SET ends_at = ?2, expired_by = ?3 WHERE id = ?1",
                params![id, now_ms.max(s.starts_at_ms), by],
            )?;
        }
        get_tx(tx, id)
    })?;
    found.ok_or(SilenceError::Unknown(id))
}

fn get_tx(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<Silence>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM silences WHERE id = ?1"),
        [id],
        read,
    )
    .optional()
}

/// Silences in force now or starting later, soonest-ending first; with `all`, also the
/// ones that ended in the last `keep_ms`.
pub fn list(
    store: &Store,
    now_ms: i64,
    ended_within_ms: Option<i64>,
) -> Result<Vec<Silence>, StoreError> {
    let since = ended_within_ms.map_or(now_ms, |k| now_ms.saturating_sub(k));
    store.with_conn(|c| {
        let mut st = c.prepare(&format!(
            "SELECT {COLUMNS} FROM silences WHERE ends_at > ?1 ORDER BY ends_at, id"
        ))?;
        st.query_map([since], read)?.collect()
    })
}

/// The ids of the silences in force that hold back `subject`.
pub fn holding(silences: &[Silence], subject: &Subject<'_>, now_ms: i64) -> Vec<i64> {
    silences
        .iter()
        .filter(|s| s.in_force(now_ms) && s.matchers.matches(subject))
        .map(|s| s.id)
        .collect()
}

/// Counts events held back, in the batch's transaction.
pub fn count_held(tx: &Tx<'_>, ids: &[i64], now_ms: i64) -> rusqlite::Result<()> {
    for id in ids {
        tx.execute("UPDATE silences SET held = held + 1 WHERE id = ?1", [id])?;
    }
    tx.execute(
        "INSERT INTO held_hours (hour, count) VALUES (?1, 1)
         ON CONFLICT (hour) DO UPDATE SET count = count + 1",
        [now_ms.div_euclid(3_600_000)],
    )?;
    Ok(())
}

/// Events held back from `since_ms` on, by the hour (for the digest).
pub fn held_since(store: &Store, since_ms: i64) -> Result<u64, StoreError> {
    store
        .with_conn(|c| {
            c.query_row(
                "SELECT COALESCE(SUM(count), 0) FROM held_hours WHERE hour >= ?1",
                [since_ms.div_euclid(3_600_000)],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Severity;

    const H: i64 = 3_600_000;

    fn silence(comment: &str, from: i64, to: i64) -> NewSilence {
        NewSilence {
            matchers: Matchers {
                source: Some("detector".into()),
                ..Matchers::default()
            },
            starts_at_ms: from,
            ends_at_ms: to,
            created_by: "telegram:@anna (42)".into(),
            comment: comment.into(),
        }
    }

    fn subject(source: &str) -> Subject<'_> {
        Subject {
            event: "alarm_major",
            severity: Severity::Major,
            source: Some(source),
            key: "k",
            text: "HV trip",
        }
    }

    #[test]
    fn a_silence_holds_what_it_matches_while_in_force_and_ends_when_expired() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let id = add(&mut store, &silence("detector swap", 0, 2 * H)).unwrap();
        let now = H;
        let all = list(&store, now, None).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].created_by, "telegram:@anna (42)");
        assert_eq!(holding(&all, &subject("detector"), now), vec![id]);
        assert!(holding(&all, &subject("motor"), now).is_empty());
        assert!(
            holding(&all, &subject("detector"), 2 * H).is_empty(),
            "ended at its time"
        );

        store.write(|tx| count_held(tx, &[id], now)).unwrap();
        assert_eq!(held_since(&store, 0).unwrap(), 1);

        let ended = expire(&mut store, id, "cli", now + 1).unwrap();
        assert_eq!(ended.expired_by.as_deref(), Some("cli"));
        assert_eq!(ended.held, 1);
        assert!(list(&store, now + 2, None).unwrap().is_empty());
        assert_eq!(
            list(&store, now + 2, Some(H)).unwrap().len(),
            1,
            "kept for the record"
        );
        // Ending it again changes nothing.
        assert_eq!(
            expire(&mut store, id, "api", now + 5)
                .unwrap()
                .expired_by
                .as_deref(),
            Some("cli")
        );
        assert!(matches!(
            expire(&mut store, 99, "api", now),
            Err(SilenceError::Unknown(99))
        ));
    }

    #[test]
    fn a_silence_needs_a_reason_and_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        assert!(matches!(
            add(&mut store, &silence(" ", 0, H)),
            Err(SilenceError::NoComment)
        ));
        assert!(matches!(
            add(&mut store, &silence("x", H, H)),
            Err(SilenceError::Backwards)
        ));
        assert!(matches!(
            add(&mut store, &silence("x", 0, 32 * 24 * H)),
            Err(SilenceError::TooLong)
        ));
        assert!(list(&store, 0, Some(100 * H)).unwrap().is_empty());
    }
}
