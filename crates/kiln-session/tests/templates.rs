//! Kiln's templates with user data in them: text saved from a session is never evaluated when a
//! session is made from its template, and the Markdown report renders a long session whole
//! within its fuel.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

/// Template code in a saved session's hypotheses was evaluated: `{{ 7*7 }}` became `49`.
#[tokio::test]
async fn saved_expressions_are_not_evaluated() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("arithmetic").await;
    e.record(
        &id,
        "main",
        json!({"kind": "hypothesis", "statement": "{{ 7*7 }}", "status": "open"}),
    )
    .await;
    m.save_as_template(a, &id, "arith", "").await.unwrap();
    let made = m
        .create_from_template(a, "arith", &BTreeMap::new())
        .await
        .unwrap();
    let st = m.state(a, &made.id, "main", None).await.unwrap();
    assert_eq!(st.hypotheses[0].statement, "{{ 7*7 }}");
}

/// Whatever a session's texts say (template syntax, broken syntax, lone braces), its template
/// recreates them exactly.
#[tokio::test]
async fn saved_session_text_comes_back_exactly() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("{{ 7*7 }} name {%").await;
    e.record(
        &id,
        "main",
        json!({"kind": "context_pin", "key": "p", "value": "{x} {{ y }} {% if %}"}),
    )
    .await;
    e.record(
        &id,
        "main",
        json!({"kind": "focus", "material": "{{ range(3) | list }}"}),
    )
    .await;
    e.record(
        &id,
        "main",
        json!({"kind": "task", "description": "{literal} }{", "status": "pending"}),
    )
    .await;
    m.save_as_template(a, &id, "verbatim", "").await.unwrap();
    let made = m
        .create_from_template(a, "verbatim", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(made.name, "{{ 7*7 }} name {%");
    let st = m.state(a, &made.id, "main", None).await.unwrap();
    assert_eq!(st.context["p"], json!("{x} {{ y }} {% if %}"));
    assert_eq!(st.focus.material.as_deref(), Some("{{ range(3) | list }}"));
    assert_eq!(st.tasks[0].description, "{literal} }{");
}

/// A nested loop in a saved task ran for minutes per request; it is text, answered at once.
/// (A runaway render blocks its worker thread, so this test runs its own runtime and leaves
/// such a worker behind rather than wait for it: it fails within 5 s instead of hanging.)
#[test]
fn saved_loops_do_not_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
    let outcome = rt.block_on(async {
        let e = common::env().await;
        let id = e.session("loops").await;
        e.record(
            &id,
            "main",
            json!({"kind": "task", "description": slow, "status": "pending"}),
        )
        .await;
        e.mgr
            .save_as_template(&e.alice, &id, "slow", "")
            .await
            .unwrap();
        let (m, a) = (e.mgr.clone(), e.alice.clone());
        let job =
            tokio::spawn(async move { m.create_from_template(&a, "slow", &BTreeMap::new()).await });
        match tokio::time::timeout(Duration::from_secs(5), job).await {
            Err(_) => Err("instantiating did not answer within 5 s"),
            Ok(made) => {
                let made = made.unwrap().unwrap();
                let st = e.mgr.state(&e.alice, &made.id, "main", None).await.unwrap();
                assert_eq!(st.tasks[0].description, slow);
                Ok(())
            }
        }
    });
    rt.shutdown_background();
    outcome.unwrap();
}

/// The Markdown report (a minijinja template of Kiln's own, with a fuel budget that grows with
/// what it lists) exports a long session whole.
#[tokio::test]
async fn a_long_session_reports_whole_within_its_fuel() {
    let e = common::env_with(64).await;
    let id = e.session("long").await;
    for i in 0..1200 {
        let role = if i % 2 == 0 {
            kiln_types::Role::User
        } else {
            kiln_types::Role::Assistant
        };
        e.say(&id, "main", role, &format!("msg-{i:04}-end")).await;
    }
    for i in 0..300 {
        e.record(
            &id,
            "main",
            json!({"kind": "material", "formula": format!("Li{}FePO4", i + 1)}),
        )
        .await;
        e.record(
            &id,
            "main",
            json!({"kind": "task", "description": format!("task-{i:04}"), "status": "pending"}),
        )
        .await;
    }
    let md = e.mgr.export_markdown(&e.alice, &id).await.unwrap();
    for shown in [
        "msg-0000-end",
        "msg-1199-end",
        "| Li300FePO4 |",
        "task-0299",
    ] {
        assert!(md.contains(shown), "{shown} missing");
    }
}
