//! Batches on a real server: 200 formulas through the offline planner, each on its own branch
//! with its answer and key numbers; CSV rows in one shared branch; progress over server-sent
//! events; cancel; the results as CSV; a restart that carries on without redoing what was done;
//! and every bad request refused with a typed error and nothing stored.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kiln_agent::{Agent, Registry};
use kiln_llm::OfflinePlanner;
use kiln_session::{BatchSpec, Caller, ItemOutcome};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

impl Server {
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.request(method, path, Some(&self.alice), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn session(&self, name: &str) -> String {
        self.ok(Method::POST, "/v1/sessions", Some(json!({"name": name})))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Polls the batch until it has finished (bounded: a hang fails the test).
    async fn finished(&self, session: &str, batch: &str) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let v = self
                .ok(
                    Method::GET,
                    &format!("/v1/sessions/{session}/batches/{batch}"),
                    None,
                )
                .await;
            if v["status"] != "running" {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still running: {}",
                v["counts"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// 200 distinct, valid formulas: A B O3 perovskites and A2 B O4 spinels.
fn formulas() -> Vec<String> {
    let a = ["Ca", "Sr", "Ba", "Mg", "Zn", "Cd", "Pb", "Mn", "Fe", "Co"];
    let b = ["Ti", "Zr", "Sn", "Hf", "Ge", "Si", "Ce", "Mo", "W", "Te"];
    let mut out = Vec::new();
    for x in a {
        for y in b {
            out.push(format!("{x}{y}O3"));
            out.push(format!("{x}2{y}O4"));
        }
    }
    out
}

#[tokio::test]
async fn two_hundred_formulas_each_on_a_branch_with_answers_numbers_and_a_csv() {
    let srv = start(1 << 20).await;
    let id = srv.session("Screening").await;
    srv.ok(
        Method::POST,
        &format!("/v1/sessions/{id}/branches/main/messages"),
        Some(json!({"role": "note", "content": "screening perovskites and spinels"})),
    )
    .await;
    let items: Vec<Value> = formulas().iter().map(|f| json!({"formula": f})).collect();
    assert_eq!(items.len(), 200);
    let (s, b) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/batches"),
            Some(&srv.alice),
            Some(json!({"request": "Analyse {formula}", "items": items, "concurrency": 8})),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    assert_eq!(b["total"], 200);
    let batch = b["id"].as_str().unwrap().to_owned();
    let done = srv.finished(&id, &batch).await;
    assert_eq!(done["status"], "done", "{}", done["counts"]);
    assert_eq!(done["counts"]["done"], 200, "{}", done["counts"]);
    let items = done["items"].as_array().unwrap();
    for (i, it) in items.iter().enumerate() {
        let f = &formulas()[i];
        assert_eq!(it["item"]["formula"], f.as_str());
        assert_eq!(it["request"], format!("Analyse {f}"));
        assert!(
            it["answer"].as_str().unwrap().contains("molar mass"),
            "{it}"
        );
        assert!(it["numbers"]["molar_mass"].as_f64().unwrap() > 50.0, "{it}");
        let branch = it["branch"].as_str().unwrap();
        assert!(branch.ends_with(&format!("-{:03}", i + 1)), "{branch}");
    }
    // Each item's branch starts from the checkpoint: the note, then its own question only.
    let branch = items[7]["branch"].as_str().unwrap();
    let msgs = srv
        .ok(
            Method::GET,
            &format!("/v1/sessions/{id}/branches/{branch}/messages?limit=100"),
            None,
        )
        .await;
    let text = msgs.to_string();
    assert!(text.contains("screening perovskites") && text.contains(&formulas()[7]));
    assert!(
        !text.contains(&formulas()[8]),
        "items do not see each other"
    );
    // The checkpoint the items started from is there.
    let cps = srv
        .ok(Method::GET, &format!("/v1/sessions/{id}/checkpoints"), None)
        .await;
    assert!(
        cps.to_string()
            .contains(done["checkpoint"].as_str().unwrap())
    );

    // The results as CSV: a header and one row per item.
    let r = srv
        .http
        .get(format!(
            "{}/v1/sessions/{id}/batches/{batch}/results.csv",
            srv.base
        ))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 201, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("item,formula,status,branch,answer")
    );
    assert!(csv.contains("CaTiO3"));
    // Listed, without items.
    let list = srv
        .ok(Method::GET, &format!("/v1/sessions/{id}/batches"), None)
        .await;
    assert_eq!(list["items"][0]["id"], batch.as_str());
    assert!(list["items"][0].get("items").is_none());
    // Finished: cancelling is a conflict.
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/batches/{batch}/cancel"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "batch_finished");
}

#[tokio::test]
async fn csv_rows_in_one_shared_branch_with_progress_over_sse() {
    let srv = start(1 << 20).await;
    let id = srv.session("Shared").await;
    let b = srv
        .ok(
            Method::POST,
            &format!("/v1/sessions/{id}/batches"),
            Some(json!({"request": "Analyse {formula}", "mode": "shared",
                        "csv": "formula,note\nLiFePO4,olivine\nLiCoO2,\"layered, costly\"\nNotAFormula9,bad\n"})),
        )
        .await;
    let batch = b["id"].as_str().unwrap().to_owned();
    assert_eq!(b["concurrency"], 1);
    // The progress stream: progress events, an item event per item, then done.
    let r = srv
        .http
        .get(format!(
            "{}/v1/sessions/{id}/batches/{batch}/events",
            srv.base
        ))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(60), r.text())
        .await
        .expect("the stream ends when the batch does")
        .unwrap();
    assert!(body.contains("event: progress"), "{body}");
    assert_eq!(body.matches("event: item").count(), 3, "{body}");
    let last = body.rsplit("event: ").next().unwrap();
    assert!(
        last.starts_with("done"),
        "the stream ends with done: {body}"
    );
    let done = srv.finished(&id, &batch).await;
    let items = done["items"].as_array().unwrap();
    let branch = items[0]["branch"].as_str().unwrap();
    assert!(items.iter().all(|i| i["branch"] == branch), "one branch");
    assert_eq!(items[1]["item"]["note"], "layered, costly");
    // In order on one branch: the second item's turn sees the first.
    let msgs = srv
        .ok(
            Method::GET,
            &format!("/v1/sessions/{id}/branches/{branch}/messages?limit=100"),
            None,
        )
        .await;
    let users: Vec<&str> = msgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|n| n["kind"] == "user")
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        users,
        ["Analyse LiFePO4", "Analyse LiCoO2", "Analyse NotAFormula9"]
    );
}

#[tokio::test]
async fn bad_batches_are_refused_and_store_nothing() {
    let srv = start(1 << 20).await;
    let id = srv.session("Bad").await;
    let path = format!("/v1/sessions/{id}/batches");
    for (body, says) in [
        (
            json!({"request": "Analyse {formula}"}),
            "needs `items` or `csv`",
        ),
        (
            json!({"request": "Analyse {formula}", "items": []}),
            "at least one item",
        ),
        (
            json!({"request": "  ", "items": [{"formula": "NaCl"}]}),
            "request",
        ),
        (
            json!({"request": "Analyse {formula}", "items": [{"formula": "NaCl"}, {"f": "KCl"}]}),
            "item 2",
        ),
        (
            json!({"request": "Analyse {formula", "items": [{"formula": "NaCl"}]}),
            "{",
        ),
        (
            json!({"request": "x {a}", "items": [{"a": "1"}], "mode": "parallel"}),
            "mode",
        ),
        (
            json!({"request": "x {a}", "items": [{"a": "1"}], "concurrency": 0}),
            "concurrency",
        ),
        (
            json!({"request": "x {a}", "items": [{"a": "1"}], "concurrency": 17}),
            "concurrency",
        ),
        (
            json!({"request": "x {a}", "items": [{"a": "1"}], "item_timeout_seconds": 0}),
            "item_timeout",
        ),
        (
            json!({"request": "x {a}", "items": [{"a": [1]}]}),
            "text or a number",
        ),
        (json!({"request": "x {a}", "csv": "a,b\n1\n"}), "CSV row 2"),
        (
            json!({"request": "x {a}", "items": [{"a": "1"}], "colour": "red"}),
            "colour",
        ),
    ] {
        let (s, v) = srv
            .request(Method::POST, &path, Some(&srv.alice), Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{body}: {v}"
        );
    }
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"n": i})).collect();
    let (s, v) = srv
        .request(
            Method::POST,
            &path,
            Some(&srv.alice),
            Some(json!({"request": "x {n}", "items": too_many})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = srv
        .request(
            Method::POST,
            &path,
            Some(&srv.alice),
            Some(json!({"request": "x {a}", "items": [{"a": "1"}], "checkpoint": "nope"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Nothing was stored, and no checkpoint was made for the refused ones.
    let list = srv.ok(Method::GET, &path, None).await;
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    let cps = srv
        .ok(Method::GET, &format!("/v1/sessions/{id}/checkpoints"), None)
        .await;
    assert!(!cps.to_string().contains("batch-"), "{cps}");

    // Permissions: a reader may watch, not start or cancel; a stranger sees nothing.
    srv.ok(
        Method::POST,
        &format!("/v1/sessions/{id}/collaborators"),
        Some(json!({"user": "bob", "permissions": ["read"]})),
    )
    .await;
    let body = json!({"request": "Analyse {f}", "items": [{"f": "NaCl"}]});
    let (s, _) = srv
        .request(Method::POST, &path, Some(&srv.bob), Some(body.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let b = srv.ok(Method::POST, &path, Some(body)).await;
    let batch = b["id"].as_str().unwrap();
    let (s, _) = srv
        .request(
            Method::GET,
            &format!("{path}/{batch}"),
            Some(&srv.bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = srv
        .request(
            Method::POST,
            &format!("{path}/{batch}/cancel"),
            Some(&srv.bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let stranger = srv.users["spare"].clone();
    let (s, _) = srv
        .request(
            Method::GET,
            &format!("{path}/{batch}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = srv
        .request(
            Method::GET,
            &format!("{path}/no-such-batch"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
}

#[tokio::test]
async fn cancel_stops_what_is_left() {
    let srv = start(1 << 20).await;
    let id = srv.session("Cancel").await;
    let items: Vec<Value> = (0..400).map(|i| json!({"n": i})).collect();
    let b = srv
        .ok(
            Method::POST,
            &format!("/v1/sessions/{id}/batches"),
            Some(json!({"request": "Analyse NaCl, run {n}", "items": items, "concurrency": 1})),
        )
        .await;
    let batch = b["id"].as_str().unwrap().to_owned();
    let v = srv
        .ok(
            Method::POST,
            &format!("/v1/sessions/{id}/batches/{batch}/cancel"),
            None,
        )
        .await;
    assert_eq!(v["status"], "cancelled");
    let done = srv.finished(&id, &batch).await;
    let counts = &done["counts"];
    assert_eq!(counts["pending"], 0);
    assert!(counts["cancelled"].as_u64().unwrap() > 300, "{counts}");
    // Nothing runs after the cancel.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let later = srv.finished(&id, &batch).await;
    assert_eq!(later["counts"], done["counts"]);
}

#[tokio::test]
async fn a_restart_carries_on_without_redoing_what_was_done() {
    let srv = start(1 << 20).await;
    let id = srv.session("Restart").await;
    let mgr = &srv.mgr;
    let alice = mgr.authenticate(&srv.alice).await.unwrap();
    // A batch stored but run by nobody: as if the server stopped right after taking two items
    // and finishing one of them.
    let spec: BatchSpec = serde_json::from_value(json!({
        "request": "Analyse {formula}",
        "items": [{"formula": "LiFePO4"}, {"formula": "LiCoO2"}, {"formula": "NaCl"}]}))
    .unwrap();
    let b = mgr.create_batch(&alice, &id, &spec).await.unwrap();
    let first = mgr.claim_batch_item(&id, &b.id).await.unwrap().unwrap();
    mgr.finish_batch_item(
        &id,
        &b.id,
        first.idx,
        &ItemOutcome {
            status: "done",
            answer: Some("answered before the restart".into()),
            ..ItemOutcome::default()
        },
    )
    .await
    .unwrap();
    let crashed = mgr.claim_batch_item(&id, &b.id).await.unwrap().unwrap();
    assert_eq!(crashed.idx, 1);
    // The restarted server's agent.
    let agent = Agent::new(
        mgr.clone(),
        Arc::new(OfflinePlanner::new()),
        Registry::builtin(),
        Default::default(),
    );
    assert_eq!(agent.resume_batches().await, 1);
    let done = srv.finished(&id, &b.id).await;
    assert_eq!(done["counts"]["done"], 3, "{}", done["counts"]);
    let items = done["items"].as_array().unwrap();
    assert_eq!(
        items[0]["answer"], "answered before the restart",
        "not redone"
    );
    assert_eq!(items[1]["attempts"], 2);
    assert!(
        items[1]["branch"].as_str().unwrap().ends_with("-002-r2"),
        "{}",
        items[1]
    );
    assert!(items[2]["answer"].as_str().unwrap().contains("NaCl"));
    let _: &Caller = &alice;
}
