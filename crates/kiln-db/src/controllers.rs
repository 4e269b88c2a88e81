//! The external-controller locks of branch optimizers: one row per locked branch holding the
//! holder's name, times and the token's hash. Taking and giving up a lock write an audit entry
//! in the same transaction; a renewal only moves the expiry.

use serde::Serialize;
use serde_json::Value;

use crate::conn::{Row, query, query_scalar};
use crate::{Db, Result, now};

/// A controller lock as stored (the token hash stays inside the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerLock {
    pub branch: String,
    pub holder: String,
    /// The user whose token took the lock.
    pub acquired_by: String,
    pub acquired_at: String,
    pub renewed_at: String,
    pub expires_at: String,
}

/// How an attempt to take a lock ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// Taken (an expired lock it replaced, if any).
    Taken {
        lock: ControllerLock,
        replaced: Option<ControllerLock>,
    },
    /// Someone else holds it and it has not expired.
    Held(ControllerLock),
}

fn lock_from(r: &Row) -> Result<ControllerLock> {
    Ok(ControllerLock {
        branch: r.try_get("branch")?,
        holder: r.try_get("holder")?,
        acquired_by: r.try_get("acquired_by")?,
        acquired_at: r.try_get("acquired_at")?,
        renewed_at: r.try_get("renewed_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

const COLUMNS: &str = "branch, holder, acquired_by, acquired_at, renewed_at, expires_at";

fn expiry(ttl_seconds: u32) -> String {
    crate::stamp(chrono::Utc::now() + chrono::Duration::seconds(i64::from(ttl_seconds)))
}

impl Db {
    /// The branch's controller lock with its token hash, expired or not.
    pub async fn controller(
        &self,
        session: &str,
        branch: &str,
    ) -> Result<Option<(ControllerLock, Vec<u8>)>> {
        let sql = format!(
            "SELECT {COLUMNS}, token_hash FROM optimizer_controllers WHERE session_id = $1 AND branch = $2"
        );
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(branch)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        row.map(|r| Ok((lock_from(&r)?, r.try_get("token_hash")?)))
            .transpose()
    }

    /// Takes the branch's lock for `ttl_seconds` unless an unexpired one is held; the audit
    /// entry `action` (its payload completed with the lock) is written in the same transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn acquire_controller(
        &self,
        session: &str,
        branch: &str,
        holder: &str,
        token_hash: &[u8],
        actor: &str,
        ttl_seconds: u32,
        action: &str,
    ) -> Result<Acquired> {
        let mut tx = self.write().await?;
        crate::sessions::exists(&mut tx, session).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM optimizer_controllers WHERE session_id = $1 AND branch = $2"
        );
        let existing = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(branch)
            .fetch_optional(&mut tx)
            .await?
            .map(|r| lock_from(&r))
            .transpose()?;
        let at = now();
        if let Some(l) = &existing
            && l.expires_at > at
        {
            return Ok(Acquired::Held(l.clone()));
        }
        let lock = ControllerLock {
            branch: branch.to_owned(),
            holder: holder.to_owned(),
            acquired_by: actor.to_owned(),
            acquired_at: at.clone(),
            renewed_at: at,
            expires_at: expiry(ttl_seconds),
        };
        query(
            "INSERT INTO optimizer_controllers \
             (session_id, branch, holder, token_hash, acquired_by, acquired_at, renewed_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (session_id, branch) DO UPDATE SET \
             holder = excluded.holder, token_hash = excluded.token_hash, \
             acquired_by = excluded.acquired_by, acquired_at = excluded.acquired_at, \
             renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
        )
        .bind(session)
        .bind(branch)
        .bind(holder)
        .bind(token_hash)
        .bind(actor)
        .bind(&lock.acquired_at)
        .bind(&lock.renewed_at)
        .bind(&lock.expires_at)
        .execute(&mut tx)
        .await?;
        let payload = serde_json::json!({
            "branch": branch, "holder": holder, "expires_at": lock.expires_at,
            "replaced_expired": existing.as_ref().map(|l| &l.holder),
        });
        crate::audit::append(&mut tx, session, actor, action, &payload).await?;
        tx.commit().await?;
        Ok(Acquired::Taken {
            lock,
            replaced: existing,
        })
    }

    /// Moves the expiry of the lock `token_hash` proves, if it has not expired; `None` when no
    /// such live lock exists. No audit entry and no node: renewals are frequent.
    pub async fn renew_controller(
        &self,
        session: &str,
        branch: &str,
        token_hash: &[u8],
        ttl_seconds: u32,
    ) -> Result<Option<ControllerLock>> {
        let at = now();
        let sql = format!(
            "UPDATE optimizer_controllers SET renewed_at = $1, expires_at = $2 \
             WHERE session_id = $3 AND branch = $4 AND token_hash = $5 AND expires_at > $6 \
             RETURNING {COLUMNS}"
        );
        let mut tx = self.write().await?;
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(&at)
            .bind(expiry(ttl_seconds))
            .bind(session)
            .bind(branch)
            .bind(token_hash)
            .bind(&at)
            .fetch_optional(&mut tx)
            .await?;
        let lock = row.map(|r| lock_from(&r)).transpose()?;
        tx.commit().await?;
        Ok(lock)
    }

    /// Removes the branch's lock — the one `token_hash` proves, or any with `None` — and
    /// writes the audit entry `action` with `payload` completed by the lock; `None` when there
    /// was no such lock (nothing written).
    pub async fn release_controller(
        &self,
        session: &str,
        branch: &str,
        token_hash: Option<&[u8]>,
        actor: &str,
        action: &str,
        mut payload: Value,
    ) -> Result<Option<ControllerLock>> {
        let mut tx = self.write().await?;
        let sql = format!(
            "DELETE FROM optimizer_controllers WHERE session_id = $1 AND branch = $2 \
             AND ($3 IS NULL OR token_hash = $4) RETURNING {COLUMNS}"
        );
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(branch)
            .bind(token_hash)
            .bind(token_hash)
            .fetch_optional(&mut tx)
            .await?;
        let Some(lock) = row.map(|r| lock_from(&r)).transpose()? else {
            return Ok(None);
        };
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("branch".into(), branch.into());
            obj.insert("holder".into(), lock.holder.clone().into());
            obj.insert("acquired_at".into(), lock.acquired_at.clone().into());
        }
        crate::audit::append(&mut tx, session, actor, action, &payload).await?;
        tx.commit().await?;
        Ok(Some(lock))
    }

    /// The newest audit entry's number in a session (0 when none): where a watcher starts.
    pub async fn audit_max_seq(&self, session: &str) -> Result<i64> {
        query_scalar("SELECT COALESCE(MAX(seq), 0) FROM audit_log WHERE session_id = $1")
            .bind(session)
            .fetch_one(&mut *self.read().await?)
            .await
    }

    /// The session's audit entries after number `seq`, oldest first, at most `limit`.
    pub async fn audit_after(
        &self,
        session: &str,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<crate::AuditEntry>> {
        let rows = query(
            "SELECT seq, actor, action, payload, at, prev_hash, hash FROM audit_log \
             WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(session)
        .bind(seq)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(crate::AuditEntry {
                    seq: r.try_get("seq")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    payload: serde_json::from_str(&payload).unwrap_or(Value::String(payload)),
                    at: r.try_get("at")?,
                    prev_hash: r.try_get("prev_hash")?,
                    hash: r.try_get("hash")?,
                })
            })
            .collect()
    }
}
