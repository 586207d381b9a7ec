//! Telegram through the Bot API with teloxide, on rustls.
//!
//! Messages go in HTML parse mode, everything escaped, split into parts of at most
//! 4,096 characters ([`render::telegram_parts`]); attached files follow with sendPhoto
//! (PNG, JPEG) or sendDocument. `telegram.api-url` replaces Telegram's
//! address, for self-hosted Bot API servers and for tests.
//!
//! With `telegram.operators` the bot works both ways ([`bot`]): the message of a
//! single alert carries Dismiss and Snooze buttons and is remembered in the store
//! ([`ledger`]), so that a repeat summary edits it in place (count, last time) instead
//! of posting again. A digest carries no alert buttons: they would not say which alert
//! they act on.
//!
//! A scope may name a forum topic (`message_thread_id`) and a severity below which its
//! messages arrive silently (`disable_notification`).
//!
//! teloxide reports a Bot API error by its description and drops the HTTP status, so the
//! transient/permanent decision reads the description: Telegram's 4xx descriptions start
//! with the reason phrase ("Bad Request: …", "Forbidden: …"), and every error teloxide
//! knows by name is a 4xx.

mod bot;
mod card;
mod commands;
mod config;
mod ledger;
mod probe;
pub mod render;

pub use bot::start;
pub use config::{ChatScope, Operator, TelegramConfig};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, MessageId,
    ParseMode, Recipient, ThreadId,
};
use teloxide::{ApiError, RequestError};

use super::probe::Check;
use super::render::Notification;
use super::runtime::Links;
use super::{Deliver, SendError};
use crate::event::alert::Alert;
use crate::settings::Secret;
use crate::store::now_ms;
use render::{TELEGRAM_LIMIT, TgLinks};

use super::render::escape as render_escape;

pub struct Telegram {
    pub timeout: std::time::Duration,
    bot: Bot,
    token: Secret,
    scopes: std::collections::BTreeMap<String, ChatScope>,
    /// Operators are configured: alert messages carry buttons and are edited in place.
    two_way: bool,
    snooze: Vec<Duration>,
    /// `@channel` → its numeric id, which the messages remembered in the store carry.
    chat_ids: Mutex<HashMap<String, i64>>,
    /// Where the bot's side leaves its ledger ([`bot::Link`]); none outside the agent.
    links: Option<Links>,
}

/// How one message is sent: into which topic, with or without a sound.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SendOpts {
    pub thread: Option<i32>,
    pub silent: bool,
}

impl Telegram {
    pub fn new(cfg: &TelegramConfig) -> Telegram {
        // A second past the send's own bound, which names the timeout in its error.
        let bot = build_bot(cfg, cfg.timeout + Duration::from_secs(1));
        Telegram {
            timeout: cfg.timeout,
            bot,
            token: cfg.token.clone(),
            scopes: cfg.scopes.clone(),
            two_way: cfg.two_way(),
            snooze: cfg.snooze.clone(),
            chat_ids: Mutex::new(HashMap::new()),
            links: None,
        }
    }
}

/// How much longer than the `timeout` it asked Telegram to hold a `getUpdates` the poll
/// waits for the answer: Telegram answers an empty poll at the end of its `timeout`, and
/// the answer must still cross the network (and a proxy) before the client gives up.
pub const POLL_MARGIN: Duration = Duration::from_secs(10);

/// A Bot API client for the configured server and token whose every request is bounded
/// by `timeout` (and its connecting by 5 s, as teloxide's own settings have it).
/// Telegram's servers carry public certificates: the system's CA store (which the
/// webhooks and Alertmanager clients load, for a site's own CA) would only add a
/// megabyte of parsed certificates to an idle agent.
///
/// The sends and the long poll get one client each: a poll is held for
/// `poll_timeout_s`, a send must fail fast. One client for both gave up on every quiet
/// poll (teloxide's 17 s against a 25 s poll) and made the bot deaf to presses for a
/// minute after each quiet stretch (docs/ARCHITECTURE.md, "Connections that outlive a
/// request").
fn build_bot(cfg: &TelegramConfig, timeout: Duration) -> Bot {
    let client = teloxide::net::default_reqwest_settings()
        .timeout(timeout)
        .pool_idle_timeout(super::http::POOL_IDLE)
        // The token is in every request's path: a redirect from the api-url's server
        // would carry it to wherever that server says.
        .redirect(reqwest::redirect::Policy::none())
        .tls_built_in_native_certs(false)
        .build();
    match client {
        Ok(client) => Bot::with_client(cfg.token.expose(), client),
        Err(_) => Bot::new(cfg.token.expose()),
    }
    .set_api_url(cfg.api_url.clone())
}

