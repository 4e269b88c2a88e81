//! Markdown rendering for the session export: search-space table, data table and an
//! iteration-by-iteration account of locked data, models and acquisitions. Pure functions.

use std::fmt::Write as _;

use crate::model::Goal;
use crate::space::{Domain, SearchSpace, format_number};
use crate::state::{LockDetails, OptimizerState, SuggestedPoint};

/// Escapes a cell for a Markdown table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The search space as a Markdown table.
pub fn space_table(space: &SearchSpace) -> String {
    let mut out = String::from(
        "| Variable | Type | Range / levels | Scale | Unit | Description |\n|---|---|---|---|---|---|\n",
    );
    for v in space.variables() {
        let (kind, range, scale) = match &v.domain {
            Domain::Real { lower, upper, log } => (
                "real",
                format!("[{}, {}]", format_number(*lower), format_number(*upper)),
                if *log { "log" } else { "linear" },
            ),
            Domain::Integer { lower, upper } => {
                ("integer", format!("[{lower}, {upper}]"), "linear")
            }
            Domain::Categorical { categories } => ("categorical", categories.join(", "), "one-hot"),
        };
        let _ = writeln!(
            out,
            "| {} | {kind} | {} | {scale} | {} | {} |",
            cell(&v.name),
            cell(&range),
            cell(v.unit.as_deref().unwrap_or("")),
            cell(v.description.as_deref().unwrap_or(""))
        );
    }
    out
}

/// The experiments as a Markdown table; the best row is marked.
pub fn data_table(state: &OptimizerState) -> String {
    let names: Vec<&str> = state
        .space
        .variables()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    let has_noise = state.experiments.iter().any(|e| e.noise.is_some());
    let mut out = format!(
        "| # | {} | {} |",
        names
            .iter()
            .map(|n| cell(n))
            .collect::<Vec<_>>()
            .join(" | "),
        cell(&state.objective.name)
    );
    out.push_str(if has_noise { " noise |\n" } else { "\n" });
    out.push_str(&"|---".repeat(names.len() + 2 + usize::from(has_noise)));
    out.push_str("|\n");
    let best = state.best();
    for (i, e) in state.experiments.iter().enumerate() {
        let values: Vec<String> = names
            .iter()
            .map(|n| {
                e.inputs
                    .get(*n)
                    .map_or(String::new(), |v| cell(&v.to_string()))
            })
            .collect();
        let mark = if best.is_some_and(|b| std::ptr::eq(b, e)) {
            " ★"
        } else {
            ""
        };
        let _ = write!(
            out,
            "| {}{mark} | {} | {} |",
            i + 1,
            values.join(" | "),
            format_number(e.output)
        );
        if has_noise {
            let _ = write!(out, " {} |", e.noise.map_or(String::new(), format_number));
        }
        out.push('\n');
    }
    if state.experiments.is_empty() {
        out.push_str("\n_No experiments yet._\n");
    }
    out
}

fn points_table(space: &SearchSpace, points: &[SuggestedPoint]) -> String {
    let names: Vec<&str> = space.variables().iter().map(|v| v.name.as_str()).collect();
    let mut out = format!(
        "| # | {} | mean | std | acquisition |\n{}|\n",
        names.join(" | "),
        "|---".repeat(names.len() + 4)
    );
    for (i, p) in points.iter().enumerate() {
        let values: Vec<String> = names
            .iter()
            .map(|n| {
                p.inputs
                    .get(*n)
                    .map_or(String::new(), |v| cell(&v.to_string()))
            })
            .collect();
        let f = |v: Option<f64>| v.map_or("–".to_string(), format_number);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            i + 1,
            values.join(" | "),
            f(p.mean),
            f(p.std),
            f(p.acquisition)
        );
    }
    out
}

