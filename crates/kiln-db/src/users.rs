//! Users and their API tokens (stored as SHA-256 hashes only).

use kiln_types::UserId;

use crate::conn::{Dialect, query, query_as};
use crate::model::User;
use crate::{Db, Error, Result, now};

impl Db {
    /// Creates a user holding one token, given as its hash.
    pub async fn create_user(&self, name: &str, is_owner: bool, token_hash: &[u8]) -> Result<User> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::Invalid(
                "user name must be 1-64 characters without spaces".into(),
            ));
        }
        let id = UserId::new().to_string();
        let now = now();
        let mut tx = self.write().await?;
        let res = query(
            "INSERT INTO users (id, name, is_owner, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(name)
        .bind(is_owner)
        .bind(&now)
        .execute(&mut tx)
        .await?;
        if res == 0 {
            return Err(Error::AlreadyExists(format!("user `{name}`")));
        }
        query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(token_hash)
            .bind(&now)
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(User {
            id,
            name: name.to_string(),
            is_owner,
            created_at: now,
        })
    }

    /// Adds another token for an existing user.
    pub async fn add_token(&self, user_id: &str, token_hash: &[u8]) -> Result<()> {
        query("INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(token_hash)
            .bind(now())
            .execute(&mut self.writer().await?.conn)
            .await?;
        Ok(())
    }

    /// Finds the user holding the token with this hash.
    pub async fn user_by_token_hash(&self, token_hash: &[u8]) -> Result<Option<User>> {
        let row = query(
            "SELECT u.id, u.name, u.is_owner, u.created_at FROM api_tokens t \
             JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    pub async fn user_by_name(&self, name: &str) -> Result<User> {
        let row = query("SELECT id, name, is_owner, created_at FROM users WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("user `{name}`")))?;
        User::from_row(&row)
    }

    pub async fn user(&self, id: &str) -> Result<User> {
        let row = query("SELECT id, name, is_owner, created_at FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("user {id}")))?;
        User::from_row(&row)
    }

    /// The names of these user ids, in one query; an id with no user (deleted) names itself.
    pub async fn user_names<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<std::collections::BTreeMap<String, String>> {
        let mut names: std::collections::BTreeMap<String, String> = ids
            .into_iter()
            .map(|id| (id.to_owned(), id.to_owned()))
            .collect();
        if names.is_empty() {
            return Ok(names);
        }
        let list = serde_json::to_string(&names.keys().collect::<Vec<_>>())?;
        // dialect: json_each($1) over a JSON array: PostgreSQL uses jsonb_array_elements_text($1::jsonb)
        let sql = match self.dialect() {
            Dialect::Sqlite => {
                "SELECT id, name FROM users WHERE id IN (SELECT value FROM json_each($1))"
            }
            Dialect::Postgres => {
                "SELECT id, name FROM users WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))"
            }
        };
        let rows: Vec<(String, String)> = query_as(sql)
            .bind(list)
            .fetch_all(&mut *self.read().await?)
            .await?;
        names.extend(rows);
        Ok(names)
    }

    pub async fn count_users(&self) -> Result<i64> {
        let row = query("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *self.read().await?)
            .await?;
        row.try_get(0)
    }

    /// Bytes of text and JSON each author has written, over every node (one grouped scan;
    /// the storage quota's starting totals).
    pub async fn bytes_by_author(&self) -> Result<Vec<(String, i64)>> {
        let rows = query(
            "SELECT author, SUM(octet_length(content) + COALESCE(octet_length(data), 0)) FROM nodes \
             WHERE author IS NOT NULL GROUP BY author",
        )
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<Option<i64>, _>(1)?.unwrap_or(0))))
            .collect()
    }
}