impl Deliver for Telegram {
    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        self.run_probe(report).await
    }

    fn attach(&mut self, links: &Links) {
        self.links = Some(links.clone());
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let target = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no telegram scope {scope:?}")))?;
        let opts = SendOpts {
            thread: target.thread,
            silent: target
                .silent_below
                .is_some_and(|min| super::render::worst(n) < min),
        };
        let recipient = recipient(&target.chat);
        if self.two_way
            && !n.is_digest()
            && let Some(link) = self.links.as_ref().and_then(Links::get::<bot::Link>)
        {
            let key = n.items[0].event.key.clone();
            let alerts = link.alerts.clone();
            match ledger::on(&link.ledger, move |s| alerts.by_key(s, &key)).await {
                Ok(Some(alert)) => {
                    return self
                        .send_alert(&link.ledger, &target.chat, &recipient, opts, n, &alert)
                        .await;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot look up the alert of a Telegram message; sent without its buttons")
                }
            }
        }
        self.send_plain(&recipient, opts, n).await
    }
}

impl Telegram {
    /// A message as the one-way bot sends it: the alert's URL actions as buttons.
    async fn send_plain(
        &self,
        recipient: &Recipient,
        opts: SendOpts,
        n: &Notification<'_>,
    ) -> Result<(), SendError> {
        let keyboard = url_buttons(n);
        self.send_parts(recipient, opts, n, keyboard, None).await?;
        self.send_files(recipient, opts, n).await
    }

    /// Sends the text parts, `keyboard` on the last; when Telegram refuses a URL button
    /// the links go into the text and the buttons become `fallback` (none: no
    /// buttons). Returns the message that carries the buttons.
    async fn send_parts(
        &self,
        recipient: &Recipient,
        opts: SendOpts,
        n: &Notification<'_>,
        keyboard: Option<InlineKeyboardMarkup>,
        fallback: Option<InlineKeyboardMarkup>,
    ) -> Result<Option<Message>, SendError> {
        let parts = render::telegram_parts(n, TELEGRAM_LIMIT);
        let last = parts.len().saturating_sub(1);
        let mut sent = None;
        for (i, part) in parts.into_iter().enumerate() {
            let markup = keyboard.clone().filter(|_| i == last);
            match self.send_text(recipient, opts, part, markup.clone()).await {
                Ok(m) => sent = Some(m),
                // Telegram judges button URLs by rules of its own (a host it will not
                // link to); the alert still goes out, with its links written in the text.
                Err(e) if markup.is_some() && is_button_refusal(&e) => {
                    tracing::warn!(error = %self.token.scrub(&e.to_string()), "Telegram refused the alert's URL buttons; sending its links as text");
                    let again = render::telegram_parts_with(n, TELEGRAM_LIMIT, TgLinks::Text);
                    let again_last = again.len().saturating_sub(1);
                    for (j, part) in again.into_iter().enumerate().skip(i) {
                        let markup = fallback.clone().filter(|_| j == again_last);
                        sent = Some(
                            self.send_text(recipient, opts, part, markup)
                                .await
                                .map_err(|e| self.classify(e))?,
                        );
                    }
                    return Ok(sent);
                }
                Err(e) => return Err(self.classify(e)),
            }
        }
        Ok(sent)
    }

    /// Files after the text they belong to; a photo is shown inline, anything else as a
    /// document.
    async fn send_files(
        &self,
        recipient: &Recipient,
        opts: SendOpts,
        n: &Notification<'_>,
    ) -> Result<(), SendError> {
        for a in n.attachments() {
            let file = InputFile::memory(a.data.clone()).file_name(a.filename.clone());
            let sent = if a.is_photo() {
                let mut req = self
                    .bot
                    .send_photo(recipient.clone(), file)
                    .disable_notification(opts.silent);
                if let Some(t) = opts.thread {
                    req = req.message_thread_id(ThreadId(MessageId(t)));
                }
                req.await.map(drop)
            } else {
                let mut req = self
                    .bot
                    .send_document(recipient.clone(), file)
                    .disable_notification(opts.silent);
                if let Some(t) = opts.thread {
                    req = req.message_thread_id(ThreadId(MessageId(t)));
                }
                req.await.map(drop)
            };
            sent.map_err(|e| self.classify(e))?;
        }
        Ok(())
    }

