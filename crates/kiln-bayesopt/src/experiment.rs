//! Experiments (inputs, the measured objective and any other recorded outputs; excluded with a
//! reason, never deleted): per-row validation against a search space, and bulk parsing from
//! JSON or CSV text, all-or-nothing or as a report of good rows and per-row errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, RowError};
use crate::space::{Domain, Inputs, SearchSpace, Value};

/// One measured experiment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    /// Variable name to value.
    pub inputs: Inputs,
    /// The measured objective value.
    pub output: f64,
    /// Measurement noise as a standard deviation in output units, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// Other measured outputs (recorded, not optimised), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, f64>,
    /// Why the experiment is left out of the model, when it is. It stays in the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<String>,
    /// Every change made to the row after it was recorded, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<Edit>,
    /// The row's identity, fixed at its first edit (see [`Experiment::key`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The queue entry the row completed; absent for results recorded outside the queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<String>,
}

/// One change to a recorded experiment: why, and the fields' values before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit {
    /// The researcher's reason.
    pub reason: String,
    /// Field name to its value before the change (`excluded` is the previous reason or null).
    pub before: serde_json::Map<String, serde_json::Value>,
}

impl Experiment {
    /// A row measured at `inputs` with objective value `output`.
    pub fn new(inputs: Inputs, output: f64) -> Self {
        Experiment {
            inputs,
            output,
            ..Experiment::default()
        }
    }

    /// The row's identity across edits and branches: the id fixed at its first edit, else a
    /// hash of the row as recorded (inputs, output, noise, other outputs). Two branches that
    /// record the same measurement name the same row.
    pub fn key(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        let original = serde_json::json!({
            "inputs": self.inputs, "output": self.output, "noise": self.noise, "outputs": self.outputs,
        });
        format!("e{}", &crate::state::fnv_hex(&original.to_string())[..12])
    }

    /// Whether the model uses the row.
    pub fn is_active(&self) -> bool {
        self.excluded.is_none()
    }
}

/// Validates every row; returns the raw coordinates of all rows, or every row's error.
pub fn validate_rows(space: &SearchSpace, rows: &[Experiment]) -> Result<Vec<Vec<f64>>> {
    let mut errors = Vec::new();
    let mut raws = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        match validate_row(space, row) {
            Ok(raw) => raws.push(raw),
            Err((field, message)) => errors.push(RowError {
                row: i,
                line: None,
                field,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(raws)
    } else {
        Err(Error::InvalidExperiments(errors))
    }
}

fn validate_row(
    space: &SearchSpace,
    row: &Experiment,
) -> Result<Vec<f64>, (Option<String>, String)> {
    let raw = space.parse_inputs(&row.inputs)?;
    if row.output.is_nan() {
        return Err((Some("output".into()), "output is NaN".into()));
    }
    if row.output.is_infinite() {
        return Err((Some("output".into()), "output is infinite".into()));
    }
    if let Some(n) = row.noise
        && (!n.is_finite() || n < 0.0)
    {
        return Err((
            Some("noise".into()),
            format!("noise must be a finite non-negative standard deviation, got {n}"),
        ));
    }
    Ok(raw)
}

/// Parses experiments from JSON text: an array of `{"inputs": {...}, "output", "noise"?,
/// "outputs"?}` objects, or of flat objects holding the variables plus `output` (or the
/// objective's name), `noise` and the other recorded outputs by name.
pub fn parse_json(
    text: &str,
    space: &SearchSpace,
    objective: &str,
    outputs: &[String],
) -> Result<Vec<Experiment>> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Parse {
        format: "json",
        message: e.to_string(),
    })?;
    let rows = match value {
        serde_json::Value::Array(rows) => rows,
        serde_json::Value::Object(mut obj) => match obj.remove("experiments") {
            Some(serde_json::Value::Array(rows)) => rows,
            _ => {
                return Err(Error::Parse {
                    format: "json",
                    message: "expected an array of experiments".into(),
                });
            }
        },
        _ => {
            return Err(Error::Parse {
                format: "json",
                message: "expected an array of experiments".into(),
            });
        }
    };
    rows_from_json(&rows, space, objective, outputs)
}

