//! The chart of events per hour by severity, drawn here as SVG from the store's hourly
//! counts (`alerts::hours`).
//!
//! Drawn on the server rather than by a charting library in the page: stacked bars need
//! a few dozen lines, nothing third-party is vendored (no licence to carry, nothing to
//! update), the page stays script-light, and the chart is text that a test can read.
//! Every bar has a `<title>` with its numbers and the legend gives each severity's
//! word and total: colour is never the only signal.
//!
//! The page asks for the width it has (`?width=`, in CSS pixels) and the SVG is laid out
//! for it, shown at its own size: a 760-wide drawing shrunk onto a phone made 11 px text
//! 5 px. Labels that would not fit are left out rather than cut at the edge.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::TimeZone as _;

use crate::alerts::hours::{self, HOUR_MS};
use crate::api::{ApiError, ApiState};
use crate::event::Severity;
use crate::store::now_ms;

/// The widest an axis label's character is drawn (11 px system-ui, digits and capitals).
const LABEL_CHAR_W: f64 = 6.5;

/// The severities from the bottom of a bar up, with their colours (as in the page).
const SERIES: [(Severity, &str); 4] = [
    (Severity::Major, "#d32f2f"),
    (Severity::Minor, "#ef6c00"),
    (Severity::Warning, "#f9a825"),
    (Severity::Info, "#1e88e5"),
];

#[derive(serde::Deserialize)]
pub struct ChartQuery {
    range: Option<String>,
    width: Option<u32>,
}

/// The widths drawn: a phone's narrowest screen to a wide desktop column.
const MIN_W: u32 = 280;
const MAX_W: u32 = 1600;
const DEFAULT_W: u32 = 760;

/// `GET /api/console/chart.svg?range=24h|7d&width=px`.
pub async fn svg(
    State(st): State<Arc<ApiState>>,
    Query(q): Query<ChartQuery>,
) -> Result<Response, ApiError> {
    let hours_shown: i64 = match q.range.as_deref().unwrap_or("24h") {
        "24h" => 24,
        "7d" => 7 * 24,
        other => {
            return Err(ApiError::bad_request(format!(
                "range: 24h or 7d, found {other:?}"
            )));
        }
    };
    let now = now_ms();
    let counts = st
        .db(move |s| s.with_conn(|c| hours::recent(c, now, hours_shown)))
        .await?;
    let width = q.width.unwrap_or(DEFAULT_W).clamp(MIN_W, MAX_W);
    let mut resp = draw(&counts, now, hours_shown, f64::from(width)).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml; charset=utf-8"),
    );
    // Its own style only; no script runs in it.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The SVG of `counts` (oldest hour first; per hour info, warning, minor, major) for
