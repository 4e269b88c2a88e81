//! The public signing keys of the servers that share this store: each server records its own
//! at start, so an export signed by one server verifies as the instance's own on any other.

use crate::conn::{query, query_scalar};
use crate::{Db, Result};

impl Db {
    /// Records this server's public signing key (64 hex digits) when it is not yet recorded:
    /// one read at start, a write only the first time a key is seen.
    pub async fn register_server_key(&self, public_key: &str) -> Result<()> {
        // COUNT: a bigint on both databases (a bare `SELECT 1` is an int4 on PostgreSQL).
        let known: i64 = {
            let mut conn = self.read().await?;
            query_scalar("SELECT COUNT(*) FROM server_keys WHERE public_key = $1")
                .bind(public_key)
                .fetch_one(&mut conn)
                .await?
        };
        if known > 0 {
            return Ok(());
        }
        let mut tx = self.write_unordered().await?;
        query(
            "INSERT INTO server_keys (public_key, seen_at) VALUES ($1, $2) \
             ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(public_key)
        .bind(crate::now())
        .execute(&mut tx)
        .await?;
        tx.commit().await
    }

    /// The public keys of every server that has run on this store, first seen first.
    pub async fn server_keys(&self) -> Result<Vec<String>> {
        let mut conn = self.read().await?;
        query_scalar("SELECT public_key FROM server_keys ORDER BY seen_at, public_key")
            .fetch_all(&mut conn)
            .await
    }
}