/// An iteration-by-iteration account of the locked decisions.
pub fn iteration_account(state: &OptimizerState) -> String {
    let mut out = String::new();
    let goal = if state.objective.goal == Goal::Maximize {
        "maximize"
    } else {
        "minimize"
    };
    let _ = writeln!(
        out,
        "Objective: {goal} **{}**. {} experiment(s) recorded.\n",
        cell(&state.objective.name),
        state.experiments.len()
    );
    if state.locks.is_empty() {
        out.push_str("_No decisions locked yet._\n");
        return out;
    }
    let mut current = 0;
    for lock in &state.locks {
        if lock.iteration != current {
            current = lock.iteration;
            let _ = writeln!(out, "### Iteration {current}\n");
        }
        match &lock.details {
            LockDetails::Data {
                n_experiments,
                best,
                data_fingerprint,
            } => {
                let _ = write!(
                    out,
                    "- **Data locked**: {n_experiments} experiment(s) (fingerprint `{data_fingerprint}`)"
                );
                if let Some(b) = best {
                    let inputs = b
                        .inputs
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let _ = write!(
                        out,
                        "; best {} = {} at {inputs}",
                        cell(&state.objective.name),
                        format_number(b.output)
                    );
                }
                out.push('\n');
            }
            LockDetails::Model {
                kernel,
                hyperparameters,
                cv,
                n_experiments,
            } => {
                let ls = hyperparameters
                    .lengthscales
                    .iter()
                    .map(|l| format_number(*l))
                    .collect::<Vec<_>>()
                    .join(", ");
                let _ = writeln!(
                    out,
                    "- **Model locked**: GP, {} kernel on {n_experiments} experiment(s); lengthscales [{ls}], signal variance {}, noise variance {} (standardised units); LOO RMSE {}, R² {}, 95 % coverage {}, mean z² {}",
                    kernel.label(),
                    format_number(hyperparameters.signal_variance),
                    format_number(hyperparameters.noise_variance),
                    format_number(cv.rmse),
                    cv.r2.map_or("n/a".into(), format_number),
                    format_number(cv.coverage_95),
                    format_number(cv.mean_z2)
                );
            }
            LockDetails::Acquisition {
                strategy,
                params,
                points,
            } => {
                let _ = writeln!(
                    out,
                    "- **Acquisition locked**: {strategy}, parameters `{params}`; {} point(s):\n",
                    points.len()
                );
                out.push_str(&points_table(&state.space, points));
            }
        }
        if let Some(n) = &lock.notes {
            let _ = writeln!(out, "  - Notes: {}", cell(n));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::apply;
    use serde_json::json;

    fn state() -> OptimizerState {
        let s = apply(None, &json!({"action": "define_space", "variables": [
            {"name": "temp", "type": "real", "bounds": [100, 300], "unit": "°C", "description": "anneal | temperature"},
            {"name": "solvent", "type": "categorical", "categories": ["water", "ethanol"]}
        ], "objective": {"name": "yield", "goal": "maximize"}}), 0).unwrap().state;
        let s = apply(
            Some(s),
            &json!({"action": "add_experiments", "experiments": [
                {"inputs": {"temp": 150, "solvent": "water"}, "output": 0.4},
                {"inputs": {"temp": 250, "solvent": "ethanol"}, "output": 0.9},
                {"inputs": {"temp": 200, "solvent": "water"}, "output": 0.6}
            ]}),
            0,
        )
        .unwrap()
        .state;
        let s = apply(
            Some(s),
            &json!({"action": "lock", "what": "data", "notes": "batch 1"}),
            0,
        )
        .unwrap()
        .state;
        let s = apply(Some(s), &json!({"action": "suggest", "q": 2}), 0)
            .unwrap()
            .state;
        let s = apply(Some(s), &json!({"action": "lock", "what": "model"}), 0)
            .unwrap()
            .state;
        apply(
            Some(s),
            &json!({"action": "lock", "what": "acquisition"}),
            0,
        )
        .unwrap()
        .state
    }

    #[test]
    fn space_table_has_one_row_per_variable_and_escapes_pipes() {
        let t = space_table(&state().space);
        assert_eq!(t.lines().count(), 4);
        assert!(t.contains("| temp | real | [100, 300] | linear | °C | anneal \\| temperature |"));
        assert!(t.contains("| solvent | categorical | water, ethanol | one-hot |"));
    }

    #[test]
    fn data_table_marks_the_best_row() {
        let t = data_table(&state());
        assert!(t.contains("| 2 ★ | 250 | ethanol | 0.9 |"), "{t}");
        assert_eq!(t.lines().count(), 5);
    }

    #[test]
    fn iteration_account_lists_each_lock() {
        let t = iteration_account(&state());
        assert!(t.contains("### Iteration 1"));
        assert!(t.contains("**Data locked**: 3 experiment(s)"));
        assert!(t.contains("Matérn 5/2 kernel"));
        assert!(t.contains("**Acquisition locked**: EI"));
        assert!(t.contains("Notes: batch 1"));
    }
}
