//! Shared set-up for the session manager's integration tests: a real SQLite file in a temp dir.

#![allow(dead_code)]

use kiln_session::{Caller, Config, CreateSession, EventInput, MessageInput, SessionManager};
use kiln_types::Role;
use serde_json::Value;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub mgr: SessionManager,
    pub alice: Caller,
    pub bob: Caller,
}

/// Returns a configuration on `dir` with a small snapshot interval, so tests cross snapshots.
pub fn config(dir: &std::path::Path, snapshot_every: u32) -> Config {
    let mut config = Config::default();
    config.storage.data_dir = dir.to_path_buf();
    config.storage.snapshot_every = snapshot_every;
    config
}

pub async fn env() -> Env {
    env_with(4).await
}

pub async fn env_with(snapshot_every: u32) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mgr = SessionManager::open(&config(dir.path(), snapshot_every))
        .await
        .unwrap();
    let (a, _) = mgr.add_user("alice", true).await.unwrap();
    let (b, _) = mgr.add_user("bob", false).await.unwrap();
    Env {
        dir,
        mgr,
        alice: a.into(),
        bob: b.into(),
    }
}

impl Env {
    /// Creates an interactive session owned by alice and returns its id.
    pub async fn session(&self, name: &str) -> String {
        self.mgr
            .create_session(
                &self.alice,
                CreateSession {
                    name: name.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Appends a message as alice and returns the new head.
    pub async fn say(&self, session: &str, branch: &str, role: Role, content: &str) -> String {
        self.mgr
            .append_message(&self.alice, session, branch, msg(role, content))
            .await
            .unwrap()
            .head
    }

    /// Records a state event (JSON with a `kind`) as alice and returns the new head.
    pub async fn record(&self, session: &str, branch: &str, event: Value) -> String {
        self.mgr
            .append_event(&self.alice, session, branch, ev(event))
            .await
            .unwrap()
            .head
    }

    pub async fn head(&self, session: &str, branch: &str) -> String {
        let branches = self.mgr.branches(&self.alice, session, true).await.unwrap();
        branches
            .into_iter()
            .find(|b| b.name == branch)
            .map(|b| b.head)
            .unwrap()
    }

    /// Returns the contents of a branch's conversation, oldest first.
    pub async fn contents(&self, session: &str, branch: &str) -> Vec<String> {
        let page = self
            .mgr
            .messages(&self.alice, session, branch, Some(1000), None)
            .await
            .unwrap();
        page.items.into_iter().rev().map(|n| n.content).collect()
    }
}

pub fn msg(role: Role, content: &str) -> MessageInput {
    MessageInput {
        role,
        content: content.into(),
        expected_head: None,
    }
}

pub fn ev(v: Value) -> EventInput {
    serde_json::from_value(v).unwrap()
}

/// Asserts that a result failed with the given code and returns the error.
#[track_caller]
pub fn code<T: std::fmt::Debug>(r: kiln_session::Result<T>, code: &str) -> kiln_session::Error {
    match r {
        Ok(v) => panic!("expected `{code}`, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(
                e.code, code,
                "unexpected error: {} ({:?})",
                e.message, e.details
            );
            e
        }
    }
}
