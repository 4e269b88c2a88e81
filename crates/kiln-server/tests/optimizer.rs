//! The optimizer resource over HTTP (`/v1/sessions/{id}/branches/{b}/optimizer/…`) on a real
//! server: every route's success and failures, reads that write no node, CSV upload with a bad
//! row, exclusion, permissions, audit entries, and a merge of two branches' experiments.

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

async fn session(srv: &Server) -> String {
    let (s, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "loop"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn space() -> Value {
    json!({"variables": [
        {"name": "x1", "type": "real", "bounds": [-5, 10], "precision": 0.01, "unit": "mm"},
        {"name": "x2", "type": "real", "bounds": [0, 15], "precision": 0.01}
    ], "objective": {"name": "y", "goal": "minimize"}, "outputs": [{"name": "purity", "unit": "%"}]})
}

fn rows(points: &[(f64, f64)]) -> Value {
    Value::Array(
        points
            .iter()
            .map(|(a, b)| json!({"inputs": {"x1": a, "x2": b}, "output": branin(*a, *b)}))
            .collect(),
    )
}

const START: [(f64, f64); 6] = [
    (-3.0, 12.0),
    (0.0, 5.0),
    (3.0, 3.0),
    (6.0, 9.0),
    (9.0, 2.0),
    (-1.0, 1.0),
];

/// A session whose main branch has a space and the six starting experiments.
async fn ready(srv: &Server) -> (String, String) {
    let id = session(srv).await;
    let base = format!("/v1/sessions/{id}/branches/main/optimizer");
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(space()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            Some(json!({"experiments": rows(&START)})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["result"]["added"], 6);
    (id, base)
}

async fn nodes(srv: &Server) -> i64 {
    srv.mgr.db().node_count().await.unwrap()
}

async fn get_text(srv: &Server, path: &str) -> (StatusCode, String, String) {
    let resp = srv
        .http
        .get(format!("{}{path}", srv.base))
        .bearer_auth(&srv.alice)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let kind = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, resp.text().await.unwrap())
}

async fn post_csv(srv: &Server, path: &str, csv: &str) -> (StatusCode, Value) {
    srv.send(
        srv.http
            .post(format!("{}{path}", srv.base))
            .bearer_auth(&srv.alice)
            .header("content-type", "text/csv")
            .body(csv.to_owned()),
    )
    .await
}

#[tokio::test]
async fn reads_answer_and_write_no_node() {
    let srv = start(1 << 20).await;
    let (_, base) = ready(&srv).await;
    // A suggestion (no body: one EI point) fits and stores the model, so the reads below
    // have one to use.
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/suggest"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(v["result"]["suggestions"].as_array().map(Vec::len), Some(1));
    assert_eq!(s, StatusCode::OK, "{v}");
    let before = nodes(&srv).await;
    let (s, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{status}");
    assert_eq!(status["n_experiments"], 6);
    assert_eq!(status["n_active"], 6);
    assert_eq!(status["model_current"], true);
    assert_eq!(status["outputs"][0]["name"], "purity");
    let (s, list) = srv
        .request(
            Method::GET,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 6);
    assert_eq!(list["items"][0]["number"], 1);
    let (s, p) = srv
        .request(
            Method::GET,
            &format!("{base}/predict?x1=3&x2=3"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    // At a measured point the prediction is close to the measurement.
    let measured = branin(3.0, 3.0);
    assert!(
        (p["mean"].as_f64().unwrap() - measured).abs() < 0.2 * measured.abs().max(1.0),
        "{p}"
    );
    let (s, o) = srv
        .request(
            Method::GET,
            &format!("{base}/optimum"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    let best = START
        .iter()
        .map(|(a, b)| branin(*a, *b))
        .fold(f64::INFINITY, f64::min);
    assert!(o["mean"].as_f64().unwrap() <= best + 1.0, "{o}");
    for chart in [
        "convergence.svg",
        "dependence.svg?variable=x1",
        "map.svg?x=x1&y=x2&grid=10",
        "parity.svg",
    ] {
        let (s, kind, svg) = get_text(&srv, &format!("{base}/plots/{chart}")).await;
        assert_eq!(s, StatusCode::OK, "{chart}: {svg}");
        assert!(kind.starts_with("image/svg+xml"), "{kind}");
        assert!(
            svg.contains("role=\"img\"") && svg.contains("<title>"),
            "{chart}"
        );
    }
    let (_, _, map) = get_text(&srv, &format!("{base}/plots/map.svg?x=x1&y=x2&grid=10")).await;
    assert_eq!(map.matches("<rect").count(), 10 * 10 + 1);
    assert_eq!(nodes(&srv).await, before, "reads wrote nodes");
}

#[tokio::test]
async fn reads_refuse_what_they_cannot_answer() {
    let srv = start(1 << 20).await;
    let id = session(&srv).await;
    let base = format!("/v1/sessions/{id}/branches/main/optimizer");
    // No optimizer yet: 404 naming what to do, for every read and every write but the space.
    for path in [
        "",
        "/experiments",
        "/optimum",
        "/predict?x1=1",
        "/plots/parity.svg",
    ] {
        let (s, v) = srv
            .request(
                Method::GET,
                &format!("{base}{path}"),
                Some(&srv.alice),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path}: {v}");
        assert_eq!(v["error"]["code"], "no_optimizer", "{path}");
    }
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/suggest"),
            Some(&srv.alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_optimizer"))
    );
    // An unknown branch is 404 too.
    let (s, _) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/branches/nope/optimizer"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A space but no experiments: the model reads are 409 `optimizer_not_ready`.
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(space()),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for path in ["/optimum", "/predict?x1=1&x2=1", "/plots/parity.svg"] {
        let (s, v) = srv
            .request(
                Method::GET,
                &format!("{base}{path}"),
                Some(&srv.alice),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{path}: {v}");
        assert_eq!(v["error"]["code"], "optimizer_not_ready", "{path}");
    }
    let (_, base) = ready(&srv).await;
    let cases = [
        ("/predict", StatusCode::BAD_REQUEST),
        ("/predict?x1=3", StatusCode::BAD_REQUEST),
        ("/predict?x1=300&x2=1", StatusCode::BAD_REQUEST),
        ("/predict?x1=1&x2=1&x3=1", StatusCode::BAD_REQUEST),
        ("/plots/dependence.svg", StatusCode::BAD_REQUEST),
        (
            "/plots/dependence.svg?variable=nope",
            StatusCode::BAD_REQUEST,
        ),
        ("/plots/map.svg?x=x1&y=x1", StatusCode::BAD_REQUEST),
        ("/plots/map.svg?x=x1&y=x2&grid=500", StatusCode::BAD_REQUEST),
        ("/plots/pie.svg", StatusCode::NOT_FOUND),
    ];
    for (path, want) in cases {
        let (s, v) = srv
            .request(
                Method::GET,
                &format!("{base}{path}"),
                Some(&srv.alice),
                None,
            )
            .await;
        assert_eq!(s, want, "{path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn writes_are_nodes_on_the_branch_and_refuse_bad_input() {
    let srv = start(1 << 20).await;
    let id = session(&srv).await;
    let base = format!("/v1/sessions/{id}/branches/main/optimizer");
    // Bad bounds, an unknown type, a bad precision: 400 and nothing written.
    let before = nodes(&srv).await;
    for bad in [
        json!({"variables": [{"name": "x", "type": "real", "bounds": [5, 1]}], "objective": {"name": "y", "goal": "max"}}),
        json!({"variables": [{"name": "x", "type": "real", "bounds": [0, 1], "precision": 0}], "objective": {"name": "y", "goal": "max"}}),
        json!({"variables": [{"name": "x", "type": "complex", "bounds": [0, 1]}], "objective": {"name": "y", "goal": "max"}}),
        json!({"variables": [{"name": "x", "type": "real", "bounds": [0, 1]}]}),
        json!({"variables": [{"name": "x", "type": "real", "bounds": [0, 1]}], "objective": {"name": "y", "goal": "max"}, "outputs": [{"name": "x"}]}),
    ] {
        let (s, v) = srv
            .request(
                Method::PUT,
                &format!("{base}/space"),
                Some(&srv.alice),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    assert_eq!(nodes(&srv).await, before);
    let (id, base) = ready(&srv).await;
    let _ = id;
    // A bad row among good ones: 400 with the row, nothing added.
    let mut batch = rows(&[(1.0, 1.0), (2.0, 2.0)]);
    batch
        .as_array_mut()
        .unwrap()
        .push(json!({"inputs": {"x1": 50, "x2": 1}, "output": 1.0}));
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            Some(json!({"experiments": batch})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_experiments");
    assert_eq!(v["error"]["details"]["rows"][0]["row"], 2);
    assert_eq!(v["error"]["details"]["rows"][0]["field"], "x1");
    let (_, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(status["n_experiments"], 6);
    // Suggestions are rounded to each variable's precision and recorded on the branch.
    let before = nodes(&srv).await;
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/suggest"),
            Some(&srv.alice),
            Some(json!({"strategy": "qEI", "q": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(nodes(&srv).await > before, "a suggestion is a node");
    for p in v["result"]["suggestions"].as_array().unwrap() {
        for x in ["x1", "x2"] {
            let value = p["inputs"][x].as_f64().unwrap();
            assert!(
                ((value * 100.0).round() - value * 100.0).abs() < 1e-6,
                "{p}"
            );
        }
    }
    for (body, want) in [
        (json!({"q": 0}), StatusCode::BAD_REQUEST),
        (json!({"strategy": "magic"}), StatusCode::BAD_REQUEST),
        (json!({"unknown": 1}), StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = srv
            .request(
                Method::POST,
                &format!("{base}/suggest"),
                Some(&srv.alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, want, "{body}: {v}");
    }
    // A constraint: the space is redefined (kept experiments fit) and suggestions keep to it.
    let mut constrained = space();
    constrained["constraints"] = json!(["x1 + x2 <= 8"]);
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(constrained),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/suggest"),
            Some(&srv.alice),
            Some(json!({"q": 3})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for p in v["result"]["suggestions"].as_array().unwrap() {
        let sum = p["inputs"]["x1"].as_f64().unwrap() + p["inputs"]["x2"].as_f64().unwrap();
        assert!(sum <= 8.0 + 1e-9, "{p}");
    }
    let mut impossible = space();
    impossible["constraints"] = json!(["x1 + x2 <= -20"]);
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(impossible),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_space"))
    );
    // Lock the acquisition; a lock with nothing named is refused.
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/locks"),
            Some(&srv.alice),
            Some(json!({"what": "acquisition", "notes": "run these"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = srv
        .request(
            Method::POST,
            &format!("{base}/locks"),
            Some(&srv.alice),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn csv_preview_shows_a_bad_row_commit_refuses_skip_invalid_records_the_rest() {
    let srv = start(1 << 20).await;
    let (_, base) = ready(&srv).await;
    let csv = "x1,x2,y,purity\n1.5,2.5,20.1,97\n2,200,5,90\n4.5,7,31.2,\n";
    let before = nodes(&srv).await;
    let (s, v) = post_csv(&srv, &format!("{base}/experiments/csv?preview=true"), csv).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["committed"], false);
    let roles: Vec<&str> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["variable", "variable", "objective", "output"]);
    assert_eq!(v["rows"].as_array().unwrap().len(), 2);
    assert_eq!(v["rows"][0]["experiment"]["outputs"]["purity"], 97.0);
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    assert_eq!(v["errors"][0]["line"], 3);
    assert_eq!(v["errors"][0]["field"], "x2");
    assert_eq!(nodes(&srv).await, before, "a preview writes nothing");
    // Without preview: refused with the row, nothing recorded.
    let (s, v) = post_csv(&srv, &format!("{base}/experiments/csv"), csv).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "invalid_experiments");
    assert_eq!(v["error"]["details"]["rows"][0]["line"], 3);
    assert_eq!(nodes(&srv).await, before);
    // skip_invalid records the two good rows.
    let (s, v) = post_csv(
        &srv,
        &format!("{base}/experiments/csv?skip_invalid=true"),
        csv,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["committed"], true);
    assert_eq!(v["call"]["result"]["added"], 2);
    let (_, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(status["n_experiments"], 8);
    // No usable header, or nothing good: 400.
    let (s, v) = post_csv(&srv, &format!("{base}/experiments/csv"), "a,b\n1,2\n").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = post_csv(
        &srv,
        &format!("{base}/experiments/csv?skip_invalid=true"),
        "x1,x2,y\n99,1,1\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn an_excluded_experiment_stays_in_the_record_and_leaves_the_model() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    // Experiment 2 (0, 5) gets an absurd value, which excluding takes out of the model.
    let (s, v) = srv
        .request(
            Method::PATCH,
            &format!("{base}/experiments/2"),
            Some(&srv.alice),
            Some(json!({"output": -500.0, "reason": "typed wrong"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(status["best"]["output"], -500.0);
    let (s, v) = srv
        .request(
            Method::PATCH,
            &format!("{base}/experiments/2"),
            Some(&srv.alice),
            Some(json!({"exclude": true, "reason": "sensor fault"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(status["n_experiments"], 6);
    assert_eq!(status["n_active"], 5);
    assert_ne!(
        status["best"]["output"], -500.0,
        "the excluded row is not the best"
    );
    let (_, list) = srv
        .request(
            Method::GET,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            None,
        )
        .await;
    let row = &list["items"][1];
    assert_eq!(row["excluded"], "sensor fault");
    assert_eq!(row["output"], -500.0);
    assert_eq!(row["edits"].as_array().unwrap().len(), 2);
    // The model no longer sees it: the parity chart counts five experiments.
    let (_, _, parity) = get_text(&srv, &format!("{base}/plots/parity.svg")).await;
    assert!(parity.contains("Each of the 5 experiments"), "{parity}");
    // Both edits are in the audit log.
    let (_, audit) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit"),
            Some(&srv.alice),
            None,
        )
        .await;
    let kinds: Vec<String> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            e["action"]
                .as_str()
                .or(e["entry_type"].as_str())
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "bayesian_optimizer.experiment")
            .count(),
        2,
        "{audit}"
    );
    assert!(
        kinds.iter().any(|k| k == "bayesian_optimizer.config"),
        "{audit}"
    );
    // Refusals: no such row, no reason, nothing to change.
    for (n, body, want) in [
        (
            "9",
            json!({"exclude": true, "reason": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "0",
            json!({"exclude": true, "reason": "x"}),
            StatusCode::NOT_FOUND,
        ),
        ("2", json!({"exclude": true}), StatusCode::BAD_REQUEST),
        (
            "2",
            json!({"exclude": true, "reason": "again"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "2",
            json!({"inputs": {"x1": 99}, "reason": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "two",
            json!({"exclude": true, "reason": "x"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, v) = srv
            .request(
                Method::PATCH,
                &format!("{base}/experiments/{n}"),
                Some(&srv.alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, want, "{n} {body}: {v}");
    }
}

#[tokio::test]
async fn reads_need_read_and_writes_need_write() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    // Bob sees nothing of alice's session.
    let (s, _) = srv.request(Method::GET, &base, Some(&srv.bob), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": "bob", "permissions": ["read"]})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (s, _) = srv.request(Method::GET, &base, Some(&srv.bob), None).await;
    assert_eq!(s, StatusCode::OK);
    let before = nodes(&srv).await;
    for (method, path, body) in [
        (Method::PUT, "/space", Some(space())),
        (
            Method::POST,
            "/experiments",
            Some(json!({"experiments": rows(&[(1.0, 1.0)])})),
        ),
        (
            Method::PATCH,
            "/experiments/1",
            Some(json!({"exclude": true, "reason": "x"})),
        ),
        (Method::POST, "/suggest", Some(json!({}))),
        (Method::POST, "/locks", Some(json!({"what": "data"}))),
    ] {
        let (s, v) = srv
            .request(
                method.clone(),
                &format!("{base}{path}"),
                Some(&srv.bob),
                body,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    }
    let resp = srv
        .http
        .post(format!("{}{base}/experiments/csv", srv.base))
        .bearer_auth(&srv.bob)
        .body("x1,x2,y\n1,1,1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(nodes(&srv).await, before);
    let (s, _) = srv.request(Method::GET, &base, None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn merging_two_branches_that_each_added_experiments_merges_the_sets() {
    let srv = start(1 << 20).await;
    let (id, main) = ready(&srv).await;
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/branches"),
            Some(&srv.alice),
            Some(json!({"name": "side"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let side = format!("/v1/sessions/{id}/branches/side/optimizer");
    let add = |base: String, pts: Vec<(f64, f64)>| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .request(
                    Method::POST,
                    &format!("{base}/experiments"),
                    Some(&srv.alice),
                    Some(json!({"experiments": rows(&pts)})),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
        }
    };
    add(main.clone(), vec![(2.0, 4.0)]).await;
    add(side.clone(), vec![(7.0, 7.0), (8.0, 1.0)]).await;
    // The side branch also excludes experiment 1, which main left alone.
    let (s, v) = srv
        .request(
            Method::PATCH,
            &format!("{side}/experiments/1"),
            Some(&srv.alice),
            Some(json!({"exclude": true, "reason": "drifted"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/branches/side/merge"),
            Some(&srv.alice),
            Some(json!({"into": "main"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, status) = srv
        .request(Method::GET, &main, Some(&srv.alice), None)
        .await;
    assert_eq!(status["n_experiments"], 9, "6 + 1 + 2: {status}");
    assert_eq!(status["n_excluded"], 1, "the side's exclusion came along");
    let (_, list) = srv
        .request(
            Method::GET,
            &format!("{main}/experiments"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["excluded"], "drifted");
}

#[tokio::test]
async fn derived_variables_show_beside_experiments_and_suggestions() {
    let srv = start(1 << 20).await;
    let (id, base) = ready(&srv).await;
    let _ = id;
    let mut with_derived = space();
    with_derived["derived"] = json!([
        {"name": "sum", "expression": "x1 + x2", "unit": "mm"},
        {"name": "ratio", "expression": "x2 / (x2 + 10)"}
    ]);
    let (s, v) = srv
        .request(
            Method::PUT,
            &format!("{base}/space"),
            Some(&srv.alice),
            Some(with_derived),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Kept the experiments and the model: only derived variables changed.
    let (_, status) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(status["derived"][0]["name"], "sum", "{status}");
    assert_eq!(status["n_experiments"], 6);
    let (_, ex) = srv
        .request(
            Method::GET,
            &format!("{base}/experiments"),
            Some(&srv.alice),
            None,
        )
        .await;
    let first = &ex["items"][0];
    assert_eq!(first["derived"]["sum"], 9.0, "{first}");
    assert_eq!(first["derived"]["ratio"], 0.545455, "{first}");
    let (s, sug) = srv
        .request(
            Method::POST,
            &format!("{base}/suggest"),
            Some(&srv.alice),
            Some(json!({"q": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sug}");
    let text = sug.to_string();
    assert!(text.contains("\"derived\""), "{sug}");
    assert!(text.contains("Derived: 1. ratio"), "{sug}");

    // Bad definitions: a typed 400, and the space is unchanged.
    for (derived, says) in [
        (
            json!([{"name": "x1", "expression": "x2"}]),
            "name of its own",
        ),
        (
            json!([{"name": "d", "expression": "x1 +* 2"}]),
            "not an expression",
        ),
        (
            json!([{"name": "d", "expression": "x1 * pressure"}]),
            "not a real or integer",
        ),
        (
            json!([{"name": "d", "expression": "1 / (x1 - x1)"}]),
            "no finite value",
        ),
    ] {
        let mut body = space();
        body["derived"] = derived.clone();
        let (s, v) = srv
            .request(
                Method::PUT,
                &format!("{base}/space"),
                Some(&srv.alice),
                Some(body),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{derived}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    let (_, after) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_eq!(after["derived"], status["derived"]);
}
