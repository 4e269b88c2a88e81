//! What a live watcher of a session reads: a cheap change marker (the session's last activity,
//! kept by triggers), the branch heads and lifecycle, and the nodes added after a point.

use crate::conn::{query, query_scalar};
use crate::model::{NODE_COLUMNS, Node};
use crate::{Db, Result};

/// A session as a watcher sees it at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveSnapshot {
    pub last_activity_at: String,
    pub status: String,
    pub name: String,
    /// A node row no older than this session's newest at that moment: nodes of this session
    /// written after it are what a watcher has not seen. (SQLite: the whole store's newest row;
    /// PostgreSQL: the session's own.)
    pub max_rowid: i64,
    /// Every branch: name, head, status.
    pub branches: Vec<LiveBranch>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LiveBranch {
    pub name: String,
    pub head: String,
    pub status: String,
}

impl Db {
    /// The session's change marker: its last activity (one primary-key read); `None` when the
    /// session is gone.
    pub async fn live_marker(&self, session: &str) -> Result<Option<String>> {
        query_scalar("SELECT last_activity_at FROM sessions WHERE id = $1")
            .bind(session)
            .fetch_optional(&mut *self.read().await?)
            .await
    }

    /// The session's lifecycle, branch heads and newest node.
    pub async fn live_snapshot(&self, session: &str) -> Result<Option<LiveSnapshot>> {
        let mut conn = self.read().await?;
        // The store's newest node row, not the session's: one step down the rowid key on both
        // databases. A safe frontier because node rows commit in rowid order: on SQLite one
        // writer, on PostgreSQL every write transaction takes the store's advisory write lock
        // (pool.rs, WRITE_LOCK) before it draws a rowid. Per-session write locks would break
        // that order and need the session's own newest row (and an index to find it).
        let Some(row) = query(
            "SELECT last_activity_at, status, name, \
                    (SELECT COALESCE(MAX(rowid), 0) FROM nodes) AS max_rowid \
             FROM sessions WHERE id = $1",
        )
        .bind(session)
        .fetch_optional(&mut conn)
        .await?
        else {
            return Ok(None);
        };
        let branches =
            query("SELECT name, head_id, status FROM branches WHERE session_id = $1 ORDER BY name")
                .bind(session)
                .fetch_all(&mut conn)
                .await?
                .iter()
                .map(|r| {
                    Ok(LiveBranch {
                        name: r.try_get("name")?,
                        head: r.try_get("head_id")?,
                        status: r.try_get("status")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
        Ok(Some(LiveSnapshot {
            last_activity_at: row.try_get("last_activity_at")?,
            status: row.try_get("status")?,
            name: row.try_get("name")?,
            max_rowid: row.try_get("max_rowid")?,
            branches,
        }))
    }

    /// Up to `limit` nodes of the session written after node row `rowid`, oldest first, each
    /// with its row. A range scan of the rows written since then (the table's own order), so it
    /// costs what was written meanwhile, not the session's length.
    pub async fn nodes_after(
        &self,
        session: &str,
        rowid: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Node)>> {
        let sql = format!(
            "SELECT n.rowid AS rid, {NODE_COLUMNS} FROM nodes n \
             WHERE n.rowid > $1 AND n.session_id = $2 ORDER BY n.rowid LIMIT $3"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(rowid)
            .bind(session)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("rid")?, Node::from_row(r)?)))
            .collect()
    }
}

/// Someone watching a session now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Present {
    pub user: String,
    /// When they started watching (the earliest of their open streams).
    pub since: String,
}

impl Db {
    /// Records (or refreshes) an open live stream of `user` on `session`.
    pub async fn touch_presence(
        &self,
        session: &str,
        watcher: &str,
        user: &str,
        client: Option<&str>,
    ) -> Result<()> {
        let at = crate::now();
        let mut tx = self.write().await?;
        query(
            "INSERT INTO presence (session_id, watcher, user_id, client, since, seen_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (session_id, watcher) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(session)
        .bind(watcher)
        .bind(user)
        .bind(client)
        .bind(&at)
        .execute(&mut tx)
        .await?;
        // Streams of a server that stopped without saying so: gone after a minute.
        let stale = crate::stamp(chrono::Utc::now() - chrono::Duration::seconds(60));
        query("DELETE FROM presence WHERE session_id = $1 AND seen_at < $2")
            .bind(session)
            .bind(stale)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a closed live stream.
    pub async fn leave_presence(&self, session: &str, watcher: &str) -> Result<()> {
        let mut tx = self.write().await?;
        query("DELETE FROM presence WHERE session_id = $1 AND watcher = $2")
            .bind(session)
            .bind(watcher)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The users with a stream on `session` refreshed since `since`, by name.
    pub async fn present(&self, session: &str, since: &str) -> Result<Vec<Present>> {
        let rows = query(
            "SELECT u.name AS user, min(p.since) AS since FROM presence p \
             JOIN users u ON u.id = p.user_id \
             WHERE p.session_id = $1 AND p.seen_at >= $2 GROUP BY u.name ORDER BY u.name",
        )
        .bind(session)
        .bind(since)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Present {
                    user: r.try_get("user")?,
                    since: r.try_get("since")?,
                })
            })
            .collect()
    }
}
