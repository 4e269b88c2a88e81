//! What one user may take from a shared server, over a real listener and SQLite file: agent
//! turns on one branch wait their turn (all complete, a full line is 429), expensive routes are
//! rate limited per user (429 with Retry-After), and writes past a storage quota are 413 with
//! nothing already stored lost.

mod support;

use std::sync::Arc;

use kiln_llm::{ChatFuture, ChatModel, ChatRequest, OfflinePlanner};
use kiln_session::Config;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Server, start_with_config};
use tokio::sync::watch;

async fn session(srv: &Server, token: &str) -> String {
    let (s, v) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(token),
            Some(json!({"name": "busy"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

async fn ask(srv: &Server, id: &str, token: &str, message: &str) -> (StatusCode, Value) {
    srv.request(
        reqwest::Method::POST,
        &format!("/v1/sessions/{id}/query"),
        Some(token),
        Some(json!({"message": message})),
    )
    .await
}

async fn messages(srv: &Server, id: &str) -> Vec<Value> {
    let (s, v) = srv
        .request(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/branches/main/messages?limit=1000"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

/// The adversarial pass's burst: 32 turns at once on one branch used to give 1 answer and 31
/// `head_moved`; now every one is answered, each question followed by its own answer.
#[tokio::test]
async fn simultaneous_turns_on_one_branch_all_complete() {
    let mut config = Config::default();
    config.limits.expensive_per_minute = 0; // the rate limit is another test's
    let srv = start_with_config(config, Arc::new(OfflinePlanner::new())).await;
    let id = session(&srv, &srv.alice).await;
    let srv = Arc::new(srv);
    let mut turns = tokio::task::JoinSet::new();
    for i in 0..32 {
        let (srv, id) = (srv.clone(), id.clone());
        turns.spawn(
            async move { ask(&srv, &id, &srv.alice, &format!("Analyse Li{}O", i + 1)).await },
        );
    }
    let mut answered = 0;
    while let Some(r) = turns.join_next().await {
        let (s, v) = r.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
        answered += 1;
    }
    assert_eq!(answered, 32);
    let items = messages(&srv, &id).await;
    let questions = items.iter().filter(|m| m["role"] == "user").count();
    let answers = items.iter().filter(|m| m["role"] == "assistant").count();
    assert_eq!(questions, 32, "every question is stored once");
    assert!(answers >= 32, "every turn answered: {answers}");
}

/// A model that holds every call until the gate opens: the first turn runs and blocks, the
/// rest line up behind it.
struct Gated {
    inner: OfflinePlanner,
    open: watch::Receiver<bool>,
}

impl ChatModel for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    fn complete(&self, request: ChatRequest) -> ChatFuture<'_> {
        let mut open = self.open.clone();
        Box::pin(async move {
            let _ = open.wait_for(|o| *o).await;
            self.inner.complete(request).await
        })
    }
}

#[tokio::test]
async fn a_full_turn_line_answers_429_and_the_accepted_turns_complete() {
    let (gate, open) = watch::channel(false);
    let mut config = Config::default();
    config.agent.turn_queue = 2;
    let model = Gated {
        inner: OfflinePlanner::new(),
        open,
    };
    let srv = Arc::new(start_with_config(config, Arc::new(model)).await);
    let id = session(&srv, &srv.alice).await;
    let mut accepted = tokio::task::JoinSet::new();
    // One running (held at the model) and two waiting fill the line.
    for i in 0..3 {
        let (srv, id) = (srv.clone(), id.clone());
        accepted.spawn(async move {
            ask(&srv, &id, &srv.alice, &format!("Analyse Fe{}O", i + 1)).await
        });
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    let (s, v) = ask(&srv, &id, &srv.alice, "Analyse NaCl").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    assert_eq!(v["error"]["code"], "turn_queue_full", "{v}");
    assert_eq!(v["error"]["recoverable"], true);
    // Another branch (here: another session) has its own line.
    let other = session(&srv, &srv.alice).await;
    let waiting_elsewhere = {
        let srv = srv.clone();
        tokio::spawn(async move { ask(&srv, &other, &srv.alice, "Analyse MgO").await })
    };
    gate.send(true).unwrap();
    while let Some(r) = accepted.join_next().await {
        let (s, v) = r.unwrap();
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    assert_eq!(waiting_elsewhere.await.unwrap().0, StatusCode::OK);
    let questions = messages(&srv, &id)
        .await
        .iter()
        .filter(|m| m["role"] == "user")
        .count();
    assert_eq!(questions, 3, "the refused turn stored nothing");
}

#[tokio::test]
async fn expensive_routes_are_rate_limited_per_user_with_retry_after() {
    let mut config = Config::default();
    config.limits.expensive_per_minute = 6;
    config.limits.expensive_burst = 3;
    let srv = start_with_config(config, Arc::new(OfflinePlanner::new())).await;
    let search = |token: &str| {
        srv.http
            .get(format!("{}/v1/search?q=olivine", srv.base))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(search(&srv.alice).await.unwrap().status(), StatusCode::OK);
    }
    let refused = search(&srv.alice).await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=11).contains(&retry), "{retry}");
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert_eq!(v["error"]["recoverable"], true);
    // Someone else's budget is their own; cheap routes are never charged.
    assert_eq!(search(&srv.bob).await.unwrap().status(), StatusCode::OK);
    let (s, _) = srv
        .request(reqwest::Method::GET, "/v1/sessions", Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    // Notebook lines and findings are appends: a script logging every step is not throttled,
    // while a tool that computes (the optimizer) is.
    let id = session(&srv, &srv.alice).await;
    let tool = async |name: &str, arguments: Value| {
        srv.request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{id}/tools/{name}"),
            Some(&srv.alice),
            Some(json!({"arguments": arguments})),
        )
        .await
    };
    for step in 0..20 {
        let (s, v) = tool(
            "notebook",
            json!({"action": "log_metric", "name": "loss", "value": 0.5, "step": step}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "step {step}: {v}");
    }
    let (s, v) = tool(
        "record_discovery",
        json!({"description": "Carbon coating doubles the rate capability"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = tool("bayesian_optimizer", json!({"action": "status"})).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
}

#[tokio::test]
async fn writes_past_the_storage_quota_are_413_and_lose_nothing() {
    let mut config = Config::default();
    config.limits.storage_quota_mb = 1;
    let srv = start_with_config(config, Arc::new(OfflinePlanner::new())).await;
    let id = session(&srv, &srv.alice).await;
    let big = "olivine ".repeat(12_500); // 100 kB
    let mut stored = 0;
    let refusal = loop {
        let (s, v) = srv
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{id}/branches/main/messages"),
                Some(&srv.alice),
                Some(json!({"role": "user", "content": big})),
            )
            .await;
        if s != StatusCode::CREATED {
            break (s, v);
        }
        stored += 1;
        assert!(stored <= 11, "a 1 MB quota let {stored} x 100 kB through");
    };
    assert_eq!(refusal.0, StatusCode::PAYLOAD_TOO_LARGE, "{}", refusal.1);
    assert_eq!(refusal.1["error"]["code"], "storage_quota_exceeded");
    assert_eq!(refusal.1["error"]["recoverable"], true);
    assert!(stored >= 9, "only {stored} messages fit in 1 MB");
    assert_eq!(messages(&srv, &id).await.len(), stored);
    // Bob's quota is his own.
    let bobs = session(&srv, &srv.bob).await;
    let (s, v) = srv
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{bobs}/branches/main/messages"),
            Some(&srv.bob),
            Some(json!({"role": "user", "content": big})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
