//! What a service's long-lived side receives: the store, the agent's alert actions and
//! the reads it shows, the wake-up after each change of the store, a child of the
//! agent's stop signal, and a place to hand its sender what the two share.
//!
//! Some services are more than a send: Telegram's bot polls for presses and commands
//! and keeps its messages in step with their alerts; Alertmanager is kept in step with
//! the alert store by a worker of its own. That side lives in the service's module with
//! the rest of it, started by the one line of the service list (`messengers/mod.rs`)
//! that names it. It reaches what sits above the services — the alert store, the
//! outbox, the routes, the running config — only through the traits here, which the
//! agent and the outbox implement: a service imports nothing above its layer
//! (docs/ARCHITECTURE.md, "Layers"), and adding one touches no file outside its module
//! but the service list.
//!
//! The traits are object-safe and synchronous over a `&Store`: a service runs them off
//! the async threads with [`on`], on a connection of its own, as it does its own
//! tables' calls.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Destination, Messengers, Sections};
use crate::event::alert::Alert;
use crate::event::{Event, Message, Repeat};
use crate::store::{Store, StoreError};

/// A connection of a service's own to the store, shared by its tasks; its calls are
/// short.
pub type Shared = Arc<Mutex<Store>>;

/// Runs a store call off the async threads: SQLite may wait for the write lock.
pub async fn on<T: Send + 'static>(
    store: &Shared,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// Sleeps for `d` or until `stop` is cancelled; `false` when it is. A task that waits
/// between attempts waits here, so that a stop never waits out a back-off.
pub async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.cancelled() => false,
    }
}

/// The running config as a service reads it: the agent swaps it on reload, so a
/// service asks again each time rather than keeping a copy.
pub trait Running: Send + Sync {
    fn instrument(&self) -> &str;
    fn sections(&self) -> &Sections;
}

/// The alert store's reads and actions, each the one function in `alerts` that every
/// surface uses (the API, the CLI, the console, a service), so that a dismissal from
/// Telegram is the same dismissal, with the same audit line, as one from the API.
pub trait Alerts: Send + Sync {
    fn get(&self, store: &Store, id: i64) -> Result<Option<Alert>, StoreError>;
    fn by_key(&self, store: &Store, key: &str) -> Result<Option<Alert>, StoreError>;
    /// Newest activity first; only the active ones unless `all`.
    fn list(&self, store: &Store, now_ms: i64, all: bool) -> Result<Vec<Alert>, StoreError>;
    /// The alerts of `keys`, and every alert dismissed after `since_ms`.
    fn touched(
        &self,
        store: &Store,
        keys: &[String],
        since_ms: i64,
    ) -> Result<Vec<Alert>, StoreError>;
    /// On behalf of `by`; `false` when there is no undismissed alert with that id.
    fn dismiss(&self, store: &Store, id: i64, now_ms: i64, by: &str) -> Result<bool, StoreError>;
    fn snooze(&self, store: &Store, id: i64, until_ms: i64, by: &str) -> Result<bool, StoreError>;
    /// "I'm on it"; `false` when there is no active alert with that id.
    fn acknowledge(
        &self,
        store: &Store,
        id: i64,
        now_ms: i64,
        by: &str,
    ) -> Result<bool, StoreError>;
}

/// What the agent does for a service's running side besides the alert actions: the
/// running config, resend, `/status`, and the silences Telegram makes and lists.
pub trait Host: Send + Sync {
    /// The running config, as of now.
    fn config(&self) -> Arc<dyn Running>;
    /// `__resend`: the alert again, through its event's routes now, queued in the outbox
    /// and its workers woken. The destinations; none when no route takes the event.
    fn resend(&self, store: &mut Store, alert: &Alert) -> Result<Vec<Destination>, StoreError>;
    /// What an operator asks about the agent (Telegram's `/status`).
    fn status(&self, store: &Store) -> Result<Status, StoreError>;
    /// The handover digest's summary of the last day, composed now (`/status` shows it
    /// as the scheduled digest and the console do).
    fn summary(&self, store: &Store, now_ms: i64) -> Result<Message, StoreError>;
    /// A silence of the events whose text holds `text` (as it is, not a pattern), from
    /// `now_ms` for `duration`, made by `by`, the pipeline woken so that it is in force
    /// at once. Its id, or why it was refused.
    fn silence(
        &self,
        store: &mut Store,
        text: &str,
        duration: Duration,
        now_ms: i64,
        by: &str,
    ) -> Result<Result<i64, String>, StoreError>;
    /// The silences in force or coming, soonest-ending first.
    fn silences(&self, store: &Store, now_ms: i64) -> Result<Vec<SilenceView>, StoreError>;
}

/// A silence as a service lists it.
#[derive(Debug, Clone)]
pub struct SilenceView {
    pub id: i64,
    /// What it holds back, in words (`text~"vacuum"`).
    pub matchers: String,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
    /// Events it held back so far.
    pub held: u64,
}

/// The agent's state as a status report shows it.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The files followed now, and how far each was read.
    pub files: Vec<(PathBuf, u64)>,
    /// Each destination with live rows: its name, how many, when the oldest was queued.
    pub depth: Vec<(String, u64, i64)>,
    /// Rows kept as undeliverable.
    pub dead: u64,
    /// Each destination whose oldest live row failed: its name and the error.
    pub errors: Vec<(String, String)>,
    /// Every destination the routes name now.
    pub destinations: Vec<Destination>,
}

