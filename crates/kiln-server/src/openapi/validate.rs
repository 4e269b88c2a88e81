//! Request bodies checked against the OpenAPI document's shapes before serde sees them: serde
//! would take a JSON array for a documented object and `null` for a documented integer. Limits
//! (lengths, ranges) are kiln-session's to enforce, with their own messages; this checks types,
//! required and undocumented fields, enums and alternatives.

use std::sync::OnceLock;

use axum::http::Method;
use serde_json::Value;

/// The document, built once.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(super::document)
}

/// The documented JSON body schema of `method path` (`path` as routed: `/v1/sessions/{id}`).
pub(crate) fn request_schema(method: &Method, path: &str) -> Option<&'static Value> {
    let schema = &document()["paths"][path][method.as_str().to_ascii_lowercase()]["requestBody"]["content"]
        ["application/json"]["schema"];
    (!schema.is_null()).then_some(schema)
}

/// Checks `v` against `schema`; the error names the first offending place (`body.tags[2]`).
/// A whole number written with a fraction (`7.0`) is an integer to JSON Schema; it is rewritten
/// as one so serde takes it too.
pub(crate) fn check(schema: &Value, v: &mut Value, at: &str) -> Result<(), String> {
    check_in(document(), schema, v, at, 0)
}

/// Deeper than this, a body is refused rather than walked (serde stops at 128 anyway).
const MAX_DEPTH: usize = 64;

fn check_in(
    doc: &Value,
    schema: &Value,
    v: &mut Value,
    at: &str,
    depth: usize,
) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("{at}: nested too deeply"));
    }
    let depth = depth + 1;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        return check_in(doc, &doc["components"]["schemas"][name], v, at, depth);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check_in(doc, s, v, at, depth)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let mut first = None;
        let matched = one
            .iter()
            .any(|s| match check_in(doc, s, &mut *v, at, depth) {
                Ok(()) => true,
                Err(e) => {
                    first.get_or_insert(e);
                    false
                }
            });
        if !matched {
            return Err(first.unwrap_or_else(|| format!("{at}: matches no alternative")));
        }
    }
    if let Some(c) = schema.get("const")
        && c != &*v
    {
        return Err(format!("{at}: must be {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(&*v)
    {
        let allowed: Vec<String> = e.iter().map(Value::to_string).collect();
        return Err(format!("{at}: must be one of {}", allowed.join(", ")));
    }
    if schema.get("type").and_then(Value::as_str) == Some("integer")
        && let Some(f) = v.as_f64()
        && !(v.is_i64() || v.is_u64())
        && f.fract() == 0.0
        && f.abs() < 9.0e15
    {
        // Exact below 2^53.
        *v = Value::from(f as i64);
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("null") => v.is_null(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        _ => true,
    };
    if !ok {
        let ty = schema["type"].as_str().unwrap_or_default();
        return Err(format!(
            "{at}: expected {} {ty}, got {}",
            article(ty),
            kind(v)
        ));
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array_mut()) {
        for (i, x) in a.iter_mut().enumerate() {
            check_in(doc, items, x, &format!("{at}[{i}]"), depth)?;
        }
    }
    if let Some(o) = v.as_object_mut() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(name) {
                return Err(format!("{at}: `{name}` is required"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in o.iter_mut() {
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check_in(doc, s, x, &format!("{at}.{k}"), depth)?,
                (None, Some(Value::Bool(false))) => {
                    return Err(format!("{at}: unknown field `{}`", clip(k)));
                }
                (None, Some(s @ Value::Object(_))) => {
                    check_in(doc, s, x, &format!("{at}.{}", clip(k)), depth)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn article(ty: &str) -> &'static str {
    if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A field name as shown in an error: at most 64 characters, no controls.
fn clip(k: &str) -> String {
    k.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_shapes_are_enforced() {
        let share = request_schema(&Method::POST, "/v1/sessions/{id}/shares").expect("documented");
        assert!(
            check(
                share,
                &mut json!({"expires_in_days": 7, "max_views": 3}),
                "body"
            )
            .is_ok()
        );
        assert!(
            check(
                share,
                &mut json!({"expires_in_days": 7, "max_views": null}),
                "body"
            )
            .is_ok(),
            "documented nullable"
        );
        let e = check(share, &mut json!([7, 3]), "body").unwrap_err();
        assert!(e.contains("expected an object, got an array"), "{e}");
        let e = check(share, &mut json!({"expires_in_days": null}), "body").unwrap_err();
        assert!(
            e.contains("body.expires_in_days: expected an integer, got null"),
            "{e}"
        );
        let e = check(share, &mut json!({"expires_in_days": 1.5}), "body").unwrap_err();
        assert!(e.contains("got a number"), "{e}");
        let mut whole = json!({"expires_in_days": 7.0});
        assert!(check(share, &mut whole, "body").is_ok());
        assert_eq!(
            whole,
            json!({"expires_in_days": 7}),
            "taken as the integer it is"
        );
        let create = request_schema(&Method::POST, "/v1/sessions").expect("documented");
        let e = check(
            create,
            &mut json!({"name": "x", "session_type": "nope"}),
            "body",
        )
        .unwrap_err();
        assert!(e.contains("body.session_type: must be one of"), "{e}");
        assert!(request_schema(&Method::GET, "/v1/sessions").is_none());
        // A state event is one of several shapes told apart by `kind`.
        let event = request_schema(&Method::POST, "/v1/sessions/{id}/branches/{b}/events")
            .expect("documented");
        assert!(
            check(
                event,
                &mut json!({"kind": "focus", "material": "LiFePO4"}),
                "body"
            )
            .is_ok()
        );
        let e = check(event, &mut json!({"kind": "focus", "topic": null}), "body").unwrap_err();
        assert!(e.contains("body"), "{e}");
    }
}
