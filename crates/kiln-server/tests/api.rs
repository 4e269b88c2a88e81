//! The HTTP surface on a real listener at 127.0.0.1:0 with a real SQLite file: every route's
//! success and its failures.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start as start_with};

async fn start() -> Server {
    start_with(64 * 1024).await
}

impl Server {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, path, token, body).await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(&self.alice), None).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(&self.alice), Some(body))
            .await
    }
    async fn session(&self) -> String {
        let (s, v) = self
            .post(
                "/v1/sessions",
                json!({"name": "s", "tags": ["a"], "project": "p"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_string()
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn health_needs_no_token_and_everything_else_does() {
    let s = start().await;
    let (st, v) = s.call(Method::GET, "/v1/health", None, None).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, v) = s.call(Method::GET, "/v1/sessions", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&v), "unauthorized");
    assert_eq!(v["error"]["recoverable"], json!(true));
    let (st, _) = s
        .call(Method::GET, "/v1/sessions", Some("kiln_wrong"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, v) = s.get("/v1/nope").await;
    assert_eq!((st, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn sessions_create_list_get_update_delete() {
    let s = start().await;
    let (st, v) = s
        .post(
            "/v1/sessions",
            json!({"name": "LFP", "session_type": "research"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_input"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duration_days")
    );
    let (st, v) = s
        .post(
            "/v1/sessions",
            json!({"name": "LFP", "session_type": "research", "duration_days": 7,
            "checkpoint_frequency": "0 0 * * *", "tags": ["cathode"], "project": "batt"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    for key in [
        "id",
        "name",
        "description",
        "session_type",
        "status",
        "project",
        "tags",
        "version",
        "default_branch",
        "created_at",
        "updated_at",
    ] {
        assert!(v.get(key).is_some(), "session object lacks {key}");
    }
    let id = v["id"].as_str().unwrap().to_string();
    s.session().await;
    let (_, list) = s.get("/v1/sessions?tag=cathode").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = s.get("/v1/sessions?limit=1").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let cursor = list["next_cursor"].as_str().unwrap().to_string();
    let (_, rest) = s
        .get(&format!("/v1/sessions?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_ne!(rest["items"][0]["id"], list["items"][0]["id"]);
    let (st, v) = s.get("/v1/sessions?status=bogus").await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_query"));

    let (st, v) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!((st, v["name"].as_str()), (StatusCode::OK, Some("LFP")));
    let (st, _) = s
        .call(
            Method::GET,
            &format!("/v1/sessions/{id}"),
            Some(&s.bob),
            None,
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another user's session looks absent"
    );
    let (st, _) = s
        .get("/v1/sessions/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let patch = |version: &str, name: &str| {
        s.http
            .patch(format!("{}/v1/sessions/{id}", s.base))
            .bearer_auth(&s.alice)
            .header("If-Match", version)
            .json(&json!({"name": name}))
            .send()
    };
    let r = patch("1", "LFP v2").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = patch("1", "LFP v3").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "version_conflict");
    let f = &v["error"]["details"]["fields"][0];
    assert_eq!(
        (
            f["field"].as_str(),
            f["yours"].as_str(),
            f["stored"].as_str()
        ),
        (Some("name"), Some("LFP v3"), Some("LFP v2"))
    );
    let (_, v) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(v["name"], "LFP v2", "a refused update changes nothing");

    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{id}"),
            Some(&s.bob),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{id}"),
            Some(&s.alice),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn lifecycle_transitions_and_refusals() {
    let s = start().await;
    let id = s.session().await;
    let path = format!("/v1/sessions/{id}/status");
    let status = |to: &str| s.post(&path, json!({"status": to}));
    let (st, v) = status("paused").await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "invalid_transition"));
    assert_eq!(v["error"]["details"]["current"], "created");
    assert_eq!(v["error"]["details"]["allowed"], json!(["active"]));
    let (st, v) = s
        .post(
            &format!("/v1/sessions/{id}/branches/main/messages"),
            json!({"role": "user", "content": "hi"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (_, v) = s.get(&format!("/v1/sessions/{id}")).await;
    assert_eq!(v["status"], "active");
    assert_eq!(status("paused").await.0, StatusCode::OK);
    let (st, v) = s
        .post(
            &format!("/v1/sessions/{id}/branches/main/messages"),
            json!({"role": "user", "content": "more"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "session_not_active"));
    assert_eq!(status("resumed").await.0, StatusCode::OK);
    assert_eq!(status("paused").await.0, StatusCode::OK);
    assert_eq!(status("archived").await.0, StatusCode::OK);
    let (st, _) = status("active").await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, v) = status("sleeping").await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));
    let (_, ev) = s.get(&format!("/v1/sessions/{id}/events")).await;
    let tos: Vec<&str> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        tos,
        [
            "created", "active", "paused", "resumed", "paused", "archived"
        ]
    );
    assert!(ev["items"][1]["actor"].is_string());
}

#[tokio::test]
async fn messages_branches_checkpoints_restore_merge_and_diff() {
    let s = start().await;
    let id = s.session().await;
    let base = format!("/v1/sessions/{id}");
    let (_, first) = s
        .post(
            &format!("{base}/branches/main/messages"),
            json!({"role": "user", "content": "Analyse LiFePO4"}),
        )
        .await;
    let head = first["head"].as_str().unwrap().to_string();
    let (st, v) = s.post(&format!("{base}/branches/main/messages"), json!({"role": "user", "content": "x", "expected_head": "00000000-0000-0000-0000-000000000000"})).await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "head_moved"));
    let (st, _) = s
        .post(
            &format!("{base}/branches/main/messages"),
            json!({"role": "assistant", "content": "ok", "expected_head": head}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post(
            &format!("{base}/branches/main/messages"),
            json!({"role": "wizard", "content": "x"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_json"));
    let (st, _) = s
        .post(
            &format!("{base}/branches/nope/messages"),
            json!({"role": "user", "content": "x"}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    let (st, v) = s
        .post(
            &format!("{base}/branches/main/events"),
            json!({"kind": "material", "formula": "LiFePO4"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // A formula the materials tool cannot read never becomes a material or the focus.
    for bad in [
        json!({"kind": "material", "formula": "Qq2O3"}),
        json!({"kind": "focus", "material": "LiCo3Xx2O9"}),
    ] {
        let (st, v) = s.post(&format!("{base}/branches/main/events"), bad).await;
        assert_eq!(
            (st, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_formula"),
            "{v}"
        );
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown element"),
            "{v}"
        );
    }
    let (st, v) = s
        .post(
            &format!("{base}/branches/main/events"),
            json!({"kind": "discovery_link", "from": "a", "to": "b", "relationship": "supports"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_input"));
    let (st, _) = s
        .post(
            &format!("{base}/branches/main/events"),
            json!({"kind": "weather"}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, _) = s
        .post(&format!("{base}/checkpoints"), json!({"name": "cp1"}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post(&format!("{base}/checkpoints"), json!({"name": "cp1"}))
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "already_exists"));
    let (st, _) = s
        .post(&format!("{base}/checkpoints"), json!({"name": "bad name!"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, v) = s
        .post(
            &format!("{base}/branches"),
            json!({"name": "alt", "from": {"checkpoint": "cp1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, _) = s
        .post(&format!("{base}/branches"), json!({"name": "alt"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = s
        .post(
            &format!("{base}/branches"),
            json!({"name": "x", "from": {"checkpoint": "none"}}),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    s.post(
        &format!("{base}/branches/alt/messages"),
        json!({"role": "user", "content": "try NaFePO4"}),
    )
    .await;
    s.post(
        &format!("{base}/branches/alt/events"),
        json!({"kind": "context_pin", "key": "k", "value": "alt"}),
    )
    .await;
    s.post(
        &format!("{base}/branches/main/events"),
        json!({"kind": "context_pin", "key": "k", "value": "main"}),
    )
    .await;
    s.post(
        &format!("{base}/branches/main/messages"),
        json!({"role": "user", "content": "later on main"}),
    )
    .await;

    let (_, page) = s
        .get(&format!("{base}/branches/main/messages?limit=2"))
        .await;
    assert_eq!(page["items"][0]["content"], "later on main");
    let before = page["next_cursor"].as_str().unwrap();
    let (_, older) = s
        .get(&format!(
            "{base}/branches/main/messages?limit=10&before={before}"
        ))
        .await;
    assert_eq!(older["items"].as_array().unwrap().len(), 1);
    let (st, _) = s
        .get(&format!("{base}/branches/main/messages?before=abc"))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, v) = s.get(&format!("{base}/diff?from=main&to=alt")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["only_to"].as_array().unwrap().len(), 1);
    let (st, _) = s.get(&format!("{base}/diff?from=main")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (st, v) = s
        .post(
            &format!("{base}/branches/alt/merge"),
            json!({"into": "main"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "merge_conflict"));
    let c = &v["error"]["details"]["conflicts"][0];
    assert_eq!(
        (
            c["field"].as_str(),
            c["ours"].as_str(),
            c["theirs"].as_str()
        ),
        (Some("context.k"), Some("main"), Some("alt"))
    );
    let (st, v) = s
        .post(
            &format!("{base}/branches/alt/merge"),
            json!({"into": "main", "strategy": "theirs"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["merged"], true);
    let (_, state) = s.get(&format!("{base}/branches/main/state")).await;
    assert_eq!(state["context"]["k"], "alt");
    for key in [
        "materials",
        "discoveries",
        "links",
        "hypotheses",
        "tasks",
        "context",
        "focus",
        "tools",
    ] {
        assert!(state.get(key).is_some(), "state lacks {key}");
    }
    let (_, v) = s
        .post(
            &format!("{base}/branches/alt/merge"),
            json!({"into": "main"}),
        )
        .await;
    assert_eq!(v["merged"], false);
    let (_, state_cp) = s.get(&format!("{base}/branches/main/state?at=cp1")).await;
    assert_eq!(state_cp["materials"].as_array().unwrap().len(), 1);
    assert!(state_cp["context"].get("k").is_none());

    let (st, v) = s
        .post(
            &format!("{base}/checkpoints/cp1/restore"),
            json!({"branch": "main"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let saved = v["saved_as"].as_str().unwrap().to_string();
    let (_, cps) = s.get(&format!("{base}/checkpoints")).await;
    assert!(
        cps["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == saved.as_str())
    );
    let (st, _) = s
        .post(&format!("{base}/checkpoints/nope/restore"), json!({}))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = s
        .call(
            Method::POST,
            &format!("{base}/recover"),
            Some(&s.alice),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, log) = s.get(&format!("{base}/reflog")).await;
    let reasons: Vec<&str> = log["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"restore cp1") && reasons.contains(&"merge alt"),
        "{reasons:?}"
    );

    let (st, _) = s
        .post(&format!("{base}/branches/main/discard"), json!({}))
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "the default branch cannot be discarded"
    );
    let (st, _) = s
        .post(&format!("{base}/branches/alt/discard"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, bs) = s.get(&format!("{base}/branches")).await;
    assert_eq!(bs["items"].as_array().unwrap().len(), 1);
    let (_, bs) = s.get(&format!("{base}/branches?all=true")).await;
    assert_eq!(bs["items"].as_array().unwrap().len(), 2);
    let (st, v) = s
        .post(
            &format!("{base}/branches/alt/merge"),
            json!({"into": "main"}),
        )
        .await;
    assert_eq!((st, code(&v)), (StatusCode::CONFLICT, "branch_discarded"));
    let (st, _) = s
        .post(&format!("{base}/branches/alt/reopen"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn audit_statistics_export_import_and_templates() {
    let s = start().await;
    let id = s.session().await;
    let base = format!("/v1/sessions/{id}");
    s.post(
        &format!("{base}/branches/main/messages"),
        json!({"role": "user", "content": "Analyse LiFePO4"}),
    )
    .await;
    s.post(&format!("{base}/branches/main/events"), json!({"kind": "discovery", "type": "structure_property", "description": "olivine channels"})).await;
    let (_, audit) = s.get(&format!("{base}/audit")).await;
    assert!(audit["items"].as_array().unwrap().len() >= 2);
    let (_, v) = s.get(&format!("{base}/audit/verify")).await;
    assert_eq!(v["valid"], true);
    let (_, stats) = s.get(&format!("{base}/statistics")).await;
    assert_eq!(
        (stats["queries"].as_i64(), stats["discoveries"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(stats["contributions"]["alice"]["queries"], 1);

    let (st, doc) = s.get(&format!("{base}/export?format=json")).await;
    assert_eq!(st, StatusCode::OK);
    let (st, md) = s.get(&format!("{base}/export?format=markdown")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(md.as_str().unwrap().contains("olivine channels"));
    let (st, _) = s.get(&format!("{base}/export?format=pdf")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, imported) = s.post("/v1/sessions/import", doc.clone()).await;
    assert_eq!(st, StatusCode::CREATED, "{imported}");
    let new_id = imported["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let (_, msgs) = s
        .get(&format!("/v1/sessions/{new_id}/branches/main/messages"))
        .await;
    assert_eq!(msgs["items"][0]["content"], "Analyse LiFePO4");
    let mut broken = doc.clone();
    broken["branches"][0]["head"] = json!("00000000-0000-0000-0000-000000000000");
    let (_, before) = s.get("/v1/sessions").await;
    let (st, v) = s.post("/v1/sessions/import", broken).await;
    assert_eq!((st, code(&v)), (StatusCode::BAD_REQUEST, "invalid_input"));
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown node"),
        "{v}"
    );
    let (_, after) = s.get("/v1/sessions").await;
    assert_eq!(
        before["items"].as_array().unwrap().len(),
        after["items"].as_array().unwrap().len()
    );
    let (st, _) = s
        .post("/v1/sessions/import", json!({"format": "zip"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let (_, ts) = s.get("/v1/templates").await;
    assert!(
        ts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "materials-discovery")
    );
    let (st, v) = s
        .post(
            "/v1/sessions",
            json!({"template": "materials-discovery", "parameters": {"material": "LiCoO2"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "LiCoO2 discovery: ionic conductivity");
    let (_, state) = s
        .get(&format!(
            "/v1/sessions/{}/branches/main/state",
            v["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(state["context"]["target_material"], "LiCoO2");
    let (st, _) = s
        .post(
            "/v1/sessions",
            json!({"template": "materials-discovery", "parameters": {}}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s
        .post("/v1/templates", json!({"name": "mine", "from_session": id}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = s
        .post("/v1/templates", json!({"name": "mine", "from_session": id}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

#[tokio::test]
async fn malformed_and_oversized_bodies_are_refused_cleanly() {
    let s = start().await;
    let r = s
        .http
        .post(format!("{}/v1/sessions", s.base))
        .bearer_auth(&s.alice)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "invalid_json");
    let big = "x".repeat(100 * 1024);
    let id = s.session().await;
    let (st, v) = s
        .post(
            &format!("/v1/sessions/{id}/branches/main/messages"),
            json!({"role": "user", "content": big}),
        )
        .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (_, msgs) = s
        .get(&format!("/v1/sessions/{id}/branches/main/messages"))
        .await;
    assert!(msgs["items"].as_array().unwrap().is_empty());
    let (st, _) = s
        .post("/v1/sessions", json!({"name": "x", "colour": "red"}))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// Every kind of write moves a session's last activity, and `sort=activity` lists the most
/// recently active first, paging by a cursor that neither skips nor repeats.
#[tokio::test]
async fn last_activity_moves_with_every_write_and_orders_the_list() {
    let s = start().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(s.session().await);
    }
    let activity = async |id: &str| -> String {
        let (_, v) = s.get(&format!("/v1/sessions/{id}")).await;
        v["last_activity_at"].as_str().unwrap().to_string()
    };
    // Created in order: the newest first either way.
    let (st, by_created) = s.get("/v1/sessions?sort=created").await;
    assert_eq!(st, StatusCode::OK);
    let order = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        order(&by_created),
        [ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    // A message on the oldest, an event on the middle one, a tool run on the oldest again.
    let before = activity(&ids[0]).await;
    let (st, _) = s
        .post(
            &format!("/v1/sessions/{}/branches/main/messages", ids[0]),
            json!({"role": "note", "content": "furnace at 700 C"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let after_message = activity(&ids[0]).await;
    assert!(after_message > before, "{after_message} > {before}");
    let (st, _) = s
        .post(
            &format!("/v1/sessions/{}/branches/main/events", ids[1]),
            json!({"kind": "hypothesis", "statement": "Mn raises the voltage"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, v) = s
        .post(
            &format!("/v1/sessions/{}/tools/materials_analyzer", ids[0]),
            json!({"arguments": {"action": "analyze", "formula": "LiFePO4"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(activity(&ids[0]).await > after_message);
    let (_, by_activity) = s.get("/v1/sessions?sort=activity").await;
    assert_eq!(
        order(&by_activity),
        [ids[0].clone(), ids[1].clone(), ids[2].clone()]
    );
    // Paging one at a time walks the same order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/sessions?sort=activity&limit=1&cursor={}", urlenc(c)),
            None => "/v1/sessions?sort=activity&limit=1".into(),
        };
        let (st, page) = s.get(&path).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        seen.extend(order(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, order(&by_activity));
    // A lifecycle change is activity too.
    let (st, _) = s
        .post(
            &format!("/v1/sessions/{}/status", ids[2]),
            json!({"status": "active"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, v) = s.get("/v1/sessions?sort=activity").await;
    assert_eq!(order(&v)[0], ids[2]);
    // Bad input is a typed 400.
    for bad in [
        "/v1/sessions?sort=popular",
        "/v1/sessions?sort=activity&cursor=no-bar-here",
    ] {
        let (st, v) = s.get(bad).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["error"]["message"].is_string(), "{v}");
    }
}

fn urlenc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A session started without a name of its own is named after its first request; one renamed
/// first keeps its name.
#[tokio::test]
async fn an_unnamed_session_takes_its_title_from_the_first_request() {
    let s = start().await;
    let (_, a) = s
        .post(
            "/v1/sessions",
            json!({"name": "New session", "metadata": {"auto_title": "New session"}}),
        )
        .await;
    let a = a["id"].as_str().unwrap().to_string();
    let (st, v) = s
        .post(
            &format!("/v1/sessions/{a}/query"),
            json!({"message": "please analyse LiFePO4 and tell me if it is charge balanced"}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = s.get(&format!("/v1/sessions/{a}")).await;
    assert_eq!(
        v["name"], "Analyse LiFePO4 and tell me if it is charge balanced",
        "{v}"
    );
    assert!(v["metadata"].get("auto_title").is_none(), "{v}");
    // The second request does not rename it again.
    s.post(
        &format!("/v1/sessions/{a}/query"),
        json!({"message": "Analyse LiCoO2"}),
    )
    .await;
    let (_, v) = s.get(&format!("/v1/sessions/{a}")).await;
    assert_eq!(
        v["name"],
        "Analyse LiFePO4 and tell me if it is charge balanced"
    );
    // Renamed before the first request: the user's name stands.
    let (_, b) = s
        .post(
            "/v1/sessions",
            json!({"name": "New session", "metadata": {"auto_title": "New session"}}),
        )
        .await;
    let b = b["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .call(
            Method::PATCH,
            &format!("/v1/sessions/{b}"),
            Some(&s.alice),
            Some(json!({"name": "Sodium olivines"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.post(
        &format!("/v1/sessions/{b}/query"),
        json!({"message": "Analyse NaFePO4"}),
    )
    .await;
    let (_, v) = s.get(&format!("/v1/sessions/{b}")).await;
    assert_eq!(v["name"], "Sodium olivines");
}

/// Reads server-sent events from `resp` until `want` returns true for the (event, data) seen
/// so far, or `within` passes.
async fn sse_until(
    resp: &mut reqwest::Response,
    within: std::time::Duration,
    mut want: impl FnMut(&[(String, Value)]) -> bool,
) -> Vec<(String, Value)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = String::new();
    let mut seen: Vec<(String, Value)> = Vec::new();
    while !want(&seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(Ok(Some(chunk))) = tokio::time::timeout(left, resp.chunk()).await else {
            break;
        };
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(cut) = buf.find("\n\n") {
            let block: String = buf.drain(..cut + 2).collect();
            let mut name = String::new();
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = n.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !name.is_empty() {
                seen.push((name, serde_json::from_str(&data).unwrap_or(Value::Null)));
            }
        }
    }
    seen
}

/// A watcher sees another user's message, a new branch and a lifecycle change as they happen,
/// a stranger cannot watch, and a watcher whose access is withdrawn is told and let go.
#[tokio::test]
async fn a_watcher_sees_changes_live_and_only_while_allowed() {
    let s = start().await;
    let id = s.session().await;
    let (st, _) = s
        .post(
            &format!("/v1/sessions/{id}/collaborators"),
            json!({"user": "bob", "permissions": ["read"]}),
        )
        .await;
    assert!(st.is_success());
    let http = reqwest::Client::new();
    let watch = |token: &str| {
        http.get(format!(
            "{}/v1/sessions/{id}/events/stream?max_seconds=30",
            s.base
        ))
        .bearer_auth(token)
        .send()
    };
    let mut bob = watch(&s.bob).await.unwrap();
    assert_eq!(bob.status(), StatusCode::OK);
    let first = sse_until(&mut bob, std::time::Duration::from_secs(5), |e| {
        !e.is_empty()
    })
    .await;
    assert_eq!(first[0].0, "snapshot", "{first:?}");
    assert_eq!(first[0].1["branches"][0]["name"], "main");
    // Alice writes; Bob sees the message, the new branch and the lifecycle.
    s.post(
        &format!("/v1/sessions/{id}/branches/main/messages"),
        json!({"role": "user", "content": "sinter at 750 C"}),
    )
    .await;
    s.post(
        &format!("/v1/sessions/{id}/branches"),
        json!({"name": "cobalt"}),
    )
    .await;
    let seen = sse_until(&mut bob, std::time::Duration::from_secs(10), |e| {
        e.iter()
            .any(|(n, d)| n == "nodes" && d.to_string().contains("sinter at 750 C"))
            && e.iter()
                .any(|(n, d)| n == "branches" && d.to_string().contains("cobalt"))
            && e.iter()
                .any(|(n, d)| n == "session" && d["status"] == "active")
    })
    .await;
    let nodes = seen.iter().find(|(n, _)| n == "nodes").unwrap();
    assert_eq!(nodes.1["nodes"][0]["author"], "alice", "{seen:?}");
    assert!(seen.iter().any(|(n, _)| n == "branches"), "{seen:?}");
    assert!(
        seen.iter()
            .any(|(n, d)| n == "session" && d["status"] == "active"),
        "{seen:?}"
    );
    // A stranger cannot watch; bad bounds are a 400.
    let (st, v) = s
        .call(
            Method::GET,
            &format!("/v1/sessions/{id}/events/stream"),
            Some(&s.users["spare"]),
            None,
        )
        .await;
    assert!(
        st == StatusCode::NOT_FOUND || st == StatusCode::FORBIDDEN,
        "{st} {v}"
    );
    for bad in [
        "max_seconds=0",
        "max_seconds=86401",
        "max_seconds=soon",
        "when=now",
    ] {
        let (st, v) = s
            .get(&format!("/v1/sessions/{id}/events/stream?{bad}"))
            .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // Bob's access goes: his stream says so and ends.
    let bob_id = s.get(&format!("/v1/sessions/{id}/collaborators")).await.1["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "bob")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (st, _) = s
        .call(
            Method::DELETE,
            &format!("/v1/sessions/{id}/collaborators/{bob_id}"),
            Some(&s.alice),
            None,
        )
        .await;
    assert!(st.is_success());
    let seen = sse_until(&mut bob, std::time::Duration::from_secs(15), |e| {
        e.iter().any(|(n, _)| n == "closed")
    })
    .await;
    assert!(seen.iter().any(|(n, _)| n == "closed"), "{seen:?}");
    let rest = tokio::time::timeout(std::time::Duration::from_secs(5), bob.chunk()).await;
    assert!(matches!(rest, Ok(Ok(None))), "the stream ends after closed");
}

/// `?entry_type=` keeps the audit entries of one type: an action or a dotted prefix.
#[tokio::test]
async fn the_audit_log_filters_by_entry_type() {
    let s = start().await;
    let id = s.session().await;
    // Defining an optimizer leaves an entry of another type than the session's own.
    let (st, v) = s
        .call(
            Method::PUT,
            &format!("/v1/sessions/{id}/branches/main/optimizer/space"),
            Some(&s.alice),
            Some(
                json!({"variables": [{"name": "t", "type": "real", "bounds": [300, 900]}],
                        "objective": {"name": "yield", "goal": "maximize"}}),
            ),
        )
        .await;
    assert!(st.is_success(), "{v}");
    let (_, all) = s.get(&format!("/v1/sessions/{id}/audit")).await;
    let actions = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(actions(&all).len() >= 2, "{all}");
    let (st, v) = s
        .get(&format!("/v1/sessions/{id}/audit?entry_type=session"))
        .await;
    assert_eq!(st, StatusCode::OK);
    let only = actions(&v);
    assert!(
        !only.is_empty() && only.iter().all(|a| a.starts_with("session.")),
        "{only:?}"
    );
    assert!(only.len() < actions(&all).len(), "something was left out");
    let (_, v) = s
        .get(&format!(
            "/v1/sessions/{id}/audit?entry_type=session.create"
        ))
        .await;
    assert_eq!(actions(&v), ["session.create"]);
    let (_, v) = s
        .get(&format!("/v1/sessions/{id}/audit?entry_type=sess"))
        .await;
    assert!(actions(&v).is_empty(), "a type is a whole dotted part");
    let (st, _) = s
        .get(&format!("/v1/sessions/{id}/audit?type=session"))
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "unknown parameters are refused"
    );
}

/// An MCP session over `/mcp` belongs to the user who opened it: another user's token with its
/// id is told it does not exist; the owner carries on.
#[tokio::test]
async fn an_mcp_session_is_kept_to_the_user_who_opened_it() {
    let s = start().await;
    let http = reqwest::Client::new();
    let rpc = |token: &str, session: Option<&str>, body: Value| {
        let mut req = http
            .post(format!("{}/mcp", s.base))
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(id) = session {
            req = req.header("mcp-session-id", id);
        }
        req.send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "owner-test", "version": "1"}}});
    let r = rpc(&s.alice, None, init).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let id = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let r = rpc(&s.bob, Some(&id), list.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let notified = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = rpc(&s.alice, Some(&id), notified).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = rpc(&s.alice, Some(&id), list).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let text = r.text().await.unwrap();
    assert!(
        text.contains("list_sessions") || text.contains("tools"),
        "{text}"
    );
}
