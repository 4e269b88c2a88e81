//! Sessions through the manager: the lifecycle table, writes by status, list filters and
//! pagination, optimistic updates and delete.

mod common;

use common::{code, msg};
use kiln_session::{CreateSession, ListQuery, UpdateSession};
use kiln_types::{ErrorKind, Role, SessionStatus, SessionType};
use serde_json::json;

use SessionStatus::*;

/// The lifecycle path from `created` to each status.
fn path_to(s: SessionStatus) -> &'static [SessionStatus] {
    match s {
        Created => &[],
        Active => &[Active],
        Paused => &[Active, Paused],
        Archived => &[Active, Archived],
        Resumed => &[Active, Paused, Resumed],
    }
}

const ALLOWED: [(SessionStatus, SessionStatus); 8] = [
    (Created, Active),
    (Active, Paused),
    (Active, Archived),
    (Paused, Archived),
    (Paused, Resumed),
    (Archived, Resumed),
    (Resumed, Active),
    (Resumed, Paused),
];

#[tokio::test]
async fn every_transition_is_allowed_or_refused_by_the_table() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    for from in SessionStatus::ALL {
        for to in SessionStatus::ALL {
            let id = e.session(&format!("{from}->{to}")).await;
            for step in path_to(from) {
                m.set_status(a, &id, *step).await.unwrap();
            }
            assert_eq!(m.session(a, &id).await.unwrap().status, from);
            let r = m.set_status(a, &id, to).await;
            if ALLOWED.contains(&(from, to)) {
                assert_eq!(r.unwrap().status, to, "{from} -> {to}");
                let events = m.session_events(a, &id).await.unwrap();
                let last = events.last().unwrap();
                assert_eq!((last.from, last.to), (Some(from), to));
                assert_eq!(last.actor, a.user_id);
            } else {
                let err = code(r, "invalid_transition");
                assert_eq!(err.kind, ErrorKind::Conflict);
                let d = err.details.unwrap();
                assert_eq!(d["current"], json!(from), "{from} -> {to}");
                assert_eq!(d["requested"], json!(to));
                assert_eq!(d["allowed"], json!(from.allowed_targets()));
                assert!(err.message.contains(from.as_str()), "{}", err.message);
                for t in from.allowed_targets() {
                    assert!(err.message.contains(t.as_str()), "{}", err.message);
                }
                assert_eq!(
                    m.session(a, &id).await.unwrap().status,
                    from,
                    "a refused transition changes nothing"
                );
            }
        }
    }
}

#[tokio::test]
async fn paused_and_archived_sessions_refuse_messages_events_and_restores() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    for status in [Paused, Archived] {
        let id = e.session("s").await;
        m.create_checkpoint(a, &id, "start", None, None)
            .await
            .unwrap();
        for step in path_to(status) {
            m.set_status(a, &id, *step).await.unwrap();
        }
        let head = e.head(&id, "main").await;
        // Restore and recover move the head as an append would: refused too.
        code(m.restore(a, &id, "start", None).await, "session_not_active");
        code(m.recover(a, &id, None).await, "session_not_active");
        let err = code(
            m.append_message(a, &id, "main", msg(Role::User, "hello"))
                .await,
            "session_not_active",
        );
        assert_eq!(err.kind, ErrorKind::Conflict);
        assert_eq!(err.details.unwrap()["status"], json!(status));
        code(
            m.append_event(
                a,
                &id,
                "main",
                common::ev(json!({"kind": "material", "formula": "Fe2O3"})),
            )
            .await,
            "session_not_active",
        );
        assert_eq!(e.head(&id, "main").await, head, "nothing was written");
        assert_eq!(m.session(a, &id).await.unwrap().status, status);
    }
}

#[tokio::test]
async fn a_write_on_created_or_resumed_activates_and_records_the_transition() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    for status in [Created, Resumed] {
        let id = e.session("s").await;
        for step in path_to(status) {
            m.set_status(a, &id, *step).await.unwrap();
        }
        let before = m.session_events(a, &id).await.unwrap().len();
        let out = m
            .append_message(a, &id, "main", msg(Role::User, "hi"))
            .await
            .unwrap();
        assert!(out.activated);
        assert_eq!(m.session(a, &id).await.unwrap().status, Active);
        let events = m.session_events(a, &id).await.unwrap();
        assert_eq!(events.len(), before + 1);
        let last = events.last().unwrap();
        assert_eq!((last.from, last.to), (Some(status), Active));
        assert_eq!(last.actor, a.user_id);
        assert!(!last.at.is_empty());
        let again = m
            .append_message(a, &id, "main", msg(Role::Assistant, "hello"))
            .await
            .unwrap();
        assert!(!again.activated, "an active session stays active");
        assert_eq!(m.session_events(a, &id).await.unwrap().len(), before + 1);
        let audit = m.audit(a, &id).await.unwrap();
        assert!(audit.iter().any(|x| x.action == "lifecycle"
            && x.payload["from"] == json!(status)
            && x.payload["to"] == json!("active")));
    }
}

