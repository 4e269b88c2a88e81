//! The weekly digest on a real server's store: a user's digest tells what changed in the
//! sessions they may read (discoveries, hypotheses, optimizer progress), never what is in a
//! session they may not read; it is written once per user and week, and shows as a session.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{Server, start};

impl Server {
    async fn ok(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (s, v) = self.request(method, path, Some(token), body).await;
        assert!(s.is_success(), "{path}: {s} {v}");
        v
    }

    /// The text of the user's digest notes, newest first (empty when they have none).
    async fn digests(&self, token: &str) -> Vec<String> {
        let list = self
            .ok(token, Method::GET, "/v1/sessions?limit=100", None)
            .await;
        let Some(d) = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["metadata"]["digest"] == true)
        else {
            return Vec::new();
        };
        let id = d["id"].as_str().unwrap();
        assert_eq!(d["name"], "Weekly digest");
        let msgs = self
            .ok(
                token,
                Method::GET,
                &format!("/v1/sessions/{id}/branches/main/messages"),
                None,
            )
            .await;
        msgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["kind"] == "note")
            .map(|n| n["content"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn each_user_gets_one_digest_a_week_of_what_they_may_read() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let id = srv
        .ok(
            &alice,
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "Cathodes"})),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ev = format!("/v1/sessions/{id}/branches/main/events");
    srv.ok(
        &alice,
        Method::POST,
        &ev,
        Some(json!({"kind": "discovery", "type": "performance",
                    "description": "Carbon coating doubles the rate capability"})),
    )
    .await;
    srv.ok(
        &alice,
        Method::POST,
        &ev,
        Some(
            json!({"kind": "hypothesis", "statement": "Mn doping raises the voltage",
                    "status": "supported"}),
        ),
    )
    .await;
    srv.ok(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{id}/tools/bayesian_optimizer"),
        Some(json!({"arguments": {"action": "define_space",
            "variables": [{"name": "t", "type": "real", "bounds": [300, 900]}],
            "objective": {"name": "capacity", "goal": "maximize"}}})),
    )
    .await;
    srv.ok(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{id}/tools/bayesian_optimizer"),
        Some(
            json!({"arguments": {"action": "add_experiments", "experiments": [
            {"inputs": {"t": 400}, "output": 120.5}, {"inputs": {"t": 700}, "output": 151.25}]}}),
        ),
    )
    .await;
    // Bob has a quiet session of his own and cannot read Alice's.
    srv.ok(
        &bob,
        Method::POST,
        "/v1/sessions",
        Some(json!({"name": "Quiet"})),
    )
    .await;

    let now = chrono::Utc::now();
    let r = srv.mgr.run_digests(now, "test-a").await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.written, 1, "{r:?}");
    let notes = srv.digests(&alice).await;
    assert_eq!(notes.len(), 1);
    let d = &notes[0];
    assert!(d.starts_with("# Weekly digest"), "{d}");
    assert!(d.contains("## Cathodes"), "{d}");
    assert!(
        d.contains("[performance] Carbon coating doubles the rate capability"),
        "{d}"
    );
    assert!(
        d.contains("(supported) Mn doping raises the voltage"),
        "{d}"
    );
    assert!(
        d.contains("best capacity 151.25 after 2 experiment(s)"),
        "{d}"
    );
    assert!(
        srv.digests(&bob).await.is_empty(),
        "bob had nothing new, and no access"
    );

    // Once a week: another server (or a restart) in the same week writes nothing more.
    let again = srv.mgr.run_digests(now, "test-b").await;
    assert_eq!(again.written, 0, "{again:?}");
    assert_eq!(srv.digests(&alice).await.len(), 1);

    // Shared with bob, the next week's digest of his includes it; the digest sessions
    // themselves are never digested.
    srv.ok(
        &alice,
        Method::POST,
        &format!("/v1/sessions/{id}/collaborators"),
        Some(json!({"user": "bob", "permissions": ["read"]})),
    )
    .await;
    let next = now + chrono::TimeDelta::days(7);
    // (The week's window is measured back from the run: move the findings into it.)
    srv.ok(
        &alice,
        Method::POST,
        &ev,
        Some(json!({"kind": "discovery", "type": "structure",
                    "description": "The olivine framework survives 500 cycles"})),
    )
    .await;
    let r = srv.mgr.run_digests(next, "test-a").await;
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let bobs = srv.digests(&bob).await;
    assert_eq!(bobs.len(), 1, "{r:?}");
    assert!(bobs[0].contains("olivine framework"), "{}", bobs[0]);
    assert!(!bobs[0].contains("Weekly digest ("), "{}", bobs[0]);
}
