//! The running agent: wires watcher → parser → routing → store/outbox, and shuts it
//! down in order.
//!
//! The pipeline (parse, route, commit) runs on a thread of its own: it is CPU and SQLite
//! work, and its commit is the one place where lines become durable. For each batch of
//! lines it stores the events, one outbox row per destination, and the file's new
//! checkpoint in one transaction, then wakes the delivery workers.
//!
//! Shutdown runs backwards: the watcher threads stop, the pipeline commits what they
//! handed over (pending tracebacks included), and each delivery worker finishes its send
//! in flight. Whatever is still queued stays in the store for the next start. The
//! command that runs the agent hands in a `CancellationToken`; the agent answers it with
//! one signal of its own, of which each part holds a child, cancelled in that order;
//! what the parts share at run time — their health, BEC's routes — is made here and
//! handed to writer and reader, never kept in a global (docs/ARCHITECTURE.md, "Shutdown
//! and shared state").

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::alerts::holds::{Hold, Holds};
use crate::alerts::{self, Tally};
use crate::api::Api;
use crate::bec::codec::BecRoutes;
use crate::bec::routes::Resolved;
use crate::config::{Config, Destination};
use crate::event::Event;
use crate::inbox::{self, Request};
use crate::messengers::Messengers;
use crate::messengers::runtime::{self, Links};
use crate::outbox::Outbox;
use crate::outbox::queue::{self, Delivery};
use crate::parser::{FileParser, Rules};
use crate::routing::Router;
use crate::routing::throttle::{self, Summary, Throttle};
use crate::store::{AgentLock, Store, StoreError, now_ms};
use crate::watcher::checkpoints::{self, Checkpoint};
use crate::watcher::{FileKey, Resume, Retired, WatchId, WatchMsg, Watcher};

mod batch;
mod services;
pub use batch::{Batch, commit};

/// How much of the inbox (messages as stored, their files in base64) the pipeline reads
/// at once: a few of the largest `/api/notify` messages.
const INBOX_PIECE_BYTES: usize = 32 * 1024 * 1024;

/// How long an edited config file must stay unchanged before it is applied.
const CONFIG_SETTLE: Duration = Duration::from_millis(500);

type ConfigStamp = Option<(std::time::SystemTime, u64)>;

fn config_stamp(path: &std::path::Path) -> ConfigStamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The stamp that the running `config` stands for. It was read before the agent set
/// itself up (lock, store, workers, API, watcher threads: seconds on a busy machine), so
/// an edit saved meanwhile is in the file's stamp now but not in `config`: taking the
/// stamp as it is would make that edit look applied, and it would never be. So the
/// stamp is taken first and the file read again after it; if the file no longer says
/// what `config` says, there is no stamp, and the first look at the file applies it.
fn startup_stamp(config: &Config) -> ConfigStamp {
    let stamp = config_stamp(&config.file);
    match Config::load(&config.file) {
        Ok(now)
            if crate::config::diff::changed_paths(&config.masked_json(), &now.masked_json())
                .is_empty()
                && crate::config::diff::secrets_changed(config, &now).is_empty() =>
        {
            stamp
        }
        _ => None,
    }
}

/// The most lines of one file committed together when its batches queue up (a burst) and
/// they have something to send: enough to make a burst's commits few, few enough that
/// its first occurrences go out at once.
const COALESCE_LINES: usize = 16_384;

/// The most lines committed together when they only counted repeats of keys already in
/// the batch's tally. Each commit writes every key's alert and throttle windows once,
/// whatever its lines, so this sets how often a burst of repeats pays for that; the
/// memory held stays that of the keys, as events are routed as they are parsed.
const COALESCE_COUNTED_LINES: usize = 131_072;

