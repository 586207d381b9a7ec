//! Throttling and pacing over a clock the test controls: the pipeline's throttle and the
//! delivery loop's plan, exactly as the agent runs them, driven through a burst of
//! 100,000 error lines and the quarter of an hour after it. What a user checks: the
//! first occurrence goes out at once, repeats are counted, a burst is a few dozen
//! messages per destination, and every event is shown or counted in one of them.

use std::collections::VecDeque;
use std::time::Duration;

use protowatch::config::{Destination, Service};
use protowatch::event::{Event, Message, Severity, dedup_key};
use protowatch::routing::pacing::{Pacer, Plan, plan};
use protowatch::routing::throttle::Throttle;

/// A queued row: how many events it stands for (a repeat summary stands for its count).
struct Row {
    events: u64,
    due_ms: i64,
}

/// One destination: its queue, its pace, and what it was sent.
struct Dest {
    to: Destination,
    queue: VecDeque<Row>,
    pacer: Pacer,
    /// Events per message sent, with the send time.
    sent: Vec<(i64, u64)>,
}

impl Dest {
    fn new(service: Service, per_minute: u32) -> Dest {
        Dest {
            to: Destination {
                service,
                scope: "default".into(),
            },
            queue: VecDeque::new(),
            pacer: Pacer::new(per_minute),
            sent: Vec::new(),
        }
    }

    /// Runs the delivery loop until it has to wait; the service accepts every message.
    fn deliver(&mut self, now: i64) {
        while let Some(head) = self.queue.front() {
            match plan(self.queue.len(), head.due_ms, &self.pacer, now) {
                Plan::Wait(_) => return,
                Plan::Send(n) => {
                    let events = self.queue.drain(..n).map(|r| r.events).sum();
                    self.pacer.record(now);
                    self.sent.push((now, events));
                }
            }
        }
    }

    fn events_sent(&self) -> u64 {
        self.sent.iter().map(|(_, n)| n).sum()
    }
}

fn event(text: &str) -> Event {
    let mut e = Event::message("alarm_major", Severity::Major, Message::plain(text));
    e.source = Some("det".into());
    e.key = dedup_key(&e.name, e.source.as_deref(), text);
    e
}

/// Offers each event to the throttle for every destination, as the pipeline does.
fn offer(throttle: &mut Throttle, dests: &mut [Dest], e: &Event, now: i64) {
    for d in dests.iter_mut() {
        if throttle.offer(&d.to, e, now) {
            d.queue.push_back(Row {
                events: 1,
                due_ms: now,
            });
        }
    }
}

/// The pipeline's once-a-second tick: repeat summaries that are due.
fn tick(throttle: &mut Throttle, dests: &mut [Dest], now: i64) {
    for s in throttle.due(now) {
        let d = dests.iter_mut().find(|d| d.to == s.destination).unwrap();
        d.queue.push_back(Row {
            events: s.repeat.count,
            due_ms: now,
        });
    }
}

fn destinations() -> Vec<Dest> {
    vec![
        Dest::new(Service::Telegram, 20),
        Dest::new(Service::Mail, 10),
    ]
}

#[test]
fn first_occurrence_at_once_repeats_counted_and_summarised() {
    let mut throttle = Throttle::new(Duration::from_secs(600));
    let mut dests = destinations();
    let e = event("HV trip on channel 3");
    // The detector fails every 2 s for 25 minutes.
    let mut now = 0;
    while now < 25 * 60_000 {
        offer(&mut throttle, &mut dests, &e, now);
        if now % 1000 == 0 {
            tick(&mut throttle, &mut dests, now);
        }
        for d in &mut dests {
            d.deliver(now);
        }
        now += 2000;
    }
    for d in &dests {
        // Immediately, then one summary per 10 minutes: at 10 and at 20 minutes.
        let times: Vec<i64> = d.sent.iter().map(|(t, _)| *t).collect();
        assert_eq!(times, vec![0, 600_000, 1_200_000], "{}", d.to);
        // Counted: the occurrences from 2 s to 600 s (the one at 600 s, the window's
        // end, still belongs to it).
        assert_eq!(d.sent[1].1, 300, "repeats in the first 10 minutes");
    }
    // The last five minutes are counted, and go out when their window ends.
    tick(&mut throttle, &mut dests, 30 * 60_000);
    for d in &mut dests {
        d.deliver(30 * 60_000);
        assert_eq!(
            d.events_sent(),
            750,
            "{}: every occurrence accounted for",
            d.to
        );
    }
}

