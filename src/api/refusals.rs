//! Audit lines for refused requests, limited: the first few of each ten seconds in full,
//! the rest as one line with their count.
//!
//! A refusal is logged so that someone trying tokens is seen. But a caller can make
//! refusals as fast as the API answers (5,000 a second): logged one by one, they were
//! 4 GB of log an hour, and the journal's own rate limit then dropped the lines that
//! mattered — the audit of real changes among them. So the count is kept, never the
//! flood.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window in which at most [`FULL_LINES`] refusals are logged one by one.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Refusals logged in full per window.
pub const FULL_LINES: u32 = 10;

#[derive(Default)]
pub struct Refusals {
    window: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    start: Option<Instant>,
    logged: u32,
    /// Refusals counted and not logged in this window.
    more: u64,
}

impl Refusals {
    /// Whether this refusal gets a line of its own. If not, it is counted, and the count
    /// is logged when its window ends.
    pub fn admit(self: &Arc<Self>) -> bool {
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        if w.start.is_none_or(|s| now.duration_since(s) >= WINDOW) {
            let more = std::mem::take(&mut w.more);
            *w = Window {
                start: Some(now),
                logged: 0,
                more: 0,
            };
            if more > 0 {
                summary(more);
            }
        }
        if w.logged < FULL_LINES {
            w.logged += 1;
            return true;
        }
        w.more += 1;
        if w.more == 1 {
            // The window's end says how many followed, even if nothing comes after.
            let me = self.clone();
            let end = w.start.map_or(now, |s| s + WINDOW);
            tokio::spawn(async move {
                tokio::time::sleep_until(end.into()).await;
                let more = {
                    let mut w = me.window.lock().unwrap_or_else(|p| p.into_inner());
                    if w.start.is_some_and(|s| s + WINDOW == end) {
                        std::mem::take(&mut w.more)
                    } else {
                        0
                    }
                };
                if more > 0 {
                    summary(more);
                }
            });
        }
        false
    }
}

fn summary(more: u64) {
    tracing::warn!(target: "protowatch::audit", refused = more,
        "… and {more} more API requests refused in the last {} s", WINDOW.as_secs());
}
