//! What the weekly digest reads: every user, the sessions a user may read that moved since a
//! time, the findings recorded in a session since then, and the user's digest session.

use crate::conn::{Dialect, query, query_scalar};
use crate::model::{NODE_COLUMNS, Node};
use crate::{Db, Result};

/// A session with activity in the digest's week.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSession {
    pub id: String,
    pub name: String,
    pub default_branch: String,
}

impl Db {
    /// Every user's id, oldest first.
    pub async fn user_ids(&self) -> Result<Vec<String>> {
        query_scalar("SELECT id FROM users ORDER BY created_at, id")
            .fetch_all(&mut *self.read().await?)
            .await
    }

    /// The sessions `user` owns or collaborates on that moved since `since` (digest sessions
    /// left out), most recent first, at most `limit`.
    pub async fn active_sessions_of(
        &self,
        user: &str,
        since: &str,
        limit: u32,
    ) -> Result<Vec<ActiveSession>> {
        // dialect: json_extract(s.metadata, '$.digest'): PostgreSQL uses s.metadata::jsonb -> 'digest'
        let digest = match self.dialect() {
            Dialect::Sqlite => "json_extract(s.metadata, '$.digest')",
            Dialect::Postgres => "(s.metadata::jsonb -> 'digest')",
        };
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.name, s.default_branch FROM sessions s \
             WHERE (s.owner_id = $1 OR EXISTS (SELECT 1 FROM collaborators c \
                    WHERE c.session_id = s.id AND c.user_id = $1)) \
               AND s.last_activity_at >= $2 \
               AND {digest} IS NULL \
             ORDER BY s.last_activity_at DESC, s.id LIMIT $3"
        )))
        .bind(user)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ActiveSession {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    default_branch: r.try_get("default_branch")?,
                })
            })
            .collect()
    }

    /// Discovery, hypothesis and tool-state nodes written in `session` since `since`, in the
    /// order written (at most `limit`).
    pub async fn findings_since(
        &self,
        session: &str,
        since: &str,
        limit: u32,
    ) -> Result<Vec<Node>> {
        let sql = format!(
            "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.created_at >= $2 \
             AND n.kind IN ('discovery', 'hypothesis', 'tool_state') ORDER BY n.rowid LIMIT $3"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(since)
            .bind(i64::from(limit))
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(Node::from_row).collect()
    }

    /// The id of `user`'s digest session, if they have one.
    pub async fn digest_session(&self, user: &str) -> Result<Option<String>> {
        // dialect: json_extract(metadata, '$.digest') = 1: PostgreSQL uses (metadata::jsonb ->> 'digest') = '1' (or jsonb -> 'digest' = '1'::jsonb)
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT id FROM sessions WHERE owner_id = $1 AND json_extract(metadata, '$.digest') = 1 \
                 ORDER BY created_at LIMIT 1"
            }
            Dialect::Postgres => {
                "SELECT id FROM sessions WHERE owner_id = $1 AND (metadata::jsonb -> 'digest') = '1'::jsonb \
                 ORDER BY created_at LIMIT 1"
            }
        };
        query_scalar(sql)
            .bind(user)
            .fetch_optional(&mut *self.read().await?)
            .await
    }
}

impl Db {
    /// Whether a session other than `session` records `needle` (a content digest) in a tool
    /// state or result: purging shared content would take it from them too.
    pub async fn content_used_elsewhere(&self, session: &str, needle: &str) -> Result<bool> {
        // dialect: instr(data, $2) > 0: PostgreSQL uses strpos(data, $2) > 0 (and SELECT 1 is int4 there; read as i64)
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT 1 FROM nodes WHERE session_id != $1 AND kind IN ('tool_state', 'tool_result') \
                 AND instr(data, $2) > 0 LIMIT 1"
            }
            Dialect::Postgres => {
                "SELECT CAST(1 AS BIGINT) FROM nodes WHERE session_id != $1 \
                 AND kind IN ('tool_state', 'tool_result') AND strpos(data, $2) > 0 LIMIT 1"
            }
        };
        Ok(query_scalar::<_, i64>(sql)
            .bind(session)
            .bind(needle)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .is_some())
    }
}
