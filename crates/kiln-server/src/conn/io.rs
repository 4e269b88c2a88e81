//! The guarded stream under each connection: applies the deadline that fits the moment (a new
//! connection's first request, a request head, keep-alive idleness, a request body, a response
//! the client does not read), and refuses over-long request lines and heads itself, with the
//! JSON error body, before hyper (whose own refusals are bare) sees them.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use futures::task::AtomicWaker;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep_until};

use super::{Limits, SharedDeadline};

/// What the service and the accept loop tell the stream about its connection, and what the
/// stream tells them.
#[derive(Debug, Default)]
pub(super) struct Shared {
    in_flight: AtomicUsize,
    /// Requests whose response is done (written or dropped).
    done: AtomicU64,
    body_deadline: SharedDeadline,
    /// `IDLE`, `READING` (a head begun at `phase_since`) or `BUSY`.
    phase: AtomicU8,
    phase_since: SharedDeadline,
    /// Set by the accept loop at the connection cap: close at the next read.
    evict: AtomicBool,
    /// A response went out with `Connection: close` because its request body was not read:
    /// every byte that follows is the rest of that body, never a new request head.
    closing: AtomicBool,
    reader: AtomicWaker,
}

const BUSY: u8 = 0;
const IDLE: u8 = 1;
const READING: u8 = 2;

impl Shared {
    /// A connection just accepted: waiting for its first request (so the accept loop may
    /// close it to make room even before its task first runs).
    pub(super) fn accepted() -> Self {
        let shared = Shared::default();
        shared.set_phase(IDLE);
        shared
    }

    /// Since when the connection has been waiting for a request, or reading one head for
    /// longer than `slow` (such connections may be closed at the cap to make room); `None`
    /// when it is working, already asked to close, or reading a head briskly.
    pub(super) fn waiting_since(&self, slow: std::time::Duration) -> Option<Instant> {
        if self.evict.load(Ordering::Acquire) || self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since = self.phase_since.get()?;
        match self.phase.load(Ordering::Acquire) {
            IDLE => Some(since),
            READING if since.elapsed() > slow => Some(since),
            _ => None,
        }
    }

    /// Asks the connection to close at its next read (unless its request has arrived).
    pub(super) fn evict(&self) {
        self.evict.store(true, Ordering::Release);
        self.reader.wake();
    }

    fn set_phase(&self, phase: u8) {
        self.phase_since.set(Some(Instant::now()));
        self.phase.store(phase, Ordering::Release);
    }

