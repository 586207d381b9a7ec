//! The bot's side of Telegram, on when `telegram.operators` names someone: a long poll
//! of `getUpdates` for button presses and commands, and the edits that keep each alert's
//! messages in step with the alert.
//!
//! Long polling, not a webhook: instrument networks let nothing in, and a poll is one
//! outbound HTTPS request held open. `deleteWebhook` at the start makes sure Telegram
//! hands updates to the poll. The offset of the next update is in the store and moves on
//! only after an update was handled: an update handled before a crash or a restart is
//! not handled again, and one that came in meanwhile (Telegram keeps them 24 h) is
//! handled after it. Another program polling with the same token makes Telegram answer
//! 409; that is said plainly, and the poll backs off.
//!
//! A press acts through the agent's alert actions ([`runtime::Alerts`]:
//! `alerts::acknowledge`, `alerts::dismiss` and `alerts::snooze`, the one path the API
//! and the CLI use), on behalf of
//! `telegram:@user (id)`. Only operators may press or give commands; anyone else is told
//! so, and the attempt is logged with their id.
//!
//! It is started by the service list's line (`runs telegram::start`) with a
//! [`runtime::Ctx`]: the store, the alert actions, the running config, the wake-up
//! after each change and the shutdown come from there, and the ledger it opens is left
//! in the ctx's links for the sender, which records the messages it sends in it.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, CallbackQuery, UpdateKind, User};
use teloxide::{ApiError, RequestError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::card::{self, Callback, Press};
use super::ledger::{self, Ledger};
use super::{TelegramConfig, commands};
use crate::event::alert::Alert;
use crate::messengers::runtime::{self, Alerts, Ctx, Host, pause};
use crate::store::{Store, StoreError, now_ms};

/// Longest wait after a failed poll.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often the messages are checked against their alerts when nothing else changed
/// the database: expiry is a matter of time alone.
const REVIEW_EVERY: Duration = Duration::from_secs(30);

/// What the bot's side leaves in the ctx's links for the sender: the ledger to
/// remember the messages of alerts in, and the alert store to look their alert up. The
/// sender is built from the config alone (also by commands that run no agent, which
/// send without buttons), and again on each reload: it finds this in the links.
pub(super) struct Link {
    pub(super) ledger: Ledger,
    pub(super) alerts: Arc<dyn Alerts>,
}

/// What the poll, the press handlers and the commands share.
pub(super) struct Side {
    /// Every call but `getUpdates`: bounded by `telegram.timeout_s`.
    pub(super) bot: Bot,
    /// `getUpdates` alone: bounded by the poll's own time plus a margin.
    poll_bot: Bot,
    pub(super) ledger: Ledger,
    /// The alert actions.
    pub(super) alerts: Arc<dyn Alerts>,
    /// The running config, resend and `/status`.
    pub(super) host: Arc<dyn Host>,
    /// The store changed: messages may need an edit.
    changes: tokio::sync::watch::Receiver<u64>,
    /// When each chat was last told that only operators may use the bot: once per
    /// [`commands::REFUSAL_EVERY`], so that a stranger's flood of commands costs one
    /// message, not a queue that holds back an operator's press.
    pub(super) refused: std::sync::Mutex<std::collections::HashMap<i64, std::time::Instant>>,
}

/// Starts the poll and the reviews when the section has operators; nothing otherwise.
pub fn start(tg: &TelegramConfig, ctx: &Ctx) -> Vec<JoinHandle<()>> {
    if !tg.two_way() {
        return Vec::new();
    }
    // Like the API, the watching goes on without it.
    let ledger = match ctx.store() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "Telegram's buttons and commands are not available");
            return Vec::new();
        }
    };
    ctx.links.put(Link {
        ledger: ledger.clone(),
        alerts: ctx.alerts.clone(),
    });
    let side = Arc::new(Side {
        bot: super::build_bot(tg, tg.timeout + Duration::from_secs(1)),
        poll_bot: super::build_bot(tg, tg.poll_timeout + super::POLL_MARGIN),
        ledger,
        alerts: ctx.alerts.clone(),
        host: ctx.host.clone(),
        changes: ctx.changes.clone(),
        refused: std::sync::Mutex::default(),
    });
    let tasks = vec![
        tokio::spawn(side.clone().poll(tg.poll_timeout, ctx.stop.clone())),
        tokio::spawn(side.reviews(ctx.stop.clone())),
    ];
    tracing::info!(
        operators = tg.operators.len(),
        "Telegram: buttons and commands on (long polling)"
    );
    tasks
}