/// Routed events per name and severity, for the metrics: one update of the shared
/// counters per name and batch instead of one per event (a burst is a million of one
/// name).
#[derive(Default)]
struct EventCounts(Vec<(String, &'static str, u64)>);

impl EventCounts {
    fn add(&mut self, e: &Event) {
        let severity = e.severity.as_str();
        match self
            .0
            .iter_mut()
            .rev()
            .find(|(n, s, _)| *s == severity && *n == e.name)
        {
            Some((_, _, n)) => *n += 1,
            None => self.0.push((e.name.clone(), severity, 1)),
        }
    }

    fn record(self) {
        for (name, severity, n) in self.0 {
            crate::metrics::events(&name, severity, n);
        }
    }
}

/// How long a stop waits for the watcher threads: well inside systemd's stop timeout.
const WATCHER_STOP_WAIT: Duration = Duration::from_secs(10);

/// How long a traceback may stay open without a new line before it is sent as it is.
const TRACEBACK_IDLE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    StateId(#[from] crate::state_id::StateIdError),
}

/// What the async side asks of the pipeline thread, which looks at it between batches
/// and at least once a second.
struct Control {
    /// The intake's child of the agent's stop signal.
    stop: CancellationToken,
    /// SIGHUP: read the config file now, changed or not.
    reload: AtomicBool,
}

struct Pipeline {
    config: Arc<Config>,
    /// Owned here, not by the async side: replacing a `watch` entry must wait for its
    /// thread's last lines to be committed before the new thread reads on from there.
    watcher: Watcher,
    rx: std_mpsc::Receiver<WatchMsg>,
    control: Arc<Control>,
    rules: Arc<Rules>,
    router: Arc<Router>,
    store: Store,
    outbox: Outbox,
    /// What the services' running sides leave for their senders, handed to every
    /// messenger built on reload.
    links: Links,
    /// What the HTTP API answers from; swapped on reload.
    shared_config: crate::api::SharedConfig,
    /// The config file's modification time and length as last applied or seen.
    config_stamp: ConfigStamp,
    /// A change seen and not applied yet: editors write in several steps.
    config_changed_at: Option<Instant>,
    parsers: HashMap<FileKey, (FileParser, Instant)>,
    /// Parsed and not routed yet.
    events: Vec<Event>,
    /// Routed and waiting for the next commit, with the destinations to wake after it.
    deliveries: Vec<Delivery>,
    woken: Vec<Destination>,
    throttle: Throttle,
    tally: Tally,
    /// Repeat summaries waiting for the next commit.
    summaries: Vec<Summary>,
    /// Messages other processes handed in (`send-message`), waiting for the next commit.
    requests: Vec<Request>,
    /// What holds messages back now: snoozes, acknowledgements, silences, maintenance
    /// windows; read again when the store changes and when one of them starts or ends.
    holds: Holds,
    /// When a silence or window next starts or ends.
    holds_next_ms: Option<i64>,
    /// Held back by a silence or window in this batch: the alert's key and the silences.
    held: Vec<(String, Vec<i64>)>,
    /// Alerts whose held-back news this batch sends.
    released: Vec<i64>,
    /// The maintenance windows of the config.
    windows: Vec<crate::oncall::Window>,
    /// Escalations this batch starts, and those it moves on.
    escalate: HashMap<String, alerts::EscalationStart>,
    escalated: Vec<(i64, u32, Option<i64>)>,
    /// Destinations of escalation steps queued in this batch: their workers may not run
    /// yet (a phone no route names).
    escalation_to: Vec<Destination>,
    /// The scheduled digests: each with its key in `meta`, when it was last sent and
    /// when it is next due; and the sendings this batch records.
    digests: Vec<DigestTimer>,
    digests_sent: Vec<(String, i64)>,
    data_version: i64,
    dismissals_seen_ms: i64,
    purged_ms: i64,
    last_tick: Instant,
    /// BEC's routes as the bridge last received them; the router is rebuilt when they
    /// change.
    bec_routes: crate::bec::RoutesRx,
}

/// A scheduled digest and where it stands.
struct DigestTimer {
    config: crate::config::oncall::DigestConfig,
    key: String,
    last_ms: Option<i64>,
    next_ms: i64,
}

fn next_digest_ms(d: &crate::config::oncall::DigestConfig, after_ms: i64) -> i64 {
    let after = chrono::DateTime::from_timestamp_millis(after_ms).unwrap_or_default();
    crate::oncall::digest::next_at(d.at, &d.zone, after).timestamp_millis()
}

/// The digests' timers: each next due after its last sending, or, never sent, after now
/// (a first start sends none at once).
fn digest_timers(
    store: &Store,
    digests: &[crate::config::oncall::DigestConfig],
    now: i64,
) -> Result<Vec<DigestTimer>, StoreError> {
    digests
        .iter()
        .map(|d| {
            let key = crate::oncall::digest::schedule_key(d.at, &d.zone, &d.to);
            let last_ms = crate::oncall::digest::last_sent(store, &key)?;
            Ok(DigestTimer {
                next_ms: next_digest_ms(d, last_ms.unwrap_or(now)),
                config: d.clone(),
                key,
                last_ms,
            })
        })
        .collect()
}

/// Our router for `config`, with BEC's routes `bec` (as last received) added.
fn router(config: &Config, bec: Option<&BecRoutes>) -> Router {
    Router::new(config).with_bec(&Resolved::from_config(config, bec).routes)
}

impl Pipeline {
    fn on_message(&mut self, msg: WatchMsg) -> Result<(), StoreError> {
        let mut next = Some(msg);
        while let Some(msg) = next.take() {
            next = self.handle(msg)?;
        }
        Ok(())
    }

    /// Handles one message; returns a message it took from the channel and did not use.
    fn handle(&mut self, msg: WatchMsg) -> Result<Option<WatchMsg>, StoreError> {
        match msg {
            WatchMsg::Lines {
                watch,
                file,
                mut checkpoint,
                mut lines,
            } => {
                let mut taken = 0;
                let left = loop {
                    crate::metrics::lines_read(&checkpoint.path, lines.len() as u64);
                    taken += lines.len();
                    self.parse_and_route(watch, file, &checkpoint.path, &lines);
                    // A burst queues batch after batch of one file. One commit for
                    // several of them writes each alert and throttle window once instead
                    // of once a batch, which is most of a burst's cost; a line alone
                    // still commits at once, as nothing else is waiting. Lines that
                    // only counted repeats run on longer: nobody waits for them, and,
                    // routed as they are parsed, they leave only their keys in the batch,
                    // of which it takes no more than COALESCE_LINES.
                    let counting = self.deliveries.is_empty() && self.tally.len() < COALESCE_LINES;
                    let limit = if counting {
                        COALESCE_COUNTED_LINES
                    } else {
                        COALESCE_LINES
                    };
                    if taken >= limit {
                        break None;
                    }
                    match self.rx.try_recv() {
                        Ok(WatchMsg::Lines {
                            watch: w,
                            file: f,
                            checkpoint: c,
                            lines: l,
                        }) if (w, f) == (watch, file) => {
                            checkpoint = c;
                            lines = l;
                        }
                        Ok(other) => break Some(other),
                        Err(_) => break None,
                    }
                };
                self.commit(Some(&checkpoint), None, None)?;
                Ok(left)
            }
            WatchMsg::Closed {
                watch,
                file,
                checkpoint,
                last,
                keep_until_ms,
            } => {
                let mut parser = match self.parsers.remove(&file) {
                    Some((p, _)) => p,
                    None => self.new_parser(watch, &checkpoint.path),
                };
                if let Some(line) = last {
                    parser.line(&line, &mut self.events);
                }
                parser.finish(&mut self.events);
                tracing::debug!(file = %checkpoint.path.display(), counts = ?parser.counts, "file let go");
                // The checkpoint stays, marked as let go: a file that comes back resumes.
                self.commit(Some(&checkpoint), None, Some(keep_until_ms))?;
                Ok(None)
            }
            WatchMsg::Forget { id, .. } => {
                self.commit(None, Some(&id), None)?;
                Ok(None)
            }
            WatchMsg::Wake => {
                self.apply_bec_routes();
                self.load_holds(now_ms())?;
                self.accept_inbox()?;
                Ok(None)
            }
        }
    }

    fn encoding(&self, watch: WatchId) -> crate::config::Encoding {
        self.watcher
            .config(watch)
            .map_or(crate::config::Encoding::Auto, |w| w.encoding)
    }

    fn new_parser(&self, watch: WatchId, path: &std::path::Path) -> FileParser {
        FileParser::new(path, self.encoding(watch), self.rules.clone())
    }

    /// Parses `lines` and routes each line's events at once. An event then lives only
    /// until the next occurrence of its key replaces it in the tally and the throttle:
    /// in a burst the allocator hands the memory of one event straight to the next,
    /// instead of filling and emptying its free lists a batch at a time.
    fn parse_and_route(
        &mut self,
        watch: WatchId,
        file: FileKey,
        path: &std::path::Path,
        lines: &[Vec<u8>],
    ) {
        // Out of the map while it parses, as routing needs the rest of `self`.
        let mut parser = match self.parsers.remove(&file) {
            Some((p, _)) => p,
            None => self.new_parser(watch, path),
        };
        let mut events = std::mem::take(&mut self.events);
        let now = now_ms();
        let mut counted = EventCounts::default();
        for line in lines {
            parser.line(line, &mut events);
            for e in events.drain(..) {
                self.route_event(e, None, None, now, &mut counted);
            }
        }
        // An ERROR line's traceback is written with it, so it is in this batch if it
        // comes at all: the last line of a batch waits for nothing, and is counted and
        // sent with the rest of its batch.
        parser.release(&mut events);
        for e in events.drain(..) {
            self.route_event(e, None, None, now, &mut counted);
        }
        counted.record();
        self.events = events;
        self.parsers.insert(file, (parser, Instant::now()));
    }

    /// Sends tracebacks whose final line never came.
    fn flush_idle(&mut self, force: bool) -> Result<(), StoreError> {
        for (parser, seen) in self.parsers.values_mut() {
            if parser.is_pending() && (force || seen.elapsed() >= TRACEBACK_IDLE) {
                parser.finish(&mut self.events);
            }
        }
        if self.events.is_empty() {
            return Ok(());
        }
        self.commit(None, None, None)
    }

    /// Routes the parsed events through the throttle and tallies them into alerts; what
    /// is to be sent waits in `deliveries` for the commit.
    fn route(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let now = now_ms();
        let mut counted = EventCounts::default();
        let mut events = std::mem::take(&mut self.events);
        for e in events.drain(..) {
            self.route_event(e, None, None, now, &mut counted);
        }
        counted.record();
        self.events = events;
    }

    /// The one way an event goes out, whatever its source — a protocol line, or a
    /// message handed in through the inbox by the API, a script, OnTakt's alerts or BEC:
    /// counted for the metrics, snoozed, offered to the throttle of each destination,
    /// tallied into its alert, and queued for the destinations it is due at now, whose
    /// workers are then woken. `named`: the destinations a sender chose (a BEC session's
    /// `send()`), used instead of the routes. `request`: the inbox row it came from, whose
    /// delivery row is kept even when nothing is sent now, for its sender to follow.
    /// Returns how many destinations it goes to now, and how many only counted it.
    fn route_event(
        &mut self,
        e: Event,
        named: Option<&[Destination]>,
        request: Option<i64>,
        now: i64,
        counted: &mut EventCounts,
    ) -> (u32, u32) {
        counted.add(&e);
        let hold = self.holds.hold(&e, now);
        // A silenced event is not escalated; the silence's end starts it if still active.
        if named.is_none() && !matches!(hold, Some(Hold::Silenced { .. })) {
            self.start_escalation(&e.name, &e.key, Some(now));
        }
        let routed = named.unwrap_or_else(|| self.router.route(&e.name));
        // One event, shared by the tally and the throttle windows that count it, without
        // its files: they belong to this delivery alone, and a window keeps its latest
        // event for as long as it lasts (hours), as the alert keeps its record.
        let mut e = e;
        let files = std::mem::take(&mut e.message.attachments);
        let e = Arc::new(e);
        if let Some(Hold::Silenced { silences, .. }) = &hold {
            self.held.push((e.key.clone(), silences.clone()));
        }
        let to = if hold.is_some() {
            Vec::new()
        } else {
            self.throttle.offer_all(routed, &e, now)
        };
        let only_counted = (routed.len() - to.len()) as u32;
        tracing::debug!(event = %e.name, severity = %e.severity, key = %e.key, destinations = routed.len(), now = to.len(), "event");
        // A repeat that is only counted needs no outbox row: the alert keeps it, and in a
        // burst that is almost every event.
        let ttl_s = crate::alerts::default_ttl_s(&e.name, request.is_some());
        if to.is_empty() && request.is_none() {
            self.tally.add_shared(e, ttl_s);
            return (0, only_counted);
        }
        self.tally.add_shared(e.clone(), ttl_s);
        for d in &to {
            if !self.woken.contains(d) {
                self.woken.push(d.clone());
            }
        }
        let sent = to.len() as u32;
        let mut event = Arc::unwrap_or_clone(e);
        event.message.attachments = files;
        self.deliveries.push(Delivery {
            event,
            to,
            repeat: None,
            request,
        });
        (sent, only_counted)
    }

    /// Routes what is left of the parsed events, and stores the batch's deliveries,
    /// alerts and throttle windows with the checkpoint in one transaction, then wakes the
    /// workers.
    fn commit(
        &mut self,
        checkpoint: Option<&Checkpoint>,
        forget: Option<&crate::watcher::identity::FileId>,
        keep_until_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.route();
        let now = now_ms();
        let mut accepted = Vec::new();
        let mut direct: Vec<Destination> = Vec::new();
        let mut counted = EventCounts::default();
        for Request { id, event: e, to } in std::mem::take(&mut self.requests) {
            // A sender that named its destinations (a BEC session's `send()`) is not
            // routed; the throttle and snoozes hold for it as for every event.
            if let Some(named) = &to {
                for d in named {
                    if !direct.contains(d) {
                        direct.push(d.clone());
                    }
                }
            }
            let name = e.name.clone();
            let (sent, only_counted) =
                self.route_event(e, to.as_deref(), Some(id), now, &mut counted);
            tracing::info!(event = %name, request = id, destinations = sent, counted = only_counted, "message handed in");
            accepted.push((id, sent, only_counted));
        }
        counted.record();
        let mut deliveries = std::mem::take(&mut self.deliveries);
        let mut woken = std::mem::take(&mut self.woken);
        for s in self.summaries.drain(..) {
            if !woken.contains(&s.destination) {
                woken.push(s.destination.clone());
            }
            deliveries.push(Delivery {
                event: s.event,
                to: vec![s.destination],
                repeat: Some(s.repeat),
                request: None,
            });
        }
        let batch = Batch {
            checkpoint,
            keep_until_ms,
            forget,
            deliveries,
            alerts: self.tally.take(),
            throttle: self.throttle.take_changes(),
            accepted,
            held: std::mem::take(&mut self.held),
            released: std::mem::take(&mut self.released),
            escalate: std::mem::take(&mut self.escalate).into_values().collect(),
            escalated: std::mem::take(&mut self.escalated),
            digests_sent: std::mem::take(&mut self.digests_sent),
        };
        for d in std::mem::take(&mut self.escalation_to) {
            if !direct.contains(&d) {
                direct.push(d);
            }
        }
        batch::commit(&mut self.store, &batch)?;
        // After the commit: the journal says an event is queued only once it is. A repeat
        // summary is not a new event, and a repeat only counted has no delivery, so a
        // burst of one failure logs one line, not thousands.
        for d in batch
            .deliveries
            .iter()
            .filter(|d| d.repeat.is_none() && !d.to.is_empty())
        {
            tracing::info!("event {}", Handed(d));
        }
        // A named destination may be one no route has (a phone number): its worker
        // starts now. Its rows are stored, so a failure here is only a delay: the next
        // start runs a worker for every destination with rows.
        if !direct.is_empty()
            && let Err(e) = self.outbox.ensure_workers(&direct)
        {
            tracing::error!(error = %e, "cannot start a delivery worker for a named destination");
        }
        for d in &woken {
            self.outbox.wake(d);
        }
        self.outbox.note_change();
        Ok(())
    }

    /// BEC's routes changed (`bec::routes`): the router takes them, with a worker for
    /// each new destination. The outbox keeps its router for Alertmanager's mirror,
    /// which BEC's services never reach.
    fn apply_bec_routes(&mut self) {
        // An error is a bridge that ended (or never ran): nothing new comes.
        if !self.bec_routes.has_changed().unwrap_or(false) {
            return;
        }
        let raw = self.bec_routes.borrow_and_update().clone();
        let router = Arc::new(router(&self.config, raw.as_deref()));
        if let Err(e) = self.outbox.ensure_workers(&router.all_destinations()) {
            tracing::error!(error = %e, "BEC's routes not applied: cannot start delivery workers");
            return;
        }
        self.router = router;
    }

    /// Routes and commits what the API, scripts and BEC handed in, [`INBOX_PIECE_BYTES`]
    /// at a time (see [`inbox::take`]): what the pipeline holds of the inbox is bounded
    /// however long the queue is.
    fn accept_inbox(&mut self) -> Result<(), StoreError> {
        loop {
            self.requests = inbox::take(&self.store, INBOX_PIECE_BYTES)?;
            if self.requests.is_empty() {
                return Ok(());
            }
            self.commit(None, None, None)?;
        }
    }

    /// The once-a-second work: repeat summaries that are due, throttle windows of alerts
    /// dismissed meanwhile, and rows another process queued (`outbox retry`).
    fn tick(&mut self) -> Result<(), StoreError> {
        self.watch_config()?;
        self.apply_bec_routes();
        let now = now_ms();
        if self.store.changed_elsewhere(&mut self.data_version)? {
            for key in alerts::dismissed_since(&self.store, self.dismissals_seen_ms)? {
                let ended = self.throttle.end_key(&key, now);
                self.summaries.extend(ended);
            }
            self.dismissals_seen_ms = now;
            self.load_holds(now)?;
            self.accept_inbox()?;
            self.outbox.wake_all();
            self.outbox.note_change();
        } else if self.holds_next_ms.is_some_and(|t| t <= now) {
            self.load_holds(now)?;
        }
        if self.throttle.next_due_ms().is_some_and(|t| t <= now) {
            let due = self.throttle.due(now);
            self.summaries.extend(due);
        }
        self.escalate_due(now)?;
        self.digest_due(now);
        if now - self.purged_ms > 3_600_000 {
            self.purged_ms = now;
            alerts::purge(&self.store, now)?;
            inbox::purge(&self.store, now)?;
            checkpoints::purge(&self.store, now)?;
        }
        if self.summaries.is_empty()
            && self.requests.is_empty()
            && self.released.is_empty()
            && self.escalated.is_empty()
            && self.digests_sent.is_empty()
            && self.deliveries.is_empty()
            && !self.throttle.has_changes()
        {
            return Ok(());
        }
        self.commit(None, None, None)
    }

    /// Queues each scheduled digest that is due: the figures since it was last sent (a
    /// day at its first time), composed as one message, to its destinations, recorded
    /// as sent in the same commit (docs/ARCHITECTURE.md, "On call").
    fn digest_due(&mut self, now: i64) {
        for d in &mut self.digests {
            if d.next_ms > now {
                continue;
            }
            let since = d.last_ms.unwrap_or(now - 24 * 3_600_000);
            let summary = match alerts::summary::gather(&self.store, since, now) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "the handover digest could not be gathered; tried again in a minute");
                    d.next_ms = now + 60_000;
                    continue;
                }
            };
            let message = crate::oncall::digest::compose("Handover", &summary, &d.config.zone);
            let event = Event::message("digest", crate::event::Severity::Info, message);
            tracing::info!(destinations = d.config.to.len(), "handover digest");
            for dest in &d.config.to {
                if !self.woken.contains(dest) {
                    self.woken.push(dest.clone());
                }
                if !self.escalation_to.contains(dest) {
                    self.escalation_to.push(dest.clone());
                }
            }
            self.deliveries.push(Delivery {
                event,
                to: d.config.to.clone(),
                repeat: None,
                request: None,
            });
            self.digests_sent.push((d.key.clone(), now));
            d.last_ms = Some(now);
            d.next_ms = next_digest_ms(&d.config, now);
        }
    }

    /// Notes that the alert of `key` starts the escalation its event's route names, if
    /// any (in the batch's commit, and only if it has none running), counted from
    /// `since_ms`: when the agent recorded it — not the line's own time, so that a
    /// backlog read after a restart is not escalated at once — or the end of a silence
    /// that held it back.
    fn start_escalation(&mut self, event: &str, key: &str, since_ms: Option<i64>) {
        let oncall = &self.config.oncall;
        let Some((name, policy)) = oncall
            .escalate
            .get(event)
            .and_then(|n| oncall.escalation.get(n).map(|p| (n, p)))
        else {
            return;
        };
        let Some(first) = policy.steps.first() else {
            return;
        };
        // One start per alert and batch, however often a burst repeats it.
        if self.escalate.contains_key(key) {
            return;
        }
        self.escalate.insert(
            key.to_string(),
            alerts::EscalationStart {
                key: key.to_string(),
                policy: name.clone(),
                first_step_ms: i64::try_from(first.after.as_millis()).unwrap_or(i64::MAX),
                since_ms,
            },
        );
    }

    /// Fires the escalation steps that are due: each step's destinations get the alert
    /// with which step it is and who was told before, queued in the same commit that
    /// moves the alert's escalation on — so a restart never fires a step twice, and a
    /// step that fell due while the agent was down fires once now (docs/ARCHITECTURE.md,
    /// "On call").
    fn escalate_due(&mut self, now: i64) -> Result<(), StoreError> {
        for a in alerts::escalation_due(&self.store, now)? {
            let Some(esc) = a.escalation.clone() else {
                continue;
            };
            let policy = self.config.oncall.escalation.get(&esc.policy).cloned();
            let Some(policy) = policy.filter(|_| a.is_active(now)) else {
                // Ended, or its policy is gone from the config: nothing more to do.
                self.escalated.push((a.id, esc.fired, None));
                continue;
            };
            let event = a.to_event();
            if self.holds.quiet(&event, now) {
                // Snoozed or silenced: not escalated now; looked at again when that may
                // have changed.
                let again = self
                    .holds_next_ms
                    .unwrap_or(now + 60_000)
                    .clamp(now + 1_000, now + 60_000);
                self.escalated.push((a.id, esc.fired, Some(again)));
                continue;
            }
            let progress = crate::oncall::Progress {
                fired: esc.fired,
                created_ms: esc.since_ms,
                acknowledged_at_ms: a.acknowledged_at_ms,
            };
            let Some(firing) = policy.due(&progress, now) else {
                let next = policy.next_due(&progress).map(|(_, t)| t);
                self.escalated.push((a.id, esc.fired, next));
                continue;
            };
            let mut told: Vec<Destination> = self.router.route(&a.event).to_vec();
            for (i, step) in policy.steps.iter().enumerate() {
                let already = (i as u32) < esc.fired;
                if already {
                    for d in &step.to {
                        if !told.contains(d) {
                            told.push(d.clone());
                        }
                    }
                }
            }
            for index in &firing.steps {
                let step = &policy.steps[*index];
                let mut message = event.clone();
                let again = (*index as u32) < esc.fired;
                let before: Vec<String> = told.iter().map(|d| d.to_string()).collect();
                let header = format!(
                    "Escalation{} — step {} of {} of \"{}\", nobody acknowledged; told before: {}\n",
                    if again { " again" } else { "" },
                    index + 1,
                    policy.steps.len(),
                    policy.name,
                    if before.is_empty() {
                        "nobody".to_string()
                    } else {
                        before.join(", ")
                    },
                );
                message.message.spans.insert(
                    0,
                    crate::event::Span {
                        text: header,
                        bold: true,
                        ..crate::event::Span::default()
                    },
                );
                tracing::info!(alert = a.id, policy = %policy.name, step = index + 1, destinations = step.to.len(), "escalation step");
                for d in &step.to {
                    if !self.woken.contains(d) {
                        self.woken.push(d.clone());
                    }
                    if !self.escalation_to.contains(d) {
                        self.escalation_to.push(d.clone());
                    }
                    if !told.contains(d) {
                        told.push(d.clone());
                    }
                }
                self.deliveries.push(Delivery {
                    event: message,
                    to: step.to.clone(),
                    repeat: None,
                    request: None,
                });
            }
            let next = policy
                .next_due(&crate::oncall::Progress {
                    fired: firing.fired,
                    ..progress
                })
                .map(|(_, t)| t);
            self.escalated.push((a.id, firing.fired, next));
        }
        Ok(())
    }

    /// Reads what holds messages back now, and queues once, to its routes, each alert
    /// whose news a silence or maintenance window held back and that nothing holds any
    /// more — "still active after the silence", as `__resend` sends an alert again
    /// (docs/ARCHITECTURE.md, "On call").
    fn load_holds(&mut self, now: i64) -> Result<(), StoreError> {
        self.holds = Holds::load(&self.store, now, &self.windows)?;
        self.holds_next_ms = self.holds.next_change_ms(now);
        for a in alerts::held(&self.store, now)? {
            if self.released.contains(&a.id) {
                continue;
            }
            let mut event = a.to_event();
            if self.holds.hold(&event, now).is_some() {
                continue;
            }
            let to = self.router.route(&event.name).to_vec();
            self.released.push(a.id);
            if to.is_empty() {
                continue;
            }
            let seen = if a.times_seen == 1 {
                "seen once".to_string()
            } else {
                format!("seen {} times", a.times_seen)
            };
            event.message.spans.insert(
                0,
                crate::event::Span {
                    text: format!("Still active after the silence, {seen}: "),
                    bold: true,
                    ..crate::event::Span::default()
                },
            );
            tracing::info!(alert = a.id, event = %event.name, destinations = to.len(), "held back alert sent after its silence");
            if a.escalation.is_none() {
                self.start_escalation(&a.event, &a.key, Some(now));
            }
            for d in &to {
                if !self.woken.contains(d) {
                    self.woken.push(d.clone());
                }
            }
            self.deliveries.push(Delivery {
                event,
                to,
                repeat: None,
                request: None,
            });
        }
        Ok(())
    }

    /// Applies an edited config file once it has been still for a moment (editors and
    /// `protowatch routes` write, then rename).
    fn watch_config(&mut self) -> Result<(), StoreError> {
        let stamp = config_stamp(&self.config.file);
        if stamp == self.config_stamp {
            self.config_changed_at = None;
            return Ok(());
        }
        match self.config_changed_at {
            None => self.config_changed_at = Some(Instant::now()),
            Some(t) if t.elapsed() >= CONFIG_SETTLE => {
                self.config_stamp = stamp;
                self.config_changed_at = None;
                self.reload("changed")?;
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Validates the file and, if it is valid, applies it in place: watches, rules,
    /// routes, scopes, credentials, throttling and the instrument name. Nothing queued is
    /// lost and no file is read again. An invalid file changes nothing and is reported
    /// with its problems.
    fn reload(&mut self, why: &str) -> Result<(), StoreError> {
        crate::systemd::notify("RELOADING=1");
        let result = self.reload_inner(why);
        crate::systemd::notify("READY=1");
        result
    }

    fn reload_inner(&mut self, why: &str) -> Result<(), StoreError> {
        let new = match Config::load(&self.config.file) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config {why} but not applied, the running config stays:\n{e}");
                return Ok(());
            }
        };
        let rules = match Rules::new(&new.rules) {
            Ok(r) => Arc::new(r),
            Err(e) => {
                tracing::error!(error = %e, "config {why} but not applied, the running config stays: rules");
                return Ok(());
            }
        };
        // The mail transport's connection pool lives on the agent's runtime, and so must
        // the old one's: dropping it spawns its closing.
        let runtime = self.outbox.runtime().clone();
        let _runtime = runtime.enter();
        let messengers = match Messengers::from_config(&new) {
            Ok(mut m) => {
                m.attach(&self.links);
                Arc::new(m)
            }
            Err(e) => {
                tracing::error!(error = %e, "config {why} but not applied, the running config stays");
                return Ok(());
            }
        };
        let bec = self.bec_routes.borrow().clone();
        let router = Arc::new(router(&new, bec.as_deref()));
        if let Err(e) = self.outbox.ensure_workers(&router.all_destinations()) {
            tracing::error!(error = %e, "config {why} but not applied: cannot start delivery workers");
            return Ok(());
        }
        let changed =
            crate::config::diff::changed_paths(&self.config.masked_json(), &new.masked_json());
        let secrets = crate::config::diff::secrets_changed(&self.config, &new);
        if changed.is_empty() && secrets.is_empty() {
            tracing::info!("config {why}: nothing to change");
            return Ok(());
        }
        let restart: Vec<&String> = changed
            .iter()
            .filter(|p| p.starts_with("state_dir") || p.starts_with("api") || p.starts_with("bec"))
            .collect();
        if !restart.is_empty() {
            tracing::warn!(paths = ?restart, "these changes take effect at the next start");
        }

        self.outbox.reconfigure(
            messengers,
            Arc::from(new.instrument.as_str()),
            &new.throttle,
            router.clone(),
        );
        self.throttle.set_interval(new.throttle.repeat_interval);
        self.router = router;
        self.rules = rules;
        for (parser, _) in self.parsers.values_mut() {
            parser.set_rules(self.rules.clone());
        }
        self.apply_watches(&new.watch)?;
        self.windows = new.oncall.maintenance.clone();
        self.digests = digest_timers(&self.store, &new.oncall.digest, now_ms())?;
        self.load_holds(now_ms())?;
        let mut applied = new;
        applied.state_dir = self.config.state_dir.clone();
        applied.api = self.config.api.clone();
        self.config = Arc::new(applied);
        *self
            .shared_config
            .write()
            .unwrap_or_else(|p| p.into_inner()) = self.config.clone();
        tracing::info!(changed = ?changed, secrets = ?secrets, "config {why}: applied");
        Ok(())
    }

    /// Keeps the threads of unchanged `watch` entries, ends those of entries that went
    /// or changed, and starts threads for the new ones where the old stopped: a file
    /// followed before is read on from its position, never again from the top. Files
    /// that nobody followed yet obey the entry's `start` as at a first start.
    fn apply_watches(&mut self, wanted: &[crate::config::WatchConfig]) -> Result<(), StoreError> {
        let mut gone: Vec<WatchId> = self.watcher.entries().map(|(id, _)| id).collect();
        let mut new = Vec::new();
        for cfg in wanted {
            let same = gone
                .iter()
                .position(|id| self.watcher.config(*id) == Some(cfg));
            match same {
                Some(at) => {
                    gone.remove(at);
                }
                None => new.push(cfg.clone()),
            }
        }
        if gone.is_empty() && new.is_empty() {
            return Ok(());
        }
        let retired: Vec<Retired> = gone
            .iter()
            .filter_map(|id| self.watcher.retire(*id))
            .collect();
        let positions = self.drain(retired, None)?;
        let mut resume = resume_from(&self.store)?;
        resume.started_before = false;
        for c in positions {
            resume.let_go_until.remove(&c.id);
            resume.checkpoints.insert(c.id, c);
        }
        for cfg in new {
            let path = cfg.path.clone();
            if let Err(e) = self.watcher.add(cfg, resume.clone()) {
                tracing::error!(watch = %path, error = %e, "cannot start a watcher thread");
            }
        }
        Ok(())
    }

    /// Takes and commits every message until the `retired` threads have ended, then
    /// sends their files' open tracebacks; returns where their files stood.
    fn drain(
        &mut self,
        retired: Vec<Retired>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        // A retired thread may be blocked handing over a batch: keep taking.
        while !retired.iter().all(Retired::is_finished) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // A thread stuck in a call to a share that does not answer: what it handed
                // over is committed, and the process may end without it.
                tracing::warn!(
                    threads = retired.iter().filter(|r| !r.is_finished()).count(),
                    "a watcher thread did not stop in time (a folder on a share that does not answer?); stopping without it"
                );
                break;
            }
            match self.rx.recv_timeout(Duration::from_millis(20)) {
                Ok(msg) => self.on_message(msg)?,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        while let Ok(msg) = self.rx.try_recv() {
            self.on_message(msg)?;
        }
        let ended: HashSet<WatchId> = retired.iter().map(|r| r.id).collect();
        let keys: Vec<FileKey> = self
            .parsers
            .keys()
            .copied()
            .filter(|k| ended.contains(&crate::watcher::watch_of(*k)))
            .collect();
        for key in keys {
            if let Some((mut parser, _)) = self.parsers.remove(&key) {
                parser.finish(&mut self.events);
            }
        }
        if !self.events.is_empty() {
            self.commit(None, None, None)?;
        }
        Ok(retired
            .into_iter()
            .filter(Retired::is_finished)
            .flat_map(Retired::join)
            .collect())
    }

    /// Runs until told to stop, then lets the watcher threads finish their batch,
    /// commits what they handed over and flushes what is pending.
    fn run(mut self) -> Result<(), StoreError> {
        while !self.control.stop.is_cancelled() {
            if self.control.reload.swap(false, Ordering::Relaxed) {
                self.config_stamp = config_stamp(&self.config.file);
                self.config_changed_at = None;
                self.reload("reloaded on SIGHUP")?;
            }
            match self.rx.recv_timeout(Duration::from_secs(1)) {
                Ok(msg) => {
                    self.on_message(msg)?;
                    // A steady stream of lines must not starve the timers.
                    if self.last_tick.elapsed() >= Duration::from_secs(1) {
                        self.last_tick = Instant::now();
                        self.tick()?;
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    self.flush_idle(false)?;
                    self.tick()?;
                }
                Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let stopped = self.watcher.stop();
        self.drain(stopped, Some(Instant::now() + WATCHER_STOP_WAIT))?;
        self.flush_idle(true)
    }
}

/// An event handed to the outbox as the journal shows it: `alarm_major 'HV trip' from
/// run-7.log:12 → mail:default, telegram:default`. Written only when `info` is enabled:
/// `tracing` formats its arguments only then, so the hot path pays nothing otherwise.
struct Handed<'a>(&'a Delivery);

impl std::fmt::Display for Handed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// A journal line is a headline; the message itself is in the outbox and alert.
        const MAX_CHARS: usize = 100;
        let e = &self.0.event;
        let text = e.message.text();
        let first = text.lines().next().unwrap_or("");
        write!(f, "{} '", e.name)?;
        match first.char_indices().nth(MAX_CHARS) {
            Some((i, _)) => write!(f, "{}…'", &first[..i])?,
            None if first.len() < text.trim_end().len() => write!(f, "{first}…'")?,
            None => write!(f, "{first}'")?,
        }
        if let Some(o) = &e.origin {
            let name = o.file.file_name().unwrap_or(o.file.as_os_str());
            write!(f, " from {}:{}", name.to_string_lossy(), o.line)?;
        } else if let Some(id) = self.0.request {
            write!(f, " from request #{id}")?;
        }
        f.write_str(" →")?;
        for (i, d) in self.0.to.iter().enumerate() {
            write!(f, "{}{d}", if i == 0 { " " } else { ", " })?;
        }
        Ok(())
    }
}

