//! Conversation tree through the manager: append, read, fork, checkpoint, restore, merge.

mod common;

use kiln_session::{BranchFrom, CreateSession, EventInput, MessageInput};
use kiln_types::{MergeStrategy, Role, SessionStatus};
use serde_json::json;

fn msg(role: Role, content: &str) -> MessageInput {
    MessageInput {
        role,
        content: content.into(),
        expected_head: None,
    }
}

fn event(v: serde_json::Value) -> EventInput {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn fork_checkpoint_restore_and_merge_keep_everything() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let s = m
        .create_session(
            a,
            CreateSession {
                name: "t".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = s.id.as_str();
    let out = m
        .append_message(a, id, "main", msg(Role::User, "Analyse LiFePO4"))
        .await
        .unwrap();
    assert!(out.activated);
    assert_eq!(
        m.session(a, id).await.unwrap().status,
        SessionStatus::Active
    );
    m.append_event(
        a,
        id,
        "main",
        event(json!({"kind": "material", "formula": "LiFePO4"})),
    )
    .await
    .unwrap();
    m.create_checkpoint(a, id, "cp1", None, None).await.unwrap();
    for i in 0..6 {
        m.append_message(a, id, "main", msg(Role::Assistant, &format!("answer {i}")))
            .await
            .unwrap();
    }
    m.create_branch(a, id, "alt", Some(BranchFrom::Checkpoint("cp1".into())))
        .await
        .unwrap();
    m.append_message(a, id, "alt", msg(Role::User, "What about NaFePO4?"))
        .await
        .unwrap();
    m.append_event(
        a,
        id,
        "alt",
        event(json!({"kind": "discovery", "type": "structure_property", "description": "olivine"})),
    )
    .await
    .unwrap();
    let alt = m.messages(a, id, "alt", Some(10), None).await.unwrap();
    assert_eq!(alt.items.len(), 2, "alt sees the user message and its own");
    assert_eq!(alt.items[0].content, "What about NaFePO4?");
    let page = m.messages(a, id, "main", Some(3), None).await.unwrap();
    assert_eq!(page.items.len(), 3);
    let next = m
        .messages(a, id, "main", Some(10), page.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(next.items.len(), 4);
    assert_eq!(next.items.last().unwrap().content, "Analyse LiFePO4");

    let r = m.restore(a, id, "cp1", Some("main")).await.unwrap();
    assert!(r.saved_as.starts_with("before-restore-"));
    assert_eq!(
        m.messages(a, id, "main", Some(50), None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let st = m.state(a, id, "main", Some(&r.saved_as)).await.unwrap();
    assert_eq!(st.materials.len(), 1);
    // Restoring the checkpoint the branch is already at moves nothing and saves nothing.
    let (cps, log) = (
        m.checkpoints(a, id).await.unwrap().len(),
        m.reflog(a, id).await.unwrap().len(),
    );
    let again = m.restore(a, id, "cp1", Some("main")).await.unwrap();
    assert_eq!(again.old_head, again.new_head);
    assert_eq!(
        again.saved_as, "cp1",
        "the head is kept by the checkpoint itself"
    );
    assert_eq!(m.checkpoints(a, id).await.unwrap().len(), cps);
    assert_eq!(m.reflog(a, id).await.unwrap().len(), log);

    let merged = m
        .merge(a, id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(merged.merged);
    let state = m.state(a, id, "main", None).await.unwrap();
    assert_eq!(state.discoveries.len(), 1);
    let again = m
        .merge(a, id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(!again.merged, "merging twice is a no-op");
    let d = m.diff(a, id, "main", &r.saved_as, None).await.unwrap();
    assert_eq!(d.only_to.len(), 6);
    assert!(m.verify_audit(a, id).await.unwrap().valid);
    let export = m.export_json(a, id).await.unwrap();
    let imported = m
        .import(a, &serde_json::to_value(&export).unwrap())
        .await
        .unwrap();
    assert_ne!(imported.id, s.id);
    let st2 = m.state(a, &imported.id, "main", None).await.unwrap();
    assert_eq!(st2, state);
    let md = m.export_markdown(a, id).await.unwrap();
    assert!(md.contains("Analyse LiFePO4") && md.contains("olivine"));
    assert!(
        m.session(&e.bob, id).await.is_err(),
        "bob cannot see alice's session"
    );
}
