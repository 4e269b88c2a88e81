//! What the search index reads from SQLite: the outbox, the documents it names, the sessions a
//! user may search, and which branches reach a hit.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

use crate::conn::{Dialect, Row, query, query_as, query_scalar};
use crate::model::{SESSION_COLUMNS, Session};
use crate::sql::Marks;
use crate::tree::{Pos, chain, on_path, pos};
use crate::{Db, Result, SessionFilter};

/// One outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub session_id: String,
    pub node_rowid: Option<i64>,
    /// `node`, `session` or `delete`.
    pub op: String,
}

/// A node as the index sees it.
#[derive(Debug, Clone)]
pub struct SearchNode {
    pub rowid: i64,
    pub session_id: String,
    pub id: String,
    pub kind: String,
    pub author: Option<String>,
    pub content: String,
    pub data: Option<Value>,
    pub created_at: String,
}

const NODE_SELECT: &str =
    "SELECT rowid, session_id, id, kind, author, content, data, created_at FROM nodes";

fn node_from_row(r: &Row) -> Result<SearchNode> {
    let data: Option<&str> = r.try_get(6)?;
    Ok(SearchNode {
        rowid: r.try_get(0)?,
        session_id: r.try_get(1)?,
        id: r.try_get(2)?,
        kind: r.try_get(3)?,
        author: r.try_get(4)?,
        content: r.try_get(5)?,
        data: data.map(serde_json::from_str).transpose()?,
        created_at: r.try_get(7)?,
    })
}

