//! Per-user token buckets in the store, so the servers sharing a PostgreSQL database share each
//! user's budget of expensive calls: one upsert per charge refills the bucket by the
//! database's clock (the servers' clocks never meet) and takes the cost if it is there.

use std::time::Duration;

use crate::conn::{Dialect, query};
use crate::{Db, Result};

/// The statement's shared part: refill by the time since the last charge (never backwards),
/// capped at the burst, and take the cost when the bucket holds it.
/// `$1` user, `$2` cost, `$3` burst, `$4` tokens per second; `{now}`, `{min}`, `{max}` per
/// dialect.
const CHARGE: &str = "INSERT INTO rate_buckets AS b (user_id, tokens, at_secs, granted) \
     VALUES ($1, $3 - $2, {now}, 1) \
     ON CONFLICT (user_id) DO UPDATE SET \
     granted = CASE WHEN {min}($3, b.tokens + {max}(0, excluded.at_secs - b.at_secs) * $4) >= $2 \
         THEN 1 ELSE 0 END, \
     tokens = {min}($3, b.tokens + {max}(0, excluded.at_secs - b.at_secs) * $4) \
         - CASE WHEN {min}($3, b.tokens + {max}(0, excluded.at_secs - b.at_secs) * $4) >= $2 \
         THEN $2 ELSE 0 END, \
     at_secs = {max}(b.at_secs, excluded.at_secs) \
     RETURNING granted, tokens";

impl Db {
    /// Takes `cost` (at most `burst`) from `user`'s bucket, refilled at `per_second` up to
    /// `burst`: `None` when granted, else how long until the bucket holds the cost. On
    /// PostgreSQL one autocommit statement outside the write lock; on SQLite (one server, which
    /// keeps its buckets in memory instead) an ordinary write.
    pub async fn take_rate_tokens(
        &self,
        user: &str,
        cost: f64,
        per_second: f64,
        burst: f64,
    ) -> Result<Option<Duration>> {
        let cost = cost.min(burst).max(0.0);
        // dialect: the clock (EXTRACT(EPOCH …) / julianday) and scalar LEAST/GREATEST (MIN/MAX)
        let sql = match self.dialect() {
            Dialect::Postgres => CHARGE
                .replace(
                    "{now}",
                    "EXTRACT(EPOCH FROM clock_timestamp())::double precision",
                )
                .replace("{min}", "LEAST")
                .replace("{max}", "GREATEST"),
            Dialect::Sqlite => CHARGE
                .replace("{now}", "(julianday('now') - 2440587.5) * 86400.0")
                .replace("{min}", "MIN")
                .replace("{max}", "MAX"),
        };
        let q = query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(cost)
            .bind(burst)
            .bind(per_second);
        let row = if self.is_postgres() {
            q.fetch_one(&mut *self.read().await?).await?
        } else {
            let mut tx = self.write().await?;
            let row = q.fetch_one(&mut tx).await?;
            tx.commit().await?;
            row
        };
        let granted = row.flag(0)?;
        let tokens: f64 = row.try_get(1)?;
        Ok(if granted {
            None
        } else {
            let secs = ((cost - tokens) / per_second.max(f64::MIN_POSITIVE)).max(0.0);
            Some(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
        })
    }
}
