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

/// Server-sent events read from `resp` until `want` holds of them or `within` passes.
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
            let (mut name, mut data) = (String::new(), String::new());
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

/// A request as `who`, with the controller's token when given.
async fn as_with(
    srv: &Server,
    who: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = srv
        .http
        .request(method, format!("{}{path}", srv.base))
        .bearer_auth(who);
    if let Some(t) = token {
        req = req.header("Kiln-Lock-Token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    srv.send(req).await
}

async fn audit_actions(srv: &Server, id: &str) -> Vec<String> {
    let (s, v) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit?entry_type=bayesian_optimizer.controller"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .or(v.as_array())
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_controller_lock_admits_only_its_token_renews_in_place_and_expires() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    let lock = format!("{base}/lock");
    let (s, v) = srv
        .request(Method::GET, &lock, Some(&srv.alice), None)
        .await;
    assert_eq!((s, &v["controller"]), (StatusCode::OK, &Value::Null));
    for bad in [
        json!({"holder": "  "}),
        json!({"holder": "rig", "ttl_seconds": 0}),
        json!({"holder": "rig", "ttl_seconds": 86_401}),
        json!({"ttl_seconds": 60}),
        json!({"holder": "x".repeat(201)}),
    ] {
        let (s, v) = post(&srv, &lock, Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": "bob", "permissions": ["read"]})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, _) = as_with(
        &srv,
        &srv.bob,
        Method::POST,
        &lock,
        None,
        Some(json!({"holder": "bob's rig"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let (s, grant) = post(
        &srv,
        &lock,
        Some(json!({"holder": "robot-1", "ttl_seconds": 60})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    let token = grant["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("kct_") && token.len() == 68, "{token}");
    assert_eq!(grant["holder"], "robot-1");
    // Only the token's hash is stored.
    let (_, hash) = srv.mgr.db().controller(&id, "main").await.unwrap().unwrap();
    assert_eq!(hash, kiln_session::hash_token(&token));
    assert_ne!(hash, token.as_bytes());
    // A second controller is refused, naming the holder and expiry.
    let (s, v) = post(&srv, &lock, Some(json!({"holder": "robot-2"}))).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "optimizer_controlled"),
        "{v}"
    );
    assert_eq!(v["error"]["details"]["holder"], "robot-1");
    assert_eq!(v["error"]["details"]["expires_at"], grant["expires_at"]);

    // Without the token (or with another), nothing changes the optimizer.
    let before = srv.mgr.db().node_count().await.unwrap();
    let row = json!({"experiments": [{"inputs": {"x1": 1, "x2": 2}, "output": branin(1.0, 2.0)}]});
    for t in [None, Some("kct_0000")] {
        for (path, body) in [
            (format!("{base}/experiments"), Some(row.clone())),
            (
                format!("{base}/queue"),
                Some(json!({"points": [{"x1": 1, "x2": 1}]})),
            ),
            (format!("{base}/suggest"), None),
        ] {
            let (s, v) = as_with(&srv, &srv.alice, Method::POST, &path, t, body).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::CONFLICT, "optimizer_controlled"),
                "{path}: {v}"
            );
            assert!(v["error"]["message"].as_str().unwrap().contains("robot-1"));
        }
    }
    let csv = srv
        .http
        .post(format!("{}{base}/experiments/csv", srv.base))
        .bearer_auth(&srv.alice)
        .body("x1,x2,y\n1,1,1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::CONFLICT);
    // The generic tool route is held to the same rule.
    let (s, v) = post(
        &srv,
        &format!("/v1/sessions/{id}/tools/bayesian_optimizer"),
        Some(
            json!({"arguments": {"action": "add_experiments", "experiments": row["experiments"]}}),
        ),
    )
    .await;
    assert!(!s.is_success(), "{v}");
    assert!(v.to_string().contains("robot-1"), "{v}");
    assert_eq!(srv.mgr.db().node_count().await.unwrap(), before);
    // Reads still answer, and name the controller.
    let (s, st) = srv.request(Method::GET, &base, Some(&srv.bob), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(st["controller"]["holder"], "robot-1");
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
        html.contains("Driven by <strong>robot-1</strong> since"),
        "the tab names the controller"
    );

    // With the token, the controller records results.
    let (s, v) = as_with(
        &srv,
        &srv.alice,
        Method::POST,
        &format!("{base}/experiments"),
        Some(&token),
        Some(row),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Renewal moves the expiry and writes neither a node nor an audit entry.
    let nodes = srv.mgr.db().node_count().await.unwrap();
    let audit = audit_actions(&srv, &id).await;
    assert_eq!(audit, ["bayesian_optimizer.controller.acquire"]);
    let renew = format!("{lock}/renew");
    let (s, _) = post(&srv, &renew, Some(json!({"ttl_seconds": 600}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "no token");
    let (s, v) = as_with(
        &srv,
        &srv.alice,
        Method::POST,
        &renew,
        Some("kct_wrong"),
        None,
    )
    .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "optimizer_controlled")
    );
    let (s, v) = as_with(
        &srv,
        &srv.alice,
        Method::POST,
        &renew,
        Some(&token),
        Some(json!({"ttl_seconds": 600})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["expires_at"].as_str().unwrap() > grant["expires_at"].as_str().unwrap());
    assert_eq!(srv.mgr.db().node_count().await.unwrap(), nodes);
    assert_eq!(audit_actions(&srv, &id).await.len(), 1);

    // Release needs the token (or force); it is an audit entry, and then anyone writes.
    let (s, _) = srv
        .request(Method::DELETE, &lock, Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = as_with(&srv, &srv.alice, Method::DELETE, &lock, Some(&token), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = as_with(&srv, &srv.alice, Method::DELETE, &lock, Some(&token), None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "no_controller_lock"));
    let (s, v) = post(
        &srv,
        &format!("{base}/queue"),
        Some(json!({"points": [{"x1": 1, "x2": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A stuck controller's lock can be broken by a writer, on the record.
    let (_, g) = post(&srv, &lock, Some(json!({"holder": "stuck"}))).await;
    assert!(g["token"].is_string(), "{g}");
    let (s, v) = srv
        .request(
            Method::DELETE,
            &format!("{lock}?force=true"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        audit_actions(&srv, &id).await,
        [
            "bayesian_optimizer.controller.acquire",
            "bayesian_optimizer.controller.release",
            "bayesian_optimizer.controller.acquire",
            "bayesian_optimizer.controller.break"
        ]
    );

    // Not renewed, a lock expires: the old token renews nothing and others write again.
    let (_, g) = post(
        &srv,
        &lock,
        Some(json!({"holder": "brief", "ttl_seconds": 1})),
    )
    .await;
    let brief = g["token"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, v) = srv
        .request(Method::GET, &lock, Some(&srv.alice), None)
        .await;
    assert_eq!(v["controller"], Value::Null, "{v}");
    let (s, v) = as_with(&srv, &srv.alice, Method::POST, &renew, Some(&brief), None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "no_controller_lock"));
    let (s, v) = post(
        &srv,
        &format!("{base}/queue"),
        Some(json!({"points": [{"x1": 2, "x2": 1}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // And a new controller takes it, the expired holder named in the record.
    let (s, v) = post(&srv, &lock, Some(json!({"holder": "next"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// A scripted controller runs 20 iterations of suggest → queue → start → complete on Branin
/// while it holds the lock; a second writer is refused; a third client watches the stream and
/// sees the lock taken, the queue moving and the lock released. Status polls write nothing.
#[tokio::test]
async fn a_controller_runs_twenty_iterations_while_others_watch_or_are_refused() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    for (user, perms) in [
        ("bob", json!(["read"])),
        ("writer", json!(["read", "write"])),
    ] {
        let (s, v) = srv
            .request(
                Method::POST,
                &format!("/v1/sessions/{id}/collaborators"),
                Some(&srv.alice),
                Some(json!({"user": user, "permissions": perms})),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let mut watch = srv
        .http
        .get(format!(
            "{}/v1/sessions/{id}/events/stream?max_seconds=120",
            srv.base
        ))
        .bearer_auth(&srv.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), StatusCode::OK);
    let first = sse_until(&mut watch, std::time::Duration::from_secs(5), |e| {
        !e.is_empty()
    })
    .await;
    assert_eq!(first[0].0, "snapshot");

    let (s, grant) = post(
        &srv,
        &format!("{base}/lock"),
        Some(json!({"holder": "branin-rig", "ttl_seconds": 120})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{grant}");
    let token = grant["token"].as_str().unwrap().to_owned();
    let t = Some(token.as_str());
    let writer = srv.users["writer"].clone();
    let mut best = f64::INFINITY;
    for i in 0..20 {
        let (s, v) = as_with(
            &srv,
            &srv.alice,
            Method::POST,
            &format!("{base}/suggest"),
            t,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "iteration {i}: {v}");
        let (s, v) = as_with(
            &srv,
            &srv.alice,
            Method::POST,
            &format!("{base}/queue"),
            t,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "iteration {i}: {v}");
        let entry = v["result"]["queued"][0].clone();
        let q = entry["id"].as_str().unwrap().to_owned();
        let (s, v) = as_with(
            &srv,
            &srv.alice,
            Method::POST,
            &format!("{base}/queue/{q}/start"),
            t,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (x1, x2) = (
            num(&entry["suggested"]["x1"]),
            num(&entry["suggested"]["x2"]),
        );
        let y = branin(x1, x2);
        best = best.min(y);
        let (s, v) = as_with(
            &srv,
            &srv.alice,
            Method::POST,
            &format!("{base}/queue/{q}/complete"),
            t,
            Some(json!({"output": y})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if i == 5 {
            // Another writer, without the token, is refused mid-campaign.
            let (s, v) = as_with(
                &srv,
                &writer,
                Method::POST,
                &format!("{base}/experiments"),
                None,
                Some(json!({"experiments": [{"inputs": {"x1": 0, "x2": 0}, "output": 55.6}]})),
            )
            .await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::CONFLICT, "optimizer_controlled"),
                "{v}"
            );
            // A polled status writes no node.
            let before = srv.mgr.db().node_count().await.unwrap();
            for _ in 0..3 {
                let (s, st) = srv.request(Method::GET, &base, Some(&srv.bob), None).await;
                assert_eq!(s, StatusCode::OK);
                assert_eq!(st["controller"]["holder"], "branin-rig");
            }
            assert_eq!(srv.mgr.db().node_count().await.unwrap(), before);
        }
    }
    let (s, v) = as_with(
        &srv,
        &srv.alice,
        Method::DELETE,
        &format!("{base}/lock"),
        t,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(st["n_experiments"], 24, "4 to start + 20 from the queue");
    let done = st["queue"].as_array().unwrap();
    assert_eq!(done.len(), 20);
    assert!(done.iter().all(|q| q["status"] == "done"));
    assert!(
        st["provenance"].as_array().unwrap()[4..]
            .iter()
            .all(|p| p["source"] == "queue")
    );
    // Branin's minimum is 0.398; twenty model-guided runs come close.
    assert!(best < 2.0, "best {best}");
    // The watcher saw the lock taken and given up, and the queue move.
    let seen = sse_until(&mut watch, std::time::Duration::from_secs(10), |e| {
        let audit = |a: &str| {
            e.iter()
                .any(|(n, d)| n == "audit" && d.to_string().contains(a))
        };
        audit("controller.acquire")
            && audit("controller.release")
            && e.iter()
                .filter(|(n, d)| n == "nodes" && d.to_string().contains("completed q"))
                .count()
                >= 1
    })
    .await;
    let acquired = seen
        .iter()
        .find(|(n, d)| n == "audit" && d.to_string().contains("controller.acquire"))
        .expect("the lock taken was seen");
    assert_eq!(
        acquired.1["entries"][0]["payload"]["holder"], "branin-rig",
        "{acquired:?}"
    );
    assert_eq!(acquired.1["entries"][0]["actor"], "alice");
    assert!(
        seen.iter()
            .any(|(n, d)| n == "audit" && d.to_string().contains("controller.release")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(n, d)| n == "nodes" && d.to_string().contains("queued 1 experiment")),
        "the queue's changes are seen"
    );
}

fn lock_call(id: &str, args: Value) -> kiln_llm::ChatResponse {
    kiln_llm::ScriptedModel::tool_calls(vec![kiln_llm::ToolCall::new(
        id,
        "bayesian_optimizer",
        &args,
    )])
}

async fn audit_of(srv: &Server, id: &str, entry_type: &str) -> Vec<Value> {
    let (s, v) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit?entry_type={entry_type}"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"].as_array().or(v.as_array()).unwrap().clone()
}

/// The model may only propose a lock (by default); a person confirms or rejects it over HTTP;
/// a session can let the model's locks through; acquisition locks record points chosen
/// outside; a change of bounds is audited.
#[tokio::test]
async fn the_model_proposes_locks_and_a_person_confirms_them() {
    use kiln_llm::ScriptedModel;
    let model = ScriptedModel::new([
        lock_call(
            "c1",
            json!({"action": "lock", "what": "data", "notes": "six runs look clean"}),
        ),
        ScriptedModel::text("I proposed locking the data."),
        // After each answer the agent asks the model once more (findings to record).
        ScriptedModel::text("[]"),
        lock_call(
            "c2",
            json!({"action": "confirm_lock", "proposal": "pwhatever"}),
        ),
        ScriptedModel::text("I cannot confirm it myself."),
        // After each answer the agent asks the model once more (findings to record).
        ScriptedModel::text("[]"),
        lock_call("c3", json!({"action": "lock", "what": "data"})),
        ScriptedModel::text("Proposed again."),
        // After each answer the agent asks the model once more (findings to record).
        ScriptedModel::text("[]"),
        lock_call(
            "c4",
            json!({"action": "lock", "what": "data", "notes": "straight in"}),
        ),
        ScriptedModel::text("Locked."),
        // After each answer the agent asks the model once more (findings to record).
        ScriptedModel::text("[]"),
    ]);
    let srv = support::start_with_model(1 << 20, std::sync::Arc::new(model.clone())).await;
    let (id, base) = ready(&srv).await;
    let ask = |text: &'static str| {
        let srv = &srv;
        let id = id.clone();
        async move {
            let (s, v) = post(
                srv,
                &format!("/v1/sessions/{id}/query"),
                Some(json!({"message": text})),
            )
            .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v
        }
    };
    ask("lock the data").await;
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(
        st["locks"].as_array().unwrap().len(),
        0,
        "not locked yet: {st}"
    );
    let proposals = st["proposals"].as_array().unwrap();
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0]["what"], "data");
    let p = proposals[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        audit_of(&srv, &id, "bayesian_optimizer.lock_proposed")
            .await
            .len(),
        1
    );
    assert!(
        audit_of(&srv, &id, "bayesian_optimizer.lock")
            .await
            .is_empty()
    );

    // The model cannot settle it itself.
    let refused = ask("confirm it").await;
    assert!(
        refused["tool_calls"].to_string().contains("only a person")
            || !refused.to_string().is_empty()
    );
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(st["proposals"].as_array().unwrap().len(), 1);

    // A reader cannot confirm; an unknown proposal is 404; the tab offers Confirm.
    let (s, _) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": "bob", "permissions": ["read"]})),
        )
        .await;
    assert!(s.is_success());
    let (s, _) = as_with(
        &srv,
        &srv.bob,
        Method::POST,
        &format!("{base}/locks/{p}/confirm"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = post(&srv, &format!("{base}/locks/pnothere00/confirm"), None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "no_such_proposal"),
        "{v}"
    );
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
        html.contains(&format!("data-confirm-lock=\"{p}\"")),
        "Confirm offered"
    );

    // Alice confirms: a lock of the iteration, audited with her as the actor.
    let (s, v) = post(
        &srv,
        &format!("{base}/locks/{p}/confirm"),
        Some(json!({"notes": "checked the balance"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(st["locks"].as_array().unwrap().len(), 1);
    assert_eq!(
        st["locks"][0]["notes"],
        "six runs look clean\nchecked the balance"
    );
    assert!(st["proposals"].as_array().unwrap().is_empty());
    let locks = audit_of(&srv, &id, "bayesian_optimizer.lock").await;
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["payload"]["confirmed_proposal"], p.as_str());
    let (s, v) = post(&srv, &format!("{base}/locks/{p}/confirm"), None).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::NOT_FOUND, "no_such_proposal"),
        "settled once: {v}"
    );

    // A second proposal is rejected, with a reason.
    let answer = ask("lock again").await;
    let (_, msgs) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/branches/main/messages?limit=6"),
            Some(&srv.alice),
            None,
        )
        .await;
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    let p2 = st["proposals"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer} {msgs}"))
        .to_owned();
    let (s, _) = post(&srv, &format!("{base}/locks/{p2}/reject"), Some(json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = post(
        &srv,
        &format!("{base}/locks/{p2}/reject"),
        Some(json!({"reason": "nothing new since"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        audit_of(&srv, &id, "bayesian_optimizer.lock_rejected")
            .await
            .len(),
        1
    );

    // A session that lets the model lock records its lock at once.
    let (s, v) = srv
        .request(
            Method::PATCH,
            &format!("/v1/sessions/{id}"),
            Some(&srv.alice),
            Some(json!({"metadata": {"optimizer": {"confirm_locks": false}}})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    ask("lock it yourself").await;
    let (_, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(st["locks"].as_array().unwrap().len(), 2, "{st}");
    assert!(st["proposals"].as_array().unwrap().is_empty());
    assert_eq!(model.remaining(), 0);

    // An acquisition lock records points chosen outside Kiln; a bad one is refused.
    let (s, v) = post(
        &srv,
        &format!("{base}/locks"),
        Some(json!({"what": "acquisition", "points": [{"x1": 99, "x2": 1}]})),
    )
    .await;
    assert!(s.is_client_error(), "{v}");
    let (s, v) = post(&srv, &format!("{base}/locks"), Some(json!({"what": "acquisition", "notes": "chosen by the chemist", "points": [{"x1": 2.5, "x2": 7}]}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["strategy"], "external");
    assert_eq!(v["result"]["points"][0]["inputs"]["x1"], 2.5);

    // A change of bounds is a configuration change on the record.
    let before = audit_of(&srv, &id, "bayesian_optimizer.config").await.len();
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(json!({"variables": [
                {"name": "x1", "type": "real", "bounds": [-5, 12], "precision": 0.01},
                {"name": "x2", "type": "real", "bounds": [0, 15], "precision": 0.01}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let config = audit_of(&srv, &id, "bayesian_optimizer.config").await;
    assert_eq!(config.len(), before + 1);
    assert!(
        config.last().unwrap()["payload"]["space"]["after"]
            .to_string()
            .contains("12")
    );
}

/// The audit record: Markdown and JSON from one read, with the space, the data (suggested
/// versus actual, status, exclusions), decisions by iteration with who and when, and the
/// chain's verification; it writes nothing; an unknown format is 400.
#[tokio::test]
async fn the_audit_record_exports_as_markdown_and_json() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    post(&srv, &format!("{base}/suggest"), None).await;
    let (_, v) = post(&srv, &format!("{base}/queue"), None).await;
    let q = v["result"]["queued"][0]["id"].as_str().unwrap().to_owned();
    let (s, v) = post(
        &srv,
        &format!("{base}/queue/{q}/complete"),
        Some(json!({"output": 3.25, "inputs": {"x1": 1.5}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .request(
            Method::PATCH,
            &format!("{base}/experiments/2"),
            Some(&srv.alice),
            Some(json!({"exclude": true, "reason": "thermocouple drift"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &srv,
        &format!("{base}/locks"),
        Some(json!({"what": "data", "notes": "all runs in"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &srv,
        &format!("{base}/locks"),
        Some(json!({"what": "acquisition", "points": [{"x1": 2, "x2": 3}]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let before = srv.mgr.db().node_count().await.unwrap();
    let resp = srv
        .http
        .get(format!(
            "{}/v1/sessions/{id}/audit/export?format=markdown",
            srv.base
        ))
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
    let md = resp.text().await.unwrap();
    for want in [
        "# Audit record: queue",
        "## Search space",
        "| x1 | real | [-5, 10]",
        "Objective: minimize **y**",
        "## Data",
        "outside the queue",
        &format!("queue {q} (EI)"),
        "thermocouple drift",
        "## Decisions by iteration",
        "### Iteration 1",
        "- **data** locked by alice at ",
        "— all runs in",
        "- **acquisition** locked by alice",
        "1 point(s) by external: x1 = 2, x2 = 3",
        "## Audit chain",
        "the hash chain is intact",
        "bayesian_optimizer.lock",
    ] {
        assert!(md.contains(want), "missing {want:?} in\n{md}");
    }
    // The queued run's suggested and actual inputs both show.
    let row = md
        .lines()
        .find(|l| l.contains(&format!("queue {q}")))
        .unwrap();
    assert!(
        row.contains("x1 = 1.5") && row.matches("x1 = ").count() == 2,
        "{row}"
    );

    let (s, j) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit/export?format=json"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    assert_eq!(j["session"]["name"], "queue");
    assert_eq!(j["session"]["owner"], "alice");
    assert_eq!(j["verification"]["valid"], true);
    let data = j["data"].as_array().unwrap();
    assert_eq!(data.len(), 5);
    assert_eq!(data[1]["status"], "excluded");
    assert_eq!(data[4]["source"], "queue");
    assert_eq!(data[4]["actual"]["x1"], 1.5);
    assert_eq!(j["iterations"][0]["decisions"][0]["actor"], "alice");
    assert_eq!(j["iterations"][0]["decisions"][1]["what"], "acquisition");
    assert_eq!(
        srv.mgr.db().node_count().await.unwrap(),
        before,
        "an export writes nothing"
    );

    let (s, v) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit/export?format=pdf"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("markdown or json")
    );
    let (s, _) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit/export?format=json"),
            Some(&srv.bob),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a stranger learns nothing");
    let (s, _) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit/export?branch=nope"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

const ALCHEMIST: &str = include_str!("../../../tests/fixtures/alchemist/suzuki_session.json");

async fn import_alchemist(srv: &Server, body: &str) -> (StatusCode, Value) {
    srv.send(
        srv.http
            .post(format!("{}/v1/sessions/import?format=alchemist", srv.base))
            .bearer_auth(&srv.alice)
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

/// An ALchemist session file becomes a Kiln session: space, experiments with their iteration
/// and reason, the staged queue, the data and acquisition locks, and every audit entry in
/// Kiln's chain marked imported with ALchemist's hash kept; what does not map is listed.
#[tokio::test]
async fn an_alchemist_session_imports_with_its_queue_locks_and_audit() {
    let srv = start(1 << 20).await;
    let (s, v) = import_alchemist(&srv, ALCHEMIST).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["name"], "Suzuki coupling screen");
    assert_eq!(v["tags"], json!(["catalysis", "suzuki"]));
    assert_eq!(v["metadata"]["alchemist"]["author"], "J. Researcher");
    let dropped = v["metadata"]["alchemist"]["dropped"].as_array().unwrap();
    assert_eq!(
        dropped.len(),
        2,
        "the botorch model and its lock: {dropped:?}"
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/sessions/{id}/branches/main/optimizer");
    let (s, st) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{st}");
    assert_eq!(st["space"].as_array().unwrap().len(), 4);
    assert_eq!(st["space"][2]["type"], "integer");
    assert_eq!(
        st["objective"],
        json!({"name": "yield", "goal": "maximize", "unit": "%"})
    );
    assert_eq!(st["n_experiments"], 8);
    assert_eq!(st["best"]["output"], 71.8);
    let prov = st["provenance"].as_array().unwrap();
    assert_eq!(prov[5]["source"], "queue");
    assert_eq!(prov[5]["strategy"], "Expected Improvement");
    assert_eq!(prov[5]["iteration"], 1);
    assert_eq!(prov[7]["source"], "outside_queue", "a manual row");
    let waiting: Vec<&Value> = st["queue"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["status"] == "queued")
        .collect();
    assert_eq!(waiting.len(), 2);
    assert_eq!(waiting[0]["strategy"], "qEI");
    assert_eq!(waiting[0]["suggested"]["solvent"], "DMF");
    let locks = st["locks"].as_array().unwrap();
    let what: Vec<&str> = locks.iter().map(|l| l["what"].as_str().unwrap()).collect();
    assert_eq!(what, ["data", "acquisition", "data"]);
    assert_eq!(locks[1]["iteration"], 1);
    assert_eq!(locks[2]["iteration"], 2);
    assert_eq!(st["iteration"], 2);
    // The audit entries, in Kiln's chain, marked imported, ALchemist's hash kept.
    let imported = audit_of(&srv, &id, "alchemist").await;
    assert_eq!(imported.len(), 4);
    assert_eq!(imported[0]["action"], "alchemist.data_locked");
    assert_eq!(imported[0]["payload"]["imported"], true);
    assert_eq!(imported[0]["payload"]["original_hash"], "c41f0e8a2b97d356");
    assert_eq!(imported[1]["action"], "alchemist.model_locked");
    assert_eq!(
        imported[2]["payload"]["timestamp"],
        "2025-11-03T10:07:09.611730"
    );
    let (_, verify) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit/verify"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(verify["valid"], true, "{verify}");

    // Refusals: not JSON, not a session file, a bad variable, an unknown format.
    for bad in [
        "not json".to_owned(),
        json!({"metadata": {"name": "x"}}).to_string(),
        json!({"search_space": {"variables": [{"name": "t", "type": "real", "min": 5, "max": 1}]}})
            .to_string(),
        json!({"search_space": {"variables": [{"name": "t", "type": "real", "min": 0, "max": 1}]},
               "experiments": {"data": [{"t": 0.5}]}})
        .to_string(),
    ] {
        let (s, v) = import_alchemist(&srv, &bad).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::BAD_REQUEST, "invalid_alchemist"),
            "{bad}: {v}"
        );
    }
    let (s, v) = srv
        .send(
            srv.http
                .post(format!("{}/v1/sessions/import?format=excel", srv.base))
                .bearer_auth(&srv.alice)
                .body("{}"),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// Kiln → ALchemist → Kiln gives the same optimizer state for what both can express: space,
/// objective, experiments, waiting queue, locks, model and last suggestions.
#[tokio::test]
async fn an_optimizer_round_trips_through_alchemist() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    post(
        &srv,
        &format!("{base}/suggest"),
        Some(json!({"strategy": "qEI", "q": 2})),
    )
    .await;
    let (_, v) = post(&srv, &format!("{base}/queue"), None).await;
    let q = v["result"]["queued"][0]["id"].as_str().unwrap().to_owned();
    post(
        &srv,
        &format!("{base}/queue/{q}/complete"),
        Some(json!({"output": 2.5, "noise": 0.1})),
    )
    .await;
    post(
        &srv,
        &format!("{base}/locks"),
        Some(json!({"what": "model", "notes": "fit checked"})),
    )
    .await;
    post(&srv, &format!("{base}/suggest"), None).await;
    post(
        &srv,
        &format!("{base}/locks"),
        Some(json!({"what": "acquisition"})),
    )
    .await;
    let (s, file) = srv
        .request(
            Method::GET,
            &format!("{base}/export?format=alchemist"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{file}");
    assert_eq!(file["experiments"]["data"][4]["Reason"], "qEI");
    assert_eq!(file["experiments"]["data"][4]["Iteration"], 1);
    assert_eq!(file["experiments"]["data"][0]["Reason"], "Manual");
    assert_eq!(file["staged_experiments"].as_array().unwrap().len(), 1);
    let entries = file["audit_log"]["entries"].as_array().unwrap();
    assert_eq!(entries[0]["entry_type"], "model_locked");
    assert_eq!(entries[0]["hash"].as_str().unwrap().len(), 16);
    assert!(
        !entries[0]["timestamp"].as_str().unwrap().is_empty(),
        "time from Kiln's chain"
    );

    let (s, v) = import_alchemist(&srv, &file.to_string()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["metadata"]["alchemist"]["dropped"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{v}"
    );
    let state = |sid: String| {
        let srv = &srv;
        async move {
            let (_, v) = srv
                .request(
                    Method::GET,
                    &format!("/v1/sessions/{sid}/branches/main/state"),
                    Some(&srv.alice),
                    None,
                )
                .await;
            v["tools"]["bayesian_optimizer"].clone()
        }
    };
    let (a, b) = (
        state(id.clone()).await,
        state(v["id"].as_str().unwrap().to_owned()).await,
    );
    for key in ["space", "objective", "locks", "model", "last_suggestions"] {
        assert_eq!(a[key], b[key], "{key} differs");
    }
    let rows = |s: &Value| -> Vec<Value> {
        s["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| json!([e["inputs"], e["output"], e["noise"], e["outputs"]]))
            .collect()
    };
    assert_eq!(rows(&a), rows(&b));
    let waiting = |s: &Value| -> Vec<Value> {
        s["queue"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|q| q["status"] == "queued")
            .map(|q| json!([q["iteration"], q["strategy"], q["suggested"]]))
            .collect()
    };
    assert_eq!(waiting(&a), waiting(&b));
    assert_eq!(waiting(&a).len(), 1);
    // The imported rows keep where they came from.
    assert!(b["experiments"][4]["queued"].is_string());

    let (s, _) = srv
        .request(
            Method::GET,
            &format!("{base}/export?format=csv"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, v) = post(&srv, "/v1/sessions", Some(json!({"name": "empty"}))).await;
    let (s, v) = srv
        .request(
            Method::GET,
            &format!(
                "/v1/sessions/{}/branches/main/optimizer/export?format=alchemist",
                v["id"].as_str().unwrap()
            ),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "no_optimizer"));
}
