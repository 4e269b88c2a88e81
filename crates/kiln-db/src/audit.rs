//! The per-session audit log: a hash chain over decisions and structural changes.
//!
//! Each entry's hash is SHA-256 over the previous hash and the canonical JSON (sorted keys) of
//! `{seq, at, actor, action, payload}`. The session id is not hashed, so an exported chain
//! verifies unchanged after import into a new session.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::conn::{Conn, query};
use crate::{Db, Result, now};

pub(crate) const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub actor: String,
    pub action: String,
    pub payload: Value,
    pub at: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditVerification {
    pub valid: bool,
    pub entries: i64,
    /// The seq of the first entry whose hash or link does not verify.
    pub first_broken: Option<i64>,
    pub reason: Option<String>,
}

pub(crate) fn entry_hash(
    prev: &str,
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    payload: &Value,
) -> String {
    let canonical =
        json!({"seq": seq, "at": at, "actor": actor, "action": action, "payload": payload});
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(canonical.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Appends an entry to a session's chain inside the caller's transaction.
pub(crate) async fn append(
    conn: &mut Conn,
    session: &str,
    actor: &str,
    action: &str,
    payload: &Value,
) -> Result<()> {
    let last =
        query("SELECT seq, hash FROM audit_log WHERE session_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(session)
            .fetch_optional(&mut *conn)
            .await?;
    let (seq, prev) = match last {
        Some(r) => (r.try_get::<i64, _>(0)? + 1, r.try_get::<String, _>(1)?),
        None => (1, GENESIS.to_string()),
    };
    let at = now();
    let hash = entry_hash(&prev, seq, &at, actor, action, payload);
    query(
        "INSERT INTO audit_log (session_id, seq, actor, action, payload, at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(session)
    .bind(seq)
    .bind(actor)
    .bind(action)
    .bind(payload.to_string())
    .bind(&at)
    .bind(&prev)
    .bind(&hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An audit row as stored (the payload as text), read the same way from either database.
#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    actor: String,
    action: String,
    payload: String,
    at: String,
    prev_hash: String,
    hash: String,
}

pub(crate) async fn entries(conn: &mut Conn, session: &str) -> Result<Vec<AuditEntry>> {
    match conn {
        Conn::Lite(c) => entries_in(&mut *c, session).await,
        Conn::Pg(c) => entries_in(&mut **c, session).await,
    }
}

/// A session's audit entries in order, from SQLite or PostgreSQL (the copy check reads both).
pub(crate) async fn entries_in<'e, DB, E>(conn: E, session: &str) -> Result<Vec<AuditEntry>>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    AuditRow: for<'r> sqlx::FromRow<'r, DB::Row>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT seq, actor, action, payload, at, prev_hash, hash FROM audit_log \
         WHERE session_id = $1 ORDER BY seq",
    )
    .bind(session.to_string())
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            seq: r.seq,
            actor: r.actor,
            action: r.action,
            payload: serde_json::from_str(&r.payload).unwrap_or(Value::String(r.payload)),
            at: r.at,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect())
}

/// Recomputes a chain and reports the first entry that does not verify.
pub fn verify(entries: &[AuditEntry]) -> AuditVerification {
    let mut prev = GENESIS.to_string();
    for (i, e) in entries.iter().enumerate() {
        let expected_seq = i as i64 + 1;
        let reason = if e.seq != expected_seq {
            Some(format!("expected seq {expected_seq}, found {}", e.seq))
        } else if e.prev_hash != prev {
            Some("prev_hash does not match the previous entry".to_string())
        } else if entry_hash(&prev, e.seq, &e.at, &e.actor, &e.action, &e.payload) != e.hash {
            Some("hash does not match the entry's content".to_string())
        } else {
            None
        };
        if let Some(reason) = reason {
            return AuditVerification {
                valid: false,
                entries: entries.len() as i64,
                first_broken: Some(e.seq),
                reason: Some(reason),
            };
        }
        prev = e.hash.clone();
    }
    AuditVerification {
        valid: true,
        entries: entries.len() as i64,
        first_broken: None,
        reason: None,
    }
}

impl Db {
    /// Returns a session's audit log, oldest first.
    pub async fn audit(&self, session: &str) -> Result<Vec<AuditEntry>> {
        let mut conn = self.read().await?;
        crate::sessions::exists(&mut conn, session).await?;
        entries(&mut conn, session).await
    }

    /// Recomputes a session's hash chain.
    pub async fn verify_audit(&self, session: &str) -> Result<AuditVerification> {
        Ok(verify(&self.audit(session).await?))
    }

    /// Appends a decision to a session's audit log.
    pub async fn record_audit(
        &self,
        session: &str,
        actor: &str,
        action: &str,
        payload: &Value,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        crate::sessions::exists(&mut tx, session).await?;
        append(&mut tx, session, actor, action, payload).await?;
        tx.commit().await?;
        Ok(())
    }
}