/// the hours up to the one of `now_ms`, `w` pixels wide.
pub fn draw(counts: &[[u64; 4]], now_ms: i64, hours_shown: i64, w: f64) -> String {
    const LEFT: f64 = 44.0;
    const BOTTOM: f64 = 24.0;
    // Four legend entries side by side where they fit, else two rows of two.
    let per_row: usize = if w >= 480.0 { 4 } else { 2 };
    let legend_rows = SERIES.len().div_ceil(per_row);
    let top = 28.0 + 16.0 * (legend_rows - 1) as f64;
    let height = 172.0 + top;
    let plot_w = w - LEFT - 8.0;
    let plot_h = height - top - BOTTOM;
    let max = counts
        .iter()
        .map(|c| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let slot = plot_w / counts.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let first_hour = now_ms.div_euclid(HOUR_MS) - hours_shown + 1;
    let label = if hours_shown <= 24 {
        "last 24 hours"
    } else {
        "last 7 days"
    };
    let mut totals = [0u64; 4];
    for c in counts {
        for (t, n) in totals.iter_mut().zip(c) {
            *t += n;
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {height}" width="{w}" height="{height}" role="img" aria-labelledby="t d">"##
    );
    let _ = write!(
        s,
        "<title id=\"t\">Events per hour by severity, {label}</title><desc id=\"d\">{} events: {} major, {} minor, {} warning, {} info</desc>",
        totals.iter().sum::<u64>(),
        totals[3],
        totals[2],
        totals[1],
        totals[0]
    );
    s.push_str(
        "<style>text{font:11px system-ui,sans-serif;fill:#444}.axis{stroke:#999;stroke-width:1}\
         @media (prefers-color-scheme: dark){text{fill:#ccc}.axis{stroke:#666}}</style>",
    );
    // Legend: word, colour and total.
    let step = ((w - LEFT - 8.0) / per_row as f64).min(110.0);
    for (i, (severity, colour)) in SERIES.into_iter().enumerate() {
        let name = severity.as_str();
        let total = totals[hours::severity_index(severity)];
        let x = LEFT + (i % per_row) as f64 * step;
        let y = 6.0 + 16.0 * (i / per_row) as f64;
        let _ = write!(
            s,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{name} {total}</text>"#,
            x + 14.0,
            y + 9.0
        );
    }
    // Where the last axis label ended: the next one must start after it.
    let mut label_end = f64::MIN;
    // Axes and the top value.
    let base = top + plot_h;
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" y1="{base}" x2="{}" y2="{base}"/><line class="axis" x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{base}"/><text x="{}" y="{}" text-anchor="end">{max}</text><text x="{}" y="{base}" text-anchor="end">0</text>"#,
        w - 8.0,
        LEFT - 4.0,
        top + 8.0,
        LEFT - 4.0
    );
    for (i, c) in counts.iter().enumerate() {
        let hour = first_hour + i as i64;
        let start = chrono::Local
            .timestamp_millis_opt(hour * HOUR_MS)
            .single()
            .map(|t| t.format("%a %H:00").to_string())
            .unwrap_or_default();
        let bx = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let total: u64 = c.iter().sum();
        if total > 0 {
            let _ = write!(
                s,
                "<g class=\"bar\"><title>{start}: {total} events ({} major, {} minor, {} warning, {} info)</title>",
                c[3], c[2], c[1], c[0]
            );
            let mut y = base;
            for (severity, colour) in SERIES {
                let name = severity.as_str();
                let n = c[hours::severity_index(severity)];
                if n == 0 {
                    continue;
                }
                let h = (n as f64 / max as f64) * plot_h;
                y -= h;
                let _ = write!(
                    s,
                    r#"<rect class="{name}" x="{bx:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="{colour}"/>"#
                );
            }
            s.push_str("</g>");
        }
        // An hour label every 6 hours (24 h) or every day (7 d), at local midnight.
        let local_hour = chrono::Local
            .timestamp_millis_opt(hour * HOUR_MS)
            .single()
            .map(|t| chrono::Timelike::hour(&t))
            .unwrap_or(0);
        let labelled = if hours_shown <= 24 {
            local_hour.is_multiple_of(6)
        } else {
            local_hour == 0
        };
        if labelled {
            let text = chrono::Local
                .timestamp_millis_opt(hour * HOUR_MS)
                .single()
                .map(|t| {
                    if hours_shown <= 24 {
                        t.format("%H:00").to_string()
                    } else {
                        // Where a day is too narrow for "Mon 07", its name alone.
                        let day_w = slot * 24.0;
                        let f = if day_w >= 8.0 * LABEL_CHAR_W {
                            "%a %d"
                        } else {
                            "%a"
                        };
                        t.format(f).to_string()
                    }
                })
                .unwrap_or_default();
            // 11 px system-ui: at most ~6.5 px a character. A label that would
            // run past the edge or into the one before is left out, not cut.
            let x = LEFT + i as f64 * slot;
            let end = x + text.chars().count() as f64 * LABEL_CHAR_W;
            if x >= label_end + 6.0 && end <= w - 2.0 {
                let _ = write!(
                    s,
                    r#"<text x="{x:.1}" y="{}" text-anchor="start">{text}</text>"#,
                    height - 8.0
                );
                label_end = end;
            }
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_stacked_and_titled() {
        let mut counts = vec![[0u64; 4]; 24];
        counts[23] = [1, 0, 2, 3];
        let svg = draw(&counts, 1_700_000_000_000, 24, 760.0);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<g class=\"bar\">").count(), 1);
        assert!(
            svg.contains("6 events (3 major, 2 minor, 0 warning, 1 info)"),
            "{svg}"
        );
        assert!(
            svg.contains("major 3") && svg.contains("info 1"),
            "legend with words"
        );
        assert!(svg.contains(r#"class="major""#) && !svg.contains(r#"class="warning""#));
    }

    /// On a phone the drawing is as wide as the screen: the legend takes two rows and
    /// every axis label ends inside the drawing (none cut at the edge).
    #[test]
    fn a_narrow_chart_keeps_its_labels_inside() {
        let counts = vec![[1u64, 0, 0, 2]; 7 * 24];
        for (hours, w) in [(24, 360.0), (7 * 24, 360.0), (7 * 24, 1200.0)] {
            let svg = draw(&counts[..hours as usize], 1_700_000_000_000, hours, w);
            assert!(svg.contains(&format!(r#"width="{w}""#)), "{svg}");
            let labels: Vec<(f64, usize)> = svg
                .split(r#"<text x=""#)
                .skip(1)
                .filter(|t| t.contains(r#"text-anchor="start""#))
                .map(|t| {
                    let x: f64 = t[..t.find('"').unwrap()].parse().unwrap();
                    let text = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                    (x, text.chars().count())
                })
                .collect();
            assert!(labels.len() >= 3, "{hours} h at {w}: {labels:?}");
            for (x, n) in labels {
                assert!(
                    x + n as f64 * LABEL_CHAR_W <= w,
                    "{hours} h at {w}: {x} {n}"
                );
            }
        }
        let narrow = draw(&counts[..24], 1_700_000_000_000, 24, 360.0);
        assert!(
            narrow.contains(r#"y="22""#),
            "a second legend row: {narrow}"
        );
    }
}
