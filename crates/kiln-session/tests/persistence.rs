//! Around the session: the audit chain (and tampering with the database file), JSON export and
//! import, statistics.

mod common;

use common::{Env, code};
use kiln_db::NewNode;
use kiln_session::SessionManager;
use kiln_types::{MergeStrategy, NodeKind, Role, SessionStatus};
use serde_json::{Value, json};

/// A session with branches, checkpoints, a restore, a merge, state and lifecycle changes.
async fn rich(e: &Env) -> String {
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("rich").await;
    e.say(&id, "main", Role::User, "Analyse LiFePO4").await;
    e.record(
        &id,
        "main",
        json!({"kind": "material", "formula": "LiFePO4"}),
    )
    .await;
    m.create_checkpoint(a, &id, "cp", None, None).await.unwrap();
    e.say(&id, "main", Role::Assistant, "It is an olivine")
        .await;
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.say(&id, "alt", Role::User, "Try sodium").await;
    e.record(
        &id,
        "alt",
        json!({"kind": "discovery", "id": "d1", "type": "substitution", "description": "Na works"}),
    )
    .await;
    for i in 0..5 {
        e.record(
            &id,
            "alt",
            json!({"kind": "tool_state", "tool": "opt", "state": {"n": i}}),
        )
        .await;
    }
    m.merge(a, &id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    m.create_branch(a, &id, "dead-end", None).await.unwrap();
    e.say(&id, "dead-end", Role::User, "nothing here").await;
    m.discard_branch(a, &id, "dead-end").await.unwrap();
    e.say(&id, "main", Role::User, "more").await;
    m.restore(a, &id, "cp", Some("alt")).await.unwrap();
    m.set_status(a, &id, SessionStatus::Paused).await.unwrap();
    id
}

#[tokio::test]
async fn the_audit_chain_verifies_and_a_tampered_row_is_found() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = rich(&e).await;
    let other = rich(&e).await;
    let log = m.audit(a, &id).await.unwrap();
    let actions: Vec<_> = log.iter().map(|x| x.action.as_str()).collect();
    for want in [
        "session.create",
        "lifecycle",
        "merge",
        "branch.discard",
        "restore",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    assert!(log.iter().all(|x| x.actor == a.user_id));
    let v = m.verify_audit(a, &id).await.unwrap();
    assert!(v.valid && v.first_broken.is_none());
    assert_eq!(v.entries, log.len() as i64);

    // Someone edits the merge entry's payload directly in the database file.
    let merge_seq = log.iter().find(|x| x.action == "merge").unwrap().seq;
    let mut conn = e.raw().await;
    let edit = if conn.is_postgres() {
        "UPDATE audit_log SET payload = jsonb_set(payload::jsonb, '{strategy}', '\"ours\"')::text \
         WHERE session_id = $1 AND seq = $2"
    } else {
        "UPDATE audit_log SET payload = json_set(payload, '$.strategy', 'ours') \
         WHERE session_id = $1 AND seq = $2"
    };
    assert_eq!(conn.exec(edit, &[(&id).into(), merge_seq.into()]).await, 1);
    let v = m.verify_audit(a, &id).await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.first_broken, Some(merge_seq));
    assert!(v.reason.unwrap().contains("hash"));
    assert!(
        m.verify_audit(a, &other).await.unwrap().valid,
        "other sessions are unaffected"
    );

    // Deleting an entry breaks the chain at the gap; rewriting an actor breaks that entry.
    conn.exec(
        "UPDATE audit_log SET actor = 'mallory' WHERE session_id = $1 AND seq = 2",
        &[(&other).into()],
    )
    .await;
    assert_eq!(
        m.verify_audit(a, &other).await.unwrap().first_broken,
        Some(2)
    );
    conn.exec(
        "UPDATE audit_log SET actor = $1 WHERE session_id = $2 AND seq = 2",
        &[(&a.user_id).into(), (&other).into()],
    )
    .await;
    assert!(m.verify_audit(a, &other).await.unwrap().valid);
    conn.exec(
        "DELETE FROM audit_log WHERE session_id = $1 AND seq = 3",
        &[(&other).into()],
    )
    .await;
    let v = m.verify_audit(a, &other).await.unwrap();
    assert_eq!(v.first_broken, Some(4));
    assert!(v.reason.unwrap().contains("seq"));
    // An exported broken chain does not import.
    let doc = serde_json::to_value(m.export_json(a, &id).await.unwrap()).unwrap();
    let err = code(m.import(a, &doc).await, "invalid_input");
    assert!(
        err.message.contains("audit chain broken"),
        "{}",
        err.message
    );
}

async fn branch_view(
    m: &SessionManager,
    e: &Env,
    id: &str,
) -> Vec<(String, String, Vec<String>, Value)> {
    let mut out = Vec::new();
    for b in m.branches(&e.alice, id, true).await.unwrap() {
        let msgs = m
            .messages(&e.alice, id, &b.name, Some(1000), None)
            .await
            .unwrap();
        let state = m.state(&e.alice, id, &b.name, None).await.unwrap();
        out.push((
            b.name,
            b.status,
            msgs.items
                .into_iter()
                .map(|n| format!("{}:{}", n.kind, n.content))
                .collect(),
            serde_json::to_value(state).unwrap(),
        ));
    }
    out
}

