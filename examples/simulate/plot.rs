//! Hand-written SVG plots: bar panels and line charts with optional log axes. Plain `<svg>`
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
/// Line dashes by series, so lines that coincide stay distinguishable.
const DASHES: [&str; 6] = ["none", "none", "none", "8 5", "2 4", "none"];

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

/// A named series of (x, y) points, drawn as a polyline.
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// An axis: its label, and whether it is logarithmic (decades) or linear.
pub struct Axis<'a> {
    pub label: &'a str,
    pub log: bool,
}

/// Lines on one chart with a legend. On a log axis points at or below 0 are left out.
pub fn line_chart(title: &str, x: &Axis<'_>, y: &Axis<'_>, lines: &[Line]) -> String {
    const HEIGHT: f64 = 520.0;
    const TOP: f64 = 50.0;
    const BOTTOM: f64 = 60.0;
    let plot_w = WIDTH - LEFT - RIGHT - 160.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let shown = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let values = |pick: fn(&(f64, f64)) -> f64, log: bool| {
        lines
            .iter()
            .flat_map(|l| l.points.iter().map(pick))
            .filter(move |&v| shown(v, log))
            .collect::<Vec<f64>>()
    };
    let x_range = Range::of(&values(|p| p.0, x.log), x.log);
    let y_range = Range::of(&values(|p| p.1, y.log), y.log);
    let x_of = |v: f64| LEFT + x_range.fraction(v) * plot_w;
    let y_of = |v: f64| TOP + plot_h - y_range.fraction(v) * plot_h;
    let mut svg = open(HEIGHT, title);
    for v in x_range.ticks() {
        let px = x_of(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0,
            tick(v)
        );
    }
    for v in y_range.ticks() {
        let py = y_of(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            tick(v)
        );
    }
    let _ = writeln!(
        svg,
        r##"<rect x="{LEFT}" y="{TOP}" width="{plot_w:.1}" height="{plot_h:.1}" fill="none" stroke="#000"/>"##
    );
    for (k, line) in lines.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let dash = DASHES[k % DASHES.len()];
        let mut points = String::new();
        for &(px, py) in line
            .points
            .iter()
            .filter(|(a, b)| shown(*a, x.log) && shown(*b, y.log))
        {
            let _ = write!(points, "{:.1},{:.1} ", x_of(px), y_of(py));
        }
        let _ = writeln!(
            svg,
            r#"<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#
        );
        let ly = TOP + 10.0 + k as f64 * 20.0;
        let lx = LEFT + plot_w + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3" stroke-dasharray="{dash}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(&line.name)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 15.0,
        escape(x.label)
    );
    let _ = writeln!(
        svg,
        r#"<text x="16" y="{:.1}" font-size="12" transform="rotate(-90 16 {:.1})" text-anchor="middle">{}</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0,
        escape(y.label)
    );
    svg.push_str("</svg>\n");
    svg
}

/// An axis range: linear, or whole decades for a log axis.
struct Range {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Range {
    fn of(values: &[f64], log: bool) -> Range {
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite()) {
            return Range {
                lo: if log { 1.0 } else { 0.0 },
                hi: 10.0,
                log,
            };
        }
        if log {
            let (lo, hi) = (lo.log10().floor(), hi.log10().ceil());
            Range {
                lo,
                hi: if hi > lo { hi } else { lo + 1.0 },
                log,
            }
        } else {
            let lo = lo.min(0.0);
            let hi = nice_ceiling(hi);
            Range {
                lo,
                hi: if hi > lo { hi } else { lo + 1.0 },
                log,
            }
        }
    }

    /// Position of `v` along the axis, 0 to 1.
    fn fraction(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }

    fn ticks(&self) -> Vec<f64> {
        if self.log {
            // Whole decades; the range spans at most a few dozen.
            let decades = (self.hi - self.lo).clamp(1.0, 40.0) as i32;
            (0..=decades)
                .map(|d| 10f64.powf(self.lo + f64::from(d)))
                .collect()
        } else {
            (0..=4)
                .map(|j| self.lo + (self.hi - self.lo) * f64::from(j) / 4.0)
                .collect()
        }
    }
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
        let line = Line {
            name: "x".into(),
            points: vec![(0.0, 0.5), (1.0, 0.6), (100.0, 1.0)],
        };
        let svg = line_chart(
            "t",
            &Axis {
                label: "ms",
                log: true,
            },
            &Axis {
                label: "q",
                log: false,
            },
            &[line],
        );
        // The point at x = 0 cannot sit on a log axis.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains("points=\"") && svg.matches(',').count() >= 2);
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
