//! Charts as inline SVG, for the HTML report: lines over a linear,
//! logarithmic or "nines" axis, with shaded bands (fault windows, phases)
//! and marked positions. Pure: a [`Chart`] in, SVG text out, so a report
//! opens offline and the same data always draws the same picture.

use std::fmt::Write;

use super::escape;

/// The drawing's size in SVG units; it scales to the page's width.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 40.0;
/// Roughly how wide a character of the 11-unit labels is.
const CHAR_WIDTH: f64 = 6.2;
/// The most nines a distribution axis reaches: 99.9999%.
const MAX_NINES: f64 = 6.0;

/// How values map onto an axis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    Linear,
    /// Decades; values at or below zero are left out.
    Log,
    /// Percentiles (0 to 100) spread by their nines: 90% is one step from
    /// 0%, 99% two, 99.9% three, as HdrHistogram's plots show them.
    Nines,
}

/// What an axis's numbers are, for its tick labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Seconds from the start of the load, shown as m:ss.
    Clock,
    Milliseconds,
    PerSecond,
    Count,
    Percentile,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub unit: Unit,
}

#[derive(Debug, Clone)]
pub struct Line {
    pub label: String,
    /// Points in x order; a non-finite y breaks the line there.
    pub points: Vec<(f64, f64)>,
    pub colour: &'static str,
    /// Dashed: a baseline or a reference, behind the run's own lines.
    pub dashed: bool,
    /// A dot at each point, for sparse data such as one point per run.
    pub dots: bool,
}

/// A shaded stretch of the x axis, labelled where there is room.
#[derive(Debug, Clone)]
pub struct Band {
    pub start: f64,
    pub end: f64,
    pub label: String,
    pub fill: &'static str,
}

/// A vertical line at an x position, labelled.
#[derive(Debug, Clone)]
pub struct Marker {
    pub at: f64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// Names the chart for the page and for tests (`data-chart`).
    pub id: &'static str,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
}

/// The range of an axis in its own coordinates (log10 for Log, nines for
/// Nines).
#[derive(Debug, Clone, Copy)]
struct Range {
    lo: f64,
    hi: f64,
}

impl Scale {
    /// A value in axis coordinates; None where the scale cannot show it.
    fn coordinate(self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        match self {
            Scale::Linear => Some(v),
            Scale::Log => (v > 0.0).then(|| v.log10()),
            Scale::Nines => {
                let rest = (1.0 - v / 100.0).max(10f64.powf(-MAX_NINES));
                Some(-rest.log10())
            }
        }
    }
}

