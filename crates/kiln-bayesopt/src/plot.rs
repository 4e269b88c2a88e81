//! Small hand-built SVG charts for reports and web pages: convergence (best value vs
//! experiment) and a 1-D or 2-D slice of the posterior through the best experiment.
//!
//! Hand-built rather than plotters: two fixed chart shapes need ~250 lines, no extra crates,
//! and byte-for-byte deterministic output that tests and snapshots can rely on.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::model::{Goal, Surrogate};
use crate::space::{Domain, format_number};
use crate::state::OptimizerState;

pub(crate) const W: f64 = 480.0;
pub(crate) const H: f64 = 320.0;
pub(crate) const LEFT: f64 = 64.0;
pub(crate) const RIGHT: f64 = 16.0;
pub(crate) const TOP: f64 = 28.0;
pub(crate) const BOTTOM: f64 = 44.0;

/// Tick label with three significant digits.
pub(crate) fn tick(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format_number(x);
    }
    let a = x.abs();
    if !(1e-2..1e4).contains(&a) {
        return format!("{x:.2e}");
    }
    let decimals = (2 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) struct Frame {
    pub(crate) x0: f64,
    pub(crate) x1: f64,
    pub(crate) y0: f64,
    pub(crate) y1: f64,
    /// The x axis counts (experiments, steps): ticks only at whole numbers.
    pub(crate) whole_x: bool,
}

impl Frame {
    pub(crate) fn new(x0: f64, x1: f64, y0: f64, y1: f64) -> Self {
        let pad = |a: f64, b: f64| {
            if (b - a).abs() < 1e-12 {
                (a - 0.5 * a.abs().max(1.0), b + 0.5 * b.abs().max(1.0))
            } else {
                (a, b)
            }
        };
        let (x0, x1) = pad(x0, x1);
        let (y0, y1) = pad(y0, y1);
        let m = 0.05 * (y1 - y0);
        Frame {
            x0,
            x1,
            y0: y0 - m,
            y1: y1 + m,
            whole_x: false,
        }
    }
    fn whole_x(mut self, whole: bool) -> Self {
        self.whole_x = whole;
        self
    }
    /// Five evenly spaced x ticks, or the whole numbers nearest them.
    fn x_ticks(&self) -> Vec<f64> {
        let mut ticks: Vec<f64> = (0..=4)
            .map(|i| self.x0 + (self.x1 - self.x0) * f64::from(i) / 4.0)
            .map(|x| if self.whole_x { x.round() } else { x })
            .collect();
        ticks.dedup();
        ticks
    }
    pub(crate) fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x0) / (self.x1 - self.x0) * (W - LEFT - RIGHT)
    }
    pub(crate) fn py(&self, y: f64) -> f64 {
        H - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (H - TOP - BOTTOM)
    }
}

fn open(title: &str) -> String {
    open_described(title, "")
}

/// Starts a chart that reads as one image to assistive technology: `role="img"`, its title
/// as `<title>` (the accessible name) and what it shows as `<desc>`.
pub(crate) fn open_described(title: &str, desc: &str) -> String {
    let desc = if desc.is_empty() {
        String::new()
    } else {
        format!("<desc>{}</desc>\n", esc(desc))
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n<title>{}</title>\n{desc}<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n<text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"13\" aria-hidden=\"true\">{}</text>\n",
        esc(title),
        W / 2.0,
        esc(title)
    )
}

/// Ends a chart that has nothing to draw with `note` in its middle.
pub(crate) fn close_empty(mut out: String, note: &str) -> String {
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n</svg>",
        W / 2.0,
        H / 2.0,
        esc(note)
    );
    out
}

/// The model's mean as a line and its ±2σ as a shaded band, from `(x, mean, std)` points.
pub(crate) fn mean_and_band(out: &mut String, f: &Frame, pts: &[(f64, f64, f64)]) {
    let mut band = String::new();
    for (i, p) in pts.iter().enumerate() {
        let _ = write!(
            band,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { "L" },
            f.px(p.0),
            f.py(p.1 + 2.0 * p.2)
        );
    }
    for p in pts.iter().rev() {
        let _ = write!(band, "L{:.1} {:.1}", f.px(p.0), f.py(p.1 - 2.0 * p.2));
    }
    let _ = writeln!(
        out,
        "<path d=\"{band}Z\" fill=\"#36c\" fill-opacity=\"0.2\" stroke=\"none\"/>"
    );
    let line: String = pts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                f.px(p.0),
                f.py(p.1)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<path d=\"{line}\" fill=\"none\" stroke=\"#36c\" stroke-width=\"2\"/>"
    );
}

