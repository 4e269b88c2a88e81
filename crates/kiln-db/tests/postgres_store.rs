//! The store on PostgreSQL: the same core scenario (users, a session, appends and reads, a
//! fork, checkpoint and restore, merges with and without a conflict, a stale-head append,
//! the audit and node chains, the search outbox, listing, share links, collaborators, export
//! and import) runs through the public `Db` API on SQLite and on PostgreSQL with the same
//! outcomes; and two stores on one PostgreSQL database (two "servers") append to one branch
//! at once, leaving one linear history; a write cancelled half-way is rolled back and frees the
//! write lock; turn notifications pass between them in order; a brand-new database is analyzed
//! once its first few hundred nodes are in. The PostgreSQL tests need a server:
//! `scripts/pg run cargo test -p kiln-db --test postgres_store -- --include-ignored`.

mod support;

use std::collections::BTreeMap;

use kiln_db::{
    Db, DbOptions, Error, ImportOptions, ItemOutcome, MergeRequest, NewBatch, NewMemory, NewNode,
    NewSession, NewShare, NewTemplate, Point, Provenance, SessionFilter, SessionPatch,
    TemplateChange, Visibility, now,
};
use kiln_types::SessionStatus;
use kiln_types::{
    MergeStrategy, NodeKind, Permission, Permissions, Resolver, SessionType, StateEvent,
};
use serde_json::json;
use support::Scratch;

/// What the scenario saw, compared across the two databases.
#[derive(Debug, PartialEq)]
struct Outcome {
    path_len: usize,
    last: Vec<String>,
    fork_messages: Vec<String>,
    restored_messages: Vec<String>,
    clean_merge: bool,
    conflicts: usize,
    forced_merge: bool,
    audit_valid: bool,
    nodes_valid: bool,
    listed: usize,
    tagged: usize,
    shares: usize,
    collaborators: usize,
    imported_messages: Vec<String>,
}

fn msg(user: &str, text: &str) -> NewNode {
    NewNode::message(NodeKind::User, Some(user.to_string()), text)
}

fn pin(user: &str, key: &str, value: &str) -> NewNode {
    NewNode::event(
        StateEvent::ContextPin {
            key: key.into(),
            value: json!(value),
        },
        Some(user.to_string()),
    )
}

async fn contents(db: &Db, session: &str, branch: &str) -> Vec<String> {
    let mut items = db.messages(session, branch, 100, None).await.unwrap().items;
    items.reverse();
    items.into_iter().map(|n| n.content).collect()
}

