//! ALchemist's session file (NREL's active-learning toolkit) to and from an optimiser state:
//! metadata, search space (`min`/`max`/`values`), experiments (`Output`, `Noise`, `Iteration`,
//! `Reason` columns), the staged queue, the model and the audit log's lock entries
//! (`data_locked`, `model_locked`, `acquisition_locked`, each with ALchemist's own hash). Pure:
//! the caller stores the state and writes the audit entries into Kiln's chain.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::kernel::Kernel;
use crate::model::Goal;
use crate::queue::{QueueStatus, QueuedExperiment};
use crate::space::{Domain, Inputs, SearchSpace, Value, Variable};
use crate::state::{
    LockDetails, LockRecord, ModelRecord, Objective, OptimizerState, SuggestedPoint,
    SuggestionRecord,
};

/// ALchemist's column names for the objective, noise, iteration and reason.
const OUTPUT: &str = "Output";
const NOISE: &str = "Noise";
const ITERATION: &str = "Iteration";
const REASON: &str = "Reason";

/// Session metadata as ALchemist keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AlchemistMetadata {
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub last_modified: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// One entry of ALchemist's audit log, as it was recorded there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlchemistEntry {
    pub timestamp: String,
    pub entry_type: String,
    #[serde(default)]
    pub parameters: Json,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub notes: String,
}

/// What an ALchemist session becomes.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub metadata: AlchemistMetadata,
    pub state: OptimizerState,
    /// The audit entries in their order, for the caller's chain (their hashes kept as data).
    pub audit: Vec<AlchemistEntry>,
    /// What the file held that Kiln does not keep, in words.
    pub dropped: Vec<String>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::Parse {
        format: "alchemist",
        message: m.into(),
    }
}

fn variable_json(v: &Variable) -> Json {
    let mut o = Map::new();
    o.insert("name".into(), json!(v.name));
    match &v.domain {
        Domain::Real { lower, upper, log } => {
            o.insert("type".into(), json!("real"));
            o.insert("min".into(), json!(lower));
            o.insert("max".into(), json!(upper));
            if *log {
                o.insert("log".into(), json!(true));
            }
        }
        Domain::Integer { lower, upper } => {
            o.insert("type".into(), json!("integer"));
            o.insert("min".into(), json!(lower));
            o.insert("max".into(), json!(upper));
        }
        Domain::Categorical { categories } => {
            o.insert("type".into(), json!("categorical"));
            o.insert("values".into(), json!(categories));
        }
    }
    if let Some(u) = &v.unit {
        o.insert("unit".into(), json!(u));
    }
    if let Some(d) = &v.description {
        o.insert("description".into(), json!(d));
    }
    if let Some(p) = v.precision {
        o.insert("precision".into(), json!(p));
    }
    Json::Object(o)
}

fn variable_from(v: &Json) -> Result<Variable> {
    let name = v["name"]
        .as_str()
        .ok_or_else(|| bad("a search-space variable has no name"))?;
    let kind = v["type"].as_str().unwrap_or("real").to_ascii_lowercase();
    let num = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| bad(format!("variable '{name}' needs a numeric '{k}'")))
    };
    let mut var = match kind.as_str() {
        "real" | "continuous" | "float" => {
            let mut var = Variable::real(name, num("min")?, num("max")?)?;
            if v["log"].as_bool() == Some(true)
                && let Domain::Real { log, .. } = &mut var.domain
            {
                *log = true;
            }
            var
        }
        "integer" | "int" | "discrete" => Variable {
            name: name.to_owned(),
            domain: Domain::Integer {
                lower: num("min")?.round() as i64,
                upper: num("max")?.round() as i64,
            },
            unit: None,
            description: None,
            precision: None,
        },
        "categorical" => {
            let values: Vec<String> = v["values"]
                .as_array()
                .ok_or_else(|| bad(format!("categorical variable '{name}' needs 'values'")))?
                .iter()
                .map(|x| match x {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            Variable {
                name: name.to_owned(),
                domain: Domain::Categorical { categories: values },
                unit: None,
                description: None,
                precision: None,
            }
        }
        other => return Err(bad(format!("variable '{name}' has unknown type '{other}'"))),
    };
    var.unit = v["unit"].as_str().map(String::from);
    var.description = v["description"].as_str().map(String::from);
    var.precision = v["precision"].as_f64();
    Ok(var)
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::Number(x) => json!(x),
        Value::Text(s) => json!(s),
    }
}

