//! The pure action API behind the `bayesian_optimizer` session tool: its JSON schema and
//! `apply`, which maps (state, arguments, seed) to a new state, a JSON result, a short text for
//! the model and, for `lock`, a record for the audit log.

use serde::Deserialize;
use serde_json::{Value as Json, json};

use crate::acquisition::Acquisition;
use crate::design::DesignMethod;
use crate::error::{Error, Result};
use crate::experiment::{Experiment, parse_csv, parse_json, rows_from_json, validate_rows};
use crate::kernel::Kernel;
use crate::model::Goal;
use crate::optimize::{BatchMethod, SuggestOptions, suggest};
use crate::space::{Inputs, SearchSpace, Variable, VariableSpec, format_number};
use crate::state::{
    LockDetails, LockProposal, LockRecord, Objective, OptimizerState, OutputSpec, SuggestedPoint,
    SuggestionRecord, fingerprint,
};

/// Audit entry type of a configuration change (space, objective, outputs, kernel, strategy).
pub const CONFIG_AUDIT: &str = "config";
/// Audit entry type of a lock the model proposed.
pub const LOCK_PROPOSED_AUDIT: &str = "lock_proposed";
/// Audit entry type of a proposed lock a person rejected.
pub const LOCK_REJECTED_AUDIT: &str = "lock_rejected";
/// Audit entry type of an edited or excluded experiment.
pub const EXPERIMENT_AUDIT: &str = "experiment";

/// Fewest experiments for model-based suggestions; below it `suggest` returns a design.
pub const MIN_EXPERIMENTS_FOR_MODEL: usize = 2;
/// Largest batch size accepted.
pub const MAX_Q: usize = 50;

/// Most points one `initial_design` returns (the design is a dense table: a larger `n` is a
/// request to allocate without bound).
pub const MAX_DESIGN_POINTS: usize = 1000;

/// What one action produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    /// The state after the action (unchanged content for read-only actions).
    pub state: OptimizerState,
    /// Structured result (designs and suggestions as `{"suggestions": [...]}`).
    pub result: Json,
    /// A short plain-text account for the language model.
    pub text: String,
    /// For `lock`: the record to append to the session's audit log.
    pub lock: Option<LockRecord>,
    /// Configuration changes for the audit log, as (entry type, payload).
    pub audit: Vec<(String, Json)>,
}

impl ActionOutcome {
    fn new(state: OptimizerState, result: Json, text: String) -> Self {
        ActionOutcome {
            state,
            result,
            text,
            lock: None,
            audit: Vec::new(),
        }
    }
}

