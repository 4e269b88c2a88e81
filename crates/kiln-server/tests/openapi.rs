//! `GET /v1/openapi.json` against the real server: every `/v1` route the router declares is
//! documented with its methods, every documented operation is served, every `$ref` resolves,
//! and real responses from a working session match the documented success schemas.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::start;

/// The route files, as compiled.
const SOURCES: [&str; 14] = [
    include_str!("../src/routes/optimizer.rs"),
    include_str!("../src/routes/notebook.rs"),
    include_str!("../src/routes/projects.rs"),
    include_str!("../src/router.rs"),
    include_str!("../src/routes/sessions.rs"),
    include_str!("../src/routes/tree.rs"),
    include_str!("../src/routes/history.rs"),
    include_str!("../src/routes/templates.rs"),
    include_str!("../src/routes/agent.rs"),
    include_str!("../src/routes/collaborators.rs"),
    include_str!("../src/routes/shares.rs"),
    include_str!("../src/routes/search.rs"),
    include_str!("../src/routes/web.rs"),
    include_str!("../src/routes/session_page.rs"),
];

/// Every `(METHOD, /v1 path)` declared with `.route("…", get(…).post(…))` in the sources.
fn declared_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for src in SOURCES {
        let mut rest = src;
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let Some(open) = rest.find('"') else { break };
            let after = &rest[open + 1..];
            let close = after.find('"').expect("a closed path literal");
            let path = &after[..close];
            // The method chain runs to the `)` closing `.route(`.
            let mut depth = 1;
            let mut end = close + 1;
            for (i, c) in after[close + 1..].char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = close + 1 + i;
                    break;
                }
            }
            let chain = &after[close + 1..end];
            if path.starts_with("/v1") {
                for method in ["get", "post", "patch", "put", "delete"] {
                    let call = format!("{method}(");
                    let found = chain
                        .match_indices(&call)
                        .any(|(i, _)| i == 0 || !chain.as_bytes()[i - 1].is_ascii_alphanumeric());
                    if found {
                        out.insert((method.to_uppercase(), path.to_owned()));
                    }
                }
            }
            rest = &after[end..];
        }
    }
    out
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

fn resolve<'a>(doc: &'a Value, r: &str) -> &'a Value {
    let pointer = r.strip_prefix('#').expect("a local $ref");
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("`{r}` does not resolve"))
}

/// Checks `v` against the JSON Schema subset the document uses; returns what does not match.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        return check(doc, resolve(doc, r), v, at);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, v, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let errors: Vec<String> = one
            .iter()
            .filter_map(|s| check(doc, s, v, at).err())
            .collect();
        if errors.len() == one.len() {
            return Err(format!(
                "{at}: matches no alternative: {}",
                errors.join("; ")
            ));
        }
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{at}: expected {c}, got {v}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} is not one of {e:?}"));
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("null") => v.is_null(),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        Some(other) => return Err(format!("{at}: unknown type {other}")),
    };
    if !ok {
        return Err(format!("{at}: expected {}, got {v}", schema["type"]));
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(o) = v.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !o.contains_key(name) {
                return Err(format!("{at}: missing `{name}`"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, x, &format!("{at}.{k}"))?,
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{at}: `{k}` is not documented"));
                    }
                    Some(s @ Value::Object(_)) => check(doc, s, x, &format!("{at}.{k}"))?,
                    // Response objects must not grow undocumented fields either.
                    _ if props.is_some() => {
                        return Err(format!("{at}: `{k}` is not documented"));
                    }
                    _ => {}
                },
            }
        }
    }
    Ok(())
}

