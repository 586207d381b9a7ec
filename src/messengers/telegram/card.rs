//! An alert as a Telegram message that can be acted on: its text with a status line
//! (seen how often, acknowledged, snoozed, dismissed by whom, expired), its inline
//! keyboard (Acknowledge first, while nobody has), and the
//! `callback_data` its buttons carry.
//!
//! `callback_data` is at most 64 bytes (the Bot API's limit) and names the alert and
//! the message's nonce, never more: what a press does is looked up again when it comes,
//! so a stale or forged press finds nothing to act on.

use std::time::Duration;

use chrono::{Local, TimeZone};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::render::{self, TELEGRAM_LIMIT, TgLinks};
use crate::event::alert::Alert;
use crate::messengers::render::Notification;

/// The Bot API's limit on `callback_data`.
pub const MAX_CALLBACK_BYTES: usize = 64;

/// The most buttons for the alert's own actions: a phone shows them without scrolling.
const MAX_ACTION_BUTTONS: usize = 6;

/// What a button asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Press {
    /// "I'm on it": `alerts::acknowledge`.
    Ack,
    Dismiss,
    /// The n-th of `telegram.snooze_s`.
    Snooze(usize),
    /// The n-th of the alert's actions (a `__server` one).
    Action(usize),
}

/// A press as its button carries it: what, on which alert, from which message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub press: Press,
    pub alert_id: i64,
    pub nonce: String,
}

impl Callback {
    /// `k:<alert>:<nonce>`, `d:<alert>:<nonce>`, `s<i>:<alert>:<nonce>`,
    /// `a<i>:<alert>:<nonce>`.
    pub fn data(&self) -> String {
        let verb = match self.press {
            Press::Ack => "k".to_string(),
            Press::Dismiss => "d".to_string(),
            Press::Snooze(i) => format!("s{i}"),
            Press::Action(i) => format!("a{i}"),
        };
        let data = format!("{verb}:{}:{}", self.alert_id, self.nonce);
        debug_assert!(data.len() <= MAX_CALLBACK_BYTES);
        data
    }

    /// Reads what [`Callback::data`] wrote; `None` for anything else.
    pub fn parse(data: &str) -> Option<Callback> {
        let mut it = data.splitn(3, ':');
        let (verb, id, nonce) = (it.next()?, it.next()?, it.next()?);
        let press = match verb {
            "k" => Press::Ack,
            "d" => Press::Dismiss,
            v => {
                let (kind, n) = v.split_at_checked(1)?;
                let n: usize = n.parse().ok()?;
                match kind {
                    "s" => Press::Snooze(n),
                    "a" => Press::Action(n),
                    _ => return None,
                }
            }
        };
        let nonce_ok = nonce.len() == 16 && nonce.bytes().all(|b| b.is_ascii_hexdigit());
        nonce_ok
            .then(|| Callback {
                press,
                alert_id: 0,
                nonce: nonce.to_string(),
            })
            .and_then(|mut c| {
                c.alert_id = id.parse().ok()?;
                Some(c)
            })
    }
}

/// "1h", "4h", "30m", "1d".
pub fn duration_label(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// The alert's state as a message shows it; a message is edited when this changes.
pub fn state_key(alert: Option<&Alert>, now_ms: i64) -> String {
    match alert {
        None => "gone".into(),
        Some(a) if a.dismissed => "dismissed".into(),
        Some(a) if !a.is_active(now_ms) => "expired".into(),
        Some(a) => {
            let base = match a.snoozed_until_ms {
                Some(t) if t > now_ms => format!("snoozed:{t}"),
                _ => "active".into(),
            };
            // Acknowledged: the message says by whom, and loses its Acknowledge button.
            match a.acknowledged_at_ms {
                Some(t) => format!("{base}:ack:{t}"),
                None => base,
            }
        }
    }
}

/// Whether a message in this state keeps its buttons.
pub fn is_open(key: &str) -> bool {
    key.starts_with("active") || key.starts_with("snoozed:")
}

pub(super) fn clock(ms: i64) -> String {
    match Local.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(t) => t.format("%H:%M:%S").to_string(),
        _ => String::new(),
    }
}

/// Who did it, as a message says it: `@anna` for `telegram:@anna (42)`.
fn who(by: Option<&str>) -> String {
    let by = by.unwrap_or("someone");
    let by = by.strip_prefix("telegram:").unwrap_or(by);
    let by = by.split(" (").next().unwrap_or(by);
    crate::messengers::render::escape(by)
}

