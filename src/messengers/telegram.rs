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

mod probe;

use teloxide::prelude::*;
use teloxide::types::{ChatId, InputFile, LinkPreviewOptions, ParseMode, Recipient};
use teloxide::{ApiError, RequestError};

use super::SendError;
use super::render::{self, Notification, TELEGRAM_LIMIT};
use crate::config::{Secret, TelegramConfig};

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

    pub async fn send(&self, scope: &str, n: &Notification<'_>) -> Result<(), SendError> {
        let chat = self
            .scopes
            .get(scope)
            .ok_or_else(|| SendError::permanent(format!("no telegram scope {scope:?}")))?;
        let recipient = recipient(chat);
        for part in render::telegram_parts(n, TELEGRAM_LIMIT) {
            self.bot
                .send_message(recipient.clone(), part)
                .parse_mode(ParseMode::Html)
                .link_preview_options(LinkPreviewOptions {
                    is_disabled: true,
                    url: None,
                    prefer_small_media: false,
                    prefer_large_media: false,
                    show_above_text: false,
                })
                .await
                .map_err(|e| self.classify(e))?;
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

    fn classify(&self, e: RequestError) -> SendError {
        // An HTTP client error may quote the request URL, which holds the token.
        let text = self.token.scrub(&format!("Telegram: {e}"));
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
