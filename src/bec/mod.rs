//! The BEC bridge: protowatch as the messaging backend of a BEC deployment.
//!
//! BEC's services publish notifications with `connector.notify(event, message)`, a Redis
//! PUBLISH on `internal/messaging_services/notification/<event>`, and BEC's own SciHub
//! forwards them only while the central Atlas service is connected. This module joins
//! the deployment's Redis as SciHub does and takes each notification into the same
//! durable path as a protocol line (the store's inbox, then alerts, routes, throttle and
//! outbox), so a beamline without Atlas gets delivery that survives restarts and is
//! throttled like everything else.
//!
//! - [`config`]: the `bec` section of the config file.
//! - [`codec`]: BEC's msgpack messages (the `__bec_codec__` wrappers) read and written
//!   without Python.
//! - [`html`]: the HTML that BEC's `add_text` writes, as our styled spans.
//! - [`notification`]: a decoded notification as our [`crate::event::Event`].
//! - [`served`]: which of our services and scopes BEC may name, read from the `bec`
//!   section and the services' sections and handed in as data: the bridge never sees
//!   the assembled config.
//! - [`routes`]: BEC's routing config (`set_auto_notifications`) as our destinations,
//!   handed to the pipeline through a `watch` channel.
//! - [`services`]: what `publish_services` tells BEC's clients we serve.
//! - [`health`]: the link's state for `/healthz` and `/metrics`, one value made by whoever
//!   starts the bridge and handed to it and to the readers.
//! - [`stream`]: what a session sends straight to a service (`bec.messaging.<service>
//!   .new(…).send()`), read from BEC's message stream with `publish_services`.
//! - [`bridge`]: the Redis subscription with its reconnection, and the hand-over to the
//!   pipeline.

pub mod bridge;
pub mod codec;
pub mod config;
pub mod health;
pub mod html;
pub mod notification;
pub mod routes;
pub mod served;
pub mod services;
pub mod stream;

pub use bridge::Bridge;
pub use config::BecConfig;
pub use health::BecHealth;
pub use routes::{RoutesRx, RoutesTx};
pub use served::Served;

/// The channel pattern BEC's `notify` publishes on; the event is the suffix.
pub const NOTIFICATION_PATTERN: &str = "internal/messaging_services/notification/*";
/// The prefix of [`NOTIFICATION_PATTERN`]'s channels.
pub const NOTIFICATION_PREFIX: &str = "internal/messaging_services/notification/";
/// BEC's routing config: a key that `set_auto_notifications` SETs and PUBLISHes.
pub const NOTIFICATION_CONFIG: &str = "user/messaging_services/notification_config";
/// The stream BEC's clients read to learn which services are enabled, with which scopes.
pub const AVAILABLE_SERVICES: &str = "info/messaging_services/available_messaging_services";
