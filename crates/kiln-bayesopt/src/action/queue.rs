//! The queue actions: `queue` (the last suggestions, or points chosen by hand), `start`,
//! `complete` (the measured outputs and, if different, the inputs actually run) and `fail`
//! (with a reason). A completed entry becomes an experiment that names it.

use serde_json::{Value as Json, json};

use super::edit::MAX_REASON_CHARS;
use super::{ActionOutcome, Args, text};
use crate::error::{Error, Result};
use crate::experiment::{Experiment, rows_from_json};
use crate::kernel::Kernel;
use crate::queue::{MAX_QUEUE, QueueStatus, QueuedExperiment};
use crate::space::format_number;
use crate::state::OptimizerState;

fn entry_json(e: &QueuedExperiment) -> Json {
    serde_json::to_value(e).unwrap_or(Json::Null)
}

/// Queues the last suggestions (default) or `points` chosen by hand (strategy "manual").
/// A suggestion already queued is skipped, so queueing twice does not run a point twice.
pub(super) fn queue(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let iteration = state.iteration();
    let mut entries = Vec::new();
    if let Some(points) = args.points {
        if points.is_empty() {
            return Err(Error::InvalidArguments(
                "queue: 'points' needs at least one point".into(),
            ));
        }
        for (i, p) in points.iter().enumerate() {
            let raw = state.space.parse_inputs(p).map_err(|(f, m)| {
                Error::InvalidPoint(format!("point {i}: {}: {m}", f.unwrap_or_default()))
            })?;
            let salt = format!("manual:{}", state.queue.len() + i);
            entries.push(QueuedExperiment::new(
                iteration,
                "manual",
                state.space.to_inputs(&raw),
                &salt,
            ));
        }
    } else {
        let last = state.last_suggestions.as_ref().ok_or_else(|| {
            Error::MissingState(
                "no suggestions to queue: call suggest or initial_design first, or send 'points'"
                    .into(),
            )
        })?;
        let kernel = last
            .params
            .get("kernel")
            .and_then(|k| serde_json::from_value::<Kernel>(k.clone()).ok());
        for (i, p) in last.points.iter().enumerate() {
            let mut e = QueuedExperiment::new(
                iteration,
                &last.strategy,
                p.inputs.clone(),
                &format!("{i}:{}", last.params),
            );
            e.acquisition = last.params.get("acquisition").cloned();
            e.kernel = kernel;
            e.seed = last.params.get("seed").and_then(Json::as_u64);
            e.predicted_mean = p.mean;
            e.predicted_std = p.std;
            entries.push(e);
        }
    }
    let before = entries.len();
    entries.retain(|e| !state.queue.iter().any(|q| q.id == e.id));
    let skipped = before - entries.len();
    if state.queue.len() + entries.len() > MAX_QUEUE {
        return Err(Error::InvalidArguments(format!(
            "the queue holds at most {MAX_QUEUE} entries, finished ones included"
        )));
    }
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "- {} ({}, iteration {}): {}",
                e.id,
                e.strategy,
                e.iteration,
                text::inputs_text(&state.space, &e.suggested)
            )
        })
        .collect();
    let mut summary = format!("queued {} experiment(s)", entries.len());
    if skipped > 0 {
        summary.push_str(&format!("; {skipped} already in the queue"));
    }
    lines.insert(0, summary);
    let result =
        json!({"queued": entries.iter().map(entry_json).collect::<Vec<_>>(), "skipped": skipped});
    state.queue.extend(entries);
    Ok(ActionOutcome::new(state, result, lines.join("\n")))
}

fn find(state: &OptimizerState, args: &Args, action: &str) -> Result<usize> {
    let id = args.queued.as_deref().ok_or_else(|| {
        Error::InvalidArguments(format!("{action} needs 'queued' (the queue entry's id)"))
    })?;
    state
        .queue
        .iter()
        .position(|q| q.id == id)
        .ok_or_else(|| Error::NoSuchQueued(format!("no queued experiment '{id}'")))
}

fn refuse(e: &QueuedExperiment, action: &str) -> Error {
    Error::QueueState(format!(
        "cannot {action} queued experiment {}: it is {}",
        e.id,
        e.status.as_str()
    ))
}

/// Marks a queued entry as running.
pub(super) fn start(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let i = find(&state, &args, "start")?;
    let e = &mut state.queue[i];
    if e.status != QueueStatus::Queued {
        return Err(refuse(e, "start"));
    }
    e.status = QueueStatus::Running;
    let text = format!("started {}", e.id);
    let result = json!({"queued": entry_json(e)});
    Ok(ActionOutcome::new(state, result, text))
}

/// Records the measurement of a queued (or running) entry as an experiment that names it.
pub(super) fn complete(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let i = find(&state, &args, "complete")?;
    if state.queue[i].status.is_final() {
        return Err(refuse(&state.queue[i], "complete"));
    }
    let output = args.output.ok_or_else(|| {
        Error::InvalidArguments("complete needs 'output' (the measured objective)".into())
    })?;
    let mut inputs = state.queue[i].suggested.clone();
    if let Some(actual) = &args.inputs {
        inputs.extend(actual.clone());
    }
    let mut row = json!({"inputs": inputs, "output": output});
    if let Some(n) = &args.noise {
        row["noise"] = n.clone();
    }
    if let Some(o) = &args.outputs {
        row["outputs"] = o.clone();
    }
    let name = state.objective.name.clone();
    let outputs = state.output_names();
    let mut exp: Experiment = rows_from_json(&[row], &state.space, &name, &outputs)?
        .pop()
        .ok_or_else(|| Error::InvalidArguments("complete: no row".into()))?;
    // Stored in the space's canonical form, so suggested and actual compare as values.
    let raw = state
        .space
        .parse_inputs(&exp.inputs)
        .map_err(|(f, m)| Error::InvalidPoint(format!("{}: {m}", f.unwrap_or_default())))?;
    exp.inputs = state.space.to_inputs(&raw);
    let key = exp.key();
    if let Some(n) = state.experiments.iter().position(|e| e.key() == key) {
        return Err(Error::QueueState(format!(
            "this exact measurement is already recorded as experiment {}",
            n + 1
        )));
    }
    let entry = &mut state.queue[i];
    exp.queued = Some(entry.id.clone());
    entry.status = QueueStatus::Done;
    entry.actual = (exp.inputs != entry.suggested).then(|| exp.inputs.clone());
    entry.experiment = Some(key);
    let mut text = format!(
        "completed {}: {name} = {}",
        entry.id,
        format_number(exp.output)
    );
    if let Some(actual) = &entry.actual {
        text.push_str(&format!(
            " at {} (suggested {})",
            text::inputs_text(&state.space, actual),
            text::inputs_text(&state.space, &entry.suggested)
        ));
    }
    let result = json!({"queued": entry_json(entry), "experiment": state.experiments.len() + 1});
    state.experiments.push(exp);
    Ok(ActionOutcome::new(state, result, text))
}

/// Gives up on a queued (or running) entry, with a reason.
pub(super) fn fail(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let i = find(&state, &args, "fail")?;
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if reason.is_empty() {
        return Err(Error::InvalidArguments("fail needs a 'reason'".into()));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Error::InvalidArguments(format!(
            "the reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    let e = &mut state.queue[i];
    if e.status.is_final() {
        return Err(refuse(e, "fail"));
    }
    e.status = QueueStatus::Failed;
    e.reason = Some(reason);
    let text = format!("{} failed: {}", e.id, e.reason.as_deref().unwrap_or(""));
    let result = json!({"queued": entry_json(e)});
    Ok(ActionOutcome::new(state, result, text))
}