impl Chart {
    /// The chart as an `<svg>` element.
    pub fn svg(&self) -> String {
        let xs = self.range(true);
        let ys = self.range(false);
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        // Points far outside the range (only absurd input has them) are
        // pinned near the edge rather than written as infinities.
        let px =
            |c: f64| (LEFT + (c - xs.lo) / (xs.hi - xs.lo) * plot_w).clamp(-WIDTH, 2.0 * WIDTH);
        let py = |c: f64| {
            (TOP + plot_h - (c - ys.lo) / (ys.hi - ys.lo) * plot_h).clamp(-HEIGHT, 2.0 * HEIGHT)
        };

        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg class="chart" data-chart="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
            self.id,
            escape(&format!("{} against {}", self.y.label, self.x.label)),
        );
        // Bands first, under everything else; labels where they fit, in
        // time order.
        let mut bands: Vec<&Band> = self.bands.iter().collect();
        bands.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut free_from = f64::NEG_INFINITY;
        for band in bands {
            let (Some(a), Some(b)) = (
                self.x.scale.coordinate(band.start),
                self.x.scale.coordinate(band.end),
            ) else {
                continue;
            };
            let (a, b) = (px(a.clamp(xs.lo, xs.hi)), px(b.clamp(xs.lo, xs.hi)));
            let _ = write!(
                out,
                r#"<rect class="band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{plot_h}" fill="{}"><title>{}</title></rect>"#,
                (b - a).max(1.0),
                band.fill,
                escape(&band.label)
            );
            let text_w = band.label.chars().count() as f64 * CHAR_WIDTH;
            // Near the right edge, the label ends at the band instead.
            let x = if a + 2.0 + text_w > WIDTH - RIGHT {
                (b - 2.0 - text_w).max(LEFT)
            } else {
                a + 2.0
            };
            if x >= free_from {
                let _ = write!(
                    out,
                    r##"<text x="{x:.1}" y="{:.1}" font-size="11" fill="#7a2e2e">{}</text>"##,
                    TOP + 12.0,
                    escape(&band.label)
                );
                free_from = x + text_w + 6.0;
            }
        }
        self.grid(&mut out, xs, ys, &px, &py);
        // Dashed lines (baselines) under the run's own.
        let mut lines: Vec<&Line> = self.lines.iter().collect();
        lines.sort_by_key(|l| !l.dashed);
        for line in lines {
            self.draw(&mut out, line, &px, &py);
        }
        for marker in &self.markers {
            let Some(c) = self.x.scale.coordinate(marker.at) else {
                continue;
            };
            let x = px(c.clamp(xs.lo, xs.hi));
            let _ = write!(
                out,
                r##"<line class="marker" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" stroke="#222" stroke-width="1.5" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" font-size="11" font-weight="600">{}</text>"##,
                TOP + plot_h,
                x + 4.0,
                TOP + 26.0,
                escape(&marker.label)
            );
        }
        self.legend(&mut out);
        if self.lines.iter().all(|l| l.points.is_empty()) {
            let _ = write!(
                out,
                r##"<text x="{:.1}" y="{:.1}" font-size="14" fill="#888" text-anchor="middle">no data</text>"##,
                LEFT + plot_w / 2.0,
                TOP + plot_h / 2.0
            );
        }
        out.push_str("</svg>");
        out
    }

    /// The data's range on one axis in axis coordinates, widened to whole
    /// decades on a log scale and to a nice step on a linear one.
    fn range(&self, x: bool) -> Range {
        let axis = if x { &self.x } else { &self.y };
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        let mut take = |v: f64| {
            if let Some(c) = axis.scale.coordinate(v) {
                lo = lo.min(c);
                hi = hi.max(c);
            }
        };
        for line in &self.lines {
            for &(px, py) in &line.points {
                // Only points that show on both axes count.
                if self.x.scale.coordinate(px).is_some() && self.y.scale.coordinate(py).is_some() {
                    take(if x { px } else { py });
                }
            }
        }
        if x {
            for m in &self.markers {
                take(m.at);
            }
            for b in &self.bands {
                take(b.end);
            }
        }
        if !lo.is_finite() || !hi.is_finite() {
            return Range { lo: 0.0, hi: 1.0 };
        }
        let range = match axis.scale {
            Scale::Log => Range {
                lo: lo.floor(),
                hi: if hi.ceil() > lo.floor() {
                    hi.ceil()
                } else {
                    lo.floor() + 1.0
                },
            },
            Scale::Nines => Range {
                lo: 0.0,
                hi: hi.ceil().max(1.0),
            },
            // Time runs from the start to the end of the run, exactly.
            Scale::Linear if axis.unit == Unit::Clock => Range {
                lo: lo.min(0.0),
                hi: if hi > lo.min(0.0) {
                    hi
                } else {
                    lo.min(0.0) + 1.0
                },
            },
            Scale::Linear => {
                // Rates, counts and times start at zero; the top is a nice step.
                let lo = lo.min(0.0);
                let step = nice_step((hi - lo).max(f64::EPSILON) / 5.0);
                let hi = if hi > lo {
                    (hi / step).ceil() * step
                } else {
                    lo + 1.0
                };
                Range {
                    lo,
                    hi: hi.max(lo + step),
                }
            }
        };
        // Values so large that the span rounds away or overflows would put
        // NaN into the drawing: a unit range instead.
        let span = range.hi - range.lo;
        if span.is_finite() && span > 0.0 {
            range
        } else {
            Range { lo: 0.0, hi: 1.0 }
        }
    }

    /// Gridlines, ticks and axis labels.
    fn grid(
        &self,
        out: &mut String,
        xs: Range,
        ys: Range,
        px: &dyn Fn(f64) -> f64,
        py: &dyn Fn(f64) -> f64,
    ) {
        let bottom = HEIGHT - BOTTOM;
        for (c, label) in ticks(&self.y, ys) {
            let y = py(c);
            let _ = write!(
                out,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#555" text-anchor="end">{}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0,
                escape(&label)
            );
        }
        for (c, label) in ticks(&self.x, xs) {
            let x = px(c);
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom}" stroke="#efefef"/><text x="{x:.1}" y="{:.1}" font-size="11" fill="#555" text-anchor="middle">{}</text>"##,
                bottom + 15.0,
                escape(&label)
            );
        }
        let _ = write!(
            out,
            r##"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#333" text-anchor="middle">{}</text><text transform="translate(14 {:.1}) rotate(-90)" font-size="12" fill="#333" text-anchor="middle">{}</text>"##,
            WIDTH - LEFT - RIGHT,
            HEIGHT - TOP - BOTTOM,
            LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
            HEIGHT - 6.0,
            escape(&self.x.label),
            TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
            escape(&self.y.label),
        );
    }

    /// One line as polylines, broken where a point cannot be shown.
    fn draw(
        &self,
        out: &mut String,
        line: &Line,
        px: &dyn Fn(f64) -> f64,
        py: &dyn Fn(f64) -> f64,
    ) {
        let dash = if line.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &line.points {
            match (self.x.scale.coordinate(x), self.y.scale.coordinate(y)) {
                (Some(cx), Some(cy)) => runs
                    .last_mut()
                    .map(|r| r.push((px(cx), py(cy))))
                    .unwrap_or(()),
                _ => runs.push(Vec::new()),
            }
        }
        let _ = write!(
            out,
            r#"<g class="line" data-label="{}">"#,
            escape(&line.label)
        );
        for run in runs.iter().filter(|r| !r.is_empty()) {
            if run.len() == 1 && !line.dots {
                let (x, y) = run[0];
                let _ = write!(
                    out,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="2" fill="{}"/>"#,
                    line.colour
                );
                continue;
            }
            out.push_str(
                r#"<polyline fill="none" stroke-width="1.6" stroke-linejoin="round" points=""#,
            );
            for (i, (x, y)) in run.iter().enumerate() {
                let _ = write!(out, "{}{x:.1},{y:.1}", if i == 0 { "" } else { " " });
            }
            let _ = write!(out, r#"" stroke="{}"{dash}/>"#, line.colour);
            if line.dots {
                for (x, y) in run {
                    let _ = write!(
                        out,
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{}"/>"#,
                        line.colour
                    );
                }
            }
        }
        out.push_str("</g>");
    }

    /// The legend along the top, one swatch per line.
    fn legend(&self, out: &mut String) {
        let mut x = LEFT;
        for line in &self.lines {
            let dash = if line.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                out,
                r##"<line x1="{x:.1}" x2="{:.1}" y1="14" y2="14" stroke="{}" stroke-width="3"{dash}/><text x="{:.1}" y="18" font-size="11" fill="#333">{}</text>"##,
                x + 18.0,
                line.colour,
                x + 22.0,
                escape(&line.label)
            );
            x += 22.0 + line.label.chars().count() as f64 * CHAR_WIDTH + 14.0;
        }
    }
}