fn inputs_from(row: &Map<String, Json>, space: &SearchSpace) -> Inputs {
    space
        .variables()
        .iter()
        .filter_map(|v| {
            let x = row.get(&v.name)?;
            Some((
                v.name.clone(),
                match x {
                    Json::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
                    Json::String(s) => Value::Text(s.clone()),
                    other => Value::Text(other.to_string()),
                },
            ))
        })
        .collect()
}

/// ALchemist's reproducibility hash of an entry: SHA-256 of the parameters with sorted keys,
/// first 16 hex digits. Needs a SHA-256 function from the caller (this crate hashes nothing
/// cryptographically).
pub fn entry_hash(parameters: &Json, sha256_hex: &dyn Fn(&str) -> String) -> String {
    // serde_json's map is ordered by key, as Python's `sort_keys=True`; Python's default
    // separators put a space after ',' and ':'.
    let text = python_json(parameters);
    sha256_hex(&text).chars().take(16).collect()
}

/// JSON text as Python's `json.dumps(v, sort_keys=True)` writes it (for ASCII keys and values).
fn python_json(v: &Json) -> String {
    match v {
        Json::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{}: {}", Json::String(k.clone()), python_json(x)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

fn lock_entry(l: &LockRecord) -> (String, Json) {
    let kiln = serde_json::to_value(l).unwrap_or(Json::Null);
    let (kind, mut params) = match &l.details {
        LockDetails::Data {
            n_experiments,
            data_fingerprint,
            ..
        } => (
            "data_locked",
            json!({"n_experiments": n_experiments, "data_hash": data_fingerprint}),
        ),
        LockDetails::Model {
            kernel,
            hyperparameters,
            cv,
            ..
        } => (
            "model_locked",
            json!({"backend": "kiln", "kernel": kernel_name(*kernel),
                   "hyperparameters": hyperparameters,
                   "cv_metrics": {"rmse": cv.rmse, "r2": cv.r2}}),
        ),
        LockDetails::Acquisition {
            strategy,
            params,
            points,
        } => (
            "acquisition_locked",
            json!({"strategy": strategy, "parameters": params,
                   "suggestions": points.iter().map(|p| &p.inputs).collect::<Vec<_>>()}),
        ),
    };
    params["iteration"] = json!(l.iteration);
    // Kiln's own record rides along, so Kiln reads its lock back exactly.
    params["kiln_lock"] = kiln;
    (kind.to_owned(), params)
}

fn kernel_name(k: Kernel) -> &'static str {
    match k {
        Kernel::Matern52 => "Matern",
        Kernel::Rbf => "RBF",
    }
}

/// The state as an ALchemist session file. `entries` are the audit entries already made
/// (timestamp and notes from Kiln's chain); locks without one get `timestamp` "".
pub fn to_alchemist(
    state: &OptimizerState,
    metadata: &AlchemistMetadata,
    lock_times: &[String],
    sha256_hex: &dyn Fn(&str) -> String,
) -> Json {
    let variables: Vec<Json> = state.space.variables().iter().map(variable_json).collect();
    let rows: Vec<Json> = state
        .experiments
        .iter()
        .map(|e| {
            let mut row: Map<String, Json> = e
                .inputs
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect();
            row.insert(OUTPUT.into(), json!(e.output));
            if let Some(n) = e.noise {
                row.insert(NOISE.into(), json!(n));
            }
            for (k, v) in &e.outputs {
                row.insert(k.clone(), json!(v));
            }
            let q = state.queued_for(e);
            row.insert(ITERATION.into(), json!(q.map_or(0, |q| q.iteration)));
            row.insert(
                REASON.into(),
                json!(q.map_or("Manual".to_owned(), |q| q.strategy.clone())),
            );
            Json::Object(row)
        })
        .collect();
    let staged: Vec<Json> = state
        .queue
        .iter()
        .filter(|q| !q.status.is_final())
        .map(|q| {
            let mut row: Map<String, Json> = q
                .suggested
                .iter()
                .map(|(k, v)| (k.clone(), value_json(v)))
                .collect();
            row.insert("reason".into(), json!(q.strategy));
            row.insert(
                "status".into(),
                json!(if q.status == QueueStatus::Running {
                    "running"
                } else {
                    "pending"
                }),
            );
            row.insert("iteration".into(), json!(q.iteration));
            Json::Object(row)
        })
        .collect();
    let entries: Vec<Json> = state
        .locks
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let (kind, params) = lock_entry(l);
            json!({
                "timestamp": lock_times.get(i).cloned().unwrap_or_default(),
                "entry_type": kind,
                "hash": entry_hash(&params, sha256_hex),
                "parameters": params,
                "notes": l.notes.clone().unwrap_or_default(),
            })
        })
        .collect();
    let goal = state.objective.goal.as_str();
    json!({
        "version": "1.0",
        "metadata": metadata,
        "search_space": {"variables": variables},
        "experiments": {"data": rows, "n_total": state.experiments.len()},
        "staged_experiments": staged,
        "objective_metadata": {OUTPUT: {"label": state.objective.name, "unit": state.objective.unit, "goal": goal}},
        "outputs": state.outputs,
        "constraints": state.constraints.iter().map(|c| &c.text).collect::<Vec<_>>(),
        "model": state.model.as_ref().map(|m| json!({
            "backend": "kiln", "kernel": kernel_name(m.hyperparameters.kernel),
            "hyperparameters": m.hyperparameters, "kiln_model": m,
        })),
        "last_suggestions": state.last_suggestions.as_ref().map(|s| json!({
            "strategy": s.strategy, "parameters": s.params,
            "points": s.points.iter().map(|p| &p.inputs).collect::<Vec<_>>(),
            "kiln_suggestions": s,
        })),
        "config": {"goal": goal},
        "audit_log": {"entries": entries, "search_space": {"variables": variables}},
    })
}