/// The documented success schema of an operation.
fn success<'a>(doc: &'a Value, method: &str, path: &str) -> (&'a str, &'a Value) {
    let op = &doc["paths"][path][method.to_lowercase()];
    let (status, resp) = op["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
        .iter()
        .find(|(k, _)| k.as_str() != "default")
        .expect("a success response");
    (status, &resp["content"]["application/json"]["schema"])
}

#[tokio::test]
async fn every_route_is_documented_and_every_documented_operation_is_served() {
    let srv = start(1 << 20).await;
    let (status, doc) = srv
        .request(Method::GET, "/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "public, like /v1/health: {doc}");
    assert_eq!(doc["openapi"], "3.1.0");

    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "the document refers to its schemas");
    for r in &all {
        resolve(&doc, r);
    }

    let declared = declared_routes();
    assert!(
        declared.len() >= 45,
        "the route scan found the routes: {declared:?}"
    );
    let documented = documented(&doc);
    let missing: Vec<_> = declared.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );

    // Each documented operation reaches a handler: no 405, no unmatched-route 404.
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = srv
            .request(method.clone(), &concrete, Some(&srv.alice), None)
            .await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not served"
        );
        assert!(
            !body.to_string().contains("no such route"),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let srv = start(1 << 20).await;
    let (_, doc) = srv
        .request(Method::GET, "/v1/openapi.json", None, None)
        .await;
    let mut checked = BTreeSet::new();
    // Calls `method path` as alice, expects the documented success status and checks the body.
    let mut call = async |method: &str, path: &str, concrete: &str, body: Option<Value>| {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, v) = srv.request(m, concrete, Some(&srv.alice), body).await;
        let (documented, schema) = success(&doc, method, path);
        assert_eq!(status.as_str(), documented, "{method} {concrete}: {v}");
        if status != StatusCode::NO_CONTENT {
            check(&doc, schema, &v, &format!("{method} {path}"))
                .unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
        }
        checked.insert((method.to_owned(), path.to_owned()));
        v
    };

    call("GET", "/v1/health", "/v1/health", None).await;
    call("GET", "/v1/instance/key", "/v1/instance/key", None).await;
    let s = call(
        "POST",
        "/v1/sessions",
        "/v1/sessions",
        Some(json!({"name": "LFP", "tags": ["battery"], "project": "cathodes"})),
    )
    .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let b = format!("/v1/sessions/{id}");
    call("GET", "/v1/sessions", "/v1/sessions?limit=5", None).await;
    call("GET", "/v1/sessions/{id}", &b, None).await;
    call(
        "PATCH",
        "/v1/sessions/{id}",
        &b,
        Some(json!({"description": "olivine cathodes"})),
    )
    .await;
    let m = "/v1/sessions/{id}/branches/{b}/messages";
    call(
        "POST",
        m,
        &format!("{b}/branches/main/messages"),
        Some(json!({"role": "user", "content": "Analyse LiFePO4"})),
    )
    .await;
    // The optimizer resource, on the main branch.
    let o = "/v1/sessions/{id}/branches/{b}/optimizer";
    let ob = format!("{b}/branches/main/optimizer");
    call(
        "PUT",
        &format!("{o}/space"),
        &format!("{ob}/space"),
        Some(json!({"variables": [
            {"name": "x", "type": "real", "bounds": [0, 1], "precision": 0.01},
            {"name": "k", "type": "categorical", "categories": ["a", "b"]}
        ], "objective": {"name": "y", "goal": "maximize"}, "outputs": [{"name": "cost"}]})),
    )
    .await;
    let rows: Vec<Value> = (0..5)
        .map(|i| json!({"inputs": {"x": f64::from(i) / 5.0, "k": if i % 2 == 0 { "a" } else { "b" }}, "output": f64::from(i * (5 - i)), "outputs": {"cost": 1.5}}))
        .collect();
    call(
        "POST",
        &format!("{o}/experiments"),
        &format!("{ob}/experiments"),
        Some(json!({"experiments": rows})),
    )
    .await;
    call(
        "PATCH",
        &format!("{o}/experiments/{{n}}"),
        &format!("{ob}/experiments/5"),
        Some(json!({"exclude": true, "reason": "spilled"})),
    )
    .await;
    call(
        "POST",
        &format!("{o}/suggest"),
        &format!("{ob}/suggest"),
        Some(json!({"q": 2, "strategy": "qEI"})),
    )
    .await;
    call(
        "POST",
        &format!("{o}/locks"),
        &format!("{ob}/locks"),
        Some(json!({"what": "acquisition"})),
    )
    .await;
    call("POST", &format!("{o}/queue"), &format!("{ob}/queue"), None).await;
    let queue = call("GET", &format!("{o}/queue"), &format!("{ob}/queue"), None).await;
    let ids: Vec<String> = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    call(
        "POST",
        &format!("{o}/queue/{{q}}/start"),
        &format!("{ob}/queue/{}/start", ids[0]),
        None,
    )
    .await;
    call(
        "POST",
        &format!("{o}/queue/{{q}}/complete"),
        &format!("{ob}/queue/{}/complete", ids[0]),
        Some(json!({"output": 3.5, "inputs": {"x": 0.33}, "outputs": {"cost": 2.0}})),
    )
    .await;
    call(
        "POST",
        &format!("{o}/queue/{{q}}/fail"),
        &format!("{ob}/queue/{}/fail", ids[1]),
        Some(json!({"reason": "sample cracked"})),
    )
    .await;
    let mut proposals = Vec::new();
    for _ in 0..2 {
        let v = call(
            "POST",
            &format!("{o}/locks"),
            &format!("{ob}/locks"),
            Some(json!({"what": "data", "propose": true, "notes": "for review"})),
        )
        .await;
        proposals.push(v["result"]["proposal"]["id"].as_str().unwrap().to_owned());
    }
    call(
        "POST",
        &format!("{o}/locks/{{p}}/confirm"),
        &format!("{ob}/locks/{}/confirm", proposals[0]),
        Some(json!({"notes": "reviewed"})),
    )
    .await;
    call(
        "POST",
        &format!("{o}/locks/{{p}}/reject"),
        &format!("{ob}/locks/{}/reject", proposals[1]),
        Some(json!({"reason": "duplicate"})),
    )
    .await;
    call(
        "GET",
        &format!("{o}/export"),
        &format!("{ob}/export?format=alchemist"),
        None,
    )
    .await;
    let grant = call(
        "POST",
        &format!("{o}/lock"),
        &format!("{ob}/lock"),
        Some(json!({"holder": "rig", "ttl_seconds": 60})),
    )
    .await;
    call("GET", &format!("{o}/lock"), &format!("{ob}/lock"), None).await;
    call("GET", o, &ob, None).await;
    let lock_token = grant["token"].as_str().unwrap().to_owned();
    let mut manual: Vec<(String, String)> = Vec::new();
    for (method, path) in [
        ("POST", format!("{o}/lock/renew")),
        ("DELETE", format!("{o}/lock")),
    ] {
        let concrete = path.replace(
            "/v1/sessions/{id}/branches/{b}",
            &format!("{b}/branches/main"),
        );
        let resp = srv
            .http
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{concrete}", srv.base),
            )
            .bearer_auth(&srv.alice)
            .header("Kiln-Lock-Token", &lock_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{method} {path}");
        let v: Value = resp.json().await.unwrap();
        let (_, schema) = success(&doc, method, &path);
        check(&doc, schema, &v, &path).unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
        manual.push((method.to_owned(), path));
    }
    call(
        "GET",
        &format!("{o}/experiments"),
        &format!("{ob}/experiments"),
        None,
    )
    .await;
    call(
        "GET",
        &format!("{o}/predict"),
        &format!("{ob}/predict?x=0.5&k=a"),
        None,
    )
    .await;
    call(
        "GET",
        &format!("{o}/optimum"),
        &format!("{ob}/optimum"),
        None,
    )
    .await;
    let resp = srv
        .http
        .post(format!("{}{ob}/experiments/csv?preview=true", srv.base))
        .bearer_auth(&srv.alice)
        .header("content-type", "text/csv")
        .body("x,k,y,cost\n0.3,a,4,2\n0.4,c,5,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    let (_, schema) = success(&doc, "POST", &format!("{o}/experiments/csv"));
    check(&doc, schema, &v, "csv").unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
    manual.push(("POST".to_owned(), format!("{o}/experiments/csv")));
    let resp = srv
        .http
        .get(format!("{}{b}/audit/export?format=markdown", srv.base))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    assert!(resp.text().await.unwrap().starts_with("# Audit record"));
    manual.push((
        "GET".to_owned(),
        "/v1/sessions/{id}/audit/export".to_owned(),
    ));
    let resp = srv
        .http
        .get(format!("{}{ob}/plots/parity.svg", srv.base))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let plots = &doc["paths"][format!("{o}/plots/{{file}}")]["get"]["responses"]["200"]["content"];
    assert!(plots.get("image/svg+xml").is_some(), "{plots}");
    assert!(resp.text().await.unwrap().starts_with("<svg"));
    manual.push(("GET".to_owned(), format!("{o}/plots/{{file}}")));

    let ev = "/v1/sessions/{id}/branches/{b}/events";
    let events = [
        json!({"kind": "material", "formula": "LiFePO4"}),
        json!({"kind": "discovery", "type": "structure", "description": "olivine", "confidence": 0.9}),
        json!({"kind": "hypothesis", "statement": "Na keeps the olivine", "status": "open"}),
        json!({"kind": "task", "description": "measure", "status": "pending"}),
        json!({"kind": "context_pin", "key": "goal", "value": "160 mAh/g"}),
        json!({"kind": "focus", "material": "LiFePO4"}),
    ];
    for e in events {
        call("POST", ev, &format!("{b}/branches/main/events"), Some(e)).await;
    }
    call(
        "GET",
        "/v1/sessions/{id}/branches/{b}/state",
        &format!("{b}/branches/main/state"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/checkpoints",
        &format!("{b}/checkpoints"),
        Some(json!({"name": "baseline"})),
    )
    .await;
    call(
        "GET",
        "/v1/sessions/{id}/checkpoints",
        &format!("{b}/checkpoints"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches",
        &format!("{b}/branches"),
        Some(json!({"name": "alt", "from": {"checkpoint": "baseline"}})),
    )
    .await;
    call(
        "POST",
        m,
        &format!("{b}/branches/alt/messages"),
        Some(json!({"role": "user", "content": "Try NaFePO4"})),
    )
    .await;
    call(
        "GET",
        m,
        &format!("{b}/branches/alt/messages?limit=1"),
        None,
    )
    .await;
    call(
        "GET",
        "/v1/sessions/{id}/diff",
        &format!("{b}/diff?from=main&to=alt"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches/{b}/merge/preview",
        &format!("{b}/branches/alt/merge/preview"),
        Some(json!({"into": "main"})),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches/{b}/merge",
        &format!("{b}/branches/alt/merge"),
        Some(json!({"into": "main"})),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches",
        &format!("{b}/branches"),
        Some(json!({"name": "spare"})),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches/{b}/discard",
        &format!("{b}/branches/spare/discard"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/branches/{b}/reopen",
        &format!("{b}/branches/spare/reopen"),
        None,
    )
    .await;
    call(
        "GET",
        "/v1/sessions/{id}/branches",
        &format!("{b}/branches?all=true"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/checkpoints/{name}/restore",
        &format!("{b}/checkpoints/baseline/restore"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/recover",
        &format!("{b}/recover"),
        None,
    )
    .await;
    for (path, suffix) in [
        ("/v1/sessions/{id}/events", "/events"),
        ("/v1/sessions/{id}/reflog", "/reflog"),
        ("/v1/sessions/{id}/audit", "/audit"),
        ("/v1/sessions/{id}/audit/verify", "/audit/verify"),
        ("/v1/sessions/{id}/statistics", "/statistics"),
        ("/v1/sessions/{id}/context", "/context"),
        ("/v1/sessions/{id}/summary", "/summary"),
        ("/v1/sessions/{id}/contributions", "/contributions"),
        ("/v1/sessions/{id}/collaborators", "/collaborators"),
        ("/v1/sessions/{id}/shares", "/shares"),
    ] {
        call("GET", path, &format!("{b}{suffix}"), None).await;
    }
    call(
        "POST",
        "/v1/sessions/{id}/query",
        &format!("{b}/query"),
        Some(json!({"message": "Analyse LiFePO4"})),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/tools/{tool}",
        &format!("{b}/tools/materials_analyzer"),
        Some(json!({"arguments": {"action": "validate", "formula": "LiFePO4"}})),
    )
    .await;
    call("GET", "/v1/tools", "/v1/tools", None).await;
    call(
        "POST",
        "/v1/sessions/{id}/context/items",
        &format!("{b}/context/items"),
        Some(json!({"kind": "goal", "content": "A cathode above 160 mAh/g"})),
    )
    .await;
    call(
        "DELETE",
        "/v1/sessions/{id}/context/items",
        &format!("{b}/context/items?kind=goal"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/context/cleanup",
        &format!("{b}/context/cleanup"),
        Some(json!({"older_than_days": 30})),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/context/compress",
        &format!("{b}/context/compress"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/collaborators",
        &format!("{b}/collaborators"),
        Some(json!({"user": "bob", "permissions": ["write"]})),
    )
    .await;
    call(
        "PATCH",
        "/v1/sessions/{id}/collaborators/{user}",
        &format!("{b}/collaborators/bob"),
        Some(json!({"permissions": ["read"]})),
    )
    .await;
    let share = call(
        "POST",
        "/v1/sessions/{id}/shares",
        &format!("{b}/shares"),
        Some(json!({"expires_in_days": 7, "max_views": 5})),
    )
    .await;
    let token = share["token"].as_str().unwrap().to_owned();
    call(
        "GET",
        "/v1/shared/{token}",
        &format!("/v1/shared/{token}"),
        None,
    )
    .await;
    let share_id = share["id"].as_str().unwrap();
    call(
        "DELETE",
        "/v1/sessions/{id}/shares/{share}",
        &format!("{b}/shares/{share_id}"),
        None,
    )
    .await;
    call("GET", "/v1/search", "/v1/search?q=olivine", None).await;
    call("GET", "/v1/templates", "/v1/templates", None).await;
    call(
        "POST",
        "/v1/templates",
        "/v1/templates",
        Some(json!({"name": "lfp-study", "from_session": id})),
    )
    .await;
    let t = "/v1/templates/{name}";
    call("GET", t, "/v1/templates/lfp-study", None).await;
    call(
        "PATCH",
        t,
        "/v1/templates/lfp-study@alice",
        Some(json!({"visibility": "shared", "shared_with": ["bob"],
                    "parameters": [{"name": "material", "default": "LiFePO4"}],
                    "session_name": "{material} study"})),
    )
    .await;
    // The owner sees whom it is shared with; the shared user sees the rest.
    let (status, shared) = srv
        .request(Method::GET, "/v1/templates/lfp-study", Some(&srv.bob), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/SessionTemplate"}),
        &shared,
        "template as shared",
    )
    .unwrap();
    call("DELETE", t, "/v1/templates/lfp-study", None).await;
    let saved = call(
        "POST",
        "/v1/me/memory",
        "/v1/me/memory",
        Some(json!({"content": "I work at 1 atm", "kind": "preference"})),
    )
    .await;
    call("GET", "/v1/me/memory", "/v1/me/memory", None).await;
    let m = format!("/v1/me/memory/{}", saved["id"].as_str().unwrap());
    call(
        "PATCH",
        "/v1/me/memory/{id}",
        &m,
        Some(json!({"content": "I work at 2 atm"})),
    )
    .await;
    call("DELETE", "/v1/me/memory/{id}", &m, None).await;
    let export = call(
        "GET",
        "/v1/sessions/{id}/export",
        &format!("{b}/export"),
        None,
    )
    .await;
    call(
        "POST",
        "/v1/sessions/import",
        "/v1/sessions/import",
        Some(export),
    )
    .await;
    call(
        "POST",
        "/v1/sessions/{id}/status",
        &format!("{b}/status"),
        Some(json!({"status": "paused"})),
    )
    .await;
    call(
        "DELETE",
        "/v1/sessions/{id}/collaborators/{user}",
        &format!("{b}/collaborators/bob"),
        None,
    )
    .await;
    call("DELETE", "/v1/sessions/{id}", &b, None).await;

    // Leaving is the collaborator's call, not the owner's.
    let (_, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "shared"})),
        )
        .await;
    let shared = v["id"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": "bob", "permissions": ["read"]})),
        )
        .await;
    assert!(status.is_success(), "{v}");
    let (status, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/leave"),
            Some(&srv.bob),
            None,
        )
        .await;
    let (expected, _) = success(&doc, "POST", "/v1/sessions/{id}/leave");
    assert_eq!(status.as_str(), expected, "leave: {v}");
    checked.insert(("POST".to_owned(), "/v1/sessions/{id}/leave".to_owned()));
    checked.extend(manual);

    // The live stream: server-sent events, ended by max_seconds.
    let (status, v) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{shared}/events/stream?max_seconds=1"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v.as_str().is_some_and(|t| t.contains("event: snapshot")),
        "{v}"
    );
    checked.insert((
        "GET".to_owned(),
        "/v1/sessions/{id}/events/stream".to_owned(),
    ));

    // The chat's /clear and /undo over HTTP.
    let (status, fresh) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/fresh-branch"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fresh}");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Branch"}),
        &fresh,
        "fresh",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let fresh_name = fresh["name"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/branches/{fresh_name}/messages"),
            Some(&srv.alice),
            Some(json!({"role": "user", "content": "a question to take back"})),
        )
        .await;
    assert!(status.is_success(), "{v}");
    let (status, undone) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/branches/{fresh_name}/undo"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{undone}");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Undone"}),
        &undone,
        "undone",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(undone["undone"], "a question to take back");
    let (status, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{shared}/branches/{fresh_name}/undo"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "nothing_to_undo");
    checked.insert((
        "POST".to_owned(),
        "/v1/sessions/{id}/fresh-branch".to_owned(),
    ));
    checked.insert((
        "POST".to_owned(),
        "/v1/sessions/{id}/branches/{b}/undo".to_owned(),
    ));

    // A batch: started, read while running or after, its events, its CSV, and cancelled.
    let batches = format!("/v1/sessions/{shared}/batches");
    let (status, started) = srv
        .request(
            Method::POST,
            &batches,
            Some(&srv.alice),
            Some(json!({"request": "Analyse {formula}",
                        "items": [{"formula": "NaCl"}, {"formula": "KCl"}], "concurrency": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Batch"}),
        &started,
        "batch",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let batch = started["id"].as_str().unwrap().to_owned();
    let (status, v) = srv
        .request(
            Method::GET,
            &format!("{batches}/{batch}/events"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(v.as_str().is_some_and(|t| t.contains("event: done")), "{v}");
    let (_, one) = srv
        .request(
            Method::GET,
            &format!("{batches}/{batch}"),
            Some(&srv.alice),
            None,
        )
        .await;
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Batch"}),
        &one,
        "batch with items",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(one["items"].as_array().unwrap().len(), 2, "{one}");
    let (_, listed) = srv
        .request(Method::GET, &batches, Some(&srv.alice), None)
        .await;
    check(
        &doc,
        &json!({"type": "object", "properties": {"items": {"type": "array",
                "items": {"$ref": "#/components/schemas/Batch"}},
                "next_cursor": {"type": ["string", "null"]}}}),
        &listed,
        "batches",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (status, v) = srv
        .request(
            Method::GET,
            &format!("{batches}/{batch}/results.csv"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v.as_str().is_some_and(|t| t.starts_with("item,formula,")),
        "{v}"
    );
    let (_, running) = srv
        .request(
            Method::POST,
            &batches,
            Some(&srv.alice),
            Some(json!({"request": "Analyse NaCl {n}", "concurrency": 1,
                        "items": (0..50).map(|n| json!({"n": n})).collect::<Vec<_>>()})),
        )
        .await;
    let (status, cancelled) = srv
        .request(
            Method::POST,
            &format!("{batches}/{}/cancel", running["id"].as_str().unwrap()),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Batch"}),
        &cancelled,
        "cancelled",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for (method, path) in [
        ("POST", "/v1/sessions/{id}/batches"),
        ("GET", "/v1/sessions/{id}/batches"),
        ("GET", "/v1/sessions/{id}/batches/{batch}"),
        ("GET", "/v1/sessions/{id}/batches/{batch}/events"),
        ("GET", "/v1/sessions/{id}/batches/{batch}/results.csv"),
        ("POST", "/v1/sessions/{id}/batches/{batch}/cancel"),
    ] {
        checked.insert((method.to_owned(), path.to_owned()));
    }

    // Projects, folders and write protection (issue 16), each checked as `call` checks.
    let pid = {
        let put = "/v1/projects/{project}/sessions/{name}";
        let (status, v) = srv
            .request(
                Method::PUT,
                "/v1/projects/cathodes/sessions/run-1",
                Some(&srv.alice),
                Some(json!({"folder": "/experiments/jan", "tags": ["lfp"]})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let ok = &doc["paths"][put]["put"]["responses"]["201"]["content"]["application/json"];
        check(&doc, &ok["schema"], &v, "PUT 201").unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
        v["session"]["id"].as_str().unwrap().to_owned()
    };
    for (method, path, concrete, body) in [
        (
            "PUT",
            "/v1/projects/{project}/sessions/{name}",
            "/v1/projects/cathodes/sessions/run-1".to_owned(),
            None,
        ),
        ("GET", "/v1/projects", "/v1/projects".to_owned(), None),
        (
            "GET",
            "/v1/projects/{project}/sessions",
            "/v1/projects/cathodes/sessions?folder=/experiments".to_owned(),
            None,
        ),
        (
            "POST",
            "/v1/sessions/{id}/protect",
            format!("/v1/sessions/{pid}/protect"),
            None,
        ),
        (
            "POST",
            "/v1/sessions/{id}/unprotect",
            format!("/v1/sessions/{pid}/unprotect"),
            None,
        ),
    ] {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, v) = srv.request(m, &concrete, Some(&srv.alice), body).await;
        let (documented, schema) = success(&doc, method, path);
        assert_eq!(status.as_str(), documented, "{method} {concrete}: {v}");
        check(&doc, schema, &v, &format!("{method} {path}"))
            .unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
        checked.insert((method.to_owned(), path.to_owned()));
    }

    // The notebook resource on that session's main branch.
    let nb = format!("/v1/sessions/{pid}/branches/main/notebook");
    let nbp = "/v1/sessions/{id}/branches/{b}/notebook";
    let upload = srv
        .http
        .post(format!("{}{nb}/files?name=a.csv", srv.base))
        .bearer_auth(&srv.alice)
        .header("content-type", "text/csv")
        .body("x,y\n1,2\n")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::OK);
    let upload: Value = upload.json().await.unwrap();
    check(
        &doc,
        success(&doc, "POST", &format!("{nbp}/files")).1,
        &upload,
        "upload",
    )
    .unwrap_or_else(|e| panic!("{e}\nbody: {upload}"));
    checked.insert(("POST".to_owned(), format!("{nbp}/files")));
    let file = upload["result"]["file"]["id"].as_str().unwrap().to_owned();
    let download = srv
        .http
        .get(format!("{}{nb}/files/{file}", srv.base))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.text().await.unwrap(), "x,y\n1,2\n");
    checked.insert(("GET".to_owned(), format!("{nbp}/files/{{file}}")));
    for (method, path, concrete, body) in [
        (
            "PATCH",
            "/params",
            "/params".to_owned(),
            Some(json!({"model": {"lr": 0.1}})),
        ),
        ("GET", "/params", "/params?flatten=true".to_owned(), None),
        ("GET", "/params/history", "/params/history".to_owned(), None),
        (
            "POST",
            "/logs",
            "/logs".to_owned(),
            Some(json!({"message": "started", "level": "warn", "metadata": {"run": 1}})),
        ),
        (
            "GET",
            "/logs",
            "/logs?level=info&meta=run=1".to_owned(),
            None,
        ),
        (
            "POST",
            "/tracks/{track}",
            "/tracks/loss".to_owned(),
            Some(json!({"points": [{"step": 0, "value": 1.5}, {"step": 1, "value": 1.2}]})),
        ),
        ("GET", "/tracks", "/tracks".to_owned(), None),
        (
            "GET",
            "/tracks/{track}",
            "/tracks/loss?offset=0&limit=10".to_owned(),
            None,
        ),
        (
            "GET",
            "/tracks/{track}/stats",
            "/tracks/loss/stats".to_owned(),
            None,
        ),
        ("GET", "", String::new(), None),
        ("GET", "/files", "/files".to_owned(), None),
        ("DELETE", "/files/{file}", format!("/files/{file}"), None),
        (
            "POST",
            "/files/{file}/purge",
            format!("/files/{file}/purge"),
            None,
        ),
    ] {
        let path = format!("{nbp}{path}");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, v) = srv
            .request(m, &format!("{nb}{concrete}"), Some(&srv.alice), body)
            .await;
        let (documented, schema) = success(&doc, method, &path);
        assert_eq!(status.as_str(), documented, "{method} {concrete}: {v}");
        check(&doc, schema, &v, &format!("{method} {path}"))
            .unwrap_or_else(|e| panic!("{e}\nbody: {v}"));
        checked.insert((method.to_owned(), path));
    }

    // Every documented operation but the document itself was exercised.
    let untested: Vec<_> = documented(&doc)
        .into_iter()
        .filter(|op| !checked.contains(op) && op.1 != "/v1/openapi.json")
        .collect();
    assert!(untested.is_empty(), "not exercised: {untested:?}");

    // An error matches the documented error body.
    let (status, v) = srv
        .request(
            Method::GET,
            &format!("{b}/branches"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/Error"}),
        &v,
        "error",
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

/// The document states the limits the server enforces, and the server holds bodies to the
/// documented shape: an array where an object is documented and `null` for an integer are 400
/// (serde alone took both), a value past a documented bound is refused, one at it is taken.
#[tokio::test]
async fn documented_limits_and_shapes_are_what_the_server_enforces() {
    let srv = start(1 << 20).await;
    let (_, doc) = srv
        .request(Method::GET, "/v1/openapi.json", None, None)
        .await;
    let share = &doc["paths"]["/v1/sessions/{id}/shares"]["post"]["requestBody"]["content"]["application/json"]
        ["schema"]["properties"];
    assert_eq!(share["expires_in_days"]["maximum"], 365, "{share}");
    assert_eq!(share["expires_in_days"]["minimum"], 1);
    let new_session = &doc["components"]["schemas"]["NewSession"]["properties"];
    assert_eq!(new_session["name"]["maxLength"], 200, "{new_session}");
    assert_eq!(new_session["tags"]["maxItems"], 50);
    let context = &doc["components"]["schemas"]["ContextConfig"]["properties"];
    assert_eq!(context["context_window"]["minimum"], 256, "{context}");
    let export = &doc["paths"]["/v1/sessions/{id}/export"]["get"]["responses"]["200"]["content"];
    assert!(export.get("text/markdown").is_some(), "{export}");

    let (_, s) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "limits"})),
        )
        .await;
    let shares = format!("/v1/sessions/{}/shares", s["id"].as_str().unwrap());
    let post = |body: Value| srv.request(Method::POST, &shares, Some(&srv.alice), Some(body));
    for (body, why) in [
        (json!([7]), "an array for an object"),
        (json!({"expires_in_days": null}), "null for an integer"),
        (json!({"expires_in_days": "7"}), "a string for an integer"),
        (json!({"expires_in_days": 7.5}), "a fraction for an integer"),
        (
            json!({"expires_in_days": 366}),
            "past the documented maximum",
        ),
        (
            json!({"expires_in_days": 0}),
            "under the documented minimum",
        ),
        (
            json!({"expires_in_days": 7, "max_views": 0}),
            "max_views under 1",
        ),
        (
            json!({"expires_in_days": 7, "extra": 1}),
            "an undocumented field",
        ),
    ] {
        let (status, v) = post(body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert_eq!(v["error"]["recoverable"], true);
    }
    // Serde took these two (every field optional): an empty array as an object, and null
    // for an integer the document does not call nullable.
    let cleanup = shares.replace("/shares", "/context/cleanup");
    for (body, why) in [
        (json!([]), "an array for an object"),
        (json!({"older_than_days": null}), "null for an integer"),
    ] {
        let (status, v) = srv
            .request(Method::POST, &cleanup, Some(&srv.alice), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {v}");
        assert_eq!(v["error"]["code"], "invalid_json", "{v}");
    }
    let (status, v) = srv
        .request(
            Method::POST,
            &cleanup,
            Some(&srv.alice),
            Some(json!({"older_than_days": 36_500})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "at the documented bound: {v}");
    let (status, v) = post(json!({"expires_in_days": 365, "max_views": null})).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "at the bound, nullable null: {v}"
    );
    // An array for a whole session is refused, not read as a tuple.
    let (status, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!(["tuple", "", "interactive"])),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_json");
    // Renaming holds to create's rules (schemathesis found a project of one control character
    // accepted by PATCH).
    let id = s["id"].as_str().unwrap();
    for project in ["\u{1a}", "", " "] {
        let (status, v) = srv
            .request(
                Method::PATCH,
                &format!("/v1/sessions/{id}"),
                Some(&srv.alice),
                Some(json!({"project": project})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{project:?}: {v}");
    }
}
