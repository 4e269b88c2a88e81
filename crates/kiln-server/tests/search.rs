//! `GET /v1/search` on a real server with a real tantivy index in the temp data dir: phrase,
//! prefix and fuzzy queries, filters, highlighted snippets, branches per hit, pagination,
//! typed errors, and never a hit (or a count) from a session the caller may not read.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

impl Server {
    async fn req(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.request(method, path, Some(token), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn search(&self, token: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
        self.send(
            self.http
                .get(format!("{}/v1/search", self.base))
                .query(query)
                .bearer_auth(token),
        )
        .await
    }
}

fn sessions(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_name"].as_str().unwrap().to_owned())
        .collect()
}

fn hits(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {v}"))
        .iter()
        .flat_map(|s| s["hits"].as_array().unwrap().clone())
        .collect()
}

#[tokio::test]
async fn search_finds_what_the_caller_may_read() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let a = srv
        .req(
            &alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "Olivine study", "tags": ["cathode"], "project": "batteries"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let msgs = format!("/v1/sessions/{a}/branches/main/messages");
    srv.req(
        &alice,
        Method::POST,
        &msgs,
        Some(json!({"role": "user", "content": "The olivine structure of LiFePO4 gives Li+ mobility"})),
    )
    .await;
    srv.req(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{a}/branches/main/events"),
        Some(json!({"kind": "discovery", "type": "structure_property",
                    "description": "Olivine frameworks resist oxygen loss", "materials": ["LiFePO4"]})),
    )
    .await;
    srv.req(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{a}/branches"),
        Some(json!({"name": "side"})),
    )
    .await;
    srv.req(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{a}/branches/side/messages"),
        Some(json!({"role": "user", "content": "The spinel LiMn2O4 charges quickly"})),
    )
    .await;
    let b = srv
        .req(
            &bob,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "Secret olivine notes"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.req(
        &bob,
        Method::POST,
        &format!("/v1/sessions/{b}/branches/main/messages"),
        Some(json!({"role": "user", "content": "olivine olivine olivine, private"})),
    )
    .await;

    // Single term: alice sees only her session; highlighted snippets; branches per hit.
    let (s, v) = srv.search(&alice, &[("q", "olivine")]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(sessions(&v), ["Olivine study"], "{v}");
    assert!(!v.to_string().contains("private") && !v.to_string().contains(&b));
    let hs = hits(&v);
    let msg = hs
        .iter()
        .find(|h| h["kind"] == "user")
        .expect("the message");
    assert!(
        msg["snippet"].as_str().unwrap().contains("<b>olivine</b>"),
        "{msg}"
    );
    assert_eq!(msg["branches"], json!(["main", "side"]));
    assert!(hs.iter().any(|h| h["kind"] == "discovery"));
    assert!(
        hs.iter().any(|h| h["kind"] == "session"),
        "names are searched: {v}"
    );
    // Bob sees only his.
    let (_, v) = srv.search(&bob, &[("q", "olivine")]).await;
    assert_eq!(sessions(&v), ["Secret olivine notes"]);

    // Phrase, prefix, fuzzy.
    let (_, v) = srv.search(&alice, &[("q", "\"olivine structure\"")]).await;
    assert_eq!(hits(&v).len(), 1, "{v}");
    let (_, v) = srv.search(&alice, &[("q", "\"structure olivine\"")]).await;
    assert!(hits(&v).is_empty(), "{v}");
    let (_, v) = srv.search(&alice, &[("q", "spin*")]).await;
    assert_eq!(hits(&v).len(), 1, "{v}");
    assert_eq!(hits(&v)[0]["branches"], json!(["side"]));
    let (_, v) = srv.search(&alice, &[("q", "olivne")]).await;
    assert_eq!(v["fuzzy"], true, "{v}");
    assert!(!hits(&v).is_empty());

    // Filters.
    let (_, v) = srv
        .search(&alice, &[("q", "olivine"), ("kind", "discovery")])
        .await;
    assert!(hits(&v).iter().all(|h| h["kind"] == "discovery") && !hits(&v).is_empty());
    let (_, v) = srv
        .search(&alice, &[("q", "olivine OR spinel"), ("element", "Mn")])
        .await;
    assert_eq!(hits(&v).len(), 1, "{v}");
    let (_, v) = srv
        .search(&alice, &[("q", "olivine"), ("material", "LiFePO4")])
        .await;
    assert!(hits(&v).len() >= 2, "{v}");
    let (_, v) = srv
        .search(&alice, &[("q", "olivine"), ("material", "Fe-Li-O-P")])
        .await;
    assert!(hits(&v).len() >= 2, "chemical systems are searchable: {v}");
    let (_, v) = srv
        .search(
            &alice,
            &[("q", "olivine"), ("from", "2999-01-01T00:00:00Z")],
        )
        .await;
    assert!(hits(&v).is_empty());
    let (_, v) = srv
        .search(&alice, &[("q", "olivine"), ("project", "other")])
        .await;
    assert!(v["items"].as_array().unwrap().is_empty());
    let (_, v) = srv
        .search(
            &alice,
            &[("q", "olivine"), ("author", "alice"), ("kind", "user")],
        )
        .await;
    assert_eq!(hits(&v).len(), 1, "{v}");

    // Errors: typed 400s with a position; someone else's session is 404.
    let (s, v) = srv.search(&alice, &[("q", "\"olivine")]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_query");
    assert_eq!(v["error"]["details"]["position"], 0);
    for bad in [
        vec![("q", "")],
        vec![("q", "a)")],
        vec![("q", &*"x".repeat(2000))],
        vec![("q", "x"), ("bogus", "1")],
        vec![("q", "x"), ("from", "yesterday")],
        vec![("q", "x"), ("cursor", "abc")],
    ] {
        let (s, v) = srv.search(&alice, &bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
    }
    let (s, _) = srv
        .search(&alice, &[("q", "olivine"), ("session", &b)])
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Sharing makes bob's search see alice's session; deleting a session removes its hits.
    srv.req(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{a}/collaborators"),
        Some(json!({"user": "bob", "permissions": ["read"]})),
    )
    .await;
    let (_, v) = srv.search(&bob, &[("q", "olivine")]).await;
    assert_eq!(sessions(&v).len(), 2, "{v}");
    srv.req(&bob, Method::DELETE, &format!("/v1/sessions/{b}"), None)
        .await;
    let (_, v) = srv.search(&bob, &[("q", "olivine")]).await;
    assert_eq!(sessions(&v), ["Olivine study"]);
}

#[tokio::test]
async fn pages_cover_every_matching_session_once() {
    let srv = start(1 << 20).await;
    let alice = srv.alice.clone();
    for i in 0..5 {
        let id = srv
            .req(
                &alice,
                Method::POST,
                "/v1/sessions",
                Some(json!({"name": format!("zeolite {i}")})),
            )
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        srv.req(
            &alice,
            Method::POST,
            &format!("/v1/sessions/{id}/branches/main/messages"),
            Some(json!({"role": "user", "content": format!("zeolite pores, take {i}")})),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = vec![("q", "zeolite".to_string()), ("limit", "2".into())];
        if let Some(c) = &cursor {
            q.push(("cursor", c.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, v) = srv.search(&alice, &q).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["items"].as_array().unwrap().len() <= 2);
        seen.extend(sessions(&v));
        match v["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..5).map(|i| format!("zeolite {i}")).collect::<Vec<_>>()
    );
}

/// Issue 13, item 2: tantivy 0.25's parser took time doubling per level of nested
/// parentheses, on the async workers, so a few deep queries froze every other request. Deep,
/// long and many-term queries are now refused with a 400 before any parsing, and the health
/// route keeps answering while they arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_queries_are_refused_fast_and_health_keeps_answering() {
    use std::time::Duration;
    let srv = std::sync::Arc::new(start(1 << 20).await);
    let alice = srv.alice.clone();
    let id = srv
        .req(
            &alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "olivine"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    srv.req(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{id}/branches/main/messages"),
        Some(json!({"role": "user", "content": "olivine cathodes"})),
    )
    .await;
    let nested = |depth: usize| format!("{}olivine{}", "(".repeat(depth), ")".repeat(depth));
    let many_terms = (0..120)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let hostile = [nested(24), nested(31), nested(26), many_terms];
    let mut pending = Vec::new();
    for q in hostile.clone() {
        let srv = srv.clone();
        let token = alice.clone();
        pending.push(tokio::spawn(async move {
            srv.search(&token, &[("q", &q)]).await
        }));
    }
    // The service stays responsive while they are in flight.
    for _ in 0..10 {
        let (s, v) = tokio::time::timeout(
            Duration::from_secs(2),
            srv.request(Method::GET, "/v1/health", None, None),
        )
        .await
        .expect("/v1/health answers within 2 s while hostile queries run");
        assert_eq!(s, StatusCode::OK, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (q, p) in hostile.iter().zip(pending) {
        let (s, v) = tokio::time::timeout(Duration::from_secs(5), p)
            .await
            .unwrap_or_else(|_| panic!("{} bytes of query answered within 5 s", q.len()))
            .unwrap();
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["error"]["code"], "invalid_query", "{v}");
        assert!(
            v["error"]["details"]["position"].is_u64(),
            "one place is at fault: {v}"
        );
    }
    // An ordinary query still works.
    let (s, v) = srv.search(&alice, &[("q", "(olivine OR spinel)")]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(hits(&v).len(), 2, "{v}");
}

/// Issue 13, item 7 over HTTP: a full disk under the index is 507 insufficient_storage (an
/// unwritable one 503 storage_unavailable), `/v1/health` says `degraded` with a short reason
/// while it lasts, and search answers again once space returns, with no restart.
#[tokio::test]
async fn storage_faults_are_507_or_503_and_health_reports_them_until_mended() {
    use kiln_session::StorageFault;
    let srv = start(1 << 20).await;
    let alice = srv.alice.clone();
    let id = srv
        .req(
            &alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "garnet"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let msgs = format!("/v1/sessions/{id}/branches/main/messages");
    let say = |text: &'static str| {
        srv.req(
            &alice,
            Method::POST,
            &msgs,
            Some(json!({"role": "user", "content": text})),
        )
    };
    say("garnet electrolytes").await;
    let (s, _) = srv.search(&alice, &[("q", "garnet")]).await;
    assert_eq!(s, StatusCode::OK);
    let health = || srv.request(Method::GET, "/v1/health", None, None);
    assert_eq!(health().await.1["status"], "ok");

    srv.mgr
        .search_faults()
        .fail_writes(Some(StorageFault::NoSpace));
    say("garnet sintering").await;
    let (s, v) = srv.search(&alice, &[("q", "garnet")]).await;
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{v}");
    assert_eq!(v["error"]["code"], "insufficient_storage");
    assert_eq!(v["error"]["recoverable"], true);
    let (s, h) = health().await;
    assert_eq!(s, StatusCode::OK, "a degraded service still answers");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["reason"], "search index: no space left on the device");
    assert!(!h.to_string().contains('/'), "no paths: {h}");

    srv.mgr
        .search_faults()
        .fail_writes(Some(StorageFault::Unavailable));
    let (s, v) = srv.search(&alice, &[("q", "garnet")]).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["error"]["code"], "storage_unavailable");

    srv.mgr.search_faults().fail_writes(None);
    let (s, v) = srv.search(&alice, &[("q", "garnet")]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(hits(&v).len(), 3, "both messages and the name: {v}");
    let (_, h) = health().await;
    assert_eq!(h["status"], "ok", "{h}");
    assert!(h.get("reason").is_none(), "{h}");
}
