//! Sessions: create (with root node and default branch), read, list, update, delete, and
//! lifecycle transitions recorded as session events.

use kiln_types::session::SessionConfig;
use kiln_types::{NodeId, NodeKind, SessionId, SessionStatus, SessionType};
use serde::Serialize;
use serde_json::{Value, json};

use crate::conn::{Conn, Dialect, query, query_scalar};
use crate::model::{Page, SESSION_COLUMNS, Session, SessionEvent};
use crate::tree::{NodeInsert, insert_node, reflog};
use crate::{Db, Error, Result, audit, now};

/// A session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub owner_id: String,
    pub name: String,
    pub description: String,
    pub session_type: SessionType,
    pub project: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Value,
    pub config: SessionConfig,
    pub template: Option<String>,
    /// Its folder in the project (`/` for none).
    pub folder: String,
}

/// Filters for listing sessions; `None` matches anything.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    pub visible_to: Option<String>,
    pub owner: Option<String>,
    pub status: Option<SessionStatus>,
    pub project: Option<String>,
    pub session_type: Option<SessionType>,
    pub tag: Option<String>,
    pub cursor: Option<String>,
    pub limit: u32,
    pub sort: SessionSort,
}

/// The order a session list comes in, newest first either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionSort {
    /// By creation (the id is a UUIDv7, so it orders by creation time).
    #[default]
    Created,
    /// By last activity (`last_activity_at`).
    Activity,
}

/// Fields to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<SessionConfig>,
}

pub(crate) async fn exists(conn: &mut Conn, session: &str) -> Result<()> {
    let found: bool = query_scalar(
        "SELECT EXISTS(SELECT 1 FROM sessions WHERE id = $1 AND import_until IS NULL)",
    )
    .bind(session)
    .fetch_one(&mut *conn)
    .await?;
    if found {
        Ok(())
    } else {
        Err(Error::not_found(format!("session {session}")))
    }
}

pub(crate) async fn get_in(conn: &mut Conn, session: &str) -> Result<Session> {
    let sql =
        format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND import_until IS NULL");
    let row = query(sqlx::AssertSqlSafe(sql))
        .bind(session)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| Error::not_found(format!("session {session}")))?;
    Session::from_row(&row)
}

