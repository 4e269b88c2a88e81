//! Context control over HTTP (compress now, pinned items, clear by kind, cleanup, the session
//! summary) and a streaming client that leaves mid-answer, on a real listener and SQLite file.

mod support;

#[path = "../../kiln-llm/tests/support/server.rs"]
mod llm;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kiln_llm::OpenAiProvider;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, start, start_with_model};

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, path, Some(token), body).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, path, &self.alice, Some(body))
            .await
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(reqwest::Method::GET, path, &self.alice, None)
            .await
    }
    async fn new_session(&self) -> String {
        let (s, v) = self.post("/v1/sessions", json!({"name": "ctx"})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }
}

fn part<'a>(ctx: &'a Value, name: &str) -> Option<&'a Value> {
    ctx["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

#[tokio::test]
async fn compress_pin_clear_cleanup_and_summarise() {
    let srv = start(1 << 20).await;
    let id = srv.new_session().await;
    for q in [
        "Analyse LiFePO4",
        "Analyse LiCoO2",
        "What about its oxidation states?",
        "Record that the olivine structure seems crucial for Li+ mobility",
    ] {
        let (s, v) = srv
            .post(&format!("/v1/sessions/{id}/query"), json!({"message": q}))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, before) = srv.get(&format!("/v1/sessions/{id}/context")).await;
    let history_before = part(&before, "history").unwrap()["items"].as_u64().unwrap();

    // Compress now, keeping the last two messages out of the summary.
    let (s, c) = srv
        .post(
            &format!("/v1/sessions/{id}/context/compress"),
            json!({"keep_recent": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{c}");
    let covered = c["summary"]["messages"].as_u64().unwrap();
    assert!(covered >= 6, "{c}");
    assert!(
        c["tokens_after"].as_u64() < c["tokens_before"].as_u64(),
        "{c}"
    );
    let (_, after) = srv.get(&format!("/v1/sessions/{id}/context")).await;
    assert_eq!(part(&after, "summary").unwrap()["items"], 1, "{after}");
    let history_after = part(&after, "history").unwrap()["items"].as_u64().unwrap();
    assert!(
        history_after < history_before,
        "{history_after} vs {history_before}"
    );
    // Nothing new since: a second compression writes nothing.
    let (s, again) = srv
        .post(&format!("/v1/sessions/{id}/context/compress"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(again["summary"].is_null(), "{again}");

    // Pinned items of two kinds reach the window; clearing one kind leaves the other.
    let items = format!("/v1/sessions/{id}/context/items");
    for (kind, content) in [
        ("goal", "Find a cathode above 160 mAh/g"),
        ("constraint", "No cobalt"),
    ] {
        let (s, v) = srv
            .post(&items, json!({"kind": kind, "content": content}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, ctx) = srv.get(&format!("/v1/sessions/{id}/context")).await;
    assert_eq!(part(&ctx, "pinned").unwrap()["items"], 2);
    assert!(ctx.to_string().contains("No cobalt"));
    let (s, v) = srv
        .call(
            reqwest::Method::DELETE,
            &format!("{items}?kind=constraint"),
            &srv.alice,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["cleared"], json!(["constraint:no-cobalt"]));
    let (_, ctx) = srv.get(&format!("/v1/sessions/{id}/context")).await;
    assert_eq!(part(&ctx, "pinned").unwrap()["items"], 1);
    assert!(!ctx.to_string().contains("No cobalt"));

    // Cleanup keeps the newest N; nothing young enough is removed by age.
    let cleanup = format!("/v1/sessions/{id}/context/cleanup");
    let (s, v) = srv.post(&cleanup, json!({"older_than_days": 1})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["cleared"], json!([]));
    let (_, v) = srv.post(&cleanup, json!({"keep_latest": 0})).await;
    assert_eq!(v["cleared"], json!(["goal:find-a-cathode-above-160-mah-g"]));
    assert!(
        part(
            &srv.get(&format!("/v1/sessions/{id}/context")).await.1,
            "pinned"
        )
        .is_none()
    );

    // The session summary reads the research state.
    let (s, sum) = srv.get(&format!("/v1/sessions/{id}/summary")).await;
    assert_eq!(s, StatusCode::OK, "{sum}");
    assert_eq!(sum["counts"]["discoveries"], 1, "{sum}");
    assert!(
        sum["key_findings"][0]["description"]
            .as_str()
            .unwrap()
            .contains("olivine")
    );
    let formulas: Vec<&str> = sum["materials_of_interest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["formula"].as_str().unwrap())
        .collect();
    assert!(
        formulas.contains(&"LiFePO4") && formulas.contains(&"LiCoO2"),
        "{formulas:?}"
    );

    // Bad input is a typed 400 and writes nothing; strangers see nothing.
    for body in [
        json!({"kind": "Bad Kind", "content": "x"}),
        json!({"kind": "goal", "content": "   "}),
        json!({"kind": "goal"}),
    ] {
        let (s, v) = srv.post(&items, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    let (s, v) = srv.post(&cleanup, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = srv
        .post(
            &format!("/v1/sessions/{id}/context/compress"),
            json!({"keep_recent": 5000}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    for (method, path) in [
        (
            reqwest::Method::POST,
            format!("/v1/sessions/{id}/context/compress"),
        ),
        (reqwest::Method::GET, format!("/v1/sessions/{id}/summary")),
        (reqwest::Method::DELETE, format!("{items}?kind=all")),
    ] {
        let (s, v) = srv.call(method, &path, &srv.bob, None).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
    }
    let (s, v) = srv
        .call(
            reqwest::Method::POST,
            &items,
            &srv.bob,
            Some(json!({"kind": "goal", "content": "hijack"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // A paused session refuses context writes.
    let (s, _) = srv
        .post(
            &format!("/v1/sessions/{id}/status"),
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = srv
        .post(&items, json!({"kind": "goal", "content": "later"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "session_not_active");
}

#[tokio::test]
async fn a_streaming_client_that_leaves_mid_answer_leaves_the_partial_answer_stored() {
    let mock = llm::MockServer::start(vec![
        llm::Reply::SseStall(vec![
            llm::chunk(
                json!({"role": "assistant", "content": "The olivine "}),
                None,
            ),
            llm::chunk(json!({"content": "framework "}), None),
        ]),
        llm::Reply::Sse(vec![
            llm::chunk(json!({"role": "assistant", "content": "Still here."}), None),
            llm::chunk(json!({}), Some("stop")),
        ]),
        // Discovery detection after that answer: nothing found.
        llm::text_answer(r#"{"discoveries": []}"#),
    ])
    .await;
    let provider = OpenAiProvider::new(&mock.config()).unwrap();
    let srv = start_with_model(1 << 20, Arc::new(provider)).await;
    let id = srv.new_session().await;

    let resp = srv
        .http
        .post(format!("{}/v1/sessions/{id}/query", srv.base))
        .bearer_auth(&srv.alice)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "Why is LiFePO4 stable?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while seen.matches("event: token").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("tokens arrive")
            .expect("the stream is open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    // The model has gone silent; the client leaves.
    drop(body);

    let messages = format!("/v1/sessions/{id}/branches/main/messages?limit=10");
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, page) = srv.get(&messages).await;
        last = page["items"][0].clone();
        if last["kind"] == "assistant" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last["kind"], "assistant", "{last}");
    assert_eq!(last["data"]["interrupted"], true, "{last}");
    assert_eq!(last["content"], "The olivine framework ");

    // The branch is consistent: the next turn runs on it.
    let (s, v) = srv
        .post(
            &format!("/v1/sessions/{id}/query"),
            json!({"message": "Are you still there?"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["answer"], "Still here.");
}
