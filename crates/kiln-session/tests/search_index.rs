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
    let (_, opened) = SearchIndex::open(&dir, m3.db(), |_, _| {}).await.unwrap();
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
    let (idx, opened) = SearchIndex::open(&dir, m3.db(), |_, _| {}).await.unwrap();
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
