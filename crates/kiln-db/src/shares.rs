//! Share links: rows keyed by the token's hash, pinned to a node, with expiry, view limits and
//! revocation. Checking a link and counting the view is one conditional UPDATE.

use serde::Serialize;

use crate::conn::{Row, query, query_scalar};
use crate::{Db, Error, Result};

/// A share link as its creator sees it (never the token: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShareLink {
    pub id: String,
    #[serde(skip)]
    pub token_hash: Vec<u8>,
    pub session_id: String,
    pub node_id: String,
    pub branch: Option<String>,
    pub checkpoint: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub max_views: Option<i64>,
    pub views: i64,
    pub revoked_at: Option<String>,
}

/// A new share link.
#[derive(Debug, Clone)]
pub struct NewShare<'a> {
    pub id: &'a str,
    pub session: &'a str,
    pub token_hash: &'a [u8],
    pub node: &'a str,
    pub branch: Option<&'a str>,
    pub checkpoint: Option<&'a str>,
    pub created_by: &'a str,
    pub created_at: &'a str,
    pub expires_at: &'a str,
    pub max_views: Option<i64>,
}

/// Why a share link cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareRefusal {
    /// No such token, or revoked.
    Unknown,
    Expired,
    ViewsUsedUp,
}

const COLUMNS: &str = "id, token_hash, session_id, node_id, branch, checkpoint, created_by, created_at, \
    expires_at, max_views, views, revoked_at";

fn from_row(r: &Row) -> Result<ShareLink> {
    Ok(ShareLink {
        id: r.try_get(0)?,
        token_hash: r.try_get(1)?,
        session_id: r.try_get(2)?,
        node_id: r.try_get(3)?,
        branch: r.try_get(4)?,
        checkpoint: r.try_get(5)?,
        created_by: r.try_get(6)?,
        created_at: r.try_get(7)?,
        expires_at: r.try_get(8)?,
        max_views: r.try_get(9)?,
        views: r.try_get(10)?,
        revoked_at: r.try_get(11)?,
    })
}

impl Db {
    pub async fn create_share(&self, s: &NewShare<'_>) -> Result<ShareLink> {
        let mut tx = self.write().await?;
        query(
            "INSERT INTO share_links (id, session_id, token_hash, node_id, branch, checkpoint, \
             created_by, created_at, expires_at, max_views) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(s.id)
        .bind(s.session)
        .bind(s.token_hash)
        .bind(s.node)
        .bind(s.branch)
        .bind(s.checkpoint)
        .bind(s.created_by)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.max_views)
        .execute(&mut tx)
        .await?;
        crate::audit::append(
            &mut tx,
            s.session,
            s.created_by,
            "share_created",
            &serde_json::json!({"share": s.id, "node": s.node, "expires_at": s.expires_at,
                                "max_views": s.max_views}),
        )
        .await?;
        tx.commit().await?;
        self.share(s.session, s.id).await
    }

    pub async fn share(&self, session: &str, id: &str) -> Result<ShareLink> {
        let sql = format!("SELECT {COLUMNS} FROM share_links WHERE session_id = $1 AND id = $2");
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(id)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("share link {id}")))?;
        from_row(&row)
    }

    /// A session's share links, newest first.
    pub async fn shares(&self, session: &str) -> Result<Vec<ShareLink>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM share_links WHERE session_id = $1 ORDER BY created_at DESC, id"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .fetch_all(&mut *self.read().await?)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Revokes a link (idempotent); returns it.
    pub async fn revoke_share(
        &self,
        session: &str,
        id: &str,
        by: &str,
        at: &str,
    ) -> Result<ShareLink> {
        let mut tx = self.write().await?;
        let n = query(
            "UPDATE share_links SET revoked_at = COALESCE(revoked_at, $1) \
             WHERE session_id = $2 AND id = $3",
        )
        .bind(at)
        .bind(session)
        .bind(id)
        .execute(&mut tx)
        .await?;
        if n == 0 {
            return Err(Error::not_found(format!("share link {id}")));
        }
        crate::audit::append(
            &mut tx,
            session,
            by,
            "share_revoked",
            &serde_json::json!({"share": id}),
        )
        .await?;
        tx.commit().await?;
        self.share(session, id).await
    }

    /// Uses a link at time `now`: counts the view and returns it, or says why it cannot be
    /// used. Expiry is inclusive (a link is dead at its `expires_at`); the view count never
    /// passes `max_views`, even under concurrent views.
    pub async fn use_share(
        &self,
        token_hash: &[u8],
        now: &str,
    ) -> Result<std::result::Result<ShareLink, ShareRefusal>> {
        let mut w = self.writer().await?;
        let sql = format!(
            "UPDATE share_links SET views = views + 1 WHERE token_hash = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND (max_views IS NULL OR views < max_views) RETURNING {COLUMNS}"
        );
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut w.conn)
            .await?;
        drop(w);
        if let Some(row) = row {
            return Ok(Ok(from_row(&row)?));
        }
        let sql = format!("SELECT {COLUMNS} FROM share_links WHERE token_hash = $1");
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .fetch_optional(&mut *self.read().await?)
            .await?;
        let Some(row) = row else {
            return Ok(Err(ShareRefusal::Unknown));
        };
        let link = from_row(&row)?;
        Ok(Err(if link.revoked_at.is_some() {
            ShareRefusal::Unknown
        } else if link.expires_at.as_str() <= now {
            ShareRefusal::Expired
        } else {
            ShareRefusal::ViewsUsedUp
        }))
    }

    /// Whether a live share link (not revoked, not expired at `now`, views left) has this token
    /// hash, so a share token used as an API token is told it is read-only. A dead link's token
    /// is answered like any unknown token.
    pub async fn is_live_share_token(&self, token_hash: &[u8], now: &str) -> Result<bool> {
        query_scalar(
            "SELECT EXISTS(SELECT 1 FROM share_links WHERE token_hash = $1 AND revoked_at IS NULL \
             AND expires_at > $2 AND (max_views IS NULL OR views < max_views))",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_one(&mut *self.read().await?)
        .await
    }

    /// Deletes links that expired before `cutoff` or were revoked before it; returns how many.
    pub async fn purge_shares(&self, cutoff: &str) -> Result<u64> {
        let mut w = self.writer().await?;
        query("DELETE FROM share_links WHERE expires_at <= $1 OR revoked_at <= $2")
            .bind(cutoff)
            .bind(cutoff)
            .execute(&mut w.conn)
            .await
    }
}
