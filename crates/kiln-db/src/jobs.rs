//! What the scheduled jobs read and lease: sessions due for a lifecycle step, the last
//! automatic checkpoint, and per-(job, session) leases with an expiry.

use crate::conn::{Dialect, query, query_scalar};
use crate::model::{SESSION_COLUMNS, Session};
use crate::{Db, Result};

impl Db {
    /// Takes the lease on `(job, session)` for `holder` until `until`, if it is free or expired
    /// at `now` (or already `holder`'s). Returns whether `holder` holds it now.
    pub async fn try_lease(
        &self,
        job: &str,
        session: &str,
        holder: &str,
        now: &str,
        until: &str,
    ) -> Result<bool> {
        let mut w = self.writer().await?;
        let n = query(
            "INSERT INTO job_leases (job, session_id, holder, until) VALUES ($1, $2, $3, $5) \
             ON CONFLICT (job, session_id) DO UPDATE SET holder = $3, until = $5 \
             WHERE job_leases.until <= $4 OR job_leases.holder = $3",
        )
        .bind(job)
        .bind(session)
        .bind(holder)
        .bind(now)
        .bind(until)
        .execute(&mut w.conn)
        .await?;
        Ok(n == 1)
    }

    /// Gives a lease back early.
    pub async fn release_lease(&self, job: &str, session: &str, holder: &str) -> Result<()> {
        let mut w = self.writer().await?;
        query("DELETE FROM job_leases WHERE job = $1 AND session_id = $2 AND holder = $3")
            .bind(job)
            .bind(session)
            .bind(holder)
            .execute(&mut w.conn)
            .await?;
        Ok(())
    }

    /// Sessions of these statuses (any type when `session_type` is `None`), each with its id
    /// and the result of reading its row: one unreadable row (a hostile or damaged value) is
    /// that session's error, not the list's.
    pub async fn sessions_with_status(
        &self,
        statuses: &[&str],
        session_type: Option<&str>,
    ) -> Result<Vec<(String, Result<Session>)>> {
        let list = statuses
            .iter()
            .map(|s| format!("'{}'", s.replace('\'', "")))
            .collect::<Vec<_>>()
            .join(",");
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE status IN ({list}) AND import_until IS NULL \
             AND protected_at IS NULL AND ($1 IS NULL OR session_type = $1) ORDER BY id"
        )))
        .bind(session_type)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("id")?, Session::from_row(r))))
            .collect()
    }

    /// The newest of the session's own update time and its branches' head moves.
    pub async fn last_activity(&self, session: &str) -> Result<String> {
        // dialect: scalar MAX(a, b): PostgreSQL uses GREATEST(a, b)
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT MAX(COALESCE((SELECT MAX(updated_at) FROM branches WHERE session_id = s.id), ''), \
                 s.updated_at) FROM sessions s WHERE s.id = $1"
            }
            Dialect::Postgres => {
                "SELECT GREATEST(COALESCE((SELECT MAX(updated_at) FROM branches WHERE session_id = s.id), ''), \
                 s.updated_at) FROM sessions s WHERE s.id = $1"
            }
        };
        let row = query(sql)
            .bind(session)
            .fetch_one(&mut *self.read().await?)
            .await?;
        Ok(row.try_get::<Option<String>, _>(0)?.unwrap_or_default())
    }

    /// When the session last entered `status` (from its session events).
    pub async fn entered_status_at(&self, session: &str, status: &str) -> Result<Option<String>> {
        query_scalar("SELECT MAX(at) FROM session_events WHERE session_id = $1 AND to_status = $2")
            .bind(session)
            .bind(status)
            .fetch_one(&mut *self.read().await?)
            .await
    }

    /// The name of the session's newest automatic checkpoint (`auto-<UTC time>`, so the
    /// newest sorts last).
    pub async fn last_auto_checkpoint(&self, session: &str) -> Result<Option<String>> {
        // dialect: LIKE 'auto-%' is ASCII case-insensitive on SQLite: PostgreSQL needs ILIKE for the same matches
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT MAX(name) FROM refs WHERE session_id = $1 AND auto = 1 \
                 AND name LIKE 'auto-%'"
            }
            Dialect::Postgres => {
                "SELECT MAX(name) FROM refs WHERE session_id = $1 AND auto = 1 \
                 AND name ILIKE 'auto-%'"
            }
        };
        query_scalar(sql)
            .bind(session)
            .fetch_one(&mut *self.read().await?)
            .await
    }
}
