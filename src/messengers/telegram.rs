//! Telegram through the Bot API with teloxide, on rustls.
//!
//! Messages go in HTML parse mode, everything escaped, split into parts of at most
//! 4,096 characters (`render::telegram_parts`); attached files follow with sendPhoto
//! (PNG, JPEG) or sendDocument. `telegram.api-url` replaces Telegram's
//! address, for self-hosted Bot API servers and for tests.
//!
//! teloxide reports a Bot API error by its description and drops the HTTP status, so the
//! transient/permanent decision reads the description: Telegram's 4xx descriptions start
//! with the reason phrase ("Bad Request: …", "Forbidden: …"), and every error teloxide
//! knows by name is a 4xx.

mod config;
mod probe;

pub use config::TelegramConfig;

use teloxide::prelude::*;
use teloxide::types::{
    ChatId, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, LinkPreviewOptions, ParseMode,
    Recipient,
};
use teloxide::{ApiError, RequestError};

use super::probe::Check;
use super::render::{self, Notification, TELEGRAM_LIMIT, TgLinks};
use super::{Deliver, SendError};
use crate::config::Secret;

pub struct Telegram {
    pub timeout: std::time::Duration,
    bot: Bot,
    token: Secret,
    scopes: std::collections::BTreeMap<String, String>,
}

impl Telegram {
    pub fn new(cfg: &TelegramConfig) -> Telegram {
        // Telegram's servers carry public certificates: the system's CA store (which the
        // webhooks and Alertmanager clients load, for a site's own CA) would only add a
        // megabyte of parsed certificates to an idle agent.
        let client = teloxide::net::default_reqwest_settings()
            .tls_built_in_native_certs(false)
            .build();
        let bot = match client {
            Ok(client) => Bot::with_client(cfg.token.expose(), client),
            Err(_) => Bot::new(cfg.token.expose()),
        }
        .set_api_url(cfg.api_url.clone());
        Telegram {
            timeout: cfg.timeout,
            bot,
            token: cfg.token.clone(),
            scopes: cfg.scopes.clone(),
        }
    }
}

impl Deliver for Telegram {
    fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    async fn probe(&self, report: &mut dyn FnMut(Check)) {
        self.run_probe(report).await
    }

    async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let chat = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no telegram scope {scope:?}")))?;
        let recipient = recipient(chat);
        let keyboard = url_buttons(n);
        let parts = render::telegram_parts(n, TELEGRAM_LIMIT);
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.into_iter().enumerate() {
            let markup = keyboard.clone().filter(|_| i == last);
            match self.send_text(&recipient, part, markup.clone()).await {
                Ok(()) => {}
                // Telegram judges button URLs by rules of its own (a host it will not
                // link to); the alert still goes out, with its links written in the text.
                Err(e) if markup.is_some() && is_button_refusal(&e) => {
                    tracing::warn!(error = %self.token.scrub(&e.to_string()), "Telegram refused the alert's URL buttons; sending its links as text");
                    let again = render::telegram_parts_with(n, TELEGRAM_LIMIT, TgLinks::Text);
                    for part in again.into_iter().skip(i) {
                        self.send_text(&recipient, part, None)
                            .await
                            .map_err(|e| self.classify(e))?;
                    }
                }
                Err(e) => return Err(self.classify(e)),
            }
        }
        // Files after the text they belong to; a photo is shown inline, anything else
        // as a document.
        for a in n.attachments() {
            let file = InputFile::memory(a.data.clone()).file_name(a.filename.clone());
            let sent = if a.is_photo() {
                self.bot.send_photo(recipient.clone(), file).await.map(drop)
            } else {
                self.bot
                    .send_document(recipient.clone(), file)
                    .await
                    .map(drop)
            };
            sent.map_err(|e| self.classify(e))?;
        }
        Ok(())
    }
}

impl Telegram {
    async fn send_text(
        &self,
        to: &Recipient,
        text: String,
        markup: Option<InlineKeyboardMarkup>,
    ) -> Result<(), RequestError> {
        let mut req = self
            .bot
            .send_message(to.clone(), text)
            .parse_mode(ParseMode::Html)
            .link_preview_options(LinkPreviewOptions {
                is_disabled: true,
                url: None,
                prefer_small_media: false,
                prefer_large_media: false,
                show_above_text: false,
            });
        if let Some(m) = markup {
            req = req.reply_markup(m);
        }
        req.await.map(drop)
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
