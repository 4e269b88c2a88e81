//! Kiln's templates with user data in them: the Markdown report renders a long session whole
//! within its fuel.

mod common;

use serde_json::json;

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
