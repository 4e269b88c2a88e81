//! Every numeric input of the API at the edges of its type: each integer or number query
//! parameter and JSON body field the OpenAPI document declares, and each numeric argument of
//! every tool `GET /v1/tools` lists, is sent as -1, 0, 2³¹-1, 2³²-1, 2³², 2⁵³+1, 2⁶⁴-1, -2⁶³,
//! ±1e308, 0.5, and as a string, null, a boolean, an array and an object. The server must
//! answer each with a success or a typed 4xx (the JSON error body), never a 5xx or a dropped
//! connection. (The adversarial pass found `older_than_days: 4000000000` dropping the
//! connection before any access check.)

mod support;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Map, Value, json};
use support::{Server, start};

fn edges() -> Vec<Value> {
    vec![
        json!(-1),
        json!(0),
        json!(1),
        json!(i32::MAX),
        json!(u32::MAX),
        json!(u64::from(u32::MAX) + 1),
        json!((1u64 << 53) + 1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-1e308),
        json!(0.5),
        json!("7"),
        Value::Null,
        json!(true),
        json!([]),
        json!({}),
    ]
}

const QUERY_EDGES: [&str; 10] = [
    "-1",
    "0",
    "4294967296",
    "18446744073709551616",
    "-9223372036854775809",
    "1e308",
    "0.5",
    "",
    "abc",
    "%00",
];

fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or_default();
        s = &doc["components"]["schemas"][name];
    }
    s
}

