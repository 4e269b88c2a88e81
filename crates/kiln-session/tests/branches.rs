//! Branches, lazy reads, checkpoints, restore and recover through the manager.

mod common;

use common::{code, msg};
use kiln_db::NewNode;
use kiln_session::{BranchFrom, MessageInput};
use kiln_types::{ErrorKind, NodeKind, Role};
use serde_json::json;

#[tokio::test]
async fn expected_head_detects_a_concurrent_append() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    let h1 = e.say(&id, "main", Role::User, "one").await;
    let with = |head: &str, content: &str| MessageInput {
        role: Role::User,
        content: content.into(),
        expected_head: Some(head.into()),
    };
    let h2 = m
        .append_message(a, &id, "main", with(&h1, "two"))
        .await
        .unwrap()
        .head;
    let err = code(
        m.append_message(a, &id, "main", with(&h1, "stale")).await,
        "head_moved",
    );
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert_eq!(err.details.unwrap()["head"], json!(h2));
    code(
        m.append_event(
            a,
            &id,
            "main",
            common::ev(json!({"kind": "focus", "topic": "x", "expected_head": h1})),
        )
        .await,
        "head_moved",
    );
    assert_eq!(e.contents(&id, "main").await, ["one", "two"]);
}

#[tokio::test]
async fn bad_messages_and_unknown_targets_are_refused() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    code(
        m.append_message(a, &id, "main", msg(Role::User, "  "))
            .await,
        "invalid_input",
    );
    let huge = "x".repeat(kiln_session::MAX_MESSAGE_BYTES + 1);
    let err = code(
        m.append_message(a, &id, "main", msg(Role::User, &huge))
            .await,
        "too_large",
    );
    assert_eq!(err.kind, ErrorKind::PayloadTooLarge);
    code(
        m.append_message(a, &id, "nope", msg(Role::User, "x")).await,
        "not_found",
    );
    code(
        m.append_message(a, "no-such-session", "main", msg(Role::User, "x"))
            .await,
        "not_found",
    );
    code(
        m.append_message(&e.bob, &id, "main", msg(Role::User, "x"))
            .await,
        "not_found",
    );
    code(
        m.append_event(
            a,
            &id,
            "main",
            common::ev(json!({"kind": "discovery_link", "from": "a", "to": "b",
                "relationship": "supports"})),
        )
        .await,
        "invalid_input",
    );
    code(
        m.messages(a, &id, "main", None, Some("abc")).await,
        "invalid_input",
    );
    // Nodes the tree could not replay are refused before anything is written.
    let discovery = json!({"kind": "discovery", "type": "t", "description": "d"});
    let bad_nodes = [
        NewNode::message(NodeKind::Merge, None, "fake merge"),
        NewNode::message(NodeKind::Root, None, "second root"),
        NewNode::message(NodeKind::Discovery, None, "no event"),
        NewNode {
            kind: NodeKind::Material,
            ..NewNode::event(serde_json::from_value(discovery).unwrap(), None)
        },
    ];
    for bad in bad_nodes {
        let nodes = vec![NewNode::message(NodeKind::User, None, "fine"), bad];
        code(
            m.append_nodes(a, &id, "main", nodes, None).await,
            "invalid_input",
        );
    }
    code(
        m.append_nodes(a, &id, "main", vec![], None).await,
        "invalid_input",
    );
    // A stranger learns nothing, not even which branches exist.
    for branch in ["main", "nope"] {
        let err = code(
            m.append_message(&e.bob, &id, branch, msg(Role::User, "x"))
                .await,
            "not_found",
        );
        assert!(err.message.contains("session"), "{}", err.message);
        let err = code(
            m.messages(&e.bob, &id, branch, None, None).await,
            "not_found",
        );
        assert!(err.message.contains("session"), "{}", err.message);
    }
    let err = code(m.messages(a, &id, "nope", None, None).await, "not_found");
    assert!(err.message.contains("branch"), "{}", err.message);
    assert!(e.contents(&id, "main").await.is_empty());
}

