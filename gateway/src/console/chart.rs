//! Charts as plain SVG, drawn on the server: a step line (a value holds
//! until it changes) with labelled axes, each change at its own place
//! along the bottom with its date and time (UTC) under it and its value
//! written above it, so it reads without hovering, however close in time
//! the changes were; no history and a single point are drawn as what they
//! are.

use super::view::escape;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 250.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 24.0;
const BOTTOM: f64 = 48.0;
/// The most changes labelled; more, and every n-th is.
const MAX_LABELS: usize = 8;

/// One value from a time on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Seconds since the epoch.
    pub(crate) at: i64,
    /// The value from then on.
    pub(crate) value: f64,
}

fn when(at: i64) -> (String, String) {
    chrono::DateTime::from_timestamp(at, 0).map_or_else(
        || (String::new(), String::new()),
        |t| {
            (
                t.format("%Y-%m-%d").to_string(),
                t.format("%H:%M").to_string(),
            )
        },
    )
}

/// A step chart of `points` (the last holding until now), titled `title`,
/// values written by `label` on an axis named `unit`.
pub(crate) fn steps(
    title: &str,
    unit: &str,
    points: &[Point],
    label: impl Fn(f64) -> String,
) -> String {
    let id = title
        .to_lowercase()
        .replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    let mut points: Vec<Point> = points.to_vec();
    points.sort_by_key(|p| p.at);
    let Some(last) = points.last().copied() else {
        return format!(
            r#"<figure class="chart"><figcaption>{}</figcaption><p class="muted">No history yet.</p></figure>"#,
            escape(title)
        );
    };
    let high = points
        .iter()
        .fold(f64::MIN, |hi, p| hi.max(p.value))
        .max(0.0);
    let low = points.iter().fold(0.0_f64, |lo, p| lo.min(p.value));
    let high = if (high - low).abs() < f64::EPSILON {
        low + 1.0
    } else {
        high
    };
    let width = WIDTH - LEFT - RIGHT;
    let n = points.len() as f64;
    // Each change gets an equal share of the width; the last runs on to
    // the right edge (now).
    let x = |i: usize| LEFT + width * (2.0 * i as f64 + 1.0) / (2.0 * n + 1.0);
    let y = |v: f64| TOP + (high - v) / (high - low) * (HEIGHT - TOP - BOTTOM);
    let mut path = String::new();
    for (i, p) in points.iter().enumerate() {
        if i == 0 {
            path.push_str(&format!("M{:.1},{:.1}", x(i), y(p.value)));
        } else {
            path.push_str(&format!(" H{:.1} V{:.1}", x(i), y(p.value)));
        }
    }
    path.push_str(&format!(" H{:.1}", LEFT + width));
    let every = points.len().div_ceil(MAX_LABELS).max(1);
    let axis_y = HEIGHT - BOTTOM;
    let marks: String = points
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0 || *i == points.len() - 1)
        .map(|(i, p)| {
            let (day, clock) = when(p.at);
            format!(
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5"/><text x="{cx:.1}" y="{ty:.1}" text-anchor="middle" class="value">{v}</text><text x="{cx:.1}" y="{dy:.1}" text-anchor="middle" class="tick">{day}<tspan x="{cx:.1}" dy="14">{clock}</tspan></text>"#,
                cx = x(i),
                cy = y(p.value),
                ty = y(p.value) - 8.0,
                v = escape(&label(p.value)),
                dy = axis_y + 16.0,
            )
        })
        .collect();
    let (first_day, _) = when(points[0].at);
    let (last_day, _) = when(last.at);
    format!(
        r#"<figure class="chart"><figcaption id="{id}">{title}</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id} {id}-desc" preserveAspectRatio="xMidYMid meet"><desc id="{id}-desc">{desc}</desc><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{axis_y}" class="axis"/><line x1="{LEFT}" y1="{axis_y}" x2="{right}" y2="{axis_y}" class="axis"/><text x="{ylx}" y="{yhy:.1}" text-anchor="end" class="tick">{high_label}</text><text x="{ylx}" y="{yly:.1}" text-anchor="end" class="tick">{low_label}</text><text x="14" y="{mid:.1}" transform="rotate(-90 14 {mid:.1})" text-anchor="middle" class="axis-name">{unit}</text><path d="{path}" class="line"/>{marks}</svg><p class="muted">Each change in order, dates and times in UTC; the last holds until now.</p></figure>"#,
        title = escape(title),
        desc = escape(&format!(
            "{} changes from {first_day} to {last_day}; now {}",
            points.len(),
            label(last.value)
        )),
        right = WIDTH - RIGHT,
        ylx = LEFT - 8.0,
        yhy = y(high) + 4.0,
        yly = y(low) + 4.0,
        high_label = escape(&label(high)),
        low_label = escape(&label(low)),
        mid = (TOP + axis_y) / 2.0,
        unit = escape(unit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_single_point_histories_are_drawn_as_such() {
        let none = steps("Price", "USD", &[], |v| format!("{v}"));
        assert!(none.contains("No history yet.") && !none.contains("<svg"));
        let one = steps(
            "Price",
            "USD",
            &[Point {
                at: 1_796_000_000,
                value: 12.5,
            }],
            |v| format!("{v:.2}"),
        );
        assert!(
            one.contains("<svg") && one.contains(">12.50<") && one.contains("2026-11-30"),
            "{one}"
        );
        assert_eq!(one.matches("<circle").count(), 1);
    }

    #[test]
    fn every_point_is_labelled_and_the_axes_are_named() {
        let points: Vec<Point> = (0..5)
            .map(|n| Point {
                at: 1_796_000_000 + n * 86_400,
                value: 10.0 + n as f64,
            })
            .collect();
        let svg = steps("Stock on hand", "units", &points, |v| format!("{v:.0}"));
        for v in ["10", "11", "12", "13", "14"] {
            assert!(svg.contains(&format!(">{v}<")), "{v} missing");
        }
        assert!(svg.contains(">units<") && svg.contains("role=\"img\""));
    }
}
