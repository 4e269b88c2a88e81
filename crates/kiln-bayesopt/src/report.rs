//! Markdown rendering for the session export: search-space table, data table and an
//! iteration-by-iteration account of locked data, models and acquisitions. Pure functions.

use std::fmt::Write as _;

use crate::space::{Domain, SearchSpace, Value, format_number};
use crate::state::{LockDetails, OptimizerState, SuggestedPoint};

/// Escapes a cell for a Markdown table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A table of plain-text cells: rendered as Markdown for the report, as HTML by the web pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Column headings.
    pub columns: Vec<String>,
    /// Rows, each as long as `columns`.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// The table in Markdown, cells escaped.
    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = line(&self.columns);
        out.push_str(&"|---".repeat(self.columns.len()));
        out.push_str("|\n");
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// The search space: variable, type, range or levels, scale, unit, description.
pub fn space_rows(space: &SearchSpace) -> Table {
    let columns = [
        "Variable",
        "Type",
        "Range / levels",
        "Scale",
        "Unit",
        "Description",
    ];
    let rows = space
        .variables()
        .iter()
        .map(|v| {
            let (kind, range, scale) = match &v.domain {
                Domain::Real { lower, upper, log } => (
                    "real",
                    format!("[{}, {}]", format_number(*lower), format_number(*upper)),
                    if *log { "log" } else { "linear" },
                ),
                Domain::Integer { lower, upper } => {
                    ("integer", format!("[{lower}, {upper}]"), "linear")
                }
                Domain::Categorical { categories } => {
                    ("categorical", categories.join(", "), "one-hot")
                }
            };
            vec![
                v.name.clone(),
                kind.to_string(),
                range,
                scale.to_string(),
                v.unit.clone().unwrap_or_default(),
                v.description.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Table {
        columns: columns.map(String::from).to_vec(),
        rows,
    }
}

/// The search space as a Markdown table.
pub fn space_table(space: &SearchSpace) -> String {
    space_rows(space).markdown()
}

/// The experiments: number (★ on the best), one column per variable, the objective and the
/// noise when any experiment gives one.
pub fn data_rows(state: &OptimizerState) -> Table {
    let names: Vec<&str> = state
        .space
        .variables()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    let has_noise = state.experiments.iter().any(|e| e.noise.is_some());
    let has_excluded = state.experiments.iter().any(|e| !e.is_active());
    let mut columns = vec!["#".to_string()];
    columns.extend(names.iter().map(|n| n.to_string()));
    columns.push(state.objective.name.clone());
    if has_noise {
        columns.push("noise".into());
    }
    if has_excluded {
        columns.push("excluded".into());
    }
    // Suggested versus actual, once anything went through the queue.
    let has_queue = !state.queue.is_empty();
    if has_queue {
        columns.push("source".into());
        columns.push("suggested".into());
    }
    let best = state.best();
    let rows = state
        .experiments
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mark = if best.is_some_and(|b| std::ptr::eq(b, e)) {
                " ★"
            } else {
                ""
            };
            let mut row = vec![format!("{}{mark}", i + 1)];
            row.extend(
                names
                    .iter()
                    .map(|n| e.inputs.get(*n).map_or(String::new(), |v| v.to_string())),
            );
            row.push(format_number(e.output));
            if has_noise {
                row.push(e.noise.map_or(String::new(), format_number));
            }
            if has_excluded {
                row.push(e.excluded.clone().unwrap_or_default());
            }
            if has_queue {
                let (source, suggested) = provenance(state, e);
                row.push(source);
                row.push(suggested);
            }
            row
        })
        .collect();
    Table { columns, rows }
}

/// Where an experiment came from and what was suggested: ("queue q… (EI, iteration 2)", "as
/// run" or the suggested inputs), or ("outside the queue", "–").
pub fn provenance(state: &OptimizerState, e: &crate::experiment::Experiment) -> (String, String) {
    match state.queued_for(e) {
        Some(q) => (
            format!("queue {} ({}, iteration {})", q.id, q.strategy, q.iteration),
            if q.suggested == e.inputs {
                "as run".into()
            } else {
                inputs_cell(&q.suggested)
            },
        ),
        None if e.queued.is_some() => ("queue (entry not found)".into(), "–".into()),
        None => ("outside the queue".into(), "–".into()),
    }
}

fn inputs_cell(inputs: &crate::space::Inputs) -> String {
    inputs
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The queue: id, iteration, strategy, kernel, status, suggested and actual inputs, why it
/// failed.
pub fn queue_rows(state: &OptimizerState) -> Table {
    let columns = [
        "id",
        "iteration",
        "strategy",
        "kernel",
        "status",
        "suggested",
        "actual",
        "reason",
    ]
    .map(String::from)
    .to_vec();
    let rows = state
        .queue
        .iter()
        .map(|q| {
            vec![
                q.id.clone(),
                q.iteration.to_string(),
                q.strategy.clone(),
                q.kernel
                    .map_or("–".into(), |k| format!("{k:?}").to_lowercase()),
                q.status.as_str().into(),
                inputs_cell(&q.suggested),
                match (&q.actual, q.status) {
                    (Some(a), _) => inputs_cell(a),
                    (None, crate::queue::QueueStatus::Done) => "as suggested".into(),
                    (None, _) => "–".into(),
                },
                q.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    Table { columns, rows }
}

/// The experiments as a Markdown table; the best row is marked.
pub fn data_table(state: &OptimizerState) -> String {
    let mut out = data_rows(state).markdown();
    if state.experiments.is_empty() {
        out.push_str("\n_No experiments yet._\n");
    }
    out
}

/// Suggested points: number, one column per variable, posterior mean, std and acquisition.
pub fn suggestion_rows(space: &SearchSpace, points: &[SuggestedPoint]) -> Table {
    let names: Vec<&str> = space.variables().iter().map(|v| v.name.as_str()).collect();
    let mut columns = vec!["#".to_string()];
    columns.extend(names.iter().map(|n| n.to_string()));
    columns.extend(["mean", "std", "acquisition"].map(String::from));
    let f = |v: Option<f64>| v.map_or("–".to_string(), |x| significant(x, 4));
    let rows = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = vec![(i + 1).to_string()];
            row.extend(names.iter().map(|n| match p.inputs.get(*n) {
                Some(Value::Number(x)) => significant(*x, 5),
                Some(v) => v.to_string(),
                None => String::new(),
            }));
            row.extend([f(p.mean), f(p.std), f(p.acquisition)]);
            row
        })
        .collect();
    Table { columns, rows }
}

/// `x` to `digits` significant digits for reading (744.605704 → 744.61 at 5), trailing zeros
/// dropped; integers, very small and very large values as [`format_number`] writes them.
fn significant(x: f64, digits: i32) -> String {
    if !x.is_finite() || x == x.round() || x.abs() < 1e-3 || x.abs() >= 1e6 {
        return format_number(x);
    }
    let decimals = (digits - 1 - x.abs().log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn points_table(space: &SearchSpace, points: &[SuggestedPoint]) -> String {
    suggestion_rows(space, points).markdown()
}

/// An iteration-by-iteration account of the locked decisions.
pub fn iteration_account(state: &OptimizerState) -> String {
    let mut out = String::new();
    let goal = state.objective.goal.as_str();
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

    #[test]
    fn table_numbers_read_at_a_few_significant_digits() {
        let cases = [
            (744.605704, 5, "744.61"),
            (1.963047, 5, "1.963"),
            (0.854065, 4, "0.8541"),
            (0.067829, 4, "0.06783"),
            (0.5, 4, "0.5"),
            (12.0, 4, "12"),
            (-7.123456, 4, "-7.123"),
            (123456.7, 4, "123457"),
            (0.0001234, 4, "1.2340e-4"),
        ];
        for (x, digits, expected) in cases {
            assert_eq!(significant(x, digits), expected, "{x} at {digits}");
        }
    }

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