/// Records a lifecycle transition (session event, status, audit) inside a transaction.
pub(crate) async fn record_transition(
    conn: &mut Conn,
    session: &str,
    from: SessionStatus,
    to: SessionStatus,
    actor: &str,
    reason: &str,
    at: &str,
) -> Result<()> {
    query("UPDATE sessions SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(to.as_str())
        .bind(at)
        .bind(session)
        .execute(&mut *conn)
        .await?;
    query(
        "INSERT INTO session_events (session_id, from_status, to_status, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session)
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(actor)
    .bind(reason)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    audit::append(
        conn,
        session,
        actor,
        "lifecycle",
        &json!({"from": from, "to": to, "reason": reason}),
    )
    .await
}

/// Creates a session with its root node and default branch inside the caller's transaction;
/// returns its id.
pub(crate) async fn create_in(tx: &mut Conn, new: &NewSession, actor: &str) -> Result<String> {
    let id = SessionId::new().to_string();
    let root = NodeId::new().to_string();
    let now = now();
    query(
        "INSERT INTO sessions (id, owner_id, name, description, session_type, status, project, \
             tags, metadata, config, template, default_branch, version, created_at, updated_at, \
             folder) VALUES ($1, $2, $3, $4, $5, 'created', $6, $7, $8, $9, $10, 'main', 1, $11, $12, $13)",
    )
    .bind(&id)
    .bind(&new.owner_id)
    .bind(&new.name)
    .bind(&new.description)
    .bind(new.session_type.as_str())
    .bind(&new.project)
    .bind(serde_json::to_string(&new.tags)?)
    .bind(new.metadata.to_string())
    .bind(serde_json::to_string(&new.config)?)
    .bind(&new.template)
    .bind(&now)
    .bind(&now)
    .bind(&new.folder)
    .execute(&mut *tx)
    .await?;
    let segment: i64 = query_scalar("INSERT INTO segments (session_id) VALUES ($1) RETURNING id")
        .bind(&id)
        .fetch_one(&mut *tx)
        .await?;
    insert_node(
        tx,
        &NodeInsert {
            session: &id,
            id: root.clone(),
            segment,
            seq: 0,
            parent: None,
            merge_parent: None,
            kind: NodeKind::Root,
            author: Some(actor),
            content: "",
            data: None,
            tokens: Some(0),
            total_tokens: 0,
            created_at: &now,
            parent_hash: None,
            merge_parent_hash: None,
        },
    )
    .await?;
    query(
        "INSERT INTO branches (session_id, name, head_id, base_id, status, version, state, \
             state_pending, created_by, created_at, updated_at) \
             VALUES ($1, 'main', $2, $3, 'open', 1, '{}', 0, $4, $5, $6)",
    )
    .bind(&id)
    .bind(&root)
    .bind(&root)
    .bind(actor)
    .bind(&now)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    reflog(tx, &id, "main", None, &root, actor, "create", &now).await?;
    query(
        "INSERT INTO session_events (session_id, from_status, to_status, actor, reason, at) \
             VALUES ($1, NULL, 'created', $2, 'created', $3)",
    )
    .bind(&id)
    .bind(actor)
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    audit::append(
        tx,
        &id,
        actor,
        "session.create",
        &json!({"name": new.name, "type": new.session_type, "template": new.template}),
    )
    .await?;
    Ok(id)
}

impl Db {
    /// Creates a session with its root node and default branch `main`.
    pub async fn create_session(&self, new: NewSession, actor: &str) -> Result<Session> {
        let mut tx = self.write().await?;
        let id = create_in(&mut tx, &new, actor).await?;
        let s = get_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(s)
    }

    pub async fn session(&self, id: &str) -> Result<Session> {
        let mut conn = self.read().await?;
        get_in(&mut conn, id).await
    }

    /// Lists sessions newest first (by creation or by last activity) with filters and a cursor.
    /// The activity cursor is `<last_activity_at>|<id>`, so sessions that move while a client
    /// pages are neither skipped nor repeated within the page they were on.
    pub async fn sessions(&self, f: &SessionFilter) -> Result<Page<Session>> {
        let limit = i64::from(f.limit.clamp(1, 500));
        let (cursor_at, cursor_id) = match (f.sort, f.cursor.as_deref()) {
            (SessionSort::Activity, Some(c)) => match c.split_once('|') {
                Some((at, id)) => (Some(at), Some(id)),
                None => return Err(Error::Invalid("bad cursor for the activity order".into())),
            },
            (_, c) => (None, c),
        };
        let (after, order) = match f.sort {
            SessionSort::Created => ("($7 IS NULL OR id < $7)", "id DESC"),
            SessionSort::Activity => (
                "($8 IS NULL OR last_activity_at < $8 OR (last_activity_at = $8 AND id < $7))",
                "last_activity_at DESC, id DESC",
            ),
        };
        // dialect: json_each(sessions.tags): PostgreSQL uses jsonb_array_elements_text(sessions.tags::jsonb)
        let tags = match self.dialect() {
            Dialect::Sqlite => "json_each(sessions.tags)",
            Dialect::Postgres => "jsonb_array_elements_text(sessions.tags::jsonb) AS t(value)",
        };
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE import_until IS NULL AND ($1 IS NULL OR owner_id = $1 \
               OR EXISTS (SELECT 1 FROM collaborators c \
                          WHERE c.session_id = sessions.id AND c.user_id = $1)) \
             AND ($2 IS NULL OR owner_id = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR project = $4) AND ($5 IS NULL OR session_type = $5) \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM {tags} WHERE value = $6)) \
             AND {after} ORDER BY {order} LIMIT {}",
            limit + 1
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(&f.visible_to)
            .bind(&f.owner)
            .bind(f.status.map(|s| s.as_str()))
            .bind(&f.project)
            .bind(f.session_type.map(|t| t.as_str()))
            .bind(&f.tag)
            .bind(cursor_id)
            .bind(cursor_at)
            .fetch_all(&mut *self.read().await?)
            .await?;
        let mut items = rows
            .iter()
            .map(Session::from_row)
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|s| match f.sort {
                SessionSort::Created => s.id.clone(),
                SessionSort::Activity => format!("{}|{}", s.last_activity_at, s.id),
            })
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Applies a patch; with `if_version`, refuses a stale version listing each field.
    pub async fn update_session(
        &self,
        id: &str,
        patch: &SessionPatch,
        if_version: Option<i64>,
        actor: &str,
    ) -> Result<Session> {
        let mut tx = self.write().await?;
        let mut s = get_in(&mut tx, id).await?;
        if let Some(v) = if_version
            && v != s.version
        {
            let stored = serde_json::to_value(&s)?;
            let yours = serde_json::to_value(patch)?;
            let fields = yours
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| json!({"field": k, "yours": v, "stored": stored.get(k)}))
                .collect();
            return Err(Error::VersionConflict {
                yours: v,
                stored: s.version,
                fields,
            });
        }
        if let Some(n) = &patch.name {
            s.name = n.clone();
        }
        if let Some(d) = &patch.description {
            s.description = d.clone();
        }
        if let Some(p) = &patch.project {
            s.project = p.clone();
        }
        if let Some(t) = &patch.tags {
            s.tags = t.clone();
        }
        if let Some(m) = &patch.metadata {
            s.metadata = m.clone();
        }
        if let Some(c) = &patch.config {
            s.config = c.clone();
        }
        let now = now();
        query(
            "UPDATE sessions SET name = $1, description = $2, project = $3, tags = $4, metadata = $5, \
             config = $6, version = version + 1, updated_at = $7 WHERE id = $8 AND version = $9",
        )
        .bind(&s.name)
        .bind(&s.description)
        .bind(&s.project)
        .bind(serde_json::to_string(&s.tags)?)
        .bind(s.metadata.to_string())
        .bind(serde_json::to_string(&s.config)?)
        .bind(&now)
        .bind(id)
        .bind(s.version)
        .execute(&mut tx)
        .await?;
        audit::append(
            &mut tx,
            id,
            actor,
            "session.update",
            &serde_json::to_value(patch)?,
        )
        .await?;
        let s = get_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Deletes a session and everything in it.
    pub async fn delete_session(&self, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        exists(&mut tx, id).await?;
        crate::export::delete_rows(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a session to `to` if the lifecycle allows it.
    pub async fn set_status(
        &self,
        id: &str,
        to: SessionStatus,
        actor: &str,
        reason: &str,
    ) -> Result<Session> {
        let mut tx = self.write().await?;
        let s = get_in(&mut tx, id).await?;
        if !s.status.can_move_to(to) {
            return Err(Error::InvalidTransition {
                from: s.status,
                to,
                allowed: s.status.allowed_targets().to_vec(),
            });
        }
        record_transition(&mut tx, id, s.status, to, actor, reason, &now()).await?;
        let s = get_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Returns a session's lifecycle transitions, oldest first.
    pub async fn session_events(&self, id: &str) -> Result<Vec<SessionEvent>> {
        let mut conn = self.read().await?;
        exists(&mut conn, id).await?;
        let rows = query(
            "SELECT id, from_status, to_status, actor, reason, at FROM session_events \
             WHERE session_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut conn)
        .await?;
        rows.iter().map(SessionEvent::from_row).collect()
    }

    /// Counts nodes of a session by kind and author, and tool calls by tool.
    pub async fn node_counts(&self, id: &str) -> Result<Vec<(String, Option<String>, i64)>> {
        let rows = query(
            "SELECT kind, author, COUNT(*) FROM nodes WHERE session_id = $1 GROUP BY kind, author",
        )
        .bind(id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// The statistics' view of a session's nodes added after the node rowid `after`: one row per
    /// (kind, author) with its count, the newest rowid and the `data` of its material, discovery
    /// and tool-call nodes, in one pass. With `after > 0` it walks the rowid range (the nodes
    /// added since, in any session) instead of the session's whole index: a warm tally costs
    /// what was added, not the history. Node rowids only grow (rows are never renumbered:
    /// Kiln never VACUUMs in place), so a tally folded up to a rowid stays exact.
    pub async fn node_tally(&self, id: &str, after: i64) -> Result<Vec<TallyRow>> {
        // dialect: NOT INDEXED hint and json_group_array(json(data)) FILTER: PostgreSQL drops the hint and uses json_agg(data::json) FILTER
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                let hint = if after > 0 { "NOT INDEXED" } else { "" };
                format!(
                    "SELECT kind, author, COUNT(*), MAX(rowid), \
                       json_group_array(json(data)) FILTER (WHERE data IS NOT NULL \
                         AND kind IN ('material', 'discovery', 'tool_call')) \
                     FROM nodes {hint} WHERE rowid > $1 AND session_id = $2 GROUP BY kind, author"
                )
            }
            Dialect::Postgres => "SELECT kind, author, COUNT(*), MAX(rowid), \
                 (json_agg(data::json) FILTER (WHERE data IS NOT NULL \
                   AND kind IN ('material', 'discovery', 'tool_call')))::text \
                 FROM nodes WHERE rowid > $1 AND session_id = $2 GROUP BY kind, author"
                .to_string(),
        };
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(after)
            .bind(id)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| {
                let data: Option<String> = r.try_get(4)?;
                Ok(TallyRow {
                    kind: r.try_get(0)?,
                    author: r.try_get(1)?,
                    count: r.try_get(2)?,
                    max_rowid: r.try_get(3)?,
                    data: match data {
                        Some(d) => serde_json::from_str(&d)?,
                        None => Vec::new(),
                    },
                })
            })
            .collect()
    }

    /// Counts users; zero means a fresh install.
    pub async fn count_sessions(&self) -> Result<i64> {
        query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&mut *self.read().await?)
            .await
    }
}

/// One (kind, author) group of [`Db::node_tally`].
#[derive(Debug, Clone, PartialEq)]
pub struct TallyRow {
    pub kind: String,
    pub author: Option<String>,
    pub count: i64,
    pub max_rowid: i64,
    /// The `data` of the group's material, discovery and tool-call nodes.
    pub data: Vec<Value>,
}
