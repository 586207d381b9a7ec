//! Escalation policies: "after D, if nobody acknowledged or dismissed, tell these" —
//! when each step of a policy is due for an alert, given what already fired.
//!
//! Pure arithmetic over the alert's creation time, the number of steps already fired
//! (kept in the store with the alert) and its acknowledgement, so that a restart
//! computes the same answer as the agent that went down: a step is fired once, a step
//! that fell due while the agent was down fires once at start, and a repeating last
//! step that missed several turns fires once, not once per missed turn.

use std::time::Duration;

use crate::messengers::Destination;

/// One step: who is told, and when (from the alert's creation).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub after: Duration,
    pub to: Vec<Destination>,
    /// On the last step only: tell them again every `repeat` until someone acts.
    pub repeat: Option<Duration>,
}

/// A named policy, referenced from routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    pub steps: Vec<Step>,
    /// An acknowledgement holds escalation back this long; after it, an alert still
    /// active escalates again. `None`: an acknowledgement holds until the alert ends.
    pub ack_timeout: Option<Duration>,
}

/// Where an alert stands in its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Step firings so far, repeats included.
    pub fired: u32,
    pub created_ms: i64,
    pub acknowledged_at_ms: Option<i64>,
}

/// What to do now: the steps to fire (indexes into [`Policy::steps`]) and the new count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub steps: Vec<usize>,
    pub fired: u32,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Policy {
    /// Firing number `n` (from 0): its step and when it is due by the schedule alone.
    fn scheduled(&self, n: u32, created_ms: i64) -> Option<(usize, i64)> {
        let n = n as usize;
        if let Some(step) = self.steps.get(n) {
            return Some((n, created_ms.saturating_add(ms(step.after))));
        }
        let last_index = self.steps.len().checked_sub(1)?;
        let last = &self.steps[last_index];
        let every = ms(last.repeat?).max(1);
        let turns = i64::try_from(n - last_index).unwrap_or(i64::MAX);
        Some((
            last_index,
            created_ms
                .saturating_add(ms(last.after))
                .saturating_add(every.saturating_mul(turns)),
        ))
    }

    /// An acknowledgement's hold: until when no step fires; `None` when it holds for
    /// good (no `ack_timeout`).
    fn held_until(&self, p: &Progress) -> Option<Option<i64>> {
        let at = p.acknowledged_at_ms?;
        Some(self.ack_timeout.map(|t| at.saturating_add(ms(t))))
    }

    /// When the next step is due and which, or `None` if nothing will fire (every step
    /// fired and no repeat, or acknowledged for good).
    pub fn next_due(&self, p: &Progress) -> Option<(usize, i64)> {
        let (step, at) = self.scheduled(p.fired, p.created_ms)?;
        match self.held_until(p) {
            None => Some((step, at)),
            Some(None) => None,
            Some(Some(until)) => Some((step, at.max(until))),
        }
    }

    /// The steps due at `now_ms`: each step whose time has come and that has not fired
    /// yet, once — a run of missed repeats of the last step counts as one.
    pub fn due(&self, p: &Progress, now_ms: i64) -> Option<Firing> {
        let (_, first_at) = self.next_due(p)?;
        if first_at > now_ms {
            return None;
        }
        let mut steps = Vec::new();
        let mut n = p.fired;
        while let Some((step, at)) = self.scheduled(n, p.created_ms) {
            if at > now_ms && n > p.fired {
                break;
            }
            if steps.last() != Some(&step) {
                steps.push(step);
            }
            n += 1;
            // A repeat every millisecond would never end the loop within a long downtime.
            if n - p.fired > self.steps.len() as u32 + 10_000 {
                break;
            }
        }
        Some(Firing { steps, fired: n })
    }
}

/// How far off a moment is, as the surfaces say it: "in 1 h 20 min", "in 4 min",
/// "5 min ago", "now" — whole minutes, days beyond two days.
pub fn relative(delta_ms: i64) -> String {
    let mins = delta_ms.unsigned_abs().div_ceil(60_000);
    if delta_ms.unsigned_abs() < 30_000 {
        return "now".into();
    }
    let words = if mins < 60 {
        format!("{mins} min")
    } else if mins < 48 * 60 {
        match mins % 60 {
            0 => format!("{} h", mins / 60),
            m => format!("{} h {m} min", mins / 60),
        }
    } else {
        format!("{} d", mins / (24 * 60))
    };
    if delta_ms > 0 {
        format!("in {words}")
    } else {
        format!("{words} ago")
    }
}