/// A step of 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    let power = 10f64.powf(raw.log10().floor());
    let m = raw / power;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// Tick positions in axis coordinates with their labels.
fn ticks(axis: &Axis, range: Range) -> Vec<(f64, String)> {
    match axis.scale {
        Scale::Log => {
            let decades = (range.hi - range.lo).round() as i64;
            // Every decade, or every other one on a tall range.
            let every = if decades > 8 { 2 } else { 1 };
            (range.lo as i64..=range.hi as i64)
                .filter(|d| (d - range.lo as i64) % every == 0)
                .map(|d| (d as f64, label(axis.unit, 10f64.powi(d as i32))))
                .collect()
        }
        Scale::Nines => {
            let mut ticks = vec![(0.0, "0%".to_string()), (2f64.log10(), "50%".to_string())];
            for n in 1..=range.hi as i32 {
                let p = 100.0 - 100.0 * 10f64.powi(-n);
                ticks.push((n as f64, format!("{}%", trim(p))));
            }
            ticks
        }
        Scale::Linear => {
            let step = nice_step((range.hi - range.lo) / 6.0);
            let step = match axis.unit {
                // Time ticks on whole seconds, minutes or hours.
                Unit::Clock => clock_step(range.hi - range.lo),
                _ => step,
            };
            let mut ticks = Vec::new();
            let mut v = (range.lo / step).ceil() * step;
            while v <= range.hi + step * 1e-9 && ticks.len() < 50 {
                ticks.push((v, label(axis.unit, v)));
                v += step;
            }
            ticks
        }
    }
}

/// A tick step for a time axis of `span` seconds: about six ticks.
fn clock_step(span: f64) -> f64 {
    const STEPS: [f64; 13] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 8.0)
        .unwrap_or_else(|| (span / 6.0 / 3600.0).ceil() * 3600.0)
}

