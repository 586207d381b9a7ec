//! The bot's commands: `/alerts` (the active alerts, each with its buttons, a page at a
//! time), `/ack N` ("I'm on it"), `/silence 2h <text>` and `/silences` (made and listed
//! through the agent's [`Host`](crate::messengers::runtime::Host), as the API and the
//! CLI make them), `/status` (the handover digest's summary now, then files followed
//! and their lag, the outbox, each destination's state) and `/help`. Registered with
//! `setMyCommands` so that Telegram offers them. Only operators get answers; anyone
//! else is told so, with their own user id (what an operator needs to add them), and
//! nothing they ask for is done.

use teloxide::types::{BotCommand, Message, MessageId, Recipient, ThreadId};

use super::bot::Side;
use super::ledger;
use super::{SendOpts, card, render_escape as escape};
use crate::messengers::runtime;
use crate::store::now_ms;

/// Alerts per page of `/alerts`: each is a message of its own, with its buttons.
const PAGE: usize = 5;

pub fn list() -> Vec<BotCommand> {
    vec![
        BotCommand::new("alerts", "Active alerts, with their buttons"),
        BotCommand::new("ack", "Acknowledge alert N: I'm on it"),
        BotCommand::new(
            "silence",
            "Silence alerts whose text holds <text>: /silence 2h <text>",
        ),
        BotCommand::new("silences", "Silences in force"),
        BotCommand::new("status", "Summary of the last day, files followed, outbox"),
        BotCommand::new("help", "What this bot does"),
    ]
}

/// A message to the bot: a command or nothing.
pub(super) async fn on_message(side: &Side, m: Message) {
    let Some(text) = m.text() else {
        return;
    };
    let Some(command) = text
        .split_whitespace()
        .next()
        .filter(|c| c.starts_with('/'))
    else {
        return;
    };
    // `/alerts@protowatch_bot` in a group names the bot.
    let command = command
        .split('@')
        .next()
        .unwrap_or(command)
        .to_ascii_lowercase();
    let arg = text.split_whitespace().nth(1);
    let reply_to = Reply {
        chat: Recipient::Id(m.chat.id),
        opts: SendOpts {
            thread: m.thread_id.map(|ThreadId(MessageId(t))| t),
            silent: false,
        },
    };
    let Some(user) = m.from.as_ref() else {
        return;
    };
    if !first_in_a_while(side, m.chat.id.0) {
        // Told already: counted by nobody, answered by nothing (see `REFUSAL_EVERY`).
        if !side.operator_quietly(user) {
            return;
        }
    } else if !side.is_operator(user, &command) {
        reply_to
            .send(
                side,
                format!(
                    "Only this instrument's operators may use this bot. Your Telegram user id is <code>{}</code>: \
                     an operator can add it to <code>telegram.operators</code>.",
                    user.id.0
                ),
            )
            .await;
        return;
    } else {
        // An operator: the chat's refusal clock is not theirs.
        forget(side, m.chat.id.0);
    }
    // The alerts are for the chats they are sent to, and for an operator alone: not
    // for any group an operator happens to write in.
    if !m.chat.is_private() && !configured_chat(side, &m.chat) {
        tracing::warn!(target: "protowatch::audit", chat_id = m.chat.id.0, user_id = user.id.0,
            command = %command, "Telegram: a command in a chat that is not one of telegram's scopes; not answered");
        return;
    }
    match command.as_str() {
        "/alerts" => {
            alerts_page(
                side,
                &reply_to,
                arg.and_then(|p| p.parse().ok()).unwrap_or(1),
            )
            .await
        }
        "/status" => status(side, &reply_to).await,
        "/ack" => {
            let answer = match arg.and_then(|a| a.trim_start_matches('#').parse::<i64>().ok()) {
                Some(id) => {
                    let said = side
                        .acknowledge(id, now_ms(), &super::bot::actor(user))
                        .await;
                    side.review(Some(id)).await;
                    format!("Alert {id}: {}", escape(&said))
                }
                None => "Which alert? <code>/ack N</code>, N as /alerts shows it.".into(),
            };
            reply_to.send(side, answer).await;
        }
        "/silence" => {
            let answer = silence(side, text, &super::bot::actor(user)).await;
            reply_to.send(side, answer).await;
        }
        "/silences" => {
            let answer = silences(side).await;
            reply_to.send(side, answer).await;
        }
        _ => {
            reply_to.send(side, help(side)).await;
        }
    }
}

/// How often a chat is told that only operators may use the bot.
pub(super) const REFUSAL_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether `chat` was not refused within [`REFUSAL_EVERY`]; marks it refused now if so.
fn first_in_a_while(side: &Side, chat: i64) -> bool {
    let mut refused = side.refused.lock().unwrap_or_else(|p| p.into_inner());
    let now = std::time::Instant::now();
    refused.retain(|_, at| now.duration_since(*at) < REFUSAL_EVERY);
    match refused.get(&chat) {
        Some(_) => false,
        None => {
            refused.insert(chat, now);
            true
        }
    }
}