/// Converts JSON rows (structured or flat) into experiments, collecting every row's error.
pub fn rows_from_json(
    rows: &[serde_json::Value],
    space: &SearchSpace,
    objective: &str,
    outputs: &[String],
) -> Result<Vec<Experiment>> {
    let mut out = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match row_from_json(row, space, objective, outputs) {
            Ok(e) => out.push(e),
            Err((field, message)) => errors.push(RowError {
                row: i,
                line: None,
                field,
                message,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Error::InvalidExperiments(errors))
    }
}

fn json_number(v: &serde_json::Value, field: &str) -> Result<f64, (Option<String>, String)> {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| (Some(field.into()), "not a number".into())),
        serde_json::Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| (Some(field.into()), format!("'{s}' is not a number"))),
        serde_json::Value::Null => Err((Some(field.into()), "missing value".into())),
        other => Err((
            Some(field.into()),
            format!("expected a number, got {other}"),
        )),
    }
}

fn json_value(v: &serde_json::Value, field: &str) -> Result<Value, (Option<String>, String)> {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(Value::Number)
            .ok_or_else(|| (Some(field.into()), "not a number".into())),
        serde_json::Value::String(s) => Ok(Value::Text(s.clone())),
        serde_json::Value::Bool(b) => Ok(Value::Text(b.to_string())),
        serde_json::Value::Null => Err((Some(field.into()), "missing value".into())),
        other => Err((
            Some(field.into()),
            format!("expected a number or a label, got {other}"),
        )),
    }
}

type Json = serde_json::Value;
type JsonMap = serde_json::Map<String, Json>;

fn row_from_json(
    row: &Json,
    space: &SearchSpace,
    objective: &str,
    outputs: &[String],
) -> Result<Experiment, (Option<String>, String)> {
    let obj = row
        .as_object()
        .ok_or((None, "expected an object".to_string()))?;
    if let Some(inputs) = obj.get("inputs") {
        let inputs = inputs
            .as_object()
            .ok_or((Some("inputs".into()), "expected an object".to_string()))?;
        let others = match obj.get("outputs") {
            None | Some(Json::Null) => JsonMap::new(),
            Some(Json::Object(m)) => m.clone(),
            Some(_) => return Err((Some("outputs".into()), "expected an object".into())),
        };
        for key in obj.keys() {
            if !["inputs", "output", "noise", "outputs"].contains(&key.as_str()) {
                return Err((Some(key.clone()), "unknown field".into()));
            }
        }
        return finish_row(
            inputs,
            obj.get("output"),
            obj.get("noise"),
            &others,
            space,
            outputs,
        );
    }
    let mut inputs = obj.clone();
    let output = inputs.remove("output").or_else(|| inputs.remove(objective));
    let noise = inputs.remove("noise");
    let mut others = JsonMap::new();
    for name in outputs {
        if let Some(v) = inputs.remove(name) {
            others.insert(name.clone(), v);
        }
    }
    finish_row(
        &inputs,
        output.as_ref(),
        noise.as_ref(),
        &others,
        space,
        outputs,
    )
}

fn finish_row(
    inputs_obj: &JsonMap,
    output: Option<&Json>,
    noise: Option<&Json>,
    others: &JsonMap,
    space: &SearchSpace,
    outputs: &[String],
) -> Result<Experiment, (Option<String>, String)> {
    let mut inputs = Inputs::new();
    for (k, v) in inputs_obj {
        inputs.insert(k.clone(), json_value(v, k)?);
    }
    // A number written as text (every CSV cell, a quoted JSON value) is stored as the number
    // for a real or integer variable, as it would be sent as JSON.
    for var in space.variables() {
        if matches!(var.domain, Domain::Categorical { .. }) {
            continue;
        }
        if let Some(Value::Text(t)) = inputs.get(&var.name)
            && let Ok(x) = t.trim().parse::<f64>()
        {
            inputs.insert(var.name.clone(), Value::Number(x));
        }
    }
    let output = json_number(
        output.ok_or((Some("output".into()), "missing value".to_string()))?,
        "output",
    )?;
    let noise = match noise {
        None | Some(Json::Null) => None,
        Some(v) => Some(json_number(v, "noise")?),
    };
    let mut recorded = BTreeMap::new();
    for (name, v) in others {
        if !outputs.contains(name) {
            return Err((
                Some(name.clone()),
                "not a recorded output of this space".into(),
            ));
        }
        // An empty cell is an output not measured for this row.
        if v.is_null() {
            continue;
        }
        let x = json_number(v, name)?;
        if !x.is_finite() {
            return Err((Some(name.clone()), "output is not finite".into()));
        }
        recorded.insert(name.clone(), x);
    }
    let e = Experiment {
        inputs,
        output,
        noise,
        outputs: recorded,
        ..Experiment::default()
    };
    validate_row(space, &e)?;
    Ok(e)
}