/// An alert's next escalation step as every surface shows it: "next: signal:oncall in
/// 4 min" — who the step at `fired` tells (the last step again when it repeats), and
/// when. `None` when nothing more will fire or the policy is no longer configured.
pub fn next_step(
    policies: &std::collections::BTreeMap<String, Policy>,
    policy: &str,
    fired: u32,
    next_at_ms: Option<i64>,
    now_ms: i64,
) -> Option<String> {
    let next_at_ms = next_at_ms?;
    let policy = policies.get(policy)?;
    let step = policy
        .steps
        .get(fired as usize)
        .or_else(|| policy.steps.last().filter(|s| s.repeat.is_some()))?;
    let to: Vec<String> = step.to.iter().map(|d| d.to_string()).collect();
    Some(format!(
        "next: {} {}",
        to.join(", "),
        relative(next_at_ms.saturating_sub(now_ms))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messengers::Service;

    const MIN: i64 = 60_000;

    fn to(service: Service, scope: &str) -> Vec<Destination> {
        vec![Destination {
            service,
            scope: scope.into(),
        }]
    }

    /// DESIGN's example: Signal to the on-call phone after 10 min, mail to the heads
    /// after 30 min and every 30 min after.
    fn night() -> Policy {
        Policy {
            name: "night".into(),
            steps: vec![
                Step {
                    after: Duration::from_secs(600),
                    to: to(Service::Signal, "oncall"),
                    repeat: None,
                },
                Step {
                    after: Duration::from_secs(1800),
                    to: to(Service::Mail, "heads"),
                    repeat: Some(Duration::from_secs(1800)),
                },
            ],
            ack_timeout: Some(Duration::from_secs(7200)),
        }
    }

    #[test]
    fn the_next_step_in_words() {
        let policies = std::collections::BTreeMap::from([("night".to_string(), night())]);
        let next = |fired, at| next_step(&policies, "night", fired, at, 0);
        assert_eq!(
            next(0, Some(4 * MIN)).as_deref(),
            Some("next: signal:oncall in 4 min")
        );
        assert_eq!(
            next(1, Some(80 * MIN)).as_deref(),
            Some("next: mail:heads in 1 h 20 min")
        );
        // The repeating last step, again and again.
        assert_eq!(
            next(5, Some(120 * MIN)).as_deref(),
            Some("next: mail:heads in 2 h")
        );
        assert_eq!(next(0, None), None);
        assert_eq!(next_step(&policies, "gone", 0, Some(MIN), 0), None);
        assert_eq!(relative(-5 * MIN), "5 min ago");
        assert_eq!(relative(10_000), "now");
        assert_eq!(relative(3 * 24 * 60 * MIN), "in 3 d");
    }

    fn fresh() -> Progress {
        Progress {
            fired: 0,
            created_ms: 0,
            acknowledged_at_ms: None,
        }
    }

    #[test]
    fn steps_fall_due_at_their_times_and_once() {
        let p = night();
        assert_eq!(p.next_due(&fresh()), Some((0, 10 * MIN)));
        assert_eq!(p.due(&fresh(), 10 * MIN - 1), None);
        let first = p.due(&fresh(), 10 * MIN).unwrap();
        assert_eq!(
            first,
            Firing {
                steps: vec![0],
                fired: 1
            }
        );
        let after_first = Progress {
            fired: 1,
            ..fresh()
        };
        assert_eq!(p.due(&after_first, 20 * MIN), None);
        assert_eq!(p.next_due(&after_first), Some((1, 30 * MIN)));
        let second = p.due(&after_first, 30 * MIN).unwrap();
        assert_eq!(
            second,
            Firing {
                steps: vec![1],
                fired: 2
            }
        );
        // The repeat.
        let after_second = Progress {
            fired: 2,
            ..fresh()
        };
        assert_eq!(p.next_due(&after_second), Some((1, 60 * MIN)));
    }

    #[test]
    fn what_fell_due_while_down_fires_once() {
        let p = night();
        // Down from minute 5 to minute 125: step 0, step 1 and three repeats missed.
        let f = p.due(&fresh(), 125 * MIN).unwrap();
        assert_eq!(f.steps, vec![0, 1]);
        assert_eq!(f.fired, 5);
        // Nothing more until the next repeat, at 150 min.
        let after = Progress {
            fired: f.fired,
            ..fresh()
        };
        assert_eq!(p.due(&after, 125 * MIN), None);
        assert_eq!(p.next_due(&after), Some((1, 150 * MIN)));
    }

    #[test]
    fn an_acknowledgement_holds_until_its_timeout() {
        let p = night();
        let acked = Progress {
            fired: 1,
            acknowledged_at_ms: Some(12 * MIN),
            ..fresh()
        };
        assert_eq!(p.due(&acked, 30 * MIN), None);
        assert_eq!(p.next_due(&acked), Some((1, 132 * MIN)));
        assert_eq!(
            p.due(&acked, 132 * MIN),
            Some(Firing {
                steps: vec![1],
                fired: 5
            })
        );
        let forever = Policy {
            ack_timeout: None,
            ..night()
        };
        assert_eq!(forever.next_due(&acked), None);
        assert_eq!(forever.due(&acked, 1000 * MIN), None);
    }

    #[test]
    fn without_repeat_escalation_ends_after_the_last_step() {
        let mut p = night();
        p.steps[1].repeat = None;
        let done = Progress {
            fired: 2,
            ..fresh()
        };
        assert_eq!(p.next_due(&done), None);
        assert_eq!(p.due(&done, 1000 * MIN), None);
    }
}
