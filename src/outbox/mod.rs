//! Delivery workers: one per destination, sending in order, retrying what can succeed.
//!
//! Each destination has its own queue and task, so a mail server that is down does not
//! hold back Telegram. A transient failure is retried with exponential backoff (and
//! Telegram's `retry_after` when given); a permanent one is logged and dropped. The
//! queue lives in memory: what is queued when the process dies is lost. The durable
//! SQLite-backed queue replaces it without changing this module's interface.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::Destination;
use crate::event::Event;
use crate::messengers::{Failure, Messengers, Notification};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

pub struct Outbox {
    queues: HashMap<Destination, mpsc::UnboundedSender<Arc<Event>>>,
    workers: Vec<JoinHandle<()>>,
    /// Set when closing: workers drain their queue but stop retrying.
    closing: watch::Sender<bool>,
}

impl Outbox {
    pub fn start(
        messengers: Arc<Messengers>,
        instrument: Arc<str>,
        destinations: Vec<Destination>,
    ) -> Outbox {
        let (closing, closing_rx) = watch::channel(false);
        let mut queues = HashMap::new();
        let mut workers = Vec::new();
        for dest in destinations {
            let (tx, rx) = mpsc::unbounded_channel();
            queues.insert(dest.clone(), tx);
            workers.push(tokio::spawn(worker(
                dest,
                rx,
                messengers.clone(),
                instrument.clone(),
                closing_rx.clone(),
            )));
        }
        Outbox {
            queues,
            workers,
            closing,
        }
    }

    pub fn enqueue(&self, to: &Destination, event: Arc<Event>) {
        match self.queues.get(to) {
            Some(q) => {
                let _ = q.send(event);
            }
            None => tracing::error!(destination = %to, "no worker for this destination"),
        }
    }

    /// Lets every worker finish what is queued, retrying failures until `grace` is over;
    /// then stops them.
    pub async fn close(self, grace: Duration) {
        drop(self.queues);
        let all = futures_join(self.workers);
        if tokio::time::timeout(grace, all).await.is_err() {
            let _ = self.closing.send(true);
            tracing::warn!("delivery still retrying at shutdown; giving up on the rest");
        }
    }
}

async fn futures_join(handles: Vec<JoinHandle<()>>) {
    for h in handles {
        let _ = h.await;
    }
}

async fn worker(
    dest: Destination,
    mut rx: mpsc::UnboundedReceiver<Arc<Event>>,
    messengers: Arc<Messengers>,
    instrument: Arc<str>,
    mut closing: watch::Receiver<bool>,
) {
    while let Some(event) = rx.recv().await {
        let n = Notification {
            instrument: &instrument,
            event: &event,
        };
        let mut backoff = FIRST_BACKOFF;
        loop {
            match messengers.send(&dest, &n).await {
                Ok(()) => {
                    tracing::info!(destination = %dest, event = %event.name, "delivered");
                    break;
                }
                Err(e) if e.kind == Failure::Permanent => {
                    tracing::error!(destination = %dest, event = %event.name, error = %e.message, "delivery refused; dropped");
                    break;
                }
                Err(e) => {
                    let wait = e.retry_after.unwrap_or(backoff);
                    tracing::warn!(destination = %dest, event = %event.name, error = %e.message, retry_in_s = wait.as_secs_f64(), "delivery failed; will retry");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = closing.wait_for(|c| *c) => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}
