//! Merge and diff through the manager: conflicts, strategies, repeated merges, diffs.

mod common;

use common::{Env, code};
use kiln_types::{MergeStrategy, Role};
use serde_json::json;

fn pin(key: &str, value: i64) -> serde_json::Value {
    json!({"kind": "context_pin", "key": key, "value": value})
}

/// main and alt both change pin `a` (base 1, ours 2, theirs 3); alt also adds a discovery.
async fn diverged(e: &Env) -> String {
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    e.say(&id, "main", Role::User, "start").await;
    e.record(&id, "main", pin("a", 1)).await;
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.record(&id, "main", pin("a", 2)).await;
    e.say(&id, "alt", Role::User, "try sodium").await;
    e.record(&id, "alt", pin("a", 3)).await;
    e.record(
        &id,
        "alt",
        json!({"kind": "discovery", "id": "d1", "type": "structure", "description": "olivine"}),
    )
    .await;
    e.say(&id, "alt", Role::Assistant, "sodium works").await;
    id
}

#[tokio::test]
async fn conflicts_fail_the_merge_and_name_field_base_ours_theirs() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = diverged(&e).await;
    let head = e.head(&id, "main").await;
    let err = code(
        m.merge(a, &id, "alt", "main", MergeStrategy::Fail).await,
        "merge_conflict",
    );
    assert_eq!(err.kind, kiln_types::ErrorKind::Conflict);
    let conflicts = err.details.unwrap()["conflicts"].clone();
    assert_eq!(
        conflicts,
        json!([{"key": "context.a", "field": "context.a", "base": 1, "ours": 2, "theirs": 3,
                 "can_keep_both": true, "subject": "Pin 'a'", "base_text": "1",
                 "ours_text": "2", "theirs_text": "3",
                 "description": "Pin 'a': 2 on main, 3 on alt (was 1)"}])
    );
    assert_eq!(
        e.head(&id, "main").await,
        head,
        "a failed merge writes nothing"
    );
    assert_eq!(
        m.branches(a, &id, false)
            .await
            .unwrap()
            .iter()
            .find(|b| b.name == "alt")
            .unwrap()
            .status,
        "open"
    );
}

#[tokio::test]
async fn strategies_settle_conflicts() {
    for (strategy, a_value, extra) in [
        (MergeStrategy::Ours, 2, None),
        (MergeStrategy::Theirs, 3, None),
        (MergeStrategy::Union, 2, Some(3)),
    ] {
        let e = common::env().await;
        let (m, a) = (&e.mgr, &e.alice);
        let id = diverged(&e).await;
        let r = m.merge(a, &id, "alt", "main", strategy).await.unwrap();
        assert!(r.merged);
        assert_eq!(r.resolved.len(), 1, "{strategy:?}");
        let st = m.state(a, &id, "main", None).await.unwrap();
        assert_eq!(st.context["a"], json!(a_value), "{strategy:?}");
        assert_eq!(st.context.get("a@alt").cloned(), extra.map(|v| json!(v)));
        assert_eq!(st.discoveries.len(), 1, "one-sided changes always merge");
        // The merge node has two parents and carries a summary, not alt's transcript.
        let page = m.messages(a, &id, "main", Some(10), None).await.unwrap();
        let merge = &page.items[0];
        assert_eq!(merge.kind, kiln_types::NodeKind::Merge);
        assert_eq!(
            merge.merge_parent_id.as_deref(),
            Some(e.head(&id, "alt").await.as_str())
        );
        assert!(merge.content.contains("alt") && merge.content.contains("try sodium"));
        assert!(!page.items.iter().any(|n| n.content == "sodium works"));
        assert_eq!(r.head, e.head(&id, "main").await);
        let alt = m.branches(a, &id, false).await.unwrap();
        assert_eq!(
            alt.iter().find(|b| b.name == "alt").unwrap().status,
            "merged"
        );
        let st_at = m
            .state(a, &id, "main", Some(r.merge_node.as_deref().unwrap()))
            .await
            .unwrap();
        assert_eq!(st_at, st, "the merge node's snapshot is the merged state");
    }
}