#[tokio::test]
async fn history_reads_lazily_newest_first_across_forks() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    let mut heads = Vec::new();
    for i in 0..25 {
        heads.push(e.say(&id, "main", Role::User, &format!("m{i}")).await);
        if i % 5 == 0 {
            e.record(
                &id,
                "main",
                json!({"kind": "material", "formula": format!("Fe{}O3", i + 1)}),
            )
            .await;
        }
    }
    let mut pages = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let p = m
            .messages(a, &id, "main", Some(10), before.as_deref())
            .await
            .unwrap();
        pages.push(
            p.items
                .iter()
                .map(|n| n.content.clone())
                .collect::<Vec<_>>(),
        );
        match p.next_cursor {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let all: Vec<String> = pages.concat();
    let expected: Vec<String> = (0..25).rev().map(|i| format!("m{i}")).collect();
    assert_eq!(all, expected, "state events are not messages");

    // A branch forked at m9 reads its own messages, then main's up to the fork.
    m.create_branch(a, &id, "alt", Some(BranchFrom::Node(heads[9].clone())))
        .await
        .unwrap();
    for i in 0..3 {
        e.say(&id, "alt", Role::Assistant, &format!("a{i}")).await;
    }
    let p = m.messages(a, &id, "alt", Some(5), None).await.unwrap();
    let got: Vec<_> = p.items.iter().map(|n| n.content.as_str()).collect();
    assert_eq!(got, ["a2", "a1", "a0", "m9", "m8"]);
    let rest = m
        .messages(a, &id, "alt", Some(100), p.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 8);
    assert_eq!(rest.items[0].content, "m7");
    assert!(rest.next_cursor.is_none());
    let first = &m
        .messages(a, &id, "alt", Some(1), None)
        .await
        .unwrap()
        .items[0];
    assert_eq!(first.author.as_deref(), Some(a.user_id.as_str()));
    assert_eq!(first.role, kiln_types::NodeKind::Assistant);
}

#[tokio::test]
async fn branches_fork_from_a_branch_a_node_or_a_checkpoint_without_copying() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    let n1 = e.say(&id, "main", Role::User, "one").await;
    e.record(
        &id,
        "main",
        json!({"kind": "context_pin", "key": "k", "value": 1}),
    )
    .await;
    m.create_checkpoint(a, &id, "cp", None, None).await.unwrap();
    let n3 = e.say(&id, "main", Role::User, "three").await;
    let nodes = |m: &kiln_session::SessionManager| {
        let m = m.clone();
        let id = id.clone();
        async move {
            m.db()
                .node_counts(&id)
                .await
                .unwrap()
                .iter()
                .map(|c| c.2)
                .sum::<i64>()
        }
    };
    let before = nodes(m).await;
    let b1 = m.create_branch(a, &id, "from-main", None).await.unwrap();
    let b2 = m
        .create_branch(
            a,
            &id,
            "from-branch",
            Some(BranchFrom::Branch("from-main".into())),
        )
        .await
        .unwrap();
    let b3 = m
        .create_branch(a, &id, "from-node", Some(BranchFrom::Node(n1.clone())))
        .await
        .unwrap();
    let b4 = m
        .create_branch(a, &id, "from-cp", Some(BranchFrom::Checkpoint("cp".into())))
        .await
        .unwrap();
    assert_eq!(nodes(m).await, before, "forks copy nothing");
    assert_eq!(
        (b1.head.as_str(), b2.head.as_str()),
        (n3.as_str(), n3.as_str())
    );
    assert_eq!(b3.head, n1);
    assert_eq!(b4.head, m.checkpoints(a, &id).await.unwrap()[0].node);
    assert_eq!(e.contents(&id, "from-node").await, ["one"]);
    assert_eq!(e.contents(&id, "from-cp").await, ["one"]);
    assert!(
        m.state(a, &id, "from-node", None)
            .await
            .unwrap()
            .context
            .is_empty()
    );
    assert_eq!(
        m.state(a, &id, "from-cp", None).await.unwrap().context["k"],
        json!(1)
    );
    let names: Vec<_> = m
        .branches(a, &id, false)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names.len(), 5);
    assert!(names.contains(&"main".to_string()) && names.contains(&"from-cp".to_string()));

    code(
        m.create_branch(a, &id, "from-main", None).await,
        "already_exists",
    );
    for bad in ["", "-x", "has space", &"x".repeat(65)] {
        code(m.create_branch(a, &id, bad, None).await, "invalid_input");
    }
    code(
        m.create_branch(a, &id, "x", Some(BranchFrom::Node("nope".into())))
            .await,
        "not_found",
    );
    code(
        m.create_branch(a, &id, "x", Some(BranchFrom::Checkpoint("nope".into())))
            .await,
        "not_found",
    );
    code(
        m.create_branch(a, &id, "x", Some(BranchFrom::Branch("nope".into())))
            .await,
        "not_found",
    );
    let other = e.session("other").await;
    let foreign = e.say(&other, "main", Role::User, "elsewhere").await;
    code(
        m.create_branch(a, &id, "x", Some(BranchFrom::Node(foreign)))
            .await,
        "not_found",
    );
    let from: BranchFrom = serde_json::from_value(json!({"checkpoint": "cp"})).unwrap();
    assert_eq!(from, BranchFrom::Checkpoint("cp".into()));
}

