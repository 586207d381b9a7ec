//! One commit of the pipeline: what a batch of lines (or of inbox messages) produced,
//! stored with the file's new checkpoint in one transaction.
//!
//! The store provides the transaction and each module writes its own tables into it —
//! outbox rows, alerts, taken inbox requests, throttle windows, the checkpoint — so
//! that the store knows none of them, and the pipeline, which knows them all, is the
//! one that puts them together. A crash before the commit loses nothing (the lines are
//! read again); one after it repeats nothing (the checkpoint moved). See "Data flow" in
//! docs/ARCHITECTURE.md.

use crate::alerts::{self, Seen};
use crate::inbox;
use crate::oncall::silences;
use crate::outbox::queue::{self, Delivery};
use crate::routing::throttle::{self, Change};
use crate::store::{Store, StoreError, now_ms};
use crate::watcher::checkpoints::{self, Checkpoint};
use crate::watcher::identity::FileId;

/// What one commit stores: a batch of lines' worth of deliveries, alert updates and
/// throttle state, with the file's new checkpoint.
#[derive(Default)]
pub struct Batch<'a> {
    pub checkpoint: Option<&'a Checkpoint>,
    /// The file of `checkpoint` was let go: its checkpoint is kept until then (ms since
    /// the epoch) to know the file again, then forgotten.
    pub keep_until_ms: Option<i64>,
    pub forget: Option<&'a FileId>,
    pub deliveries: Vec<Delivery>,
    pub alerts: Vec<Seen>,
    pub throttle: Vec<Change>,
    /// Inbox requests taken in this batch: id, destinations sent to now, destinations
    /// where it was counted as a repeat.
    pub accepted: Vec<(i64, u32, u32)>,
    /// Events a silence or maintenance window held back: their alert's key, and the
    /// silences (ids) that held each; counted, and the alert marked to be sent once
    /// when they end.
    pub held: Vec<(String, Vec<i64>)>,
    /// Alerts whose held-back news was queued in this batch.
    pub released: Vec<i64>,
    /// Escalations to start.
    pub escalate: Vec<alerts::EscalationStart>,
    /// Escalations that moved: the alert's id, step firings so far, next due time.
    pub escalated: Vec<(i64, u32, Option<i64>)>,
    /// Digests queued in this batch: their key, and when.
    pub digests_sent: Vec<(String, i64)>,
}

/// Stores a batch — events with one outbox row per destination, alert updates,
/// throttle state, taken requests — and moves the checkpoint, all in one transaction.
pub fn commit(store: &mut Store, batch: &Batch<'_>) -> Result<(), StoreError> {
    let now = now_ms();
    store.write(|tx| {
        queue::enqueue(tx, &batch.deliveries, now)?;
        alerts::record(tx, &batch.alerts)?;
        if !batch.held.is_empty() {
            let keys: Vec<String> = batch.held.iter().map(|(k, _)| k.clone()).collect();
            alerts::mark_held(tx, &keys, now)?;
            for (_, ids) in &batch.held {
                silences::count_held(tx, ids, now)?;
            }
        }
        alerts::release_held(tx, &batch.released)?;
        alerts::start_escalation(tx, &batch.escalate)?;
        alerts::advance_escalation(tx, &batch.escalated)?;
        for (key, at) in &batch.digests_sent {
            crate::oncall::digest::mark_sent(tx, key, *at)?;
        }
        inbox::accept(tx, &batch.accepted, now)?;
        throttle::save(tx, &batch.throttle)?;
        if let Some(cp) = batch.checkpoint {
            checkpoints::save(tx, cp, batch.keep_until_ms, now)?;
        }
        if let Some(id) = batch.forget {
            checkpoints::forget(tx, id)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Destination, Service};
    use crate::event::{Event, Message, Repeat, Severity};
    use crate::outbox::queue::Outcome;

    #[test]
    fn commit_and_drain_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert!(!s.has_started_before().unwrap());
        s.mark_started().unwrap();
        let d = Destination {
            service: Service::Mail,
            scope: "default".into(),
        };
        let cp = Checkpoint {
            id: FileId {
                device: 1,
                index: 2,
                created: 3,
            },
            fingerprint: b"head".to_vec(),
            path: "/p/a.log".into(),
            offset: 42,
        };
        let deliveries: Vec<_> = (0..5)
            .map(|i| Delivery {
                event: Event::message("message", Severity::Info, Message::plain(format!("m{i}"))),
                to: vec![d.clone()],
                request: None,
                repeat: (i == 4).then_some(Repeat {
                    count: 7,
                    since_ms: 1,
                }),
            })
            .collect();
        commit(
            &mut s,
            &Batch {
                checkpoint: Some(&cp),
                deliveries,
                ..Batch::default()
            },
        )
        .unwrap();
        drop(s);

        let mut s = Store::open(dir.path()).unwrap();
        assert!(s.has_started_before().unwrap());
        assert_eq!(checkpoints::followed(&s).unwrap(), vec![cp.clone()]);
        let key = d.to_string();
        // Two shown in full, the rest by name only; in order.
        let rows = queue::batch(&s, &key, 3, 2).unwrap();
        let texts: Vec<_> = rows
            .iter()
            .map(|r| r.event.as_ref().map(|e| e.message.text()))
            .collect();
        assert_eq!(texts, vec![Some("m0".into()), Some("m1".into()), None]);
        queue::finish(&mut s, &key, &rows, Outcome::Delivered).unwrap();
        let rows = queue::batch(&s, &key, 10, 10).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].repeat.map(|r| r.count), Some(7));
        queue::finish(
            &mut s,
            &key,
            &rows,
            Outcome::Retry {
                at_ms: 5,
                error: "x",
            },
        )
        .unwrap();
        let rows = queue::batch(&s, &key, 10, 10).unwrap();
        assert_eq!((rows[0].attempts, rows[0].next_attempt_at_ms), (1, 5));
        queue::finish(&mut s, &key, &rows, Outcome::Delivered).unwrap();
        assert!(queue::batch(&s, &key, 10, 10).unwrap().is_empty());
        // Delivered rows take their events with them.
        let left: i64 = s
            .with_conn(|c| c.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(left, 0);
    }
}
