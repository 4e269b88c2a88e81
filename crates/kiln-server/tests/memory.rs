//! Memory across sessions on a real server: a user's notes and preferences (`/v1/me/memory`)
//! are theirs alone and enter every context window of their turns; the agent saves one when
//! asked; findings from the user's other readable sessions are recalled into the window (and
//! never from a session the user may not read), unless the session switches recall off.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

impl Server {
    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.request(method, path, Some(token), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    async fn session(&self, token: &str, name: &str) -> String {
        self.call(
            token,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": name})),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn ask(&self, token: &str, id: &str, message: &str) -> Value {
        self.call(
            token,
            Method::POST,
            &format!("/v1/sessions/{id}/query"),
            Some(json!({"message": message})),
        )
        .await
    }

    async fn context(&self, token: &str, id: &str) -> Value {
        self.call(
            token,
            Method::GET,
            &format!("/v1/sessions/{id}/context"),
            None,
        )
        .await
    }
}

fn part<'a>(ctx: &'a Value, name: &str) -> Option<&'a Value> {
    ctx["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
}

fn window_text(ctx: &Value) -> String {
    ctx["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn memory_is_the_owners_alone_and_bad_input_is_refused() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let (s, saved) = srv
        .request(
            Method::POST,
            "/v1/me/memory",
            Some(&alice),
            Some(
                json!({"content": "I work at 1 atm unless I say otherwise", "kind": "preference"}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["source"], "user");
    let id = saved["id"].as_str().unwrap().to_owned();
    // The same words again are the same entry.
    let (_, again) = srv
        .request(
            Method::POST,
            "/v1/me/memory",
            Some(&alice),
            Some(json!({"content": "i work at 1 atm unless i say otherwise"})),
        )
        .await;
    assert_eq!(again["id"], saved["id"]);
    let listed = srv.call(&alice, Method::GET, "/v1/me/memory", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // Bob sees nothing, and cannot change or delete Alice's entry.
    let theirs = srv.call(&bob, Method::GET, "/v1/me/memory", None).await;
    assert!(theirs["items"].as_array().unwrap().is_empty(), "{theirs}");
    let path = format!("/v1/me/memory/{id}");
    for method in [Method::PATCH, Method::DELETE] {
        let (s, v) = srv
            .request(
                method,
                &path,
                Some(&bob),
                Some(json!({"content": "mine now"})),
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        assert_eq!(v["error"]["code"], "not_found");
    }
    let (s, _) = srv.request(Method::GET, "/v1/me/memory", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Bad input: a typed 400, and the entry already there is untouched.
    let long = "x".repeat(1001);
    for body in [
        json!({"content": "   "}),
        json!({"content": long}),
        json!({"content": "fine", "kind": "mood"}),
        json!({"content": "fine", "colour": "blue"}),
        json!({"content": "bell\u{7}"}),
        json!({}),
    ] {
        let (s, v) = srv
            .request(
                Method::POST,
                "/v1/me/memory",
                Some(&alice),
                Some(body.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(v["error"]["recoverable"], true, "{v}");
    }
    let (s, _) = srv
        .request(
            Method::PATCH,
            &path,
            Some(&alice),
            Some(json!({"kind": "mood"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let listed = srv.call(&alice, Method::GET, "/v1/me/memory", None).await;
    assert_eq!(listed["items"][0]["content"], saved["content"]);

    // Edit, then delete.
    let edited = srv
        .call(
            &alice,
            Method::PATCH,
            &path,
            Some(json!({"content": "I work at 2 atm"})),
        )
        .await;
    assert_eq!(edited["content"], "I work at 2 atm");
    assert_eq!(edited["kind"], "preference");
    let (s, _) = srv.request(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv.request(Method::DELETE, &path, Some(&alice), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_window_carries_the_memory_and_the_agent_saves_what_it_is_asked_to() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let a = srv.session(&alice, "Cathodes").await;
    // Asked in a session, the agent saves it to Alice's memory, naming the session.
    let turn = srv
        .ask(
            &alice,
            &a,
            "Please remember that I report capacities in mAh/g",
        )
        .await;
    assert!(
        turn["answer"]
            .as_str()
            .unwrap()
            .contains("Saved to your memory"),
        "{turn}"
    );
    let mem = srv.call(&alice, Method::GET, "/v1/me/memory", None).await;
    let entry = &mem["items"][0];
    assert_eq!(entry["content"], "I report capacities in mAh/g");
    assert_eq!(entry["source"], "agent");
    assert_eq!(entry["session_id"], a.as_str());

    // Another session of Alice's has it in its window, as its own part with its tokens.
    let b = srv.session(&alice, "Anodes").await;
    srv.ask(&alice, &b, "Analyse LiFePO4").await;
    let ctx = srv.context(&alice, &b).await;
    let memory = part(&ctx, "memory").expect("a memory part");
    assert_eq!(memory["items"], 1);
    assert!(memory["tokens"].as_u64().unwrap() > 5, "{memory}");
    assert!(window_text(&ctx).contains("I report capacities in mAh/g"));
    assert_eq!(ctx["memory"][0], entry["id"]);

    // Bob's window never has it, even in a session Alice shares with him.
    srv.call(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{b}/collaborators"),
        Some(json!({"user": "bob", "permissions": ["read", "write"]})),
    )
    .await;
    let theirs = srv.context(&bob, &b).await;
    assert!(part(&theirs, "memory").is_none(), "{theirs}");
    assert!(!window_text(&theirs).contains("mAh/g"));

    // "What do you remember?" lists it; "forget …" deletes it.
    let listed = srv.ask(&alice, &b, "What do you remember about me?").await;
    assert!(
        listed["answer"].as_str().unwrap().contains("mAh/g"),
        "{listed}"
    );
    srv.ask(&alice, &b, "Forget that I report capacities in mAh/g")
        .await;
    let mem = srv.call(&alice, Method::GET, "/v1/me/memory", None).await;
    assert!(mem["items"].as_array().unwrap().is_empty(), "{mem}");
}

#[tokio::test]
async fn findings_from_other_readable_sessions_are_recalled() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let old = srv.session(&alice, "Last month's screening").await;
    srv.ask(
        &alice,
        &old,
        "We found that LiFePO4 keeps 95% of its capacity after 500 cycles with a carbon coating",
    )
    .await;
    srv.call(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{old}/branches/main/events"),
        Some(json!({"kind": "hypothesis", "statement": "Mn doping raises the LiFePO4 voltage"})),
    )
    .await;
    // The index takes the findings in within a moment.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, v) = srv
            .send(
                srv.http
                    .get(format!("{}/v1/search", srv.base))
                    .query(&[("q", "LiFePO4"), ("kind", "hypothesis")])
                    .bearer_auth(&alice),
            )
            .await;
        if v["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never indexed: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let now = srv.session(&alice, "Coatings").await;
    srv.ask(&alice, &now, "Analyse LiFePO4").await;
    let ctx = srv.context(&alice, &now).await;
    let recall = part(&ctx, "recall").expect("a recall part");
    assert!(recall["items"].as_u64().unwrap() >= 2, "{recall}");
    let recalled = ctx["recalled"].as_array().unwrap();
    assert!(recalled.iter().all(|r| r["session_id"] == old.as_str()));
    let kinds: Vec<&str> = recalled
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"discovery") && kinds.contains(&"hypothesis"),
        "{kinds:?}"
    );
    let text = window_text(&ctx);
    assert!(
        text.contains("500 cycles") && text.contains("(open) Mn doping"),
        "{text}"
    );
    assert!(text.contains("Last month's screening"), "{text}");
    // The recalled node is the one that recorded the finding.
    let node = recalled.iter().find(|r| r["kind"] == "discovery").unwrap()["node_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let state = srv
        .call(
            &alice,
            Method::GET,
            &format!("/v1/sessions/{old}/branches/main/state"),
            None,
        )
        .await;
    assert_eq!(state["discoveries"][0]["node"], node.as_str(), "{state}");

    // A request about something else recalls nothing.
    srv.ask(&alice, &now, "Analyse NaCl").await;
    let ctx = srv.context(&alice, &now).await;
    assert!(part(&ctx, "recall").is_none(), "{}", ctx["recalled"]);

    // Bob may not read Alice's sessions: his window recalls nothing of them.
    let his = srv.session(&bob, "Bob's cathodes").await;
    srv.ask(&bob, &his, "Analyse LiFePO4").await;
    let ctx = srv.context(&bob, &his).await;
    assert!(part(&ctx, "recall").is_none(), "{}", ctx["recalled"]);
    assert!(!window_text(&ctx).contains("500 cycles"));

    // Switched off per session.
    srv.ask(&alice, &now, "Analyse LiFePO4 again").await;
    assert!(part(&srv.context(&alice, &now).await, "recall").is_some());
    srv.call(
        &alice,
        Method::PATCH,
        &format!("/v1/sessions/{now}"),
        Some(json!({"context": {"recall": false}})),
    )
    .await;
    let ctx = srv.context(&alice, &now).await;
    assert!(part(&ctx, "recall").is_none(), "{}", ctx["recalled"]);
}
