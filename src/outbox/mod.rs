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
//! A worker sends what is queued as one message: the oldest row alone when the queue is
//! short, a digest of everything queued when the destination's pace (`routing::pacing`)
//! made it wait. The rows of a message are finished together.
//!
//! A transient failure waits with exponential backoff and jitter, or exactly Telegram's
//! `retry_after`; a permanent one, or rows older than `throttle.max_age`, are kept as
//! `dead` with the error.
//!
//! A service may deliver its rows with a worker of its own, named on its line of the
//! service list (`Service::worker`; Alertmanager's posts each alert's current state and
//! keeps posting active alerts while they last). Its rows are written the same way; the
//! outbox starts that worker for each of its destinations instead of [`Worker`], and
//! serves it its rows, settings and routes through [`runtime::Queue`], without knowing
//! which service it is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub mod queue;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Destination, ThrottleConfig};
use crate::messengers::render::Item;
use crate::messengers::runtime::{self, Alerts, WorkerCtx};
use crate::messengers::{Failure, Messengers, Notification};
use crate::routing::Router;
use crate::routing::pacing::{Pacer, Plan, plan, shown_per_message};
use crate::store::{Store, StoreError, now_ms};
use queue::{OutboxRow, Outcome};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How often an idle worker looks at the outbox without being woken.
const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// The most rows one message may account for; a bigger queue takes several messages.
const MAX_ROWS_PER_MESSAGE: usize = 50_000;

/// The delivery side of the agent: one worker per destination. Cloned into the pipeline,
/// which wakes workers after its commits and, on a config reload, starts workers for
/// new destinations and swaps credentials, scopes and pace in place.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

/// How the pipeline wakes a worker, and how `close` waits for it.
type WorkerHandle = (Arc<Notify>, JoinHandle<()>);

struct Inner {
    state_dir: std::path::PathBuf,
    settings: RwLock<Settings>,
    workers: Mutex<HashMap<Destination, WorkerHandle>>,
    /// The outbox's child of the agent's stop signal, cancelled by [`Outbox::close`]
    /// after the pipeline; each worker holds a child of it.
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
    /// Bumped when the store changed (see [`Outbox::note_change`]).
    changes: watch::Sender<u64>,
    /// The alert store, for a service's own worker.
    alerts: Arc<dyn Alerts>,
}

/// What a reload may change; workers read it at each message.
#[derive(Clone)]
struct Settings {
    messengers: Arc<Messengers>,
    instrument: Arc<str>,
    throttle: ThrottleConfig,
    /// Which alerts a service's own worker mirrors (Alertmanager's): those whose event
    /// is routed to it.
    router: Arc<Router>,
}

impl Outbox {
    /// Starts one worker per destination, each with its own connection to the store.
    /// Must be called inside the tokio runtime that the workers are to run on. `alerts`
    /// is the alert store as a service's own worker reads it; `stop` is the outbox's
    /// child of the agent's signal (docs/ARCHITECTURE.md, "Shutdown and shared state").
    pub fn start(
        state_dir: &std::path::Path,
        messengers: Arc<Messengers>,
        instrument: Arc<str>,
        throttle: &ThrottleConfig,
        router: Arc<Router>,
        alerts: Arc<dyn Alerts>,
        stop: CancellationToken,
    ) -> Result<Outbox, StoreError> {
        let destinations = router.all_destinations();
        let outbox = Outbox {
            inner: Arc::new(Inner {
                state_dir: state_dir.to_path_buf(),
                settings: RwLock::new(Settings {
                    messengers,
                    instrument,
                    throttle: throttle.clone(),
                    router,
                }),
                workers: Mutex::new(HashMap::new()),
                stop,
                runtime: tokio::runtime::Handle::current(),
                changes: watch::channel(0).0,
                alerts,
            }),
        };
        outbox.ensure_workers(&destinations)?;
        Ok(outbox)
    }

