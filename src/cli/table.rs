//! Aligned columns for the commands' tables (`alerts list`, `outbox list`).
//!
//! One renderer, so a list reads the same whichever way its rows were found (the
//! database or the agent's API). Widths are display columns (`unicode-width`), so
//! Cyrillic text and wide characters line up as well as ASCII. When stdout is a
//! terminal the last column is cut to the terminal's width (with `…`); into a pipe or a
//! file every row is written whole.
//!
//! The last column is the one a reader came for (an alert's message, a delivery's
//! error), so on a narrow terminal it is not what gives way first: columns a table marks
//! as droppable are left out, in the order given, until the last one has
//! [`LAST_COLUMN_MIN`] columns — and times are relative ("5 min ago"), a third of a
//! full date's width.

use std::io::IsTerminal;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A moment given in milliseconds, in this PC's time zone as the tables show it;
/// empty when it is out of range.
pub fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// What the last column keeps on a narrow terminal before it is cut (or less when the
/// terminal is narrower than twice this).
pub const LAST_COLUMN_MIN: usize = 40;

/// A moment as the tables say it, relative to `now_ms`: "in 30 s" within the next
/// minute (a retry's backoff is seconds), else as every surface says it: "now", "5 min
/// ago", "in 1 h 20 min", "3 d ago" — whole minutes, so a list read twice in a few
/// seconds reads the same. With `absolute`, the local date and time.
pub fn when(ms: i64, now_ms: i64, absolute: bool) -> String {
    if absolute {
        return local_time(ms);
    }
    let delta = ms - now_ms;
    match delta / 1000 {
        s @ 1..60 => format!("in {s} s"),
        _ => crate::oncall::escalation::relative(delta),
    }
}

pub struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    /// A line under a row (the on-call state of an alert), from its second column on:
    /// said without a column of its own, so the table is no wider and the message
    /// column no narrower, and on an 80-column terminal the note still has most of the
    /// line rather than what is left of the last column.
    notes: Vec<Option<String>>,
    /// Columns left out on a narrow terminal, first to go first.
    droppable: Vec<usize>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|(h, _)| *h).collect(),
            align: columns.iter().map(|(_, a)| *a).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
            droppable: Vec::new(),
        }
    }

    /// Columns (by header) that a narrow terminal may leave out, first to go first, so
    /// the last column keeps [`LAST_COLUMN_MIN`]; a pipe gets them all.
    pub fn droppable(mut self, headers: &[&str]) -> Table {
        self.droppable = headers
            .iter()
            .filter_map(|h| self.headers.iter().position(|x| x == h))
            .collect();
        self
    }

    /// A row; control characters (a message's line breaks, tabs) become spaces, so a
    /// row is one line.
    pub fn push(&mut self, cells: Vec<String>) {
        let cells = cells
            .into_iter()
            .map(|c| {
                c.chars()
                    .map(|ch| if ch.is_control() { ' ' } else { ch })
                    .collect()
            })
            .collect();
        self.rows.push(cells);
        self.notes.push(None);
    }

    /// A note under the last row pushed, on a line of its own from the second column.
    pub fn note(&mut self, text: String) {
        let text: String = text
            .chars()
            .map(|ch| if ch.is_control() { ' ' } else { ch })
            .collect();
        if let Some(last) = self.notes.last_mut() {
            *last = Some(text);
        }
    }

    /// The columns shown at `max_width`: all but the droppable ones the last column
    /// needs the room of.
    fn shown(&self, widths: &[usize], max_width: Option<usize>) -> Vec<usize> {
        let mut shown: Vec<usize> = (0..widths.len()).collect();
        let Some(max) = max_width else { return shown };
        let want = LAST_COLUMN_MIN.min(max / 2);
        let room = |shown: &[usize]| {
            let before: usize = shown.iter().rev().skip(1).map(|&i| widths[i] + 2).sum();
            max.saturating_sub(before)
        };
        for d in &self.droppable {
            let last_need = shown.last().map_or(0, |&i| widths[i]).min(want);
            if room(&shown) >= last_need {
                break;
            }
            shown.retain(|i| i != d);
        }
        shown
    }

    /// The table as text, each line at most `max_width` columns when given.
    pub fn render(&self, max_width: Option<usize>) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in &self.rows {
            for (i, c) in row.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.width());
            }
        }
        let shown = self.shown(&widths, max_width);
        let mut out = String::new();
        let header: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let indent = widths.first().map_or(0, |w| w + 2);
        let notes = std::iter::once(&None).chain(&self.notes);
        for (row, note) in std::iter::once(&header).chain(&self.rows).zip(notes) {
            let mut line = String::new();
            for (k, &i) in shown.iter().enumerate() {
                let (width, align) = (widths[i], self.align[i]);
                let cell = row.get(i).map(String::as_str).unwrap_or("");
                let last = k + 1 == shown.len();
                if k > 0 {
                    line.push_str("  ");
                }
                if last && align == Align::Left {
                    line.push_str(cell);
                    break;
                }
                let pad = " ".repeat(width.saturating_sub(cell.width()));
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            let line = line.trim_end();
            match max_width {
                Some(w) => out.push_str(&cut(line, w)),
                None => out.push_str(line),
            }
            out.push('\n');
            if let Some(note) = note {
                let line = format!("{}↳ {note}", " ".repeat(indent));
                match max_width {
                    Some(w) => out.push_str(&cut(&line, w)),
                    None => out.push_str(&line),
                }
                out.push('\n');
            }
        }
        out
    }
}