/// What one column of an uploaded table is read as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnRole {
    /// The header cell.
    pub column: String,
    /// `variable`, `objective`, `output` (another recorded output), `noise` or `unknown`
    /// (every row then fails on it).
    pub role: String,
}

/// One good row of an upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParsedRow {
    /// Zero-based index of the row among the data rows.
    pub row: usize,
    /// One-based line in the text.
    pub line: usize,
    /// The experiment it becomes.
    pub experiment: Experiment,
}

/// A CSV upload read against a space: the column mapping, the good rows and every bad row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvReport {
    /// How each column is read, in header order.
    pub columns: Vec<ColumnRole>,
    /// Rows that parse and fit the space.
    pub rows: Vec<ParsedRow>,
    /// Rows that do not, with why.
    pub errors: Vec<RowError>,
}

/// Parses experiments from CSV text with a header naming the variables, the output column
/// (`output` or the objective's name), an optional `noise` column and the other recorded
/// outputs. Quoted fields are supported. All or nothing: every bad row is reported.
pub fn parse_csv(
    text: &str,
    space: &SearchSpace,
    objective: &str,
    outputs: &[String],
) -> Result<Vec<Experiment>> {
    let report = read_csv(text, space, objective, outputs)?;
    if report.errors.is_empty() {
        Ok(report.rows.into_iter().map(|r| r.experiment).collect())
    } else {
        Err(Error::InvalidExperiments(report.errors))
    }
}

/// Reads CSV text row by row: the good rows and every bad row's error. Fails as a whole only
/// when there is no usable header (empty text, no output column, a broken header line).
pub fn read_csv(
    text: &str,
    space: &SearchSpace,
    objective: &str,
    outputs: &[String],
) -> Result<CsvReport> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(Error::Parse {
        format: "csv",
        message: "empty input".into(),
    })?;
    let header = split_csv_line(header).map_err(|m| Error::Parse {
        format: "csv",
        message: format!("line 1: {m}"),
    })?;
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
    let output_col = header
        .iter()
        .position(|h| h == "output")
        .or_else(|| header.iter().position(|h| h == objective))
        .ok_or_else(|| Error::Parse {
            format: "csv",
            message: format!("no 'output' or '{objective}' column"),
        })?;
    let noise_col = header.iter().position(|h| h == "noise");
    let columns = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let role = if i == output_col {
                "objective"
            } else if Some(i) == noise_col {
                "noise"
            } else if outputs.contains(h) {
                "output"
            } else if space.variables().iter().any(|v| &v.name == h) {
                "variable"
            } else {
                "unknown"
            };
            ColumnRole {
                column: h.clone(),
                role: role.into(),
            }
        })
        .collect();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (row_idx, (line_no, line)) in lines.enumerate() {
        let line_no = line_no + 1;
        let fail = |field: Option<String>, message: String| RowError {
            row: row_idx,
            line: Some(line_no),
            field,
            message,
        };
        let cells = match split_csv_line(line) {
            Ok(c) => c,
            Err(m) => {
                errors.push(fail(None, format!("line {line_no}: {m}")));
                continue;
            }
        };
        if cells.len() != header.len() {
            errors.push(fail(
                None,
                format!(
                    "line {line_no}: {} cells, header has {}",
                    cells.len(),
                    header.len()
                ),
            ));
            continue;
        }
        let cell = |i: usize| -> Json {
            let c = cells[i].trim();
            if c.is_empty() {
                Json::Null
            } else {
                Json::String(c.to_string())
            }
        };
        let mut obj = JsonMap::new();
        let mut others = JsonMap::new();
        for (i, h) in header.iter().enumerate() {
            if i == output_col || Some(i) == noise_col {
                continue;
            }
            if outputs.contains(h) {
                others.insert(h.clone(), cell(i));
            } else {
                obj.insert(h.clone(), cell(i));
            }
        }
        let output = cell(output_col);
        let noise = noise_col.map(cell);
        match finish_row(&obj, Some(&output), noise.as_ref(), &others, space, outputs) {
            Ok(e) => rows.push(ParsedRow {
                row: row_idx,
                line: line_no,
                experiment: e,
            }),
            Err((field, message)) => errors.push(fail(field, message)),
        }
    }
    Ok(CsvReport {
        columns,
        rows,
        errors,
    })
}

fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            (false, ',') => cells.push(std::mem::take(&mut cur)),
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    cells.push(cur);
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Variable;

    fn space() -> SearchSpace {
        SearchSpace::new(vec![
            Variable::real("temp", 100.0, 500.0).unwrap(),
            Variable::integer("time", 1, 10).unwrap(),
            Variable::categorical("solvent", &["water", "ethanol, dry"]).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn csv_rows_parse_with_quotes_and_noise() {
        let text =
            "temp,time,solvent,yield,noise\n200,3,water,0.5,0.01\n300.5,4,\"ethanol, dry\",0.7,\n";
        let rows = parse_csv(text, &space(), "yield", &[]).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].noise, Some(0.01));
        // Numbers are stored as numbers, as JSON rows store them; labels stay text.
        assert_eq!(rows[1].inputs["temp"], Value::Number(300.5));
        assert_eq!(rows[0].inputs["time"], Value::Number(3.0));
        assert_eq!(rows[0].inputs["solvent"], Value::Text("water".into()));
        assert_eq!(rows[1].noise, None);
        assert_eq!(
            rows[1].inputs["solvent"],
            Value::Text("ethanol, dry".into())
        );
        assert!(validate_rows(&space(), &rows).is_ok());
    }

    #[test]
    fn csv_reports_every_bad_row_and_returns_nothing() {
        let text = "temp,time,solvent,output\n200,3,water,0.5\n900,3,water,0.1\n200,3.5,water,0.1\n200,3,oil,0.1\n200,3,water,nan\n200,,water,1\n200,3\n";
        let err = parse_csv(text, &space(), "y", &[]).unwrap_err();
        let Error::InvalidExperiments(rows) = err else {
            panic!("wrong error")
        };
        let got: Vec<(usize, &str)> = rows
            .iter()
            .map(|r| (r.row, r.field.as_deref().unwrap_or("-")))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "temp"),
                (2, "time"),
                (3, "solvent"),
                (4, "output"),
                (5, "time"),
                (6, "-")
            ]
        );
    }

    #[test]
    fn json_accepts_structured_and_flat_rows() {
        let text = r#"[{"inputs": {"temp": 150, "time": 2, "solvent": "water"}, "output": 1.5},
                       {"temp": 160, "time": 2, "solvent": "water", "yield": 2.0, "noise": 0.1}]"#;
        let rows = parse_json(text, &space(), "yield", &[]).unwrap();
        assert_eq!(rows[0].output, 1.5);
        assert_eq!(rows[1].output, 2.0);
        assert_eq!(rows[1].noise, Some(0.1));
    }

    #[test]
    fn json_errors_are_typed() {
        assert!(matches!(
            parse_json("{oops", &space(), "y", &[]),
            Err(Error::Parse { format: "json", .. })
        ));
        let text = r#"[{"inputs": {"temp": 150, "time": 2, "solvent": "water", "extra": 1}, "output": 1.5},
                       {"inputs": {"temp": 150, "time": 2, "solvent": "water"}}]"#;
        let Err(Error::InvalidExperiments(rows)) = parse_json(text, &space(), "y", &[]) else {
            panic!()
        };
        assert_eq!(rows[0].field.as_deref(), Some("extra"));
        assert_eq!(rows[1].field.as_deref(), Some("output"));
    }

    #[test]
    fn negative_noise_is_rejected() {
        let e = Experiment {
            outputs: Default::default(),
            excluded: None,
            edits: Vec::new(),
            id: None,
            queued: None,
            inputs: [
                ("temp".to_string(), Value::Number(200.0)),
                ("time".to_string(), Value::Number(2.0)),
                ("solvent".to_string(), Value::Text("water".into())),
            ]
            .into_iter()
            .collect(),
            output: 1.0,
            noise: Some(-1.0),
        };
        assert!(matches!(
            validate_rows(&space(), &[e]),
            Err(Error::InvalidExperiments(_))
        ));
    }
}
