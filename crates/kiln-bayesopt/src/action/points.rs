//! New points as a lab can set them: designs that keep to the constraints, rounding to each
//! variable's step (never onto a recorded run), and the model's best predicted point.

use serde_json::json;

use super::{ActionOutcome, Args, MAX_DESIGN_POINTS, text};
use crate::acquisition::Acquisition;
use crate::design::{DesignMethod, design};
use crate::error::{Error, Result};
use crate::optimize::{SuggestOptions, suggest};
use crate::state::{OptimizerState, SuggestedPoint};

/// A design that meets the constraints: drawn in growing batches, infeasible points dropped.
pub(super) fn feasible_design(
    state: &OptimizerState,
    method: DesignMethod,
    n: usize,
    seed: u64,
    observed: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>> {
    let constraints = state.indexed_constraints();
    if constraints.is_empty() {
        return design(&state.space, method, n, seed, observed);
    }
    let mut out: Vec<Vec<f64>> = Vec::new();
    for attempt in 0..6u64 {
        let want = (n * 4) << attempt;
        let drawn = design(
            &state.space,
            method,
            want.min(MAX_DESIGN_POINTS * 16),
            seed.wrapping_add(attempt),
            observed,
        )?;
        for r in drawn {
            if out.len() < n && crate::constraint::feasible(&constraints, &r) && !out.contains(&r) {
                out.push(r);
            }
        }
        if out.len() >= n {
            break;
        }
    }
    if out.is_empty() {
        return Err(Error::InvalidSpace(
            "the constraints leave too little of the space to draw a design from".into(),
        ));
    }
    Ok(out)
}

/// Raw coordinates rounded to each variable's step, unless rounding leaves the constraints.
fn rounded(state: &OptimizerState, raw: &[f64]) -> Vec<f64> {
    let r = state.space.round_raw(raw);
    if crate::constraint::feasible(&state.indexed_constraints(), &r) {
        r
    } else {
        raw.to_vec()
    }
}

/// New points rounded to each variable's step, except where rounding would repeat a recorded
/// experiment or an earlier point of the batch (or leave the constraints): such a point stays
/// as found, so a suggestion or design is never a silent repeat.
pub(super) fn rounded_new(state: &OptimizerState, raws: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let observed: Vec<Vec<f64>> = state
        .experiments
        .iter()
        .filter_map(|e| state.space.parse_inputs(&e.inputs).ok())
        .collect();
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(raws.len());
    for raw in raws {
        let r = rounded(state, raw);
        let repeat = observed.contains(&r) || out.contains(&r);
        out.push(if repeat { raw.clone() } else { r });
    }
    out
}

pub(super) fn design_points(state: &OptimizerState, raws: &[Vec<f64>]) -> Vec<SuggestedPoint> {
    rounded_new(state, raws)
        .iter()
        .map(|r| SuggestedPoint {
            inputs: state.space.to_inputs(r),
            mean: None,
            std: None,
            acquisition: None,
        })
        .collect()
}

/// The model's best predicted point: the best of the acquisition search on the mean alone
/// (UCB with beta = 0) and of the experiments the model uses, by predicted mean.
pub fn optimum(state: &mut OptimizerState, seed: u64) -> Result<SuggestedPoint> {
    let model = state.surrogate(None, false, seed)?;
    let constraints = state.indexed_constraints();
    let opts = SuggestOptions {
        acquisition: Acquisition::Ucb { beta: 0.0 },
        q: 1,
        seed,
        constraints: constraints.clone(),
        ..SuggestOptions::default()
    };
    let goal = state.objective.goal;
    let mut candidates: Vec<Vec<f64>> = suggest(&model, &opts)
        .into_iter()
        .map(|s| rounded(state, &s.raw))
        .collect();
    candidates.extend(
        model
            .raws()
            .iter()
            .filter(|r| crate::constraint::feasible(&constraints, r))
            .cloned(),
    );
    let mut best: Option<(Vec<f64>, crate::gp::Prediction)> = None;
    for raw in candidates {
        let p = model.predict(&raw);
        if best
            .as_ref()
            .is_none_or(|(_, b)| goal.better(p.mean, b.mean))
        {
            best = Some((raw, p));
        }
    }
    let (raw, p) = best.ok_or_else(|| Error::MissingState("no point to predict".into()))?;
    Ok(SuggestedPoint {
        inputs: state.space.to_inputs(&raw),
        mean: Some(p.mean),
        std: Some(p.std),
        acquisition: None,
    })
}

pub(super) fn optimum_action(
    mut state: OptimizerState,
    _args: Args,
    seed: u64,
) -> Result<ActionOutcome> {
    let point = optimum(&mut state, seed)?;
    let text = format!(
        "the model's best predicted point: {}: {} {} ± {}",
        text::inputs_text(&state.space, &point.inputs),
        state.objective.name,
        text::sig(point.mean.unwrap_or(f64::NAN)),
        text::sig(point.std.unwrap_or(f64::NAN))
    );
    Ok(ActionOutcome::new(state, json!({"optimum": point}), text))
}
