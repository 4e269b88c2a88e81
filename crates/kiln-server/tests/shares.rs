//! Share links on a real server: created by a manager, read without signing in as JSON and as
//! an HTML page pinned to the node they were made at, never written through, limited by
//! views, revoked, and refusing malformed or tampered tokens without telling anything away.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

impl Server {
    async fn as_user(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, path, Some(token), body).await
    }

    async fn anonymous(&self, method: Method, path: &str) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_share_link_shows_the_pinned_conversation_and_nothing_else() {
    let srv = start(1 << 20).await;
    let alice = srv.alice.clone();
    let (_, s) = srv
        .as_user(
            &alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "Olivine cathodes", "tags": ["battery"]})),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let alice_id = s["owner_id"].as_str().unwrap().to_owned();
    let base = format!("/v1/sessions/{id}");
    let post = |path: String, body: Value| {
        let srv = &srv;
        let alice = alice.clone();
        async move {
            let (s, v) = srv.as_user(&alice, Method::POST, &path, Some(body)).await;
            assert!(s.is_success(), "{path}: {v}");
            v
        }
    };
    post(
        format!("{base}/branches/main/messages"),
        json!({"role": "user", "content": "before the share <b>bold</b>"}),
    )
    .await;
    post(
        format!("{base}/branches/main/events"),
        json!({"kind": "discovery", "type": "structure_property",
               "description": "Olivine helps Li+ mobility", "materials": ["LiFePO4"]}),
    )
    .await;
    post(
        format!("{base}/tools/materials_analyzer"),
        json!({"arguments": {"action": "validate", "formula": "LiFePO4"}}),
    )
    .await;
    post(format!("{base}/checkpoints"), json!({"name": "early"})).await;
    post(
        format!("{base}/branches/main/messages"),
        json!({"role": "assistant", "content": "pinned answer"}),
    )
    .await;
    post(format!("{base}/branches"), json!({"name": "other"})).await;
    post(
        format!("{base}/branches/other/messages"),
        json!({"role": "user", "content": "secret branch"}),
    )
    .await;

    let created = post(format!("{base}/shares"), json!({"expires_in_days": 7})).await;
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 67, "{created}");
    assert_eq!(
        created["url"].as_str().unwrap(),
        format!("{}/s/{token}", srv.base)
    );
    assert!(created["expires_at"].is_string());
    post(
        format!("{base}/branches/main/messages"),
        json!({"role": "user", "content": "after the share"}),
    )
    .await;

    // JSON, without signing in.
    let resp = srv
        .anonymous(Method::GET, &format!("/v1/shared/{token}"))
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-robots-tag"], "noindex");
    let view: Value = resp.json().await.unwrap();
    let text = view.to_string();
    assert!(text.contains("before the share") && text.contains("pinned answer"));
    assert!(!text.contains("after the share") && !text.contains("secret branch"));
    assert!(
        !text.contains(&alice_id),
        "author ids are anonymised: {view}"
    );
    let label = view["conversation"][0]["author"].as_str().unwrap();
    assert!(label.starts_with("Author ") && label.len() == 13, "{label}");
    assert_eq!(
        view["discoveries"][0]["description"],
        "Olivine helps Li+ mobility"
    );
    assert_eq!(view["session"]["name"], "Olivine cathodes");
    assert_eq!(view["views"], 1);
    // A tool result carries its tool and its one-line text beside the raw content.
    let result = view["conversation"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "tool_result")
        .expect("the tool result is shared");
    assert_eq!(result["tool"], "materials_analyzer");
    assert!(
        result["brief"]
            .as_str()
            .unwrap()
            .starts_with("LiFePO4: valid"),
        "{result}"
    );

    // The HTML page: read-only, escaped, not indexed.
    let resp = srv.anonymous(Method::GET, &format!("/s/{token}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-robots-tag"], "noindex");
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("Olivine cathodes") && page.contains("pinned answer"));
    // Tool traffic is folded: the result's text in the summary, the raw JSON inside.
    assert!(
        page.contains("Result of <code>materials_analyzer</code>: LiFePO4: valid"),
        "{page}"
    );
    assert!(
        page.contains("&lt;b&gt;bold") && !page.contains("<b>bold"),
        "content is escaped"
    );
    assert!(!page.contains("after the share") && !page.contains("secret branch"));
    for control in ["<form", "<button", "<input", "<textarea"] {
        assert!(!page.contains(control), "no edit controls: {control}");
    }

    // Share tokens never write: any other method is 405 with the JSON error body.
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::TRACE,
    ] {
        for path in [format!("/v1/shared/{token}"), format!("/s/{token}")] {
            let r = srv.anonymous(method.clone(), &path).await;
            assert_eq!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(r.headers()["allow"], "GET, HEAD");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["code"], "method_not_allowed", "{method} {path}");
        }
    }
    let (s, v) = srv
        .as_user(
            &token,
            Method::POST,
            &format!("{base}/branches/main/messages"),
            Some(json!({"role": "user", "content": "sneaky"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = srv.as_user(&token, Method::GET, &base, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The list never shows tokens; only managers see it; strangers see nothing.
    let (s, list) = srv
        .as_user(&alice, Method::GET, &format!("{base}/shares"), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&token));
    let (s, _) = srv
        .as_user(&srv.bob, Method::GET, &format!("{base}/shares"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = srv
        .as_user(
            &alice,
            Method::POST,
            &format!("{base}/collaborators"),
            Some(json!({"user": "reader", "permissions": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let reader = srv.users["reader"].clone();
    let (s, _) = srv
        .as_user(
            &reader,
            Method::POST,
            &format!("{base}/shares"),
            Some(json!({"expires_in_days": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Pinned to a checkpoint: the conversation stops there.
    let cp = post(
        format!("{base}/shares"),
        json!({"expires_in_days": 1, "checkpoint": "early"}),
    )
    .await;
    let resp = srv
        .anonymous(
            Method::GET,
            &format!("/v1/shared/{}", cp["token"].as_str().unwrap()),
        )
        .await;
    let view: Value = resp.json().await.unwrap();
    assert!(view.to_string().contains("before the share"));
    assert!(!view.to_string().contains("pinned answer"));

    // A view limit, then revocation.
    let limited = post(
        format!("{base}/shares"),
        json!({"expires_in_days": 1, "max_views": 2}),
    )
    .await;
    let lt = limited["token"].as_str().unwrap();
    for _ in 0..2 {
        let r = srv
            .anonymous(Method::GET, &format!("/v1/shared/{lt}"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    // Used up: it answers exactly like a token that never existed, everywhere.
    assert_answers_like_a_random_token(&srv, lt).await;

    let share_id = created["id"].as_str().unwrap();
    let (s, v) = srv
        .as_user(
            &alice,
            Method::DELETE,
            &format!("{base}/shares/{share_id}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["revoked_at"].is_string());
    let r = srv
        .anonymous(Method::GET, &format!("/v1/shared/{token}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = srv.anonymous(Method::GET, &format!("/s/{token}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("Not found"));
    // Revoked: exactly like a random token, as a share and as an API token.
    assert_answers_like_a_random_token(&srv, &token).await;

    // Malformed and tampered tokens: the same 404, no 5xx.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [
        "abc".to_string(),
        token[..66].to_string(),
        token.to_uppercase(),
        format!("{token}0"),
        tampered,
        "%00".to_string(),
    ] {
        let r = srv
            .anonymous(Method::GET, &format!("/v1/shared/{bad}"))
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "share_not_found", "{bad}");
    }
}

#[tokio::test]
async fn share_requests_are_checked() {
    let srv = start(1 << 20).await;
    let (_, s) = srv
        .as_user(
            &srv.alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "x"})),
        )
        .await;
    let path = format!("/v1/sessions/{}/shares", s["id"].as_str().unwrap());
    for body in [
        json!({"expires_in_days": 0}),
        json!({"expires_in_days": 366}),
        json!({"expires_in_days": 1, "max_views": 0}),
        json!({"expires_in_days": 1, "branch": "main", "checkpoint": "x"}),
        json!({"expires_in_days": 1, "forever": true}),
        json!({}),
    ] {
        let (s, v) = srv
            .as_user(&srv.alice, Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
    }
    let (s, _) = srv
        .as_user(
            &srv.alice,
            Method::POST,
            &path,
            Some(json!({"expires_in_days": 1, "checkpoint": "missing"})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_long_shared_conversation_comes_in_pages_with_stable_author_labels() {
    let srv = start(1 << 20).await;
    let (_, s) = srv
        .as_user(
            &srv.alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "Long"})),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    // 450 messages, alternating between alice and bob (a collaborator who writes).
    let (st, _) = srv
        .as_user(
            &srv.alice,
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(json!({"user": "bob", "permissions": ["write"]})),
        )
        .await;
    assert!(st.is_success());
    for i in 0..450 {
        let who = if i % 2 == 0 { &srv.alice } else { &srv.bob };
        let (st, v) = srv
            .as_user(
                who,
                Method::POST,
                &format!("/v1/sessions/{id}/branches/main/messages"),
                Some(json!({"role": "user", "content": format!("message {i}")})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{v}");
    }
    let (_, share) = srv
        .as_user(
            &srv.alice,
            Method::POST,
            &format!("/v1/sessions/{id}/shares"),
            Some(json!({"expires_in_days": 1})),
        )
        .await;
    let token = share["token"].as_str().unwrap().to_owned();
    let mut pages = Vec::new();
    let mut path = format!("/v1/shared/{token}");
    loop {
        let resp = srv.anonymous(Method::GET, &path).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let view: Value = resp.json().await.unwrap();
        let older = view["older"].as_str().map(str::to_owned);
        pages.push(view);
        match older {
            Some(c) => path = format!("/v1/shared/{token}?before={c}"),
            None => break,
        }
    }
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["conversation"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [200, 200, 50]);
    // Newest page first; each page oldest first; together the whole conversation once.
    let texts: Vec<String> = pages
        .iter()
        .rev()
        .flat_map(|p| p["conversation"].as_array().unwrap().clone())
        .map(|n| n["content"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = (0..450).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, want);
    // Each author keeps one label on every page; the two differ; no id leaks.
    let labels = |parity: usize| {
        let mut set = std::collections::BTreeSet::new();
        for p in &pages {
            for n in p["conversation"].as_array().unwrap() {
                let i: usize = n["content"].as_str().unwrap()[8..].parse().unwrap();
                if i % 2 == parity {
                    set.insert(n["author"].as_str().unwrap().to_owned());
                }
            }
        }
        set
    };
    let (a, b) = (labels(0), labels(1));
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a, b);
    // Every page is a view; a bad cursor is a clear 400.
    assert_eq!(pages[2]["views"], 3);
    let resp = srv
        .anonymous(Method::GET, &format!("/v1/shared/{token}?before=abc"))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

/// What a server says to `token` on the share routes and as an API token, as (status, content
/// type, body) per route: the body with the token replaced, so two tokens can be compared.
async fn answers(srv: &Server, token: &str) -> Vec<(u16, String, String)> {
    let mut out = Vec::new();
    for path in [format!("/v1/shared/{token}"), format!("/s/{token}")] {
        let r = srv.anonymous(Method::GET, &path).await;
        out.push((
            r.status().as_u16(),
            r.headers()["content-type"].to_str().unwrap().to_owned(),
            r.text().await.unwrap().replace(token, "TOKEN"),
        ));
    }
    let r = srv
        .http
        .get(format!("{}/v1/sessions", srv.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    out.push((
        r.status().as_u16(),
        r.headers()["content-type"].to_str().unwrap().to_owned(),
        r.text().await.unwrap().replace(token, "TOKEN"),
    ));
    out
}

async fn assert_answers_like_a_random_token(srv: &Server, dead: &str) {
    let random = format!("ks_{}", "7".repeat(64));
    let (theirs, random_answers) = (answers(srv, dead).await, answers(srv, &random).await);
    assert_eq!(
        theirs, random_answers,
        "a dead share token must not be told apart"
    );
    assert_eq!(theirs[0].0, 404);
    assert_eq!(theirs[2].0, 401);
}
