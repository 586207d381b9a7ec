//! The worker of the `alertmanager` destination: it keeps Alertmanager in step with the
//! alert store rather than sending messages.
//!
//! The outbox runs it in place of its own worker for each Alertmanager destination,
//! because the service list says so (`[worker alertmanager::worker]`); it reaches the
//! outbox's rows and the alert store through the [`runtime`] traits that the outbox and
//! the alert store implement, so the outbox knows nothing of Alertmanager.
//!
//! Its outbox rows are written like any other destination's, in the pipeline's commit
//! (an alert's first occurrence, its repeat summaries), so a new alert survives a crash
//! and an Alertmanager that is down. What it posts is the alert's state when it posts,
//! read from the store, so rows that queued up while Alertmanager was away become one
//! post of each alert's latest state. Besides the rows it posts:
//!
//! - alerts dismissed since its last post, as resolved (`endsAt` their dismissal), at
//!   once: the pipeline wakes every worker when the store changed elsewhere;
//! - every `repost_interval`, every alert routed here that is active, and those that
//!   ended within the last [`RESOLVED_RESEND`] as resolved — the repost keeps an alert
//!   without a `ttl` alive past Alertmanager's `resolve_timeout`, and brings a member of
//!   the cluster that was away up to date (Prometheus resends resolved alerts for 15
//!   minutes for the same reason).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Alertmanager;
use crate::event::alert::Alert;
use crate::messengers::runtime::{self, Alerts, OutboxRow, Outcome, Queue, Shared, WorkerCtx};
use crate::messengers::{Destination, Failure, Messenger, Messengers, Service};
use crate::store::{Store, StoreError, now_ms};

/// How long a resolved alert is still posted with each repost.
pub const RESOLVED_RESEND: Duration = Duration::from_secs(15 * 60);
/// Dismissals are looked for from a little before the last post: a dismissal stamped
/// just before it may commit just after it. Posting a resolved alert twice is harmless.
const OVERLAP_MS: i64 = 5_000;
/// The least time between two posts: a burst of wake-ups is one post.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Rows read at once; an Alertmanager takes an array of any length, but a post of every
/// row of a week's outage is not needed: each alert is posted once whatever its rows.
const MAX_ROWS: usize = 10_000;

/// The worker of one Alertmanager destination (a [`runtime::Worker`]).
pub fn worker(ctx: WorkerCtx) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(
        AlertmanagerWorker {
            dest: ctx.dest,
            store: ctx.store,
            queue: ctx.queue,
            alerts: ctx.alerts,
            notify: ctx.notify,
            stop: ctx.stop,
        }
        .run(),
    )
}

struct AlertmanagerWorker {
    dest: Destination,
    store: Shared,
    queue: Arc<dyn Queue>,
    alerts: Arc<dyn Alerts>,
    notify: Arc<Notify>,
    stop: CancellationToken,
}

/// The Alertmanager service as configured now; `None` when the config has none.
fn alertmanager(messengers: &Messengers) -> Option<&Alertmanager> {
    match messengers.get(&Service::Alertmanager) {
        Some(Messenger::Alertmanager(a)) => Some(a),
        _ => None,
    }
}

/// What one round read from the store.
struct Round {
    rows: Vec<OutboxRow>,
    alerts: Vec<Alert>,
}