#[tokio::test]
async fn export_then_import_round_trips_as_a_new_session() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = rich(&e).await;
    let doc = serde_json::to_value(m.export_json(a, &id).await.unwrap()).unwrap();
    let text = serde_json::to_string(&doc).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let new = m.import(a, &doc).await.unwrap();
    assert_ne!(new.id, id);
    let old = m.session(a, &id).await.unwrap();
    assert_eq!(
        (&new.name, new.status, &new.tags, &new.config),
        (&old.name, old.status, &old.tags, &old.config)
    );
    assert_eq!(
        branch_view(m, &e, &new.id).await,
        branch_view(m, &e, &id).await
    );
    let cps = |s: &str| {
        let m = m.clone();
        let a = a.clone();
        let s = s.to_string();
        async move {
            m.checkpoints(&a, &s)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.name, c.node, c.auto))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(cps(&new.id).await, cps(&id).await);
    assert_eq!(
        m.reflog(a, &new.id).await.unwrap().len(),
        m.reflog(a, &id).await.unwrap().len()
    );
    assert_eq!(
        m.session_events(a, &new.id).await.unwrap().len(),
        m.session_events(a, &id).await.unwrap().len()
    );
    let audit = m.audit(a, &new.id).await.unwrap();
    assert_eq!(audit.len(), m.audit(a, &id).await.unwrap().len() + 1);
    assert_eq!(audit.last().unwrap().action, "session.import");
    assert!(m.verify_audit(a, &new.id).await.unwrap().valid);
    // The imported session works: repeated merges still know their history.
    m.set_status(a, &new.id, SessionStatus::Resumed)
        .await
        .unwrap();
    let r = m
        .merge(a, &new.id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(r.resolved.is_empty());
    e.say(&new.id, "main", Role::User, "after import").await;
    // Imported twice: two more sessions, the source untouched.
    m.import(a, &doc).await.unwrap();
    assert_eq!(
        m.list_sessions(a, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    let md = m.export_markdown(a, &id).await.unwrap();
    assert!(md.contains("Analyse LiFePO4"));
    // Messages are signed with their author's name, not the user id.
    assert!(md.contains("**user** (alice) ·"), "{md}");
    assert!(!md.contains(&format!("({})", a.user_id)), "{md}");
}

#[tokio::test]
async fn bad_imports_are_refused_with_a_clear_message_and_write_nothing() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = rich(&e).await;
    let good = serde_json::to_value(m.export_json(a, &id).await.unwrap()).unwrap();
    let count = || async {
        m.list_sessions(a, Default::default())
            .await
            .unwrap()
            .items
            .len()
    };
    let before = count().await;
    let nodes = good["nodes"].as_array().unwrap().clone();
    let idx = |kind: &str| nodes.iter().position(|n| n["kind"] == kind).unwrap();
    let (ia, im) = (idx("assistant"), idx("material"));
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "not a Kiln session export",
            Box::new(|d| *d = json!([1, 2])),
        ),
        (
            "not a Kiln session export",
            Box::new(|d| {
                d.as_object_mut().unwrap().remove("nodes");
            }),
        ),
        ("format", Box::new(|d| d["format"] = json!("other"))),
        ("version 9", Box::new(|d| d["version"] = json!(9))),
        (
            "unknown parent",
            Box::new(move |d| d["nodes"][ia]["parent_id"] = json!("ghost")),
        ),
        (
            "does not follow its parent",
            Box::new(move |d| d["nodes"][ia]["seq"] = json!(40)),
        ),
        (
            "not a valid event",
            Box::new(move |d| d["nodes"][im]["data"] = json!({"kind": "material"})),
        ),
        (
            "has no data",
            Box::new(move |d| d["nodes"][im]["data"] = Value::Null),
        ),
        (
            "is not the root",
            Box::new(|d| d["nodes"][0]["kind"] = json!("note")),
        ),
        (
            "unknown parent",
            Box::new(|d| {
                d["nodes"].as_array_mut().unwrap().remove(0);
            }),
        ),
        (
            "node ids repeat",
            Box::new(move |d| {
                let n = d["nodes"][1].clone();
                d["nodes"].as_array_mut().unwrap().push(n);
            }),
        ),
        (
            "unknown node",
            Box::new(|d| d["branches"][0]["head"] = json!("ghost")),
        ),
        (
            "appears twice",
            Box::new(|d| {
                let b = d["branches"][0].clone();
                d["branches"].as_array_mut().unwrap().push(b);
            }),
        ),
        (
            "default branch",
            Box::new(|d| d["session"]["default_branch"] = json!("trunk")),
        ),
        (
            "checkpoint",
            Box::new(|d| d["checkpoints"][0]["node"] = json!("ghost")),
        ),
        (
            "no state snapshot",
            Box::new(|d| d["snapshots"] = json!([])),
        ),
        (
            "audit chain broken",
            Box::new(|d| d["audit"][1]["actor"] = json!("mallory")),
        ),
        (
            "segment",
            Box::new(|d| d["segments"][1]["parent"] = json!(999_999)),
        ),
        (
            "checkpoint `cp` appears twice",
            Box::new(|d| {
                let c = d["checkpoints"][0].clone();
                d["checkpoints"].as_array_mut().unwrap().push(c);
            }),
        ),
    ];
    for (want, edit) in cases {
        let mut doc = good.clone();
        edit(&mut doc);
        let err = m.import(a, &doc).await.expect_err(want);
        assert_eq!(
            err.kind,
            kiln_types::ErrorKind::BadRequest,
            "{want}: {}",
            err.message
        );
        assert!(
            err.message.contains(want),
            "expected `{want}` in `{}`",
            err.message
        );
        assert_eq!(count().await, before, "{want}: nothing written");
    }
    m.import(a, &good).await.unwrap();
    assert_eq!(count().await, before + 1);
}

