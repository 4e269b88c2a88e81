//! Turn notifications between processes sharing a PostgreSQL database: `NOTIFY` on the
//! `kiln_turn` channel to send, one `LISTEN`ing connection per listener to receive. A turn in
//! progress is not stored, so this is how its events reach watchers on other servers. SQLite
//! has one server: there the notify is a no-op and there is no listener.
//!
//! A notification is framed as `<origin>\n<session>\n<payload>`: the origin is the sending
//! store's random id ([`Db`]'s `origin`), so a listener skips what its own store sent (its
//! watchers had those events in-process); the payload is the caller's (kiln-session sends a
//! JSON array of events).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use crate::conn::query;
use crate::{Db, Error, Result};

/// The channel turn notifications go on.
pub const TURN_CHANNEL: &str = "kiln_turn";
/// The largest payload [`Db::notify_turn`] takes, in bytes. PostgreSQL refuses a notification
/// of 8000 bytes or more (its default page size); the frame adds the origin (36 bytes), the
/// session (at most [`SESSION_MAX`]) and two newlines.
pub const TURN_PAYLOAD_MAX: usize = 7800;
/// The longest session id a notification carries, in bytes.
const SESSION_MAX: usize = 128;
/// A lost connection is re-established at once; while it keeps failing, the pause before the
/// next attempt starts at this and doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A connection that lived this long was not flapping: the next loss reconnects at once.
const STEADY: Duration = Duration::from_secs(10);

/// What a [`TurnListener`] hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnNotice {
    /// A notification another store sent.
    Turn { session: String, payload: String },
    /// The listening connection was lost and is back: notifications sent meanwhile are gone.
    Lost,
}

impl Db {
    /// Sends `payload` (at most [`TURN_PAYLOAD_MAX`] bytes) about `session` to every other
    /// store listening on this database (`pg_notify` on a pooled connection, outside the write
    /// lock; delivered when it commits, at once). A no-op on SQLite.
    pub async fn notify_turn(&self, session: &str, payload: &str) -> Result<()> {
        if !self.is_postgres() {
            return Ok(());
        }
        if session.is_empty() || session.len() > SESSION_MAX || session.contains('\n') {
            return Err(Error::Invalid(
                "a turn notification names a session id of 1 to 128 bytes".into(),
            ));
        }
        if payload.len() > TURN_PAYLOAD_MAX {
            return Err(Error::Invalid(format!(
                "a turn notification carries at most {TURN_PAYLOAD_MAX} bytes, not {}",
                payload.len()
            )));
        }
        let frame = format!("{}\n{session}\n{payload}", self.origin);
        // dialect: pg_notify: SQLite has no notifications (one server, events stay in-process)
        query("SELECT pg_notify($1, $2)")
            .bind(TURN_CHANNEL)
            .bind(frame)
            .execute(&mut *self.read().await?)
            .await?;
        Ok(())
    }

    /// Starts listening for other stores' turn notifications on this database: when this
    /// returns, every notification committed afterwards is heard. `None` on SQLite.
    ///
    /// The listener has a connection of its own (a pool of one built from this store's
    /// options), so it takes no connection from the store's pool for as long as it lives.
    pub async fn turn_listener(&self) -> Result<Option<TurnListener>> {
        let Some(pool) = self.pg_pool() else {
            return Ok(None);
        };
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with((*pool.connect_options()).clone());
        let inner = listen(&own).await?;
        Ok(Some(TurnListener {
            pool: own,
            inner: Some(inner),
            origin: Arc::clone(&self.origin),
            connected_at: Instant::now(),
            retry_in: Duration::ZERO,
            backoff: Duration::ZERO,
            lost: false,
        }))
    }
}

async fn listen(pool: &PgPool) -> Result<PgListener> {
    let mut l = PgListener::connect_with(pool).await?;
    // A lost connection is re-established by `TurnListener::recv`, with a pause when it keeps
    // failing, rather than inside `try_recv`.
    l.eager_reconnect(false);
    l.listen(TURN_CHANNEL).await?;
    Ok(l)
}

/// Other stores' turn notifications on one PostgreSQL database, in the order they were sent
/// (PostgreSQL delivers in commit order). Reconnects by itself after a lost connection.
pub struct TurnListener {
    pool: PgPool,
    /// `None` while disconnected.
    inner: Option<PgListener>,
    origin: Arc<str>,
    connected_at: Instant,
    /// The pause before the next connection attempt.
    retry_in: Duration,
    backoff: Duration,
    /// The connection was lost since the last [`TurnNotice::Lost`].
    lost: bool,
}

impl std::fmt::Debug for TurnListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnListener")
            .field("connected", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

impl TurnListener {
    /// Waits for the next notification from another store, or for the news that some may have
    /// been missed ([`TurnNotice::Lost`], given once the connection is back). Never fails: a
    /// lost connection is re-established, with pauses growing to 10 s while it keeps failing;
    /// a malformed notification is skipped.
    pub async fn recv(&mut self) -> TurnNotice {
        loop {
            let Some(listener) = self.inner.as_mut() else {
                tokio::time::sleep(self.retry_in).await;
                match listen(&self.pool).await {
                    Ok(l) => {
                        self.inner = Some(l);
                        self.connected_at = Instant::now();
                        tracing::info!("listening for turn notifications again");
                    }
                    Err(e) => {
                        self.back_off();
                        tracing::warn!(error = %e, retry_in = ?self.retry_in,
                            "could not listen for turn notifications");
                    }
                }
                continue;
            };
            if self.lost {
                self.lost = false;
                return TurnNotice::Lost;
            }
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(notice) = parse(&self.origin, n.payload()) {
                        return notice;
                    }
                }
                Ok(None) => self.disconnected("connection lost"),
                Err(e) => self.disconnected(&e.to_string()),
            }
        }
    }

    fn disconnected(&mut self, why: &str) {
        tracing::warn!(
            error = why,
            "turn notifications: lost the listening connection"
        );
        self.inner = None;
        self.lost = true;
        if self.connected_at.elapsed() >= STEADY {
            self.backoff = Duration::ZERO;
        }
        self.back_off();
    }

    fn back_off(&mut self) {
        self.retry_in = self.backoff;
        self.backoff = (self.backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
    }
}

/// Reads a frame; `None` for the notifications of the store named `own` and malformed ones.
fn parse(own: &str, frame: &str) -> Option<TurnNotice> {
    let (origin, rest) = frame.split_once('\n')?;
    let (session, payload) = rest.split_once('\n')?;
    if origin == own || session.is_empty() {
        return None;
    }
    Some(TurnNotice::Turn {
        session: session.to_owned(),
        payload: payload.to_owned(),
    })
}

impl Drop for TurnListener {
    fn drop(&mut self) {
        // PgListener's drop spawns an `UNLISTEN` task, which panics without a runtime; the
        // process is ending then, and the server drops the connection's LISTEN with it.
        if tokio::runtime::Handle::try_current().is_err()
            && let Some(l) = self.inner.take()
        {
            std::mem::forget(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_from_elsewhere_are_read_and_own_or_malformed_ones_skipped() {
        assert_eq!(
            parse("me", "other\ns1\n[{\"event\":\"token\"}]\nwith a newline"),
            Some(TurnNotice::Turn {
                session: "s1".into(),
                payload: "[{\"event\":\"token\"}]\nwith a newline".into()
            })
        );
        for skipped in ["me\ns1\n[]", "other\n\n[]", "other s1 []", "other\ns1", ""] {
            assert_eq!(parse("me", skipped), None, "{skipped:?}");
        }
    }
}