#[tokio::test]
async fn merging_twice_is_a_no_op_and_later_merges_take_only_new_work() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = diverged(&e).await;
    let first = m
        .merge(a, &id, "alt", "main", MergeStrategy::Union)
        .await
        .unwrap();
    let head = e.head(&id, "main").await;
    let again = m
        .merge(a, &id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(!again.merged);
    assert_eq!(again.merge_node, first.merge_node);
    assert_eq!(e.head(&id, "main").await, head);

    // More work on alt: only that is merged; the conflict settled last time does not return.
    let alt_head = e.head(&id, "alt").await;
    e.say(&id, "alt", Role::User, "and potassium?").await;
    e.record(&id, "alt", pin("b", 7)).await;
    e.record(&id, "main", pin("c", 8)).await;
    let second = m
        .merge(a, &id, "alt", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(second.merged);
    assert_eq!(
        second.base, alt_head,
        "the base is the head merged last time"
    );
    let node = m
        .db()
        .node(&id, second.merge_node.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(node.data.as_ref().unwrap()["nodes_merged"], json!(2));
    assert!(node.content.contains("and potassium?") && !node.content.contains("try sodium"));
    let st = m.state(a, &id, "main", None).await.unwrap();
    assert_eq!(
        (
            st.context["a"].clone(),
            st.context["a@alt"].clone(),
            st.context["b"].clone(),
            st.context["c"].clone()
        ),
        (json!(2), json!(3), json!(7), json!(8))
    );
    assert_eq!(st.discoveries.len(), 1);

    // A branch behind its target has nothing to merge.
    m.create_branch(a, &id, "behind", None).await.unwrap();
    e.say(&id, "main", Role::User, "moving on").await;
    let r = m
        .merge(a, &id, "behind", "main", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(!r.merged);
    code(
        m.merge(a, &id, "main", "main", MergeStrategy::Fail).await,
        "invalid_input",
    );
    code(
        m.merge(a, &id, "nope", "main", MergeStrategy::Fail).await,
        "not_found",
    );
    code(
        m.merge(a, &id, "alt", "nope", MergeStrategy::Fail).await,
        "not_found",
    );
    assert!(m.verify_audit(a, &id).await.unwrap().valid);
}

#[tokio::test]
async fn merging_back_the_other_way_keeps_both_sides() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = diverged(&e).await;
    let first = m
        .merge(a, &id, "alt", "main", MergeStrategy::Ours)
        .await
        .unwrap();
    // main now contains alt: merging main back into alt uses alt's merged head as the base,
    // so the conflict settled by the first merge does not come back.
    let r = m
        .merge(a, &id, "main", "alt", MergeStrategy::Fail)
        .await
        .unwrap();
    assert!(r.merged);
    assert!(r.resolved.is_empty());
    assert_eq!(
        r.base,
        m.db()
            .node(&id, first.merge_node.as_deref().unwrap())
            .await
            .unwrap()
            .merge_parent_id
            .unwrap()
    );
    let main = m.state(a, &id, "main", None).await.unwrap();
    let alt = m.state(a, &id, "alt", None).await.unwrap();
    assert_eq!(main.context, alt.context);
    assert_eq!(main.discoveries, alt.discoveries);
}

#[tokio::test]
async fn diff_shows_messages_on_each_side_and_the_state_difference() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = diverged(&e).await;
    let d = m.diff(a, &id, "main", "alt", None).await.unwrap();
    assert!(
        d.only_from.is_empty(),
        "main has only a state event since the fork"
    );
    let to: Vec<_> = d.only_to.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(to, ["try sodium", "sodium works"]);
    assert_eq!(d.state.discoveries.added.len(), 1);
    assert_eq!(d.state.context.changed.len(), 1);
    assert_eq!(d.state.context.changed[0].key, "a");
    let back = m.diff(a, &id, "alt", "main", None).await.unwrap();
    assert_eq!(back.only_from.len(), 2);
    assert_eq!(back.state.discoveries.removed.len(), 1);
    m.create_checkpoint(a, &id, "cp", Some("alt"), None)
        .await
        .unwrap();
    let same = m.diff(a, &id, "alt", "cp", None).await.unwrap();
    assert!(same.only_from.is_empty() && same.only_to.is_empty());
    assert!(same.state.discoveries.is_empty() && same.state.context.is_empty());
    let node = e.head(&id, "main").await;
    let by_node = m.diff(a, &id, &node, "alt", None).await.unwrap();
    assert_eq!(by_node.only_to.len(), 2);
    code(m.diff(a, &id, "main", "nope", None).await, "not_found");
    code(m.diff(&e.bob, &id, "main", "alt", None).await, "not_found");
}
