//! The link to BEC's Redis: subscribe as SciHub does, hand each notification to the
//! store's inbox, follow BEC's routing config, and come back after Redis goes away.
//!
//! Two parts, each with one job. The subscriber (a tokio task) holds the Redis
//! connections: `PSUBSCRIBE internal/messaging_services/notification/*` and `SUBSCRIBE
//! user/messaging_services/notification_config` on one, GET/XADD on another; it
//! decodes what arrives and passes events on at once. The recorder (a thread, as SQLite
//! blocks) writes them to the inbox, many in one transaction when they come in a burst,
//! then wakes the pipeline, which routes, throttles and queues them like a protocol line
//! or a `send-message`. A notification is durable as soon as the recorder's commit ends,
//! before anything is sent.
//!
//! A PUBLISH that nobody hears is gone: BEC does not queue notifications. While the link
//! is down they are lost, so the bridge reconnects with backoff (from 0.25 s to 30 s),
//! and logs and counts how long it was down (`/healthz`, `/metrics`).
//!
//! The link is the subscription alone, and it must last through hours of silence
//! (docs/ARCHITECTURE.md, "Connections that outlive a request"). Redis' `timeout`
//! closes idle connections that are not subscribed, so the GET/XADD connection is
//! opened when it is needed and dropped after: its loss is never the link's. The
//! subscription's own connection is checked with PING (allowed while subscribed) and
//! carries TCP keepalive, so a half-dead link — a switch rebooted — is noticed within
//! a minute, not at the next notification that never comes.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::IntoConnectionInfo;
use tokio_util::sync::CancellationToken;

use crate::event::Event;
use crate::inbox;
use crate::settings::Secret;
use crate::store::Store;

use super::{AVAILABLE_SERVICES, NOTIFICATION_CONFIG, NOTIFICATION_PATTERN, NOTIFICATION_PREFIX};
use super::{BecConfig, BecHealth, RoutesTx, Served};
use super::{codec, notification, routes, services, stream};

/// Tells the pipeline to read the inbox now: the same wake-up as the API's.
pub use crate::event::Wake;

const BACKOFF_FIRST: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How long connecting may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the subscription's connection is checked: a subscription that hears
/// nothing cannot tell a quiet beamline from a dead link.
const PING_EVERY: Duration = Duration::from_secs(15);
/// TCP keepalive on every connection to Redis: the first probe after this much
/// silence, then every [`KEEPALIVE_INTERVAL`]; three unanswered probes end the
/// connection (about 50 s), also while a PING waits.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(20);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// The most notifications committed in one transaction.
const RECORD_BATCH: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("BEC bridge: cannot open the state database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("BEC bridge: {0}")]
    Setup(String),
}

/// What the bridge is handed by whoever starts it (the agent): its section and what it
/// serves, never the whole config (docs/ARCHITECTURE.md, "Layers"); where BEC's routes
/// go and where its health is shown; and the agent's stop signal.
pub struct Setup {
    pub bec: BecConfig,
    pub served: Served,
    /// Where the inbox's database is, and BEC's routes are kept ([`routes::save`]).
    pub state_dir: PathBuf,
    pub routes: RoutesTx,
    pub health: BecHealth,
    pub wake: Wake,
    /// The agent's stop signal: the bridge stops with it, or alone with [`Bridge::stop`].
    pub stop: CancellationToken,
}

/// The running bridge.
pub struct Bridge {
    /// A child of the agent's stop signal: cancelled with it, or alone by [`Bridge::stop`].
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// The message stream's reader, with `publish_services`.
    reader: Option<tokio::task::JoinHandle<()>>,
    recorder: std::thread::JoinHandle<()>,
}

/// What the recorder writes: a notification, or what a stream entry made with the
/// stream's cursor past it (in the same transaction).
#[derive(Debug)]
pub enum Record {
    Notification(Box<Event>),
    Stream(stream::Handled),
}

