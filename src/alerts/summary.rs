//! The figures of a handover digest, gathered from the store: new alerts by severity,
//! what is still active and who acknowledged it, what silences held back, the keys seen
//! most, the deliveries given up. `oncall::digest` words them; the scheduled digest,
//! Telegram's `/status` and the console all gather here, so they say the same.

use std::collections::BTreeMap;

use crate::event::Severity;
use crate::oncall::digest::{Line, Summary};
use crate::oncall::silences;
use crate::outbox::queue;
use crate::store::{Store, StoreError};

/// What happened from `since_ms` to `until_ms`, and what is active at `until_ms`.
pub fn gather(store: &Store, since_ms: i64, until_ms: i64) -> Result<Summary, StoreError> {
    let all = super::list(store, until_ms, true)?;
    let mut new: BTreeMap<Severity, u64> = BTreeMap::new();
    for a in all
        .iter()
        .filter(|a| a.first_seen_ms >= since_ms && a.first_seen_ms <= until_ms)
    {
        *new.entry(a.severity).or_default() += 1;
    }
    let mut active: Vec<_> = all.iter().filter(|a| a.is_active(until_ms)).collect();
    active.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(b.last_seen_ms.cmp(&a.last_seen_ms))
    });
    let mut seen: Vec<_> = all.iter().filter(|a| a.last_seen_ms >= since_ms).collect();
    seen.sort_by(|a, b| b.times_seen.cmp(&a.times_seen).then(a.id.cmp(&b.id)));
    Ok(Summary {
        since_ms,
        until_ms,
        new: new.into_iter().rev().collect(),
        active: active
            .iter()
            .map(|a| Line {
                id: a.id,
                severity: a.severity,
                subject: subject(&a.message.text()),
                times_seen: a.times_seen,
                acknowledged_by: a.acknowledged_by.clone(),
            })
            .collect(),
        silenced: silences::held_since(store, since_ms)?,
        top: seen
            .iter()
            .take(5)
            .map(|a| (subject(&a.message.text()), a.times_seen))
            .collect(),
        failed: queue::dead_since(store, since_ms)?,
    })
}

/// An alert's first line, as a list shows it.
fn subject(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    let mut s: String = line.chars().take(120).collect();
    if line.chars().count() > 120 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::NewAlert;
    use crate::oncall::digest::compose;
    use crate::oncall::window::Zone;

    #[test]
    fn a_night_in_the_store_becomes_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let h = 3_600_000;
        let put = |key: &str, severity: Severity, text: &str, at: i64| {
            super::super::put(
                &store,
                &NewAlert {
                    key: key.into(),
                    message: text.into(),
                    details: None,
                    severity,
                    ttl_s: None,
                    machine_id: None,
                    actions: Vec::new(),
                    data: serde_json::json!({}),
                    timestamp_ms: Some(at),
                },
                at,
            )
            .unwrap()
        };
        let old = put("old", Severity::Warning, "before the night", 0);
        let hv = put("hv", Severity::Major, "HV trip on bank 3", 2 * h);
        put("hv", Severity::Major, "HV trip on bank 3", 3 * h);
        let vac = put("vac", Severity::Minor, "vacuum lost", 4 * h);
        super::super::acknowledge(&store, hv.id, 5 * h, "telegram:@anna (42)").unwrap();
        super::super::dismiss(&store, vac.id, 6 * h, "cli").unwrap();

        let s = gather(&store, h, 8 * h).unwrap();
        assert_eq!(s.new, vec![(Severity::Major, 1), (Severity::Minor, 1)]);
        let active: Vec<(i64, Option<&str>)> = s
            .active
            .iter()
            .map(|l| (l.id, l.acknowledged_by.as_deref()))
            .collect();
        assert_eq!(
            active,
            vec![(hv.id, Some("telegram:@anna (42)")), (old.id, None)]
        );
        let text = compose("Handover", &s, &Zone::parse(Some("UTC")).unwrap()).text();
        assert!(text.contains("New alerts: 2 (1 major, 1 minor)"), "{text}");
        assert!(
            text.contains("HV trip on bank 3 (seen 2 times) — acknowledged by telegram:@anna (42)"),
            "{text}"
        );
        assert!(text.contains("Failed deliveries: none"), "{text}");
    }
}