/// The core path through the public API, asserting as it goes.
async fn scenario(db: &Db) -> Outcome {
    let alice = db.create_user("alice", true, b"ha").await.unwrap().id;
    let bob = db.create_user("bob", false, b"hb").await.unwrap().id;
    let s = db
        .create_session(
            NewSession {
                owner_id: alice.clone(),
                name: "olivine".into(),
                description: "a study".into(),
                session_type: SessionType::Interactive,
                project: Some("minerals".into()),
                tags: vec!["silicate".into()],
                metadata: json!({}),
                config: Default::default(),
                template: None,
                folder: "/".into(),
            },
            &alice,
        )
        .await
        .unwrap();
    let id = s.id.clone();

    // Appends: one at a time, a batch, and a state event.
    let first = db
        .append(&id, "main", vec![msg(&alice, "m1")], None, &alice)
        .await
        .unwrap();
    assert!(first.activated);
    let out = db
        .append(
            &id,
            "main",
            vec![msg(&alice, "m2"), msg(&alice, "m3")],
            Some(&first.head),
            &alice,
        )
        .await
        .unwrap();
    let out = db
        .append(
            &id,
            "main",
            vec![pin(&alice, "phase", "alpha")],
            Some(&out.head),
            &alice,
        )
        .await
        .unwrap();
    let main_head = out.head.clone();
    let path = db.path(&id, &main_head, 100, None).await.unwrap();
    let path_len = path.items.len();
    let last: Vec<String> = db
        .messages(&id, "main", 2, None)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.content)
        .collect();

    // A stale head is refused.
    let stale = db
        .append(
            &id,
            "main",
            vec![msg(&alice, "late")],
            Some(&first.head),
            &alice,
        )
        .await;
    assert!(
        matches!(stale, Err(Error::HeadMoved { .. })),
        "stale append: {stale:?}"
    );

    // Checkpoint, more writes, restore.
    db.create_checkpoint(&id, "cp1", Some("main"), None, false, &alice)
        .await
        .unwrap();
    db.append(&id, "main", vec![msg(&alice, "m4")], None, &alice)
        .await
        .unwrap();
    let restored = db.restore(&id, "cp1", Some("main"), &alice).await.unwrap();
    assert_eq!(restored.new_head, main_head);
    let restored_messages = contents(db, &id, "main").await;

    // Fork a branch and merge it back (no conflict).
    db.create_branch(&id, "side", &main_head, &alice)
        .await
        .unwrap();
    db.append(&id, "side", vec![msg(&alice, "s1")], None, &alice)
        .await
        .unwrap();
    let fork_messages = contents(db, &id, "side").await;
    let none = Resolver::new(MergeStrategy::Fail, BTreeMap::new());
    let clean = db
        .merge(MergeRequest {
            session: &id,
            from: "side",
            into: "main",
            resolver: &none,
            actor: &alice,
            tools: &(),
        })
        .await
        .unwrap();

    // Two branches set the same pin differently: a conflict, then settled by a strategy.
    let head = db.branch(&id, "main").await.unwrap().head;
    db.create_branch(&id, "other", &head, &alice).await.unwrap();
    db.append(
        &id,
        "main",
        vec![pin(&alice, "phase", "beta")],
        None,
        &alice,
    )
    .await
    .unwrap();
    db.append(
        &id,
        "other",
        vec![pin(&alice, "phase", "gamma")],
        None,
        &alice,
    )
    .await
    .unwrap();
    let conflicted = db
        .merge(MergeRequest {
            session: &id,
            from: "other",
            into: "main",
            resolver: &none,
            actor: &alice,
            tools: &(),
        })
        .await;
    let conflicts = match conflicted {
        Err(Error::MergeConflict(c)) => c.len(),
        other => panic!("expected a merge conflict, got {other:?}"),
    };
    let ours = Resolver::new(MergeStrategy::Ours, BTreeMap::new());
    let forced = db
        .merge(MergeRequest {
            session: &id,
            from: "other",
            into: "main",
            resolver: &ours,
            actor: &alice,
            tools: &(),
        })
        .await
        .unwrap();

    // Chains, outbox.
    let audit_valid = db.verify_audit(&id).await.unwrap().valid;
    let nodes_valid = db.verify_nodes(&id).await.unwrap().valid;
    let outbox = db.outbox_after(0, 1000).await.unwrap();
    assert!(outbox.iter().any(|e| e.session_id == id));

    // Listing and filtering.
    let listed = db
        .sessions(&SessionFilter {
            visible_to: Some(alice.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len();
    let tagged = db
        .sessions(&SessionFilter {
            visible_to: Some(alice.clone()),
            tag: Some("silicate".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len();
    let untagged = db
        .sessions(&SessionFilter {
            visible_to: Some(alice.clone()),
            tag: Some("oxide".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(untagged, 0);

    // Share links and collaborators.
    let created = now();
    let expires = kiln_db::stamp(chrono::Utc::now() + chrono::TimeDelta::days(1));
    db.create_share(&NewShare {
        id: "sh1",
        session: &id,
        token_hash: b"token",
        node: &main_head,
        branch: Some("main"),
        checkpoint: None,
        created_by: &alice,
        created_at: &created,
        expires_at: &expires,
        max_views: Some(3),
    })
    .await
    .unwrap();
    assert!(db.is_live_share_token(b"token", &now()).await.unwrap());
    let shares = db.shares(&id).await.unwrap().len();
    db.set_collaborator(
        &id,
        &bob,
        Permissions::of([Permission::Read, Permission::Comment]),
        &alice,
    )
    .await
    .unwrap();
    let collaborators = db.collaborators(&id).await.unwrap().len();
    let bob_sees = db
        .sessions(&SessionFilter {
            visible_to: Some(bob.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(bob_sees, 1);

    // Export, then import as a new session.
    let doc = db.export(&id).await.unwrap().checked().unwrap();
    let imported = db
        .import(
            &doc,
            &ImportOptions::new(&bob, Provenance::Unverified, json!({"source": "test"})),
        )
        .await
        .unwrap();
    let imported_messages = contents(db, &imported.id, "main").await;
    assert_eq!(imported_messages, contents(db, &id, "main").await);
    assert!(db.verify_nodes(&imported.id).await.unwrap().valid);

    Outcome {
        path_len,
        last,
        fork_messages,
        restored_messages,
        clean_merge: clean.merged,
        conflicts,
        forced_merge: forced.merged,
        audit_valid,
        nodes_valid,
        listed,
        tagged,
        shares,
        collaborators,
        imported_messages,
    }
}

fn expected(o: &Outcome) {
    assert_eq!(o.path_len, 5, "root, three messages, one pin");
    assert_eq!(o.last, vec!["m3".to_string(), "m2".to_string()]);
    assert_eq!(o.restored_messages, vec!["m1", "m2", "m3"]);
    assert_eq!(o.fork_messages, vec!["m1", "m2", "m3", "s1"]);
    assert!(o.clean_merge);
    assert_eq!(o.conflicts, 1);
    assert!(o.forced_merge);
    assert!(o.audit_valid);
    assert!(o.nodes_valid);
    assert_eq!(
        (o.listed, o.tagged, o.shares, o.collaborators),
        (1, 1, 1, 1)
    );
}

#[tokio::test]
async fn the_core_scenario_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    expected(&scenario(&db).await);
    db.close().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn the_core_scenario_runs_the_same_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let lite = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    let on_sqlite = scenario(&lite).await;
    lite.close().await;

    let scratch = Scratch::new().await;
    let pg = Db::open_postgres(&scratch.url, &DbOptions::default())
        .await
        .unwrap();
    let on_postgres = scenario(&pg).await;
    expected(&on_postgres);
    assert_eq!(on_postgres, on_sqlite);
    assert_eq!(pg.durability().await.unwrap().0, "postgres");
    assert!(matches!(
        pg.backup_to(&dir.path().join("copy.db")).await,
        Err(Error::Invalid(_))
    ));
    pg.close().await;
}

/// The rest of the store's calls, each run once: a PostgreSQL statement that does not parse or
/// decode fails here. Returns a digest of what they answered, compared across the databases.
async fn breadth(db: &Db) -> Vec<String> {
    let mut seen = Vec::new();
    let mut note = |what: &str, v: String| seen.push(format!("{what}: {v}"));
    let alice = db.create_user("alice", true, b"ha").await.unwrap().id;
    let bob = db.create_user("bob", false, b"hb").await.unwrap().id;
    db.add_token(&bob, b"hb2").await.unwrap();
    note(
        "by token",
        db.user_by_token_hash(b"hb2").await.unwrap().unwrap().name,
    );
    note(
        "by name",
        db.user_by_name("alice")
            .await
            .unwrap()
            .id
            .eq(&alice)
            .to_string(),
    );
    note("user", db.user(&bob).await.unwrap().name);
    note(
        "names",
        format!(
            "{:?}",
            db.user_names([alice.as_str(), bob.as_str()])
                .await
                .unwrap()
                .values()
                .collect::<Vec<_>>()
        ),
    );
    note("count users", db.count_users().await.unwrap().to_string());
    note("user ids", db.user_ids().await.unwrap().len().to_string());
    let new = |name: &str| NewSession {
        owner_id: alice.clone(),
        name: name.into(),
        description: String::new(),
        session_type: kiln_types::SessionType::Interactive,
        project: Some("minerals".into()),
        tags: vec!["a".into()],
        metadata: json!({}),
        config: Default::default(),
        template: None,
        folder: "/oxides".into(),
    };
    let found = db.find_or_create(new("spinel"), &alice).await.unwrap();
    let id = found.session.id.clone();
    note(
        "found again",
        db.find_or_create(new("spinel"), &alice)
            .await
            .unwrap()
            .created
            .to_string(),
    );
    note(
        "projects",
        db.projects(&alice).await.unwrap().len().to_string(),
    );
    note(
        "folder",
        db.folder_sessions(&alice, "minerals", "/OXIDES")
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    let mut nodes = vec![msg(&alice, "hello")];
    nodes.push(
        NewNode::message(NodeKind::ToolCall, Some(alice.clone()), "call")
            .with_data(json!({"tool": "x"})),
    );
    nodes.push(NewNode::message(NodeKind::Assistant, None, "answer").with_tokens(7));
    let out = db.append(&id, "main", nodes, None, &alice).await.unwrap();
    db.append(&id, "main", vec![pin(&alice, "k", "v")], None, &alice)
        .await
        .unwrap();
    note(
        "head state",
        db.head_state(&id, "main")
            .await
            .unwrap()
            .context
            .len()
            .to_string(),
    );
    note(
        "state at",
        db.state_at_node(&id, &out.head)
            .await
            .unwrap()
            .context
            .len()
            .to_string(),
    );
    note(
        "live marker",
        db.live_marker(&id).await.unwrap().is_some().to_string(),
    );
    note(
        "live snapshot",
        db.live_snapshot(&id).await.unwrap().is_some().to_string(),
    );
    note(
        "nodes after",
        db.nodes_after(&id, 0, 100).await.unwrap().len().to_string(),
    );
    db.touch_presence(&id, "w1", &alice, Some("cli"))
        .await
        .unwrap();
    note(
        "present",
        db.present(&id, "2000-01-01T00:00:00Z")
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    db.leave_presence(&id, "w1").await.unwrap();
    note(
        "node counts",
        db.node_counts(&id).await.unwrap().len().to_string(),
    );
    let tally = db.node_tally(&id, 0).await.unwrap();
    note("tally", tally.len().to_string());
    note(
        "tally warm",
        db.node_tally(&id, 1).await.unwrap().len().to_string(),
    );
    note(
        "count sessions",
        db.count_sessions().await.unwrap().to_string(),
    );
    note(
        "session events",
        db.session_events(&id).await.unwrap().len().to_string(),
    );
    let patched = db
        .update_session(
            &id,
            &SessionPatch {
                name: Some("spinel 2".into()),
                tags: Some(vec!["b".into()]),
                ..Default::default()
            },
            None,
            &alice,
        )
        .await
        .unwrap();
    note("patched", patched.name.clone());
    db.set_protected(&id, true, &alice).await.unwrap();
    let refused = db
        .append(&id, "main", vec![msg(&alice, "no")], None, &alice)
        .await;
    note(
        "protected",
        matches!(refused, Err(Error::Protected)).to_string(),
    );
    db.set_protected(&id, false, &alice).await.unwrap();
    db.set_status(&id, SessionStatus::Paused, &alice, "break")
        .await
        .unwrap();
    note(
        "paused at",
        db.entered_status_at(&id, "paused")
            .await
            .unwrap()
            .is_some()
            .to_string(),
    );
    note(
        "with status",
        db.sessions_with_status(&["paused"], None)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    db.set_status(&id, SessionStatus::Resumed, &alice, "back")
        .await
        .unwrap();
    note(
        "last activity",
        (!db.last_activity(&id).await.unwrap().is_empty()).to_string(),
    );
    db.create_checkpoint(&id, "auto-1", Some("main"), None, true, &alice)
        .await
        .unwrap();
    note(
        "last auto",
        format!("{:?}", db.last_auto_checkpoint(&id).await.unwrap()),
    );
    note(
        "newest",
        db.newest_checkpoint(&id, "main").await.unwrap().name,
    );
    note(
        "checkpoints",
        db.checkpoints(&id).await.unwrap().len().to_string(),
    );
    note("reflog", db.reflog(&id).await.unwrap().len().to_string());
    note(
        "resolve",
        (db.resolve(&id, "main").await.unwrap() == db.branch(&id, "main").await.unwrap().head)
            .to_string(),
    );
    db.create_branch(&id, "b2", &out.head, &alice)
        .await
        .unwrap();
    db.append(&id, "b2", vec![msg(&alice, "b2 says")], None, &alice)
        .await
        .unwrap();
    note(
        "branches",
        db.branches(&id, false).await.unwrap().len().to_string(),
    );
    db.set_branch_discarded(&id, "b2", true, &alice)
        .await
        .unwrap();
    note(
        "open branches",
        db.branches(&id, false).await.unwrap().len().to_string(),
    );
    note(
        "all branches",
        db.branches(&id, true).await.unwrap().len().to_string(),
    );
    db.set_branch_discarded(&id, "b2", false, &alice)
        .await
        .unwrap();
    let graph = db.branch_graph(&id).await.unwrap();
    note("graph", graph.branches.len().to_string());
    let none = Resolver::new(MergeStrategy::Fail, BTreeMap::new());
    let preview = db
        .merge_preview(MergeRequest {
            session: &id,
            from: "b2",
            into: "main",
            resolver: &none,
            actor: &alice,
            tools: &(),
        })
        .await
        .unwrap();
    note("preview", preview.conflicts.len().to_string());
    note(
        "diff",
        db.diff(&id, "main", "b2", 50, &())
            .await
            .unwrap()
            .only_to_total
            .to_string(),
    );
    note(
        "turn view",
        db.turn_view(Some(&alice), &id, "main", 10)
            .await
            .unwrap()
            .messages
            .items
            .len()
            .to_string(),
    );
    note(
        "latest summary",
        db.latest_summary(&id, "main")
            .await
            .unwrap()
            .is_none()
            .to_string(),
    );
    note("root", db.root(&id).await.unwrap().kind.to_string());
    note("node", db.node(&id, &out.head).await.unwrap().content);
    // Search feeds.
    let outbox = db.outbox_after(0, 100).await.unwrap();
    note(
        "outbox max",
        (db.outbox_max().await.unwrap() >= outbox.len() as i64).to_string(),
    );
    let keys: Vec<(&str, i64)> = outbox
        .iter()
        .filter_map(|e| Some((e.session_id.as_str(), e.node_rowid?)))
        .collect();
    note(
        "search nodes",
        db.search_nodes(&keys).await.unwrap().len().to_string(),
    );
    note(
        "session nodes after",
        db.session_nodes_after(&id, 0, 100)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "search nodes after",
        db.search_nodes_after(0, 100)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note("node count", db.node_count().await.unwrap().to_string());
    note(
        "all sessions",
        db.all_sessions().await.unwrap().len().to_string(),
    );
    note(
        "names",
        db.session_names(std::slice::from_ref(&id))
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "searchable",
        db.searchable_sessions(
            &alice,
            &SessionFilter {
                tag: Some("b".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .len()
        .to_string(),
    );
    note(
        "reaching",
        db.branches_reaching(&id, std::slice::from_ref(&out.head))
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "trim",
        db.trim_outbox("a-server", 1).await.unwrap().to_string(),
    );
    // Collaborators, access.
    db.set_collaborator(&id, &bob, Permissions::of([Permission::Read]), &alice)
        .await
        .unwrap();
    note(
        "shared with",
        db.shared_with(&bob).await.unwrap().len().to_string(),
    );
    note(
        "access",
        db.session_access(&id, &bob)
            .await
            .unwrap()
            .1
            .bits()
            .to_string(),
    );
    note(
        "memberships",
        db.memberships(&bob, std::slice::from_ref(&id))
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "collaborator",
        db.collaborator(&id, &bob)
            .await
            .unwrap()
            .is_some()
            .to_string(),
    );
    note(
        "contributions",
        db.contributions(&id).await.unwrap().len().to_string(),
    );
    note(
        "active of",
        db.active_sessions_of(&bob, "2000-01-01T00:00:00Z", 10)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "removed",
        db.remove_collaborator(&id, &bob, &alice)
            .await
            .unwrap()
            .to_string(),
    );
    // Digest helpers.
    note(
        "findings",
        db.findings_since(&id, "2000-01-01T00:00:00Z", 10)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "digest session",
        db.digest_session(&alice)
            .await
            .unwrap()
            .is_none()
            .to_string(),
    );
    note(
        "used elsewhere",
        db.content_used_elsewhere(&id, "nothing")
            .await
            .unwrap()
            .to_string(),
    );
    note(
        "bytes",
        db.bytes_by_author().await.unwrap().len().to_string(),
    );
    // Leases and controllers.
    let later = kiln_db::stamp(chrono::Utc::now() + chrono::TimeDelta::minutes(5));
    note(
        "lease",
        db.try_lease("job", &id, "me", &now(), &later)
            .await
            .unwrap()
            .to_string(),
    );
    note(
        "lease taken",
        db.try_lease("job", &id, "other", &now(), &later)
            .await
            .unwrap()
            .to_string(),
    );
    db.release_lease("job", &id, "me").await.unwrap();
    let acquired = db
        .acquire_controller(
            &id,
            "main",
            "agent",
            b"ct",
            &alice,
            60,
            "controller.acquire",
        )
        .await
        .unwrap();
    note(
        "acquired",
        format!("{}", matches!(acquired, kiln_db::Acquired::Taken { .. })),
    );
    note(
        "controller",
        db.controller(&id, "main")
            .await
            .unwrap()
            .is_some()
            .to_string(),
    );
    note(
        "renew",
        db.renew_controller(&id, "main", b"ct", 60)
            .await
            .unwrap()
            .is_some()
            .to_string(),
    );
    note(
        "release",
        db.release_controller(
            &id,
            "main",
            Some(b"ct"),
            &alice,
            "controller.release",
            json!({}),
        )
        .await
        .unwrap()
        .is_some()
        .to_string(),
    );
    note(
        "audit max",
        (db.audit_max_seq(&id).await.unwrap() > 0).to_string(),
    );
    note(
        "audit after",
        (!db.audit_after(&id, 0, 5).await.unwrap().is_empty()).to_string(),
    );
    // Memory, templates, tool cache, tracks, batches.
    let m = db
        .insert_memory(
            &NewMemory {
                user_id: &alice,
                kind: "note",
                content: "Olivine is green",
                source: "user",
                session_id: Some(&id),
            },
            10,
        )
        .await
        .unwrap();
    let again = db
        .insert_memory(
            &NewMemory {
                user_id: &alice,
                kind: "note",
                content: " olivine IS green ",
                source: "user",
                session_id: None,
            },
            10,
        )
        .await
        .unwrap();
    note("memory dedup", (m.id == again.id).to_string());
    db.update_memory(&alice, &m.id, Some("olivine is olive"), None)
        .await
        .unwrap();
    note("memory", db.memory(&alice).await.unwrap().len().to_string());
    db.delete_memory(&alice, &m.id).await.unwrap();
    let body = json!({"focus": "x"});
    let t = db
        .insert_template(&NewTemplate {
            owner_id: &alice,
            name: "t1",
            description: "",
            visibility: Visibility::Shared,
            body: &body,
            shared_with: std::slice::from_ref(&bob),
        })
        .await
        .unwrap();
    note("template shared", format!("{:?}", t.shared_with));
    note(
        "visible to bob",
        db.visible_templates(&bob, None, None)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    db.update_template(
        t.id,
        &alice,
        &TemplateChange {
            description: Some("d".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    db.delete_template(t.id, &alice).await.unwrap();
    db.cache_tool_output(&alice, "tool", "1", "h", &json!({"r": 1}), None)
        .await
        .unwrap();
    note(
        "tool cache",
        db.cached_tool_output(&alice, "tool", "1", "h")
            .await
            .unwrap()
            .is_some()
            .to_string(),
    );
    let points: Vec<Point> = (0..5)
        .map(|i| {
            [
                ("step".to_string(), f64::from(i)),
                ("loss".to_string(), 1.0 / f64::from(i + 1)),
            ]
            .into()
        })
        .collect();
    let tb = db
        .append_track_batch(&id, "loss", &points, &alice)
        .await
        .unwrap();
    note(
        "track batches",
        db.track_batches(&id, &[tb.batch])
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    note(
        "track points",
        db.track_points(&id, tb.batch, 0, 10, None)
            .await
            .unwrap()
            .len()
            .to_string(),
    );
    let items = vec![
        (json!({"q": 1}), "one".to_string()),
        (json!({"q": 2}), "two".to_string()),
    ];
    let head = db.branch(&id, "main").await.unwrap().head;
    db.insert_batch(&NewBatch {
        session_id: &id,
        id: "bt1",
        user_id: &alice,
        request: "{}",
        mode: "branches",
        concurrency: 1,
        item_timeout_ms: 1000,
        from_node: &head,
        checkpoint: None,
        items: &items,
    })
    .await
    .unwrap();
    let item = db.claim_batch_item(&id, "bt1").await.unwrap().unwrap();
    db.set_batch_item_branch(&id, "bt1", item.idx as u32, "b2")
        .await
        .unwrap();
    db.finish_batch_item(
        &id,
        "bt1",
        item.idx as u32,
        &ItemOutcome {
            status: "done",
            answer: Some("42".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    note("batch counts", {
        let mut counts = db.batch_status_counts(&id, "bt1").await.unwrap();
        counts.sort();
        format!("{counts:?}")
    });
    note(
        "batch items",
        db.batch_items(&id, "bt1").await.unwrap().len().to_string(),
    );
    note(
        "batches",
        db.batches(&id, 10).await.unwrap().len().to_string(),
    );
    note(
        "resume",
        db.resume_batches().await.unwrap().len().to_string(),
    );
    note(
        "cancel",
        db.cancel_batch(&id, "bt1").await.unwrap().to_string(),
    );
    note(
        "settle",
        db.settle_batch(&id, "bt1").await.unwrap().to_string(),
    );
    note("batch", db.batch(&id, "bt1").await.unwrap().status);
    // Shares: use, revoke, purge.
    let expires = kiln_db::stamp(chrono::Utc::now() + chrono::TimeDelta::days(1));
    let created = now();
    db.create_share(&NewShare {
        id: "s1",
        session: &id,
        token_hash: b"tok",
        node: &head,
        branch: None,
        checkpoint: None,
        created_by: &alice,
        created_at: &created,
        expires_at: &expires,
        max_views: Some(1),
    })
    .await
    .unwrap();
    note(
        "use share",
        db.use_share(b"tok", &now())
            .await
            .unwrap()
            .is_ok()
            .to_string(),
    );
    note(
        "use share again",
        db.use_share(b"tok", &now())
            .await
            .unwrap()
            .is_ok()
            .to_string(),
    );
    note("share", db.share(&id, "s1").await.unwrap().id);
    db.revoke_share(&id, "s1", &alice, &now()).await.unwrap();
    note(
        "purge shares",
        db.purge_shares(&expires).await.unwrap().to_string(),
    );
    // The access-checked calls, audit records, stale imports.
    let checked = db
        .append_as(
            &alice,
            &id,
            "main",
            vec![msg(&alice, "checked")],
            None,
            &alice,
        )
        .await
        .unwrap();
    note("append as", checked.nodes.len().to_string());
    let refused = db
        .append_as(&bob, &id, "main", vec![msg(&bob, "not mine")], None, &bob)
        .await;
    note("append as refused", refused.is_err().to_string());
    note(
        "fast again",
        db.append_as(
            &alice,
            &id,
            "main",
            vec![msg(&alice, "again")],
            None,
            &alice,
        )
        .await
        .unwrap()
        .nodes
        .len()
        .to_string(),
    );
    note(
        "messages as",
        db.messages_as(&alice, &id, "main", 3, None)
            .await
            .unwrap()
            .items
            .len()
            .to_string(),
    );
    note(
        "path messages",
        db.path_messages(&id, &checked.head, 50, None)
            .await
            .unwrap()
            .items
            .len()
            .to_string(),
    );
    db.record_audit(&id, &alice, "test.note", &json!({"n": 1}))
        .await
        .unwrap();
    note(
        "audit",
        db.audit(&id).await.unwrap().last().unwrap().action.clone(),
    );
    note(
        "checkpoint",
        db.checkpoint(&id, "auto-1").await.unwrap().name,
    );
    note(
        "purge imports",
        db.purge_stale_imports(&now()).await.unwrap().to_string(),
    );
    note(
        "audit valid",
        db.verify_audit(&id).await.unwrap().valid.to_string(),
    );
    note(
        "nodes valid",
        db.verify_nodes(&id).await.unwrap().valid.to_string(),
    );
    // Delete.
    let gone = db.create_session(new("gone"), &alice).await.unwrap();
    db.delete_session(&gone.id).await.unwrap();
    note(
        "deleted",
        matches!(db.session(&gone.id).await, Err(Error::NotFound(_))).to_string(),
    );
    seen
}

#[tokio::test]
async fn the_breadth_scenario_runs_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    let seen = breadth(&db).await;
    eprintln!("{seen:#?}");
    assert!(seen.len() > 80, "{seen:#?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn the_breadth_scenario_answers_the_same_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let lite = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    let on_sqlite = breadth(&lite).await;
    let scratch = Scratch::new().await;
    let pg = Db::open_postgres(&scratch.url, &DbOptions::default())
        .await
        .unwrap();
    let on_postgres = breadth(&pg).await;
    assert_eq!(on_postgres, on_sqlite);
    pg.close().await;
}

/// Two stores on one scratch database (two servers), alice, and a session of hers named `name`.
async fn two_servers(scratch: &Scratch, name: &str) -> (Db, Db, String, String) {
    let opts = DbOptions::default();
    let one = Db::open_postgres(&scratch.url, &opts).await.unwrap();
    let two = Db::open_postgres(&scratch.url, &opts).await.unwrap();
    let alice = one.create_user("alice", true, b"ha").await.unwrap().id;
    let id = one
        .create_session(
            NewSession {
                owner_id: alice.clone(),
                name: name.into(),
                description: String::new(),
                session_type: SessionType::Interactive,
                project: None,
                tags: vec![],
                metadata: json!({}),
                config: Default::default(),
                template: None,
                folder: "/".into(),
            },
            &alice,
        )
        .await
        .unwrap()
        .id;
    (one, two, alice, id)
}

/// Two stores on one database (two servers) append 50 nodes each to one branch, each append
/// naming the head it expects and retrying when another moved it.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn two_servers_append_to_one_branch_in_one_history() {
    let scratch = Scratch::new().await;
    let (one, two, alice, id) = two_servers(&scratch, "race").await;
    let writer = |db: Db, tag: &'static str| {
        let (id, alice) = (id.clone(), alice.clone());
        tokio::spawn(async move {
            let mut retries = 0;
            for i in 0..50 {
                loop {
                    let head = db.branch(&id, "main").await.unwrap().head;
                    let n = msg(&alice, &format!("{tag}{i}"));
                    match db.append(&id, "main", vec![n], Some(&head), &alice).await {
                        Ok(_) => break,
                        Err(Error::HeadMoved { .. }) => retries += 1,
                        Err(e) => panic!("append {tag}{i}: {e}"),
                    }
                }
            }
            retries
        })
    };
    let (a, b) = (writer(one.clone(), "a"), writer(two.clone(), "b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    eprintln!("retries after a moved head: {a} and {b}");
    let head = one.branch(&id, "main").await.unwrap().head;
    let path = one.path(&id, &head, 1000, None).await.unwrap();
    assert!(path.next_cursor.is_none());
    let items = path.items;
    assert_eq!(items.len(), 101, "root and 100 messages");
    // One linear history: every node's parent is the next older one.
    for w in items.windows(2) {
        assert_eq!(w[0].parent_id.as_deref(), Some(w[1].id.as_str()));
        assert_eq!(w[0].seq, w[1].seq + 1);
    }
    for tag in ["a", "b"] {
        let mine: Vec<&str> = items
            .iter()
            .rev()
            .filter(|n| n.content.starts_with(tag))
            .map(|n| n.content.as_str())
            .collect();
        let want: Vec<String> = (0..50).map(|i| format!("{tag}{i}")).collect();
        assert_eq!(mine, want);
    }
    assert!(one.verify_audit(&id).await.unwrap().valid);
    assert!(two.verify_nodes(&id).await.unwrap().valid);
    one.close().await;
    two.close().await;
}

/// A write dropped half-way (its future cancelled between statements) is rolled back before
/// its pooled connection is reused, and the write lock is free at once for another server:
/// the history holds whole appends only and its chains verify.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_dropped_write_is_rolled_back_and_frees_the_lock() {
    let scratch = Scratch::new().await;
    let (one, two, alice, id) = two_servers(&scratch, "cancel").await;
    let big: Vec<NewNode> = (0..2000).map(|i| msg(&alice, &format!("n{i}"))).collect();
    let mut cancelled = 0;
    for ms in [1, 5, 20, 100, 300, 1000, 10_000] {
        let write = one.append(&id, "main", big.clone(), None, &alice);
        if tokio::time::timeout(std::time::Duration::from_millis(ms), write)
            .await
            .is_err()
        {
            cancelled += 1;
        }
    }
    assert!(cancelled > 0, "every append finished before its timeout");
    eprintln!("{cancelled} of 7 appends cancelled");
    let after = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        two.append(&id, "main", vec![msg(&alice, "after")], None, &alice),
    )
    .await
    .expect("the write lock was not released")
    .unwrap();
    assert_eq!(after.nodes.len(), 1);
    let nodes = two.node_count().await.unwrap();
    eprintln!("{nodes} nodes");
    assert_eq!(
        (nodes - 2) % 2000,
        0,
        "{nodes} nodes: a partial append is visible"
    );
    assert!(one.verify_nodes(&id).await.unwrap().valid);
    assert!(two.verify_audit(&id).await.unwrap().valid);
    one.close().await;
    two.close().await;
}

/// Stored content (notebook files and attachments on a shared store): written in chunks,
/// stored once, read back whole and checked, kept apart per kind, deleted.
async fn blobs(db: &Db, dir: &std::path::Path) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let content: Vec<u8> = (0..(2 * kiln_db::BLOB_CHUNK + 777) as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let sha = hex::encode(Sha256::digest(&content));
    let src = dir.join("src.bin");
    std::fs::write(&src, &content).unwrap();
    let mut seen = Vec::new();
    let mut note = |what: &str, v: String| seen.push(format!("{what}: {v}"));
    note(
        "first put",
        db.put_blob("files", &sha, &src).await.unwrap().to_string(),
    );
    note(
        "second put",
        db.put_blob("files", &sha, &src).await.unwrap().to_string(),
    );
    note(
        "bytes",
        format!("{:?}", db.blob_bytes("files", &sha).await.unwrap()),
    );
    note(
        "other kind",
        format!("{:?}", db.blob_bytes("attachments", &sha).await.unwrap()),
    );
    let dest = dir.join("out").join("copy.bin");
    note(
        "read",
        db.read_blob("files", &sha, &dest)
            .await
            .unwrap()
            .to_string(),
    );
    note(
        "same bytes",
        (std::fs::read(&dest).unwrap() == content).to_string(),
    );
    note(
        "deleted",
        db.delete_blob("files", &sha).await.unwrap().to_string(),
    );
    note(
        "read after delete",
        db.read_blob("files", &sha, &dir.join("gone.bin"))
            .await
            .unwrap()
            .to_string(),
    );
    note(
        "deleted again",
        db.delete_blob("files", &sha).await.unwrap().to_string(),
    );
    seen
}

#[tokio::test]
async fn stored_content_round_trips_on_sqlite_and_a_damaged_chunk_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.db");
    let db = Db::open(&path, &DbOptions::default()).await.unwrap();
    let seen = blobs(&db, dir.path()).await;
    assert_eq!(
        seen,
        [
            "first put: true",
            "second put: false",
            &format!("bytes: Some({})", 2 * kiln_db::BLOB_CHUNK + 777),
            "other kind: None",
            "read: true",
            "same bytes: true",
            "deleted: true",
            "read after delete: false",
            "deleted again: false",
        ]
    );
    // A chunk changed behind the store's back is refused on read, and nothing is left behind.
    let src = dir.path().join("small.bin");
    std::fs::write(&src, b"xrd pattern").unwrap();
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(b"xrd pattern"))
    };
    db.put_blob("attachments", &sha, &src).await.unwrap();
    {
        use sqlx::Connection as _;
        let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("UPDATE file_chunks SET data = X'00' WHERE sha256 = $1")
            .bind(&sha)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    let dest = dir.path().join("tampered").join("out.bin");
    let err = db.read_blob("attachments", &sha, &dest).await.unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(dest.parent().unwrap()).unwrap().count(),
        0,
        "no temporary file is left"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn stored_content_answers_the_same_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let lite = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    let on_sqlite = blobs(&lite, dir.path()).await;
    let scratch = Scratch::new().await;
    let pg = Db::open_postgres(&scratch.url, &DbOptions::default())
        .await
        .unwrap();
    assert!(pg.keeps_files() && !lite.keeps_files());
    let on_postgres = blobs(&pg, dir.path()).await;
    assert_eq!(on_postgres, on_sqlite);
    pg.close().await;
}

#[tokio::test]
async fn turn_notifications_are_a_no_op_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    db.notify_turn("s", "[]").await.unwrap();
    assert!(db.turn_listener().await.unwrap().is_none());
    db.close().await;
}

/// Turn notifications between two stores on one database (two servers): each hears the
/// other's in the order sent and never its own; an oversized payload is refused; a listener
/// whose connection is killed says so once it is back, and hears what is sent afterwards.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn turn_notifications_reach_the_other_store_in_order_and_survive_a_lost_connection() {
    use kiln_db::{TURN_PAYLOAD_MAX, TurnNotice};
    use std::time::{Duration, Instant};

    let scratch = Scratch::new().await;
    let (one, two, _, id) = two_servers(&scratch, "notify").await;
    let mut hears_one = one.turn_listener().await.unwrap().unwrap();
    let mut hears_two = two.turn_listener().await.unwrap().unwrap();
    async fn next(l: &mut kiln_db::TurnListener) -> TurnNotice {
        tokio::time::timeout(Duration::from_secs(10), l.recv())
            .await
            .expect("no notification within 10 s")
    }

    let n = 200;
    let started = Instant::now();
    for i in 0..n {
        one.notify_turn(&id, &format!("[{i}]")).await.unwrap();
    }
    let sending = started.elapsed();
    for i in 0..n {
        assert_eq!(
            next(&mut hears_two).await,
            TurnNotice::Turn {
                session: id.clone(),
                payload: format!("[{i}]")
            }
        );
    }
    eprintln!(
        "{n} notifications sent in {sending:?} ({:?} each), all heard after {:?}",
        sending / n,
        started.elapsed()
    );
    // One's listener skipped its own 200: the first thing it hears is two's.
    two.notify_turn(&id, "from two").await.unwrap();
    assert_eq!(
        next(&mut hears_one).await,
        TurnNotice::Turn {
            session: id.clone(),
            payload: "from two".into()
        }
    );
    // The largest payload goes through, whatever its bytes; one byte more, or a bad session
    // id, is refused before it reaches PostgreSQL.
    let big = "é".repeat(TURN_PAYLOAD_MAX / 2);
    one.notify_turn(&id, &big).await.unwrap();
    assert!(
        matches!(next(&mut hears_two).await, TurnNotice::Turn { payload, .. } if payload == big)
    );
    for (session, payload) in [
        (id.as_str(), format!("{big}x")),
        ("", "[]".into()),
        ("a\nb", "[]".into()),
    ] {
        assert!(matches!(
            one.notify_turn(session, &payload).await,
            Err(Error::Invalid(_))
        ));
    }

    // Both listening connections killed: each says it lost some once it listens again, then
    // hears what is sent after.
    let killed = sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%') t",
    )
    .fetch_one(
        &mut <sqlx::PgConnection as sqlx::Connection>::connect(&scratch.url)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(killed, 2);
    let t = Instant::now();
    assert_eq!(next(&mut hears_two).await, TurnNotice::Lost);
    eprintln!("listening again {:?} after the kill", t.elapsed());
    one.notify_turn(&id, "after").await.unwrap();
    assert_eq!(
        next(&mut hears_two).await,
        TurnNotice::Turn {
            session: id.clone(),
            payload: "after".into()
        }
    );
    assert_eq!(next(&mut hears_one).await, TurnNotice::Lost);
    drop((hears_one, hears_two));
    one.close().await;
    two.close().await;
}

/// A user's budget of expensive calls in the store: a burst, then refusals saying how long to
/// wait; users do not share buckets; a cost above the burst waits for a full bucket.
async fn rates(db: &Db) -> Vec<String> {
    let mut seen = Vec::new();
    // Three at once, then one a minute.
    let (rate, burst) = (1.0 / 60.0, 3.0);
    for i in 0..4 {
        let got = db.take_rate_tokens("u1", 1.0, rate, burst).await.unwrap();
        seen.push(format!(
            "u1 #{i}: {}",
            match got {
                None => "granted".to_string(),
                // The wait is about a minute, less the moments the calls took.
                Some(w) => format!("wait {}", (w.as_secs_f64() / 10.0).round() * 10.0),
            }
        ));
    }
    let other = db.take_rate_tokens("u2", 1.0, rate, burst).await.unwrap();
    seen.push(format!("u2: {}", other.is_none()));
    let big = db.take_rate_tokens("u3", 10.0, rate, burst).await.unwrap();
    seen.push(format!("u3 import: {}", big.is_none()));
    let after = db.take_rate_tokens("u3", 1.0, rate, burst).await.unwrap();
    seen.push(format!("u3 then: {}", after.is_some()));
    // A fast refill: a bucket of 1 refilled 1000 times a second grants again at once.
    assert!(
        db.take_rate_tokens("u4", 1.0, 1000.0, 1.0)
            .await
            .unwrap()
            .is_none()
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let refilled = db.take_rate_tokens("u4", 1.0, 1000.0, 1.0).await.unwrap();
    seen.push(format!("u4 refilled: {}", refilled.is_none()));
    seen
}

#[tokio::test]
async fn rate_buckets_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    assert_eq!(
        rates(&db).await,
        [
            "u1 #0: granted",
            "u1 #1: granted",
            "u1 #2: granted",
            "u1 #3: wait 60",
            "u2: true",
            "u3 import: true",
            "u3 then: true",
            "u4 refilled: true",
        ]
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn rate_buckets_answer_the_same_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let lite = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
        .await
        .unwrap();
    let scratch = Scratch::new().await;
    let pg = Db::open_postgres(&scratch.url, &DbOptions::default())
        .await
        .unwrap();
    assert_eq!(rates(&pg).await, rates(&lite).await);
    pg.close().await;
}

/// `nodes`' row estimate on PostgreSQL: negative until the table is first analyzed.
async fn reltuples(url: &str) -> f64 {
    use sqlx::Connection as _;
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT reltuples::float8 FROM pg_class WHERE oid = 'nodes'::regclass")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// A brand-new database is analyzed once its first few hundred nodes are in (so statements
/// prepared on empty tables are planned again with statistics), and only then.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_young_database_is_analyzed_after_its_first_nodes() {
    let scratch = Scratch::new().await;
    let (db, _, alice, s) = two_servers(&scratch, "young").await;
    let append = |from: usize| {
        let nodes = (from..from + 20)
            .map(|i| msg(&alice, &format!("note {i}")))
            .collect::<Vec<_>>();
        db.append(&s, "main", nodes, None, &alice)
    };
    for i in (0..100).step_by(20) {
        append(i).await.unwrap();
    }
    assert!(
        reltuples(&scratch.url).await < 0.0,
        "analyzed before the threshold"
    );
    for i in (100..300).step_by(20) {
        append(i).await.unwrap();
    }
    let t = std::time::Instant::now();
    while reltuples(&scratch.url).await < 0.0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "nodes was not analyzed after 300 appended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(reltuples(&scratch.url).await >= 100.0);
    // Analyzed once: it is no longer young.
    assert!(!db.analyze_if_young().await.unwrap());
    db.close().await;
}