/// A number without trailing zeros: 99.9, 50, 0.25.
fn trim(v: f64) -> String {
    let text = format!("{v:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A tick label in the axis's unit.
pub fn label(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Clock => {
            let secs = v.round() as i64;
            if secs >= 3600 {
                format!("{}:{:02}:{:02}", secs / 3600, secs % 3600 / 60, secs % 60)
            } else {
                format!("{}:{:02}", secs / 60, secs % 60)
            }
        }
        Unit::Milliseconds => {
            if v >= 1000.0 {
                format!("{} s", trim(v / 1000.0))
            } else if v >= 1.0 {
                format!("{} ms", trim(v))
            } else {
                format!("{} µs", trim(v * 1000.0))
            }
        }
        Unit::PerSecond => format!("{}/s", si(v)),
        Unit::Count => si(v),
        Unit::Percentile => format!("{}%", trim(v)),
    }
}

/// 1500 as 1.5k, 2000000 as 2M.
fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim((v / 1e6 * 100.0).round() / 100.0))
    } else if a >= 1e3 {
        format!("{}k", trim((v / 1e3 * 100.0).round() / 100.0))
    } else {
        trim((v * 100.0).round() / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(scale: Scale, points: Vec<(f64, f64)>) -> Chart {
        Chart {
            id: "test",
            x: Axis {
                label: "time".into(),
                scale: Scale::Linear,
                unit: Unit::Clock,
            },
            y: Axis {
                label: "latency".into(),
                scale,
                unit: Unit::Milliseconds,
            },
            lines: vec![Line {
                label: "p99".into(),
                points,
                colour: "#000",
                dashed: false,
                dots: false,
            }],
            bands: Vec::new(),
            markers: Vec::new(),
        }
    }

    #[test]
    fn a_log_axis_spans_whole_decades_and_labels_them_in_time_units() {
        let svg = chart(Scale::Log, vec![(0.0, 0.3), (1.0, 4.0), (2.0, 2500.0)]).svg();
        for label in ["100 µs", "1 ms", "10 ms", "100 ms", "1 s", "10 s"] {
            assert!(
                svg.contains(&format!(">{label}<")),
                "{label} missing from {svg}"
            );
        }
        assert!(!svg.contains(">10 µs<") && !svg.contains(">100 s<"));
    }

    #[test]
    fn points_a_scale_cannot_show_break_the_line_instead_of_bending_it() {
        let svg = chart(
            Scale::Log,
            vec![
                (0.0, 1.0),
                (1.0, 2.0),
                (2.0, 0.0),
                (3.0, f64::NAN),
                (4.0, 3.0),
                (5.0, 4.0),
            ],
        )
        .svg();
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
    }

    #[test]
    fn the_nines_axis_spreads_the_tail() {
        let c = |p| Scale::Nines.coordinate(p).unwrap();
        assert_eq!(c(0.0), 0.0);
        assert!((c(90.0) - 1.0).abs() < 1e-9);
        assert!((c(99.9) - 3.0).abs() < 1e-9);
        // 100% sits at the axis's end rather than at infinity.
        assert_eq!(c(100.0), MAX_NINES);
        let mut nines = chart(Scale::Linear, vec![(0.0, 1.0), (99.0, 2.0), (99.95, 3.0)]);
        nines.x = Axis {
            label: "percentile".into(),
            scale: Scale::Nines,
            unit: Unit::Percentile,
        };
        let svg = nines.svg();
        for label in ["0%", "50%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(svg.contains(&format!(">{label}<")), "{label} missing");
        }
        assert!(!svg.contains(">99.999%<"));
    }

    #[test]
    fn absurd_values_never_put_nan_into_the_drawing() {
        for points in [
            vec![(-1e17, 1.0), (-1e17, 2.0)],
            vec![(0.0, -1e308), (1.0, 1e308)],
            vec![(0.0, f64::MAX), (f64::MAX, 1.0)],
        ] {
            let svg = chart(Scale::Linear, points).svg();
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
    }

    #[test]
    fn an_empty_chart_says_so() {
        assert!(chart(Scale::Log, Vec::new()).svg().contains(">no data<"));
    }

    #[test]
    fn bands_are_shaded_and_labelled_only_where_the_label_fits() {
        let mut c = chart(Scale::Linear, (0..=100).map(|t| (t as f64, 1.0)).collect());
        c.bands = (0..100)
            .map(|i| Band {
                start: i as f64,
                end: i as f64 + 0.5,
                label: "kill <node 0>".into(),
                fill: "red",
            })
            .collect();
        let svg = c.svg();
        assert_eq!(svg.matches(r#"class="band""#).count(), 100);
        let labels = svg.matches(">kill &lt;node 0&gt;</text>").count();
        assert!(labels > 3 && labels < 20, "{labels} labels");
    }

    #[test]
    fn labels_read_as_people_write_them() {
        assert_eq!(label(Unit::Clock, 65.0), "1:05");
        assert_eq!(label(Unit::Clock, 3725.0), "1:02:05");
        assert_eq!(label(Unit::PerSecond, 12_500.0), "12.5k/s");
        assert_eq!(label(Unit::Count, 2_000_000.0), "2M");
        assert_eq!(label(Unit::Milliseconds, 0.25), "250 µs");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.2), 5.0);
        assert_eq!(nice_step(130.0), 200.0);
    }
}
