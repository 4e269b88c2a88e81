//! Collaborators: who else may do what in a session, and each user's contributions.

use kiln_types::Permissions;
use serde::Serialize;

use crate::conn::{Conn, Dialect, Row, query};
use crate::model::{SESSION_COLUMNS, Session};
use crate::tree::held;
use crate::{Db, Error, Result, now};

/// A collaborator on a session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collaborator {
    pub user_id: String,
    pub name: String,
    pub permissions: Permissions,
    pub added_by: Option<String>,
    pub added_at: String,
    pub updated_at: String,
}

/// How a user came to a session someone else owns: added as a collaborator, by whom, when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Membership {
    pub permissions: Permissions,
    /// The name of who added them (none if that user is gone).
    pub added_by: Option<String>,
    pub added_at: String,
}

/// What one user contributed to a session, across all its branches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contribution {
    pub user_id: String,
    pub name: String,
    /// User messages (questions to the agent and direct appends).
    pub queries: i64,
    /// Every conversation node they wrote (user messages, notes).
    pub messages: i64,
    pub discoveries: i64,
    pub materials: i64,
}

impl Db {
    /// Returns a session and the permissions `user` holds on it (empty for a stranger).
    pub async fn session_access(
        &self,
        session: &str,
        user: &str,
    ) -> Result<(Session, Permissions)> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, (SELECT c.perms FROM collaborators c \
             WHERE c.session_id = sessions.id AND c.user_id = $1) AS collab \
             FROM sessions WHERE id = $2 AND import_until IS NULL"
        );
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(session)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("session {session}")))?;
        let s = Session::from_row(&row)?;
        let perms = held(&s.owner_id, row.try_get("collab")?, user);
        Ok((s, perms))
    }

    /// `user`'s collaborator rows on `sessions` (sessions they only own are absent).
    pub async fn memberships(
        &self,
        user: &str,
        sessions: &[String],
    ) -> Result<std::collections::HashMap<String, Membership>> {
        if sessions.is_empty() {
            return Ok(Default::default());
        }
        // dialect: json_each($2) over a JSON array: PostgreSQL uses jsonb_array_elements_text($2::jsonb)
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT c.session_id, c.perms, u.name, c.added_at FROM collaborators c \
                 LEFT JOIN users u ON u.id = c.added_by \
                 WHERE c.user_id = $1 AND c.session_id IN (SELECT value FROM json_each($2))"
            }
            Dialect::Postgres => {
                "SELECT c.session_id, c.perms, u.name, c.added_at FROM collaborators c \
                 LEFT JOIN users u ON u.id = c.added_by \
                 WHERE c.user_id = $1 AND c.session_id IN \
                   (SELECT jsonb_array_elements_text($2::jsonb))"
            }
        };
        let rows = query(sql)
            .bind(user)
            .bind(serde_json::to_string(sessions)?)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    Membership {
                        permissions: Permissions::from_bits(r.try_get(1)?),
                        added_by: r.try_get(2)?,
                        added_at: r.try_get(3)?,
                    },
                ))
            })
            .collect()
    }

    /// Adds a collaborator or changes their permissions.
    pub async fn set_collaborator(
        &self,
        session: &str,
        user: &str,
        perms: Permissions,
        by: &str,
    ) -> Result<Collaborator> {
        let mut tx = self.write().await?;
        let at = now();
        query(
            "INSERT INTO collaborators (session_id, user_id, perms, added_by, added_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (session_id, user_id) \
             DO UPDATE SET perms = excluded.perms, updated_at = excluded.updated_at",
        )
        .bind(session)
        .bind(user)
        .bind(perms.bits())
        .bind(by)
        .bind(&at)
        .bind(&at)
        .execute(&mut tx)
        .await?;
        crate::audit::append(
            &mut tx,
            session,
            by,
            "collaborator_set",
            &serde_json::json!({"user": user, "permissions": perms}),
        )
        .await?;
        let c = collaborator_in(&mut tx, session, user).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Removes a collaborator; `false` if they were not one.
    pub async fn remove_collaborator(&self, session: &str, user: &str, by: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let gone = query("DELETE FROM collaborators WHERE session_id = $1 AND user_id = $2")
            .bind(session)
            .bind(user)
            .execute(&mut tx)
            .await?
            > 0;
        if gone {
            crate::audit::append(
                &mut tx,
                session,
                by,
                "collaborator_removed",
                &serde_json::json!({"user": user}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// Returns one collaborator.
    pub async fn collaborator(&self, session: &str, user: &str) -> Result<Option<Collaborator>> {
        let mut conn = self.read().await?;
        match collaborator_in(&mut conn, session, user).await {
            Ok(c) => Ok(Some(c)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Lists a session's collaborators by name.
    pub async fn collaborators(&self, session: &str) -> Result<Vec<Collaborator>> {
        let rows = query(COLLABORATOR_SELECT_ALL)
            .bind(session)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Counts each user's contributions to a session (every node on every branch).
    pub async fn contributions(&self, session: &str) -> Result<Vec<Contribution>> {
        let rows = query(
            "SELECT n.author, u.name, \
               COUNT(*) FILTER (WHERE n.kind = 'user'), \
               COUNT(*) FILTER (WHERE n.kind IN ('user', 'note')), \
               COUNT(*) FILTER (WHERE n.kind = 'discovery'), \
               COUNT(*) FILTER (WHERE n.kind = 'material') \
             FROM nodes n JOIN users u ON u.id = n.author \
             WHERE n.session_id = $1 GROUP BY n.author, u.name ORDER BY u.name",
        )
        .bind(session)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Contribution {
                    user_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    queries: r.try_get(2)?,
                    messages: r.try_get(3)?,
                    discoveries: r.try_get(4)?,
                    materials: r.try_get(5)?,
                })
            })
            .collect()
    }
}

const COLLABORATOR_SELECT_ALL: &str = "SELECT c.user_id, u.name, c.perms, c.added_by, c.added_at, c.updated_at \
     FROM collaborators c JOIN users u ON u.id = c.user_id \
     WHERE c.session_id = $1 ORDER BY u.name";

async fn collaborator_in(conn: &mut Conn, session: &str, user: &str) -> Result<Collaborator> {
    let row = query(
        "SELECT c.user_id, u.name, c.perms, c.added_by, c.added_at, c.updated_at \
         FROM collaborators c JOIN users u ON u.id = c.user_id \
         WHERE c.session_id = $1 AND c.user_id = $2",
    )
    .bind(session)
    .bind(user)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("collaborator {user}")))?;
    from_row(&row)
}

fn from_row(r: &Row) -> Result<Collaborator> {
    Ok(Collaborator {
        user_id: r.try_get(0)?,
        name: r.try_get(1)?,
        permissions: Permissions::from_bits(r.try_get(2)?),
        added_by: r.try_get(3)?,
        added_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}
