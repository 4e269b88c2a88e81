//! `materials_analyzer`: the chemistry library as a session tool. Every analysed formula
//! becomes a `material` event and the focus, so "its" in the next question resolves to it.

use futures::future::BoxFuture;
use kiln_materials::tool as lib;
use kiln_types::StateEvent;
use serde_json::{Value, json};

use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

/// The materials analyzer tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaterialsAnalyzer;

/// The short record kept with a material in the research state.
fn material_data(data: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for key in [
        "reduced_formula",
        "chemical_system",
        "molar_mass",
        "valid",
        "mixed_valence",
    ] {
        if let Some(v) = data.get(key) {
            out.insert(key.to_owned(), v.clone());
        }
    }
    if let Some(states) = data.get("oxidation_states").filter(|v| !v.is_null()) {
        out.insert("oxidation_states".into(), states.clone());
    }
    Value::Object(out)
}

/// The formulas a call was about, in order, as the library wrote them back.
fn subjects(action: &str, args: &Value, data: &Value) -> Vec<String> {
    let from_data = |v: &Value| v.get("formula").and_then(Value::as_str).map(str::to_owned);
    match action {
        "compare" => {
            let mut out = Vec::new();
            for side in ["a", "b", "first", "second"] {
                if let Some(f) = data.get(side).and_then(from_data) {
                    out.push(f);
                }
            }
            if out.is_empty() {
                if let Some(list) = args.get("formulas").and_then(Value::as_array) {
                    out.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
                }
                if let Some(f) = args.get("formula").and_then(Value::as_str) {
                    out.insert(0, f.to_owned());
                }
            }
            out
        }
        _ => from_data(data)
            .or_else(|| {
                args.get("formula")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .into_iter()
            .collect(),
    }
}

impl Tool for MaterialsAnalyzer {
    fn name(&self) -> &str {
        lib::TOOL_NAME
    }

    fn description(&self) -> &str {
        lib::TOOL_DESCRIPTION
    }

    fn schema(&self) -> Value {
        lib::tool_schema()
    }

    fn call<'a>(
        &'a self,
        _ctx: &'a ToolContext,
        args: Value,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let out =
                lib::run_tool(&args).map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
            let action = args.get("action").and_then(Value::as_str).unwrap_or("");
            let mut output = ToolOutput::new(out.text, out.data);
            let subjects = subjects(action, &args, &output.data);
            for formula in &subjects {
                let data = if action == "analyze" {
                    Some(material_data(&output.data))
                } else if action == "validate" {
                    Some(json!({"valid": output.data.get("valid").cloned().unwrap_or(Value::Null)}))
                } else {
                    None
                };
                output.events.push(StateEvent::Material {
                    formula: formula.clone(),
                    data,
                });
            }
            if let Some(first) = subjects.first() {
                output.events.push(StateEvent::Focus {
                    material: Some(first.clone()),
                    topic: None,
                });
            }
            Ok(output)
        })
    }
}