impl Bridge {
    /// Starts the bridge of `setup.bec`.
    pub fn start(setup: Setup) -> Result<Bridge, BridgeError> {
        let Setup {
            bec,
            served,
            state_dir,
            routes,
            health,
            wake,
            stop,
        } = setup;
        let served = Arc::new(served);
        let store = Store::open(&state_dir)?;
        let cursor = stream::load(&store)?;
        let (tx, rx) = std_mpsc::channel::<Record>();
        let recorder_wake = wake.clone();
        let recorder = std::thread::Builder::new()
            .name("bec-recorder".into())
            .spawn(move || record(store, rx, recorder_wake))
            .map_err(|e| BridgeError::Setup(format!("cannot start a thread: {e}")))?;
        let info = redis::ConnectionAddr::Tcp(bec.host.clone(), bec.port)
            .into_connection_info()
            .map_err(|e| BridgeError::Setup(e.to_string()))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &bec.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = &bec.password {
            settings = settings.set_password(password.expose());
        }
        let client = redis::Client::open(
            info.set_redis_settings(settings)
                .set_tcp_settings(tcp_settings()),
        )
        .map_err(|e| BridgeError::Setup(e.to_string()))?;
        health.configured(&bec.address());
        let stop = stop.child_token();
        let reader = bec.publish_services.then(|| {
            health.stream_started();
            let password = bec.password.clone();
            let reader = stream::Reader {
                client: client.clone(),
                served: served.clone(),
                health: health.clone(),
                tx: tx.clone(),
                cursor,
                scrub: Box::new(move |t: &str| match &password {
                    Some(p) => p.scrub(t),
                    None => t.to_string(),
                }),
            };
            tokio::spawn(reader.run(stop.clone()))
        });
        let link = Link {
            client,
            password: bec.password.clone(),
            publish_services: bec.publish_services,
            served,
            state_dir,
            routes,
            warned: Mutex::new(HashSet::new()),
            health,
            tx,
            wake,
        };
        let task = tokio::spawn(link.run(stop.clone()));
        tracing::info!(redis = %bec.address(), user = ?bec.user, "BEC bridge started");
        Ok(Bridge {
            stop,
            task,
            reader,
            recorder,
        })
    }

    /// Stops listening; what was received is committed before this returns.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        if let Some(reader) = self.reader {
            let _ = reader.await;
        }
        // The task owned the sender: the recorder ends once it has written the rest.
        let recorder = self.recorder;
        let _ = tokio::task::spawn_blocking(move || recorder.join()).await;
    }
}

/// Keepalive probes on the link's sockets: a peer that vanished without a FIN (a switch
/// rebooted, a VM paused) ends the connection instead of leaving it open for hours.
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    use redis::io::tcp::socket2::TcpKeepalive;
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(3);
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_keepalive(keepalive)
}

/// Writes events to the inbox, a burst in few transactions, and wakes the pipeline
/// after each commit.
fn record(store: Store, rx: std_mpsc::Receiver<Record>, wake: Wake) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut tries = 0u32;
        loop {
            match submit_all(&store, &batch) {
                Ok(()) => break,
                Err(e) => {
                    tries += 1;
                    tracing::error!(error = %e, notifications = batch.len(), tries, "cannot store BEC notifications; trying again");
                    std::thread::sleep(Duration::from_millis(500 * u64::from(tries.min(10))));
                }
            }
        }
        wake();
    }
}

fn submit_all(store: &Store, batch: &[Record]) -> Result<(), crate::store::StoreError> {
    store.with_conn(|c| c.execute_batch("BEGIN IMMEDIATE"))?;
    let mut cursor = None;
    let result = batch.iter().try_for_each(|r| match r {
        Record::Notification(e) => inbox::submit(store, e, None).map(drop),
        Record::Stream(h) => {
            cursor = Some(h.cursor);
            h.requests
                .iter()
                .try_for_each(|(e, to)| inbox::submit(store, e, Some(to)).map(drop))
        }
    });
    // The stream's cursor once per batch, past its last entry: in the transaction of
    // every request its entries made.
    let result = result.and_then(|()| cursor.map_or(Ok(()), |c| stream::save(store, &c)));
    match result {
        Ok(()) => store.with_conn(|c| c.execute_batch("COMMIT")),
        Err(e) => {
            let _ = store.with_conn(|c| c.execute_batch("ROLLBACK"));
            Err(e)
        }
    }
}

struct Link {
    client: redis::Client,
    /// To keep out of what is logged.
    password: Option<Secret>,
    publish_services: bool,
    served: Arc<Served>,
    state_dir: PathBuf,
    routes: RoutesTx,
    /// BEC's routes we cannot serve that were logged (once per run each).
    warned: Mutex<HashSet<String>>,
    health: BecHealth,
    tx: std_mpsc::Sender<Record>,
    wake: Wake,
}

impl Link {
    async fn run(self, stop: CancellationToken) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            let result = self.session(&stop).await;
            if stop.is_cancelled() {
                return;
            }
            match result {
                Ok(true) => backoff = BACKOFF_FIRST,
                Ok(false) => {}
                Err(why) => {
                    let why = self.scrub(&why);
                    if self.health.is_up() {
                        tracing::warn!(error = %why, "BEC link lost; BEC's notifications are lost until it is back");
                    } else {
                        tracing::debug!(error = %why, "BEC link not made");
                    }
                    self.health.down(&why);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stop.cancelled() => return,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// The password out of a message, whatever a library put into it.
    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => p.scrub(text),
            None => text.to_string(),
        }
    }