pub(crate) fn axes(out: &mut String, f: &Frame, xlabel: &str, ylabel: &str, y_ticks: bool) {
    let (l, r, t, b) = (LEFT, W - RIGHT, TOP, H - BOTTOM);
    let _ = writeln!(
        out,
        "<path d=\"M{l} {t}V{b}H{r}\" fill=\"none\" stroke=\"black\"/>"
    );
    for x in f.x_ticks() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            f.px(x),
            b + 14.0,
            esc(&tick(x))
        );
    }
    for i in 0..=4 {
        if y_ticks {
            let y = f.y0 + (f.y1 - f.y0) * i as f64 / 4.0;
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                l - 4.0,
                f.py(y) + 4.0,
                esc(&tick(y))
            );
        }
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        (l + r) / 2.0,
        H - 8.0,
        esc(xlabel)
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(11 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (t + b) / 2.0,
        esc(ylabel)
    );
}

/// Convergence chart: every output as a dot and the best-so-far as a step line.
pub fn convergence_svg(outputs: &[f64], goal: Goal, objective: &str) -> String {
    let finite: Vec<f64> = outputs.iter().copied().filter(|v| v.is_finite()).collect();
    let best = finite
        .iter()
        .copied()
        .reduce(|b, y| if goal.better(y, b) { y } else { b });
    let desc = match best {
        Some(b) => format!(
            "{} experiments in the order recorded as grey dots; the red step line is the best {objective} so far ({} {}).",
            outputs.len(),
            goal.as_str(),
            tick(b)
        ),
        None => String::new(),
    };
    let mut out = open_described(&format!("Convergence: best {objective} so far"), &desc);
    if finite.is_empty() {
        return close_empty(out, "no experiments yet");
    }
    let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let f = Frame::new(1.0, outputs.len().max(2) as f64, lo, hi).whole_x(true);
    axes(&mut out, &f, "experiment", objective, true);
    let mut best: Option<f64> = None;
    let mut path = String::new();
    for (i, y) in outputs.iter().enumerate() {
        if !y.is_finite() {
            continue;
        }
        let x = (i + 1) as f64;
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#9aa\"/>",
            f.px(x),
            f.py(*y)
        );
        let b = match best {
            Some(b) if !goal.better(*y, b) => b,
            _ => *y,
        };
        if path.is_empty() {
            let _ = write!(path, "M{:.1} {:.1}", f.px(x), f.py(b));
        } else {
            let _ = write!(path, "H{:.1}V{:.1}", f.px(x), f.py(b));
        }
        best = Some(b);
    }
    let _ = writeln!(
        out,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#c33\" stroke-width=\"2\"/>\n</svg>"
    );
    out
}

/// Most points a line chart marks with dots.
const MAX_DOTS: usize = 200;

/// A line chart of `(x, y)` points in the order given (a notebook's metric track, say); points
/// that are not finite are left out.
pub fn line_svg(title: &str, xlabel: &str, ylabel: &str, points: &[(f64, f64)]) -> String {
    let mut out = open(title);
    let pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return close_empty(out, "no points yet");
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in &pts {
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    let whole = pts.iter().all(|(x, _)| x.fract() == 0.0);
    let f = Frame::new(x0, x1, y0, y1).whole_x(whole);
    axes(&mut out, &f, xlabel, ylabel, true);
    let mut path = String::new();
    for (i, (x, y)) in pts.iter().enumerate() {
        let _ = write!(
            path,
            "{}{:.1} {:.1}",
            if i == 0 { "M" } else { "L" },
            f.px(*x),
            f.py(*y)
        );
        // Dots only while they can be told apart; a long track is its line.
        if pts.len() <= MAX_DOTS {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#369\"/>",
                f.px(*x),
                f.py(*y)
            );
        }
    }
    let _ = writeln!(
        out,
        "<path d=\"{path}\" fill=\"none\" stroke=\"#369\" stroke-width=\"1.5\"/>\n</svg>"
    );
    out
}

/// Colours of the series on one chart, in order (distinct for the common colour blindnesses).
const SERIES: [&str; 6] = [
    "#336699", "#c0392b", "#2e8b57", "#8e44ad", "#b9770e", "#555555",
];

/// Most points drawn per series: a longer track is drawn from evenly spaced points (its first
/// and last kept), so a million-point track costs what a two-thousand-point one does.
const MAX_LINE_POINTS: usize = 2000;

