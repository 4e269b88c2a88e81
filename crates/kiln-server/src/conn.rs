//! The HTTP/1 connection layer under the router: accepts with a cap on open connections, closes
//! idle, slow-header, slow-body and unread-response connections, answers over-long request
//! lines and heads with the JSON error body, and stops gracefully within a grace period.
//!
//! axum's own `serve` has no timeouts: idle or half-sent connections stay open for ever, so a
//! thousand of them use up the process's file descriptors. Here every connection is a hyper
//! HTTP/1 connection over a [`Guarded`] stream, which knows (from the service wrapper in
//! `handle`) whether a request is in flight and applies the deadline that fits the moment.

mod io;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use kiln_session::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use io::{Guarded, Shared};

/// The connection limits (`[server]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub max_uri_bytes: usize,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits::from(&ServerConfig::default())
    }
}

impl From<&ServerConfig> for Limits {
    fn from(c: &ServerConfig) -> Self {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        Limits {
            max_connections: c.max_connections.max(1),
            header_timeout: secs(c.header_timeout_secs),
            idle_timeout: secs(c.idle_timeout_secs),
            body_timeout: secs(c.body_timeout_secs),
            write_timeout: secs(c.write_timeout_secs),
            max_uri_bytes: c.max_uri_bytes.max(256),
            max_header_bytes: c.max_header_bytes.max(1024),
            shutdown_grace: Duration::from_secs(c.shutdown_grace_secs),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in flight finish
/// for up to `limits.shutdown_grace` and closes what is left.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = fit_descriptors(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let open: Arc<Mutex<HashMap<u64, Arc<Shared>>>> = Arc::default();
    let mut next_id = 0u64;
    let mut cap_logged: Option<tokio::time::Instant> = None;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    let mut errors = AcceptErrors::default();
    'accept: loop {
        // At the cap, stop accepting: new clients wait in the kernel's backlog until a
        // connection closes (the timeouts below make sure one does).
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                // Make room: connections waiting for a request (or stuck in a head for over a
                // second) are the cheapest to close; a client reconnects in one round trip.
                let evicted = evict_waiting(&open, limits.max_connections);
                // Once per burst: a flood reaches the cap over and over.
                if cap_logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        max = limits.max_connections,
                        evicted,
                        "at the connection cap; closing connections that wait for a request"
                    );
                    cap_logged = Some(tokio::time::Instant::now());
                }
                // Connections that were busy become idle (kept alive) while we wait: look
                // again every tenth of a second rather than waiting out their idle timeout.
                let mut again = tokio::time::interval(Duration::from_millis(100));
                again.tick().await;
                loop {
                    tokio::select! {
                        () = &mut shutdown => break 'accept,
                        p = permits.clone().acquire_owned() => match p {
                            Ok(p) => break p,
                            Err(_) => break 'accept,
                        },
                        _ = again.tick() => {
                            evict_waiting(&open, limits.max_connections);
                        }
                    }
                }
            }
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    errors.failed(&e);
                    if matches!(e.raw_os_error(), Some(23 | 24)) {
                        // Out of descriptors (EMFILE, ENFILE): make room as at the cap.
                        evict_waiting(&open, limits.max_connections);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        errors.recovered();
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stop = stop_rx.clone();
        let shared = Arc::new(Shared::accepted());
        let id = next_id;
        next_id += 1;
        lock(&open).insert(id, shared.clone());
        let open = open.clone();
        conns.spawn(async move {
            connection(stream, peer, app, limits, shared, stop).await;
            lock(&open).remove(&id);
            drop(permit);
        });
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "closing connections still open after the shutdown grace period"
        );
        conns.shutdown().await;
    }
    Ok(())
}

/// Descriptors kept for everything but connections: SQLite's connections and WAL, the search
/// index's segment files, logs, backups.
const RESERVED_DESCRIPTORS: u64 = 128;