/// Reads an ALchemist session file into an optimiser state, its audit entries and what was
/// left out. Typed errors for a file that is not one (no search space, a bad variable).
pub fn from_alchemist(file: &Json) -> Result<Imported> {
    let mut dropped = Vec::new();
    let metadata: AlchemistMetadata =
        serde_json::from_value(file.get("metadata").cloned().unwrap_or(json!({})))
            .map_err(|e| bad(format!("metadata: {e}")))?;
    let vars = file
        .pointer("/search_space/variables")
        .or_else(|| file.pointer("/audit_log/search_space/variables"))
        .and_then(Json::as_array)
        .ok_or_else(|| bad("no search_space.variables"))?;
    let space = SearchSpace::new(vars.iter().map(variable_from).collect::<Result<Vec<_>>>()?)?;
    let meta = file.pointer("/objective_metadata/Output");
    let goal_text = meta
        .and_then(|m| m["goal"].as_str())
        .or_else(|| file.pointer("/config/goal").and_then(Json::as_str))
        .unwrap_or("maximize");
    let goal = if goal_text.to_ascii_lowercase().starts_with("min") {
        Goal::Minimize
    } else {
        Goal::Maximize
    };
    let objective = Objective {
        name: meta
            .and_then(|m| m["label"].as_str())
            .unwrap_or(OUTPUT)
            .to_owned(),
        goal,
        unit: meta.and_then(|m| m["unit"].as_str()).map(String::from),
    };
    let mut state = OptimizerState::new(space, objective);
    if let Some(o) = file.get("outputs").filter(|o| o.is_array()) {
        state.outputs = serde_json::from_value(o.clone()).unwrap_or_default();
    }
    if let Some(cs) = file.get("constraints").and_then(Json::as_array) {
        for c in cs.iter().filter_map(Json::as_str) {
            state
                .constraints
                .push(crate::constraint::LinearConstraint::parse(c, &state.space)?);
        }
    }
    let other_outputs = state.output_names();
    let rows = file
        .pointer("/experiments/data")
        .or_else(|| file.get("experiments").filter(|e| e.is_array()))
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    for (i, row) in rows.iter().enumerate() {
        let row = row
            .as_object()
            .ok_or_else(|| bad(format!("experiment {i} is not an object")))?;
        let output = row
            .get(OUTPUT)
            .and_then(Json::as_f64)
            .ok_or_else(|| bad(format!("experiment {i} has no numeric Output")))?;
        let mut e = Experiment::new(inputs_from(row, &state.space), output);
        e.noise = row.get(NOISE).and_then(Json::as_f64);
        for name in &other_outputs {
            if let Some(x) = row.get(name).and_then(Json::as_f64) {
                e.outputs.insert(name.clone(), x);
            }
        }
        // A row a strategy proposed keeps its provenance as a finished queue entry.
        let iteration = row.get(ITERATION).and_then(Json::as_u64).unwrap_or(0);
        let reason = row.get(REASON).and_then(Json::as_str).unwrap_or("");
        if iteration > 0 && !reason.is_empty() && reason != "Manual" {
            let mut q = QueuedExperiment::new(
                iteration as u32,
                reason,
                e.inputs.clone(),
                &format!("alchemist:row{i}"),
            );
            q.status = QueueStatus::Done;
            q.experiment = Some(e.key());
            e.queued = Some(q.id.clone());
            state.queue.push(q);
        }
        state.experiments.push(e);
    }
    crate::experiment::validate_rows(&state.space, &state.experiments)?;
    for (i, s) in file
        .get("staged_experiments")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(obj) = s.as_object() else { continue };
        let strategy = obj
            .get("reason")
            .or_else(|| obj.get("_reason"))
            .and_then(Json::as_str)
            .unwrap_or("manual");
        let iteration = obj
            .get("iteration")
            .and_then(Json::as_u64)
            .map_or_else(|| state.iteration(), |n| n as u32);
        let inputs = inputs_from(obj, &state.space);
        state.space.parse_inputs(&inputs).map_err(|(f, m)| {
            bad(format!(
                "staged experiment {i}: {}: {m}",
                f.unwrap_or_default()
            ))
        })?;
        let mut q =
            QueuedExperiment::new(iteration, strategy, inputs, &format!("alchemist:staged{i}"));
        if obj.get("status").and_then(Json::as_str) == Some("running") {
            q.status = QueueStatus::Running;
        }
        state.queue.push(q);
    }
    if let Some(m) = file.get("model").filter(|m| !m.is_null()) {
        match m
            .get("kiln_model")
            .map(|k| serde_json::from_value::<ModelRecord>(k.clone()))
        {
            Some(Ok(record)) => state.model = Some(record),
            _ => dropped.push(format!(
                "the {} model ({} kernel): Kiln fits its own GP on next use",
                m["backend"].as_str().unwrap_or("?"),
                m["kernel"].as_str().unwrap_or("?")
            )),
        }
    }
    if let Some(s) = file.get("last_suggestions").filter(|s| !s.is_null()) {
        if let Some(Ok(rec)) = s
            .get("kiln_suggestions")
            .map(|k| serde_json::from_value::<SuggestionRecord>(k.clone()))
        {
            state.last_suggestions = Some(rec);
        } else if let Some(list) = s
            .as_array()
            .or_else(|| s.get("points").and_then(Json::as_array))
        {
            let points = list
                .iter()
                .filter_map(Json::as_object)
                .map(|p| SuggestedPoint {
                    inputs: inputs_from(p, &state.space),
                    mean: None,
                    std: None,
                    acquisition: None,
                })
                .collect();
            state.last_suggestions = Some(SuggestionRecord {
                strategy: "alchemist".into(),
                params: json!({}),
                points,
            });
        }
    }
    let entries: Vec<AlchemistEntry> = file
        .pointer("/audit_log/entries")
        .or_else(|| file.get("audit_log").filter(|a| a.is_array()))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            serde_json::from_value(e.clone()).map_err(|err| bad(format!("audit entry: {err}")))
        })
        .collect::<Result<_>>()?;
    let mut iteration = 1;
    for e in &entries {
        if let Some(Ok(l)) = e
            .parameters
            .get("kiln_lock")
            .map(|k| serde_json::from_value::<LockRecord>(k.clone()))
        {
            state.locks.push(l);
            continue;
        }
        let it = e.parameters["iteration"]
            .as_u64()
            .map_or(iteration, |n| n as u32);
        let notes = Some(e.notes.clone()).filter(|n| !n.is_empty());
        let details = match e.entry_type.as_str() {
            "data_locked" => LockDetails::Data {
                n_experiments: e.parameters["n_experiments"].as_u64().unwrap_or(0) as usize,
                data_fingerprint: e.parameters["data_hash"].as_str().unwrap_or("").to_owned(),
                best: None,
            },
            "acquisition_locked" => LockDetails::Acquisition {
                strategy: e.parameters["strategy"].as_str().unwrap_or("?").to_owned(),
                params: e.parameters["parameters"].clone(),
                points: e.parameters["suggestions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_object)
                    .map(|p| SuggestedPoint {
                        inputs: inputs_from(p, &state.space),
                        mean: None,
                        std: None,
                        acquisition: None,
                    })
                    .collect(),
            },
            other => {
                // A model lock names ALchemist's backend and hyperparameters, which Kiln's
                // model record cannot hold: it stays in the audit log only.
                dropped.push(format!(
                    "the {other} entry of {} as an optimizer lock (kept in the audit log)",
                    e.timestamp
                ));
                continue;
            }
        };
        if matches!(details, LockDetails::Acquisition { .. }) {
            iteration = it + 1;
        }
        state.locks.push(LockRecord {
            iteration: it,
            details,
            notes,
        });
    }
    Ok(Imported {
        metadata,
        state,
        audit: entries,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_written_as_python_writes_them_for_the_hash() {
        let v = json!({"b": 1, "a": [1.5, "x"], "c": {"z": null, "y": true}});
        assert_eq!(
            python_json(&v),
            r#"{"a": [1.5, "x"], "b": 1, "c": {"y": true, "z": null}}"#
        );
        let h = entry_hash(&v, &|t| format!("{:0>64}", t.len()));
        assert_eq!(h.len(), 16);
    }

    #[test]
    fn a_file_without_a_space_or_with_a_bad_row_is_refused() {
        assert!(matches!(
            from_alchemist(&json!({"metadata": {}})),
            Err(Error::Parse { .. })
        ));
        let space = json!({"variables": [{"name": "t", "type": "real", "min": 0, "max": 1}]});
        let err =
            from_alchemist(&json!({"search_space": space, "experiments": {"data": [{"t": 0.5}]}}))
                .unwrap_err();
        assert!(err.to_string().contains("no numeric Output"), "{err}");
        let err = from_alchemist(
            &json!({"search_space": space, "experiments": {"data": [{"t": 7, "Output": 1}]}}),
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidExperiments(_)), "{err:?}");
        let ok = from_alchemist(&json!({"search_space": space, "experiments": {"data": [{"t": 0.2, "Output": 1, "Iteration": 0, "Reason": "Initial Design"}]}}))
            .unwrap();
        assert_eq!(ok.state.experiments.len(), 1);
        assert!(
            ok.state.queue.is_empty(),
            "an initial-design row is not a queued run"
        );
        assert_eq!(ok.state.objective.name, "Output");
    }
}