#[tokio::test]
async fn discarded_branches_are_hidden_refuse_writes_and_can_be_reopened() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    e.say(&id, "main", Role::User, "one").await;
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.say(&id, "alt", Role::User, "two").await;
    let b = m.discard_branch(a, &id, "alt").await.unwrap();
    assert_eq!(b.status, "discarded");
    let visible = m.branches(a, &id, false).await.unwrap();
    assert_eq!(visible.len(), 1);
    assert_eq!(m.branches(a, &id, true).await.unwrap().len(), 2);
    code(
        m.append_message(a, &id, "alt", msg(Role::User, "x")).await,
        "branch_discarded",
    );
    code(
        m.merge(a, &id, "alt", "main", kiln_types::MergeStrategy::Union)
            .await,
        "branch_discarded",
    );
    assert_eq!(
        e.contents(&id, "alt").await,
        ["one", "two"],
        "nothing is deleted"
    );
    code(m.discard_branch(a, &id, "main").await, "invalid_input");
    code(m.discard_branch(a, &id, "nope").await, "not_found");
    let again = m.discard_branch(a, &id, "alt").await.unwrap();
    assert_eq!(again.version, b.version, "discarding twice changes nothing");
    let r = m.reopen_branch(a, &id, "alt").await.unwrap();
    assert_eq!(r.status, "open");
    assert_eq!(m.branches(a, &id, false).await.unwrap().len(), 2);
    e.say(&id, "alt", Role::User, "three").await;
    let reasons: Vec<_> = m
        .reflog(a, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert!(reasons.contains(&"discard".to_string()) && reasons.contains(&"reopen".to_string()));
    let audit: Vec<_> = m
        .audit(a, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.action)
        .collect();
    assert!(audit.contains(&"branch.discard".to_string()));
}

#[tokio::test]
async fn checkpoints_name_nodes_and_refuse_bad_names() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    let n1 = e.say(&id, "main", Role::User, "one").await;
    let n2 = e.say(&id, "main", Role::User, "two").await;
    let c1 = m
        .create_checkpoint(a, &id, "head", None, None)
        .await
        .unwrap();
    assert_eq!(
        (c1.node.as_str(), c1.branch.as_deref(), c1.auto),
        (n2.as_str(), Some("main"), false)
    );
    let c2 = m
        .create_checkpoint(a, &id, "first", None, Some(&n1))
        .await
        .unwrap();
    assert_eq!(c2.node, n1);
    let names: Vec<_> = m
        .checkpoints(a, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["head", "first"]);
    code(
        m.create_checkpoint(a, &id, "head", None, None).await,
        "already_exists",
    );
    code(
        m.create_checkpoint(a, &id, "before-restore-x", None, None)
            .await,
        "invalid_input",
    );
    code(
        m.create_checkpoint(a, &id, "a b", None, None).await,
        "invalid_input",
    );
    code(
        m.create_checkpoint(a, &id, "x", Some("nope"), None).await,
        "not_found",
    );
    code(
        m.create_checkpoint(a, &id, "x", None, Some("nope")).await,
        "not_found",
    );
    code(
        m.create_checkpoint(&e.bob, &id, "x", None, None).await,
        "not_found",
    );
}