fn forget(side: &Side, chat: i64) {
    side.refused
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&chat);
}

/// Whether `chat` is one of the chats `telegram.scopes` sends to (by id or `@name`).
fn configured_chat(side: &Side, chat: &teloxide::types::Chat) -> bool {
    let Some(tg) = side.telegram() else {
        return false;
    };
    let id = chat.id.0.to_string();
    let name = chat
        .username()
        .map(|u| format!("@{}", u.to_ascii_lowercase()));
    tg.scopes
        .values()
        .any(|s| s.chat == id || name.as_deref() == Some(s.chat.to_ascii_lowercase().as_str()))
}

struct Reply {
    chat: Recipient,
    opts: SendOpts,
}

impl Reply {
    async fn send(&self, side: &Side, text: String) -> Option<Message> {
        self.send_with(side, text, None).await
    }

    async fn send_with(
        &self,
        side: &Side,
        text: String,
        keyboard: Option<teloxide::types::InlineKeyboardMarkup>,
    ) -> Option<Message> {
        match super::send_text(&side.bot, &self.chat, self.opts, text, keyboard).await {
            Ok(m) => Some(m),
            Err(e) => {
                let e = side
                    .telegram()
                    .map_or_else(String::new, |t| t.token.scrub(&e.to_string()));
                tracing::warn!(error = %e, "Telegram: cannot answer a command");
                None
            }
        }
    }
}

fn help(side: &Side) -> String {
    let snooze: Vec<String> = side
        .telegram()
        .map(|t| {
            t.snooze
                .iter()
                .map(|d| format!("Snooze {}", card::duration_label(*d)))
                .collect()
        })
        .unwrap_or_default();
    format!(
        "<b>protowatch</b> · {}\n\
         Each alert comes with buttons: <b>Dismiss</b> ends it (its message then says who did), \
         {} hold its repeats back for that long; the alert's own links and actions follow.\n\n\
         /alerts — the active alerts, with their buttons\n\
         /ack N — acknowledge alert N: you are on it (escalation stops, repeats are held back)\n\
         /silence 2h text — for 2 h, alerts whose text holds <i>text</i> are recorded, not sent\n\
         /silences — the silences in force\n\
         /status — the last day's summary, files followed, outbox, destinations\n\
         /help — this text",
        escape(&side.instrument()),
        if snooze.is_empty() {
            "Snooze".to_string()
        } else {
            snooze.join(", ")
        }
    )
}

async fn alerts_page(side: &Side, to: &Reply, page: usize) {
    let now = now_ms();
    let alerts = side.alerts.clone();
    let list = match side.db(move |s| alerts.list(s, now, false)).await {
        Ok(l) => l,
        Err(e) => {
            to.send(
                side,
                format!("Cannot read the alerts: {}", escape(&e.to_string())),
            )
            .await;
            return;
        }
    };
    if list.is_empty() {
        to.send(side, "No active alerts.".into()).await;
        return;
    }
    let pages = list.len().div_ceil(PAGE);
    let page = page.clamp(1, pages);
    to.send(
        side,
        format!(
            "<b>{} active alerts</b> · page {page} of {pages}",
            list.len()
        ),
    )
    .await;
    let snooze = side.telegram().map(|t| t.snooze).unwrap_or_default();
    let instrument = side.instrument();
    for alert in list.iter().skip((page - 1) * PAGE).take(PAGE) {
        let nonce = ledger::nonce();
        let text = card::text(&instrument, alert, now);
        let keyboard = card::keyboard(alert, &nonce, &snooze, true);
        let Some(m) = to.send_with(side, text, Some(keyboard)).await else {
            continue;
        };
        let shown = ledger::Shown::sent(&m, alert, nonce, now);
        if let Err(e) = side.db(move |s| ledger::record(s, &shown, now)).await {
            tracing::warn!(error = %e, "Telegram: cannot remember a message");
        }
    }
    if page < pages {
        to.send(side, format!("More: /alerts {}", page + 1)).await;
    }
}

async fn status(side: &Side, to: &Reply) {
    let now = now_ms();
    let host = side.host.clone();
    let read = side.db(move |s| host.status(s)).await;
    let status = match read {
        Ok(r) => r,
        Err(e) => {
            to.send(
                side,
                format!("Cannot read the state: {}", escape(&e.to_string())),
            )
            .await;
            return;
        }
    };
    let host = side.host.clone();
    let summary = match side.db(move |s| host.summary(s, now)).await {
        Ok(m) => html(&m),
        Err(e) => format!("Cannot gather the summary: {}", escape(&e.to_string())),
    };
    let mut out = format!(
        "{}\n\n<b>Agent</b> · {}\n\n<b>Files followed</b>",
        summary.trim_end(),
        escape(&side.instrument())
    );
    let followed = &status.files;
    if followed.is_empty() {
        out.push_str("\nnone");
    }
    for (path, offset) in followed.iter().take(20) {
        let size = std::fs::metadata(path).map(|m| m.len()).ok();
        let lag = match size {
            Some(s) if s > *offset => format!("{} bytes behind", s - offset),
            Some(_) => "up to date".into(),
            None => "not readable now".into(),
        };
        out.push_str(&format!(
            "\n• {} — {lag}",
            escape(&path.display().to_string())
        ));
    }
    if followed.len() > 20 {
        out.push_str(&format!("\n… and {} more", followed.len() - 20));
    }
    out.push_str("\n\n<b>Outbox</b>");
    for d in &status.destinations {
        let name = d.to_string();
        let queued = status.depth.iter().find(|(n, _, _)| *n == name);
        let state = match (queued, status.errors.iter().find(|(n, _)| *n == name)) {
            (_, Some((_, e))) => format!("retrying: {}", escape(e)),
            (Some((_, n, oldest)), None) => {
                format!("{n} queued, oldest {} s", (now - oldest).max(0) / 1000)
            }
            (None, None) => "ok, nothing queued".into(),
        };
        out.push_str(&format!("\n• {} — {state}", escape(&name)));
    }
    if status.dead > 0 {
        out.push_str(&format!(
            "\n{} undeliverable (dead) rows: <code>protowatch outbox</code>",
            status.dead
        ));
    }
    to.send(side, out).await;
}

