//! The running agent: wires watcher → parser → routing → outbox, and shuts it down in
//! order.
//!
//! Shutdown runs the pipeline backwards: the watcher threads stop reading, the lines
//! already handed over are parsed, pending tracebacks are flushed, and the outbox gets a
//! grace period to deliver what is queued. Nothing that was read is dropped on the way
//! out while a destination still answers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::Config;
use crate::event::Event;
use crate::messengers::Messengers;
use crate::outbox::Outbox;
use crate::parser::{FileParser, Rules};
use crate::routing::Router;
use crate::watcher::{FileKey, WatchMsg, Watcher};

/// How long a traceback may stay open without a new line before it is sent as it is.
const TRACEBACK_IDLE: Duration = Duration::from_secs(2);
/// How long queued deliveries may take at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}")]
    Setup(String),
}

struct Pipeline {
    config: Arc<Config>,
    rules: Arc<Rules>,
    router: Router,
    outbox: Outbox,
    parsers: HashMap<FileKey, (FileParser, Instant)>,
    events: Vec<Event>,
}

impl Pipeline {
    fn on_message(&mut self, msg: WatchMsg) {
        match msg {
            WatchMsg::Lines {
                watch,
                file,
                path,
                lines,
                ..
            } => {
                let encoding = self.config.watch[watch].encoding;
                let rules = &self.rules;
                let (parser, seen) = self.parsers.entry(file).or_insert_with(|| {
                    (
                        FileParser::new(&path, encoding, rules.clone()),
                        Instant::now(),
                    )
                });
                *seen = Instant::now();
                for line in &lines {
                    parser.line(line, &mut self.events);
                }
            }
            WatchMsg::Closed { file, path } => {
                if let Some((mut parser, _)) = self.parsers.remove(&file) {
                    parser.finish(&mut self.events);
                    tracing::debug!(file = %path.display(), counts = ?parser.counts, "file closed");
                }
            }
        }
        self.dispatch();
    }

    /// Sends tracebacks whose final line never came.
    fn flush_idle(&mut self, force: bool) {
        for (parser, seen) in self.parsers.values_mut() {
            if parser.is_pending() && (force || seen.elapsed() >= TRACEBACK_IDLE) {
                parser.finish(&mut self.events);
            }
        }
        self.dispatch();
    }

    fn dispatch(&mut self) {
        for event in self.events.drain(..) {
            let targets = self.router.route(&event.name);
            tracing::info!(event = %event.name, severity = %event.severity, key = %event.key, destinations = targets.len(), "event");
            if targets.is_empty() {
                continue;
            }
            let event = Arc::new(event);
            for t in targets {
                self.outbox.enqueue(t, event.clone());
            }
        }
    }
}

/// Runs until `shutdown` completes, then stops gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    let config = Arc::new(config);
    let messengers =
        Arc::new(Messengers::from_config(&config).map_err(|e| AgentError::Setup(e.to_string()))?);
    let rules =
        Arc::new(Rules::new(&config.rules).map_err(|e| AgentError::Setup(format!("rules: {e}")))?);
    let router = Router::new(&config);
    let outbox = Outbox::start(
        messengers,
        Arc::from(config.instrument.as_str()),
        router.all_destinations(),
    );
    if config.watch.is_empty() {
        tracing::warn!("no \"watch\" entries: only messages sent to this agent will be delivered");
    }
    let (tx, mut rx) = mpsc::channel(16);
    let watcher = Watcher::spawn(&config.watch, tx);
    tracing::info!(instrument = %config.instrument, files = config.watch.len(), "agent running");

    let mut pipeline = Pipeline {
        config: config.clone(),
        rules,
        router,
        outbox,
        parsers: HashMap::new(),
        events: Vec::new(),
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => pipeline.on_message(msg),
                None => break,
            },
            _ = tick.tick() => pipeline.flush_idle(false),
            _ = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down");
    // The threads may be waiting to hand over a batch: keep receiving while they stop.
    let stopping = tokio::task::spawn_blocking(move || watcher.stop());
    while let Some(msg) = rx.recv().await {
        pipeline.on_message(msg);
    }
    let _ = stopping.await;
    pipeline.flush_idle(true);
    pipeline.outbox.close(SHUTDOWN_GRACE).await;
    tracing::info!("stopped");
    Ok(())
}
