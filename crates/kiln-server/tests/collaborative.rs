//! Collaborative sessions on a real server: created with their members in one call; the live
//! stream says who is watching and shows another member's turn as it happens.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

/// An open live stream, read as text.
struct Stream(reqwest::Response, String);

impl Stream {
    async fn open(srv: &Server, token: &str, id: &str) -> Stream {
        let r = srv
            .http
            .get(format!(
                "{}/v1/sessions/{id}/events/stream?max_seconds=60",
                srv.base
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        Stream(r, String::new())
    }

    /// Reads until the text since `from` satisfies `want` (bounded: a hang fails the test);
    /// returns the end offset.
    async fn until(&mut self, from: usize, what: &str, want: impl Fn(&str) -> bool) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !want(&self.1[from..]) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left, self.0.chunk()).await {
                Ok(Ok(Some(bytes))) => self.1.push_str(&String::from_utf8_lossy(&bytes)),
                _ => panic!("{what}: not seen; the stream said:\n{}", &self.1[from..]),
            }
        }
        self.1.len()
    }
}

/// The data of the last `event` in `text` whose data satisfies `pick`.
fn last_event(text: &str, event: &str, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    text.split("\n\n")
        .filter(|block| block.contains(&format!("event: {event}\n")))
        .filter_map(|block| {
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            serde_json::from_str::<Value>(data).ok()
        })
        .filter(|v| pick(v))
        .last()
}

fn present(v: &Value) -> Vec<String> {
    v["present"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn members_in_one_call_and_bad_ones_refuse_the_whole_call() {
    let srv = start(1 << 20).await;
    let (s, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(
                json!({"name": "Shared campaign", "session_type": "collaborative",
                        "members": [{"user": "bob", "permissions": ["read", "write"]},
                                    {"user": "reader", "permissions": ["read"]}]}),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap();
    let (_, c) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            None,
        )
        .await;
    let names: Vec<&str> = c["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "reader"], "{c}");
    // Bob may write at once.
    let (s, _) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/branches/main/messages"),
            Some(&srv.bob),
            Some(json!({"role": "note", "content": "bob was here"})),
        )
        .await;
    assert!(s.is_success());

    let count = async || {
        let (_, l) = srv
            .request(
                Method::GET,
                "/v1/sessions?limit=100",
                Some(&srv.alice),
                None,
            )
            .await;
        l["items"].as_array().unwrap().len()
    };
    let before = count().await;
    for (members, status) in [
        (
            json!([{"user": "nobody", "permissions": ["read"]}]),
            StatusCode::NOT_FOUND,
        ),
        (
            json!([{"user": "alice", "permissions": ["read"]}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"user": "bob", "permissions": ["read"]}, {"user": "bob", "permissions": ["write"]}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"user": "bob", "permissions": []}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"user": "bob", "permissions": ["fly"]}]),
            StatusCode::BAD_REQUEST,
        ),
        (json!([{"user": "bob"}]), StatusCode::BAD_REQUEST),
    ] {
        let (s, v) = srv
            .request(
                Method::POST,
                "/v1/sessions",
                Some(&srv.alice),
                Some(json!({"name": "Refused", "members": members.clone()})),
            )
            .await;
        assert_eq!(s, status, "{members}: {v}");
    }
    assert_eq!(count().await, before, "a refused call stores no session");
}

#[tokio::test]
async fn watchers_see_who_is_present_and_a_members_turn_as_it_streams() {
    let srv = start(1 << 20).await;
    let (_, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "Together", "session_type": "collaborative",
                        "members": [{"user": "bob", "permissions": ["read", "write"]}]})),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let mut bob = Stream::open(&srv, &srv.bob, &id).await;
    let at = bob
        .until(0, "bob sees himself", |t| {
            last_event(t, "presence", |v| present(v) == ["bob"]).is_some()
        })
        .await;
    let alice = Stream::open(&srv, &srv.alice, &id).await;
    // Presence is refreshed every few seconds: within them, bob sees alice.
    let at = bob
        .until(at, "bob sees alice arrive", |t| {
            last_event(t, "presence", |v| present(v) == ["alice", "bob"]).is_some()
        })
        .await;

    // Alice asks; bob sees her turn as it runs, then the stored nodes.
    let (s, turn) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/query"),
            Some(&srv.alice),
            Some(json!({"message": "Analyse LiFePO4"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{turn}");
    let seen = bob
        .until(at, "alice's turn", |t| {
            last_event(t, "turn", |v| v["event"] == "done").is_some()
        })
        .await;
    let text = bob.1[at..seen].to_owned();
    let started = last_event(&text, "turn", |v| v["event"] == "started").unwrap();
    assert_eq!(started["user"], "alice");
    assert_eq!(started["branch"], "main");
    assert_eq!(started["text"], "Analyse LiFePO4");
    assert!(
        last_event(&text, "turn", |v| v["event"] == "tool_call"
            && v["name"] == "materials_analyzer")
        .is_some(),
        "{text}"
    );
    assert!(
        last_event(&text, "turn", |v| v["event"] == "token").is_some(),
        "{text}"
    );
    let done = last_event(&text, "turn", |v| v["event"] == "done").unwrap();
    assert_eq!(done["node"], turn["answer_node"]);
    bob.until(at, "the stored answer", |t| {
        t.contains("molar mass 157.755")
    })
    .await;

    // Alice leaves: within a few seconds bob sees only himself.
    drop(alice);
    let at = bob.1.len();
    bob.until(at, "alice gone", |t| {
        last_event(t, "presence", |v| present(v) == ["bob"]).is_some()
    })
    .await;
}
