//! `edit_experiment`: correct or exclude a recorded experiment with a reason. Nothing is
//! deleted: the row keeps its earlier values in `edits` and its identity (`Experiment::key`).

use serde_json::{Value as Json, json};

use super::{ActionOutcome, Args, EXPERIMENT_AUDIT};
use crate::error::{Error, Result};
use crate::experiment::{Edit, validate_rows};
use crate::state::OptimizerState;

/// Most characters in an edit's reason.
pub const MAX_REASON_CHARS: usize = 2000;

pub(super) fn edit_experiment(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let n = args.experiment.ok_or_else(|| {
        Error::InvalidArguments("edit_experiment needs 'experiment' (its number, from 1)".into())
    })?;
    let total = state.experiments.len();
    if n == 0 || n > total {
        return Err(Error::NotFound(format!(
            "no experiment {n}: there are {total} (numbered from 1)"
        )));
    }
    let reason = args.reason.map(|r| r.trim().to_owned()).unwrap_or_default();
    if reason.is_empty() {
        return Err(Error::InvalidArguments(
            "edit_experiment needs a 'reason' (kept with the experiment)".into(),
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::InvalidArguments(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let old = state.experiments[n - 1].clone();
    let mut row = old.clone();
    let mut before = serde_json::Map::new();
    if let Some(inputs) = args.inputs {
        // Corrected inputs replace the named variables only.
        let mut merged = row.inputs.clone();
        merged.extend(inputs);
        if merged != row.inputs {
            before.insert("inputs".into(), json!(row.inputs));
            row.inputs = merged;
        }
    }
    if let Some(y) = args.output
        && y != row.output
    {
        before.insert("output".into(), json!(row.output));
        row.output = y;
    }
    if let Some(noise) = args.noise {
        let noise = match noise {
            Json::Null => None,
            Json::Number(x) => x.as_f64(),
            other => {
                return Err(Error::InvalidArguments(format!(
                    "noise must be a number or null, got {other}"
                )));
            }
        };
        if noise != row.noise {
            before.insert("noise".into(), json!(row.noise));
            row.noise = noise;
        }
    }
    if let Some(values) = args.outputs {
        let values: std::collections::BTreeMap<String, Json> = serde_json::from_value(values)
            .map_err(|_| {
                Error::InvalidArguments(
                    "edit_experiment: outputs must be an object of {name: number}".into(),
                )
            })?;
        let mut merged = row.outputs.clone();
        for (k, v) in values {
            if !state.outputs.iter().any(|o| o.name == k) {
                return Err(Error::InvalidArguments(format!(
                    "'{k}' is not a recorded output of this space"
                )));
            }
            match v.as_f64() {
                Some(x) => {
                    merged.insert(k, x);
                }
                None if v.is_null() => {
                    merged.remove(&k);
                }
                None => {
                    return Err(Error::InvalidArguments(format!(
                        "output '{k}' must be a number or null"
                    )));
                }
            }
        }
        if merged != row.outputs {
            before.insert("outputs".into(), json!(row.outputs));
            row.outputs = merged;
        }
    }
    match args.exclude {
        Some(true) if row.excluded.is_none() => {
            before.insert("excluded".into(), Json::Null);
            row.excluded = Some(reason.clone());
        }
        Some(false) if row.excluded.is_some() => {
            before.insert("excluded".into(), json!(row.excluded));
            row.excluded = None;
        }
        _ => {}
    }
    if before.is_empty() {
        return Err(Error::InvalidArguments(format!(
            "nothing to change in experiment {n}: give output, noise, inputs, outputs or exclude with new values"
        )));
    }
    validate_rows(&state.space, std::slice::from_ref(&row)).map_err(|e| match e {
        Error::InvalidExperiments(mut rows) => {
            for r in &mut rows {
                r.row = n - 1;
            }
            Error::InvalidExperiments(rows)
        }
        other => other,
    })?;
    row.id = Some(old.key());
    row.edits.push(Edit {
        reason: reason.clone(),
        before: before.clone(),
    });
    state.experiments[n - 1] = row.clone();
    let changed: Vec<&str> = before.keys().map(String::as_str).collect();
    let text = match (args.exclude, changed.as_slice()) {
        (Some(true), ["excluded"]) => format!(
            "experiment {n} excluded from the model ({reason}); it stays in the record; {} of {total} in use",
            state.active().count()
        ),
        (Some(false), ["excluded"]) => format!(
            "experiment {n} is used by the model again; {} of {total} in use",
            state.active().count()
        ),
        _ => format!("experiment {n} updated ({}): {reason}", changed.join(", ")),
    };
    let result = json!({"experiment": n, "row": row, "changed": changed, "n_experiments": total, "n_active": state.active().count()});
    let mut out = ActionOutcome::new(state, result, text);
    out.audit.push((
        EXPERIMENT_AUDIT.to_string(),
        json!({"experiment": n, "key": row.key(), "reason": reason, "before": before, "excluded": row.excluded.is_some()}),
    ));
    Ok(out)
}
