//! The optimizer's experiment queue over HTTP on a real server (`…/optimizer/queue`, start,
//! complete, fail): provenance, suggested versus actual, each refusal, reads that write no
//! node, permissions, and merging two branches' queues.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

fn branin(x1: f64, x2: f64) -> f64 {
    let pi = std::f64::consts::PI;
    let b = 5.1 / (4.0 * pi * pi);
    let c = 5.0 / pi;
    (x2 - b * x1 * x1 + c * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x1.cos() + 10.0
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// A session with a Branin space on main and four starting experiments.
async fn ready(srv: &Server) -> (String, String) {
    let (s, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "queue"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/sessions/{id}/branches/main/optimizer");
    let (s, v) = srv
        .request(
            Method::GET,
            &format!("{base}/queue"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_optimizer"))
    );
    let space = json!({"variables": [
        {"name": "x1", "type": "real", "bounds": [-5, 10], "precision": 0.01},
        {"name": "x2", "type": "real", "bounds": [0, 15], "precision": 0.01}
    ], "objective": {"name": "y", "goal": "minimize"}});
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(space),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let rows: Vec<Value> = [(-3.0, 12.0), (0.0, 5.0), (3.0, 3.0), (9.0, 2.0)]
        .iter()
        .map(|(a, b)| json!({"inputs": {"x1": a, "x2": b}, "output": branin(*a, *b)}))
        .collect();
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            Some(json!({"experiments": rows})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (id, base)
}

async fn post(srv: &Server, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    srv.request(Method::POST, path, Some(&srv.alice), body)
        .await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_suggestion_is_queued_run_and_recorded_with_its_provenance() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    let (s, v) = post(&srv, &format!("{base}/queue"), None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "optimizer_not_ready"),
        "no suggestions yet: {v}"
    );
    let (s, v) = post(
        &srv,
        &format!("{base}/suggest"),
        Some(json!({"strategy": "qEI", "q": 2, "kernel": "rbf"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(&srv, &format!("{base}/queue"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["queued"].as_array().unwrap().len(), 2);
    // Queueing again skips what is queued.
    let (_, v) = post(&srv, &format!("{base}/queue"), None).await;
    assert_eq!(v["result"]["skipped"], 2, "{v}");

    // Reading the queue writes nothing and shows the provenance.
    let before = srv.mgr.db().node_count().await.unwrap();
    let (s, q) = srv
        .request(
            Method::GET,
            &format!("{base}/queue"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(srv.mgr.db().node_count().await.unwrap(), before);
    let items = q["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for item in items {
        assert_eq!(
            (
                &item["iteration"],
                &item["strategy"],
                &item["kernel"],
                &item["status"]
            ),
            (&json!(1), &json!("qEI"), &json!("rbf"), &json!("queued"))
        );
        assert!(item["predicted_mean"].is_number() && item["acquisition"].is_object());
    }
    let (a, b) = (
        items[0]["id"].as_str().unwrap(),
        items[1]["id"].as_str().unwrap(),
    );
    let at = |q: &str, op: &str| format!("{base}/queue/{q}/{op}");

    // Start; starting again, or an unknown entry, is refused with a typed error.
    let (s, v) = post(&srv, &at("qnothere00", "start"), None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "no_such_queued"));
    let (s, v) = post(&srv, &at(a, "start"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(&srv, &at(a, "start"), None).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "queue_state"), "{v}");

    // Complete: the body needs an output, inputs inside the space; the actual x1 differs.
    let (s, v) = post(&srv, &at(a, "complete"), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post(
        &srv,
        &at(a, "complete"),
        Some(json!({"output": 1.0, "inputs": {"x1": 99}})),
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_experiments"),
        "{v}"
    );
    let suggested = items[0]["suggested"].clone();
    let x1 = (num(&suggested["x1"]) + 0.05).min(10.0);
    let y = branin(x1, num(&suggested["x2"]));
    let (s, v) = post(
        &srv,
        &at(a, "complete"),
        Some(json!({"output": y, "inputs": {"x1": x1}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["experiment"], 5);
    let (s, v) = post(&srv, &at(a, "complete"), Some(json!({"output": y}))).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "queue_state"));

    // Fail needs a reason; a failed entry cannot be failed or completed again.
    let (s, _) = post(&srv, &at(b, "fail"), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = post(
        &srv,
        &at(b, "fail"),
        Some(json!({"reason": "pump clogged"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(&srv, &at(b, "complete"), Some(json!({"output": 3.0}))).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "queue_state"));
    let (s, v) = post(&srv, &at(b, "fail"), Some(json!({"reason": "again"}))).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "queue_state"));

    // A point chosen by hand is queued as manual; one outside the space is refused.
    let (s, v) = post(
        &srv,
        &format!("{base}/queue"),
        Some(json!({"points": [{"x1": 20, "x2": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post(
        &srv,
        &format!("{base}/queue"),
        Some(json!({"points": [{"x1": 1, "x2": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["queued"][0]["strategy"], "manual");

    // Status: the queue, and suggested versus actual for every experiment.
    let before = srv.mgr.db().node_count().await.unwrap();
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(srv.mgr.db().node_count().await.unwrap(), before);
    let statuses: Vec<&str> = st["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["done", "failed", "queued"]);
    assert_eq!(st["queue"][1]["reason"], "pump clogged");
    let prov = st["provenance"].as_array().unwrap();
    assert_eq!(prov.len(), 5);
    assert!(prov[..4].iter().all(|p| p["source"] == "outside_queue"));
    assert_eq!(prov[4]["source"], "queue");
    assert_eq!(prov[4]["queued"], a);
    assert_eq!(prov[4]["suggested"], suggested);
    assert_eq!(num(&prov[4]["actual"]["x1"]), x1);
    let (_, list) = srv
        .request(
            Method::GET,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(list["items"][4]["source"], "queue");
    assert_eq!(list["items"][4]["queued"], a);
    assert_eq!(list["items"][0]["suggested"], Value::Null);

    // The page's optimizer tab shows the queue and the provenance columns.
    let html = srv
        .http
        .get(format!("{}/web/sessions/{id}/optimizer", srv.base))
        .header("cookie", format!("kiln_token={}", srv.alice))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Queue (3 entries)"),
        "queue table on the page"
    );
    assert!(html.contains("pump clogged"));
    assert!(html.contains("outside the queue"));
}

#[tokio::test]
async fn a_reader_cannot_change_the_queue() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    post(&srv, &format!("{base}/suggest"), None).await;
    let (_, v) = post(&srv, &format!("{base}/queue"), None).await;
    let q = v["result"]["queued"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": "bob", "permissions": ["read"]})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let before = srv.mgr.db().node_count().await.unwrap();
    for (path, body) in [
        ("/queue".to_owned(), None),
        (format!("/queue/{q}/start"), None),
        (format!("/queue/{q}/complete"), Some(json!({"output": 1.0}))),
        (format!("/queue/{q}/fail"), Some(json!({"reason": "no"}))),
    ] {
        let (s, v) = srv
            .request(Method::POST, &format!("{base}{path}"), Some(&srv.bob), body)
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }
    assert_eq!(srv.mgr.db().node_count().await.unwrap(), before);
    let (s, v) = srv
        .request(Method::GET, &format!("{base}/queue"), Some(&srv.bob), None)
        .await;
    assert_eq!(s, StatusCode::OK, "a reader reads the queue: {v}");
}

#[tokio::test]
async fn merging_two_branches_unions_their_queues_and_conflicts_on_an_entry_settled_differently() {
    let srv = start(1 << 20).await;
    let (id, main) = ready(&srv).await;
    post(
        &srv,
        &format!("{main}/suggest"),
        Some(json!({"strategy": "qEI", "q": 2})),
    )
    .await;
    let (_, v) = post(&srv, &format!("{main}/queue"), None).await;
    let shared: Vec<String> = v["result"]["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect();
    let (s, v) = post(
        &srv,
        &format!("/v1/sessions/{id}/branches"),
        Some(json!({"name": "side"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let side = format!("/v1/sessions/{id}/branches/side/optimizer");
    // Each branch queues and completes a point of its own; the side also runs the first
    // shared entry, which main leaves alone.
    for (base, point) in [(&main, (1.0, 1.0)), (&side, (2.0, 2.0))] {
        let (_, v) = post(
            &srv,
            &format!("{base}/queue"),
            Some(json!({"points": [{"x1": point.0, "x2": point.1}]})),
        )
        .await;
        let q = v["result"]["queued"][0]["id"].as_str().unwrap().to_owned();
        let (s, v) = post(
            &srv,
            &format!("{base}/queue/{q}/complete"),
            Some(json!({"output": branin(point.0, point.1)})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (s, v) = post(
        &srv,
        &format!("{side}/queue/{}/complete", shared[0]),
        Some(json!({"output": 7.5})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let merge = format!("/v1/sessions/{id}/branches/side/merge");
    let (s, v) = post(&srv, &merge, Some(json!({"into": "main"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = srv
        .request(Method::GET, &main, Some(&srv.alice), None)
        .await;
    assert_eq!(
        st["n_experiments"], 7,
        "4 + one per branch + the shared entry: {st}"
    );
    let queue = st["queue"].as_array().unwrap();
    assert_eq!(queue.len(), 4, "two shared, one per branch");
    let first = queue
        .iter()
        .find(|q| q["id"] == shared[0].as_str())
        .unwrap();
    assert_eq!(first["status"], "done", "the side's run came along");

    // Now the second shared entry is completed on main and failed on the side: a conflict
    // a person settles.
    let (_, v) = post(
        &srv,
        &format!("{main}/queue/{}/complete", shared[1]),
        Some(json!({"output": 9.0})),
    )
    .await;
    assert!(v["result"].is_object(), "{v}");
    let (_, v) = post(
        &srv,
        &format!("{side}/queue/{}/fail", shared[1]),
        Some(json!({"reason": "spilled"})),
    )
    .await;
    assert!(v["result"].is_object(), "{v}");
    let (s, v) = post(&srv, &merge, Some(json!({"into": "main"}))).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "merge_conflict"),
        "{v}"
    );
    let keys: Vec<&str> = v["error"]["details"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [format!("tools.bayesian_optimizer.queue.{}", shared[1])]
    );
}
