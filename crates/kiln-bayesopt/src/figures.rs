//! The optimizer panel's model charts from a state (SVG, server-side): the model along one
//! variable through the best experiment, a 2-D map of the mean for two variables, and the
//! leave-one-out parity chart. Grids are capped so a page view stays cheap.

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::model::Surrogate;
use crate::plot::{
    BOTTOM, Frame, H, LEFT, RIGHT, TOP, W, axes, esc, mean_and_band, open_described, tick, viridis,
};
use crate::space::Domain;
use crate::state::OptimizerState;

/// Most grid points along one axis of a chart (a 1-D line, each side of a 2-D map).
pub const MAX_GRID: usize = 80;
/// Default points along a 1-D line.
pub const DEFAULT_LINE_GRID: usize = 61;
/// Default cells along each side of a 2-D map.
pub const DEFAULT_MAP_GRID: usize = 30;

fn grid_size(grid: Option<usize>, default: usize) -> Result<usize> {
    match grid {
        None => Ok(default),
        Some(g) if (2..=MAX_GRID).contains(&g) => Ok(g),
        Some(g) => Err(Error::InvalidArguments(format!(
            "grid must be between 2 and {MAX_GRID}, got {g}"
        ))),
    }
}

fn variable_index(state: &OptimizerState, name: &str) -> Result<usize> {
    state
        .space
        .variables()
        .iter()
        .position(|v| v.name == name)
        .ok_or_else(|| {
            Error::InvalidArguments(format!(
                "unknown variable '{name}' (the space has {})",
                state
                    .space
                    .variables()
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// The model and the raw point charts are drawn through: the best experiment the model uses.
fn model_and_base(state: &mut OptimizerState, seed: u64) -> Result<(Surrogate, Vec<f64>)> {
    let model = state.surrogate(None, false, seed)?;
    let best = state
        .best()
        .ok_or_else(|| Error::MissingState("no experiments to plot".into()))?;
    let base = state
        .space
        .parse_inputs(&best.inputs)
        .map_err(|(_, m)| Error::InvalidPoint(m))?;
    Ok((model, base))
}

fn label(state: &OptimizerState, i: usize) -> String {
    let v = &state.space.variables()[i];
    match v.unit.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => format!("{} ({u})", v.name),
        _ => v.name.clone(),
    }
}

fn objective_label(state: &OptimizerState) -> String {
    match state.objective.unit.as_deref().map(str::trim) {
        Some(u) if !u.is_empty() => format!("{} ({u})", state.objective.name),
        _ => state.objective.name.clone(),
    }
}

/// The model's mean and a ±2σ band along one variable, the others held at the best
/// experiment; the experiments the model uses as dots at their measured values. A categorical
/// variable shows each level's mean with a ±2σ bar.
pub fn dependence_svg(
    state: &mut OptimizerState,
    variable: &str,
    grid: Option<usize>,
    seed: u64,
) -> Result<String> {
    let n = grid_size(grid, DEFAULT_LINE_GRID)?;
    let a = variable_index(state, variable)?;
    let (model, base) = model_and_base(state, seed)?;
    let var = state.space.variables()[a].clone();
    let xs: Vec<f64> = match &var.domain {
        Domain::Real { .. } => (0..n)
            .map(|k| var.from_unit(k as f64 / (n - 1) as f64))
            .collect(),
        Domain::Integer { lower, upper } => {
            let mut v: Vec<f64> = (0..n)
                .map(|k| {
                    (*lower as f64 + (upper - lower) as f64 * k as f64 / (n - 1) as f64).round()
                })
                .collect();
            v.dedup();
            v
        }
        Domain::Categorical { categories } => (0..categories.len()).map(|i| i as f64).collect(),
    };
    let pts: Vec<(f64, f64, f64)> = xs
        .iter()
        .map(|x| {
            let mut raw = base.clone();
            raw[a] = *x;
            let p = model.predict(&raw);
            (*x, p.mean, p.std)
        })
        .collect();
    let obs: Vec<(f64, f64)> = model
        .raws()
        .iter()
        .zip(model.outputs())
        .map(|(r, y)| (r[a], *y))
        .collect();
    let ylo = pts
        .iter()
        .map(|p| p.1 - 2.0 * p.2)
        .chain(obs.iter().map(|o| o.1))
        .fold(f64::INFINITY, f64::min);
    let yhi = pts
        .iter()
        .map(|p| p.1 + 2.0 * p.2)
        .chain(obs.iter().map(|o| o.1))
        .fold(f64::NEG_INFINITY, f64::max);
    let objective = objective_label(state);
    let xlabel = label(state, a);
    let held: Vec<String> = state
        .space
        .variables()
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != a)
        .map(|(i, v)| format!("{} = {}", v.name, v.value_of(base[i])))
        .collect();
    let (best_x, best_p) = pts
        .iter()
        .fold(None::<&(f64, f64, f64)>, |b, p| match b {
            Some(b) if !state.objective.goal.better(p.1, b.1) => Some(b),
            _ => Some(p),
        })
        .map(|p| (p.0, p.1))
        .unwrap_or((f64::NAN, f64::NAN));
    let desc = format!(
        "Model mean of {objective} along {} with a band of two standard deviations{}; dots are the {} experiments the model uses at their measured values. The mean is best at {} = {} ({}).",
        var.name,
        if held.is_empty() {
            String::new()
        } else {
            format!(
                ", the other variables held at the best experiment ({})",
                held.join(", ")
            )
        },
        obs.len(),
        var.name,
        var.value_of(best_x),
        tick(best_p)
    );
    let title = format!("Model of {} along {}", state.objective.name, var.name);
    let mut out = open_described(&title, &desc);
    if let Domain::Categorical { categories } = &var.domain {
        let f = Frame::new(-0.5, categories.len() as f64 - 0.5, ylo, yhi);
        // Axes without numeric x ticks: the level names are the ticks.
        let mut frame = String::new();
        axes(&mut frame, &f, &xlabel, &objective, true);
        for line in frame.lines() {
            let numeric_tick = line.contains("text-anchor=\"middle\">")
                && !line.contains("rotate")
                && line
                    .split('>')
                    .nth(1)
                    .and_then(|t| t.split('<').next())
                    .is_some_and(|t| t.parse::<f64>().is_ok());
            if !numeric_tick {
                out.push_str(line);
                out.push('\n');
            }
        }
        for (i, c) in categories.iter().enumerate() {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                f.px(i as f64),
                H - BOTTOM + 14.0,
                esc(c)
            );
        }
        for (x, m, s) in &pts {
            let _ = writeln!(
                out,
                "<path d=\"M{:.1} {:.1}V{:.1}\" stroke=\"#36c\" stroke-width=\"6\" stroke-opacity=\"0.3\"/>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#36c\"/>",
                f.px(*x),
                f.py(m + 2.0 * s),
                f.py(m - 2.0 * s),
                f.px(*x),
                f.py(*m)
            );
        }
        for (x, y) in obs {
            let _ = writeln!(
                out,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"black\" fill-opacity=\"0.6\"/>",
                f.px(x) + 10.0,
                f.py(y)
            );
        }
        out.push_str("</svg>\n");
        return Ok(out);
    }
    let (lo, hi) = (xs[0], xs[xs.len() - 1]);
    let f = Frame::new(lo, hi, ylo, yhi);
    axes(&mut out, &f, &xlabel, &objective, true);
    mean_and_band(&mut out, &f, &pts);
    for (x, y) in obs {
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"black\" fill-opacity=\"0.6\"/>",
            f.px(x),
            f.py(y)
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}

/// A map of the model's mean over two real or integer variables (the others held at the best
/// experiment), `grid` × `grid` cells, with the experiments the model uses drawn on it.
pub fn map_svg(
    state: &mut OptimizerState,
    x: &str,
    y: &str,
    grid: Option<usize>,
    seed: u64,
) -> Result<String> {
    let n = grid_size(grid, DEFAULT_MAP_GRID)?;
    let a = variable_index(state, x)?;
    let b = variable_index(state, y)?;
    if a == b {
        return Err(Error::InvalidArguments(
            "a map needs two different variables".into(),
        ));
    }
    let range = |i: usize| -> Result<(f64, f64)> {
        let v = &state.space.variables()[i];
        match v.domain {
            Domain::Real { lower, upper, .. } => Ok((lower, upper)),
            Domain::Integer { lower, upper } => Ok((lower as f64, upper as f64)),
            Domain::Categorical { .. } => Err(Error::InvalidArguments(format!(
                "'{}' is categorical: a map needs real or integer variables",
                v.name
            ))),
        }
    };
    let (alo, ahi) = range(a)?;
    let (blo, bhi) = range(b)?;
    let (model, base) = model_and_base(state, seed)?;
    let vars = state.space.variables();
    let mut cells = Vec::with_capacity(n * n);
    for j in 0..n {
        for i in 0..n {
            let mut raw = base.clone();
            raw[a] = vars[a].from_unit((i as f64 + 0.5) / n as f64);
            raw[b] = vars[b].from_unit((j as f64 + 0.5) / n as f64);
            cells.push(model.predict(&raw).mean);
        }
    }
    let mlo = cells.iter().copied().fold(f64::INFINITY, f64::min);
    let mhi = cells.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let f = Frame {
        x0: alo,
        x1: ahi,
        y0: blo,
        y1: bhi,
        whole_x: false,
    };
    let objective = objective_label(state);
    let desc = format!(
        "Heat map of the model mean of {objective} over {} and {} ({n} by {n} cells, from {} in dark purple to {} in yellow), other variables held at the best experiment; white circles are the {} experiments the model uses.",
        vars[a].name,
        vars[b].name,
        tick(mlo),
        tick(mhi),
        model.raws().len()
    );
    let mut out = open_described(
        &format!(
            "Model mean of {} ({} to {})",
            state.objective.name,
            tick(mlo),
            tick(mhi)
        ),
        &desc,
    );
    let (cw, ch) = ((W - LEFT - RIGHT) / n as f64, (H - TOP - BOTTOM) / n as f64);
    for j in 0..n {
        for i in 0..n {
            let t = if mhi > mlo {
                (cells[j * n + i] - mlo) / (mhi - mlo)
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
    axes(&mut out, &f, &label(state, a), &label(state, b), true);
    for r in model.raws() {
        let _ = writeln!(
            out,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"white\" stroke=\"black\"/>",
            f.px(r[a]),
            f.py(r[b])
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}

/// Leave-one-out parity: each experiment's measured value against the model's prediction
/// without it (±2σ whiskers), with the line where they agree.
pub fn parity_svg(state: &mut OptimizerState, seed: u64) -> Result<String> {
    let model = state.surrogate(None, false, seed)?;
    let loo = model.loo();
    let ys = model.outputs();
    if ys.len() < 2 {
        return Err(Error::MissingState(
            "a parity chart needs at least two experiments".into(),
        ));
    }
    let pts: Vec<(f64, f64, f64)> = ys
        .iter()
        .zip(&loo.predictions)
        .map(|(y, p)| (*y, p.mean, p.std))
        .collect();
    let lo = pts
        .iter()
        .flat_map(|p| [p.0, p.1 - 2.0 * p.2])
        .fold(f64::INFINITY, f64::min);
    let hi = pts
        .iter()
        .flat_map(|p| [p.0, p.1 + 2.0 * p.2])
        .fold(f64::NEG_INFINITY, f64::max);
    let f = Frame::new(lo, hi, lo, hi);
    let f = Frame {
        x0: f.y0,
        x1: f.y1,
        ..f
    };
    let objective = objective_label(state);
    let desc = format!(
        "Each of the {} experiments the model uses: measured {objective} across, the model's leave-one-out prediction up, with two-standard-deviation whiskers; points on the diagonal are predicted exactly. RMSE {}, R² {}, {}% inside their 95% interval.",
        pts.len(),
        tick(loo.rmse),
        loo.r2.map_or("n/a".into(), |r| format!("{r:.2}")),
        (loo.coverage_95 * 100.0).round()
    );
    let mut out = open_described(
        &format!(
            "Leave-one-out: predicted vs measured {}",
            state.objective.name
        ),
        &desc,
    );
    axes(
        &mut out,
        &f,
        &format!("measured {objective}"),
        &format!("predicted {objective}"),
        true,
    );
    let _ = writeln!(
        out,
        "<path d=\"M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>",
        f.px(f.x0),
        f.py(f.x0),
        f.px(f.x1),
        f.py(f.x1)
    );
    for (y, m, s) in pts {
        let _ = writeln!(
            out,
            "<path d=\"M{:.1} {:.1}V{:.1}\" stroke=\"#36c\" stroke-opacity=\"0.5\"/>\n<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#36c\"/>",
            f.px(y),
            f.py(m + 2.0 * s),
            f.py(m - 2.0 * s),
            f.px(y),
            f.py(m)
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::apply;
    use serde_json::json;

    fn state(n: usize) -> OptimizerState {
        let s = apply(
            None,
            &json!({"action": "define_space", "variables": [
                {"name": "x", "type": "real", "bounds": [0, 1], "unit": "mm"},
                {"name": "k", "type": "integer", "bounds": [1, 5]},
                {"name": "c", "type": "categorical", "categories": ["a", "b <i>"]}
            ], "objective": {"name": "y", "goal": "maximize"}}),
            0,
        )
        .unwrap()
        .state;
        let rows: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let x = i as f64 / n as f64;
                json!({"inputs": {"x": x, "k": 1 + i % 5, "c": if i % 2 == 0 { "a" } else { "b <i>" }},
                       "output": (6.0 * x).sin() + 0.1 * (i % 5) as f64})
            })
            .collect();
        apply(
            Some(s),
            &json!({"action": "add_experiments", "experiments": rows}),
            0,
        )
        .unwrap()
        .state
    }

    fn accessible(svg: &str) {
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("role=\"img\"") && svg.contains("<title>") && svg.contains("<desc>"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn dependence_draws_a_band_the_experiments_and_says_what_it_holds() {
        let mut s = state(8);
        let svg = dependence_svg(&mut s, "x", None, 0).unwrap();
        accessible(&svg);
        assert!(svg.contains("fill-opacity=\"0.2\""), "a band");
        // One dot per experiment at its measured value, no more.
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains("x (mm)") && svg.contains("held at the best experiment"));
        let cat = dependence_svg(&mut s, "c", None, 0).unwrap();
        accessible(&cat);
        assert!(cat.contains("b &lt;i&gt;"), "level names are escaped ticks");
        assert_eq!(cat.matches("r=\"4\"").count(), 2, "one mean per level");
        let int = dependence_svg(&mut s, "k", Some(80), 0).unwrap();
        accessible(&int);
        assert!(matches!(
            dependence_svg(&mut s, "nope", None, 0),
            Err(Error::InvalidArguments(_))
        ));
        assert!(matches!(
            dependence_svg(&mut s, "x", Some(81), 0),
            Err(Error::InvalidArguments(_))
        ));
    }

    #[test]
    fn excluded_experiments_leave_the_charts() {
        let mut s = state(8);
        s = apply(Some(s), &json!({"action": "edit_experiment", "experiment": 2, "exclude": true, "reason": "spilled"}), 0)
            .unwrap()
            .state;
        assert_eq!(
            dependence_svg(&mut s, "x", None, 0)
                .unwrap()
                .matches("<circle")
                .count(),
            7
        );
        assert!(
            parity_svg(&mut s, 0)
                .unwrap()
                .contains("Each of the 7 experiments")
        );
    }

    #[test]
    fn map_is_grid_by_grid_with_the_experiments_on_it() {
        let mut s = state(8);
        let svg = map_svg(&mut s, "x", "k", Some(12), 0).unwrap();
        accessible(&svg);
        assert_eq!(svg.matches("<rect").count(), 12 * 12 + 1);
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(map_svg(&mut s, "x", "c", None, 0).is_err());
        assert!(map_svg(&mut s, "x", "x", None, 0).is_err());
        assert!(map_svg(&mut s, "x", "k", Some(1), 0).is_err());
    }

    #[test]
    fn parity_plots_every_experiment_against_its_loo_prediction() {
        let mut s = state(8);
        let model = s.surrogate(None, false, 0).unwrap();
        let loo = model.loo();
        let svg = parity_svg(&mut s, 0).unwrap();
        accessible(&svg);
        assert_eq!(svg.matches("<circle").count(), 8);
        assert!(svg.contains(&format!("RMSE {}", tick(loo.rmse))));
        let mut one = state(1);
        assert!(parity_svg(&mut one, 0).is_err());
    }
}
