//! Delivery workers over the durable outbox: one per destination, sending in order,
//! retrying what can succeed, keeping what cannot.
//!
//! The rows live in SQLite (see `store`), written in the same transaction as the events
//! that caused them; a worker deletes a row only after its service accepted it. So a
//! crash or a stop at any moment loses nothing, and repeats at most the one message that
//! was in flight. Each destination has its own worker, so a mail server that is down
//! does not hold back Telegram; within a destination, order is kept by retrying the
//! oldest row until it goes through or is given up.
//!
//! A transient failure waits with exponential backoff and jitter, or exactly Telegram's
//! `retry_after`; a permanent one, or a row older than the maximum age, is kept as
//! `dead` with its error.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::config::Destination;
use crate::messengers::{Failure, Messengers, Notification};
use crate::store::{OutboxRow, Store, StoreError, now_ms};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often an idle worker looks at the outbox without being woken.
const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// A row that could not be delivered for this long is given up (kept as dead).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Wakes a destination's worker when rows were committed for it.
#[derive(Clone, Default)]
pub struct Wakers(Arc<HashMap<Destination, Arc<Notify>>>);

impl Wakers {
    pub fn wake(&self, d: &Destination) {
        if let Some(n) = self.0.get(d) {
            n.notify_one();
        }
    }
}

pub struct Outbox {
    workers: Vec<JoinHandle<()>>,
    closing: watch::Sender<bool>,
    wakers: Wakers,
}

impl Outbox {
    /// Starts one worker per destination, each with its own connection to the store.
    pub fn start(
        state_dir: &std::path::Path,
        messengers: Arc<Messengers>,
        instrument: Arc<str>,
        destinations: Vec<Destination>,
    ) -> Result<Outbox, StoreError> {
        let (closing, closing_rx) = watch::channel(false);
        let mut map = HashMap::new();
        let mut workers = Vec::new();
        for dest in destinations {
            let notify = Arc::new(Notify::new());
            map.insert(dest.clone(), notify.clone());
            let store = Arc::new(Mutex::new(Store::open(state_dir)?));
            let w = Worker {
                dest,
                store,
                messengers: messengers.clone(),
                instrument: instrument.clone(),
                notify,
                closing: closing_rx.clone(),
            };
            workers.push(tokio::spawn(w.run()));
        }
        Ok(Outbox {
            workers,
            closing,
            wakers: Wakers(Arc::new(map)),
        })
    }

    pub fn wakers(&self) -> Wakers {
        self.wakers.clone()
    }

    /// Lets each worker finish the send in flight, then stops it. What is still queued
    /// stays in the store for the next start.
    pub async fn close(self) {
        let _ = self.closing.send(true);
        for w in self.workers {
            let _ = w.await;
        }
    }
}

struct Worker {
    dest: Destination,
    store: Arc<Mutex<Store>>,
    messengers: Arc<Messengers>,
    instrument: Arc<str>,
    notify: Arc<Notify>,
    closing: watch::Receiver<bool>,
}

/// What to do with a row after an attempt.
enum Next {
    Delivered,
    Retry { at_ms: i64, error: String },
    Dead(String),
}

impl Worker {
    /// Runs a store call off the async threads: SQLite may wait for the write lock.
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let guard = store.lock().unwrap_or_else(|p| p.into_inner());
            f(&guard)
        })
        .await
        .unwrap_or_else(|e| panic!("store task failed: {e}"))
    }

    fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// Sleeps for `d` or until shutdown; `false` on shutdown.
    async fn pause(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = self.closing.wait_for(|c| *c) => false,
        }
    }

    async fn run(mut self) {
        let key = self.dest.to_string();
        while !self.is_closing() {
            let k = key.clone();
            let row = match self.db(move |s| s.next_pending(&k)).await {
                Ok(row) => row,
                Err(e) => {
                    tracing::error!(destination = %self.dest, error = %e, "cannot read the outbox; retrying in 5 s");
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(row) = row else {
                // Woken by the pipeline's commits; the slow timer also finds rows made
                // live by `protowatch outbox retry` while the agent runs.
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                    _ = self.closing.wait_for(|c| *c) => return,
                }
                continue;
            };
            let wait = row.next_attempt_at_ms - now_ms();
            if wait > 0 && !self.pause(Duration::from_millis(wait as u64)).await {
                return;
            }
            let next = self.attempt(&row).await;
            let id = row.id;
            let result = match next {
                Next::Delivered => self.db(move |s| s.delivered(id)).await,
                Next::Retry { at_ms, error } => {
                    self.db(move |s| s.retry_later(id, at_ms, &error)).await
                }
                Next::Dead(error) => self.db(move |s| s.mark_dead(id, &error)).await,
            };
            if let Err(e) = result {
                tracing::error!(destination = %self.dest, error = %e, "cannot update the outbox");
                if !self.pause(Duration::from_secs(5)).await {
                    return;
                }
            }
        }
    }

    async fn attempt(&self, row: &OutboxRow) -> Next {
        let event = &row.event;
        let n = Notification {
            instrument: &self.instrument,
            event,
        };
        match self.messengers.send(&self.dest, &n).await {
            Ok(()) => {
                tracing::info!(destination = %self.dest, event = %event.name, key = %event.key, "delivered");
                Next::Delivered
            }
            Err(e) if e.kind == Failure::Permanent => {
                tracing::error!(destination = %self.dest, event = %event.name, error = %e.message, "delivery refused; kept as dead");
                Next::Dead(e.message)
            }
            Err(e) if now_ms() - row.created_at_ms > MAX_AGE.as_millis() as i64 => {
                tracing::error!(destination = %self.dest, event = %event.name, error = %e.message, "undeliverable for 24 h; kept as dead");
                Next::Dead(format!(
                    "gave up after {} attempts: {}",
                    row.attempts + 1,
                    e.message
                ))
            }
            Err(e) => {
                let wait = e.retry_after.unwrap_or_else(|| backoff(row.attempts));
                tracing::warn!(destination = %self.dest, event = %event.name, error = %e.message, retry_in_s = wait.as_secs_f64(), "delivery failed; will retry");
                Next::Retry {
                    at_ms: now_ms() + wait.as_millis() as i64,
                    error: e.message,
                }
            }
        }
    }
}

/// Exponential backoff with ±20 % jitter, so destinations that failed together do not
/// retry in lockstep.
fn backoff(attempts: i64) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << attempts.clamp(0, 16) as u32);
    let base = exp.min(MAX_BACKOFF);
    base.mul_f64(0.8 + 0.4 * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(1200));
        assert!(backoff(3) >= Duration::from_millis(6400));
        assert!(backoff(40) <= MAX_BACKOFF.mul_f64(1.2));
    }
}
