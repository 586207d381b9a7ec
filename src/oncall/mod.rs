//! On call: what happens to an alarm after it is sent — acknowledgement, escalation
//! when nobody acts, silences and maintenance windows that hold alarms back, and the
//! handover digest (docs/ARCHITECTURE.md, "On call").
//!
//! The pieces here are the rules, kept free of time itself (every function is given
//! "now"), so that a restart, a test over dates and the agent all compute the same
//! answer; and silences, whose table this module owns. They sit beside the assembled
//! config, which is made of them (`escalation`, `maintenance`, `digest`), below the
//! pipeline, which applies them on the one path every event takes (what holds an event
//! back: `alerts::holds`).

pub mod digest;
pub mod escalation;
pub mod matcher;
pub mod silences;
pub mod window;

pub use escalation::{Firing, Policy, Progress, Step};
pub use matcher::{Matchers, Subject};
pub use window::{Schedule, Window, WindowError, Zone};
