//! Alerts a page at a time, filtered, with the counts a screen shows beside them: what
//! the console asks for.
//!
//! A screen shows a page, not 10,000 rows: the filter, the order and the page are SQL
//! (`LIMIT`/`OFFSET`), so nothing but the page is read into memory or sent.
//!
//! The order is the operator's, not the store's: the worst severity first, then the
//! latest activity (see [`SEVERITY_ORDER`]). It is made here and not in the page because
//! the page sees one page of alerts: a MAJOR on page three must come before the INFO
//! rows of page one. Sorting by an expression reads every active alert's row rather
//! than walking the `last_seen` index; with 10,000 active alerts that is a few
//! milliseconds, against the seconds a person takes to read the page.

use rusqlite::{Connection, params_from_iter, types::Value as SqlValue};

use super::{Alert, COLUMNS, from_row};
use crate::event::Severity;
use crate::store::{Store, StoreError};

/// The most alerts one page holds.
pub const MAX_PAGE: u32 = 500;

/// Which alerts to show: all active ones unless narrowed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub severity: Option<Severity>,
    pub event: Option<String>,
    /// Case-insensitive (ASCII) substring of the message, key, source or file.
    pub text: Option<String>,
}

/// One page of active alerts.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Alert>,
    /// Active alerts the filter matches, on every page.
    pub matching: u64,
    /// Active alerts per severity (info, warning, minor, major), filter or not.
    pub by_severity: [u64; 4],
    /// Active alerts per event name, most first: the filter's choices.
    pub by_event: Vec<(String, u64)>,
}

/// Major, minor, warning, info: the rank SQL sorts by, highest first.
pub const SEVERITY_ORDER: &str = "CASE severity WHEN 'major' THEN 3 WHEN 'minor' THEN 2 \
     WHEN 'warning' THEN 1 ELSE 0 END DESC";

/// `?1` is now.
const ACTIVE: &str = "dismissed_at IS NULL AND (ttl_s IS NULL OR last_seen + ttl_s * 1000 >= ?1)";

/// A `LIKE` pattern that finds `text` as it is (`%`, `_` and `\` are not wildcards).
fn like(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

fn rows(c: &Connection, sql: &str, args: &[SqlValue]) -> rusqlite::Result<Vec<Alert>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(params_from_iter(args), from_row)?;
    rows.collect()
}

/// Active alerts matching `filter`, the worst severity first and within one severity the
/// latest activity first, `limit` from `offset`.
pub fn active(
    store: &Store,
    now_ms: i64,
    filter: &Filter,
    offset: u64,
    limit: u32,
) -> Result<Page, StoreError> {
    let mut cond = ACTIVE.to_string();
    let mut args: Vec<SqlValue> = vec![now_ms.into()];
    if let Some(s) = filter.severity {
        args.push(s.as_str().to_string().into());
        cond.push_str(&format!(" AND severity = ?{}", args.len()));
    }
    if let Some(e) = &filter.event {
        args.push(e.clone().into());
        cond.push_str(&format!(" AND event = ?{}", args.len()));
    }
    if let Some(t) = filter.text.as_deref().filter(|t| !t.trim().is_empty()) {
        args.push(like(t.trim()).into());
        let n = args.len();
        cond.push_str(&format!(
            " AND (message LIKE ?{n} ESCAPE '\\' OR key LIKE ?{n} ESCAPE '\\'
                   OR source LIKE ?{n} ESCAPE '\\' OR origin LIKE ?{n} ESCAPE '\\')"
        ));
    }
    store.with_conn(|c| {
        let matching: i64 = c.query_row(
            &format!("SELECT COUNT(*) FROM alerts WHERE {cond}"),
            params_from_iter(&args),
            |r| r.get(0),
        )?;
        let mut page_args = args.clone();
        page_args.push(i64::from(limit.min(MAX_PAGE)).into());
        page_args.push((offset.min(i64::MAX as u64) as i64).into());
        let n = page_args.len();
        let rows = rows(
            c,
            &format!(
                "SELECT {COLUMNS} FROM alerts WHERE {cond}
                 ORDER BY {SEVERITY_ORDER}, last_seen DESC, id DESC LIMIT ?{} OFFSET ?{n}",
                n - 1
            ),
            &page_args,
        )?;
        let mut by_severity = [0u64; 4];
        let mut stmt = c.prepare_cached(&format!(
            "SELECT severity, COUNT(*) FROM alerts WHERE {ACTIVE} GROUP BY severity"
        ))?;
        for r in stmt.query_map([now_ms], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })? {
            let (s, n) = r?;
            if let Ok(s) = s.parse::<Severity>() {
                by_severity[super::hours::severity_index(s)] += n.max(0) as u64;
            }
        }
        let mut stmt = c.prepare_cached(&format!(
            "SELECT event, COUNT(*) AS n FROM alerts WHERE {ACTIVE}
             GROUP BY event ORDER BY n DESC, event LIMIT 100"
        ))?;
        let by_event = stmt
            .query_map([now_ms], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Page {
            rows,
            matching: matching.max(0) as u64,
            by_severity,
            by_event,
        })
    })
}

/// Dismissed and expired alerts, the latest to end first, `limit` from `offset`, and
/// how many there are (kept for [`super::KEEP_INACTIVE_MS`]).
pub fn history(
    store: &Store,
    now_ms: i64,
    offset: u64,
    limit: u32,
) -> Result<(Vec<Alert>, u64), StoreError> {
    const ENDED: &str = "dismissed_at IS NOT NULL OR last_seen + ttl_s * 1000 < ?1";
    store.with_conn(|c| {
        let total: i64 = c.query_row(
            &format!("SELECT COUNT(*) FROM alerts WHERE {ENDED}"),
            [now_ms],
            |r| r.get(0),
        )?;
        let rows = rows(
            c,
            &format!(
                "SELECT {COLUMNS} FROM alerts WHERE {ENDED}
                 ORDER BY COALESCE(dismissed_at, last_seen + ttl_s * 1000) DESC, id DESC
                 LIMIT ?2 OFFSET ?3"
            ),
            &[
                now_ms.into(),
                i64::from(limit.min(MAX_PAGE)).into(),
                (offset.min(i64::MAX as u64) as i64).into(),
            ],
        )?;
        Ok((rows, total.max(0) as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_text_literally() {
        assert_eq!(like("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