    /// The numeric id of a configured chat: the messages in the store carry it.
    async fn chat_id(&self, chat: &str, to: &Recipient) -> Result<i64, SendError> {
        if let Ok(id) = chat.parse::<i64>() {
            return Ok(id);
        }
        if let Some(id) = self.lock_ids().get(chat) {
            return Ok(*id);
        }
        let info = self
            .bot
            .get_chat(to.clone())
            .await
            .map_err(|e| self.classify(e))?;
        self.lock_ids().insert(chat.to_string(), info.id.0);
        Ok(info.id.0)
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.chat_ids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One alert with its buttons. A repeat summary edits the alert's open message in
    /// this chat (count, last time) when there is one that Telegram still lets us edit;
    /// anything else is a new message, remembered with its nonce.
    async fn send_alert(
        &self,
        ledger: &ledger::Ledger,
        chat: &str,
        to: &Recipient,
        opts: SendOpts,
        n: &Notification<'_>,
        alert: &Alert,
    ) -> Result<(), SendError> {
        let now = now_ms();
        let instrument = n.instrument.to_string();
        if n.items[0].repeat.is_some() && n.attachments().next().is_none() {
            let chat_id = self.chat_id(chat, to).await?;
            let id = alert.id;
            let open = ledger::on(ledger, move |s| ledger::latest_in(s, id, chat_id))
                .await
                .map_err(|e| SendError::transient(e.to_string()))?;
            if let Some(shown) = open {
                match self.edit_card(&instrument, alert, &shown, now).await {
                    Ok(true) => {
                        let key = card::state_key(Some(alert), now);
                        let _ = ledger::on(ledger, move |s| {
                            ledger::shown(s, shown.chat_id, shown.message_id, &key, true, now)
                        })
                        .await;
                        return Ok(());
                    }
                    Ok(false) => {
                        // Too old or deleted: the alert gets a new message.
                        let _ = ledger::on(ledger, move |s| {
                            ledger::shown(
                                s,
                                shown.chat_id,
                                shown.message_id,
                                "replaced",
                                false,
                                now,
                            )
                        })
                        .await;
                    }
                    Err(e) => return Err(self.classify(e)),
                }
            }
        }
        let nonce = ledger::nonce();
        let keyboard = card::keyboard(alert, &nonce, &self.snooze, true);
        let fallback = card::keyboard(alert, &nonce, &self.snooze, false);
        let sent = self
            .send_parts(to, opts, n, Some(keyboard), Some(fallback))
            .await?;
        if let Some(m) = sent {
            let shown = ledger::Shown::sent(&m, alert, nonce, now);
            self.lock_ids().insert(chat.to_string(), m.chat.id.0);
            if let Err(e) = ledger::on(ledger, move |s| ledger::record(s, &shown, now)).await {
                tracing::warn!(error = %e, "cannot remember a Telegram message; its buttons will not work");
            }
        }
        self.send_files(to, opts, n).await
    }

    /// Edits a message to show `alert` as it stands; `Ok(false)` when the message can no
    /// longer be edited (deleted, too old). "message is not modified" is success: it
    /// already says so.
    pub(crate) async fn edit_card(
        &self,
        instrument: &str,
        alert: &Alert,
        shown: &ledger::Shown,
        now_ms: i64,
    ) -> Result<bool, RequestError> {
        let key = card::state_key(Some(alert), now_ms);
        let text = card::text(instrument, alert, now_ms);
        let keyboard =
            card::is_open(&key).then(|| card::keyboard(alert, &shown.nonce, &self.snooze, true));
        edit_message(&self.bot, shown, text, keyboard).await
    }
    async fn send_text(
        &self,
        to: &Recipient,
        opts: SendOpts,
        text: String,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<Message, RequestError> {
        send_text(&self.bot, to, opts, text, markup).await
    }

    fn classify(&self, e: RequestError) -> SendError {
        // An HTTP client error may quote the request URL, which holds the token.
        let text = self
            .token
            .scrub(&format!("Telegram: {}", super::probe::with_causes(&e)));
        match &e {
            RequestError::RetryAfter(secs) => SendError {
                retry_after: Some(secs.duration()),
                ..SendError::transient(text)
            },
            RequestError::Api(ApiError::Unknown(desc)) if !is_client_error(desc) => {
                SendError::transient(text)
            }
            RequestError::Api(_) | RequestError::MigrateToChatId(_) => SendError::permanent(text),
            _ => SendError::transient(text),
        }
    }
}

/// A text message in HTML, without link previews.
pub(crate) async fn send_text(
    bot: &Bot,
    to: &Recipient,
    opts: SendOpts,
    text: String,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<Message, RequestError> {
    let mut req = bot
        .send_message(to.clone(), text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(LinkPreviewOptions {
            is_disabled: true,
            url: None,
            prefer_small_media: false,
            prefer_large_media: false,
            show_above_text: false,
        });
    if opts.silent {
        req = req.disable_notification(true);
    }
    if let Some(t) = opts.thread {
        req = req.message_thread_id(ThreadId(MessageId(t)));
    }
    if let Some(m) = markup {
        req = req.reply_markup(m);
    }
    req.await
}

/// Edits a remembered message's text and buttons (`None`: none left); `Ok(false)` when
/// Telegram can no longer edit it.
pub(crate) async fn edit_message(
    bot: &Bot,
    shown: &ledger::Shown,
    text: String,
    keyboard: Option<InlineKeyboardMarkup>,
) -> Result<bool, RequestError> {
    let mut req = bot
        .edit_message_text(ChatId(shown.chat_id), MessageId(shown.message_id), text)
        .parse_mode(ParseMode::Html)
        .link_preview_options(LinkPreviewOptions {
            is_disabled: true,
            url: None,
            prefer_small_media: false,
            prefer_large_media: false,
            show_above_text: false,
        });
    // Without `reply_markup` Telegram removes the inline keyboard.
    if let Some(k) = keyboard {
        req = req.reply_markup(k);
    }
    match req.await {
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(true),
        Err(RequestError::Api(ApiError::MessageCantBeEdited | ApiError::MessageToEditNotFound)) => {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// The URL actions of a single alert as inline URL buttons, two to a row; `None` for a
/// digest (its buttons would not say which alert they belong to) or without any.
fn url_buttons(n: &Notification<'_>) -> Option<InlineKeyboardMarkup> {
    let [item] = n.items.as_slice() else {
        return None;
    };
    let buttons: Vec<InlineKeyboardButton> = item
        .event
        .actions
        .iter()
        .filter_map(|a| {
            let url = a
                .absolute_url()
                .filter(|u| render::telegram_button_url(u))?;
            Some(InlineKeyboardButton::url(
                a.label.clone(),
                url.parse().ok()?,
            ))
        })
        .collect();
    if buttons.is_empty() {
        return None;
    }
    Some(InlineKeyboardMarkup::new(
        buttons.chunks(2).map(<[InlineKeyboardButton]>::to_vec),
    ))
}

/// Telegram's answer to a button it will not show: "Bad Request: inline keyboard button
/// URL '…' is invalid…", or `BUTTON_URL_INVALID`.
fn is_button_refusal(e: &RequestError) -> bool {
    let text = e.to_string();
    text.contains("BUTTON_URL_INVALID") || text.contains("button URL")
}

/// A chat id from the config: a number, or `@channelname`.
pub fn recipient(chat: &str) -> Recipient {
    match chat.parse::<i64>() {
        Ok(id) => Recipient::Id(ChatId(id)),
        Err(_) => Recipient::ChannelUsername(chat.to_string()),
    }
}

fn is_client_error(description: &str) -> bool {
    const PHRASES: [&str; 6] = [
        "Bad Request",
        "Unauthorized",
        "Forbidden",
        "Not Found",
        "Conflict",
        "Request Entity Too Large",
    ];
    PHRASES.iter().any(|p| description.starts_with(p))
}