impl AlertmanagerWorker {
    async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        runtime::on(&self.store, f).await
    }

    async fn pause(&self, d: Duration) -> bool {
        runtime::pause(&self.stop, d).await
    }

    /// Waits to be woken, or for `d`; `false` on shutdown.
    async fn idle(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.notify.notified() => true,
            _ = tokio::time::sleep(d) => true,
            _ = self.stop.cancelled() => false,
        }
    }

    async fn read(&self, full: bool, since_ms: i64, now: i64) -> Result<Round, StoreError> {
        let (dest, queue, store_alerts) =
            (self.dest.clone(), self.queue.clone(), self.alerts.clone());
        self.db(move |s| {
            let mut rows = queue.rows(s, &dest, MAX_ROWS)?;
            rows.retain(|r| r.next_attempt_at_ms <= now);
            let keys: Vec<String> = rows
                .iter()
                .filter_map(|r| r.event.as_ref().map(|e| e.key.clone()))
                .collect();
            let mut alerts = store_alerts.touched(s, &keys, since_ms)?;
            if full {
                for a in store_alerts.list(s, now, true)? {
                    if !alerts.iter().any(|b| b.key == a.key) {
                        alerts.push(a);
                    }
                }
            }
            Ok(Round { rows, alerts })
        })
        .await
    }

    async fn run(mut self) {
        // The first round is a full one: whatever happened while the agent was down.
        let mut last_full_ms = i64::MIN / 2;
        let mut last_sync_ms = now_ms();
        let mut failures: i64 = 0;
        let mut last_post: Option<Instant> = None;
        // What was last posted of each alert: its labels are its identity to
        // Alertmanager, so when they change (a new severity, a renamed instrument) the
        // old one is posted resolved; and an alert posted once (`?notify=`) is kept up
        // to date even when no route sends its event here.
        let mut posted: HashMap<String, Value> = HashMap::new();
        while !self.stop.is_cancelled() {
            // Changes that come close together are one post; the first after a quiet
            // spell goes at once.
            if let Some(gap) = last_post.and_then(|t| MIN_GAP.checked_sub(t.elapsed()))
                && !self.pause(gap).await
            {
                return;
            }
            let settings = self.queue.current();
            let Some(am) = alertmanager(&settings.messengers) else {
                // Taken out of the config: the rows wait for it to come back.
                if !self.idle(Duration::from_secs(60)).await {
                    return;
                }
                continue;
            };
            let repost = am.repost_interval;
            let now = now_ms();
            let full = now - last_full_ms >= repost.as_millis() as i64;
            let round = match self.read(full, last_sync_ms, now).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(destination = %self.dest, error = %e, "cannot read the outbox; retrying in 5 s");
                    if !self.pause(Duration::from_secs(5)).await {
                        return;
                    }
                    continue;
                }
            };
            let row_keys: Vec<&str> = round
                .rows
                .iter()
                .filter_map(|r| r.event.as_ref().map(|e| e.key.as_str()))
                .collect();
            let resend_from = now - RESOLVED_RESEND.as_millis() as i64;
            let alerts: Vec<&Alert> = round
                .alerts
                .iter()
                .filter(|a| {
                    row_keys.contains(&a.key.as_str())
                        || posted.contains_key(&a.key)
                        || self.queue.routes_to(&a.event, &self.dest)
                })
                .filter(|a| a.is_active(now) || a.ends_at_ms().is_some_and(|e| e >= resend_from))
                .collect();
            let mut payload: Vec<Value> = Vec::with_capacity(alerts.len());
            let mut now_posted: Vec<(String, Value)> = Vec::with_capacity(alerts.len());
            for a in &alerts {
                let v = am.alert_of(&settings.instrument, a);
                if let Some(old) = posted.get(&a.key)
                    && old["labels"] != v["labels"]
                {
                    payload.push(Alertmanager::resolved(old, now));
                }
                now_posted.push((a.key.clone(), v.clone()));
                payload.push(v);
            }
            let key = self.dest.to_string();
            if !payload.is_empty() {
                last_post = Some(Instant::now());
                match am.post(&payload).await {
                    Ok(()) => {
                        failures = 0;
                        tracing::info!(destination = %self.dest, alerts = payload.len(), rows = round.rows.len(), full, "alerts posted");
                        for (k, v) in now_posted {
                            posted.insert(k, v);
                        }
                        // Forgotten once it is no longer posted as resolved either.
                        posted.retain(|k, _| alerts.iter().any(|a| &a.key == k) || !full);
                    }
                    Err(e) => {
                        crate::metrics::send_failure();
                        // A member that is away, or a wrong path (a 404 will not heal
                        // by itself, but the next repost tries again anyway): no faster
                        // than the reposts, so a refusal is not a loop.
                        let permanent = e.kind == Failure::Permanent;
                        let wait = if permanent {
                            repost
                        } else {
                            e.retry_after
                                .unwrap_or_else(|| self.queue.backoff(failures))
                        }
                        .min(repost);
                        failures += 1;
                        if full {
                            last_full_ms = now;
                        }
                        let max_age = settings.max_age.as_millis() as i64;
                        let (dead, retry): (Vec<OutboxRow>, Vec<OutboxRow>) = round
                            .rows
                            .into_iter()
                            .partition(|r| permanent || now - r.created_at_ms > max_age);
                        if permanent {
                            tracing::error!(destination = %self.dest, error = %e.message, rows = dead.len(), "alerts refused; their rows are kept as dead");
                        } else {
                            tracing::warn!(destination = %self.dest, error = %e.message, retry_in_s = wait.as_secs_f64(), "alerts not posted; will retry");
                        }
                        crate::metrics::rows_dead(dead.len() as u64);
                        crate::metrics::deliveries(&key, "retry", retry.len() as u64);
                        crate::metrics::deliveries(&key, "dead", dead.len() as u64);
                        let at_ms = now + wait.as_millis() as i64;
                        let message = e.message;
                        let (dest, queue) = (self.dest.clone(), self.queue.clone());
                        let updated = self
                            .db(move |s| {
                                queue.finish(
                                    s,
                                    &dest,
                                    &retry,
                                    Outcome::Retry {
                                        at_ms,
                                        error: &message,
                                    },
                                )?;
                                queue.finish(s, &dest, &dead, Outcome::Dead { error: &message })
                            })
                            .await;
                        if let Err(e) = updated {
                            tracing::error!(destination = %self.dest, error = %e, "cannot update the outbox");
                        }
                        if !self.pause(wait).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            if !round.rows.is_empty() {
                let rows = round.rows;
                crate::metrics::deliveries(&key, "delivered", rows.len() as u64);
                let (dest, queue) = (self.dest.clone(), self.queue.clone());
                if let Err(e) = self
                    .db(move |s| queue.finish(s, &dest, &rows, Outcome::Delivered))
                    .await
                {
                    tracing::error!(destination = %self.dest, error = %e, "cannot update the outbox");
                }
            }
            last_sync_ms = now - OVERLAP_MS;
            if full {
                last_full_ms = now;
            }
            let until_full = (last_full_ms + repost.as_millis() as i64 - now_ms()).max(0);
            if !self.idle(Duration::from_millis(until_full as u64)).await {
                return;
            }
        }
    }
}
