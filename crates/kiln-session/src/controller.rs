//! The external-controller lock on a branch's optimizer: a script or instrument controller takes
//! it with a name and a time to live and gets a token (256 random bits, stored only as its
//! SHA-256); while the lock is live only requests carrying the token change the optimizer. It
//! expires unless renewed; a renewal moves the expiry in place (no node, no audit entry), while
//! taking, releasing and breaking it are audit entries (`bayesian_optimizer.controller.*`).

use kiln_db::{Acquired, ControllerLock};
use kiln_types::ErrorKind;
use rand::RngCore as _;
use serde::Serialize;
use serde_json::json;

use crate::{Caller, Error, Result, SessionManager, hash_token};

/// Longest time to live a lock may ask for (a day): a crashed controller blocks no longer.
pub const MAX_CONTROLLER_TTL: u32 = 86_400;
/// Longest holder name.
pub const MAX_HOLDER_CHARS: usize = 200;
/// The header a controller's requests carry the token in.
pub const CONTROLLER_HEADER: &str = "kiln-lock-token";

/// Audit entry type of a lock taken.
pub const ACQUIRE_AUDIT: &str = "bayesian_optimizer.controller.acquire";
/// Audit entry type of a lock given up by its holder.
pub const RELEASE_AUDIT: &str = "bayesian_optimizer.controller.release";
/// Audit entry type of a lock broken by another writer.
pub const BREAK_AUDIT: &str = "bayesian_optimizer.controller.break";

/// A lock just taken: the token (shown once) and the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerGrant {
    /// The token to send as `Kiln-Lock-Token`; the server keeps only its hash.
    pub token: String,
    /// The lock.
    #[serde(flatten)]
    pub lock: ControllerLock,
}

fn new_lock_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("kct_{}", hex::encode(bytes))
}

/// The refusal a request without the holder's token gets, naming the holder and expiry.
fn held(lock: &ControllerLock) -> Error {
    Error::new(
        ErrorKind::Conflict,
        "optimizer_controlled",
        format!(
            "the optimizer on branch '{}' is driven by {} (since {}, until {} unless renewed): only requests carrying its Kiln-Lock-Token may change it",
            lock.branch, lock.holder, lock.acquired_at, lock.expires_at
        ),
    )
    .with_details(json!({"holder": lock.holder, "since": lock.acquired_at, "expires_at": lock.expires_at}))
}

fn check_ttl(ttl: u32) -> Result<u32> {
    if ttl == 0 || ttl > MAX_CONTROLLER_TTL {
        return Err(Error::bad_request(format!(
            "ttl_seconds must be between 1 and {MAX_CONTROLLER_TTL}, got {ttl}"
        )));
    }
    Ok(ttl)
}

impl SessionManager {
    /// Takes the branch optimizer's controller lock for `holder` for `ttl` seconds. Needs
    /// write access; 409 `optimizer_controlled` while another live lock is held.
    pub async fn acquire_controller(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        holder: &str,
        ttl: u32,
    ) -> Result<ControllerGrant> {
        self.active_session(caller, session).await?;
        self.db.branch(session, branch).await?;
        let holder = holder.trim();
        if holder.is_empty() || holder.chars().count() > MAX_HOLDER_CHARS {
            return Err(Error::bad_request(format!(
                "holder must be a name of 1 to {MAX_HOLDER_CHARS} characters"
            )));
        }
        let ttl = check_ttl(ttl)?;
        let token = new_lock_token();
        match self
            .db
            .acquire_controller(
                session,
                branch,
                holder,
                &hash_token(&token),
                &caller.user_id,
                ttl,
                ACQUIRE_AUDIT,
            )
            .await?
        {
            Acquired::Taken { lock, .. } => Ok(ControllerGrant { token, lock }),
            Acquired::Held(lock) => Err(held(&lock)),
        }
    }

    /// Moves the expiry of the lock `token` proves to `ttl` seconds from now. Needs write
    /// access; 409 when another holds it, 404 `no_controller_lock` when it expired or was
    /// released.
    pub async fn renew_controller(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        token: &str,
        ttl: u32,
    ) -> Result<ControllerLock> {
        self.writable(caller, session).await?;
        let ttl = check_ttl(ttl)?;
        if let Some(lock) = self
            .db
            .renew_controller(session, branch, &hash_token(token), ttl)
            .await?
        {
            return Ok(lock);
        }
        Err(self.not_yours(session, branch).await?)
    }

    /// Why a token proves no lock: another live lock is held (409), or none is (404).
    async fn not_yours(&self, session: &str, branch: &str) -> Result<Error> {
        Ok(match self.live_controller(session, branch).await? {
            Some((lock, _)) => held(&lock),
            None => Error::new(
                ErrorKind::NotFound,
                "no_controller_lock",
                format!(
                    "branch '{branch}' has no live controller lock for this token: it expired or was released; take it again"
                ),
            ),
        })
    }

    /// Gives up the lock `token` proves; with `force` (and no token) any writer breaks
    /// whatever lock is held, audited as a break with who did it.
    pub async fn release_controller(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
        token: Option<&str>,
        force: bool,
    ) -> Result<ControllerLock> {
        self.writable(caller, session).await?;
        let hash = token.map(hash_token);
        let (action, payload) = match (&hash, force) {
            (Some(_), _) => (RELEASE_AUDIT, json!({})),
            (None, true) => (BREAK_AUDIT, json!({"forced": true})),
            (None, false) => {
                return Err(Error::bad_request(
                    "send the lock's Kiln-Lock-Token, or force=true to break another's lock",
                ));
            }
        };
        match self
            .db
            .release_controller(
                session,
                branch,
                hash.as_deref(),
                &caller.user_id,
                action,
                payload,
            )
            .await?
        {
            Some(lock) => Ok(lock),
            None => Err(self.not_yours(session, branch).await?),
        }
    }

    /// The branch's live controller lock, if any (an expired one is none). Needs read access;
    /// writes nothing.
    pub async fn controller_lock(
        &self,
        caller: &Caller,
        session: &str,
        branch: &str,
    ) -> Result<Option<ControllerLock>> {
        self.readable(caller, session).await?;
        Ok(self.live_controller(session, branch).await?.map(|(l, _)| l))
    }

    async fn live_controller(
        &self,
        session: &str,
        branch: &str,
    ) -> Result<Option<(ControllerLock, Vec<u8>)>> {
        let now = kiln_db::now();
        Ok(self
            .db
            .controller(session, branch)
            .await?
            .filter(|(l, _)| l.expires_at > now))
    }

    /// Whether the model's optimizer locks wait for a person to confirm them in this session:
    /// `metadata.optimizer.confirm_locks`, true unless set to false.
    pub async fn locks_need_confirmation(&self, session: &str) -> Result<bool> {
        let s = self.db.session(session).await?;
        Ok(s.metadata
            .pointer("/optimizer/confirm_locks")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true))
    }

    /// Refuses (409 `optimizer_controlled`, naming the holder and expiry) a change to the
    /// branch's optimizer while a live lock is held and `token` does not prove it.
    pub async fn check_controller(
        &self,
        session: &str,
        branch: &str,
        token: Option<&str>,
    ) -> Result<()> {
        let Some((lock, hash)) = self.live_controller(session, branch).await? else {
            return Ok(());
        };
        // Hashes of equal length compared whole, not byte by byte with an early exit.
        let given = token.map(hash_token).unwrap_or_default();
        let same = given.len() == hash.len()
            && given.iter().zip(&hash).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        if same { Ok(()) } else { Err(held(&lock)) }
    }
}
