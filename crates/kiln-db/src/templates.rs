//! Saved session templates (built-in ones live in templates/sessions and are not stored).

use serde_json::Value;
use sqlx::Row;

use crate::{Db, Error, Result, now};

impl Db {
    /// Saves a template; names are unique.
    pub async fn save_template(
        &self,
        name: &str,
        description: &str,
        body: &Value,
        actor: &str,
    ) -> Result<()> {
        crate::tree::check_name("template", name)?;
        let res = sqlx::query(
            "INSERT INTO session_templates (name, description, body, created_by, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(description)
        .bind(body.to_string())
        .bind(actor)
        .bind(now())
        .execute(&mut self.writer().await.conn)
        .await?;
        if res.rows_affected() == 0 {
            return Err(Error::AlreadyExists(format!("template `{name}`")));
        }
        Ok(())
    }

    /// Lists saved templates as (name, description, body).
    pub async fn templates(&self) -> Result<Vec<(String, String, Value)>> {
        let rows =
            sqlx::query("SELECT name, description, body FROM session_templates ORDER BY name")
                .fetch_all(&mut *self.read().await?)
                .await?;
        rows.iter()
            .map(|r| {
                let body: &str = r.try_get(2)?;
                Ok((r.try_get(0)?, r.try_get(1)?, serde_json::from_str(body)?))
            })
            .collect()
    }
}