#[tokio::test]
async fn statistics_count_queries_materials_discoveries_tools_and_contributors() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = rich(&e).await;
    m.set_status(a, &id, SessionStatus::Resumed).await.unwrap();
    let calls = [
        "materials_analyzer",
        "bayesian_optimizer",
        "materials_analyzer",
    ]
    .map(|t| NewNode::message(NodeKind::ToolCall, None, "call").with_data(json!({"name": t})))
    .to_vec();
    m.append_nodes(a, &id, "main", calls, None).await.unwrap();
    e.record(
        &id,
        "alt",
        json!({"kind": "material", "formula": "NaFePO4"}),
    )
    .await;
    e.record(
        &id,
        "main",
        json!({"kind": "material", "formula": "LiFePO4"}),
    )
    .await;
    let s = m.statistics(a, &id).await.unwrap();
    assert_eq!(
        s.queries, 4,
        "user messages on every branch, discarded ones included"
    );
    assert_eq!(s.materials, 2, "distinct formulas");
    assert_eq!(s.discoveries, 1);
    assert_eq!(s.tool_usage["materials_analyzer"], 2);
    assert_eq!(s.tool_usage["bayesian_optimizer"], 1);
    assert_eq!(s.branches, 3);
    assert_eq!(s.checkpoints, 2);
    let alice = &s.contributions["alice"];
    assert_eq!(alice.queries, 4);
    assert_eq!(alice.discoveries, 1);
    assert!(!s.contributions.contains_key("bob"));
    assert!(s.active_seconds >= 0);
    assert_eq!(
        s.messages,
        5 + 3,
        "five conversation messages plus three tool calls"
    );
    code(m.statistics(&e.bob, &id).await, "not_found");
}

#[tokio::test]
async fn statistics_counted_incrementally_match_a_fresh_count() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("tally").await;
    let other = e.session("other").await;
    e.say(&id, "main", Role::User, "Analyse LiFePO4").await;
    e.record(
        &id,
        "main",
        json!({"kind": "material", "formula": "LiFePO4"}),
    )
    .await;
    let first = m.statistics(a, &id).await.unwrap();
    assert_eq!((first.queries, first.materials), (1, 1));
    // More nodes: in this session through another manager on the same file (as another
    // process would), on another branch, and in another session (newer rowids that the
    // warm count must skip).
    let second = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap();
    second
        .append_nodes(
            a,
            &id,
            "main",
            vec![
                NewNode::message(NodeKind::ToolCall, None, "call")
                    .with_data(json!({"name": "notebook"})),
            ],
            None,
        )
        .await
        .unwrap();
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.say(&id, "alt", Role::User, "Analyse LiCoO2").await;
    e.record(&id, "alt", json!({"kind": "material", "formula": "LiCoO2"}))
        .await;
    e.record(
        &id,
        "alt",
        json!({"kind": "material", "formula": "LiFePO4"}),
    )
    .await;
    e.say(&other, "main", Role::User, "not this session").await;
    e.record(
        &other,
        "main",
        json!({"kind": "material", "formula": "NaCl"}),
    )
    .await;
    let warm = m.statistics(a, &id).await.unwrap();
    let fresh = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap()
        .statistics(a, &id)
        .await
        .unwrap();
    // Active time moves with the clock; everything counted from nodes must agree.
    let counted = |s: &kiln_session::Statistics| {
        (
            s.queries,
            s.messages,
            s.materials,
            s.discoveries,
            s.tool_usage.clone(),
            s.contributions.clone(),
            s.branches,
        )
    };
    assert_eq!(counted(&warm), counted(&fresh));
    assert_eq!(
        (warm.queries, warm.materials),
        (2, 2),
        "NaCl is the other session's"
    );
    assert_eq!(warm.tool_usage["notebook"], 1);
    // A count with nothing new changes nothing.
    assert_eq!(
        counted(&m.statistics(a, &id).await.unwrap()),
        counted(&warm)
    );
}