/// JSON schema of the tool's arguments (one flat object keyed by `action`).
pub fn tool_schema() -> Json {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["action"],
        "properties": {
            "action": {"type": "string", "enum": ["define_space", "initial_design", "add_experiments", "edit_experiment", "suggest", "predict", "optimum", "status", "lock", "queue", "start", "complete", "fail", "confirm_lock", "reject_lock"],
                "description": "define_space: set variables and objective; initial_design: space-filling points; add_experiments: record measured results; edit_experiment: correct or exclude a recorded experiment, with a reason; suggest: next experiments from the model; predict: model mean/std at points; optimum: the model's best predicted point; status: summary; lock: record a data/model/acquisition decision in the audit log; queue: queue the last suggestions (or 'points' chosen by hand) as experiments to run; start: mark a queued experiment running; complete: record a queued experiment's measured output (and 'inputs' if the run differed from the suggestion); fail: give up on a queued experiment with a 'reason'; confirm_lock / reject_lock: a person settles a lock the model proposed"},
            "variables": {"type": "array", "description": "define_space: the variables", "items": {
                "type": "object", "required": ["name", "type"], "additionalProperties": false,
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": ["real", "integer", "categorical"]},
                    "bounds": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "description": "[lower, upper] for real and integer"},
                    "categories": {"type": "array", "items": {"type": ["string", "number"]}, "minItems": 2},
                    "log": {"type": "boolean", "description": "search a positive real variable on a log scale"},
                    "unit": {"type": "string"},
                    "description": {"type": "string"},
                    "precision": {"type": "number", "exclusiveMinimum": 0, "description": "real variables: the step a lab can set; suggestions are rounded to it"}
                }}},
            "objective": {"type": "object", "required": ["name", "goal"], "additionalProperties": false, "description": "define_space: the measured output",
                "properties": {"name": {"type": "string"}, "goal": {"type": "string", "enum": ["maximize", "minimize"]}, "unit": {"type": "string"}}},
            "constraints": {"type": "array", "items": {"type": "string"}, "description": "define_space: linear input constraints such as 'x1 + x2 <= 1' (real and integer variables); designs and suggestions keep to them"},
            "derived": {"type": "array", "description": "define_space: quantities computed from the inputs, shown beside them (not modelled)", "items": {"type": "object", "required": ["name", "expression"], "additionalProperties": false, "properties": {"name": {"type": "string"}, "expression": {"type": "string", "description": "arithmetic over the real and integer variables, e.g. 'li / (li + na)'"}, "unit": {"type": "string"}}}},
            "outputs": {"description": "define_space: other measured outputs to record (array of {name, unit}); edit_experiment: their new values ({name: number})"},
            "experiment": {"type": "integer", "minimum": 1, "description": "edit_experiment: the experiment's number (1 = first recorded)"},
            "output": {"type": "number", "description": "edit_experiment: the corrected objective value; complete: the measured objective"},
            "inputs": {"type": "object", "additionalProperties": {"type": ["number", "string"]}, "description": "edit_experiment: corrected inputs; complete: the inputs actually run, where they differ from the suggestion"},
            "exclude": {"type": "boolean", "description": "edit_experiment: true leaves the experiment out of the model (kept in the record), false takes it back"},
            "reason": {"type": "string", "description": "edit_experiment, fail: why (required)"},
            "method": {"type": "string", "enum": ["lhs", "sobol", "random"], "description": "initial_design: how to fill the space (default lhs)"},
            "n": {"type": "integer", "minimum": 1, "maximum": MAX_DESIGN_POINTS, "description": "initial_design: number of points"},
            "experiments": {"type": "array", "description": "add_experiments: measured results", "items": {
                "type": "object", "required": ["inputs", "output"],
                "properties": {
                    "inputs": {"type": "object", "additionalProperties": {"type": ["number", "string"]}},
                    "output": {"type": "number"},
                    "noise": {"type": "number", "minimum": 0, "description": "measurement standard deviation, output units"},
                    "outputs": {"type": "object", "additionalProperties": {"type": "number"}, "description": "other recorded outputs"}
                }}},
            "csv": {"type": "string", "description": "add_experiments: CSV text with a header of variable names, the output column (objective name or 'output') and optional 'noise'"},
            "json": {"type": "string", "description": "add_experiments: JSON text, an array of experiments"},
            "strategy": {"type": "string", "enum": ["EI", "PI", "UCB", "qEI"], "description": "suggest: acquisition (default EI; qEI = batch EI by kriging believer)"},
            "q": {"type": "integer", "minimum": 1, "maximum": MAX_Q, "description": "suggest: number of points (default 1, qEI default 2)"},
            "beta": {"type": "number", "minimum": 0, "description": "suggest: UCB exploration weight (default 2)"},
            "xi": {"type": "number", "minimum": 0, "description": "suggest: EI/PI improvement margin in output units (default 0)"},
            "batch": {"type": "string", "enum": ["believer", "liar"], "description": "suggest: batch construction, kriging believer (default) or constant liar"},
            "kernel": {"type": "string", "enum": ["matern52", "rbf"], "description": "suggest/predict/lock model: covariance (default matern52)"},
            "refit": {"type": "boolean", "description": "suggest/predict/lock model: refit hyperparameters even if the stored model is current"},
            "points": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": ["number", "string"]}}, "description": "predict: points as {variable: value}; queue: points chosen by hand instead of the last suggestions; lock acquisition: points chosen outside Kiln to record instead of the last suggestions"},
            "what": {"type": "string", "enum": ["data", "model", "acquisition"], "description": "lock: which decision to record"},
            "queued": {"type": "string", "description": "start/complete/fail: the queue entry's id (q…)"},
            "propose": {"type": "boolean", "description": "lock: record it as a proposal a person confirms (the model's locks are proposals when the session asks for confirmation)"},
            "proposal": {"type": "string", "description": "confirm_lock/reject_lock: the proposal's id (p…)"},
            "notes": {"type": "string", "description": "lock: researcher's notes"}
        }
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    action: String,
    #[serde(default)]
    derived: Option<Json>,
    #[serde(default)]
    variables: Option<Vec<VariableSpec>>,
    #[serde(default)]
    objective: Option<ObjectiveArg>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    experiments: Option<Vec<Json>>,
    #[serde(default)]
    csv: Option<String>,
    #[serde(default)]
    json: Option<String>,
    #[serde(default)]
    strategy: Option<String>,
    #[serde(default)]
    q: Option<usize>,
    #[serde(default)]
    beta: Option<f64>,
    #[serde(default)]
    xi: Option<f64>,
    #[serde(default)]
    batch: Option<String>,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    refit: Option<bool>,
    #[serde(default)]
    points: Option<Vec<Inputs>>,
    #[serde(default)]
    what: Option<String>,
    #[serde(default)]
    notes: Option<String>,
    #[serde(default)]
    outputs: Option<Json>,
    #[serde(default)]
    experiment: Option<usize>,
    #[serde(default)]
    output: Option<f64>,
    #[serde(default)]
    noise: Option<Json>,
    #[serde(default)]
    inputs: Option<Inputs>,
    #[serde(default)]
    exclude: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    constraints: Option<Vec<String>>,
    #[serde(default)]
    queued: Option<String>,
    #[serde(default)]
    propose: Option<bool>,
    #[serde(default)]
    proposal: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectiveArg {
    name: String,
    goal: String,
    #[serde(default)]
    unit: Option<String>,
}

