//! The services' running sides as the agent serves them: what a [`runtime::Host`] does
//! — the running config, `__resend`, `/status`, the digest's summary now, the silences
//! Telegram makes and lists — over the agent's own parts.
//!
//! It is written here, on the surface, because it reaches the config, the routes, the
//! outbox and the watcher's checkpoints, all above the services; the services see it
//! only as the trait (docs/ARCHITECTURE.md, "Layers").

use std::sync::Arc;
use std::time::Duration;

use crate::api::SharedConfig;
use crate::config::{Config, Destination};
use crate::event::Message;
use crate::event::alert::Alert;
use crate::messengers::Sections;
use crate::messengers::runtime::{self, Running, SilenceView, Status};
use crate::oncall::matcher::Matchers;
use crate::oncall::silences::{self, NewSilence, SilenceError};
use crate::oncall::window::Zone;
use crate::outbox::Outbox;
use crate::outbox::queue;
use crate::routing::Router;
use crate::store::{Store, StoreError};
use crate::watcher::checkpoints;

impl Running for Config {
    fn instrument(&self) -> &str {
        &self.instrument
    }

    fn sections(&self) -> &Sections {
        &self.services
    }
}

/// The agent, as the services' running sides see it.
pub(super) struct Host {
    pub(super) config: SharedConfig,
    pub(super) outbox: Outbox,
    /// Wakes the pipeline: a silence is in force from its next look at the holds.
    pub(super) wake: crate::api::Wake,
}

impl Host {
    fn current(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl runtime::Host for Host {
    fn config(&self) -> Arc<dyn Running> {
        self.current()
    }

    fn resend(&self, store: &mut Store, alert: &Alert) -> Result<Vec<Destination>, StoreError> {
        let wake = crate::alerts::resend(store, alert, &self.current())?;
        let _ = self.outbox.ensure_workers(&wake);
        for d in &wake {
            self.outbox.wake(d);
        }
        Ok(wake)
    }

    fn status(&self, store: &Store) -> Result<Status, StoreError> {
        let files = checkpoints::all(store)?
            .into_iter()
            .filter(|(_, gone)| gone.is_none())
            .map(|(c, _)| (c.path, c.offset))
            .collect();
        Ok(Status {
            files,
            depth: queue::depth(store)?,
            dead: queue::dead_count(store)?,
            errors: queue::last_errors(store)?,
            destinations: Router::new(&self.current()).all_destinations(),
        })
    }

    fn summary(&self, store: &Store, now_ms: i64) -> Result<Message, StoreError> {
        const DAY_MS: i64 = 24 * 3_600_000;
        let config = self.current();
        // The clock of the scheduled digest, so that both say the same times.
        let zone = config.oncall.digest.first().map_or(Zone::Local, |d| d.zone);
        let s = crate::alerts::summary::gather(store, now_ms - DAY_MS, now_ms)?;
        Ok(crate::oncall::digest::compose("Status", &s, &zone))
    }

    fn silence(
        &self,
        store: &mut Store,
        text: &str,
        duration: Duration,
        now_ms: i64,
        by: &str,
    ) -> Result<Result<i64, String>, StoreError> {
        let pattern = match regex::Regex::new(&regex::escape(text)) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let new = NewSilence {
            matchers: Matchers {
                text: Some(pattern),
                ..Matchers::default()
            },
            starts_at_ms: now_ms,
            ends_at_ms: now_ms
                .saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)),
            created_by: by.to_string(),
            comment: format!("from Telegram: {text}"),
        };
        let id = match silences::add(store, &new) {
            Ok(id) => id,
            Err(SilenceError::Store(e)) => return Err(e),
            Err(e) => return Ok(Err(e.to_string())),
        };
        tracing::info!(target: "protowatch::audit", silence = id, by, "silence made");
        (self.wake)();
        Ok(Ok(id))
    }

    fn silences(&self, store: &Store, now_ms: i64) -> Result<Vec<SilenceView>, StoreError> {
        Ok(silences::list(store, now_ms, None)?
            .into_iter()
            .map(|s| SilenceView {
                id: s.id,
                matchers: s.matchers.describe(),
                starts_at_ms: s.starts_at_ms,
                ends_at_ms: s.ends_at_ms,
                created_by: s.created_by,
                comment: s.comment,
                held: s.held,
            })
            .collect())
    }
}