/// Lowers the connection cap to fit under the process's open-file limit (with room for the
/// database and the index), so a full house of connections never makes `accept` fail.
fn fit_descriptors(mut limits: Limits) -> Limits {
    #[cfg(unix)]
    {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        if let Some(soft) = soft {
            let fits = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS).max(8))
                .unwrap_or(usize::MAX);
            if fits < limits.max_connections {
                tracing::warn!(
                    configured = limits.max_connections,
                    open_file_limit = soft,
                    max_connections = fits,
                    "lowering max_connections to fit the open-file limit"
                );
                limits.max_connections = fits;
            }
        }
    }
    limits
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does at start), so the
/// connection cap is not squeezed by a conservative default; a failure keeps the old limit.
pub fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let lim = getrlimit(Resource::Nofile);
        if lim.current != lim.maximum && lim.maximum.is_some() {
            let raised = Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            };
            if let Err(e) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!(error = %e, "could not raise the open-file limit");
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Asks the connections that have waited longest for a request (or spent over a second on one
/// request head) to close, at most a quarter of the cap at a time: the oldest first, so a client
/// just accepted (whose request is on its way) is the last to go. Returns how many were asked.
fn evict_waiting(open: &Mutex<HashMap<u64, Arc<Shared>>>, cap: usize) -> usize {
    let mut waiting: Vec<_> = lock(open)
        .values()
        .filter_map(|s| Some((s.waiting_since(Duration::from_secs(1))?, s.clone())))
        .collect();
    let n = (cap / 4).max(1).min(waiting.len());
    if n < waiting.len() {
        waiting.select_nth_unstable_by_key(n, |(since, _)| *since);
    }
    for (_, s) in &waiting[..n] {
        s.evict();
    }
    n
}

/// Logs failed accepts once per burst (when they start and when they stop), not per attempt:
/// a server out of descriptors would otherwise write a line per retry.
#[derive(Debug, Default)]
struct AcceptErrors {
    failing: u64,
}

impl AcceptErrors {
    fn failed(&mut self, e: &std::io::Error) {
        if self.failing == 0 {
            tracing::warn!(error = %e, "accepting connections fails; retrying quietly");
        }
        self.failing += 1;
    }

    fn recovered(&mut self) {
        if self.failing > 0 {
            tracing::info!(failed = self.failing, "accepting connections again");
            self.failing = 0;
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Guarded::new(stream, shared.clone(), limits));
    let svc = hyper::service::service_fn(move |req| {
        handle(req, app.clone(), peer, shared.clone(), limits.body_timeout)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // Header and idle deadlines are the guarded stream's: it knows which one applies.
        .header_read_timeout(None)
        .keep_alive(true)
        // Our own head limits (answered with JSON) sit below hyper's, which answer bare.
        .max_buf_size((limits.max_header_bytes * 2).max(64 * 1024));
    let conn = builder.serve_connection(io, svc);
    let mut conn = pin!(conn);
    let finished = tokio::select! {
        r = conn.as_mut() => Some(r),
        // The service is stopping (or its sender is gone): finish the request in flight.
        _ = stop.changed() => None,
    };
    let result = match finished {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Runs one request through the router: tells the stream a request is in flight (until its
/// response body is done), bounds the time to receive the body, and marks a response
/// `Connection: close` when the request body was not read to its end (hyper cannot reuse such
/// a connection, and a client must not send its next request on it).
async fn handle(
    req: Request<Incoming>,
    app: Router,
    peer: SocketAddr,
    shared: Arc<Shared>,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let in_flight = shared.begin();
    let finished = Arc::new(AtomicBool::new(false));
    let mut req = if http_body::Body::is_end_stream(req.body()) {
        finished.store(true, Ordering::Relaxed);
        req.map(Body::new)
    } else {
        shared.set_body_deadline(Some(tokio::time::Instant::now() + body_timeout));
        let finished = finished.clone();
        let shared = shared.clone();
        req.map(move |b| {
            Body::new(TrackedBody {
                inner: b,
                finished,
                shared,
            })
        })
    };
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = app.oneshot(req).await.unwrap_or_else(|e| match e {});
    let (mut parts, body) = resp.into_parts();
    if !finished.load(Ordering::Relaxed) {
        shared.close_after_response();
        parts
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(Response::from_parts(
        parts,
        Body::new(ResponseBody {
            inner: body,
            _in_flight: in_flight,
        }),
    ))
}

/// A request body that records whether it was read to its end, and lifts the body deadline
/// once it is (or once the handler drops it).
struct TrackedBody {
    inner: Incoming,
    finished: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.finished.store(true, Ordering::Relaxed);
            self.shared.set_body_deadline(None);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TrackedBody {
    fn drop(&mut self) {
        self.shared.set_body_deadline(None);
    }
}

/// A response body that keeps its request "in flight" until hyper has written it (or dropped
/// it): streamed answers (SSE) are never cut by the idle deadline.
struct ResponseBody {
    inner: Body,
    _in_flight: io::InFlight,
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Nanoseconds since `base`, for deadlines kept in atomics.
fn nanos_since(base: tokio::time::Instant, t: tokio::time::Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(base).as_nanos()).unwrap_or(u64::MAX)
}

/// A deadline shared between the service and the stream (0: none).
#[derive(Debug)]
struct SharedDeadline {
    base: tokio::time::Instant,
    at: AtomicU64,
}

impl Default for SharedDeadline {
    fn default() -> Self {
        SharedDeadline {
            base: tokio::time::Instant::now(),
            at: AtomicU64::new(0),
        }
    }
}

impl SharedDeadline {
    fn set(&self, at: Option<tokio::time::Instant>) {
        let v = at.map_or(0, |t| nanos_since(self.base, t).max(1));
        self.at.store(v, Ordering::Relaxed);
    }

    fn get(&self) -> Option<tokio::time::Instant> {
        match self.at.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n)),
        }
    }
}