/// What a service's running side hands its sender, and the sender finds again after
/// a reload rebuilt it: one value per type (Telegram's ledger). The agent owns one and
/// gives it to both sides; no `static` holds it.
#[derive(Clone, Default)]
pub struct Links {
    inner: Arc<Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>,
}

impl Links {
    pub fn put<T: Any + Send + Sync>(&self, value: T) {
        self.lock().insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let v = self.lock().get(&TypeId::of::<T>()).cloned()?;
        v.downcast::<T>().ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TypeId, Arc<dyn Any + Send + Sync>>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a service's long-lived side is started with.
pub struct Ctx {
    state_dir: PathBuf,
    /// The alert store's reads and actions.
    pub alerts: Arc<dyn Alerts>,
    /// The running config, resend, `/status`.
    pub host: Arc<dyn Host>,
    /// Bumped after each change of the store (the pipeline's commits, another
    /// process's): wait on it instead of polling the store on a timer of one's own.
    pub changes: watch::Receiver<u64>,
    /// Cancelled when the agent stops the services' sides: after the pipeline, so that
    /// what it committed last is still shown (docs/ARCHITECTURE.md, "Shutdown and shared
    /// state").
    pub stop: CancellationToken,
    /// Where to leave what the service's sender needs from this side.
    pub links: Links,
}

impl Ctx {
    /// A connection to the store of the service's own.
    pub fn store(&self) -> Result<Shared, StoreError> {
        Ok(Arc::new(Mutex::new(Store::open(&self.state_dir)?)))
    }
}

/// What the agent hands to every service's start.
pub struct Setup {
    pub state_dir: PathBuf,
    pub alerts: Arc<dyn Alerts>,
    pub host: Arc<dyn Host>,
    pub changes: watch::Receiver<u64>,
    pub links: Links,
    /// A child of the agent's stop signal, of the sides' own: [`Sides::stop`] cancels it.
    pub stop: CancellationToken,
}

/// A service's start: its tasks, or none when its section does not ask for a running
/// side. Problems are the service's to log: the agent runs on without that side.
pub type Start<C> = fn(&C, &Ctx) -> Vec<JoinHandle<()>>;

/// The running sides of the services; [`Sides::stop`] ends them, and so does dropping
/// them (an agent that fails to start after them).
pub struct Sides {
    stop: DropGuard,
    tasks: Vec<JoinHandle<()>>,
}

impl Sides {
    /// Starts, with one [`Ctx`], each service's side through `start`.
    pub(super) fn start(setup: Setup, start: impl FnOnce(&Ctx) -> Vec<JoinHandle<()>>) -> Sides {
        let ctx = Ctx {
            state_dir: setup.state_dir,
            alerts: setup.alerts,
            host: setup.host,
            changes: setup.changes,
            stop: setup.stop.clone(),
            links: setup.links,
        };
        let tasks = start(&ctx);
        Sides {
            stop: setup.stop.drop_guard(),
            tasks,
        }
    }

    /// Asks every task to end and waits for them.
    pub async fn stop(self) {
        let Sides { stop, tasks } = self;
        drop(stop);
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// An outbox row as a delivery worker handles it, whoever's worker it is.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: i64,
    /// The whole event; only for the rows a message shows.
    pub event: Option<Event>,
    pub event_name: String,
    pub created_at_ms: i64,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    /// A repeat summary: the event happened this many more times since `repeat_since`.
    pub repeat: Option<Repeat>,
    pub has_attachments: bool,
    /// The inbox request this delivery answers, if another process is waiting for it.
    pub request: Option<i64>,
}

/// How an attempt at some rows ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    Delivered,
    Retry { at_ms: i64, error: &'a str },
    Dead { error: &'a str },
}

/// What the outbox's settings are now, for a worker: they change on reload.
#[derive(Clone)]
pub struct Current {
    pub messengers: Arc<Messengers>,
    pub instrument: Arc<str>,
    /// Rows older than this are given up (`throttle.max_age`).
    pub max_age: Duration,
}

/// The outbox as a service's own worker uses it: its rows, its settings, the routes.
pub trait Queue: Send + Sync {
    fn current(&self) -> Current;
    /// Whether the routes send the event `event` to `to`.
    fn routes_to(&self, event: &str, to: &Destination) -> bool;
    /// The oldest live rows of `to`, each with its event, at most `max`.
    fn rows(
        &self,
        store: &Store,
        to: &Destination,
        max: usize,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// Records how an attempt at `rows` ended, for all of them at once.
    fn finish(
        &self,
        store: &mut Store,
        to: &Destination,
        rows: &[OutboxRow],
        outcome: Outcome<'_>,
    ) -> Result<(), StoreError>;
    /// The wait before the next try after `failures` failures in a row.
    fn backoff(&self, failures: i64) -> Duration;
}

/// What a service's own delivery worker is started with: one per destination, as the
/// outbox's own workers.
pub struct WorkerCtx {
    pub dest: Destination,
    pub store: Shared,
    /// Rows were committed for it, or the store changed elsewhere.
    pub notify: Arc<Notify>,
    /// A child of the outbox's signal: cancelled when the agent closes the outbox, after
    /// the pipeline. A send in flight is finished first.
    pub stop: CancellationToken,
    pub queue: Arc<dyn Queue>,
    pub alerts: Arc<dyn Alerts>,
}

/// A service's own worker, run in place of the outbox's (see [`super::Service::worker`]).
pub type Worker = fn(WorkerCtx) -> Pin<Box<dyn Future<Output = ()> + Send>>;