    /// Starts a worker for each destination that has none.
    pub fn ensure_workers(&self, destinations: &[Destination]) -> Result<(), StoreError> {
        let mut workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        for dest in destinations {
            if workers.contains_key(dest) {
                continue;
            }
            let notify = Arc::new(Notify::new());
            let store = Arc::new(Mutex::new(Store::open(&self.inner.state_dir)?));
            // A fresh child for each, those started on reload too.
            let (outbox, stop) = (self.inner.clone(), self.inner.stop.child_token());
            let handle = if let Some(worker) = dest.service.worker() {
                let alerts = outbox.alerts.clone();
                self.inner.runtime.spawn(worker(WorkerCtx {
                    dest: dest.clone(),
                    store,
                    notify: notify.clone(),
                    stop,
                    queue: outbox,
                    alerts,
                }))
            } else {
                let w = Worker {
                    pacer: Pacer::new(self.settings().throttle.per_minute(dest.service)),
                    shown: shown_per_message(dest.service),
                    dest: dest.clone(),
                    store,
                    outbox,
                    notify: notify.clone(),
                    stop,
                };
                self.inner.runtime.spawn(w.run())
            };
            workers.insert(dest.clone(), (notify, handle));
        }
        Ok(())
    }

    /// New credentials, scopes, instrument name or pace, used from the next message on.
    pub fn reconfigure(
        &self,
        messengers: Arc<Messengers>,
        instrument: Arc<str>,
        throttle: &ThrottleConfig,
        router: Arc<Router>,
    ) {
        let mut s = self
            .inner
            .settings
            .write()
            .unwrap_or_else(|p| p.into_inner());
        *s = Settings {
            messengers,
            instrument,
            throttle: throttle.clone(),
            router,
        };
    }

    fn settings(&self) -> Settings {
        self.inner.settings()
    }

    /// The runtime the workers run on, for building what they will use (a transport's
    /// connection pool spawns its own task).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// Wakes a destination's worker: rows were committed for it.
    pub fn wake(&self, d: &Destination) {
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((n, _)) = workers.get(d) {
            n.notify_one();
        }
    }

    /// Tells whoever shows rows of the store elsewhere (Telegram's messages of alerts)
    /// to look again. The pipeline calls it after each of its commits and when its tick
    /// sees another connection's or process's commit, so those views wait on this
    /// instead of each polling the store on a timer of its own: at rest nothing wakes.
    pub fn note_change(&self) {
        self.inner.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees each [`note_change`](Self::note_change).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    pub fn wake_all(&self) {
        let workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
        for (n, _) in workers.values() {
            n.notify_one();
        }
    }

    /// Lets each worker finish the send in flight, then stops it. What is still queued
    /// stays in the store for the next start.
    pub async fn close(self) {
        self.inner.stop.cancel();
        let handles: Vec<JoinHandle<()>> = {
            let mut workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
            workers.drain().map(|(_, (_, h))| h).collect()
        };
        for h in handles {
            let _ = h.await;
        }
    }
}

impl Inner {
    fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// The outbox as a service's own worker sees it.
impl runtime::Queue for Inner {
    fn current(&self) -> runtime::Current {
        let s = self.settings();
        runtime::Current {
            messengers: s.messengers,
            instrument: s.instrument,
            max_age: s.throttle.max_age,
        }
    }

    fn routes_to(&self, event: &str, to: &Destination) -> bool {
        self.settings().router.route(event).contains(to)
    }

    fn rows(
        &self,
        store: &Store,
        to: &Destination,
        max: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        queue::batch(store, &to.to_string(), max, usize::MAX)
    }

    fn finish(
        &self,
        store: &mut Store,
        to: &Destination,
        rows: &[OutboxRow],
        outcome: Outcome<'_>,
    ) -> Result<(), StoreError> {
        queue::finish(store, &to.to_string(), rows, outcome)
    }

    fn backoff(&self, failures: i64) -> Duration {
        backoff(failures)
    }
}

struct Worker {
    dest: Destination,
    store: Arc<Mutex<Store>>,
    outbox: Arc<Inner>,
    notify: Arc<Notify>,
    stop: CancellationToken,
    pacer: Pacer,
    shown: usize,
}

/// What to do with the rows of a message after an attempt.
enum Next {
    Delivered,
    Retry { at_ms: i64, error: String },
    Dead(String),
}

impl Worker {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        runtime::on(&self.store, f).await
    }

    async fn pause(&self, d: Duration) -> bool {
        runtime::pause(&self.stop, d).await
    }

    async fn next_rows(&self) -> Result<Vec<OutboxRow>, StoreError> {
        let key = self.dest.to_string();
        let shown = self.shown;
        self.db(move |s| queue::batch(s, &key, MAX_ROWS_PER_MESSAGE, shown))
            .await
    }