fn types(s: &Value) -> Vec<&str> {
    match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

/// A small valid-looking value for `s`: enums take their first value, objects their required
/// properties.
fn example(doc: &Value, s: &Value, depth: usize) -> Value {
    let s = resolve(doc, s);
    if depth > 6 {
        return Value::Null;
    }
    if let Some(e) = s["enum"].as_array().and_then(|e| e.first()) {
        return e.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = s[key].as_array().and_then(|v| v.first()) {
            return example(doc, first, depth + 1);
        }
    }
    let t = types(s);
    if t.contains(&"object") || s.get("properties").is_some() {
        let mut out = Map::new();
        let required: Vec<&str> = s["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = s["properties"].as_object() {
            for (k, v) in props {
                if required.contains(&k.as_str()) {
                    out.insert(k.clone(), example(doc, v, depth + 1));
                }
            }
        }
        return Value::Object(out);
    }
    if t.contains(&"array") {
        return json!([example(doc, &s["items"], depth + 1)]);
    }
    if t.contains(&"integer") {
        return json!(1);
    }
    if t.contains(&"number") {
        return json!(0.5);
    }
    if t.contains(&"boolean") {
        return json!(false);
    }
    if t.contains(&"string") {
        return json!("LiFePO4");
    }
    Value::Null
}

/// Paths (`a.b[].c`) of the numeric fields under `s`, with the example of each parent.
fn numeric_paths(doc: &Value, s: &Value, at: Vec<String>, out: &mut Vec<Vec<String>>, d: usize) {
    let s = resolve(doc, s);
    if d > 6 {
        return;
    }
    let t = types(s);
    if (t.contains(&"integer") || t.contains(&"number")) && !at.is_empty() {
        out.push(at.clone());
    }
    if let Some(props) = s["properties"].as_object() {
        for (k, v) in props {
            let mut next = at.clone();
            next.push(k.clone());
            numeric_paths(doc, v, next, out, d + 1);
        }
    }
    if s.get("items").is_some() {
        let mut next = at.clone();
        next.push("[]".into());
        numeric_paths(doc, &s["items"], next, out, d + 1);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for v in s[key].as_array().into_iter().flatten() {
            numeric_paths(doc, v, at.clone(), out, d + 1);
        }
    }
}

/// `base` with the field at `path` set to `v` (intermediate objects and arrays made).
fn with_field(base: &Value, path: &[String], v: Value) -> Value {
    fn set(node: &mut Value, path: &[String], v: Value) {
        let Some((head, rest)) = path.split_first() else {
            *node = v;
            return;
        };
        if head == "[]" {
            if !node.is_array() || node.as_array().is_some_and(Vec::is_empty) {
                *node = json!([{}]);
            }
            if let Some(first) = node.as_array_mut().and_then(|a| a.first_mut()) {
                set(first, rest, v);
            }
        } else {
            if !node.is_object() {
                *node = json!({});
            }
            if let Some(obj) = node.as_object_mut() {
                set(obj.entry(head.clone()).or_insert(Value::Null), rest, v);
            }
        }
    }
    let mut out = base.clone();
    set(&mut out, path, v);
    out
}

/// A fresh session with a message, a checkpoint `cp`, a branch `alt`, bob as a reader, a share
/// and an optimizer with a defined space and three experiments.
async fn fixture(s: &Server) -> BTreeMap<&'static str, String> {
    let (st, v) = s
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&s.alice),
            Some(json!({"name": "edges"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let base = format!("/v1/sessions/{id}");
    for (path, body) in [
        (
            format!("{base}/branches/main/messages"),
            json!({"role": "user", "content": "Analyse LiFePO4"}),
        ),
        (format!("{base}/checkpoints"), json!({"name": "cp"})),
        (format!("{base}/branches"), json!({"name": "alt"})),
        (
            format!("{base}/collaborators"),
            json!({"user": "bob", "permissions": ["read"]}),
        ),
        (
            format!("{base}/tools/bayesian_optimizer"),
            json!({"arguments": {"action": "define_space",
                "variables": [{"name": "t", "type": "real", "bounds": [300, 900]}],
                "objective": {"name": "y", "goal": "maximize"}}}),
        ),
        (
            format!("{base}/tools/bayesian_optimizer"),
            json!({"arguments": {"action": "add_experiments", "experiments": [
                {"inputs": {"t": 400}, "output": 1.0},
                {"inputs": {"t": 600}, "output": 2.0},
                {"inputs": {"t": 800}, "output": 1.5}]}}),
        ),
    ] {
        let (st, v) = s
            .request(Method::POST, &path, Some(&s.alice), Some(body))
            .await;
        assert!(st.is_success(), "{path}: {v}");
    }
    let (st, share) = s
        .request(
            Method::POST,
            &format!("{base}/shares"),
            Some(&s.alice),
            Some(json!({"expires_in_days": 1})),
        )
        .await;
    assert!(st.is_success(), "{share}");
    BTreeMap::from([
        ("id", id),
        ("b", "main".to_string()),
        ("name", "cp".to_string()),
        ("user", "bob".to_string()),
        (
            "share",
            share["id"].as_str().unwrap_or_default().to_string(),
        ),
        (
            "token",
            share["token"].as_str().unwrap_or_default().to_string(),
        ),
    ])
}

fn fill(path: &str, params: &BTreeMap<&'static str, String>) -> String {
    let mut out = path.to_string();
    for (k, v) in params {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// Sends one request; fails on a 5xx, a dropped connection or an error without the JSON body.
async fn probe(s: &Server, method: Method, path: &str, body: Option<Value>, what: &str) {
    let mut req = s
        .http
        .request(method.clone(), format!("{}{path}", s.base))
        .bearer_auth(&s.alice);
    if let Some(b) = &body {
        req = req.json(b);
    }
    let resp = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} {what}: the connection failed: {e}"));
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        !status.is_server_error(),
        "{method} {path} {what}: {status} {text}"
    );
    if status.is_client_error() {
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{method} {path} {what}: not JSON: {text}"));
        assert!(
            v["error"]["code"].is_string(),
            "{method} {path} {what}: {v}"
        );
    }
}

#[tokio::test]
async fn every_numeric_input_at_its_edges_gets_a_typed_answer() {
    let s = start(64 * 1024).await;
    let doc: Value = s
        .http
        .get(format!("{}/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut probed = 0usize;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if method == Method::DELETE {
                continue;
            }
            // Query parameters.
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = resolve(&doc, p);
                let schema = resolve(&doc, &p["schema"]);
                let numeric = types(schema)
                    .iter()
                    .any(|t| *t == "integer" || *t == "number");
                if p["in"] != "query" || !numeric {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                let params = fixture(&s).await;
                let target = fill(path, &params);
                for v in QUERY_EDGES {
                    let sep = if target.contains('?') { '&' } else { '?' };
                    let q = if path == "/v1/search" { "q=x&" } else { "" };
                    let url = format!("{target}{sep}{q}{name}={v}");
                    probe(&s, method.clone(), &url, None, &format!("{name}={v}")).await;
                    probed += 1;
                }
            }
            // JSON body fields.
            let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema")
            else {
                continue;
            };
            let mut fields = Vec::new();
            numeric_paths(&doc, schema, Vec::new(), &mut fields, 0);
            if fields.is_empty() {
                continue;
            }
            let params = fixture(&s).await;
            let target = fill(path, &params);
            let base = if path == "/v1/sessions/import" {
                s.request(
                    Method::GET,
                    &format!("/v1/sessions/{}/export", params["id"]),
                    Some(&s.alice),
                    None,
                )
                .await
                .1
            } else {
                example(&doc, schema, 0)
            };
            for field in &fields {
                for v in edges() {
                    let body = with_field(&base, field, v.clone());
                    let what = format!("{}={v}", field.join("."));
                    probe(&s, method.clone(), &target, Some(body), &what).await;
                    probed += 1;
                }
            }
        }
    }
    // Every tool's numeric arguments, on a session whose optimizer has data.
    let (_, tools) = s
        .request(Method::GET, "/v1/tools", Some(&s.alice), None)
        .await;
    let params = fixture(&s).await;
    for tool in tools["items"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let schema = &tool["parameters"];
        let mut fields = Vec::new();
        numeric_paths(&doc, schema, Vec::new(), &mut fields, 0);
        let actions: Vec<Value> = schema["properties"]["action"]["enum"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| vec![Value::Null]);
        let target = format!("/v1/sessions/{}/tools/{name}", params["id"]);
        for action in &actions {
            let mut base = example(&doc, schema, 0);
            if !action.is_null() {
                base["action"] = action.clone();
            }
            for field in &fields {
                for v in edges() {
                    let args = with_field(&base, field, v.clone());
                    let what = format!("{name} {action} {}={v}", field.join("."));
                    probe(
                        &s,
                        Method::POST,
                        &target,
                        Some(json!({"arguments": args})),
                        &what,
                    )
                    .await;
                    probed += 1;
                }
            }
        }
    }
    assert!(
        probed > 500,
        "the document's numeric inputs were found ({probed})"
    );
}