/// A message's spans as Telegram's HTML.
fn html(m: &crate::event::Message) -> String {
    m.spans
        .iter()
        .map(|s| {
            // A span's closing newline after its tag: the tag ends on the line it began.
            let body = s.text.trim_end_matches('\n');
            let tail = &s.text[body.len()..];
            let t = escape(body);
            match (s.bold, s.italic) {
                _ if t.is_empty() => tail.to_string(),
                (true, _) => format!("<b>{t}</b>{tail}"),
                (false, true) => format!("<i>{t}</i>{tail}"),
                _ => format!("{t}{tail}"),
            }
        })
        .collect()
}

/// `/silence 2h <text>`: a silence of the alerts whose text holds `<text>`.
async fn silence(side: &Side, command: &str, by: &str) -> String {
    const USAGE: &str = "<code>/silence 2h text</code>: for 2 h, alerts whose text holds <i>text</i> are recorded, not sent.";
    let mut words = command.trim().splitn(2, char::is_whitespace).skip(1);
    let rest = words.next().unwrap_or("").trim_start();
    let mut parts = rest.splitn(2, char::is_whitespace);
    let duration = parts
        .next()
        .and_then(crate::settings::check::parse_duration);
    let text = parts.next().unwrap_or("").trim().to_string();
    let Some(duration) = duration.filter(|d| !d.is_zero()) else {
        return format!("How long? {USAGE}");
    };
    if text.is_empty() {
        return format!("Which alerts? {USAGE}");
    }
    let (host, by, now) = (side.host.clone(), by.to_string(), now_ms());
    let t = text.clone();
    match runtime::on(&side.ledger, move |s| {
        host.silence(s, &t, duration, now, &by)
    })
    .await
    {
        Ok(Ok(id)) => format!(
            "Silence {id}: alerts whose text holds “{}” are recorded, not sent, for {} (until {}). \
             What is still active when it ends is sent once.",
            escape(&text),
            card::duration_label(duration),
            card::clock(now.saturating_add(duration.as_millis() as i64))
        ),
        Ok(Err(why)) => format!("No silence: {}", escape(&why)),
        Err(e) => format!("No silence: {}", escape(&e.to_string())),
    }
}

/// `/silences`: those in force or coming.
async fn silences(side: &Side) -> String {
    let (host, now) = (side.host.clone(), now_ms());
    let list = match side.db(move |s| host.silences(s, now)).await {
        Ok(l) => l,
        Err(e) => return format!("Cannot read the silences: {}", escape(&e.to_string())),
    };
    if list.is_empty() {
        return "No silences in force.".into();
    }
    let mut out = format!("<b>{} silences</b>", list.len());
    for s in list.iter().take(30) {
        let when = if s.starts_at_ms > now {
            format!("starts {}, ", card::clock(s.starts_at_ms))
        } else {
            String::new()
        };
        out.push_str(&format!(
            "\n• <b>{}</b> {} — {when}ends {} · by {} · held {}{}",
            s.id,
            escape(&s.matchers),
            card::clock(s.ends_at_ms),
            escape(&s.created_by),
            s.held,
            if s.comment.is_empty() {
                String::new()
            } else {
                format!(" · {}", escape(&s.comment))
            }
        ));
    }
    if list.len() > 30 {
        out.push_str(&format!("\n… and {} more", list.len() - 30));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Message, Span};

    #[test]
    fn a_summary_is_telegram_html_with_tags_closed_on_their_line() {
        let m = Message {
            spans: vec![
                Span {
                    text: "Status: now\n".into(),
                    bold: true,
                    ..Span::default()
                },
                Span {
                    text: "1 < 2 & more\n".into(),
                    ..Span::default()
                },
                Span {
                    text: "\n".into(),
                    bold: true,
                    ..Span::default()
                },
            ],
            ..Message::default()
        };
        assert_eq!(html(&m), "<b>Status: now</b>\n1 &lt; 2 &amp; more\n\n");
    }
}