#[test]
fn a_burst_of_100000_lines_is_a_few_dozen_messages_with_every_event_accounted_for() {
    let mut throttle = Throttle::new(Duration::from_secs(600));
    let mut dests = destinations();
    // 100,000 lines in 4 s, from 2,000 different failures (distinct dedup keys: letters,
    // since digits fold), committed in batches of 500 lines as the pipeline does.
    let key_words: Vec<String> = (0..2000)
        .map(|i| {
            let (a, b, c) = (i % 26, (i / 26) % 26, i / 676);
            format!(
                "{}{}{}",
                (b'a' + a as u8) as char,
                (b'a' + b as u8) as char,
                (b'a' + c as u8) as char
            )
        })
        .collect();
    let lines = 100_000u64;
    let mut now = 0;
    for batch in 0..(lines / 500) {
        for i in 0..500 {
            let n = batch * 500 + i;
            let e = event(&format!(
                "module {} failed",
                key_words[(n * 7919 % 2000) as usize]
            ));
            offer(&mut throttle, &mut dests, &e, now);
        }
        now = (batch as i64 + 1) * 20;
        if now % 1000 == 0 {
            tick(&mut throttle, &mut dests, now);
        }
        for d in &mut dests {
            d.deliver(now);
        }
    }
    // Then a quarter of an hour of quiet, second by second.
    while now < 15 * 60_000 {
        now += 1000;
        tick(&mut throttle, &mut dests, now);
        for d in &mut dests {
            d.deliver(now);
        }
    }
    assert_eq!(throttle.pending_repeats(), 0);
    for d in &dests {
        let messages = d.sent.len();
        eprintln!("{}: {messages} messages for {lines} events", d.to);
        assert!(d.queue.is_empty(), "{}: {} rows left", d.to, d.queue.len());
        assert_eq!(d.events_sent(), lines, "{}: events unaccounted for", d.to);
        assert!(messages <= 50, "{}: {messages} messages", d.to);
        // The first failures went out at once, with the first commit.
        assert_eq!(d.sent[0].0, 20);
        // Never more than the pace in any minute.
        let per_minute = if d.to.service == Service::Telegram {
            20
        } else {
            10
        };
        for (i, (t, _)) in d.sent.iter().enumerate() {
            let in_minute = d.sent[i..]
                .iter()
                .take_while(|(u, _)| *u < t + 60_000)
                .count();
            assert!(
                in_minute <= per_minute,
                "{}: {in_minute} in the minute from {t}",
                d.to
            );
        }
    }
}

#[test]
fn a_steady_trickle_of_different_events_goes_out_one_by_one() {
    let mut throttle = Throttle::new(Duration::from_secs(600));
    let mut dests = destinations();
    // One new failure every 10 s: within both paces, so each is its own message.
    for i in 0..60i64 {
        let now = i * 10_000;
        let e = event(
            &format!("failure {}", (b'a' + (i % 26) as u8) as char).repeat(1 + i as usize / 26),
        );
        offer(&mut throttle, &mut dests, &e, now);
        for d in &mut dests {
            d.deliver(now);
        }
    }
    for d in &dests {
        assert_eq!(d.sent.len(), 60, "{}", d.to);
        assert!(d.sent.iter().all(|(_, n)| *n == 1));
    }
}
