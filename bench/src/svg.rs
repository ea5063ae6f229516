//! A small SVG line chart of RSS over time, one line per named series:
//! enough to see a leak at a glance in BENCHMARKS.md, no plotting library.

use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 50.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 36.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
];

/// RSS (MiB) over time (s), one line per series: `(seconds, MiB)` points
/// under each series' name.
pub fn rss_plot(series: &BTreeMap<&str, Vec<(f64, f64)>>) -> String {
    let points = series.values().flatten();
    let t_max = points.clone().map(|p| p.0).fold(1.0_f64, f64::max);
    let rss_max = points.map(|p| p.1).fold(1.0_f64, f64::max) * 1.15;
    let x = |t: f64| LEFT + t / t_max * (WIDTH - LEFT - RIGHT);
    let y = |rss: f64| TOP + (1.0 - rss / rss_max) * (HEIGHT - TOP - BOTTOM);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    // Axes, with four gridlines and their values.
    for i in 0..=4 {
        let rss = rss_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="end">{rss:.0}</text>"##,
            y = y(rss),
            x2 = WIDTH - RIGHT,
            tx = LEFT - 4.0,
            ty = y(rss) + 4.0
        );
        let t = t_max * f64::from(i) / 4.0;
        let _ = writeln!(
            svg,
            r#"<text x="{tx:.1}" y="{ty:.1}" text-anchor="middle">{t:.0}</text>"#,
            tx = x(t),
            ty = HEIGHT - BOTTOM + 14.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{cx:.1}" y="{by:.1}" text-anchor="middle">seconds under load</text><text x="12" y="{my:.1}" transform="rotate(-90 12 {my:.1})" text-anchor="middle">RSS, MiB</text>"#,
        cx = (LEFT + WIDTH - RIGHT) / 2.0,
        by = HEIGHT - 4.0,
        my = (TOP + HEIGHT - BOTTOM) / 2.0
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .map(|(t, rss)| format!("{:.1},{:.1}", x(*t), y(*rss)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{lx2:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{tx:.1}" y="{ty:.1}">{name}</text>"#,
            lx = WIDTH - RIGHT + 10.0,
            lx2 = WIDTH - RIGHT + 26.0,
            tx = WIDTH - RIGHT + 30.0,
            ty = ly + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
