//! How many messages one destination may get: at most `per_minute` in any 60 seconds
//! (Telegram allows 20 a minute to a group; a mailbox is not a chat). Nothing is dropped
//! to keep to it: while a destination waits for its next slot, its queue grows, and the
//! next message carries everything queued — the first events shown, the rest counted in
//! a "+N more" line. A burst of 100,000 lines is thus a few messages, each event shown
//! or counted in one of them.
//!
//! While the queue is no longer than the free slots, each event is its own message, at
//! once; only a queue longer than that is sent as a digest.
//!
//! A sliding window over the send times, not a token bucket: a bucket that starts full
//! lets twice the rate through in the first minute, which Telegram answers with 429.

use std::collections::VecDeque;

use crate::config::Service;

const MINUTE_MS: i64 = 60_000;

/// How many events one message shows in full; the rest of a digest is counted. Each
/// service says (a Telegram message should fit one screen, a mail may be read at a desk).
pub fn shown_per_message(service: Service) -> usize {
    service.shown_per_message()
}

pub struct Pacer {
    per_minute: usize,
    sent: VecDeque<i64>,
}

impl Pacer {
    pub fn new(per_minute: u32) -> Pacer {
        Pacer {
            per_minute: per_minute.max(1) as usize,
            sent: VecDeque::new(),
        }
    }

    /// A reload may change the pace; what was sent still counts.
    pub fn set_per_minute(&mut self, per_minute: u32) {
        self.per_minute = per_minute.max(1) as usize;
    }

    /// How many messages may go out now.
    pub fn free(&self, now_ms: i64) -> usize {
        let recent = self
            .sent
            .iter()
            .filter(|t| **t + MINUTE_MS > now_ms)
            .count();
        self.per_minute.saturating_sub(recent)
    }

    /// How long until a message may go out; 0: now.
    pub fn wait_ms(&self, now_ms: i64) -> i64 {
        if self.sent.len() < self.per_minute {
            return 0;
        }
        self.sent
            .front()
            .map_or(0, |first| (first + MINUTE_MS - now_ms).max(0))
    }

    /// Counts a message that went out (or was attempted: a refused send still counts
    /// against the service's limit).
    pub fn record(&mut self, now_ms: i64) {
        self.sent.push_back(now_ms);
        while self
            .sent
            .front()
            .is_some_and(|t| *t + MINUTE_MS <= now_ms || self.sent.len() > self.per_minute)
        {
            self.sent.pop_front();
        }
    }
}

/// What a destination's worker does next with its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing may go out for this many milliseconds (a retry time, or the pace).
    Wait(i64),
    /// Send the oldest this many rows as one message.
    Send(usize),
}

/// The one decision of the delivery loop, kept pure so that tests can drive it with a
/// clock of their own: `queued` rows (the oldest due at `head_due_ms`).
pub fn plan(queued: usize, head_due_ms: i64, pacer: &Pacer, now_ms: i64) -> Plan {
    let wait = (head_due_ms - now_ms).max(pacer.wait_ms(now_ms));
    if wait > 0 {
        Plan::Wait(wait)
    } else if queued <= pacer.free(now_ms) {
        // One by one while the pace allows it...
        Plan::Send(1)
    } else {
        // ...and a longer queue as one digest, keeping the slots for what comes next.
        Plan::Send(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_per_minute_in_any_sixty_seconds() {
        let mut p = Pacer::new(20);
        for i in 0..20 {
            assert_eq!(p.wait_ms(i), 0);
            p.record(i);
        }
        assert_eq!(p.wait_ms(20), MINUTE_MS - 20);
        assert_eq!(p.wait_ms(MINUTE_MS), 0);
        p.record(MINUTE_MS);
        assert_eq!(p.wait_ms(MINUTE_MS), 1);
    }

    #[test]
    fn a_steady_trickle_is_never_held() {
        let mut p = Pacer::new(10);
        for i in 0..100 {
            let now = i * 6_000;
            assert_eq!(p.wait_ms(now), 0);
            p.record(now);
        }
    }
}
