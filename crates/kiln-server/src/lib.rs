//! Kiln's HTTP service: the only crate that knows axum. Routes are thin: each parses its input,
//! authenticates the caller and calls the SessionManager, which holds every behaviour.

mod auth;
pub mod conn;
mod error;
mod extract;
pub mod graph;
mod html;
pub mod jobs;
pub mod limits;
mod markdown;
pub mod openapi;
mod router;
mod routes;

use kiln_agent::Agent;
use kiln_session::{ServerConfig, SessionManager};

pub use error::ApiError;
pub use router::router;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The session manager (the agent's, so merges use the tools' own merge rules).
    pub mgr: SessionManager,
    /// The research agent.
    pub agent: Agent,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Where the service is reached (`http://127.0.0.1:8080`), for links it hands out.
    pub public_url: String,
    /// Connection limits and timeouts.
    pub conn: conn::Limits,
    /// Per-user budgets for the expensive routes.
    pub limiter: std::sync::Arc<limits::RateLimiter>,
}

impl AppState {
    /// Returns the state for `agent`.
    pub fn new(agent: Agent, max_body_bytes: usize) -> Self {
        AppState {
            mgr: agent.manager().clone(),
            agent,
            max_body_bytes,
            public_url: String::new(),
            conn: conn::Limits::default(),
            // Unlimited until `with_limits` (embedders and tests); `run` applies `[limits]`.
            limiter: std::sync::Arc::new(limits::RateLimiter::new(&kiln_session::LimitsConfig {
                expensive_per_minute: 0,
                ..Default::default()
            })),
        }
    }

    /// Takes the per-user budgets from `[limits]`.
    pub fn with_limits(mut self, c: &kiln_session::LimitsConfig) -> Self {
        self.limiter = std::sync::Arc::new(limits::RateLimiter::for_store(c, &self.mgr));
        self
    }

    /// Takes the body limit, connection limits and public URL from `[server]`.
    pub fn with_server_config(mut self, c: &ServerConfig) -> Self {
        self.max_body_bytes = c.max_body_bytes;
        self.conn = conn::Limits::from(c);
        if !c.public_url.is_empty() {
            self = self.with_public_url(c.public_url.clone());
        }
        self
    }

    /// Sets the URL share links and other handed-out links start with.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into().trim_end_matches('/').to_string();
        self
    }
}

/// Serves the router on a bound listener until `shutdown` resolves, with the state's connection
/// limits (see [`conn`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.conn;
    conn::serve(listener, router(state), limits, shutdown).await
}

/// A future that resolves on Ctrl-C or, on Unix, SIGTERM (what `systemctl stop` and
/// `docker stop` send), so either stops the service cleanly: requests in flight finish, jobs
/// stop, the WAL is folded into the database. On Unix both handlers are installed when this is
/// called, not when the future is first polled: a signal that comes right after the service
/// says it is listening must not find the default action (death) still in place.
fn stop_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut int, mut term)) = signals {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping");
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("stopping");
    }
}

/// Runs the service until Ctrl-C or SIGTERM: creates the owner on first start (printing its
/// token once), binds `server.bind` and serves.
pub async fn run(agent: Agent, config: &kiln_session::Config) -> std::io::Result<()> {
    let server = &config.server;
    let jobs = config.jobs.enabled.then(|| config.jobs.clone());
    let mgr = agent.manager().clone();
    conn::raise_open_file_limit();
    let listener = tokio::net::TcpListener::bind(&server.bind).await?;
    let addr = listener.local_addr()?;
    let stop = stop_signal();
    match mgr.bootstrap_owner().await {
        Ok(Some((user, token))) => {
            println!(
                "Created the owner user `{}`. Its API token, shown only this once:",
                user.name
            );
            println!("  {token}");
            println!("Sign in to the web pages with: http://{addr}/login?token={token}");
            println!(
                "Use it as `Authorization: Bearer <token>`; create more users with `kiln user add NAME`."
            );
        }
        Ok(None) => {}
        Err(e) => {
            return Err(std::io::Error::other(format!(
                "could not create the owner user: {e}"
            )));
        }
    }
    match agent.model_slot().view().base_url {
        Some(url) => println!("Model: {} at {url}", agent.model_name()),
        None => println!(
            "Model: {} (no model server configured; see `kiln serve --help`, --llm-base-url)",
            agent.model_name()
        ),
    }
    println!("Kiln listening on http://{addr}");
    tracing::info!(%addr, "listening");
    // Batches a stopped server left running carry on (items done are not redone).
    let resumed = agent.resume_batches().await;
    if resumed > 0 {
        println!("Resuming {resumed} unfinished batch(es).");
    }
    let state = AppState::new(agent, server.max_body_bytes)
        .with_public_url(format!("http://{addr}"))
        .with_server_config(server)
        .with_limits(&config.limits);
    // Keep the search index within half a second of SQLite (searches also catch up first).
    // A failing sync is retried at every tick, which is also how the index mends after a
    // storage fault; the manager logs a fault once when it begins and once when it ends.
    let indexer = {
        let mgr = mgr.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            loop {
                tick.tick().await;
                if let Err(e) = mgr.sync_search().await {
                    tracing::debug!(code = e.code, "search sync failed: {}", e.message);
                }
            }
        })
    };
    let mut scheduler = match jobs {
        Some(cfg) => Some(
            jobs::start(mgr.clone(), cfg)
                .await
                .map_err(|e| std::io::Error::other(format!("could not start the jobs: {e}")))?,
        ),
        None => None,
    };
    let result = serve(listener, state, stop).await;
    indexer.abort();
    if let Some(s) = scheduler.as_mut() {
        let _ = s.shutdown().await;
    }
    mgr.close().await;
    result
}