/// `telegram:@anna (42)`: who acted, for the alert's row and the audit line.
pub(super) fn actor(u: &User) -> String {
    match &u.username {
        Some(name) => format!("telegram:@{name} ({})", u.id.0),
        None => format!("telegram:{} ({})", u.first_name, u.id.0),
    }
}

impl Side {
    pub(super) fn telegram(&self) -> Option<TelegramConfig> {
        self.host.config().sections().telegram.clone()
    }

    pub(super) fn instrument(&self) -> String {
        self.host.config().instrument().to_string()
    }

    /// Whether `u` may act; if not, the attempt is logged with who it was.
    pub(super) fn is_operator(&self, u: &User, what: &str) -> bool {
        let ok = self.telegram().is_some_and(|t| {
            t.operators
                .iter()
                .any(|o| o.is(u.id.0, u.username.as_deref()))
        });
        if !ok {
            tracing::warn!(target: "protowatch::audit", user_id = u.id.0, username = u.username.as_deref().unwrap_or(""), what, "Telegram: refused, not an operator");
        }
        ok
    }

    /// Whether `u` is an operator, without an audit line (for a chat already told).
    pub(super) fn operator_quietly(&self, u: &User) -> bool {
        self.telegram().is_some_and(|t| {
            t.operators
                .iter()
                .any(|o| o.is(u.id.0, u.username.as_deref()))
        })
    }

