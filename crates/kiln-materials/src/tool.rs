//! The `materials_analyzer` tool's contract: JSON-schema'd arguments in, JSON data plus a
//! short text for the model out. The session-side `Tool` impl wraps these two functions.

use serde::Serialize;
use serde_json::{Value, json};

use crate::analysis::analyze;
use crate::compare::compare;
use crate::error::{Error, Result};
use crate::parse::parse;
use crate::substitution::similar;
use crate::validity::validate;

/// The tool's registered name.
pub const TOOL_NAME: &str = "materials_analyzer";
/// The tool's description for the model.
pub const TOOL_DESCRIPTION: &str = "Analyse inorganic chemical formulas: composition, molar \
mass, oxidation states, a SMACT-like validity screen, similar materials by ionic substitution, \
and side-by-side comparison. Results are computed, not recalled.";
/// Default and largest `limit` for `similar`.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;

/// What the tool returns: structured data and a one-line summary for the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    pub data: Value,
    pub text: String,
}

/// Returns the JSON schema of the tool's arguments.
pub fn tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {
                "type": "string",
                "enum": ["analyze", "validate", "similar", "compare"],
                "description": "analyze: full analysis; validate: SMACT-like screen with reasons; similar: substitution candidates; compare: two formulas side by side"
            },
            "formula": {
                "type": "string",
                "description": "A chemical formula, e.g. LiFePO4, Ca10(PO4)6(OH)2, CuSO4·5H2O, LiNi1/3Mn1/3Co1/3O2"
            },
            "formulas": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": 2,
                "description": "For compare: the two formulas (or one, compared with `formula`)"
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "maximum": MAX_LIMIT,
                "description": "For similar: how many candidates (default 10)"
            }
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

fn bad(msg: impl Into<String>) -> Error {
    Error::InvalidArguments(msg.into())
}

fn formula_arg(args: &Value) -> Result<&str> {
    args.get("formula")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`formula` (string) is required"))
}

fn to_value<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| bad(format!("could not serialise the result: {e}")))
}

/// Runs one tool call. Bad formulas and bad arguments come back as [`Error`]s, which the
/// adapter should hand to the model as data (they carry code, message and position).
pub fn run_tool(args: &Value) -> Result<ToolOutput> {
    let action = args
        .get("action")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`action` (string) is required"))?;
    match action {
        "analyze" => {
            let a = analyze(formula_arg(args)?)?;
            Ok(ToolOutput {
                text: a.summary(),
                data: to_value(&a)?,
            })
        }
        "validate" => {
            let f = parse(formula_arg(args)?)?;
            let v = validate(&f);
            let text = format!(
                "{}: {} ({})",
                f.text(),
                if v.valid { "valid" } else { "invalid" },
                v.reasons.join("; ")
            );
            let mut data = to_value(&v)?;
            if let Some(obj) = data.as_object_mut() {
                obj.insert("formula".to_owned(), Value::from(f.text()));
            }
            Ok(ToolOutput { data, text })
        }
        "similar" => {
            let limit = match args.get("limit") {
                None | Some(Value::Null) => DEFAULT_LIMIT,
                Some(v) => v
                    .as_u64()
                    .filter(|n| (1..=MAX_LIMIT as u64).contains(n))
                    .map(|n| n as usize)
                    .ok_or_else(|| {
                        bad(format!("`limit` must be an integer from 1 to {MAX_LIMIT}"))
                    })?,
            };
            let f = parse(formula_arg(args)?)?;
            let c = similar(&f, limit)?;
            let list = c
                .iter()
                .map(|c| format!("{} (p={:.3})", c.formula, c.probability))
                .collect::<Vec<_>>()
                .join(", ");
            let text = if c.is_empty() {
                format!(
                    "{}: no valid substitution candidates above p=0.001",
                    f.text()
                )
            } else {
                format!("similar to {} by ionic substitution: {list}", f.text())
            };
            Ok(ToolOutput {
                data: json!({"formula": f.text(), "candidates": to_value(&c)?}),
                text,
            })
        }
        "compare" => {
            let listed: Vec<&str> = match args.get("formulas") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(v)) => v
                    .iter()
                    .map(|x| x.as_str().ok_or_else(|| bad("`formulas` must be strings")))
                    .collect::<Result<_>>()?,
                Some(_) => return Err(bad("`formulas` must be an array of strings")),
            };
            let single = args.get("formula").and_then(Value::as_str);
            let (a, b) = match (single, listed.as_slice()) {
                (None, [a, b]) => (*a, *b),
                (Some(a), [b]) => (a, *b),
                _ => return Err(bad("compare needs two formulas: `formulas: [a, b]`")),
            };
            let c = compare(a, b)?;
            Ok(ToolOutput {
                text: c.summary(),
                data: to_value(&c)?,
            })
        }
        other => Err(bad(format!(
            "unknown action `{other}`: expected analyze, validate, similar or compare"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lists_the_four_actions() {
        let s = tool_schema();
        assert_eq!(
            s["properties"]["action"]["enum"].as_array().map(Vec::len),
            Some(4)
        );
        assert_eq!(s["required"][0], "action");
    }

    #[test]
    fn each_action_runs() {
        let out = run_tool(&json!({"action": "analyze", "formula": "LiFePO4"}));
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            out.text,
            "LiFePO4: molar mass 157.755 g/mol, Li+1 Fe+2 P+5 O-2, valid"
        );
        assert_eq!(out.data["reduced_formula"], "LiFePO4");

        let out = run_tool(&json!({"action": "validate", "formula": "Fe3O4"}));
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.data["valid"], false);
        assert!(out.text.starts_with("Fe3O4: invalid"), "{}", out.text);

        let out = run_tool(&json!({"action": "similar", "formula": "LiFePO4", "limit": 3}));
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.data["candidates"].as_array().map(Vec::len), Some(3));

        let out = run_tool(&json!({"action": "compare", "formulas": ["LiFePO4", "NaFePO4"]}));
        let out = out.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.data["only_in_b"][0], "Na");
    }

    #[test]
    fn bad_arguments_are_typed_errors() {
        let cases = [
            json!({}),
            json!({"action": "fly", "formula": "H2O"}),
            json!({"action": "analyze"}),
            json!({"action": "similar", "formula": "H2O", "limit": 0}),
            json!({"action": "compare", "formulas": ["H2O"]}),
        ];
        for args in cases {
            let e = run_tool(&args).err();
            assert_eq!(e.map(|e| e.code()), Some("invalid_arguments"), "{args}");
        }
        let e = run_tool(&json!({"action": "analyze", "formula": "Xx2O3"})).err();
        assert_eq!(
            e.map(|e| (e.code(), e.position())),
            Some(("unknown_element", Some(0)))
        );
    }
}
