//! `check-config --probe` for Telegram: `getMe` (the token works, and whose bot it is),
//! then `getChat` for each configured scope (the chat exists and the bot may see it) —
//! read-only Bot API methods, so nothing is posted.
//!
//! The requests go through the [`Telegram`] messenger's own `Bot`, to the configured
//! `api-url`, so a pass means its sends will reach the same server with the same token.

use std::future::IntoFuture;

use teloxide::prelude::*;
use teloxide::types::ChatFullInfo;

use super::{Telegram, recipient};
use crate::messengers::Service;
use crate::messengers::probe::{Check, with_causes, within};

const TELEGRAM: Service = Service::Telegram;

impl Telegram {
    /// Probes the Bot API, reporting each step as it finishes. A refused token fails
    /// every later request the same way, so the chats are asked for only after it passed.
    pub(super) async fn run_probe(&self, report: &mut dyn FnMut(Check)) {
        let describe = |e: teloxide::RequestError| self.token.scrub(&with_causes(&e));
        match within(self.timeout, self.bot.get_me().into_future(), describe).await {
            Ok(me) => {
                let name = match &me.user.username {
                    Some(username) => format!("@{username}, {}", me.user.first_name),
                    None => me.user.first_name.clone(),
                };
                report(Check::ok(TELEGRAM, "getMe", Some(name)));
            }
            Err(e) => return report(Check::failed(TELEGRAM, "getMe", e)),
        }
        // One after the other: the lines come in the config's order, and a chat limit
        // of the Bot API is no concern for a handful of reads.
        for (scope, s) in &self.scopes {
            let chat = &s.chat;
            let step = format!("getChat {scope} ({chat})");
            let asked = self.bot.get_chat(recipient(chat)).into_future();
            report(match within(self.timeout, asked, describe).await {
                Ok(info) => Check::ok(TELEGRAM, step, Some(describe_chat(&info))),
                Err(e) => Check::failed(TELEGRAM, step, e),
            });
        }
    }
}

/// `channel "Sonix alerts"`, `private chat with Anna (@anna)`.
fn describe_chat(info: &ChatFullInfo) -> String {
    let kind = if info.is_channel() {
        "channel"
    } else if info.is_supergroup() {
        "supergroup"
    } else if info.is_group() {
        "group"
    } else {
        "private chat"
    };
    let name = match (info.title(), info.first_name()) {
        (Some(title), _) => format!("{title:?}"),
        (None, Some(first)) => format!("with {first}"),
        (None, None) => String::new(),
    };
    let mut out = format!("{kind} {name}").trim().to_string();
    if let Some(username) = info.username() {
        out.push_str(&format!(" (@{username})"));
    }
    out
}
