//! The agent's HTTP surface on a real listener with a real SQLite file and the offline
//! planner: query as JSON and as SSE, direct tool runs, the tool list and the context window.

mod support;

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, start as start_with};

async fn start() -> Server {
    start_with(1024 * 1024).await
}

impl Server {
    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(token)
                .json(&body),
        )
        .await
    }
    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.send(
            self.http
                .get(format!("{}{path}", self.base))
                .bearer_auth(token),
        )
        .await
    }
    async fn session(&self) -> String {
        let (s, v) = self
            .post("/v1/sessions", &self.alice, json!({"name": "chat"}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }
}

fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(v["error"]["recoverable"].is_boolean());
}

#[tokio::test]
async fn tools_are_listed_with_their_schemas() {
    let srv = start().await;
    let (s, v) = srv.get("/v1/tools", &srv.alice).await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for want in [
        "bayesian_optimizer",
        "link_discoveries",
        "materials_analyzer",
        "notebook",
        "record_discovery",
        "session_search",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["parameters"]["type"] == "object")
    );
    let resp = srv
        .http
        .get(format!("{}/v1/tools", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_query_answers_as_json_with_the_tool_calls() {
    let srv = start().await;
    let id = srv.session().await;
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            &srv.alice,
            json!({"message": "Analyse LiFePO4"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["answer"].as_str().unwrap().contains("157.755"), "{v}");
    assert_eq!(v["tool_calls"][0]["name"], "materials_analyzer");
    assert_eq!(v["branch"], "main");
    // The follow-up resolves "its" from the focus the first turn recorded.
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            &srv.alice,
            json!({"message": "What about its oxidation states?"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tool_calls"][0]["arguments"]["formula"], "LiFePO4");
    // Bad input: typed errors, nothing stored.
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            &srv.alice,
            json!({"message": ""}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, "invalid_input");
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            &srv.alice,
            json!({"msg": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            &srv.bob,
            json!({"message": "let me in"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, "not_found");
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/status"),
            &srv.alice,
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for accept in ["application/json", "text/event-stream"] {
        let (s, v) = srv
            .send(
                srv.http
                    .post(format!("{}/v1/sessions/{id}/query", srv.base))
                    .bearer_auth(&srv.alice)
                    .header("accept", accept)
                    .json(&json!({"message": "still there?"})),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{accept}");
        assert_error(&v, "session_not_active");
    }
}

#[tokio::test]
async fn a_query_streams_as_server_sent_events() {
    let srv = start().await;
    let id = srv.session().await;
    let resp = srv
        .http
        .post(format!("{}/v1/sessions/{id}/query", srv.base))
        .bearer_auth(&srv.alice)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "Analyse LiCoO2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = resp.text().await.unwrap();
    let names: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(names.first(), Some(&"started"));
    assert!(
        names.contains(&"tool_call") && names.contains(&"tool_result"),
        "{names:?}"
    );
    assert!(
        names.iter().filter(|n| **n == "token").count() > 3,
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"done"));
    let streamed: String = body
        .lines()
        .zip(body.lines().skip(1))
        .filter(|(a, _)| *a == "event: token")
        .filter_map(|(_, b)| b.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let done = body
        .lines()
        .skip_while(|l| *l != "event: done")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .unwrap();
    let done: Value = serde_json::from_str(done).unwrap();
    assert!(streamed.contains("LiCoO2"));
    assert!(
        done["answer"]
            .as_str()
            .unwrap()
            .ends_with(streamed.trim_end()),
        "{done}"
    );
}

#[tokio::test]
async fn tools_run_directly_with_typed_errors() {
    let srv = start().await;
    let id = srv.session().await;
    let path = format!("/v1/sessions/{id}/tools/materials_analyzer");
    let (s, v) = srv
        .post(
            &path,
            &srv.alice,
            json!({"arguments": {"action": "analyze", "formula": "Xx2O3"}}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_error(&v, "invalid_arguments");
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/tools/flux_capacitor"),
            &srv.alice,
            json!({"arguments": {}}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_error(&v, "unknown_tool");
    let (s, v) = srv
        .post(
            &path,
            &srv.alice,
            json!({"arguments": {"action": "validate", "formula": "Fe3O4"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true);
    assert_eq!(v["result"]["formula"], "Fe3O4");
    // Recorded as the agent would: call and result nodes, a material event, the focus.
    let (_, state) = srv
        .get(
            &format!("/v1/sessions/{id}/branches/main/state"),
            &srv.alice,
        )
        .await;
    assert_eq!(state["focus"]["material"], "Fe3O4", "{state}");
    let (s, ctx) = srv
        .get(&format!("/v1/sessions/{id}/context"), &srv.alice)
        .await;
    assert_eq!(s, StatusCode::OK, "{ctx}");
    assert_eq!(ctx["focus"], "Fe3O4");
    assert!(ctx["total_tokens"].as_u64().unwrap() > 0);
    assert!(ctx["total_tokens"].as_u64() <= ctx["budget"].as_u64());
    let parts: Vec<&str> = ctx["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(parts.contains(&"system") && parts.contains(&"focus") && parts.contains(&"history"));
    let (s, _) = srv
        .get(
            &format!("/v1/sessions/{id}/context?branch=nope"),
            &srv.alice,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
