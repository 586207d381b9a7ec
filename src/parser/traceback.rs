//! Folding a Python traceback into one event.
//!
//! Sonix+ measurement scripts are Python; when one fails, the protocol gets a
//! `Traceback (most recent call last):` block, indented frames, and a final
//! `SomeError: text` line. Sent line by line that would be a dozen alarms for one
//! failure; folded, it is one major event whose text is the final line and whose details
//! are the whole block.

/// The line that opens a traceback.
pub const MARK: &str = "Traceback (most recent call last):";

/// Beyond this a traceback keeps its first lines and its last one, and counts the rest
/// (a recursion error prints a thousand frames).
const MAX_LINES: usize = 200;

pub struct Traceback {
    lines: Vec<String>,
    skipped: usize,
    pub source: Option<String>,
}

/// What a line did to an open traceback.
pub enum Step {
    /// The line belongs to the traceback; more may follow.
    Continue,
    /// The line was the final `SomeError: text` line.
    Done,
    /// The line does not belong to a traceback; the traceback ended before it.
    Interrupted,
}

impl Traceback {
    pub fn start(first: &str, source: Option<String>) -> Traceback {
        Traceback {
            lines: vec![first.to_string()],
            skipped: 0,
            source,
        }
    }

    pub fn feed(&mut self, line: &str) -> Step {
        let indented = line.starts_with([' ', '\t']);
        if indented || line.trim().is_empty() {
            self.push(line);
            return Step::Continue;
        }
        if is_exception_line(line) {
            self.push_last(line);
            return Step::Done;
        }
        Step::Interrupted
    }

    fn push(&mut self, line: &str) {
        if self.lines.len() < MAX_LINES {
            self.lines.push(line.to_string());
        } else {
            self.skipped += 1;
        }
    }

    fn push_last(&mut self, line: &str) {
        if self.skipped > 0 {
            self.lines
                .push(format!("  … {} more lines …", self.skipped));
        }
        self.lines.push(line.to_string());
    }

    /// The event text: the final line, or for a traceback cut short its last frame.
    pub fn summary(&self) -> String {
        self.lines
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map_or_else(|| MARK.to_string(), |l| l.trim().to_string())
    }

    pub fn details(&self) -> String {
        self.lines.join("\n")
    }
}

/// `ValueError: bad value`, `module.CustomError`, `KeyboardInterrupt`.
fn is_exception_line(line: &str) -> bool {
    let name_end = line.find(':').unwrap_or(line.len());
    let name = line[..name_end].trim_end();
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exception_lines() {
        assert!(is_exception_line("ValueError: bad"));
        assert!(is_exception_line("KeyboardInterrupt"));
        assert!(is_exception_line("sonix.errors.MotorError: stuck at 3.2"));
        assert!(!is_exception_line("2026-11-20 14:03:12 ERROR x"));
        assert!(!is_exception_line(
            "During handling of the above exception: x"
        ));
    }

    #[test]
    fn long_traceback_is_capped() {
        let mut tb = Traceback::start(MARK, None);
        for i in 0..1000 {
            assert!(matches!(
                tb.feed(&format!("  File \"x.py\", line {i}")),
                Step::Continue
            ));
        }
        assert!(matches!(tb.feed("RecursionError: too deep"), Step::Done));
        assert_eq!(tb.summary(), "RecursionError: too deep");
        let d = tb.details();
        assert!(d.lines().count() <= MAX_LINES + 2);
        assert!(d.contains("more lines"));
    }
}