async fn make(
    e: &common::Env,
    owner: &kiln_session::Caller,
    name: &str,
    ty: SessionType,
    project: Option<&str>,
    tags: &[&str],
) -> String {
    let (duration_days, checkpoint_frequency) = if ty == SessionType::Research {
        (Some(7), Some(kiln_types::CheckpointFrequency::Daily))
    } else {
        (None, None)
    };
    e.mgr
        .create_session(
            owner,
            CreateSession {
                name: name.into(),
                session_type: ty,
                project: project.map(str::to_string),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                duration_days,
                checkpoint_frequency,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id
}

async fn names(e: &common::Env, caller: &kiln_session::Caller, q: ListQuery) -> Vec<String> {
    let mut v: Vec<String> = e
        .mgr
        .list_sessions(caller, q)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|s| s.name)
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn lists_filter_by_status_project_type_tag_and_owner() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let s1 = make(
        &e,
        a,
        "s1",
        SessionType::Interactive,
        Some("cathodes"),
        &["li"],
    )
    .await;
    make(
        &e,
        a,
        "s2",
        SessionType::Research,
        Some("cathodes"),
        &["na", "li"],
    )
    .await;
    make(&e, a, "s3", SessionType::Batch, None, &["na"]).await;
    make(
        &e,
        &e.bob,
        "b1",
        SessionType::Interactive,
        Some("cathodes"),
        &["li"],
    )
    .await;
    m.set_status(a, &s1, Active).await.unwrap();

    let all = names(&e, a, ListQuery::default()).await;
    assert_eq!(
        all,
        ["s1", "s2", "s3"],
        "bob's session is not visible to alice"
    );
    let q = |f: fn(&mut ListQuery)| {
        let mut q = ListQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(names(&e, a, q(|q| q.status = Some(Active))).await, ["s1"]);
    assert_eq!(
        names(&e, a, q(|q| q.status = Some(Created))).await,
        ["s2", "s3"]
    );
    assert_eq!(
        names(&e, a, q(|q| q.project = Some("cathodes".into()))).await,
        ["s1", "s2"]
    );
    assert_eq!(
        names(&e, a, q(|q| q.session_type = Some(SessionType::Batch))).await,
        ["s3"]
    );
    assert_eq!(
        names(&e, a, q(|q| q.tag = Some("li".into()))).await,
        ["s1", "s2"]
    );
    assert_eq!(
        names(&e, a, q(|q| q.tag = Some("l".into()))).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&e, a, q(|q| q.owner = Some("alice".into()))).await,
        all
    );
    assert!(
        names(&e, a, q(|q| q.owner = Some("bob".into())))
            .await
            .is_empty()
    );
    assert!(
        names(&e, a, q(|q| q.owner = Some("nobody".into())))
            .await
            .is_empty()
    );
    assert_eq!(names(&e, &e.bob, ListQuery::default()).await, ["b1"]);
    let combined = q(|q| {
        q.project = Some("cathodes".into());
        q.tag = Some("na".into());
    });
    assert_eq!(names(&e, a, combined).await, ["s2"]);

    let q: ListQuery = serde_json::from_value(json!({"type": "research"})).unwrap();
    assert_eq!(names(&e, a, q).await, ["s2"]);
    assert!(serde_json::from_value::<ListQuery>(json!({"status": "deleted"})).is_err());
}

#[tokio::test]
async fn cursor_pagination_visits_every_session_once_newest_first() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let mut created = Vec::new();
    for i in 0..7 {
        created.push(e.session(&format!("s{i}")).await);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = m
            .list_sessions(
                a,
                ListQuery {
                    limit: Some(3),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "newest first, each exactly once");
}

#[tokio::test]
async fn a_stale_version_is_refused_field_by_field() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("original").await;
    let v1 = m.session(a, &id).await.unwrap().version;
    let s = m
        .update_session(
            a,
            &id,
            UpdateSession {
                name: Some("renamed".into()),
                tags: Some(vec!["x".into()]),
                ..Default::default()
            },
            Some(v1),
        )
        .await
        .unwrap();
    assert_eq!((s.name.as_str(), s.version), ("renamed", v1 + 1));
    assert_eq!(s.tags, ["x"]);

    let err = code(
        m.update_session(
            a,
            &id,
            UpdateSession {
                name: Some("mine".into()),
                metadata: Some(json!({"k": 1})),
                ..Default::default()
            },
            Some(v1),
        )
        .await,
        "version_conflict",
    );
    assert_eq!(err.kind, ErrorKind::Conflict);
    let d = err.details.unwrap();
    assert_eq!(d["your_version"], json!(v1));
    assert_eq!(d["stored_version"], json!(v1 + 1));
    let fields = d["fields"].as_array().unwrap();
    let name = fields.iter().find(|f| f["field"] == "name").unwrap();
    assert_eq!(
        (&name["yours"], &name["stored"]),
        (&json!("mine"), &json!("renamed"))
    );
    let meta = fields.iter().find(|f| f["field"] == "metadata").unwrap();
    assert_eq!(
        (&meta["yours"], &meta["stored"]),
        (&json!({"k": 1}), &json!({}))
    );
    assert_eq!(fields.len(), 2, "only the fields you sent: {fields:?}");
    assert_eq!(m.session(a, &id).await.unwrap().name, "renamed");

    code(
        m.update_session(
            a,
            &id,
            UpdateSession {
                name: Some(" ".into()),
                ..Default::default()
            },
            None,
        )
        .await,
        "invalid_input",
    );
    code(
        m.update_session(
            a,
            &id,
            UpdateSession {
                metadata: Some(json!("text")),
                ..Default::default()
            },
            None,
        )
        .await,
        "invalid_input",
    );
    code(
        m.update_session(&e.bob, &id, UpdateSession::default(), None)
            .await,
        "not_found",
    );
    let s = m
        .update_session(
            a,
            &id,
            UpdateSession {
                project: Some(None),
                ..Default::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        s.version,
        v1 + 2,
        "an unconditional update still bumps the version"
    );
}

#[tokio::test]
async fn delete_removes_the_session_and_everything_in_it() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("doomed").await;
    let keep = e.session("kept").await;
    e.say(&id, "main", Role::User, "hello").await;
    m.create_checkpoint(a, &id, "cp", None, None).await.unwrap();
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.say(&id, "alt", Role::User, "fork").await;
    e.record(&id, "alt", json!({"kind": "material", "formula": "LiCoO2"}))
        .await;
    code(m.delete_session(&e.bob, &id).await, "not_found");
    m.delete_session(a, &id).await.unwrap();
    code(m.session(a, &id).await, "not_found");
    code(m.messages(a, &id, "main", None, None).await, "not_found");
    code(m.delete_session(a, &id).await, "not_found");
    code(m.set_status(a, &id, Active).await, "not_found");
    assert_eq!(
        m.db().node_counts(&id).await.unwrap().len(),
        0,
        "no node of the session is left"
    );
    assert_eq!(e.contents(&keep, "main").await.len(), 0);
    assert!(m.session(a, &keep).await.is_ok());
}

#[tokio::test]
async fn create_validates_its_input() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let bad = [
        json!({"name": ""}),
        json!({"name": "r", "session_type": "research"}),
        json!({"name": "r", "session_type": "research", "duration_days": 3}),
        json!({"name": "r", "session_type": "research", "duration_days": 3,
               "checkpoint_frequency": "every tuesday"}),
        json!({"name": "r", "context": {"max_history": 20, "material_memory": 10,
               "auto_summarise": true, "relevance_threshold": 3.0, "context_window": 8000}}),
        json!({"name": "r", "tags": [""]}),
    ];
    for b in bad {
        let req: CreateSession = serde_json::from_value(b.clone()).unwrap();
        code(m.create_session(a, req).await, "invalid_input");
    }
    let req: CreateSession = serde_json::from_value(json!({"name": "r",
        "session_type": "research", "duration_days": 3, "checkpoint_frequency": "0 */6 * * *",
        "project": "p", "tags": ["t"], "metadata": {"k": "v"}}))
    .unwrap();
    let s = m.create_session(a, req).await.unwrap();
    assert_eq!(s.status, Created);
    assert_eq!(s.default_branch, "main");
    assert_eq!(s.config.duration_days, Some(3));
    assert_eq!(s.metadata, json!({"k": "v"}));
    assert!(serde_json::from_value::<CreateSession>(json!({"name": "x", "colour": 1})).is_err());
}
