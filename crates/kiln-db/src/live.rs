//! What a live watcher of a session reads: a cheap change marker (the session's last activity,
//! kept by triggers), the branch heads and lifecycle, and the nodes added after a point.

use sqlx::Row;

use crate::model::{NODE_COLUMNS, Node};
use crate::{Db, Result};

/// A session as a watcher sees it at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveSnapshot {
    pub last_activity_at: String,
    pub status: String,
    pub name: String,
    /// The newest node row of the whole store at that moment: nodes of this session written
    /// after it are what a watcher has not seen.
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
        Ok(
            sqlx::query_scalar("SELECT last_activity_at FROM sessions WHERE id = ?")
                .bind(session)
                .fetch_optional(&mut *self.read().await?)
                .await?,
        )
    }

    /// The session's lifecycle, branch heads and newest node.
    pub async fn live_snapshot(&self, session: &str) -> Result<Option<LiveSnapshot>> {
        let mut conn = self.read().await?;
        let Some(row) = sqlx::query(
            "SELECT last_activity_at, status, name, \
             (SELECT COALESCE(MAX(rowid), 0) FROM nodes) AS max_rowid \
             FROM sessions WHERE id = ?",
        )
        .bind(session)
        .fetch_optional(&mut *conn)
        .await?
        else {
            return Ok(None);
        };
        let branches = sqlx::query(
            "SELECT name, head_id, status FROM branches WHERE session_id = ? ORDER BY name",
        )
        .bind(session)
        .fetch_all(&mut *conn)
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
             WHERE n.rowid > ? AND n.session_id = ? ORDER BY n.rowid LIMIT ?"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
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