#[tokio::test]
async fn restore_moves_the_head_back_and_never_loses_a_message() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    e.say(&id, "main", Role::User, "one").await;
    e.record(
        &id,
        "main",
        json!({"kind": "hypothesis", "id": "h", "statement": "s"}),
    )
    .await;
    let cp = m.create_checkpoint(a, &id, "cp", None, None).await.unwrap();
    e.say(&id, "main", Role::User, "two").await;
    e.record(
        &id,
        "main",
        json!({"kind": "hypothesis", "id": "h", "statement": "s", "status": "refuted"}),
    )
    .await;
    let old_head = e.say(&id, "main", Role::User, "three").await;

    let r = m.restore(a, &id, "cp", None).await.unwrap();
    assert_eq!(
        (r.branch.as_str(), r.old_head.as_str(), r.new_head.as_str()),
        ("main", old_head.as_str(), cp.node.as_str())
    );
    assert_eq!(e.contents(&id, "main").await, ["one"]);
    let st = m.state(a, &id, "main", None).await.unwrap();
    assert_eq!(st.hypotheses[0].status, kiln_types::HypothesisStatus::Open);
    // The old head is kept by an automatic checkpoint and by the reflog.
    let saved = m
        .checkpoints(a, &id)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == r.saved_as)
        .unwrap();
    assert!(saved.auto && saved.node == old_head);
    let log = m.reflog(a, &id).await.unwrap();
    assert_eq!(log[0].old_head.as_deref(), Some(old_head.as_str()));
    assert_eq!(log[0].new_head, cp.node);
    assert_eq!(log[0].reason, "restore cp");
    let st = m.state(a, &id, "main", Some(&r.saved_as)).await.unwrap();
    assert_eq!(
        st.hypotheses[0].status,
        kiln_types::HypothesisStatus::Refuted
    );
    // Writing after a restore starts a new path; the old one stays readable.
    e.say(&id, "main", Role::User, "four").await;
    assert_eq!(e.contents(&id, "main").await, ["one", "four"]);
    m.create_branch(
        a,
        &id,
        "old",
        Some(BranchFrom::Checkpoint(r.saved_as.clone())),
    )
    .await
    .unwrap();
    assert_eq!(e.contents(&id, "old").await, ["one", "two", "three"]);
    // A second restore within the same second gets a fresh automatic name.
    let r2 = m.restore(a, &id, "cp", Some("main")).await.unwrap();
    assert_ne!(r2.saved_as, r.saved_as);
    m.restore(a, &id, &r2.saved_as, None).await.unwrap();
    assert_eq!(e.contents(&id, "main").await, ["one", "four"]);
    assert!(
        m.audit(a, &id)
            .await
            .unwrap()
            .iter()
            .any(|x| x.action == "restore")
    );

    code(m.restore(a, &id, "nope", None).await, "not_found");
    code(m.restore(a, &id, "cp", Some("nope")).await, "not_found");
    m.discard_branch(a, &id, "old").await.unwrap();
    code(
        m.restore(a, &id, "cp", Some("old")).await,
        "branch_discarded",
    );
}

#[tokio::test]
async fn recover_restores_the_newest_checkpoint() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    e.say(&id, "main", Role::User, "one").await;
    code(m.recover(a, &id, None).await, "not_found");
    m.create_checkpoint(a, &id, "c1", None, None).await.unwrap();
    e.say(&id, "main", Role::User, "two").await;
    m.create_checkpoint(a, &id, "c2", None, None).await.unwrap();
    e.say(&id, "main", Role::User, "three").await;
    let r = m.recover(a, &id, None).await.unwrap();
    assert_eq!(e.contents(&id, "main").await, ["one", "two"]);
    // The automatic before-restore checkpoint is newer but never the recovery target.
    e.say(&id, "main", Role::User, "four").await;
    let r2 = m.recover(a, &id, Some("main")).await.unwrap();
    assert_eq!(r2.new_head, r.new_head);
    assert_eq!(e.contents(&id, "main").await, ["one", "two"]);
}