impl Db {
    /// Outbox entries after `after`, oldest first.
    pub async fn outbox_after(&self, after: i64, limit: u32) -> Result<Vec<OutboxEntry>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT id, session_id, node_rowid, op FROM search_outbox WHERE id > $1 \
             ORDER BY id LIMIT {}",
            limit.max(1)
        )))
        .bind(after)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OutboxEntry {
                    id: r.try_get(0)?,
                    session_id: r.try_get(1)?,
                    node_rowid: r.try_get(2)?,
                    op: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// The newest outbox id (0 when empty).
    pub async fn outbox_max(&self) -> Result<i64> {
        query_scalar("SELECT COALESCE(MAX(id), 0) FROM search_outbox")
            .fetch_one(&mut *self.read().await?)
            .await
    }

    /// Records that `server`'s index has applied the outbox up to `applied`, forgets servers
    /// silent for a day, and deletes the entries every remaining server has applied (on one
    /// SQLite server: its own). Returns the entries deleted.
    pub async fn trim_outbox(&self, server: &str, applied: i64) -> Result<u64> {
        let now = crate::now();
        let stale = crate::stamp(chrono::Utc::now() - chrono::Duration::days(1));
        let mut tx = self.write().await?;
        query(
            "INSERT INTO search_cursors (server, applied, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (server) DO UPDATE SET applied = excluded.applied, seen_at = excluded.seen_at",
        )
        .bind(server)
        .bind(applied)
        .bind(&now)
        .execute(&mut tx)
        .await?;
        query("DELETE FROM search_cursors WHERE server <> '' AND seen_at < $1")
            .bind(&stale)
            .execute(&mut tx)
            .await?;
        let floor: i64 = query_scalar(
            "SELECT COALESCE(MIN(applied), $1) FROM search_cursors WHERE server <> ''",
        )
        .bind(applied)
        .fetch_one(&mut tx)
        .await?;
        let deleted = query("DELETE FROM search_outbox WHERE id <= $1")
            .bind(floor)
            .execute(&mut tx)
            .await?;
        // The trim watermark only grows: an index behind it has missed entries.
        query(
            "INSERT INTO search_cursors (server, applied, seen_at) VALUES ('', $1, $2) \
             ON CONFLICT (server) DO UPDATE SET seen_at = excluded.seen_at, applied = \
             CASE WHEN excluded.applied > search_cursors.applied THEN excluded.applied \
             ELSE search_cursors.applied END",
        )
        .bind(floor)
        .bind(&now)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(deleted)
    }

    /// The highest outbox id trimmed so far (0 when none was): an index that has applied less
    /// than this missed entries another server's trim deleted, and must rebuild.
    pub async fn outbox_trimmed(&self) -> Result<i64> {
        query_scalar("SELECT COALESCE(MAX(applied), 0) FROM search_cursors WHERE server = ''")
            .fetch_one(&mut *self.read().await?)
            .await
    }

    /// The nodes with these `(session, rowid)` keys, as outbox entries name them (missing ones
    /// are skipped). The sessions are in the statement, so it reads only their rows (their
    /// shards, when distributed).
    pub async fn search_nodes(&self, keys: &[(&str, i64)]) -> Result<Vec<SearchNode>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: HashSet<(&str, i64)> = keys.iter().copied().collect();
        let sessions: BTreeSet<&str> = keys.iter().map(|(s, _)| *s).collect();
        let rowids: BTreeSet<i64> = keys.iter().map(|(_, r)| *r).collect();
        let list = rowids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let marks = Marks::new().list(sessions.len());
        let mut q = query(sqlx::AssertSqlSafe(format!(
            "{NODE_SELECT} WHERE session_id IN ({marks}) AND rowid IN ({list})"
        )));
        for s in &sessions {
            q = q.bind(*s);
        }
        let rows = q.fetch_all(&mut *self.read().await?).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let n = node_from_row(r)?;
            if wanted.contains(&(n.session_id.as_str(), n.rowid)) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// A session's nodes in rowid order after `after` (re-indexing one session).
    pub async fn session_nodes_after(
        &self,
        session: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<SearchNode>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "{NODE_SELECT} WHERE session_id = $1 AND rowid > $2 ORDER BY rowid LIMIT {}",
            limit.max(1)
        )))
        .bind(session)
        .bind(after)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    /// The sessions `user` collaborates on with read access (not the ones they own).
    pub async fn shared_with(&self, user: &str) -> Result<Vec<String>> {
        query_scalar("SELECT session_id FROM collaborators WHERE user_id = $1 AND (perms & 1) = 1")
            .bind(user)
            .fetch_all(&mut *self.read().await?)
            .await
    }

    /// Names of these sessions (one query).
    pub async fn session_names(&self, ids: &[String]) -> Result<HashMap<String, String>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let marks = Marks::new().list(ids.len());
        let mut q = query_as::<_, (String, String)>(sqlx::AssertSqlSafe(format!(
            "SELECT id, name FROM sessions WHERE id IN ({marks})"
        )));
        for id in ids {
            q = q.bind(id);
        }
        Ok(q.fetch_all(&mut *self.read().await?)
            .await?
            .into_iter()
            .collect())
    }

    /// Nodes in rowid order after `after` (for rebuilding the index).
    pub async fn search_nodes_after(&self, after: i64, limit: u32) -> Result<Vec<SearchNode>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "{NODE_SELECT} WHERE rowid > $1 ORDER BY rowid LIMIT {}",
            limit.max(1)
        )))
        .bind(after)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    /// How many nodes there are (for progress reports).
    pub async fn node_count(&self) -> Result<i64> {
        query_scalar("SELECT COUNT(*) FROM nodes")
            .fetch_one(&mut *self.read().await?)
            .await
    }

    /// Every session (for rebuilding the index).
    pub async fn all_sessions(&self) -> Result<Vec<Session>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE import_until IS NULL ORDER BY id"
        )))
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(Session::from_row).collect()
    }

    /// The sessions `user` may read that pass the filter's session-level fields (owner, status,
    /// project, type, tag), as (id, name). No limit: the search restricts its hits to them.
    pub async fn searchable_sessions(
        &self,
        user: &str,
        f: &SessionFilter,
    ) -> Result<Vec<(String, String)>> {
        // dialect: json_each(sessions.tags): PostgreSQL uses jsonb_array_elements_text(sessions.tags::jsonb)
        let tags = match self.dialect() {
            Dialect::Sqlite => "json_each(sessions.tags)",
            Dialect::Postgres => "jsonb_array_elements_text(sessions.tags::jsonb) AS t(value)",
        };
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT id, name FROM sessions WHERE import_until IS NULL AND (owner_id = $1 OR EXISTS (SELECT 1 FROM \
               collaborators c WHERE c.session_id = sessions.id AND c.user_id = $1 \
               AND (c.perms & 1) = 1)) \
             AND ($2 IS NULL OR owner_id = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR project = $4) AND ($5 IS NULL OR session_type = $5) \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM {tags} WHERE value = $6))"
        )))
        .bind(user)
        .bind(&f.owner)
        .bind(f.status.map(|s| s.as_str()))
        .bind(&f.project)
        .bind(f.session_type.map(|t| t.as_str()))
        .bind(&f.tag)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// For each node, the branches whose path reaches it (open and merged branches).
    pub async fn branches_reaching(
        &self,
        session: &str,
        nodes: &[String],
    ) -> Result<HashMap<String, Vec<String>>> {
        let mut conn = self.read().await?;
        let names: Vec<String> = query_scalar(
            "SELECT name FROM branches WHERE session_id = $1 AND status <> 'discarded' ORDER BY name",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?;
        let mut chains = Vec::with_capacity(names.len());
        for name in &names {
            // The head's position only: not the branch's materialised state.
            let head: Option<(i64, i64)> = query_as(
                "SELECT n.segment_id, n.seq FROM branches b JOIN nodes n \
                 ON n.session_id = b.session_id AND n.id = b.head_id \
                 WHERE b.session_id = $1 AND b.name = $2",
            )
            .bind(session)
            .bind(name)
            .fetch_optional(&mut conn)
            .await?;
            if let Some((segment, seq)) = head {
                chains.push((name, chain(&mut conn, session, segment, seq).await?));
            }
        }
        let mut out = HashMap::new();
        for node in nodes {
            let p: Pos = match pos(&mut conn, session, node).await {
                Ok(p) => p,
                Err(crate::Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let reach: Vec<String> = chains
                .iter()
                .filter(|(_, c)| on_path(c, &p))
                .map(|(n, _)| (*n).clone())
                .collect();
            out.insert(node.clone(), reach);
        }
        Ok(out)
    }
}
