//! Notebook parameters: a nested JSON object set by deep merge, read nested or flattened to
//! dotted keys, with a history of every leaf that changed (who, when, old → new).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bad;
use crate::tool::ToolError;

/// The most changes one set may make, and the largest parameter set (as JSON).
const MAX_CHANGES: usize = 1000;
const MAX_PARAMS_BYTES: usize = 256 * 1024;

/// One leaf parameter that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamChange {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who set it (user id).
    pub by: String,
    /// The dotted key (`optimizer.lr`).
    pub key: String,
    /// The value before (absent: it was new).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<Value>,
    /// The value after.
    pub new: Value,
}

/// Flattens nested objects to dotted keys (`{"a": {"b": 1}}` → `a.b = 1`); arrays and
/// scalars are leaves; an empty object is a leaf too.
pub fn flatten(params: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, x) in o {
                    walk(&format!("{prefix}.{k}"), x, out);
                }
            }
            _ => {
                out.insert(prefix.to_owned(), v.clone());
            }
        }
    }
    let mut out = BTreeMap::new();
    for (k, v) in params {
        walk(k, v, &mut out);
    }
    out
}

/// Merges `patch` into `params` (objects merge key by key, anything else replaces), and
/// returns the leaves that changed. A dotted key in the patch (`"optimizer.lr": 0.1`) is
/// the same as the nested object.
pub fn set_nested(
    params: &mut BTreeMap<String, Value>,
    patch: &Map<String, Value>,
    at: &str,
    by: &str,
) -> Result<Vec<ParamChange>, ToolError> {
    if patch.is_empty() {
        return Err(bad("`params` must not be empty"));
    }
    let before = flatten(params);
    let mut root = Value::Object(params.clone().into_iter().collect());
    for (k, v) in patch {
        let path: Vec<&str> = k.split('.').collect();
        if path.iter().any(|p| p.is_empty()) || k.len() > 200 {
            return Err(bad(format!(
                "parameter name `{}` must be 1-200 bytes without empty dotted parts",
                k.escape_debug()
            )));
        }
        merge_at(&mut root, &path, v);
    }
    let merged: BTreeMap<String, Value> = match root {
        Value::Object(o) => o.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    if serde_json::to_string(&merged).map_or(0, |s| s.len()) > MAX_PARAMS_BYTES {
        return Err(bad("the parameters would be larger than 256 KiB"));
    }
    let after = flatten(&merged);
    let changes: Vec<ParamChange> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| ParamChange {
            at: at.to_owned(),
            by: by.to_owned(),
            key: k.clone(),
            old: before.get(k).cloned(),
            new: v.clone(),
        })
        .collect();
    if changes.len() > MAX_CHANGES {
        return Err(bad(format!("at most {MAX_CHANGES} parameters per set")));
    }
    *params = merged;
    Ok(changes)
}

fn merge_at(target: &mut Value, path: &[&str], v: &Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(o) = target.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        match (o.get_mut(*first), v) {
            (Some(existing @ Value::Object(_)), Value::Object(patch)) => {
                for (k, x) in patch {
                    merge_at(existing, &[k.as_str()], x);
                }
            }
            _ => {
                o.insert((*first).to_owned(), v.clone());
            }
        }
    } else {
        let child = o
            .entry((*first).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        merge_at(child, rest, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nested_set_merges_and_records_only_what_changed() {
        let mut p = BTreeMap::new();
        let patch = json!({"model": {"lr": 0.1, "layers": 4}, "seed": 1});
        let c = set_nested(&mut p, patch.as_object().unwrap(), "t1", "u").unwrap();
        assert_eq!(c.len(), 3);
        let patch = json!({"model.lr": 0.01, "seed": 1});
        let c = set_nested(&mut p, patch.as_object().unwrap(), "t2", "u").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key, "model.lr");
        assert_eq!(c[0].old, Some(json!(0.1)));
        assert_eq!(p["model"], json!({"lr": 0.01, "layers": 4}));
        let flat = flatten(&p);
        assert_eq!(flat["model.layers"], json!(4));
        assert!(set_nested(&mut p, json!({"a..b": 1}).as_object().unwrap(), "t", "u").is_err());
    }
}