fn require_state(state: Option<OptimizerState>) -> Result<OptimizerState> {
    state.ok_or_else(|| {
        Error::MissingState(
            "I need a search space first: tell me the variables and their ranges (define_space)"
                .into(),
        )
    })
}

fn parse_kernel(k: Option<&str>) -> Result<Option<Kernel>> {
    k.map(|s| {
        Kernel::parse(s).ok_or_else(|| {
            Error::InvalidArguments(format!("unknown kernel '{s}' (expected matern52 or rbf)"))
        })
    })
    .transpose()
}

/// Applies one tool action. Pure: the same state, arguments and seed give the same outcome.
pub fn apply(state: Option<OptimizerState>, args: &Json, seed: u64) -> Result<ActionOutcome> {
    let args: Args =
        serde_json::from_value(args.clone()).map_err(|e| Error::InvalidArguments(e.to_string()))?;
    let mut out = dispatch(state, args, seed)?;
    with_derived(&mut out);
    Ok(out)
}

/// Adds the derived variables' values to each suggested or designed point (and says them).
fn with_derived(out: &mut ActionOutcome) {
    if out.state.derived.is_empty() {
        return;
    }
    let Some(points) = out
        .result
        .get_mut("suggestions")
        .and_then(Json::as_array_mut)
    else {
        return;
    };
    let mut lines = Vec::new();
    for (i, p) in points.iter_mut().enumerate() {
        let Some(inputs) = p
            .get("inputs")
            .and_then(|v| serde_json::from_value::<crate::space::Inputs>(v.clone()).ok())
        else {
            continue;
        };
        let values = crate::derived::values(&out.state.derived, &inputs);
        if values.is_empty() {
            continue;
        }
        lines.push(format!(
            "{}. {}",
            i + 1,
            values
                .iter()
                .map(|(k, v)| format!("{k} {}", crate::space::format_number(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        p["derived"] = json!(values);
    }
    if !lines.is_empty() {
        out.text
            .push_str(&format!("\n\nDerived: {}", lines.join("; ")));
    }
}

fn dispatch(state: Option<OptimizerState>, args: Args, seed: u64) -> Result<ActionOutcome> {
    match args.action.as_str() {
        "define_space" => define_space(state, args),
        "initial_design" => initial_design(require_state(state)?, args, seed),
        "add_experiments" => add_experiments(require_state(state)?, args),
        "edit_experiment" => edit_experiment(require_state(state)?, args),
        "suggest" => suggest_action(require_state(state)?, args, seed),
        "predict" => predict(require_state(state)?, args, seed),
        "optimum" => optimum_action(require_state(state)?, args, seed),
        "status" => status(require_state(state)?),
        "lock" => lock(require_state(state)?, args, seed),
        "queue" => queue::queue(require_state(state)?, args),
        "start" => queue::start(require_state(state)?, args),
        "complete" => queue::complete(require_state(state)?, args),
        "fail" => queue::fail(require_state(state)?, args),
        "confirm_lock" => confirm_lock(require_state(state)?, args),
        "reject_lock" => reject_lock(require_state(state)?, args),
        other => Err(Error::InvalidArguments(format!(
            "unknown action '{other}' (expected define_space, initial_design, add_experiments, edit_experiment, suggest, predict, optimum, status, lock, queue, start, complete, fail, confirm_lock or reject_lock)"
        ))),
    }
}

fn define_space(state: Option<OptimizerState>, args: Args) -> Result<ActionOutcome> {
    let specs = args
        .variables
        .ok_or_else(|| Error::InvalidArguments("define_space needs 'variables'".into()))?;
    let variables = specs
        .into_iter()
        .map(Variable::from_spec)
        .collect::<Result<Vec<_>>>()?;
    let space = SearchSpace::new(variables)?;
    let objective = match args.objective {
        Some(o) => {
            let goal = match o.goal.to_ascii_lowercase().as_str() {
                "maximize" | "maximise" | "max" => Goal::Maximize,
                "minimize" | "minimise" | "min" => Goal::Minimize,
                g => {
                    return Err(Error::InvalidArguments(format!(
                        "unknown goal '{g}' (expected maximize or minimize)"
                    )));
                }
            };
            if o.name.trim().is_empty() {
                return Err(Error::InvalidArguments("the objective needs a name".into()));
            }
            Objective {
                name: o.name,
                goal,
                unit: o.unit,
            }
        }
        None => match &state {
            Some(s) => s.objective.clone(),
            None => {
                return Err(Error::InvalidArguments(
                    "define_space needs an 'objective' {name, goal}".into(),
                ));
            }
        },
    };
    let outputs = match args.outputs {
        None => state
            .as_ref()
            .map(|s| s.outputs.clone())
            .unwrap_or_default(),
        Some(v) => serde_json::from_value::<Vec<OutputSpec>>(v).map_err(|e| {
            Error::InvalidArguments(format!(
                "define_space: outputs must be a list of {{name, unit}}: {e}"
            ))
        })?,
    };
    for (i, o) in outputs.iter().enumerate() {
        let clash = o.name.trim().is_empty()
            || o.name == objective.name
            || ["output", "noise"].contains(&o.name.as_str())
            || space.variables().iter().any(|v| v.name == o.name)
            || outputs[..i].iter().any(|p| p.name == o.name);
        if clash {
            return Err(Error::InvalidSpace(format!(
                "output '{}' must have a name of its own (not empty, not the objective, a variable, 'output' or 'noise', and not repeated)",
                o.name
            )));
        }
    }
    let constraints = match args.constraints {
        Some(texts) => texts
            .iter()
            .map(|t| crate::constraint::LinearConstraint::parse(t, &space))
            .collect::<Result<Vec<_>>>()?,
        // Kept from before while every variable they name still fits.
        None => state
            .as_ref()
            .map(|s| {
                s.constraints
                    .iter()
                    .map(|c| crate::constraint::LinearConstraint::parse(&c.text, &space))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default(),
    };
    let derived: Vec<crate::derived::DerivedVariable> = match args.derived {
        Some(v) => serde_json::from_value(v).map_err(|e| {
            Error::InvalidArguments(format!(
                "define_space: derived must be a list of {{name, expression, unit?}}: {e}"
            ))
        })?,
        None => state
            .as_ref()
            .map(|s| s.derived.clone())
            .unwrap_or_default(),
    };
    let mut taken: Vec<&str> = outputs.iter().map(|o| o.name.as_str()).collect();
    taken.extend([objective.name.as_str(), "output", "noise"]);
    crate::derived::check(&derived, &space, &taken)?;
    let mut next = OptimizerState::new(space, objective);
    next.outputs = outputs;
    next.constraints = constraints;
    next.derived = derived;
    let mut kept = 0;
    let mut audit = Vec::new();
    if let Some(old) = state {
        // Redefining keeps the experiments only if every one still fits the new space.
        validate_rows(&next.space, &old.experiments)?;
        kept = old.experiments.len();
        let mut change = serde_json::Map::new();
        if old.space != next.space {
            change.insert(
                "space".into(),
                json!({"before": old.space, "after": next.space}),
            );
        }
        if old.objective != next.objective {
            change.insert(
                "objective".into(),
                json!({"before": old.objective, "after": next.objective}),
            );
        }
        if old.outputs != next.outputs {
            change.insert(
                "outputs".into(),
                json!({"before": old.outputs, "after": next.outputs}),
            );
        }
        if old.constraints != next.constraints {
            change.insert(
                "constraints".into(),
                json!({"before": old.constraints, "after": next.constraints}),
            );
        }
        if change.is_empty() && old.derived != next.derived {
            // Only the derived variables changed: they are not modelled, so the model and
            // suggestions stay valid.
            let before = old.derived.clone();
            let mut kept = old;
            kept.derived = next.derived;
            let mut out = ActionOutcome::new(
                kept.clone(),
                json!({"space": kept.space, "objective": kept.objective, "outputs": kept.outputs, "constraints": kept.constraints, "derived": kept.derived, "n_experiments": kept.experiments.len(), "changed": true}),
                format!(
                    "derived variables set: {}",
                    kept.derived
                        .iter()
                        .map(|d| format!("{} = {}", d.name, d.expression))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
            out.audit.push((
                CONFIG_AUDIT.to_string(),
                json!({"derived": {"before": before, "after": kept.derived}}),
            ));
            return Ok(out);
        }
        if change.is_empty() {
            // Nothing changed: the model and suggestions stay valid.
            return Ok(ActionOutcome::new(
                old.clone(),
                json!({"space": old.space, "objective": old.objective, "outputs": old.outputs, "constraints": old.constraints, "n_experiments": old.experiments.len(), "changed": false}),
                "the search space is unchanged".into(),
            ));
        }
        audit.push((CONFIG_AUDIT.to_string(), Json::Object(change)));
        next.experiments = old.experiments;
        next.locks = old.locks;
        next.queue = old.queue;
    } else {
        audit.push((
            CONFIG_AUDIT.to_string(),
            json!({"space": {"before": null, "after": next.space}, "objective": {"before": null, "after": next.objective}, "outputs": {"before": null, "after": next.outputs}, "constraints": {"before": null, "after": next.constraints}}),
        ));
    }
    let text = format!(
        "search space defined: {} variable(s) ({}), objective '{}' to {}{}",
        next.space.len(),
        next.space
            .variables()
            .iter()
            .map(text::variable_text)
            .collect::<Vec<_>>()
            .join(", "),
        next.objective.name,
        next.objective.goal.as_str(),
        if kept > 0 {
            format!("; kept {kept} existing experiment(s)")
        } else {
            String::new()
        }
    );
    let result = json!({"space": next.space, "objective": next.objective, "outputs": next.outputs, "constraints": next.constraints, "derived": next.derived, "n_experiments": next.experiments.len(), "changed": true});
    let mut out = ActionOutcome::new(next, result, text);
    out.audit = audit;
    Ok(out)
}

fn initial_design(mut state: OptimizerState, args: Args, seed: u64) -> Result<ActionOutcome> {
    let method = DesignMethod::parse(args.method.as_deref().unwrap_or("lhs"))?;
    let n = args.n.unwrap_or(2 * state.space.len() + 1);
    if n == 0 || n > MAX_DESIGN_POINTS {
        return Err(Error::InvalidArguments(format!(
            "n must be between 1 and {MAX_DESIGN_POINTS}, got {n}"
        )));
    }
    let (observed, _, _) = state.training_data()?;
    let raws = feasible_design(&state, method, n, seed, &observed)?;
    let points = design_points(&state, &raws);
    let label = format!(
        "design:{}",
        serde_json::to_value(method)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    );
    let text = format!(
        "{} initial design point(s) by {label}{}; measure them and send the results:\n\n{}",
        points.len(),
        if points.len() < n {
            format!(
                " (only {} unobserved points remain in this discrete space)",
                points.len()
            )
        } else {
            String::new()
        },
        text::points_table(&state.space, &points, &state.objective.name)
    );
    state.last_suggestions = Some(SuggestionRecord {
        strategy: label,
        params: json!({"n": n, "seed": seed}),
        points: points.clone(),
    });
    Ok(ActionOutcome::new(
        state,
        json!({"suggestions": points}),
        text,
    ))
}

fn add_experiments(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let name = state.objective.name.clone();
    let outputs = state.output_names();
    let mut rows: Vec<Experiment> = Vec::new();
    if let Some(list) = &args.experiments {
        rows.extend(rows_from_json(list, &state.space, &name, &outputs)?);
    }
    if let Some(text) = &args.csv {
        rows.extend(parse_csv(text, &state.space, &name, &outputs)?);
    }
    if let Some(text) = &args.json {
        rows.extend(parse_json(text, &state.space, &name, &outputs)?);
    }
    if rows.is_empty() {
        return Err(Error::InvalidArguments(
            "add_experiments needs 'experiments', 'csv' or 'json' with at least one row".into(),
        ));
    }
    validate_rows(&state.space, &rows)?;
    let (mut added, mut skipped, mut replicates) = (0, 0, 0);
    for row in rows {
        // The same measurement recorded again (even if since edited or excluded) is skipped.
        let key = row.key();
        if state.experiments.iter().any(|e| e.key() == key) {
            skipped += 1;
            continue;
        }
        if state.experiments.iter().any(|e| e.inputs == row.inputs) {
            replicates += 1;
        }
        state.experiments.push(row);
        added += 1;
    }
    let mut text = format!(
        "added {added} experiment(s); {} in total",
        state.experiments.len()
    );
    if skipped > 0 {
        text.push_str(&format!(
            "; skipped {skipped} exact duplicate(s) already recorded"
        ));
    }
    if replicates > 0 {
        text.push_str(&format!("; {replicates} repeat existing inputs with a different output and are kept as replicates (the model learns the noise)"));
    }
    if let Some(b) = state.best() {
        text.push_str(&format!(
            "; best {} = {} at {}",
            name,
            format_number(b.output),
            text::inputs_text(&state.space, &b.inputs)
        ));
    }
    let result = json!({"added": added, "skipped_duplicates": skipped, "replicates": replicates, "n_experiments": state.experiments.len()});
    Ok(ActionOutcome::new(state, result, text))
}

fn acquisition_from(args: &Args) -> Result<(String, Acquisition, usize)> {
    let strategy = args.strategy.clone().unwrap_or_else(|| "EI".into());
    let xi = args.xi.unwrap_or(0.0);
    if !xi.is_finite() || xi < 0.0 {
        return Err(Error::InvalidArguments(format!(
            "xi must be a finite non-negative number, got {xi}"
        )));
    }
    let (acq, default_q) = match strategy.to_ascii_uppercase().as_str() {
        "EI" | "LOGEI" => (Acquisition::Ei { xi }, 1),
        "QEI" => (Acquisition::Ei { xi }, 2),
        "PI" => (Acquisition::Pi { xi }, 1),
        "UCB" => {
            let beta = args.beta.unwrap_or(2.0);
            if !beta.is_finite() || beta < 0.0 {
                return Err(Error::InvalidArguments(format!(
                    "beta must be a finite non-negative number, got {beta}"
                )));
            }
            (Acquisition::Ucb { beta }, 1)
        }
        other => {
            return Err(Error::InvalidArguments(format!(
                "unknown strategy '{other}' (expected EI, PI, UCB or qEI)"
            )));
        }
    };
    let q = args.q.unwrap_or(default_q);
    if q == 0 || q > MAX_Q {
        return Err(Error::InvalidArguments(format!(
            "q must be between 1 and {MAX_Q}, got {q}"
        )));
    }
    Ok((strategy, acq, q))
}

fn suggest_action(mut state: OptimizerState, args: Args, seed: u64) -> Result<ActionOutcome> {
    let (strategy, acquisition, q) = acquisition_from(&args)?;
    let kernel = parse_kernel(args.kernel.as_deref())?;
    let audit = config_changes(&state, Some(&strategy), kernel);
    let batch = match args.batch.as_deref() {
        None | Some("believer") | Some("kriging_believer") => BatchMethod::KrigingBeliever,
        Some("liar") | Some("constant_liar") => BatchMethod::ConstantLiar,
        Some(b) => {
            return Err(Error::InvalidArguments(format!(
                "unknown batch method '{b}' (expected believer or liar)"
            )));
        }
    };
    if state.active().count() < MIN_EXPERIMENTS_FOR_MODEL {
        let n = q.max(2 * state.space.len() + 1);
        let (observed, _, _) = state.training_data()?;
        let raws = feasible_design(&state, DesignMethod::Lhs, n, seed, &observed)?;
        let points = design_points(&state, &raws);
        let text = format!(
            "Only {} experiment(s) so far: too few for a model (it needs {MIN_EXPERIMENTS_FOR_MODEL}), so these are {} points of an initial Latin hypercube design, not {strategy} suggestions. Measure them and send the results:\n\n{}",
            state.experiments.len(),
            points.len(),
            text::points_table(&state.space, &points, &state.objective.name)
        );
        state.last_suggestions = Some(SuggestionRecord {
            strategy: "design:lhs".into(),
            params: json!({"n": n, "seed": seed, "fallback_from": strategy}),
            points: points.clone(),
        });
        return Ok(ActionOutcome::new(
            state,
            json!({"suggestions": points, "fallback": "initial_design"}),
            text,
        ));
    }
    let model = state.surrogate(kernel, args.refit.unwrap_or(false), seed)?;
    let opts = SuggestOptions {
        acquisition,
        q,
        batch,
        seed,
        constraints: state.indexed_constraints(),
        ..SuggestOptions::default()
    };
    let found = suggest(&model, &opts);
    // Rounded to what a lab can set; the prediction is the model's at the rounded point.
    let raws = rounded_new(
        &state,
        &found.iter().map(|s| s.raw.clone()).collect::<Vec<_>>(),
    );
    let points: Vec<SuggestedPoint> = found
        .iter()
        .zip(&raws)
        .map(|(s, raw)| {
            let p = model.predict(raw);
            SuggestedPoint {
                inputs: state.space.to_inputs(raw),
                mean: Some(p.mean),
                std: Some(p.std),
                acquisition: Some(s.acquisition),
            }
        })
        .collect();
    let constant = state
        .experiments
        .iter()
        .all(|e| e.output == state.experiments[0].output);
    // The strategy that ran: a batch of EI is qEI (kriging believer or constant liar).
    let ran = match (&acquisition, q > 1) {
        (Acquisition::Ei { .. }, true) => format!(
            "qEI (batch expected improvement, {})",
            match batch {
                BatchMethod::KrigingBeliever => "kriging believer",
                BatchMethod::ConstantLiar => "constant liar",
            }
        ),
        _ => acquisition.label(),
    };
    let mut text = format!(
        "{} suggestion(s) by {ran}:\n\n{}",
        points.len(),
        text::points_table(&state.space, &points, &state.objective.name)
    );
    if points.len() < q {
        text.push_str(&format!(
            "\nonly {} unobserved point(s) remain in this discrete space",
            points.len()
        ));
    }
    if constant {
        text.push_str("\nall outputs so far are equal: the model is flat, so suggestions explore where it is most uncertain");
    }
    if let Some(m) = &state.model {
        text.push_str(&format!(
            "\n\nModel check (leave-one-out): RMSE {}, R² {}",
            text::sig(m.cv.rmse),
            m.cv.r2.map_or("n/a".into(), text::r2)
        ));
        if m.cv.r2.is_some_and(|r2| r2 <= 0.0) {
            text.push_str(
                ". The model predicts worse than the mean of the data (R² ≤ 0), so treat these \
                 points as exploration, not predictions: measure them, add a few experiments \
                 spread over the space, and check the fit again before trusting its predictions.",
            );
        }
    }
    let params = json!({"q": q, "acquisition": acquisition, "batch": batch, "kernel": model.hyperparameters().kernel, "seed": seed});
    state.last_suggestions = Some(SuggestionRecord {
        strategy,
        params,
        points: points.clone(),
    });
    let mut out = ActionOutcome::new(state, json!({"suggestions": points}), text);
    out.audit = audit;
    Ok(out)
}

/// Audit entries for a suggestion whose strategy or kernel differs from the last one used.
fn config_changes(
    state: &OptimizerState,
    strategy: Option<&str>,
    kernel: Option<Kernel>,
) -> Vec<(String, Json)> {
    let mut change = serde_json::Map::new();
    if let Some(strategy) = strategy {
        let last = state
            .last_suggestions
            .as_ref()
            .map(|s| s.strategy.as_str())
            .filter(|s| !s.starts_with("design:"));
        if last.is_some_and(|l| !l.eq_ignore_ascii_case(strategy)) {
            change.insert(
                "strategy".into(),
                json!({"before": last, "after": strategy}),
            );
        }
    }
    if let (Some(k), Some(m)) = (kernel, &state.model)
        && m.hyperparameters.kernel != k
    {
        change.insert(
            "kernel".into(),
            json!({"before": m.hyperparameters.kernel, "after": k}),
        );
    }
    if change.is_empty() {
        Vec::new()
    } else {
        vec![(CONFIG_AUDIT.to_string(), Json::Object(change))]
    }
}

fn predict(mut state: OptimizerState, args: Args, seed: u64) -> Result<ActionOutcome> {
    let points = args
        .points
        .ok_or_else(|| Error::InvalidArguments("predict needs 'points'".into()))?;
    let raws = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            state.space.parse_inputs(p).map_err(|(f, m)| {
                Error::InvalidPoint(format!("point {i}: {}: {m}", f.unwrap_or_default()))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let kernel = parse_kernel(args.kernel.as_deref())?;
    let audit = config_changes(&state, None, kernel);
    let model = state.surrogate(kernel, args.refit.unwrap_or(false), seed)?;
    let preds: Vec<Json> = raws
        .iter()
        .zip(&points)
        .map(|(r, p)| {
            let pr = model.predict(r);
            json!({"inputs": p, "mean": pr.mean, "std": pr.std})
        })
        .collect();
    let text = preds
        .iter()
        .zip(&points)
        .map(|(p, inputs)| {
            format!(
                "{}: {} {} ± {}",
                text::inputs_text(&state.space, inputs),
                state.objective.name,
                text::sig(p["mean"].as_f64().unwrap_or(f64::NAN)),
                text::sig(p["std"].as_f64().unwrap_or(f64::NAN))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = ActionOutcome::new(state, json!({"predictions": preds}), text);
    out.audit = audit;
    Ok(out)
}

fn status(state: OptimizerState) -> Result<ActionOutcome> {
    let best = state.best().cloned();
    let result = json!({
        "objective": state.objective,
        "variables": state.space.len(),
        "n_experiments": state.experiments.len(),
        "best": best,
        "iteration": state.iteration(),
        "model": state.model,
        "model_current": state.model_is_current(),
        "last_suggestions": state.last_suggestions,
        "locks": state.locks.len(),
        "queue": state.queue,
    });
    let mut text = format!(
        "iteration {}: {} experiment(s) over {} variable(s); objective '{}' to {}",
        state.iteration(),
        state.experiments.len(),
        state.space.len(),
        state.objective.name,
        state.objective.goal.as_str()
    );
    if let Some(b) = &best {
        text.push_str(&format!(
            "; best {} at {}",
            format_number(b.output),
            text::inputs_text(&state.space, &b.inputs)
        ));
    }
    match &state.model {
        Some(m) => text.push_str(&format!(
            "; model on {} experiment(s){}, LOO RMSE {}",
            m.n_experiments,
            if state.model_is_current() {
                ""
            } else {
                " (stale: data changed)"
            },
            text::sig(m.cv.rmse)
        )),
        None => text.push_str("; no model fitted yet"),
    }
    let waiting =
        |s: crate::queue::QueueStatus| state.queue.iter().filter(|q| q.status == s).count();
    let (queued, running) = (
        waiting(crate::queue::QueueStatus::Queued),
        waiting(crate::queue::QueueStatus::Running),
    );
    if queued + running > 0 {
        text.push_str(&format!("; queue: {queued} waiting, {running} running"));
    }
    Ok(ActionOutcome::new(state, result, text))
}

fn lock(mut state: OptimizerState, args: Args, seed: u64) -> Result<ActionOutcome> {
    let what = args.what.as_deref().ok_or_else(|| {
        Error::InvalidArguments("lock needs 'what' (data, model or acquisition)".into())
    })?;
    let iteration = state.iteration();
    let mut audit = Vec::new();
    let details = match what {
        "data" => {
            if state.experiments.is_empty() {
                return Err(Error::MissingState("no experiments to lock".into()));
            }
            LockDetails::Data {
                n_experiments: state.experiments.len(),
                data_fingerprint: fingerprint(&state.experiments),
                best: state.best().cloned(),
            }
        }
        "model" => {
            let kernel = parse_kernel(args.kernel.as_deref())?;
            audit = config_changes(&state, None, kernel);
            state.surrogate(kernel, args.refit.unwrap_or(false), seed)?;
            let m = state
                .model
                .clone()
                .ok_or_else(|| Error::MissingState("no model to lock".into()))?;
            LockDetails::Model {
                kernel: m.hyperparameters.kernel,
                hyperparameters: m.hyperparameters,
                cv: m.cv,
                n_experiments: m.n_experiments,
            }
        }
        "acquisition" if args.points.is_some() => {
            // Points chosen outside Kiln (a person, another tool) recorded as the decision.
            let points = args.points.clone().unwrap_or_default();
            if points.is_empty() {
                return Err(Error::InvalidArguments(
                    "lock acquisition: 'points' needs at least one point".into(),
                ));
            }
            let chosen = points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let raw = state.space.parse_inputs(p).map_err(|(f, m)| {
                        Error::InvalidPoint(format!("point {i}: {}: {m}", f.unwrap_or_default()))
                    })?;
                    Ok(SuggestedPoint {
                        inputs: state.space.to_inputs(&raw),
                        mean: None,
                        std: None,
                        acquisition: None,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            LockDetails::Acquisition {
                strategy: "external".into(),
                params: json!({}),
                points: chosen,
            }
        }
        "acquisition" => {
            let s = state.last_suggestions.clone().ok_or_else(|| {
                Error::MissingState(
                    "no suggestions to lock: call suggest or initial_design first".into(),
                )
            })?;
            LockDetails::Acquisition {
                strategy: s.strategy,
                params: s.params,
                points: s.points,
            }
        }
        other => {
            return Err(Error::InvalidArguments(format!(
                "unknown lock target '{other}' (expected data, model or acquisition)"
            )));
        }
    };
    let record = LockRecord {
        iteration,
        details,
        notes: args.notes,
    };
    if args.propose == Some(true) {
        let id = format!(
            "p{}",
            &fingerprint_of(
                &json!({"record": record, "n": state.proposals.len() + state.locks.len()})
            )[..10]
        );
        let proposal = LockProposal {
            id: id.clone(),
            record,
        };
        let text = format!(
            "proposed to lock {what} for iteration {iteration} (proposal {id}): a person with write access confirms it before it enters the audit log"
        );
        let result = json!({"proposal": proposal});
        audit.push((
            LOCK_PROPOSED_AUDIT.to_string(),
            serde_json::to_value(&proposal).unwrap_or(Json::Null),
        ));
        state.proposals.push(proposal);
        let mut out = ActionOutcome::new(state, result, text);
        out.audit = audit;
        return Ok(out);
    }
    state.locks.push(record.clone());
    let text = format!("locked {what} for iteration {iteration}");
    let result =
        serde_json::to_value(&record).map_err(|e| Error::InvalidArguments(e.to_string()))?;
    let mut out = ActionOutcome::new(state, result, text);
    out.lock = Some(record);
    out.audit = audit;
    Ok(out)
}

fn fingerprint_of(v: &Json) -> String {
    crate::state::fnv_hex(&v.to_string())
}

fn take_proposal(state: &mut OptimizerState, args: &Args, action: &str) -> Result<LockProposal> {
    let id = args.proposal.as_deref().ok_or_else(|| {
        Error::InvalidArguments(format!("{action} needs 'proposal' (the proposal's id)"))
    })?;
    let i = state
        .proposals
        .iter()
        .position(|p| p.id == id)
        .ok_or_else(|| Error::NoSuchProposal(format!("no proposed lock '{id}'")))?;
    Ok(state.proposals.remove(i))
}

/// A person confirms a proposed lock: it becomes a lock of the current iteration (notes given
/// now are added to the proposal's) and goes to the audit log like any lock.
fn confirm_lock(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let p = take_proposal(&mut state, &args, "confirm_lock")?;
    let mut record = p.record;
    record.iteration = state.iteration();
    if let Some(n) = args.notes.filter(|n| !n.trim().is_empty()) {
        record.notes = Some(match record.notes {
            Some(old) => format!("{old}\n{n}"),
            None => n,
        });
    }
    state.locks.push(record.clone());
    let text = format!(
        "confirmed proposal {}: locked for iteration {}",
        p.id, record.iteration
    );
    let mut result =
        serde_json::to_value(&record).map_err(|e| Error::InvalidArguments(e.to_string()))?;
    result["proposal"] = json!(p.id);
    let mut out = ActionOutcome::new(state, result, text);
    out.lock = Some(record);
    Ok(out)
}

/// A person rejects a proposed lock, with a reason; it leaves the proposals and the rejection
/// is audited.
fn reject_lock(mut state: OptimizerState, args: Args) -> Result<ActionOutcome> {
    let reason = args
        .reason
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if reason.is_empty() {
        return Err(Error::InvalidArguments(
            "reject_lock needs a 'reason'".into(),
        ));
    }
    let p = take_proposal(&mut state, &args, "reject_lock")?;
    let text = format!("rejected proposal {}: {reason}", p.id);
    let payload = json!({"proposal": p, "reason": reason});
    let mut out = ActionOutcome::new(state, payload.clone(), text);
    out.audit = vec![(LOCK_REJECTED_AUDIT.to_string(), payload)];
    Ok(out)
}

mod edit;
mod points;
mod queue;
#[cfg(test)]
mod tests;
pub(crate) mod text;

pub use edit::MAX_REASON_CHARS;
use edit::edit_experiment;
pub use points::optimum;
use points::{design_points, feasible_design, optimum_action, rounded_new};