/// `s` in at most `width` columns, `…` marking a cut.
fn cut(s: &str, width: usize) -> String {
    if s.width() <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// The terminal's width when stdout is one (`COLUMNS`, else 80), `None` for a pipe.
pub fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    Some(
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|c: &usize| *c >= 20)
            .unwrap_or(80),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_relative_unless_asked() {
        let now = 1_800_000_000_000;
        assert_eq!(when(now + 30_000, now, false), "in 30 s");
        assert_eq!(when(now - 12_400, now, false), "now");
        assert_eq!(when(now + 400, now, false), "now");
        assert_eq!(when(now - 5 * 60_000, now, false), "5 min ago");
        assert_eq!(when(now, now, true), local_time(now));
    }

    fn table(rows: &[&[&str]]) -> Table {
        let mut t = Table::new(&[
            ("ID", Align::Right),
            ("STATE", Align::Left),
            ("MESSAGE", Align::Left),
        ]);
        for r in rows {
            t.push(r.iter().map(|c| c.to_string()).collect());
        }
        t
    }

    /// Rows, the terminal's width, what is shown.
    type Case<'a> = (&'a [&'a [&'a str]], Option<usize>, &'a str);

    #[test]
    fn the_renderer_in_every_case() {
        let cases: &[Case<'_>] = &[
            (&[], None, "ID  STATE  MESSAGE\n"),
            (
                &[&["7", "active", "HV trip"]],
                None,
                "ID  STATE   MESSAGE\n 7  active  HV trip\n",
            ),
            (
                &[&["7", "active", "x"], &["1234", "dismissed", "y"]],
                None,
                "  ID  STATE      MESSAGE\n   7  active     x\n1234  dismissed  y\n",
            ),
            // Cyrillic: one column a letter.
            (
                &[&["1", "активно", "сбой"], &["2", "ok", "x"]],
                None,
                "ID  STATE    MESSAGE\n 1  активно  сбой\n 2  ok       x\n",
            ),
            // Wide characters: two columns each.
            (
                &[&["1", "検出器", "a"], &["2", "ok", "b"]],
                None,
                "ID  STATE   MESSAGE\n 1  検出器  a\n 2  ok      b\n",
            ),
            // Emoji are wide too.
            (
                &[&["1", "🔴", "m"], &["2", "ab", "n"]],
                None,
                "ID  STATE  MESSAGE\n 1  🔴     m\n 2  ab     n\n",
            ),
            // Empty cells and a line break in a message.
            (
                &[&["", "", "two\nlines"]],
                None,
                "ID  STATE  MESSAGE\n           two lines\n",
            ),
            // Cut to the terminal's width, the last column only, wide characters whole.
            (
                &[&["1", "active", "детектор сбой канал 3"]],
                Some(24),
                "ID  STATE   MESSAGE\n 1  active  детектор сб…\n",
            ),
            (
                &[&["1", "a", "検出器検出器"]],
                Some(16),
                "ID  STATE  MESS…\n 1  a      検出…\n",
            ),
        ];
        let mut t = table(&[&["7", "active", "HV trip"], &["8", "active", "x"]]);
        t.notes[0] = Some("acknowledged by cli".into());
        assert_eq!(
            t.render(None),
            "ID  STATE   MESSAGE\n 7  active  HV trip\n    ↳ acknowledged by cli\n 8  active  x\n"
        );
        assert_eq!(
            t.render(Some(16)),
            "ID  STATE   MES…\n 7  active  HV …\n    ↳ acknowled…\n 8  active  x\n"
        );
        // A narrow terminal leaves out the droppable columns the last one needs.
        let mut t = Table::new(&[
            ("ID", Align::Right),
            ("FIRST", Align::Left),
            ("STATE", Align::Left),
            ("MESSAGE", Align::Left),
        ])
        .droppable(&["FIRST", "STATE"]);
        t.push(vec![
            "7".into(),
            "12 min ago".into(),
            "active".into(),
            "x".repeat(30),
        ]);
        assert_eq!(
            t.render(Some(44)),
            format!("ID  STATE   MESSAGE\n 7  active  {}\n", "x".repeat(30))
        );
        assert_eq!(
            t.render(None),
            format!(
                "ID  FIRST       STATE   MESSAGE\n 7  12 min ago  active  {}\n",
                "x".repeat(30)
            )
        );
        for (rows, width, want) in cases {
            assert_eq!(&table(rows).render(*width), want, "{rows:?} at {width:?}");
        }
    }
}