    /// One subscription's life. `Ok(true)`: it was up and ended; `Err`: why it failed.
    async fn session(&self, stop: &CancellationToken) -> Result<bool, String> {
        let connect = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.psubscribe(NOTIFICATION_PATTERN).await?;
            pubsub.subscribe(NOTIFICATION_CONFIG).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        match self.health.up() {
            Some(down) => tracing::warn!(
                down_s = down as f64 / 1000.0,
                "BEC link back after {:.1} s down; notifications published meanwhile were lost",
                down as f64 / 1000.0
            ),
            None => tracing::info!("BEC link up: subscribed to {NOTIFICATION_PATTERN}"),
        }
        // Subscribed first, read second: a change published in between is not missed.
        self.read_and_publish().await;
        let (mut sink, mut messages) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                m = messages.next() => match m {
                    Some(m) => self.on_message(m.get_channel_name(), m.get_payload_bytes()),
                    None => return Err("the subscription's connection closed".into()),
                },
                _ = ping.tick() => {
                    match tokio::time::timeout(CONNECT_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Err(e.to_string()),
                        Err(_) => return Err("PING not answered".into()),
                    }
                }
                _ = stop.cancelled() => return Ok(true),
            }
        }
    }

    /// BEC's routing config read, and our services published, over a connection of
    /// their own that lives as long as this: an idle connection is Redis' to close, and
    /// the subscription must not go with it. A failure here is logged; the link stays.
    async fn read_and_publish(&self) {
        let opened = tokio::time::timeout(
            CONNECT_TIMEOUT,
            self.client.get_multiplexed_async_connection(),
        )
        .await;
        let mut conn = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                tracing::warn!(error = %self.scrub(&e.to_string()), "cannot read BEC's routing config");
                return;
            }
            Err(_) => {
                tracing::warn!(
                    "cannot read BEC's routing config: no connection within {} s",
                    CONNECT_TIMEOUT.as_secs()
                );
                return;
            }
        };
        match redis::cmd("GET")
            .arg(NOTIFICATION_CONFIG)
            .query_async::<Option<Vec<u8>>>(&mut conn)
            .await
        {
            Ok(Some(bytes)) => self.on_routes(&bytes),
            Ok(None) => self.apply_routes(codec::BecRoutes::new()),
            Err(e) => {
                tracing::warn!(error = %self.scrub(&e.to_string()), "cannot read BEC's routing config")
            }
        }
        if self.publish_services {
            self.publish(&mut conn).await;
        }
    }

    fn on_message(&self, channel: &str, payload: &[u8]) {
        if channel == NOTIFICATION_CONFIG {
            self.on_routes(payload);
            return;
        }
        let Some(event) = channel.strip_prefix(NOTIFICATION_PREFIX) else {
            return;
        };
        if crate::event::check_name(event).is_err() {
            self.health.undecodable();
            tracing::warn!(
                channel,
                bytes = payload.len(),
                "a BEC notification on a channel that names no event; dropped"
            );
            return;
        }
        match codec::decode_notification(payload) {
            Ok(n) => {
                self.health.received();
                if n.event != event {
                    tracing::debug!(channel, event = %n.event, "the message names another event than its channel; the channel's is taken");
                }
                let e = notification::to_event(event, n);
                tracing::debug!(event = %e.name, key = %e.key, "BEC notification");
                if self.tx.send(Record::Notification(Box::new(e))).is_err() {
                    tracing::error!(
                        channel,
                        "BEC notification received while stopping; not stored"
                    );
                }
            }
            Err(e) => {
                self.health.undecodable();
                tracing::warn!(channel, bytes = payload.len(), error = %e, "a BEC notification could not be decoded; dropped");
            }
        }
    }

    fn on_routes(&self, bytes: &[u8]) {
        match codec::decode_routes(bytes) {
            Ok(r) => self.apply_routes(r),
            Err(e) => {
                self.health.undecodable();
                tracing::warn!(channel = NOTIFICATION_CONFIG, bytes = bytes.len(), error = %e, "BEC's routing config could not be decoded; the routes stay as they were");
            }
        }
    }

    fn apply_routes(&self, raw: codec::BecRoutes) {
        routes::warn_unserved(
            &routes::resolve(&self.served, &raw),
            &mut self.warned.lock().unwrap_or_else(|p| p.into_inner()),
        );
        let count = routes::count(Some(&raw));
        if let Err(e) = routes::save(&self.state_dir, &raw) {
            tracing::warn!(error = %e, "cannot keep BEC's routes in the state folder");
        }
        if routes::publish(&self.routes, raw) {
            tracing::info!(targets = count, "BEC's routing config applied");
            (self.wake)();
        }
    }

    async fn publish(&self, conn: &mut redis::aio::MultiplexedConnection) {
        let data = services::available(&self.served);
        let result = redis::cmd("XADD")
            .arg(AVAILABLE_SERVICES)
            .arg("MAXLEN")
            .arg("~")
            .arg(services::STREAM_MAXLEN)
            .arg("*")
            .arg("data")
            .arg(data)
            .query_async::<String>(conn)
            .await;
        match result {
            Ok(_) => tracing::info!(stream = AVAILABLE_SERVICES, "published our services to BEC"),
            Err(e) => {
                tracing::error!(stream = AVAILABLE_SERVICES, error = %self.scrub(&e.to_string()), "cannot publish our services to BEC")
            }
        }
    }
}