    async fn run(mut self) {
        while !self.stop.is_cancelled() {
            let rows = match self.next_rows().await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(destination = %self.dest, error = %e, "cannot read the outbox; retrying in 5 s");
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            let Some(head_due_ms) = rows.first().map(|r| r.next_attempt_at_ms) else {
                // Woken by the pipeline's commits; the slow timer is a safety net.
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(IDLE_RECHECK) => {}
                    _ = self.stop.cancelled() => return,
                }
                continue;
            };
            // While it waits (a retry time, the pace), what arrives joins the message:
            // after a wait, read the rows again.
            let per_minute = self
                .outbox
                .settings()
                .throttle
                .per_minute(self.dest.service);
            self.pacer.set_per_minute(per_minute);
            let mut rows = rows;
            match plan(rows.len(), head_due_ms, &self.pacer, now_ms()) {
                Plan::Wait(ms) => {
                    if !self.pause(Duration::from_millis(ms as u64)).await {
                        return;
                    }
                    continue;
                }
                Plan::Send(n) => rows.truncate(n),
            }
            let next = self.attempt(&rows).await;
            self.pacer.record(now_ms());
            let key = self.dest.to_string();
            let outcome = match &next {
                Next::Delivered => "delivered",
                Next::Retry { .. } => "retry",
                Next::Dead(_) => "dead",
            };
            crate::metrics::deliveries(&key, outcome, rows.len() as u64);
            let result = match next {
                Next::Delivered => {
                    self.db(move |s| queue::finish(s, &key, &rows, Outcome::Delivered))
                        .await
                }
                Next::Retry { at_ms, error } => {
                    self.db(move |s| {
                        queue::finish(
                            s,
                            &key,
                            &rows,
                            Outcome::Retry {
                                at_ms,
                                error: &error,
                            },
                        )
                    })
                    .await
                }
                Next::Dead(error) => {
                    crate::metrics::rows_dead(rows.len() as u64);
                    self.db(move |s| queue::finish(s, &key, &rows, Outcome::Dead { error: &error }))
                        .await
                }
            };
            if let Err(e) = result {
                tracing::error!(destination = %self.dest, error = %e, "cannot update the outbox");
                if !self.pause(Duration::from_secs(5)).await {
                    return;
                }
            }
        }
    }

    async fn attempt(&self, rows: &[OutboxRow]) -> Next {
        let settings = self.outbox.settings();
        let items: Vec<Item<'_>> = rows
            .iter()
            .filter_map(|r| {
                r.event.as_ref().map(|event| Item {
                    event,
                    repeat: r.repeat,
                })
            })
            .collect();
        let mut more: BTreeMap<&str, u64> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.event.is_none()) {
            *more.entry(r.event_name.as_str()).or_default() += r.repeat.map_or(1, |x| x.count);
        }
        let n = Notification {
            instrument: &settings.instrument,
            items,
            more: more.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        };
        let first = &n.items[0].event;
        let (event, key, events) = (first.name.as_str(), first.key.as_str(), n.event_count());
        let oldest = rows.first().map_or(0, |r| r.created_at_ms);
        let attempts = rows.first().map_or(0, |r| r.attempts);
        let max_age = settings.throttle.max_age;
        match settings.messengers.send(&self.dest, &n).await {
            Ok(()) => {
                crate::metrics::message_sent();
                tracing::info!(destination = %self.dest, event, key, events, rows = rows.len(), "delivered");
                Next::Delivered
            }
            Err(e) if e.kind == Failure::Permanent => {
                crate::metrics::send_failure();
                tracing::error!(destination = %self.dest, event, events, error = %e.message, "delivery refused; kept as dead");
                Next::Dead(e.message)
            }
            Err(e) if now_ms() - oldest > max_age.as_millis() as i64 => {
                crate::metrics::send_failure();
                tracing::error!(destination = %self.dest, event, events, error = %e.message, max_age_s = max_age.as_secs(), "undeliverable for longer than throttle.max_age; kept as dead");
                Next::Dead(format!(
                    "gave up after {} attempts: {}",
                    attempts + 1,
                    e.message
                ))
            }
            Err(e) => {
                crate::metrics::send_failure();
                let wait = e.retry_after.unwrap_or_else(|| backoff(attempts));
                tracing::warn!(destination = %self.dest, event, events, error = %e.message, retry_in_s = wait.as_secs_f64(), "delivery failed; will retry");
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