#[tokio::test]
async fn a_large_batch_appends_in_order_and_snapshots_its_events() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("s").await;
    let batch: Vec<NewNode> = (0..75)
        .map(|i| {
            if i % 3 == 0 {
                let pin = json!({"kind": "context_pin", "key": format!("k{}", i % 5), "value": i});
                NewNode::event(serde_json::from_value(pin).unwrap(), None)
            } else {
                NewNode::message(NodeKind::User, None, format!("m{i}")).with_tokens(2)
            }
        })
        .collect();
    let out = m.append_nodes(a, &id, "main", batch, None).await.unwrap();
    assert_eq!(out.nodes.len(), 75);
    assert_eq!(out.head, out.nodes[74].id);
    for (k, n) in out.nodes.iter().enumerate() {
        assert_eq!(n.seq, k as i64 + 1);
        if k > 0 {
            assert_eq!(n.parent_id.as_deref(), Some(out.nodes[k - 1].id.as_str()));
        }
    }
    let contents = e.contents(&id, "main").await;
    assert_eq!(contents.len(), 50);
    assert_eq!((contents[0].as_str(), contents[49].as_str()), ("m1", "m74"));
    let head = m.state(a, &id, "main", None).await.unwrap();
    let replayed = m.state(a, &id, "main", Some(&out.head)).await.unwrap();
    assert_eq!(head, replayed);
    assert_eq!(head.context["k2"], json!(72));
    let mid = &out.nodes[40];
    let at_mid = m.state(a, &id, "main", Some(&mid.id)).await.unwrap();
    assert_eq!(at_mid.context["k4"], json!(39));
    assert_eq!(at_mid.context["k2"], json!(27));
    // A fork from the middle of the batch continues in a new segment.
    m.create_branch(a, &id, "mid", Some(BranchFrom::Node(mid.id.clone())))
        .await
        .unwrap();
    let h = e.say(&id, "mid", Role::User, "after").await;
    let node = m.db().node(&id, &h).await.unwrap();
    assert_eq!(
        (node.seq, node.parent_id.as_deref()),
        (42, Some(mid.id.as_str()))
    );
}

#[tokio::test]
async fn branch_tree_places_each_branch_under_its_fork_and_lists_merges() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let s = m
        .create_session(
            a,
            kiln_session::CreateSession {
                name: "tree".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let id = s.id.as_str();
    let say = |text: &str| kiln_session::MessageInput {
        role: kiln_types::Role::User,
        content: text.into(),
        expected_head: None,
    };
    m.append_message(a, id, "main", say("one")).await.unwrap();
    m.create_branch(a, id, "alt", None).await.unwrap();
    m.append_message(a, id, "alt", say("alt one"))
        .await
        .unwrap();
    // Forked from alt beyond the point alt left main: its parent is alt, not main.
    m.create_branch(
        a,
        id,
        "deeper",
        Some(kiln_session::BranchFrom::Branch("alt".into())),
    )
    .await
    .unwrap();
    m.append_message(a, id, "main", say("two")).await.unwrap();
    m.merge(a, id, "alt", "main", kiln_types::MergeStrategy::Fail)
        .await
        .unwrap();
    let tree = m.branch_tree(a, id).await.unwrap();
    let parent = |name: &str| {
        tree.iter()
            .find(|b| b.branch.name == name)
            .unwrap()
            .parent
            .clone()
    };
    assert_eq!(parent("main"), None);
    assert_eq!(parent("alt").as_deref(), Some("main"));
    assert_eq!(parent("deeper").as_deref(), Some("alt"));
    let main = tree.iter().find(|b| b.branch.name == "main").unwrap();
    assert_eq!(main.merged.len(), 1);
    assert_eq!(main.merged[0].0, "alt");
    // Another user without access gets the session's usual refusal.
    assert!(m.branch_tree(&e.bob, id).await.is_err());
}

#[tokio::test]
async fn writes_through_a_client_carry_its_name_and_keep_their_own_data() {
    let e = common::env().await;
    let id = e.session("s").await;
    let via = e.alice.clone().via(kiln_session::ClientInfo {
        protocol: "mcp".into(),
        name: "claude-ai".into(),
    });
    let client = json!({"protocol": "mcp", "name": "claude-ai"});
    let note = e
        .mgr
        .append_message(&via, &id, "main", msg(Role::Note, "calcined at 900 C"))
        .await
        .unwrap();
    assert_eq!(note.nodes[0].data.as_ref().unwrap()["client"], client);
    assert_eq!(
        note.nodes[0].author.as_deref(),
        Some(e.alice.user_id.as_str())
    );
    let ev = common::ev(json!({"kind": "hypothesis", "statement": "Mn raises the voltage"}));
    let hyp = e.mgr.append_event(&via, &id, "main", ev).await.unwrap();
    let data = hyp.nodes[0].data.clone().unwrap();
    assert_eq!(data["client"], client);
    assert_eq!(data["statement"], "Mn raises the voltage");
    // The event still folds into the state.
    let state = e.mgr.state(&e.alice, &id, "main", None).await.unwrap();
    assert_eq!(state.hypotheses.len(), 1);
    // Without a client, nothing is added.
    let plain = e
        .mgr
        .append_message(&e.alice, &id, "main", msg(Role::Note, "by hand"))
        .await
        .unwrap();
    assert!(plain.nodes[0].data.is_none());
}
