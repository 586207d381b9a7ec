//! Which connection gives way when every slot of the listener is taken.
//!
//! The listener serves at most [`super::MAX_CONNECTIONS`] connections (each holds a file
//! descriptor, and the watcher needs its own). A local caller may open that many and
//! send nothing, or a body one byte every few seconds: then `/healthz`, the console and
//! the commands waited for a slot for as long as the caller liked. So each connection
//! says whether it is *waiting* — for a request head, a request body, or the next
//! request of a kept-alive connection — or *busy* with a request whose body has come.
//! When no slot is free, the connection that has waited longest (at least
//! [`SHED_AFTER`]) is closed to make room: a caller who sends its request promptly is
//! served, one who holds a connection open without sending gives way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// A connection waiting less than this is not closed for another.
pub const SHED_AFTER: Duration = Duration::from_secs(1);

/// A connection's state, shared by its task, its requests and the accept loop.
pub struct Conn {
    /// Since when it waits; `None` while a request is being handled.
    waiting_since: Mutex<Option<Instant>>,
    /// Told to close.
    pub close: Notify,
}

impl Conn {
    pub fn busy(&self) {
        *self.waiting_since.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    pub fn waiting(&self) {
        *self.waiting_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    fn waited(&self, now: Instant) -> Option<Duration> {
        self.waiting_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| now.duration_since(t))
    }
}

/// The open connections.
#[derive(Default)]
pub struct Conns {
    open: Mutex<Vec<Arc<Conn>>>,
}

impl Conns {
    /// A new connection, waiting for its first request.
    pub fn open(&self) -> Arc<Conn> {
        let c = Arc::new(Conn {
            waiting_since: Mutex::new(Some(Instant::now())),
            close: Notify::new(),
        });
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        // A connection whose task ended holds the only other reference: gone.
        open.retain(|c| Arc::strong_count(c) > 1);
        open.push(c.clone());
        c
    }

    /// Closes the connection that has waited longest, if one waited [`SHED_AFTER`];
    /// whether one was.
    pub fn shed_one(&self) -> bool {
        let now = Instant::now();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|c| Arc::strong_count(c) > 1);
        let longest = open
            .iter()
            .filter_map(|c| Some((c.waited(now)?, c)))
            .filter(|(w, _)| *w >= SHED_AFTER)
            .max_by_key(|(w, _)| *w)
            .map(|(_, c)| c.clone());
        match longest {
            Some(c) => {
                // Not chosen again while it closes.
                c.busy();
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}
