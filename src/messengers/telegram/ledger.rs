//! What the agent remembers of its Telegram messages, in the state database: which
//! message (chat, message id) shows which alert, the nonce its buttons carry, what it
//! shows now (so that a change is edited in once), and the `getUpdates` offset.
//!
//! It is in the store, not in memory, because a press may come hours later and after a
//! restart: the message's buttons must still work, and an update handled before the
//! restart must not be handled again.

use rusqlite::{OptionalExtension, params};

use crate::store::{Store, StoreError};

/// `meta` key of the next `getUpdates` offset.
const OFFSET_KEY: &str = "telegram.update_offset";

/// Closed messages (their alert dismissed or gone) are forgotten after this long.
const KEEP_CLOSED_MS: i64 = 7 * 24 * 3600 * 1000;

/// One message that shows an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub chat_id: i64,
    pub message_id: i32,
    pub alert_id: i64,
    pub nonce: String,
    /// The alert's state as the message shows it ([`super::card::state_key`]).
    pub shown: String,
}

impl Shown {
    /// The message `m` just sent for `alert`, its buttons carrying `nonce`.
    pub fn sent(
        m: &teloxide::types::Message,
        alert: &crate::event::alert::Alert,
        nonce: String,
        now_ms: i64,
    ) -> Self {
        Shown {
            chat_id: m.chat.id.0,
            message_id: m.id.0,
            alert_id: alert.id,
            nonce,
            shown: super::card::state_key(Some(alert), now_ms),
        }
    }
}

/// The store as the bot's side and the sender share it; its calls are short.
pub type Ledger = crate::messengers::runtime::Shared;

/// Runs a store call off the async threads.
pub async fn on<T: Send + 'static>(
    ledger: &Ledger,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    crate::messengers::runtime::on(ledger, move |s| f(s)).await
}

/// A fresh nonce for a message's buttons: 64 random bits, as 16 hex digits.
pub fn nonce() -> String {
    format!("{:016x}", fastrand::u64(..))
}

pub fn record(store: &Store, s: &Shown, now_ms: i64) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "INSERT OR REPLACE INTO telegram_messages
                 (chat_id, message_id, alert_id, nonce, open, shown, sent_at, edited_at)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?6)",
            params![
                s.chat_id,
                s.message_id,
                s.alert_id,
                s.nonce,
                s.shown,
                now_ms
            ],
        )
        .map(drop)
    })
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Shown> {
    Ok(Shown {
        chat_id: r.get(0)?,
        message_id: r.get(1)?,
        alert_id: r.get(2)?,
        nonce: r.get(3)?,
        shown: r.get(4)?,
    })
}

const COLUMNS: &str = "chat_id, message_id, alert_id, nonce, shown";

/// The newest open message of an alert in a chat: the one a repeat edits.
pub fn latest_in(store: &Store, alert_id: i64, chat_id: i64) -> Result<Option<Shown>, StoreError> {
    store.with_conn(|c| {
        c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM telegram_messages
                 WHERE alert_id = ?1 AND chat_id = ?2 AND open = 1
                 ORDER BY sent_at DESC, message_id DESC LIMIT 1"
            ),
            params![alert_id, chat_id],
            from_row,
        )
        .optional()
    })
}

/// The open message whose buttons carry this alert id and nonce: a press on anything
/// else (an old message, a forged button) finds none.
pub fn find(
    store: &Store,
    chat_id: i64,
    alert_id: i64,
    nonce: &str,
) -> Result<Option<Shown>, StoreError> {
    store.with_conn(|c| {
        c.query_row(
            &format!(
                "SELECT {COLUMNS} FROM telegram_messages
                 WHERE chat_id = ?1 AND alert_id = ?2 AND nonce = ?3 AND open = 1"
            ),
            params![chat_id, alert_id, nonce],
            from_row,
        )
        .optional()
    })
}

/// Every open message, of one alert or of all.
pub fn open(store: &Store, alert_id: Option<i64>) -> Result<Vec<Shown>, StoreError> {
    store.with_conn(|c| {
        let mut stmt = c.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM telegram_messages
             WHERE open = 1 AND (?1 IS NULL OR alert_id = ?1)"
        ))?;
        let rows = stmt.query_map([alert_id], from_row)?;
        rows.collect()
    })
}

/// Notes what a message shows after an edit; `open: false` when it has no buttons left.
pub fn shown(
    store: &Store,
    chat_id: i64,
    message_id: i32,
    shown: &str,
    open: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "UPDATE telegram_messages SET shown = ?3, open = ?4, edited_at = ?5
             WHERE chat_id = ?1 AND message_id = ?2",
            params![chat_id, message_id, shown, open, now_ms],
        )
        .map(drop)
    })
}

/// Forgets messages closed long ago.
pub fn purge(store: &Store, now_ms: i64) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "DELETE FROM telegram_messages WHERE open = 0 AND edited_at < ?1",
            [now_ms - KEEP_CLOSED_MS],
        )
        .map(drop)
    })
}

/// The offset of the next `getUpdates`: one past the last update handled.
pub fn offset(store: &Store) -> Result<Option<i32>, StoreError> {
    store.with_conn(|c| {
        c.query_row("SELECT value FROM meta WHERE key = ?1", [OFFSET_KEY], |r| {
            r.get::<_, String>(0)
        })
        .optional()
        .map(|v| v.and_then(|v| v.parse().ok()))
    })
}

pub fn set_offset(store: &Store, offset: i32) -> Result<(), StoreError> {
    store.with_conn(|c| {
        c.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![OFFSET_KEY, offset.to_string()],
        )
        .map(drop)
    })
}
