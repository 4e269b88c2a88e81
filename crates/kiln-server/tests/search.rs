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