    pub(super) async fn db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        ledger::on(&self.ledger, f).await
    }

    fn scrub(&self, e: &RequestError) -> String {
        match self.telegram() {
            Some(t) => t.token.scrub(&e.to_string()),
            None => "Telegram request failed".into(),
        }
    }

    async fn poll(self: Arc<Self>, timeout: Duration, stop: CancellationToken) {
        // Telegram gives no updates to getUpdates while a webhook is set.
        if let Err(e) = self.bot.delete_webhook().await {
            tracing::warn!(error = %self.scrub(&e), "Telegram: deleteWebhook failed");
        }
        if let Err(e) = self.bot.set_my_commands(commands::list()).await {
            tracing::warn!(error = %self.scrub(&e), "Telegram: setMyCommands failed");
        }
        // Failures in a row: the first after a success is retried at once (a connection
        // the network dropped while the poll was held), then with a growing pause.
        let mut failures = 0u32;
        let mut backoff = Duration::from_secs(1);
        loop {
            let offset = match self.db(ledger::offset).await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, "Telegram: cannot read the update offset");
                    if !pause(&stop, backoff).await {
                        return;
                    }
                    continue;
                }
            };
            let mut req = self
                .poll_bot
                .get_updates()
                .timeout(timeout.as_secs() as u32)
                .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
            if let Some(o) = offset {
                req = req.offset(o);
            }
            let got = tokio::select! {
                r = req.into_future() => r,
                _ = stop.cancelled() => return,
            };
            let e = match got {
                Ok(updates) => {
                    if failures > 1 {
                        tracing::info!(failures, "Telegram: getUpdates answers again");
                    }
                    failures = 0;
                    backoff = Duration::from_secs(1);
                    for u in updates {
                        let next = (u.id.0 as i32).saturating_add(1);
                        self.handle(u).await;
                        if let Err(e) = self.db(move |s| ledger::set_offset(s, next)).await {
                            tracing::error!(error = %e, "Telegram: cannot store the update offset");
                        }
                    }
                    continue;
                }
                Err(e) => e,
            };
            failures += 1;
            let wait = match &e {
                RequestError::RetryAfter(s) => s.duration(),
                _ if failures == 1 => Duration::ZERO,
                _ => backoff,
            };
            match &e {
                RequestError::Api(ApiError::TerminatedByOtherGetUpdates) => tracing::error!(
                    retry_in_s = wait.as_secs(),
                    "Telegram: 409 Conflict, another program polls this bot's updates (terminated by other getUpdates request). \
                     Buttons and commands need the bot token to themselves: stop the other bot or agent, or give this one its own bot"
                ),
                _ if wait.is_zero() => {
                    tracing::debug!(error = %self.scrub(&e), "Telegram: getUpdates failed; polling again at once")
                }
                _ => {
                    tracing::warn!(error = %self.scrub(&e), retry_in_s = wait.as_secs(), failures, "Telegram: getUpdates failed")
                }
            }
            if !wait.is_zero() {
                if !pause(&stop, wait).await {
                    return;
                }
                if !matches!(e, RequestError::RetryAfter(_)) {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    async fn handle(&self, u: Update) {
        match u.kind {
            UpdateKind::CallbackQuery(q) => self.on_press(q).await,
            UpdateKind::Message(m) => commands::on_message(self, m).await,
            _ => {}
        }
    }

    /// A button pressed: always answered, with what came of it or why nothing did.
    async fn on_press(&self, q: CallbackQuery) {
        let answer = self.press_outcome(&q).await;
        if let Err(e) = self
            .bot
            .answer_callback_query(q.id.clone())
            .text(answer)
            .await
        {
            tracing::warn!(error = %self.scrub(&e), "Telegram: answerCallbackQuery failed");
        }
    }

    async fn press_outcome(&self, q: &CallbackQuery) -> String {
        if !self.is_operator(&q.from, "button") {
            return "Only this instrument's operators may act on its alerts.".into();
        }
        let Some(cb) = q.data.as_deref().and_then(Callback::parse) else {
            return "This button is not one of protowatch's.".into();
        };
        let Some(chat_id) = q.message.as_ref().map(|m| m.chat().id.0) else {
            return "This message is out of date: /alerts lists the current alerts.".into();
        };
        let by = actor(&q.from);
        let (id, nonce) = (cb.alert_id, cb.nonce.clone());
        let alerts = self.alerts.clone();
        let found = self
            .db(move |s| {
                let shown = ledger::find(s, chat_id, id, &nonce)?;
                Ok(shown.and(alerts.get(s, id)?))
            })
            .await;
        let alert = match found {
            Ok(Some(a)) => a,
            Ok(None) => {
                return "This message is out of date: /alerts lists the current alerts.".into();
            }
            Err(e) => {
                tracing::error!(error = %e, "Telegram: cannot read the alert of a press");
                return "protowatch could not read its state database; try again.".into();
            }
        };
        let now = now_ms();
        let outcome = match cb.press {
            Press::Ack => self.acknowledge(id, now, &by).await,
            Press::Dismiss => {
                let (by, alerts) = (by.clone(), self.alerts.clone());
                match self.db(move |s| alerts.dismiss(s, id, now, &by)).await {
                    Ok(true) => "Dismissed.".to_string(),
                    Ok(false) => "It was already dismissed.".to_string(),
                    Err(e) => format!("Not dismissed: {e}"),
                }
            }
            Press::Snooze(i) => {
                let snooze = self.telegram().and_then(|t| t.snooze.get(i).copied());
                match snooze {
                    None => "This button is out of date.".to_string(),
                    Some(_) if !alert.is_active(now) => {
                        "It is no longer active: nothing to snooze.".to_string()
                    }
                    Some(d) => {
                        let until = now.saturating_add(d.as_millis() as i64);
                        let (by, alerts) = (by.clone(), self.alerts.clone());
                        match self.db(move |s| alerts.snooze(s, id, until, &by)).await {
                            Ok(_) => format!("Snoozed for {}.", card::duration_label(d)),
                            Err(e) => format!("Not snoozed: {e}"),
                        }
                    }
                }
            }
            Press::Action(i) => match alert.actions.get(i).map(|a| a.action.as_str()) {
                Some("__resend") => self.resend(alert.clone()).await,
                Some("__ack") => self.acknowledge(id, now, &by).await,
                Some(a) if a.starts_with("__") => {
                    format!("{a} has no handler on the server.")
                }
                _ => "This button is out of date.".to_string(),
            },
        };
        tracing::info!(alert = id, by, outcome, "Telegram: button pressed");
        self.review(Some(id)).await;
        outcome
    }

    /// "I'm on it", on behalf of `by`: what came of it, as the answer says it.
    pub(super) async fn acknowledge(&self, id: i64, now: i64, by: &str) -> String {
        let (by, alerts) = (by.to_string(), self.alerts.clone());
        match self.db(move |s| alerts.acknowledge(s, id, now, &by)).await {
            Ok(true) => "Acknowledged.".to_string(),
            Ok(false) => "It is no longer active: nothing to acknowledge.".to_string(),
            Err(e) => format!("Not acknowledged: {e}"),
        }
    }

    /// `__resend`: the alert again, through its event's routes, as the API does it.
    async fn resend(&self, alert: Alert) -> String {
        let name = alert.event.clone();
        let host = self.host.clone();
        match runtime::on(&self.ledger, move |s| host.resend(s, &alert)).await {
            Ok(wake) if wake.is_empty() => format!("No route for the event {name:?}."),
            Ok(_) => "Sent again.".into(),
            Err(e) => format!("Not sent: {e}"),
        }
    }

    /// Edits every open message (of one alert, or all) whose alert changed since it was
    /// last shown: dismissed (buttons gone), snoozed, expired, deleted.
    pub(super) async fn review(&self, alert: Option<i64>) {
        let Some(tg) = self.telegram() else {
            return;
        };
        let now = now_ms();
        let open = match self.db(move |s| ledger::open(s, alert)).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "Telegram: cannot read the messages to edit");
                return;
            }
        };
        let instrument = self.instrument();
        for shown in open {
            let id = shown.alert_id;
            let alerts = self.alerts.clone();
            let Ok(alert) = self.db(move |s| alerts.get(s, id)).await else {
                continue;
            };
            let key = card::state_key(alert.as_ref(), now);
            if key == shown.shown {
                continue;
            }
            let keep = card::is_open(&key);
            let edited = match &alert {
                Some(a) => {
                    let text = card::text(&instrument, a, now);
                    let keyboard = keep.then(|| card::keyboard(a, &shown.nonce, &tg.snooze, true));
                    super::edit_message(&self.bot, &shown, text, keyboard).await
                }
                None => self
                    .bot
                    .edit_message_reply_markup(
                        teloxide::types::ChatId(shown.chat_id),
                        teloxide::types::MessageId(shown.message_id),
                    )
                    .await
                    .map(|_| true)
                    .or_else(|e| match e {
                        RequestError::Api(ApiError::MessageNotModified) => Ok(true),
                        RequestError::Api(
                            ApiError::MessageCantBeEdited | ApiError::MessageToEditNotFound,
                        ) => Ok(false),
                        e => Err(e),
                    }),
            };
            let (key, keep) = match edited {
                Ok(true) => (key, keep),
                // Deleted or too old: nothing left to keep in step.
                Ok(false) => ("gone".to_string(), false),
                Err(e) => {
                    tracing::warn!(error = %self.scrub(&e), alert = id, "Telegram: cannot edit an alert's message; will try again");
                    continue;
                }
            };
            let (chat, msg) = (shown.chat_id, shown.message_id);
            if let Err(e) = self
                .db(move |s| ledger::shown(s, chat, msg, &key, keep, now))
                .await
            {
                tracing::warn!(error = %e, "Telegram: cannot note an edit");
            }
        }
    }

    /// Keeps messages in step with changes made elsewhere (the API, the CLI, the
    /// console, the pipeline) and with time (expiry, the end of a snooze).
    ///
    /// It sleeps until the pipeline says the store changed ([`Ctx::changes`]: its own
    /// commits, and every other connection's and process's, which its once-a-second
    /// tick already looks for) or until [`REVIEW_EVERY`] passed, and reviews at most once
    /// a second. A timer of its own each second woke the runtime twice a second at rest
    /// (a one-second sleep sits in the timer wheel's second level and is moved down
    /// before it fires) for nothing.
    async fn reviews(self: Arc<Self>, stop: CancellationToken) {
        let mut changes = self.changes.clone();
        let mut purged = 0;
        // The first review looks at what changed while the agent was stopped.
        if !pause(&stop, Duration::from_secs(1)).await {
            return;
        }
        loop {
            self.review(None).await;
            let now = now_ms();
            if now - purged > 3_600_000 {
                purged = now;
                let _ = self.db(move |s| ledger::purge(s, now)).await;
            }
            // However busy the store is: a burst of commits makes one review a second.
            if !pause(&stop, Duration::from_secs(1)).await {
                return;
            }
            tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return; // the agent is gone
                    }
                }
                _ = tokio::time::sleep(REVIEW_EVERY) => {}
                _ = stop.cancelled() => return,
            }
        }
    }
}
