//! Hand-written SVG plots: panels of bars. Plain `<svg>`
//! elements, so any browser shows them and no plotting crate is needed.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

const WIDTH: f64 = 900.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

/// One panel of bars: one bar per endpoint.
pub struct Panel<'a> {
    pub title: String,
    pub values: &'a [f64],
}

/// A horizontal reference line across every panel (e.g. the ideal, or a bound).
pub struct Reference<'a> {
    pub value: f64,
    pub label: &'a str,
}

/// Panels of bars stacked vertically, sharing one y scale so they compare at a glance.
pub fn bar_panels(
    title: &str,
    y_label: &str,
    panels: &[Panel<'_>],
    reference: Option<&Reference<'_>>,
) -> String {
    const PANEL: f64 = 170.0;
    const GAP: f64 = 45.0;
    let height = 50.0 + panels.len() as f64 * (PANEL + GAP);
    let top = panels
        .iter()
        .flat_map(|p| p.values.iter().copied())
        .chain(reference.map(|r| r.value))
        .fold(0.0, f64::max);
    let y_max = nice_ceiling(top * 1.05);
    let mut svg = open(height, title);
    let plot_w = WIDTH - LEFT - RIGHT;
    for (k, panel) in panels.iter().enumerate() {
        let y0 = 50.0 + k as f64 * (PANEL + GAP) + 20.0;
        let y_of = |v: f64| y0 + PANEL - (v / y_max).clamp(0.0, 1.0) * PANEL;
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
            y0 - 6.0,
            escape(&panel.title)
        );
        for j in 0..=4 {
            let v = y_max * f64::from(j) / 4.0;
            let y = y_of(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                tick(v)
            );
        }
        let n = panel.values.len().max(1) as f64;
        let bar_w = plot_w / n;
        let color = COLORS[k % COLORS.len()];
        for (i, &v) in panel.values.iter().enumerate() {
            let y = y_of(v);
            let _ = writeln!(
                svg,
                r#"<rect x="{:.2}" y="{y:.2}" width="{:.2}" height="{:.2}" fill="{color}"/>"#,
                LEFT + i as f64 * bar_w,
                (bar_w * 0.85).max(0.5),
                y0 + PANEL - y
            );
        }
        if let Some(r) = reference {
            let y = y_of(r.value);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#000" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                WIDTH - RIGHT,
                y - 4.0,
                escape(r.label)
            );
        }
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#000"/>"##,
            y0 + PANEL,
            WIDTH - RIGHT,
            y0 + PANEL
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{:.1}" font-size="12" transform="rotate(-90 16 {:.1})" text-anchor="middle">{}</text>"#,
        height / 2.0,
        height / 2.0,
        escape(y_label)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">endpoint</text>"#,
        LEFT + plot_w / 2.0,
        height - 8.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The smallest round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10^k) at or above `v` (1 for
/// nothing to show).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * decade)
        .find(|&c| c >= v * (1.0 - 1e-12))
        .unwrap_or(10.0 * decade)
}

/// A tick label without trailing zeros.
fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 0.001 {
        return format!("{v:e}");
    }
    let text = if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    };
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn open(height: f64, title: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n\
         <text x=\"{}\" y=\"28\" font-size=\"16\" font-weight=\"bold\" text-anchor=\"middle\">{}</text>\n",
        WIDTH / 2.0,
        escape(title)
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes `svg` as `dir/file`, creating `dir`.
pub fn write(dir: &Path, file: &str, svg: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file);
    std::fs::write(&path, svg)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_closed_svg_with_escaped_text() {
        let values = [1.0, 2.0, 0.5];
        let svg = bar_panels(
            "a < b",
            "load",
            &[Panel {
                title: "p & q".into(),
                values: &values,
            }],
            Some(&Reference {
                value: 1.0,
                label: "ideal",
            }),
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a &lt; b") && svg.contains("p &amp; q"));
        assert_eq!(svg.matches("<rect x=").count(), 3);
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_ceiling(1.07), 1.5);
        assert_eq!(nice_ceiling(63.0), 80.0);
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.00001), "1e-5");
    }
}
