//! Cached results of expensive tools, per user: keyed by tool, version and a hash of the
//! normalised arguments; an entry may expire.

use serde_json::Value;

use crate::conn::query;
use crate::{Db, Result, now};

/// A cached result and when it was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedOutput {
    pub output: Value,
    pub created_at: String,
}

impl Db {
    /// The user's unexpired cached result for this call, if any.
    pub async fn cached_tool_output(
        &self,
        user: &str,
        tool: &str,
        version: &str,
        args_hash: &str,
    ) -> Result<Option<CachedOutput>> {
        let row = query(
            "SELECT output, created_at FROM tool_cache WHERE user_id = $1 AND tool = $2 \
             AND version = $3 AND args_hash = $4 AND (expires_at IS NULL OR expires_at > $5)",
        )
        .bind(user)
        .bind(tool)
        .bind(version)
        .bind(args_hash)
        .bind(now())
        .fetch_optional(&mut *self.read().await?)
        .await?;
        row.map(|r| {
            Ok(CachedOutput {
                output: serde_json::from_str(r.try_get::<&str, _>("output")?)?,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// Stores (or replaces) a result; `expires_at` None keeps it until replaced.
    pub async fn cache_tool_output(
        &self,
        user: &str,
        tool: &str,
        version: &str,
        args_hash: &str,
        output: &Value,
        expires_at: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        query(
            "INSERT INTO tool_cache (user_id, tool, version, args_hash, output, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (user_id, tool, version, args_hash) DO UPDATE SET \
             output = excluded.output, created_at = excluded.created_at, \
             expires_at = excluded.expires_at",
        )
        .bind(user)
        .bind(tool)
        .bind(version)
        .bind(args_hash)
        .bind(output.to_string())
        .bind(now())
        .bind(expires_at)
        .execute(&mut tx)
        .await?;
        // Expired entries of this user go as new ones come.
        query("DELETE FROM tool_cache WHERE user_id = $1 AND expires_at <= $2")
            .bind(user)
            .bind(now())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
