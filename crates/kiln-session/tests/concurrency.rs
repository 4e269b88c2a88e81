//! Faults: many tasks appending to one branch at once, and a process killed mid-stream.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use kiln_session::SessionManager;
use kiln_types::{Role, SessionStatus};

const TASKS: usize = 32;
const PER_TASK: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_lose_nothing_and_stay_linear() {
    let e = common::env().await;
    let id = e.session("busy").await;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let m = e.mgr.clone();
        let a = e.alice.clone();
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..PER_TASK {
                m.append_message(
                    &a,
                    &id,
                    "main",
                    common::msg(Role::User, &format!("t{t}-{i}")),
                )
                .await
                .unwrap();
            }
        }));
    }
    for h in futures::future::join_all(handles).await {
        h.unwrap();
    }
    let page = e
        .mgr
        .messages(&e.alice, &id, "main", Some(1000), None)
        .await
        .unwrap();
    assert!(page.next_cursor.is_none());
    let nodes: Vec<_> = page.items.into_iter().rev().collect();
    assert_eq!(nodes.len(), TASKS * PER_TASK);
    let contents: HashSet<_> = nodes.iter().map(|n| n.content.clone()).collect();
    for t in 0..TASKS {
        for i in 0..PER_TASK {
            assert!(contents.contains(&format!("t{t}-{i}")), "t{t}-{i} is lost");
        }
    }
    // One linear history: seqs 1..=N, each node's parent the one before it.
    for (k, n) in nodes.iter().enumerate() {
        assert_eq!(n.seq, k as i64 + 1);
        if k > 0 {
            assert_eq!(n.parent_id.as_deref(), Some(nodes[k - 1].id.as_str()));
        }
    }
    // Each task's own messages keep their order.
    for t in 0..TASKS {
        let mine: Vec<_> = nodes
            .iter()
            .filter(|n| n.content.starts_with(&format!("t{t}-")))
            .map(|n| n.content.clone())
            .collect();
        let want: Vec<_> = (0..PER_TASK).map(|i| format!("t{t}-{i}")).collect();
        assert_eq!(mine, want);
    }
    assert_eq!(e.head(&id, "main").await, nodes.last().unwrap().id);
    let events = e.mgr.session_events(&e.alice, &id).await.unwrap();
    let activations = events
        .iter()
        .filter(|x| x.to == SessionStatus::Active)
        .count();
    assert_eq!(activations, 1, "only the first write activates the session");
    assert_eq!(e.mgr.branches(&e.alice, &id, false).await.unwrap().len(), 1);
}

const CHILD_DIR: &str = "KILN_TEST_KILL_CHILD_DIR";
/// The child's PostgreSQL database, on that backend.
const CHILD_DB: &str = "KILN_TEST_KILL_CHILD_DB";

/// In the child process: appends until killed, printing each acknowledged message.
async fn child(dir: &str) {
    let dir = std::path::Path::new(dir);
    if let Ok(url) = std::env::var(CHILD_DB).as_deref()
        && !url.is_empty()
    {
        common::remember(dir, url);
    }
    let mgr = SessionManager::open(&common::config(dir, 32))
        .await
        .unwrap();
    let (alice, _) = mgr.add_user("alice", true).await.unwrap();
    let alice = alice.into();
    let id = mgr
        .create_session(
            &alice,
            kiln_session::CreateSession {
                name: "victim".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    println!("session {id}");
    for i in 0..100_000 {
        let content = format!("ack-{i}");
        mgr.append_message(&alice, &id, "main", common::msg(Role::User, &content))
            .await
            .unwrap();
        println!("{content}");
    }
}

#[tokio::test]
async fn a_killed_process_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        child(&dir).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(dir.path(), 32);
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_process_loses_no_acknowledged_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .env(CHILD_DB, &config.database.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    /// Kills the child even if an assertion below fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = proc.stdout.take().unwrap();
    let mut proc = KillOnDrop(proc);
    let mut lines = BufReader::new(stdout).lines();
    let mut session = None;
    let mut acked = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        // The harness prints `test … ... ` on the same line as the child's first output.
        if let Some((_, id)) = line.split_once("session ") {
            session = Some(id.trim().to_string());
        } else if line.starts_with("ack-") {
            acked.push(line);
            if acked.len() == 200 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no WAL checkpoint, no close.
    proc.0.kill().unwrap();
    proc.0.wait().unwrap();
    let session = session.expect("the child announced its session");
    assert_eq!(
        acked.len(),
        200,
        "the child acknowledged writes before it was killed"
    );

    let mgr = SessionManager::open(&config).await.unwrap();
    let alice = mgr.local_caller(Some("alice")).await.unwrap();
    let page = mgr
        .messages(&alice, &session, "main", Some(1000), None)
        .await
        .unwrap();
    let stored: HashSet<_> = page.items.iter().map(|n| n.content.clone()).collect();
    for a in &acked {
        assert!(stored.contains(a), "acknowledged write {a} was lost");
    }
    let seqs: Vec<_> = page.items.iter().rev().map(|n| n.seq).collect();
    assert_eq!(
        seqs,
        (1..=seqs.len() as i64).collect::<Vec<_>>(),
        "the history is intact"
    );
    assert!(mgr.verify_audit(&alice, &session).await.unwrap().valid);
}
