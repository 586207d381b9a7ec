//! The services' running sides as the agent serves them: what a [`runtime::Host`] does
//! — the running config, `__resend`, `/status` — over the agent's own parts.
//!
//! It is written here, on the surface, because it reaches the config, the routes, the
//! outbox and the watcher's checkpoints, all above the services; the services see it
//! only as the trait (docs/ARCHITECTURE.md, "Layers").

use std::sync::Arc;

use crate::api::SharedConfig;
use crate::config::{Config, Destination};
use crate::event::alert::Alert;
use crate::messengers::Sections;
use crate::messengers::runtime::{self, Running, Status};
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
}
