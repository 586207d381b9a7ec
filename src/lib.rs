//! protowatch follows the protocol files of a measuring instrument and tells people when
//! something goes wrong.
//!
//! ```text
//! protocol files ─► watcher ─► parser ─► alerts ─► routing ─► outbox ─► messengers ─► mail / Telegram /
//!                   (tail,     (decode,   (dedup,   (event →   (durable  (render per     webhooks /
//!                   rotate,    grammar,   times_    service:   queue,    service, send,  Alertmanager
//!                   checkpoint) rules)    seen,ttl) scope,     retry)    report outcome)
//!                                                   throttle)
//! send-message CLI, HTTP API ─────────► alerts ─► …the same path
//! BEC's Redis (connector.notify) ──────► alerts ─► …the same path ([`bec`])
//! ```
//!
//! Alertmanager is the one service fed from the alert store rather than from messages:
//! its own delivery worker (`messengers::alertmanager::worker`, run by the outbox) posts
//! each alert's state and keeps posting it while it is active.
//!
//! Each stage talks to the next through the types of [`event`] and its own small API:
//! the watcher hands out raw lines ([`watcher::WatchMsg`]), the parser turns them into
//! [`event::Event`]s, routing picks [`config::Destination`]s, and the outbox's workers
//! call the [`messengers`]. [`agent`] wires them together and shuts them down in order.

pub mod agent;
pub mod alerts;
pub mod api;
pub mod bec;
pub mod cli;
pub mod config;
pub mod event;
pub mod inbox;
pub mod messengers;
pub mod metrics;
pub mod oncall;
pub mod outbox;
pub mod parser;
pub mod private;
pub mod routing;
pub mod settings;
pub mod state_id;
pub mod store;
pub mod systemd;
pub mod watcher;
