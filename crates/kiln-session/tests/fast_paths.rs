//! The one-round-trip append and read paths: each case warms them, then changes what they
//! remember behind their back, and checks the result is what the full paths would give.

mod common;

use common::{code, env, msg};
use kiln_session::{BranchFrom, SessionManager};
use kiln_types::{Role, SessionStatus};

#[tokio::test]
async fn appends_from_another_store_on_the_same_file_are_not_overwritten() {
    let e = env().await;
    let s = e.session("two stores").await;
    e.say(&s, "main", Role::User, "a1").await;
    e.say(&s, "main", Role::User, "a2").await; // the first store now remembers main's head
    // A second store on the same file, as a second process would open it.
    let other = SessionManager::open(&common::config(e.dir.path(), 4))
        .await
        .unwrap();
    for text in ["b1", "b2"] {
        other
            .append_message(&e.alice, &s, "main", msg(Role::User, text))
            .await
            .unwrap();
    }
    e.say(&s, "main", Role::User, "a3").await;
    e.say(&s, "main", Role::User, "a4").await;
    assert_eq!(
        e.contents(&s, "main").await,
        ["a1", "a2", "b1", "b2", "a3", "a4"]
    );
    let path = e
        .mgr
        .messages(&e.alice, &s, "main", Some(100), None)
        .await
        .unwrap()
        .items;
    // One linear chain: every node's parent is the next older node.
    for pair in path.windows(2) {
        assert_eq!(pair[0].parent_id.as_deref(), Some(pair[1].id.as_str()));
        assert_eq!(pair[0].seq, pair[1].seq + 1);
    }
}

#[tokio::test]
async fn a_branch_that_took_the_segment_tip_sends_the_next_append_to_a_new_segment() {
    let e = env().await;
    let s = e.session("shared tip").await;
    e.say(&s, "main", Role::User, "m1").await;
    e.say(&s, "main", Role::User, "m2").await;
    e.mgr
        .create_branch(&e.alice, &s, "alt", Some(BranchFrom::Branch("main".into())))
        .await
        .unwrap();
    // `alt` extends the shared segment, so main's remembered head is no longer its tip.
    e.say(&s, "alt", Role::User, "x1").await;
    e.say(&s, "main", Role::User, "m3").await;
    e.say(&s, "main", Role::User, "m4").await;
    e.say(&s, "alt", Role::User, "x2").await;
    assert_eq!(e.contents(&s, "main").await, ["m1", "m2", "m3", "m4"]);
    assert_eq!(e.contents(&s, "alt").await, ["m1", "m2", "x1", "x2"]);
}

#[tokio::test]
async fn lifecycle_restore_and_expected_head_still_apply_to_a_warm_branch() {
    let e = env().await;
    let s = e.session("warm").await;
    let first = e.say(&s, "main", Role::User, "one").await;
    e.mgr
        .create_checkpoint(&e.alice, &s, "cp", None, None)
        .await
        .unwrap();
    let second = e.say(&s, "main", Role::User, "two").await;

    // A stale expected head is refused even though the store remembers the real one.
    let stale = kiln_session::MessageInput {
        expected_head: Some(first.clone()),
        ..msg(Role::User, "late")
    };
    code(
        e.mgr.append_message(&e.alice, &s, "main", stale).await,
        "head_moved",
    );
    let fresh = kiln_session::MessageInput {
        expected_head: Some(second),
        ..msg(Role::User, "three")
    };
    e.mgr
        .append_message(&e.alice, &s, "main", fresh)
        .await
        .unwrap();

    // A stranger cannot append or read, warm or not.
    code(
        e.mgr
            .append_message(&e.bob, &s, "main", msg(Role::User, "intruder"))
            .await,
        "not_found",
    );
    code(
        e.mgr.messages(&e.bob, &s, "main", Some(10), None).await,
        "not_found",
    );

    // Pausing refuses the next append; resuming takes it again.
    e.mgr
        .set_status(&e.alice, &s, SessionStatus::Paused)
        .await
        .unwrap();
    code(
        e.mgr
            .append_message(&e.alice, &s, "main", msg(Role::User, "paused"))
            .await,
        "session_not_active",
    );
    e.mgr
        .set_status(&e.alice, &s, SessionStatus::Resumed)
        .await
        .unwrap();
    e.say(&s, "main", Role::User, "four").await;

    // Restoring moves the head back; the next append continues from the checkpoint.
    e.mgr.restore(&e.alice, &s, "cp", None).await.unwrap();
    e.say(&s, "main", Role::User, "after restore").await;
    assert_eq!(e.contents(&s, "main").await, ["one", "after restore"]);
}

#[tokio::test]
async fn an_append_dropped_mid_flight_leaves_no_partial_write_and_no_stuck_writer() {
    let e = env().await;
    let s = e.session("cancel").await;
    e.say(&s, "main", Role::User, "kept").await;
    for i in 0..50 {
        let fut =
            e.mgr
                .append_message(&e.alice, &s, "main", msg(Role::User, &format!("maybe {i}")));
        // Poll the append once or a few times, then drop it wherever it is.
        let _ = tokio::time::timeout(std::time::Duration::from_micros(i * 20), fut).await;
    }
    e.say(&s, "main", Role::User, "last").await;
    let contents = e.contents(&s, "main").await;
    assert_eq!(contents.first().map(String::as_str), Some("kept"));
    assert_eq!(contents.last().map(String::as_str), Some("last"));
    // Whatever landed landed whole, in order, on one chain.
    let landed: Vec<usize> = contents[1..contents.len() - 1]
        .iter()
        .map(|c| c.strip_prefix("maybe ").unwrap().parse().unwrap())
        .collect();
    assert!(landed.windows(2).all(|w| w[0] < w[1]), "{landed:?}");
}

#[tokio::test]
async fn pages_read_in_one_query_match_pages_walked_across_segments() {
    let e = env().await;
    let s = e.session("pages").await;
    for i in 0..30 {
        e.say(&s, "main", Role::User, &format!("m{i}")).await;
    }
    let fork_at = e.head(&s, "main").await;
    e.say(&s, "main", Role::User, "main only").await;
    e.mgr
        .create_branch(&e.alice, &s, "side", Some(BranchFrom::Node(fork_at)))
        .await
        .unwrap();
    for i in 0..5 {
        e.say(&s, "side", Role::Assistant, &format!("s{i}")).await;
    }
    // Page through `side` 4 at a time: the first page lies in its own segment (one query),
    // later pages cross into main's segment (the walk).
    let mut cursor = None;
    let mut seen = Vec::new();
    loop {
        let page = e
            .mgr
            .messages(&e.alice, &s, "side", Some(4), cursor.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.into_iter().map(|n| n.content));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut want: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    want.extend((0..5).map(|i| format!("s{i}")));
    want.reverse();
    assert_eq!(seen, want);
}