/// The status line under the alert's text (HTML).
pub fn status_line(alert: &Alert, now_ms: i64) -> String {
    let mut lines = Vec::new();
    if alert.times_seen > 1 {
        lines.push(format!(
            "🔁 Seen {} times · last {}",
            alert.times_seen,
            clock(alert.last_seen_ms)
        ));
    }
    match state_key(Some(alert), now_ms).as_str() {
        "dismissed" => lines.push(format!(
            "✅ <b>Dismissed</b> by {} at {}",
            who(alert.dismissed_by.as_deref()),
            clock(alert.dismissed_at_ms.unwrap_or(now_ms))
        )),
        "expired" => lines.push("⌛ <b>Expired</b>".into()),
        k if k.starts_with("snoozed:") => lines.push(format!(
            "💤 <b>Snoozed</b> until {} by {}",
            clock(alert.snoozed_until_ms.unwrap_or(now_ms)),
            who(alert.snoozed_by.as_deref())
        )),
        _ => {}
    }
    if alert.acknowledged_at_ms.is_some() && state_key(Some(alert), now_ms).contains(":ack:") {
        lines.push(format!(
            "👀 <b>Acknowledged</b> by {} at {}",
            who(alert.acknowledged_by.as_deref()),
            clock(alert.acknowledged_at_ms.unwrap_or(now_ms))
        ));
    }
    lines.join("\n")
}

/// The alert's message as it stands now: its text (the last part, where the buttons
/// are, if it is long) and the status line.
pub fn text(instrument: &str, alert: &Alert, now_ms: i64) -> String {
    let mut event = alert.to_event();
    if let chrono::LocalResult::Single(t) = chrono::Utc.timestamp_millis_opt(alert.last_seen_ms) {
        event.time = t;
    }
    let n = Notification::single(instrument, &event);
    let status = status_line(alert, now_ms);
    // Room for the status line, counted as Telegram counts (UTF-16 units).
    let room = TELEGRAM_LIMIT.saturating_sub(status.encode_utf16().count() + 2);
    let parts = render::telegram_parts_with(&n, room, TgLinks::Buttons);
    let body = parts.last().cloned().unwrap_or_default();
    if status.is_empty() {
        body
    } else {
        format!("{body}\n\n{status}")
    }
}

/// The buttons of an open alert message: Acknowledge (while nobody has), Dismiss and
/// each Snooze first, then the alert's URL actions (as URL buttons) and `__server`
/// actions, two to a row. Acknowledge, dismiss and snooze actions of the alert itself
/// are the first row already.
pub fn keyboard(
    alert: &Alert,
    nonce: &str,
    snooze: &[Duration],
    with_urls: bool,
) -> InlineKeyboardMarkup {
    let cb = |press: Press| {
        Callback {
            press,
            alert_id: alert.id,
            nonce: nonce.to_string(),
        }
        .data()
    };
    let mut first = Vec::new();
    if alert.acknowledged_at_ms.is_none() {
        first.push(InlineKeyboardButton::callback(
            "Acknowledge",
            cb(Press::Ack),
        ));
    }
    first.push(InlineKeyboardButton::callback(
        "Dismiss",
        cb(Press::Dismiss),
    ));
    for (i, d) in snooze.iter().enumerate() {
        first.push(InlineKeyboardButton::callback(
            format!("Snooze {}", duration_label(*d)),
            cb(Press::Snooze(i)),
        ));
    }
    let mut more = Vec::new();
    for (i, a) in alert.actions.iter().enumerate() {
        if more.len() >= MAX_ACTION_BUTTONS {
            break;
        }
        if matches!(a.action.as_str(), "__ack" | "__dismiss" | "__snooze") {
            continue;
        }
        if a.action.starts_with("__") {
            more.push(InlineKeyboardButton::callback(
                a.label.clone(),
                cb(Press::Action(i)),
            ));
        } else if with_urls
            && let Some(url) = a.absolute_url().filter(|u| render::telegram_button_url(u))
            && let Ok(url) = url.parse()
        {
            more.push(InlineKeyboardButton::url(a.label.clone(), url));
        }
    }
    let mut rows = vec![first];
    rows.extend(more.chunks(2).map(<[InlineKeyboardButton]>::to_vec));
    InlineKeyboardMarkup::new(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_data_round_trips_and_fits() {
        let c = Callback {
            press: Press::Snooze(1),
            alert_id: i64::MAX,
            nonce: "0123456789abcdef".into(),
        };
        assert!(c.data().len() <= MAX_CALLBACK_BYTES);
        assert_eq!(Callback::parse(&c.data()), Some(c));
        let k = Callback {
            press: Press::Ack,
            alert_id: 7,
            nonce: "0123456789abcdef".into(),
        };
        assert_eq!(Callback::parse(&k.data()), Some(k));
        for bad in [
            "",
            "d",
            "d:1",
            "d:x:0123456789abcdef",
            "x1:1:0123456789abcdef",
            "d:1:short",
            "s:1:0123456789abcdef",
        ] {
            assert_eq!(Callback::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(duration_label(Duration::from_secs(3600)), "1h");
        assert_eq!(duration_label(Duration::from_secs(1800)), "30m");
        assert_eq!(duration_label(Duration::from_secs(86400)), "1d");
    }
}
