//! Merges over HTTP with per-conflict resolutions, the merge preview that writes nothing, the
//! diff in words between branches and checkpoints, and the diff page, on a real listener at
//! 127.0.0.1:0 with a real SQLite file.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

async fn post(s: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    s.request(Method::POST, path, Some(&s.alice), Some(body))
        .await
}

async fn get(s: &Server, path: &str) -> (StatusCode, Value) {
    s.request(Method::GET, path, Some(&s.alice), None).await
}

/// A session whose `sodium` branch and `main` both changed one hypothesis and two pins since
/// they forked (three conflicts), with a checkpoint `fork` at the fork point.
async fn conflicted(s: &Server) -> String {
    let (st, v) = post(s, "/v1/sessions", json!({"name": "merge"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let base = format!("/v1/sessions/{id}");
    let ev = |b: &str, e: Value| {
        let path = format!("{base}/branches/{b}/events");
        async move {
            let (st, v) = post(s, &path, e).await;
            assert_eq!(st, StatusCode::CREATED, "{v}");
        }
    };
    ev(
        "main",
        json!({"kind": "hypothesis", "id": "h1", "statement": "Na on the Li site keeps the olivine"}),
    )
    .await;
    ev(
        "main",
        json!({"kind": "context_pin", "key": "anneal", "value": 600}),
    )
    .await;
    ev(
        "main",
        json!({"kind": "context_pin", "key": "atmosphere", "value": "Ar"}),
    )
    .await;
    let (st, v) = post(
        s,
        &format!("{base}/checkpoints"),
        json!({"name": "fork", "branch": "main"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = post(s, &format!("{base}/branches"), json!({"name": "sodium"})).await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let h = |status: &str| json!({"kind": "hypothesis", "id": "h1", "statement": "Na on the Li site keeps the olivine", "status": status});
    ev("main", h("supported")).await;
    ev("sodium", h("refuted")).await;
    ev(
        "main",
        json!({"kind": "context_pin", "key": "anneal", "value": 650}),
    )
    .await;
    ev(
        "sodium",
        json!({"kind": "context_pin", "key": "anneal", "value": 700}),
    )
    .await;
    ev(
        "main",
        json!({"kind": "context_pin", "key": "atmosphere", "value": "N2"}),
    )
    .await;
    ev(
        "sodium",
        json!({"kind": "context_pin", "key": "atmosphere", "value": "air"}),
    )
    .await;
    ev("sodium", json!({"kind": "material", "formula": "NaFePO4"})).await;
    let (st, _) = post(
        s,
        &format!("{base}/branches/sodium/messages"),
        json!({"role": "user", "content": "Try sodium"}),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    id
}

/// Counts of what a merge writes: nodes on main's path, audit entries, reflog entries.
async fn written(s: &Server, id: &str) -> (usize, usize, usize, Value) {
    let base = format!("/v1/sessions/{id}");
    let (_, msgs) = get(s, &format!("{base}/branches/main/messages?limit=100")).await;
    let (_, audit) = get(s, &format!("{base}/audit")).await;
    let (_, reflog) = get(s, &format!("{base}/reflog")).await;
    let (_, branches) = get(s, &format!("{base}/branches?all=true")).await;
    (
        msgs["items"].as_array().unwrap().len(),
        audit["items"].as_array().unwrap().len(),
        reflog["items"].as_array().unwrap().len(),
        branches,
    )
}

#[tokio::test]
async fn a_preview_shows_conflicts_in_words_and_the_merged_state_and_writes_nothing() {
    let s = start(64 * 1024).await;
    let id = conflicted(&s).await;
    let base = format!("/v1/sessions/{id}");
    let before = written(&s, &id).await;
    let (st, p) = post(
        &s,
        &format!("{base}/branches/sodium/merge/preview"),
        json!({"into": "main", "resolutions": {"hypotheses.h1": "theirs"}}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["open"], 2, "{p}");
    let words: Vec<&str> = p["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["description"].as_str().unwrap())
        .collect();
    assert!(
        words.contains(
            &"Hypothesis 'Na on the Li site keeps the olivine': supported on main, refuted on sodium (was open)"
        ),
        "{words:?}"
    );
    assert!(
        words.contains(&"Pin 'anneal': 650 on main, 700 on sodium (was 600)"),
        "{words:?}"
    );
    let h = p["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "hypotheses.h1")
        .unwrap();
    assert_eq!(h["resolution"], "theirs");
    assert_eq!(
        (
            h["ours_text"].as_str(),
            h["theirs_text"].as_str(),
            h["base_text"].as_str()
        ),
        (Some("supported"), Some("refuted"), Some("open"))
    );
    assert_eq!(p["state"]["hypotheses"][0]["status"], "refuted");
    let changes: Vec<&str> = p["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(changes.contains(&"Material NaFePO4 added."), "{changes:?}");
    assert!(
        changes.contains(&"Hypothesis 'Na on the Li site keeps the olivine': supported → refuted."),
        "{changes:?}"
    );
    for c in &words {
        assert!(
            !c.contains('{') && !c.contains("h1"),
            "no JSON, no ids: {c}"
        );
    }
    // Nothing written: no node, no audit entry, no reflog entry, the branch still open.
    assert_eq!(written(&s, &id).await, before);
    // A preview checks its choices as the merge does.
    let (st, v) = post(
        &s,
        &format!("{base}/branches/sodium/merge/preview"),
        json!({"into": "main", "resolutions": {"context.nope": "ours"}}),
    )
    .await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_resolution"),
        "{v}"
    );
    let (st, v) = post(
        &s,
        &format!("{base}/branches/nope/merge/preview"),
        json!({"into": "main"}),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
    let (st, v) = post(
        &s,
        &format!("{base}/branches/sodium/merge/preview"),
        json!({"into": "main", "resolutions": {"hypotheses.h1": "maybe"}}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Without access the session does not exist.
    let (st, _) = s
        .request(
            Method::POST,
            &format!("{base}/branches/sodium/merge/preview"),
            Some(&s.bob),
            Some(json!({"into": "main"})),
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_conflict_takes_its_own_resolution_and_open_ones_are_listed() {
    let s = start(64 * 1024).await;
    let id = conflicted(&s).await;
    let base = format!("/v1/sessions/{id}");
    let path = format!("{base}/branches/sodium/merge");
    let merge = |body: Value| post(&s, &path, body);
    // Two conflicts settled differently, one left open: refused, listing only the open one.
    let (st, v) = merge(json!({"into": "main", "resolutions": {"hypotheses.h1": "theirs", "context.anneal": "ours"}})).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::CONFLICT, "merge_conflict"),
        "{v}"
    );
    let open: Vec<&str> = v["error"]["details"]["conflicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["context.atmosphere"]);
    assert_eq!(
        v["error"]["details"]["conflicts"][0]["description"],
        "Pin 'atmosphere': N2 on main, air on sodium (was Ar)"
    );
    assert_eq!(
        v["error"]["details"]["settled"].as_array().unwrap().len(),
        2
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 open conflict"),
        "{v}"
    );
    // `both` where a whole value cannot be two is refused; so is a key no conflict has.
    let (st, v) = merge(json!({"into": "main", "resolutions": {"context.zz": "ours"}})).await;
    assert_eq!(
        (st, code(&v)),
        (StatusCode::BAD_REQUEST, "invalid_resolution"),
        "{v}"
    );
    assert_eq!(v["error"]["details"]["unknown"], json!(["context.zz"]));
    // Each named conflict its own way; the rest by the strategy.
    let (st, v) = merge(json!({"into": "main", "strategy": "ours", "resolutions": {"hypotheses.h1": "theirs", "context.anneal": "both"}})).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["merged"], true);
    let picked: Vec<(&str, &str)> = v["resolved"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap(),
                c["resolution"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        picked,
        [
            ("hypotheses.h1", "theirs"),
            ("context.anneal", "both"),
            ("context.atmosphere", "ours")
        ]
    );
    let (_, state) = get(&s, &format!("{base}/branches/main/state")).await;
    assert_eq!(state["hypotheses"][0]["status"], "refuted");
    assert_eq!(state["context"]["anneal"], 650);
    assert_eq!(state["context"]["anneal@sodium"], 700);
    assert_eq!(state["context"]["atmosphere"], "N2");
    // The strategy alone still works as before.
    let (st, v) = merge(json!({"into": "main"})).await;
    assert_eq!((st, v["merged"].clone()), (StatusCode::OK, json!(false)));
}

#[tokio::test]
async fn a_diff_between_a_branch_and_a_checkpoint_reads_in_words_and_bounds_the_conversations() {
    let s = start(64 * 1024).await;
    let id = conflicted(&s).await;
    let base = format!("/v1/sessions/{id}");
    for i in 0..5 {
        let (st, _) = post(
            &s,
            &format!("{base}/branches/sodium/messages"),
            json!({"role": "user", "content": format!("m{i}")}),
        )
        .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (st, d) = get(&s, &format!("{base}/diff?from=fork&to=sodium&limit=3")).await;
    assert_eq!(st, StatusCode::OK, "{d}");
    let changes: Vec<&str> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        changes.contains(&"Hypothesis 'Na on the Li site keeps the olivine': open → refuted."),
        "{changes:?}"
    );
    assert!(
        changes.contains(&"Pin 'atmosphere': Ar → air."),
        "{changes:?}"
    );
    assert!(changes.contains(&"Material NaFePO4 added."), "{changes:?}");
    assert_eq!(d["only_to_total"], 6);
    assert_eq!(d["to_truncated"], true);
    let newest: Vec<&str> = d["only_to"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(newest, ["m2", "m3", "m4"], "the newest, oldest first");
    assert_eq!(
        (d["only_from_total"].clone(), d["from_truncated"].clone()),
        (json!(0), json!(false))
    );
    let (_, fork) = get(&s, &format!("{base}/diff?from=main&to=fork")).await;
    assert_eq!(
        d["base"], fork["base"],
        "the checkpoint at the fork is the common ancestor"
    );
    for bad in ["limit=0", "limit=501", "limit=x"] {
        let (st, _) = get(&s, &format!("{base}/diff?from=fork&to=sodium&{bad}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (st, _) = get(&s, &format!("{base}/diff?from=fork&to=nope")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_diff_page_shows_the_changes_and_both_conversations() {
    let s = start(64 * 1024).await;
    let id = conflicted(&s).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!("{}/login", s.base))
        .form(&[("token", s.alice.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = |q: String| {
        let (http, cookie) = (&http, cookie.clone());
        let url = format!("{}/web/sessions/{id}/diff{q}", s.base);
        async move {
            let r = http.get(url).header("cookie", cookie).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (st, html) = page("?from=main&to=sodium".into()).await;
    assert_eq!(st, StatusCode::OK, "{html}");
    assert!(
        html.contains(
            "Hypothesis &#x27;Na on the Li site keeps the olivine&#x27;: supported → refuted."
        ) || html
            .contains("Hypothesis 'Na on the Li site keeps the olivine': supported → refuted."),
        "{html}"
    );
    assert!(html.contains("Try sodium"));
    assert!(html.contains("class=\"sides\""));
    // The form alone without points; a bad point is the error page.
    let (st, html) = page(String::new()).await;
    assert_eq!(st, StatusCode::OK);
    assert!(html.contains("name=\"from\"") && !html.contains("changes-h"));
    let (st, _) = page("?from=main&to=nope".into()).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = page("?from=main&bogus=1".into()).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Not signed in: to the sign-in page.
    let r = http
        .get(format!(
            "{}/web/sessions/{id}/diff?from=main&to=sodium",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection());
}

#[tokio::test]
async fn the_graph_has_the_fork_the_merge_and_the_checkpoint_and_draws_them() {
    let s = start(64 * 1024).await;
    let id = conflicted(&s).await;
    let base = format!("/v1/sessions/{id}");
    let (st, v) = post(
        &s,
        &format!("{base}/branches/sodium/merge"),
        json!({"into": "main", "strategy": "theirs"}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = post(&s, &format!("{base}/branches"), json!({"name": "dead"})).await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, _) = post(&s, &format!("{base}/branches/dead/discard"), json!({})).await;
    assert_eq!(st, StatusCode::OK);
    let alice = s.mgr.authenticate(&s.alice).await.unwrap();
    let g = s.mgr.branch_graph(&alice, &id).await.unwrap();
    let names: Vec<(&str, Option<&str>, &str)> = g
        .branches
        .iter()
        .map(|b| (b.name.as_str(), b.parent.as_deref(), b.status.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("main", None, "open"),
            ("sodium", Some("main"), "merged"),
            ("dead", Some("main"), "discarded")
        ]
    );
    assert_eq!(g.merges.len(), 1);
    assert_eq!(
        g.merges[0].merge_node.node, g.branches[0].head.node,
        "main's head is the merge"
    );
    assert_eq!(g.merges[0].from_head.node, g.branches[1].head.node);
    let fork = g.checkpoints.iter().find(|c| c.name == "fork").unwrap();
    assert_eq!(
        (fork.branch.as_deref(), fork.node.node.as_str()),
        (Some("main"), g.branches[1].base.node.as_str())
    );
    let svg = kiln_server::graph::render(&g, "main", &format!("/web/sessions/{id}"));
    assert!(svg.contains("data-restore=\"fork\""));
    assert!(svg.contains("bg-discarded"));
    assert!(svg.contains(&format!(
        "?branch=main&amp;around={}",
        g.branches[0].head.node.replace('-', "%2D")
    )));
    // Another user without access sees no session.
    let bob = s.mgr.authenticate(&s.bob).await.unwrap();
    assert!(s.mgr.branch_graph(&bob, &id).await.is_err());
}