/// The checkpoints to resume from: of the files followed at the last run, and of those
/// let go and still kept.
fn resume_from(store: &Store) -> Result<Resume, StoreError> {
    let mut resume = Resume::default();
    for (c, keep_until) in checkpoints::all(store)? {
        if let Some(t) = keep_until {
            resume.let_go_until.insert(c.id, t);
        }
        resume.checkpoints.insert(c.id, c);
    }
    Ok(resume)
}

/// Large buffers go back to the system when they are freed. glibc serves an allocation
/// of 128 KiB or more with its own mapping, but after the first such block is freed it
/// raises that threshold to the block's size (up to 32 MiB), and from then on the
/// bodies and files of `/api/notify` (up to 13 MB each) came from the heap and stayed
/// there: 24 parallel notifies left the agent at 534 MB after they were delivered. A
/// fixed threshold keeps the first behaviour; the agent makes few such blocks, so the
/// cost of a mapping each is nothing.
fn give_back_large_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets a parameter of the allocator under the allocator's own lock;
    // no memory is touched.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// Runs until `stop` is cancelled, then stops gracefully.
pub async fn run(config: Config, stop: CancellationToken) -> Result<(), AgentError> {
    run_with(config, stop, false).await
}

/// As [`run`]; `reset_state` starts with a new state database on purpose (the old one is
/// kept aside), where [`run`] refuses a database that is not this folder's own.
pub async fn run_with(
    config: Config,
    stop: CancellationToken,
    reset_state: bool,
) -> Result<(), AgentError> {
    // The agent's own signal, of which every part holds a child: cut from the caller's,
    // so that the agent cancels its children in its order (docs/ARCHITECTURE.md,
    // "Shutdown and shared state"). The intake (watcher, pipeline, API, BEC) hears the
    // caller's stop at once; the services' sides and the outbox are cancelled after the
    // pipeline committed. However the agent returns, nothing it started runs on.
    let signal = CancellationToken::new();
    let _signal_on_return = signal.clone().drop_guard();
    let intake = signal.child_token();
    give_back_large_buffers();
    let config = Arc::new(config);
    let links = Links::default();
    let mut messengers =
        Messengers::from_config(&config).map_err(|e| AgentError::Setup(e.to_string()))?;
    messengers.attach(&links);
    let messengers = Arc::new(messengers);
    let rules =
        Arc::new(Rules::new(&config.rules).map_err(|e| AgentError::Setup(format!("rules: {e}")))?);
    let _lock = AgentLock::acquire(&config.state_dir)?;
    if reset_state {
        crate::state_id::reset(&config.state_dir)?;
    } else {
        crate::state_id::check(&config.state_dir)?;
    }
    let store = Store::open(&config.state_dir)?;
    store.make_private();
    checkpoints::purge(&store, now_ms())?;
    let mut resume = resume_from(&store)?;
    resume.started_before = store.has_started_before()?;
    store.mark_started()?;
    // BEC's routes kept from the last run apply while Redis is not reached yet.
    let saved = config
        .bec
        .as_ref()
        .and_then(|_| crate::bec::routes::load_saved(&config.state_dir));
    let (bec_routes_tx, mut bec_routes) = crate::bec::routes::channel(saved);
    let router = Arc::new(router(&config, bec_routes.borrow_and_update().as_deref()));
    // What the parts show at run time, made here and handed to writer and reader.
    let watch_health = crate::watcher::health::WatchHealth::default();
    let bec_health = crate::bec::BecHealth::default();
    let outbox = Outbox::start(
        &config.state_dir,
        messengers,
        Arc::from(config.instrument.as_str()),
        &config.throttle,
        router.clone(),
        Arc::new(alerts::Actions),
        signal.child_token(),
    )?;
    // Rows queued for a destination no route names (a BEC session's phone number, a
    // route removed since) are still to be sent: each gets its worker.
    let pending: Vec<_> = queue::pending_destinations(&store)?
        .into_iter()
        .filter(|d| config.scopes(d.service).is_some())
        .collect();
    outbox.ensure_workers(&pending)?;
    let mut throttle = Throttle::new(config.throttle.repeat_interval);
    throttle.restore(store.with_conn(throttle::load)?);
    // The API is a convenience: a port taken by another program must not stop the
    // watching, so the agent runs on without it and says so.
    let shared_config: crate::api::SharedConfig = Arc::new(std::sync::RwLock::new(config.clone()));
    let (tx, rx) = std_mpsc::sync_channel(16);
    let wake_tx = tx.clone();
    // A full channel means the pipeline is busy and will look at the inbox anyway.
    let wake: crate::api::Wake = Arc::new(move || {
        let _ = wake_tx.try_send(WatchMsg::Wake);
    });
    // An agent without its API would leave its commands to whoever holds the port: it
    // stops, and its service manager starts it again once the port is free.
    let api = Some(
        Api::start(
            shared_config.clone(),
            outbox.clone(),
            wake.clone(),
            crate::api::Shown {
                watch: watch_health.clone(),
                bec: bec_health.clone(),
                bec_routes: bec_routes.clone(),
            },
            intake.clone(),
        )
        .await
        .map_err(|e| AgentError::Setup(format!("the HTTP API: {e}")))?,
    );
    // The services' long-lived sides (Telegram's buttons and commands).
    let sides = config.services.start(runtime::Setup {
        state_dir: config.state_dir.clone(),
        alerts: Arc::new(alerts::Actions),
        host: Arc::new(services::Host {
            config: shared_config.clone(),
            outbox: outbox.clone(),
            wake: wake.clone(),
        }),
        changes: outbox.changes(),
        links: links.clone(),
        stop: signal.child_token(),
    });
    if config.watch.is_empty() {
        tracing::warn!("no \"watch\" entries: only messages sent to this agent will be delivered");
    }

    let handed = crate::watcher::Handed {
        own: crate::watcher::guard::Own {
            state_dir: Some(config.state_dir.clone()),
            config_file: Some(config.file.clone()),
        },
        health: watch_health,
        stop: intake.clone(),
    };
    let watcher = Watcher::spawn_guarding(&config.watch, &resume, tx, handed)
        .map_err(|e| AgentError::Setup(format!("cannot start a watcher thread: {e}")))?;
    let control = Arc::new(Control {
        stop: intake.clone(),
        reload: AtomicBool::new(false),
    });
    let digests = digest_timers(&store, &config.oncall.digest, now_ms())
        .map_err(|e| AgentError::Setup(format!("the digests' schedule: {e}")))?;
    let pipeline = Pipeline {
        config: config.clone(),
        watcher,
        rx,
        control: control.clone(),
        rules,
        router,
        store,
        outbox: outbox.clone(),
        links,
        shared_config,
        config_stamp: startup_stamp(&config),
        config_changed_at: None,
        parsers: HashMap::new(),
        events: Vec::new(),
        deliveries: Vec::new(),
        woken: Vec::new(),
        throttle,
        tally: Tally::default(),
        summaries: Vec::new(),
        requests: Vec::new(),
        holds: Holds::default(),
        holds_next_ms: None,
        held: Vec::new(),
        released: Vec::new(),
        windows: config.oncall.maintenance.clone(),
        escalate: HashMap::new(),
        escalated: Vec::new(),
        escalation_to: Vec::new(),
        digests,
        digests_sent: Vec::new(),
        data_version: 0,
        dismissals_seen_ms: now_ms(),
        purged_ms: 0,
        last_tick: Instant::now(),
        bec_routes,
    };
    let pipeline = std::thread::Builder::new()
        .name("pipeline".into())
        .spawn(move || pipeline.run())
        .map_err(|e| AgentError::Setup(format!("cannot start the pipeline thread: {e}")))?;
    tracing::info!(instrument = %config.instrument, watches = config.watch.len(), state = %config.state_dir.display(), "agent running");
    // BEC's bridge hands notifications to the inbox and wakes the pipeline, as the API
    // does for a script's message.
    let bec = match (&config.bec, crate::bec::Served::from_config(&config)) {
        (Some(section), Some(served)) => {
            match crate::bec::Bridge::start(crate::bec::bridge::Setup {
                bec: section.clone(),
                served,
                state_dir: config.state_dir.clone(),
                routes: bec_routes_tx,
                health: bec_health,
                wake,
                stop: intake.clone(),
            }) {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::error!(error = %e, "the BEC bridge did not start; the agent runs without it");
                    None
                }
            }
        }
        _ => {
            drop(wake);
            None
        }
    };

    // The pipeline ends early only on a store error; then the agent stops too.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let pipeline_waiter = std::thread::spawn(move || {
        let result = pipeline.join();
        let _ = done_tx.send(());
        result
    });
    let hangups = reload_on_sighup(control.clone());
    crate::systemd::notify("READY=1");
    tokio::select! {
        _ = stop.cancelled() => tracing::info!("shutting down"),
        _ = done_rx => tracing::error!("the pipeline stopped"),
    }
    // The intake hears it now; each part is still awaited in turn below, and the
    // services' sides and the outbox are cancelled only after the pipeline ended.
    intake.cancel();
    crate::systemd::notify("STOPPING=1");
    if let Some(bec) = bec {
        bec.stop().await;
    }
    if let Some(task) = hangups {
        task.abort();
    }
    let result = tokio::task::spawn_blocking(move || pipeline_waiter.join())
        .await
        .map_err(|e| AgentError::Setup(format!("pipeline shutdown: {e}")))?;
    if let Some(api) = api {
        api.stop(&config.state_dir).await;
    }
    sides.stop().await;
    outbox.close().await;
    match result {
        Ok(Ok(Ok(()))) => {
            tracing::info!("stopped");
            Ok(())
        }
        Ok(Ok(Err(e))) => Err(AgentError::Store(e)),
        _ => Err(AgentError::Setup("the pipeline thread panicked".into())),
    }
}

