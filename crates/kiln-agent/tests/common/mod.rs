//! Shared set-up: a real SQLite file in a temp dir (or, with `KILN_TEST_BACKEND=postgres`, a
//! fresh database on the PostgreSQL server `KILN_TEST_DATABASE_URL` names), a user, a
//! session, and an agent.

#![allow(dead_code)]

use std::sync::Arc;

use kiln_agent::{Agent, Registry};
use kiln_db::Node;
use kiln_llm::ChatModel;
use kiln_session::{AgentConfig, Caller, Config, CreateSession, SessionManager};
use kiln_types::{ContextConfig, NodeKind};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub mgr: SessionManager,
    pub alice: Caller,
    pub bob: Caller,
    /// The PostgreSQL database on that backend, dropped after `mgr`.
    pub db: Option<kiln_db::testing::Scratch>,
}

pub async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let db = kiln_db::testing::Scratch::for_backend();
    if let Some(db) = &db {
        config.database.url = db.url.clone();
    }
    let mgr = SessionManager::open(&config).await.unwrap();
    let (a, _) = mgr.add_user("alice", true).await.unwrap();
    let (b, _) = mgr.add_user("bob", false).await.unwrap();
    Env {
        dir,
        mgr,
        alice: a.into(),
        bob: b.into(),
        db,
    }
}

/// Agent config without discovery detection (scripted models then need no extra answers).
pub fn quiet() -> AgentConfig {
    AgentConfig {
        auto_detect_discoveries: false,
        ..AgentConfig::default()
    }
}

impl Env {
    pub fn agent(&self, model: Arc<dyn ChatModel>, config: AgentConfig) -> Agent {
        Agent::new(self.mgr.clone(), model, Registry::builtin(), config)
    }

    pub async fn session(&self, context: Option<ContextConfig>) -> String {
        self.mgr
            .create_session(
                &self.alice,
                CreateSession {
                    name: "agent test".into(),
                    context,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id
    }

    /// Every node on the branch path, oldest first, root excluded.
    pub async fn path(&self, session: &str, branch: &str) -> Vec<Node> {
        let head = self.mgr.db().branch(session, branch).await.unwrap().head;
        let mut nodes = self
            .mgr
            .db()
            .path(session, &head, 1000, None)
            .await
            .unwrap()
            .items;
        nodes.reverse();
        nodes.retain(|n| n.kind != NodeKind::Root);
        nodes
    }

    pub async fn kinds(&self, session: &str, branch: &str) -> Vec<NodeKind> {
        self.path(session, branch)
            .await
            .iter()
            .map(|n| n.kind)
            .collect()
    }
}