/// Several named tracks on one line chart, each in its own colour with a legend; points that
/// are not finite are left out.
pub fn lines_svg(
    title: &str,
    xlabel: &str,
    ylabel: &str,
    series: &[(&str, &[(f64, f64)])],
) -> String {
    let mut out = open(title);
    let drawn: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(name, pts)| {
            let finite: Vec<(f64, f64)> = pts
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let stride = finite.len().div_ceil(MAX_LINE_POINTS).max(1);
            let mut kept: Vec<(f64, f64)> = finite.iter().step_by(stride).copied().collect();
            if let Some(last) = finite.last()
                && kept.last() != Some(last)
            {
                kept.push(*last);
            }
            (*name, kept)
        })
        .collect();
    let all = drawn.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    let mut any = false;
    for (x, y) in all {
        any = true;
        x0 = x0.min(*x);
        x1 = x1.max(*x);
        y0 = y0.min(*y);
        y1 = y1.max(*y);
    }
    if !any {
        return close_empty(out, "no points yet");
    }
    let whole = drawn
        .iter()
        .all(|(_, p)| p.iter().all(|(x, _)| x.fract() == 0.0));
    let f = Frame::new(x0, x1, y0, y1).whole_x(whole);
    axes(&mut out, &f, xlabel, ylabel, true);
    for (i, (name, pts)) in drawn.iter().enumerate() {
        let colour = SERIES[i % SERIES.len()];
        let mut path = String::new();
        for (j, (x, y)) in pts.iter().enumerate() {
            let _ = write!(
                path,
                "{}{:.1} {:.1}",
                if j == 0 { "M" } else { "L" },
                f.px(*x),
                f.py(*y)
            );
        }
        let _ = writeln!(
            out,
            "<path d=\"{path}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"><title>{}</title></path>",
            esc(name)
        );
        if pts.len() <= 60 {
            for (x, y) in pts {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{colour}\"/>",
                    f.px(*x),
                    f.py(*y)
                );
            }
        }
        // The legend, top right, one line per track.
        let ly = TOP + 4.0 + 14.0 * i as f64;
        let _ = writeln!(
            out,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#222\">{}</text>",
            W - RIGHT - 110.0,
            W - RIGHT - 96.0,
            W - RIGHT - 92.0,
            ly + 4.0,
            esc(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Convergence chart of a state's experiments.
pub fn state_convergence_svg(state: &OptimizerState) -> String {
    let ys: Vec<f64> = state.active().map(|e| e.output).collect();
    convergence_svg(&ys, state.objective.goal, &state.objective.name)
}

pub(crate) fn viridis(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let u = t - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let c = |x: f64, y: f64| (x + (y - x) * u).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
}

/// A slice of the posterior through `base` (raw coordinates) along one or two real/integer
/// variables (indices into the space): a mean line with a ±2σ band in 1-D, a mean heat map in 2-D.
pub fn posterior_slice_svg(
    model: &Surrogate,
    vars: &[usize],
    base: &[f64],
    objective: &str,
) -> Result<String> {
    let space = model.space();
    if base.len() != space.len() {
        return Err(Error::InvalidPoint(
            "slice base point has the wrong number of coordinates".into(),
        ));
    }
    let range = |i: usize| -> Result<(f64, f64, String)> {
        let v = space
            .variables()
            .get(i)
            .ok_or_else(|| Error::InvalidArguments(format!("no variable {i}")))?;
        match v.domain {
            Domain::Real { lower, upper, .. } => Ok((lower, upper, v.name.clone())),
            Domain::Integer { lower, upper } => Ok((lower as f64, upper as f64, v.name.clone())),
            Domain::Categorical { .. } => Err(Error::InvalidArguments(format!(
                "cannot slice along categorical '{}'",
                v.name
            ))),
        }
    };
    let at = |i: usize, u: f64| space.variables()[i].from_unit(u);
    match vars {
        [a] => {
            let (lo, hi, name) = range(*a)?;
            let n = 121;
            let pts: Vec<(f64, f64, f64)> = (0..n)
                .map(|k| {
                    let mut raw = base.to_vec();
                    raw[*a] = match space.variables()[*a].domain {
                        Domain::Integer { .. } => {
                            (lo + (hi - lo) * k as f64 / (n - 1) as f64).round()
                        }
                        _ => at(*a, k as f64 / (n - 1) as f64),
                    };
                    let p = model.predict(&raw);
                    (raw[*a], p.mean, p.std)
                })
                .collect();
            let obs: Vec<(f64, f64)> = model
                .raws()
                .iter()
                .zip(model.gp().standardised_outputs())
                .map(|(r, _)| (r[*a], model.predict(r).mean))
                .collect();
            let ylo = pts
                .iter()
                .map(|p| p.1 - 2.0 * p.2)
                .fold(f64::INFINITY, f64::min);
            let yhi = pts
                .iter()
                .map(|p| p.1 + 2.0 * p.2)
                .fold(f64::NEG_INFINITY, f64::max);
            let f = Frame::new(lo, hi, ylo, yhi);
            let mut out = open(&format!("Posterior of {objective} along {name}"));
            axes(&mut out, &f, &name, objective, true);
            mean_and_band(&mut out, &f, &pts);
            for (x, y) in obs {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"black\" fill-opacity=\"0.6\"/>",
                    f.px(x),
                    f.py(y.clamp(f.y0, f.y1))
                );
            }
            out.push_str("</svg>\n");
            Ok(out)
        }
        [a, b] if a != b => {
            let (alo, ahi, aname) = range(*a)?;
            let (blo, bhi, bname) = range(*b)?;
            let n = 40;
            let mut grid = Vec::with_capacity(n * n);
            for j in 0..n {
                for i in 0..n {
                    let mut raw = base.to_vec();
                    raw[*a] = at(*a, (i as f64 + 0.5) / n as f64);
                    raw[*b] = at(*b, (j as f64 + 0.5) / n as f64);
                    grid.push(model.predict(&raw).mean);
                }
            }
            let mlo = grid.iter().copied().fold(f64::INFINITY, f64::min);
            let mhi = grid.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let f = Frame {
                x0: alo,
                x1: ahi,
                y0: blo,
                y1: bhi,
                whole_x: false,
            };
            let mut out = open(&format!(
                "Posterior mean of {objective} ({} to {})",
                tick(mlo),
                tick(mhi)
            ));
            let (cw, ch) = ((W - LEFT - RIGHT) / n as f64, (H - TOP - BOTTOM) / n as f64);
            for j in 0..n {
                for i in 0..n {
                    let t = if mhi > mlo {
                        (grid[j * n + i] - mlo) / (mhi - mlo)
                    } else {
                        0.5
                    };
                    let _ = writeln!(
                        out,
                        "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\" shape-rendering=\"crispEdges\"/>",
                        LEFT + i as f64 * cw,
                        H - BOTTOM - (j + 1) as f64 * ch,
                        cw + 0.3,
                        ch + 0.3,
                        viridis(t)
                    );
                }
            }
            axes(&mut out, &f, &aname, &bname, true);
            for r in model.raws() {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"white\" stroke=\"black\"/>",
                    f.px(r[*a]),
                    f.py(r[*b])
                );
            }
            out.push_str("</svg>\n");
            Ok(out)
        }
        _ => Err(Error::InvalidArguments(
            "a slice needs one or two distinct variables".into(),
        )),
    }
}