/// SIGHUP (`systemctl reload`) asks for a reload; the pipeline does it between batches.
/// The handler is in place when this returns, before systemd hears that the agent is
/// ready: until then a SIGHUP would end the process. Windows has no such signal: there
/// the config file's own change is the trigger.
fn reload_on_sighup(control: Arc<Control>) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => Some(tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the config");
                    control.reload.store(true, Ordering::Relaxed);
                }
            })),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; config file changes still apply");
                None
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = control;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &std::path::Path, routes: &str) {
        let text = format!(
            r#"{{"telegram": {{"bot-id": "1:x", "channel-id": "1", "scopes": {{"night": "2"}}}},
                "routes": {{"alarm_major": [{routes}]}}}}"#
        );
        std::fs::write(path, text).expect("write the config");
    }

    #[test]
    fn an_edit_saved_while_the_agent_starts_is_applied_not_taken_as_seen() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("config.json");
        write(&file, r#"{"service": "telegram"}"#);
        let config = Config::load(&file).expect("a valid config");
        // Unchanged since it was read: the stamp stands for the running config.
        assert_eq!(startup_stamp(&config), config_stamp(&file));
        assert!(startup_stamp(&config).is_some());
        // Saved between the read and the start of the pipeline (as `protowatch routes
        // enable` may be): no stamp, so the first look at the file applies the edit.
        write(
            &file,
            r#"{"service": "telegram"}, {"service": "telegram", "scope": "night"}"#,
        );
        assert_eq!(startup_stamp(&config), None);
        // A file that is now invalid is also left to the first look, which reports it.
        std::fs::write(&file, "{").expect("write the config");
        assert_eq!(startup_stamp(&config), None);
    }

    #[test]
    fn bec_routes_add_to_ours() {
        use crate::bec::codec::Target;
        let text = r#"{
            "telegram": {"bot-id": "1:x", "channel-id": "1"},
            "scilog": {"url": "http://127.0.0.1:1/api/v1", "token": "t",
                       "scopes": {"default": {"logbook": "lb1"}, "beamtime": {"logbook": "lb2"}}},
            "webhook": {"scopes": {"teams": {"url": "http://127.0.0.1:1/hook", "preset": "teams"}}},
            "bec": {"redis": "127.0.0.1:6379"}
        }"#;
        let c = Config::from_text(std::path::Path::new("/x/config.json"), text)
            .expect("a valid config");
        let t = |service: &str, scopes: &[&str]| Target {
            service_name: service.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        };
        let mut raw = BecRoutes::new();
        raw.insert("alarm_major".into(), vec![t("teams", &["teams"])]);
        raw.insert("beamline_ready".into(), vec![t("scilog", &["default"])]);
        let router = router(&c, Some(&raw));
        let shown =
            |e: &str| -> Vec<String> { router.route(e).iter().map(|d| d.to_string()).collect() };
        // The implicit routing's defaults stay; BEC's route comes on top.
        assert!(shown("alarm_major").contains(&"telegram:default".to_string()));
        assert!(shown("alarm_major").contains(&"webhook:teams".to_string()));
        assert!(shown("beamline_ready").contains(&"scilog:default".to_string()));
        assert!(
            router
                .all_destinations()
                .iter()
                .any(|d| d.to_string() == "webhook:teams")
        );
    }
}
