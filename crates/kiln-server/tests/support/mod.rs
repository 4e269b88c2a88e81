//! A real server for the HTTP tests: a listener on 127.0.0.1:0, a real SQLite file in a temp
//! dir (or, with `KILN_TEST_BACKEND=postgres`, a fresh database on the PostgreSQL server
//! `KILN_TEST_DATABASE_URL` names: the same tests on both backends), two users (alice, bob) and
//! the agent with the offline planner or a given model.

#![allow(dead_code)] // each test crate uses its own part of the harness

use std::sync::Arc;

use kiln_agent::{Agent, Registry};
use kiln_llm::{ChatModel, OfflinePlanner};
use kiln_server::{AppState, serve};
use kiln_session::{Config, SessionManager};
use reqwest::{Client, StatusCode};
use serde_json::Value;

pub struct Server {
    pub base: String,
    pub alice: String,
    pub bob: String,
    /// Tokens of further users, by name: reader, commenter, writer, materials, manager, spare,
    /// boss.
    pub users: std::collections::BTreeMap<&'static str, String>,
    pub http: Client,
    /// The server's manager (for fault injection; requests go over HTTP).
    pub mgr: SessionManager,
    _dir: tempfile::TempDir,
    /// The PostgreSQL database on that backend, dropped (connections and all) with the server.
    _db: Option<kiln_db::testing::Scratch>,
}

/// Whether this run's stores are on PostgreSQL.
pub fn on_postgres() -> bool {
    kiln_db::testing::on_postgres()
}

/// Starts a server accepting bodies up to `max_body_bytes`, with the offline planner.
pub async fn start(max_body_bytes: usize) -> Server {
    start_with_model(max_body_bytes, Arc::new(OfflinePlanner::new())).await
}

/// Starts a server whose agent talks to `model`.
pub async fn start_with_model(max_body_bytes: usize, model: Arc<dyn ChatModel>) -> Server {
    let server = kiln_session::ServerConfig {
        max_body_bytes,
        ..Default::default()
    };
    start_configured(&server, model).await
}

/// Starts a server with the given `[server]` settings (body limit, connection limits).
pub async fn start_configured(
    server: &kiln_session::ServerConfig,
    model: Arc<dyn ChatModel>,
) -> Server {
    let mut config = Config {
        server: server.clone(),
        ..Config::default()
    };
    // The per-user rate limit is tests/limits.rs's; here many requests come fast.
    config.limits.expensive_per_minute = 0;
    start_with_config(config, model).await
}

/// Starts a server with `config` (its data directory replaced by a temp dir): `[server]`,
/// `[limits]`, `[agent]` and the rest.
pub async fn start_with_config(config: Config, model: Arc<dyn ChatModel>) -> Server {
    start_inner(config, Some(model)).await
}

/// Starts a server whose agent is built as `kiln serve` builds it: the `[llm]` model overlaid
/// by the settings page's file in the data directory (so the settings page can change it).
pub async fn start_from_config(mut config: Config) -> Server {
    config.limits.expensive_per_minute = 0;
    start_inner(config, None).await
}

async fn start_inner(mut config: Config, model: Option<Arc<dyn ChatModel>>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    config.storage.data_dir = dir.path().to_path_buf();
    let db = kiln_db::testing::Scratch::for_backend();
    if let Some(db) = &db {
        config.database.url = db.url.clone();
    }
    let server = &config.server;
    let mgr = SessionManager::open(&config).await.unwrap();
    let (_, alice) = mgr.add_user("alice", true).await.unwrap();
    let (_, bob) = mgr.add_user("bob", false).await.unwrap();
    let mut users = std::collections::BTreeMap::new();
    for name in [
        "reader",
        "commenter",
        "writer",
        "materials",
        "manager",
        "spare",
        "boss",
    ] {
        users.insert(name, mgr.add_user(name, false).await.unwrap().1);
    }
    let handle = mgr.clone();
    let agent = match model {
        Some(model) => Agent::new(mgr, model, Registry::builtin(), config.agent.clone()),
        None => Agent::from_config(mgr, &config).unwrap(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(
        listener,
        AppState::new(agent, server.max_body_bytes)
            .with_server_config(server)
            .with_limits(&config.limits)
            .with_public_url(format!("http://{addr}")),
        std::future::pending(),
    ));
    Server {
        base: format!("http://{addr}"),
        alice,
        bob,
        users,
        http: Client::new(),
        mgr: handle,
        _dir: dir,
        _db: db,
    }
}

impl Server {
    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Sends `method path` with an optional bearer token and JSON body; returns the status and
    /// the body as JSON.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Sends a request; returns the status and the body as JSON (or as a JSON string).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// The CSRF token of a signed-in page's forms.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_string()
}
