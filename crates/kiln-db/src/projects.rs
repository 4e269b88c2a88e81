//! Projects and folders: a session found (or made) by owner, project and name, the projects a
//! user sees, the sessions under a folder, and write protection.

use serde::Serialize;
use serde_json::json;

use crate::conn::{Dialect, query, query_scalar};
use crate::model::{SESSION_COLUMNS, Session};
use crate::sessions::{NewSession, create_in, get_in};
use crate::{Db, Result, audit, now};

/// The most sessions one folder listing returns.
pub const MAX_FOLDER_SESSIONS: i64 = 1000;

/// What [`Db::find_or_create`] did.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// The session: the oldest of that name when several exist.
    pub session: Session,
    /// Whether it was made now.
    pub created: bool,
    /// Other sessions of the same owner, project and name (made before names were unique),
    /// oldest first; they keep working.
    pub duplicates: Vec<String>,
}

/// A project a user sees, with how many of its sessions they see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    pub name: String,
    pub sessions: i64,
    pub last_activity_at: String,
}

/// The visibility condition of the session lists (owner or collaborator), user bound as `$1`.
const VISIBLE: &str = "import_until IS NULL AND (owner_id = $1 OR EXISTS (SELECT 1 FROM \
    collaborators c WHERE c.session_id = sessions.id AND c.user_id = $1))";

impl Db {
    /// Returns the owner's session of that project and name, creating it when there is none,
    /// in one writer transaction (so two concurrent calls make one session).
    pub async fn find_or_create(&self, new: NewSession, actor: &str) -> Result<Found> {
        let mut tx = self.write().await?;
        let ids: Vec<String> = query_scalar(
            "SELECT id FROM sessions WHERE owner_id = $1 AND project = $2 AND name = $3 \
             AND import_until IS NULL ORDER BY id",
        )
        .bind(&new.owner_id)
        .bind(&new.project)
        .bind(&new.name)
        .fetch_all(&mut tx)
        .await?;
        let (id, created) = match ids.first() {
            Some(id) => (id.clone(), false),
            None => (create_in(&mut tx, &new, actor).await?, true),
        };
        let session = get_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(Found {
            session,
            created,
            duplicates: ids.into_iter().skip(1).collect(),
        })
    }

    /// The projects whose sessions `user` sees, by name.
    pub async fn projects(&self, user: &str) -> Result<Vec<Project>> {
        let sql = format!(
            "SELECT project, COUNT(*), MAX(last_activity_at) FROM sessions \
             WHERE project IS NOT NULL AND {VISIBLE} GROUP BY project ORDER BY project LIMIT 1000"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Project {
                    name: r.try_get(0)?,
                    sessions: r.try_get(1)?,
                    last_activity_at: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// The sessions of a project `user` sees in `folder` and below, by folder then name (at
    /// most [`MAX_FOLDER_SESSIONS`] + 1, so a caller knows when it cut the list).
    pub async fn folder_sessions(
        &self,
        user: &str,
        project: &str,
        folder: &str,
    ) -> Result<Vec<Session>> {
        // `folder` is checked (no `%` or `_` wildcards matter: they are escaped).
        let below = if folder == "/" {
            "/%".to_owned()
        } else {
            format!("{}/%", like_escape(folder))
        };
        // dialect: LIKE is ASCII case-insensitive on SQLite: PostgreSQL needs ILIKE (… ESCAPE '\') for the same matches
        let like = match self.dialect() {
            Dialect::Sqlite => "LIKE",
            Dialect::Postgres => "ILIKE",
        };
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE project = $2 AND {VISIBLE} \
             AND (folder = $3 OR folder {like} $4 ESCAPE '\\') ORDER BY folder, name, id LIMIT {}",
            MAX_FOLDER_SESSIONS + 1
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(user)
            .bind(project)
            .bind(folder)
            .bind(below)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(Session::from_row).collect()
    }

    /// Protects a session from every write (`on`) or lifts the protection, with an audit
    /// entry. Protecting a protected session (or unprotecting a writable one) changes nothing
    /// and records nothing.
    pub async fn set_protected(&self, session: &str, on: bool, actor: &str) -> Result<Session> {
        let mut tx = self.write().await?;
        let s = get_in(&mut tx, session).await?;
        if s.protected == on {
            return Ok(s);
        }
        let at = now();
        query("UPDATE sessions SET protected_at = $1, protected_by = $2 WHERE id = $3")
            .bind(on.then_some(&at))
            .bind(on.then_some(actor))
            .bind(session)
            .execute(&mut tx)
            .await?;
        let action = if on {
            "session.protect"
        } else {
            "session.unprotect"
        };
        audit::append(&mut tx, session, actor, action, &json!({"at": at})).await?;
        let s = get_in(&mut tx, session).await?;
        tx.commit().await?;
        Ok(s)
    }
}

/// Escapes LIKE's wildcards with `\`.
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