/// A posterior slice of a state through its best experiment, along variables named in `names`.
/// Uses the stored model when current (no refit).
pub fn state_slice_svg(state: &mut OptimizerState, names: &[&str], seed: u64) -> Result<String> {
    let vars = names
        .iter()
        .map(|n| {
            state
                .space
                .variables()
                .iter()
                .position(|v| v.name == *n)
                .ok_or_else(|| Error::InvalidArguments(format!("unknown variable '{n}'")))
        })
        .collect::<Result<Vec<_>>>()?;
    let best = state
        .best()
        .cloned()
        .ok_or_else(|| Error::MissingState("no experiments to plot".into()))?;
    let base = state
        .space
        .parse_inputs(&best.inputs)
        .map_err(|(_, m)| Error::InvalidPoint(m))?;
    let model = state.surrogate(None, false, seed)?;
    let name = state.objective.name.clone();
    posterior_slice_svg(&model, &vars, &base, &name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_chart_draws_each_finite_point_and_escapes_labels() {
        let svg = super::line_svg(
            "yield <%>",
            "step",
            "y",
            &[(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)],
        );
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains("yield &lt;%&gt;"));
        assert!(super::line_svg("t", "x", "y", &[]).contains("no points yet"));
        let long: Vec<(f64, f64)> = (0..5000).map(|i| (i as f64, (i as f64).sin())).collect();
        let svg = super::line_svg("t", "x", "y", &long);
        assert_eq!(
            svg.matches("<circle").count(),
            0,
            "a long track is its line"
        );
        let line = svg.rsplit("<path d=\"").next().unwrap();
        assert_eq!(
            line.matches('L').count(),
            4999,
            "every point is on the line"
        );
    }

    use super::*;
    use crate::action::apply;
    use serde_json::json;

    fn state() -> OptimizerState {
        let s = apply(
            None,
            &json!({"action": "define_space", "variables": [
            {"name": "x", "type": "real", "bounds": [0, 1]},
            {"name": "k", "type": "integer", "bounds": [1, 5]},
            {"name": "c", "type": "categorical", "categories": ["a", "b"]}
        ], "objective": {"name": "y <1>", "goal": "minimize"}}),
            0,
        )
        .unwrap()
        .state;
        let rows: Vec<serde_json::Value> = (0..6).map(|i| json!({"inputs": {"x": i as f64 / 5.0, "k": 1 + i % 5, "c": if i % 2 == 0 { "a" } else { "b" }}, "output": (i as f64 - 2.5).powi(2)})).collect();
        apply(
            Some(s),
            &json!({"action": "add_experiments", "experiments": rows}),
            0,
        )
        .unwrap()
        .state
    }

    #[test]
    fn ticks_have_three_significant_digits() {
        let cases = [
            (0.0, "0"),
            (98.698261, "98.7"),
            (-55.299979, "-55.3"),
            (0.123456, "0.123"),
            (1234.5, "1234"),
            (2.5e-5, "2.50e-5"),
            (12.0, "12"),
        ];
        for (x, want) in cases {
            assert_eq!(tick(x), want);
        }
    }

    #[test]
    fn convergence_line_is_monotone_for_the_goal() {
        let svg = convergence_svg(&[3.0, 5.0, 1.0, 2.0], Goal::Minimize, "loss");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 4);
        // Step path: starts at the first value, drops once at experiment 3, never rises.
        let path = svg.lines().find(|l| l.contains("stroke=\"#c33\"")).unwrap();
        assert_eq!(path.matches('V').count(), 3);
        assert!(convergence_svg(&[], Goal::Maximize, "y").contains("no experiments yet"));
    }

    /// The x tick labels of a chart, left to right.
    fn x_labels(svg: &str) -> Vec<String> {
        svg.lines()
            .filter(|l| l.contains("text-anchor=\"middle\">") && !l.contains("rotate"))
            .filter_map(|l| l.split('>').nth(1)?.split('<').next().map(str::to_owned))
            .filter(|t| t.parse::<f64>().is_ok())
            .collect()
    }

    #[test]
    fn counted_axes_tick_only_at_whole_numbers() {
        let svg = convergence_svg(&[0.8, 0.6, 0.7, 0.9], Goal::Maximize, "y");
        assert_eq!(x_labels(&svg), ["1", "2", "3", "4"]);
        let steps = line_svg("t", "step", "v", &[(1.0, 0.5), (2.0, 0.7), (3.0, 0.6)]);
        assert_eq!(x_labels(&steps), ["1", "2", "3"]);
        let real = line_svg("t", "time", "v", &[(0.0, 0.5), (0.5, 0.7), (1.0, 0.6)]);
        assert_eq!(x_labels(&real), ["0", "0.25", "0.5", "0.75", "1"]);
    }

    #[test]
    fn slices_render_in_one_and_two_dimensions_and_escape_text() {
        let mut s = state();
        let one = state_slice_svg(&mut s, &["x"], 0).unwrap();
        assert!(one.contains("fill-opacity=\"0.2\"") && one.contains("y &lt;1&gt;"));
        assert!(!one.contains("NaN"));
        let two = state_slice_svg(&mut s, &["x", "k"], 0).unwrap();
        assert_eq!(two.matches("<rect").count(), 40 * 40 + 1);
        assert!(state_slice_svg(&mut s, &["c"], 0).is_err());
        assert!(state_slice_svg(&mut s, &["x", "x"], 0).is_err());
        assert!(state_slice_svg(&mut s, &["nope"], 0).is_err());
    }
}

#[cfg(test)]
mod lines_tests {
    use super::lines_svg;

    #[test]
    fn several_tracks_share_a_chart_with_a_legend_and_long_tracks_are_thinned() {
        let a: Vec<(f64, f64)> = (0..1_000_000)
            .map(|i| (i as f64, (i % 97) as f64))
            .collect();
        let b = [(0.0, 5.0), (10.0, 7.0)];
        let svg = lines_svg(
            "loss and accuracy",
            "step",
            "value",
            &[("loss", &a), ("accuracy", &b)],
        );
        assert_eq!(
            svg.matches("stroke-width=\"1.5\"><title>").count(),
            2,
            "one line per track"
        );
        assert!(svg.contains(">loss</text>") && svg.contains(">accuracy</text>"));
        assert!(
            svg.len() < 200_000,
            "a long track is thinned: {} bytes",
            svg.len()
        );
        // The last point of a thinned track is kept.
        assert!(svg.contains("<title>loss</title>"));
        let empty = lines_svg("none", "step", "value", &[("x", &[])]);
        assert!(empty.contains("no points yet"));
    }
}
