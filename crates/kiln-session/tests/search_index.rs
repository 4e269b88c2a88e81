//! The search index's life: created on first use from what SQLite already holds, catching up
//! with writes made while it was closed (the outbox), rebuilt when corrupt or of an older
//! schema, and rebuilt on request with progress. A real tantivy index in the temp data dir.

mod common;

use common::{env, msg};
use kiln_search::{Opened, SearchIndex};
use kiln_session::{SearchParams, SessionManager};
use kiln_types::Role;

fn query(q: &str) -> SearchParams {
    SearchParams {
        q: q.into(),
        ..Default::default()
    }
}

async fn count(mgr: &SessionManager, caller: &kiln_session::Caller, q: &str) -> usize {
    let page = mgr.search_sessions(caller, query(q)).await.unwrap();
    page.items.iter().map(|s| s.hits.len()).sum()
}

#[tokio::test]
async fn the_index_follows_sqlite_through_restarts_corruption_and_schema_changes() {
    let e = env().await;
    let s = e.session("garnets").await;
    e.mgr
        .append_message(
            &e.alice,
            &s,
            "main",
            msg(Role::User, "garnet electrolyte LLZO"),
        )
        .await
        .unwrap();
    // First use builds the index from what is already stored.
    assert_eq!(count(&e.mgr, &e.alice, "garnet").await, 1);

    // Writes from another process (another store on the file) wait in the outbox and are
    // applied before the next search.
    let dir = e.dir.path().join("search");
    let second = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap();
    drop(e.mgr.search_index().await.unwrap());
    second
        .append_message(
            &e.alice,
            &s,
            "main",
            msg(Role::User, "garnet sintering at 1200 C"),
        )
        .await
        .unwrap();
    let pending = second.db().outbox_max().await.unwrap();
    assert!(pending > 0);
    assert_eq!(
        count(&e.mgr, &e.alice, "sintering").await,
        1,
        "searches catch up first"
    );

    // A corrupt index is rebuilt from SQLite.
    let m3 = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap();
    drop(e.mgr);
    drop(second);
    std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
    let (_, opened) = SearchIndex::open(&dir, m3.db(), |_, _| {}, Default::default())
        .await
        .unwrap();
    assert!(
        matches!(opened, Opened::Rebuilt { nodes } if nodes >= 2),
        "{opened:?}"
    );

    // So is one written by an older schema.
    let meta_path = dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    meta["payload"] = serde_json::json!(r#"{"schema":0,"outbox":0}"#);
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let (idx, opened) = SearchIndex::open(&dir, m3.db(), |_, _| {}, Default::default())
        .await
        .unwrap();
    assert!(matches!(opened, Opened::Rebuilt { .. }), "{opened:?}");
    drop(idx);

    // `reindex` rebuilds on request and reports progress up to every node.
    let seen = std::sync::Mutex::new(Vec::new());
    let n = m3
        .reindex(|done, total| seen.lock().unwrap().push((done, total)))
        .await
        .unwrap();
    let total = u64::try_from(m3.db().node_count().await.unwrap()).unwrap();
    assert_eq!(n, total);
    assert_eq!(seen.lock().unwrap().last(), Some(&(total, total)));
    assert_eq!(count(&m3, &e.alice, "garnet").await, 2);
    // Bob, who may read nothing here, finds nothing.
    assert_eq!(count(&m3, &e.bob, "garnet").await, 0);
}

#[tokio::test]
async fn session_fields_on_hits_follow_changes_to_the_session() {
    let e = env().await;
    let s = e.session("fields").await;
    e.mgr
        .append_message(&e.alice, &s, "main", msg(Role::User, "kesterite absorber"))
        .await
        .unwrap();
    let tagged = |tag: &str| SearchParams {
        q: "kesterite".into(),
        tag: Some(tag.into()),
        ..Default::default()
    };
    let hits = |p: SearchParams| {
        let m = e.mgr.clone();
        let a = e.alice.clone();
        async move { m.search_sessions(&a, p).await.unwrap().items.len() }
    };
    assert_eq!(hits(tagged("solar")).await, 0);
    let current = e.mgr.session(&e.alice, &s).await.unwrap();
    e.mgr
        .update_session(
            &e.alice,
            &s,
            kiln_session::UpdateSession {
                tags: Some(vec!["solar".into()]),
                project: Some(Some("pv".into())),
                ..Default::default()
            },
            Some(current.version),
        )
        .await
        .unwrap();
    // The change re-indexes the session's nodes with their new tags and project.
    assert_eq!(hits(tagged("solar")).await, 1);
    let by_project = SearchParams {
        q: "kesterite".into(),
        project: Some("pv".into()),
        ..Default::default()
    };
    assert_eq!(hits(by_project).await, 1);
    // A status filter narrows to sessions in that status.
    let active = SearchParams {
        q: "kesterite".into(),
        status: Some(kiln_types::SessionStatus::Archived),
        ..Default::default()
    };
    assert_eq!(hits(active).await, 0);
}

/// Issue 13, item 7: after a full disk, tantivy's writer died and every search answered 500
/// until a restart. Now the fault is answered 507 (503 for an unwritable directory), the
/// health report says why, and once the fault clears the next sync re-opens the writer and
/// catches up from the outbox: no restart. The faults are the file system's own errors
/// (ENOSPC, EIO), raised by the index directory's switch.
#[tokio::test]
async fn a_storage_fault_is_answered_507_or_503_and_the_index_mends_itself() {
    use kiln_session::StorageFault;
    use kiln_types::ErrorKind;
    let e = env().await;
    let s = e.session("faults").await;
    e.say(&s, "main", Role::User, "olivine at first").await;
    assert_eq!(count(&e.mgr, &e.alice, "olivine").await, 1);
    assert_eq!(e.mgr.health().status, "ok");

    let switch = e.mgr.search_faults().clone();
    switch.fail_writes(Some(StorageFault::NoSpace));
    // SQLite is not the index: the message is stored and waits in the outbox.
    e.say(&s, "main", Role::User, "olivine while the disk is full")
        .await;
    for _ in 0..3 {
        let err = e
            .mgr
            .search_sessions(&e.alice, query("olivine"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.kind, err.code),
            (ErrorKind::InsufficientStorage, "insufficient_storage"),
            "{err:?}"
        );
        assert!(err.kind.recoverable());
    }
    let h = e.mgr.health();
    assert_eq!(h.status, "degraded");
    assert_eq!(h.reason, Some("search index: no space left on the device"));

    // An unwritable directory is a 503.
    switch.fail_writes(Some(StorageFault::Unavailable));
    let err = e.mgr.sync_search().await.unwrap_err();
    assert_eq!(
        (err.kind, err.code),
        (ErrorKind::Unavailable, "storage_unavailable")
    );
    assert_eq!(
        e.mgr.health().reason,
        Some("search index: storage cannot be written")
    );

    // Space returns: the same manager, no restart, finds both messages.
    switch.fail_writes(None);
    assert_eq!(count(&e.mgr, &e.alice, "olivine").await, 2);
    assert_eq!(e.mgr.health().status, "ok");
    e.say(&s, "main", Role::User, "olivine after").await;
    assert_eq!(count(&e.mgr, &e.alice, "olivine").await, 3);
    // What was committed survives a reopen (the outbox was trimmed only after the commit).
    let again = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap();
    drop(e.mgr);
    assert_eq!(count(&again, &e.alice, "olivine").await, 3);
}

/// Issue 13, item 11: hits are grouped per session by a collector that keeps each session's
/// best few, so one session repeating a word many times neither crowds out the others nor
/// costs a doc-store read per hit. Pages still cover every matching session once.
#[tokio::test]
async fn one_busy_session_does_not_crowd_out_the_others() {
    let e = env().await;
    let busy = e.session("busy").await;
    for i in 0..40 {
        let nodes = (0..25)
            .map(|j| {
                kiln_session::NewNode::message(
                    kiln_types::NodeKind::User,
                    None,
                    format!("zircon note {i}-{j}"),
                )
            })
            .collect();
        e.mgr
            .append_nodes(&e.alice, &busy, "main", nodes, None)
            .await
            .unwrap();
    }
    let mut quiet = Vec::new();
    for i in 0..3 {
        let s = e.session(&format!("quiet {i}")).await;
        e.say(&s, "main", Role::User, "zircon zircon zircon, once")
            .await;
        quiet.push(s);
    }
    let page = e
        .mgr
        .search_sessions(
            &e.alice,
            SearchParams {
                q: "zircon".into(),
                per_session: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 4, "{page:?}");
    for s in &page.items {
        assert!(s.hits.len() <= 3, "{s:?}");
        assert!(
            s.hits.windows(2).all(|w| w[0].score >= w[1].score),
            "best first: {s:?}"
        );
        assert_eq!(s.score, s.hits[0].score);
    }
    let busy_hits = &page
        .items
        .iter()
        .find(|s| s.session_id == busy)
        .unwrap()
        .hits;
    assert_eq!(busy_hits.len(), 3);
    // Sessions come in order of their best hit; the three-times-zircon messages score higher.
    assert!(
        page.items.windows(2).all(|w| w[0].score >= w[1].score),
        "{page:?}"
    );
    assert!(quiet.contains(&page.items[0].session_id), "{page:?}");
    // Paging by one session at a time still visits each session once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p = e
            .mgr
            .search_sessions(
                &e.alice,
                SearchParams {
                    q: "zircon".into(),
                    limit: Some(1),
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|s| s.session_id.clone()));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    let mut all = quiet.clone();
    all.push(busy);
    all.sort();
    assert_eq!(seen, all);
}

/// The index directory may be a volume of its own (a mount point, or a symlink to one): a
/// rebuild empties it and keeps it, where it once replaced it with a plain directory (or, on a
/// mount point, failed and left search unavailable).
#[cfg(unix)]
#[tokio::test]
async fn a_rebuild_keeps_an_index_directory_that_is_a_symlink() {
    let e = env().await;
    let s = e.session("garnets").await;
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("stale"), b"not an index").unwrap();
    let link = e.dir.path().join("search");
    std::os::unix::fs::symlink(volume.path(), &link).unwrap();
    e.mgr
        .append_message(&e.alice, &s, "main", msg(Role::User, "garnet electrolyte"))
        .await
        .unwrap();
    assert_eq!(count(&e.mgr, &e.alice, "garnet").await, 1);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced"
    );
    assert!(
        !volume.path().join("stale").exists(),
        "the old contents are gone"
    );
    assert!(
        std::fs::read_dir(volume.path()).unwrap().count() > 1,
        "the index lives on the volume"
    );
}
