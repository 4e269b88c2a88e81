//! A user's memory: notes and preferences kept across sessions, read only by their owner.
//! Every query takes the owner, so one user's entries are unreachable from another's calls.

use serde::Serialize;

use crate::conn::{Dialect, Row, query, query_scalar};
use crate::{Db, Error, Result, now};

/// One saved note or preference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    pub id: String,
    /// `note` or `preference`.
    pub kind: String,
    pub content: String,
    /// Who saved it: `user`, or `agent` (when the user asked it to remember).
    pub source: String,
    /// The session it was saved from, if any.
    pub session_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// An entry to save.
#[derive(Debug, Clone, Copy)]
pub struct NewMemory<'a> {
    pub user_id: &'a str,
    pub kind: &'a str,
    pub content: &'a str,
    pub source: &'a str,
    pub session_id: Option<&'a str>,
}

const COLUMNS: &str = "id, kind, content, source, session_id, created_at, updated_at";

fn from_row(r: &Row) -> Result<MemoryEntry> {
    Ok(MemoryEntry {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        content: r.try_get("content")?,
        source: r.try_get("source")?,
        session_id: r.try_get("session_id")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Db {
    /// Saves an entry unless the user already has `limit` entries (then `Invalid`, naming the
    /// limit); the count and the insert are one transaction. The same content saved again
    /// (ignoring case and surrounding space) returns the existing entry instead of a copy.
    pub async fn insert_memory(&self, m: &NewMemory<'_>, limit: u32) -> Result<MemoryEntry> {
        let mut tx = self.write().await?;
        // dialect: lower() folds ASCII only on SQLite, all letters on PostgreSQL: mirror with translate(x, 'A…Z', 'a…z')
        let fold = match tx.dialect() {
            Dialect::Sqlite => "lower(trim(content)) = lower(trim($2))",
            Dialect::Postgres => {
                "translate(trim(content), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') \
                 = translate(trim($2), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
            }
        };
        let same = query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_memory WHERE user_id = $1 AND {fold} LIMIT 1"
        )))
        .bind(m.user_id)
        .bind(m.content)
        .fetch_optional(&mut tx)
        .await?;
        if let Some(row) = same {
            return from_row(&row);
        }
        let count: i64 = query_scalar("SELECT count(*) FROM user_memory WHERE user_id = $1")
            .bind(m.user_id)
            .fetch_one(&mut tx)
            .await?;
        if count >= i64::from(limit) {
            return Err(Error::Invalid(format!(
                "your memory holds at most {limit} entries: delete one first"
            )));
        }
        let id = kiln_types::MemoryId::new().to_string();
        let at = now();
        query(
            "INSERT INTO user_memory \
             (id, user_id, kind, content, source, session_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(m.user_id)
        .bind(m.kind)
        .bind(m.content.trim())
        .bind(m.source)
        .bind(m.session_id)
        .bind(&at)
        .bind(&at)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(MemoryEntry {
            id,
            kind: m.kind.to_owned(),
            content: m.content.trim().to_owned(),
            source: m.source.to_owned(),
            session_id: m.session_id.map(str::to_owned),
            created_at: at.clone(),
            updated_at: at,
        })
    }

    /// The user's entries, oldest first.
    pub async fn memory(&self, user_id: &str) -> Result<Vec<MemoryEntry>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM user_memory WHERE user_id = $1 ORDER BY created_at, id"
        )))
        .bind(user_id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Changes an entry's content and/or kind; `NotFound` when `user_id` has no entry `id`.
    pub async fn update_memory(
        &self,
        user_id: &str,
        id: &str,
        content: Option<&str>,
        kind: Option<&str>,
    ) -> Result<MemoryEntry> {
        let mut tx = self.write().await?;
        let row = query(sqlx::AssertSqlSafe(format!(
            "UPDATE user_memory SET content = COALESCE($1, content), kind = COALESCE($2, kind), \
             updated_at = $3 WHERE user_id = $4 AND id = $5 RETURNING {COLUMNS}"
        )))
        .bind(content.map(str::trim))
        .bind(kind)
        .bind(now())
        .bind(user_id)
        .bind(id)
        .fetch_optional(&mut tx)
        .await?
        .ok_or_else(|| Error::not_found(format!("memory entry {id}")))?;
        let entry = from_row(&row)?;
        tx.commit().await?;
        Ok(entry)
    }

    /// Deletes an entry; `NotFound` when `user_id` has no entry `id`.
    pub async fn delete_memory(&self, user_id: &str, id: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let done = query("DELETE FROM user_memory WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(id)
            .execute(&mut tx)
            .await?;
        if done == 0 {
            return Err(Error::not_found(format!("memory entry {id}")));
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DbOptions;

    async fn db_with_users() -> (tempfile::TempDir, Db, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
            .await
            .unwrap();
        let a = db.create_user("alice", true, b"a").await.unwrap();
        let b = db.create_user("bob", false, b"b").await.unwrap();
        (dir, db, a.id.to_string(), b.id.to_string())
    }

    fn note<'a>(user: &'a str, content: &'a str) -> NewMemory<'a> {
        NewMemory {
            user_id: user,
            kind: "preference",
            content,
            source: "user",
            session_id: None,
        }
    }

    #[tokio::test]
    async fn entries_belong_to_their_owner_alone() {
        let (_dir, db, u1, u2) = db_with_users().await;
        let (u1, u2) = (u1.as_str(), u2.as_str());
        let a = db
            .insert_memory(&note(u1, "  report capacities in mAh/g "), 10)
            .await
            .unwrap();
        assert_eq!(a.content, "report capacities in mAh/g");
        // The same text again is the same entry.
        let again = db
            .insert_memory(&note(u1, "Report capacities in mAh/g"), 10)
            .await
            .unwrap();
        assert_eq!(again.id, a.id);
        assert_eq!(db.memory(u1).await.unwrap().len(), 1);
        // Bob sees none of it and can change none of it.
        assert!(db.memory(u2).await.unwrap().is_empty());
        assert!(matches!(
            db.update_memory(u2, &a.id, Some("x"), None).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            db.delete_memory(u2, &a.id).await,
            Err(Error::NotFound(_))
        ));
        let edited = db
            .update_memory(u1, &a.id, Some("report capacities in mA h/g"), None)
            .await
            .unwrap();
        assert_eq!(edited.content, "report capacities in mA h/g");
        assert_eq!(edited.kind, "preference");
        db.delete_memory(u1, &a.id).await.unwrap();
        assert!(db.memory(u1).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_limit_holds() {
        let (_dir, db, u1, u2) = db_with_users().await;
        let (u1, u2) = (u1.as_str(), u2.as_str());
        db.insert_memory(&note(u1, "one"), 2).await.unwrap();
        db.insert_memory(&note(u1, "two"), 2).await.unwrap();
        let err = db.insert_memory(&note(u1, "three"), 2).await.unwrap_err();
        assert!(matches!(err, Error::Invalid(m) if m.contains("at most 2")));
        // Another user's count is their own.
        db.insert_memory(&note(u2, "three"), 2).await.unwrap();
    }
}