    /// Marks a request in flight until the returned guard drops.
    pub(super) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// The connection ends after the response in flight; what the client still sends is the
    /// rest of a body nobody reads.
    pub(super) fn close_after_response(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub(super) fn set_body_deadline(&self, at: Option<Instant>) {
        self.body_deadline.set(at);
    }
}

/// A request in flight; dropping it (with its response body) ends it.
#[derive(Debug)]
pub(super) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.done.fetch_add(1, Ordering::AcqRel);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where the connection is between requests.
#[derive(Debug, Clone, Copy)]
enum Head {
    /// Waiting for a request's first byte since `since` (`first`: the connection's first).
    Idle { since: Instant, first: bool },
    /// Reading a request head that started at `started`.
    Reading {
        started: Instant,
        len: usize,
        line_len: usize,
        line_ended: bool,
        newlines: u8,
    },
    /// The head is complete; the service takes it from here.
    Read { started: Instant },
}

/// A refusal written by the stream itself, then a short drain of what the client still sends
/// (closing a socket with unread data resets it, and the client could lose the answer).
#[derive(Debug)]
struct Reject {
    bytes: Vec<u8>,
    written: usize,
    drain_until: Option<Instant>,
    drained: usize,
}

/// Most bytes drained after a refusal before the connection is closed regardless.
const DRAIN_LIMIT: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct Guarded {
    inner: TcpStream,
    shared: Arc<Shared>,
    limits: Limits,
    seen_done: u64,
    head: Head,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
    write_stalled: Option<Instant>,
    reject: Option<Reject>,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

/// Polls `timer` for `deadline`; ready when the deadline has passed.
fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

/// The raw HTTP response for a refused head.
fn refusal(status: u16, reason: &str, code: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "error": {"code": code, "message": message, "recoverable": true}
    })
    .to_string();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Guarded {
    pub(super) fn new(inner: TcpStream, shared: Arc<Shared>, limits: Limits) -> Self {
        let now = Instant::now();
        shared.set_phase(IDLE);
        Guarded {
            inner,
            shared,
            limits,
            seen_done: 0,
            head: Head::Idle {
                since: now,
                first: true,
            },
            read_timer: Box::pin(sleep_until(now)),
            write_timer: Box::pin(sleep_until(now)),
            write_stalled: None,
            reject: None,
        }
    }

    /// After a response is done, the next bytes start a new head.
    fn sync(&mut self) {
        let done = self.shared.done.load(Ordering::Acquire);
        if done != self.seen_done
            && self.shared.in_flight.load(Ordering::Acquire) == 0
            && !self.shared.closing.load(Ordering::Acquire)
        {
            self.seen_done = done;
            self.head = Head::Idle {
                since: Instant::now(),
                first: false,
            };
            self.shared.set_phase(IDLE);
        }
    }

    /// The deadline for the read that is pending now, if any.
    fn read_deadline(&self) -> Option<Instant> {
        if self.shared.in_flight.load(Ordering::Acquire) > 0 {
            return self.shared.body_deadline.get();
        }
        Some(match self.head {
            Head::Idle { since, first: true } => since + self.limits.header_timeout,
            Head::Idle {
                since,
                first: false,
            } => since + self.limits.idle_timeout,
            Head::Reading { started, .. } | Head::Read { started } => {
                started + self.limits.header_timeout
            }
        })
    }

    /// Follows the head through `bytes`; returns the refusal when it breaks a limit.
    fn scan(&mut self, bytes: &[u8]) -> Option<Vec<u8>> {
        if self.shared.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        for &b in bytes {
            let (started, mut len, mut line_len, mut line_ended, mut newlines) = match self.head {
                Head::Read { .. } => return None,
                Head::Idle { .. } => {
                    self.shared.set_phase(READING);
                    (Instant::now(), 0, 0, false, 0)
                }
                Head::Reading {
                    started,
                    len,
                    line_len,
                    line_ended,
                    newlines,
                } => (started, len, line_len, line_ended, newlines),
            };
            len += 1;
            match b {
                b'\n' if !line_ended && line_len == 0 => {
                    // An empty line before the request line is ignored (RFC 9112 §2.2).
                    len = 0;
                }
                b'\n' => {
                    line_ended = true;
                    newlines += 1;
                }
                b'\r' => {}
                _ => {
                    newlines = 0;
                    if !line_ended {
                        line_len += 1;
                    }
                }
            }
            if !line_ended && line_len > self.limits.max_uri_bytes {
                let max = self.limits.max_uri_bytes;
                return Some(refusal(
                    414,
                    "URI Too Long",
                    "uri_too_long",
                    &format!("the request line is longer than {max} bytes"),
                ));
            }
            if len > self.limits.max_header_bytes {
                let max = self.limits.max_header_bytes;
                return Some(refusal(
                    431,
                    "Request Header Fields Too Large",
                    "headers_too_large",
                    &format!("the request line and headers are longer than {max} bytes"),
                ));
            }
            self.head = if newlines >= 2 {
                self.shared.set_phase(BUSY);
                Head::Read { started }
            } else {
                Head::Reading {
                    started,
                    len,
                    line_len,
                    line_ended,
                    newlines,
                }
            };
        }
        None
    }

    /// Writes the refusal, then drains for a moment; reports end of stream to hyper when done.
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(rej) = self.reject.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        while rej.written < rej.bytes.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &rej.bytes[rej.written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => rej.written += n,
                Poll::Pending => {
                    let since = *self.write_stalled.get_or_insert_with(Instant::now);
                    if expired(&mut self.write_timer, since + self.limits.write_timeout, cx) {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
        let until = *rej
            .drain_until
            .get_or_insert_with(|| Instant::now() + std::time::Duration::from_secs(1));
        if rej.drained == 0 {
            // Our answer is complete: say so, so the client stops sending.
            let _ = Pin::new(&mut self.inner).poll_shutdown(cx);
        }
        let mut scratch = [0u8; 8192];
        loop {
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                    rej.drained += rb.filled().len();
                    if rej.drained > DRAIN_LIMIT {
                        return Poll::Ready(Ok(()));
                    }
                }
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    if expired(&mut self.read_timer, until, cx) {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.reject.is_some() {
            return this.poll_reject(cx);
        }
        this.sync();
        this.shared.reader.register(cx.waker());
        // Asked to make room: a client whose request has already arrived is not waiting, so
        // it stays; one with nothing to say closes.
        let evicting = this.shared.evict.load(Ordering::Acquire);
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = buf.filled().len() - before;
                if evicting && got > 0 {
                    this.shared.evict.store(false, Ordering::Release);
                }
                if got > 0
                    && let Some(bytes) = this.scan(&buf.filled()[before..])
                {
                    // Hyper never sees the offending bytes: it gets our answer's end instead.
                    buf.set_filled(before);
                    this.reject = Some(Reject {
                        bytes,
                        written: 0,
                        drain_until: None,
                        drained: 0,
                    });
                    return this.poll_reject(cx);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if evicting => {
                tracing::debug!("closing a waiting connection to make room");
                Poll::Ready(Err(timed_out("waiting connection")))
            }
            Poll::Pending => {
                if let Some(deadline) = this.read_deadline()
                    && expired(&mut this.read_timer, deadline, cx)
                {
                    let what = match this.head {
                        _ if this.shared.in_flight.load(Ordering::Acquire) > 0 => "request body",
                        Head::Idle { first: false, .. } => "idle connection",
                        _ => "request head",
                    };
                    tracing::debug!(what, "closing a slow connection");
                    return Poll::Ready(Err(timed_out(what)));
                }
                Poll::Pending
            }
        }
    }
}

impl Guarded {
    fn after_write(
        &mut self,
        polled: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(r) => {
                self.write_stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let since = *self.write_stalled.get_or_insert_with(Instant::now);
                if expired(&mut self.write_timer, since + self.limits.write_timeout, cx) {
                    tracing::debug!("closing a connection whose client does not read");
                    return Poll::Ready(Err(timed_out("response write")));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(limits: Limits) -> (Guarded, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        (Guarded::new(stream, Arc::default(), limits), client)
    }

    async fn guarded(limits: Limits) -> Guarded {
        pair(limits).await.0
    }

    #[tokio::test]
    async fn a_response_the_client_never_reads_times_out() {
        use tokio::io::AsyncWriteExt as _;
        let limits = Limits {
            write_timeout: std::time::Duration::from_millis(300),
            ..Limits::default()
        };
        let (mut g, _client_that_never_reads) = pair(limits).await;
        let chunk = vec![0u8; 1 << 16];
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if let Err(e) = g.write_all(&chunk).await {
                    return e;
                }
            }
        })
        .await
        .expect("the stalled write fails by its deadline");
        assert_eq!(outcome.kind(), io::ErrorKind::TimedOut);
    }

    fn limits() -> Limits {
        Limits {
            max_uri_bytes: 300,
            max_header_bytes: 1000,
            ..Limits::default()
        }
    }

    #[tokio::test]
    async fn heads_within_the_limits_pass_in_any_split() {
        let head = format!(
            "\r\nGET /{} HTTP/1.1\r\nHost: x\r\nX-A: {}\r\n\r\n",
            "a".repeat(280),
            "b".repeat(600)
        );
        for split in [1, 7, 64, head.len()] {
            let mut g = guarded(limits()).await;
            for chunk in head.as_bytes().chunks(split) {
                assert!(g.scan(chunk).is_none(), "split {split}");
            }
            assert!(matches!(g.head, Head::Read { .. }), "split {split}");
        }
    }

    #[tokio::test]
    async fn long_lines_and_heads_are_refused_with_json() {
        let mut g = guarded(limits()).await;
        let line = format!("GET /{} HTTP/1.1\r\n", "a".repeat(400));
        let r = String::from_utf8(g.scan(line.as_bytes()).unwrap()).unwrap();
        assert!(r.starts_with("HTTP/1.1 414 "), "{r}");
        assert!(r.contains("connection: close"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "uri_too_long");
        assert_eq!(v["error"]["recoverable"], true);

        let mut g = guarded(limits()).await;
        let head = format!("GET / HTTP/1.1\r\nX-A: {}\r\n\r\n", "b".repeat(1200));
        let r = String::from_utf8(g.scan(head.as_bytes()).unwrap()).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        assert!(r.contains("headers_too_large"));
    }
}
