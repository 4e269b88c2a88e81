//! Kiln's HTTP service: the only crate that knows axum. Routes are thin: each parses its input,
//! authenticates the caller and calls the SessionManager, which holds every behaviour.

mod auth;
mod error;
mod extract;
mod html;
pub mod jobs;
pub mod openapi;
mod router;
mod routes;

use std::net::SocketAddr;

use kiln_agent::Agent;
use kiln_session::SessionManager;

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
}

impl AppState {
    /// Returns the state for `agent`.
    pub fn new(agent: Agent, max_body_bytes: usize) -> Self {
        AppState {
            mgr: agent.manager().clone(),
            agent,
            max_body_bytes,
            public_url: String::new(),
        }
    }

    /// Sets the URL share links and other handed-out links start with.
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = url.into().trim_end_matches('/').to_string();
        self
    }
}

/// Serves the router on a bound listener until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
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
/// token once), binds `bind` and serves.
pub async fn run(
    agent: Agent,
    bind: &str,
    max_body_bytes: usize,
    public_url: Option<&str>,
    jobs: Option<kiln_session::JobsConfig>,
) -> std::io::Result<()> {
    let mgr = agent.manager().clone();
    let listener = tokio::net::TcpListener::bind(bind).await?;
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
    println!("Model: {}", agent.model_name());
    println!("Kiln listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let public_url = public_url
        .filter(|u| !u.is_empty())
        .map_or_else(|| format!("http://{addr}"), str::to_owned);
    let state = AppState::new(agent, max_body_bytes).with_public_url(public_url);
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
