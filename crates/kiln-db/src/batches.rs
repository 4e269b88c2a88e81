//! Batch runs: a request template run once per item. The batch row says how (mode,
//! concurrency, time budget, the node every item starts from); item rows move pending → running
//! → done / failed / cancelled. Items are claimed one at a time in one write transaction, so
//! two workers (or two servers) never take the same item.

use serde::Serialize;
use serde_json::Value;

use crate::conn::{Row, query, query_as, query_scalar};
use crate::{Db, Error, Result, now};

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchRow {
    pub session_id: String,
    pub id: String,
    pub user_id: String,
    /// The request template (`{field}` placeholders).
    pub request: String,
    /// `branches` (an item per branch) or `shared` (all items on one branch, in order).
    pub mode: String,
    pub concurrency: u32,
    pub item_timeout_ms: u64,
    /// The node every item's branch starts from.
    pub from_node: String,
    /// The checkpoint naming `from_node`.
    pub checkpoint: Option<String>,
    /// `running`, `done` or `cancelled`.
    pub status: String,
    pub created_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

/// One item of a batch as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchItemRow {
    pub idx: u32,
    /// The item's fields, as given.
    pub item: Value,
    /// The request with the item's fields filled in.
    pub request: String,
    /// `pending`, `running`, `done`, `failed` or `cancelled`.
    pub status: String,
    pub attempts: u32,
    pub branch: Option<String>,
    pub answer: Option<String>,
    /// Key numbers from the item's tool results.
    pub numbers: Option<Value>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

/// A batch to store, with its items as (fields, filled request).
#[derive(Debug, Clone)]
pub struct NewBatch<'a> {
    pub session_id: &'a str,
    pub id: &'a str,
    pub user_id: &'a str,
    pub request: &'a str,
    pub mode: &'a str,
    pub concurrency: u32,
    pub item_timeout_ms: u64,
    pub from_node: &'a str,
    pub checkpoint: Option<&'a str>,
    pub items: &'a [(Value, String)],
}

/// How an item ended.
#[derive(Debug, Clone, Default)]
pub struct ItemOutcome {
    pub status: &'static str,
    pub branch: Option<String>,
    pub answer: Option<String>,
    pub numbers: Option<Value>,
    pub error: Option<String>,
}

const BATCH: &str = "session_id, id, user_id, request, mode, concurrency, item_timeout_ms, \
    from_node, checkpoint, status, created_at, updated_at, finished_at";
const ITEM: &str = "idx, item, request, status, attempts, branch, answer, numbers, error, \
    started_at, finished_at";

fn batch_row(r: &Row) -> Result<BatchRow> {
    Ok(BatchRow {
        session_id: r.try_get("session_id")?,
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        request: r.try_get("request")?,
        mode: r.try_get("mode")?,
        concurrency: r.try_get::<i64, _>("concurrency")? as u32,
        item_timeout_ms: r.try_get::<i64, _>("item_timeout_ms")? as u64,
        from_node: r.try_get("from_node")?,
        checkpoint: r.try_get("checkpoint")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn item_row(r: &Row) -> Result<BatchItemRow> {
    let json = |col: &str| -> Result<Option<Value>> {
        r.try_get::<Option<&str>, _>(col)?
            .map(serde_json::from_str)
            .transpose()
            .map_err(Error::from)
    };
    Ok(BatchItemRow {
        idx: r.try_get::<i64, _>("idx")? as u32,
        item: json("item")?.unwrap_or(Value::Null),
        request: r.try_get("request")?,
        status: r.try_get("status")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
        branch: r.try_get("branch")?,
        answer: r.try_get("answer")?,
        numbers: json("numbers")?,
        error: r.try_get("error")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Db {
    /// Stores a batch and its items (all pending) in one transaction.
    pub async fn insert_batch(&self, b: &NewBatch<'_>) -> Result<BatchRow> {
        let at = now();
        let mut tx = self.write().await?;
        query(
            "INSERT INTO batches (session_id, id, user_id, request, mode, concurrency, \
             item_timeout_ms, from_node, checkpoint, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'running', $10, $11)",
        )
        .bind(b.session_id)
        .bind(b.id)
        .bind(b.user_id)
        .bind(b.request)
        .bind(b.mode)
        .bind(i64::from(b.concurrency))
        .bind(b.item_timeout_ms as i64)
        .bind(b.from_node)
        .bind(b.checkpoint)
        .bind(&at)
        .bind(&at)
        .execute(&mut tx)
        .await?;
        for (idx, (item, request)) in b.items.iter().enumerate() {
            query(
                "INSERT INTO batch_items (session_id, batch_id, idx, item, request) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(b.session_id)
            .bind(b.id)
            .bind(idx as i64)
            .bind(item.to_string())
            .bind(request)
            .execute(&mut tx)
            .await?;
        }
        let row = query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH} FROM batches WHERE session_id = $1 AND id = $2"
        )))
        .bind(b.session_id)
        .bind(b.id)
        .fetch_one(&mut tx)
        .await?;
        let batch = batch_row(&row)?;
        tx.commit().await?;
        Ok(batch)
    }

    /// One batch of a session.
    pub async fn batch(&self, session: &str, id: &str) -> Result<BatchRow> {
        let row = query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH} FROM batches WHERE session_id = $1 AND id = $2"
        )))
        .bind(session)
        .bind(id)
        .fetch_optional(&mut *self.read().await?)
        .await?
        .ok_or_else(|| Error::not_found(format!("batch {id}")))?;
        batch_row(&row)
    }

    /// A session's batches, newest first (at most `limit`).
    pub async fn batches(&self, session: &str, limit: u32) -> Result<Vec<BatchRow>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH} FROM batches WHERE session_id = $1 ORDER BY created_at DESC, id DESC \
             LIMIT $2"
        )))
        .bind(session)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(batch_row).collect()
    }

    /// A batch's items in order.
    pub async fn batch_items(&self, session: &str, id: &str) -> Result<Vec<BatchItemRow>> {
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM} FROM batch_items WHERE session_id = $1 AND batch_id = $2 ORDER BY idx"
        )))
        .bind(session)
        .bind(id)
        .fetch_all(&mut *self.read().await?)
        .await?;
        rows.iter().map(item_row).collect()
    }

    /// A batch's items counted by status (no item is read).
    pub async fn batch_status_counts(&self, session: &str, id: &str) -> Result<Vec<(String, i64)>> {
        query_as(
            "SELECT status, count(*) FROM batch_items WHERE session_id = $1 AND batch_id = $2 \
             GROUP BY status",
        )
        .bind(session)
        .bind(id)
        .fetch_all(&mut *self.read().await?)
        .await
    }

    /// Takes the first pending item of a running batch (marking it running), if any.
    pub async fn claim_batch_item(&self, session: &str, id: &str) -> Result<Option<BatchItemRow>> {
        let mut tx = self.write().await?;
        let row = query(sqlx::AssertSqlSafe(format!(
            "UPDATE batch_items SET status = 'running', attempts = attempts + 1, started_at = $3 \
             WHERE session_id = $1 AND batch_id = $2 AND idx = ( \
               SELECT i.idx FROM batch_items i JOIN batches b \
                 ON b.session_id = i.session_id AND b.id = i.batch_id \
               WHERE i.session_id = $1 AND i.batch_id = $2 AND i.status = 'pending' \
                 AND b.status = 'running' ORDER BY i.idx LIMIT 1) \
             RETURNING {ITEM}"
        )))
        .bind(session)
        .bind(id)
        .bind(now())
        .fetch_optional(&mut tx)
        .await?;
        let item = row.as_ref().map(item_row).transpose()?;
        tx.commit().await?;
        Ok(item)
    }

    /// Records where an item runs (its branch), before it runs there.
    pub async fn set_batch_item_branch(
        &self,
        session: &str,
        id: &str,
        idx: u32,
        branch: &str,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        query(
            "UPDATE batch_items SET branch = $1 WHERE session_id = $2 AND batch_id = $3 AND idx = $4",
        )
        .bind(branch)
        .bind(session)
        .bind(id)
        .bind(i64::from(idx))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records how a running item ended (an item cancelled meanwhile stays cancelled).
    pub async fn finish_batch_item(
        &self,
        session: &str,
        id: &str,
        idx: u32,
        o: &ItemOutcome,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        query(
            "UPDATE batch_items SET status = $1, branch = COALESCE($2, branch), answer = $3, \
             numbers = $4, error = $5, finished_at = $6 \
             WHERE session_id = $7 AND batch_id = $8 AND idx = $9 AND status = 'running'",
        )
        .bind(o.status)
        .bind(o.branch.as_deref())
        .bind(o.answer.as_deref())
        .bind(o.numbers.as_ref().map(Value::to_string))
        .bind(o.error.as_deref())
        .bind(now())
        .bind(session)
        .bind(id)
        .bind(i64::from(idx))
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks a running batch done once no item is pending or running; returns whether it is
    /// finished (done or cancelled).
    pub async fn settle_batch(&self, session: &str, id: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let at = now();
        query(
            "UPDATE batches SET status = 'done', finished_at = $1, updated_at = $1 \
             WHERE session_id = $2 AND id = $3 AND status = 'running' AND NOT EXISTS ( \
               SELECT 1 FROM batch_items WHERE session_id = $2 AND batch_id = $3 \
               AND status IN ('pending', 'running'))",
        )
        .bind(&at)
        .bind(session)
        .bind(id)
        .execute(&mut tx)
        .await?;
        let status: String =
            query_scalar("SELECT status FROM batches WHERE session_id = $1 AND id = $2")
                .bind(session)
                .bind(id)
                .fetch_one(&mut tx)
                .await?;
        tx.commit().await?;
        Ok(status != "running")
    }

    /// Cancels a running batch: it and its pending and running items become cancelled (a
    /// running item's turn is stopped by its runner). Returns false when it was not running.
    pub async fn cancel_batch(&self, session: &str, id: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let at = now();
        let done = query(
            "UPDATE batches SET status = 'cancelled', finished_at = $1, updated_at = $1 \
             WHERE session_id = $2 AND id = $3 AND status = 'running'",
        )
        .bind(&at)
        .bind(session)
        .bind(id)
        .execute(&mut tx)
        .await?;
        if done == 0 {
            return Ok(false);
        }
        query(
            "UPDATE batch_items SET status = 'cancelled', finished_at = $1 \
             WHERE session_id = $2 AND batch_id = $3 AND status IN ('pending', 'running')",
        )
        .bind(&at)
        .bind(session)
        .bind(id)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Batches still running (after a restart: to carry on), with their running items put back
    /// to pending, since whoever ran them is gone.
    pub async fn resume_batches(&self) -> Result<Vec<BatchRow>> {
        let mut tx = self.write().await?;
        query(
            "UPDATE batch_items SET status = 'pending' WHERE status = 'running' AND EXISTS ( \
               SELECT 1 FROM batches b WHERE b.session_id = batch_items.session_id \
               AND b.id = batch_items.batch_id AND b.status = 'running')",
        )
        .execute(&mut tx)
        .await?;
        let rows = query(sqlx::AssertSqlSafe(format!(
            "SELECT {BATCH} FROM batches WHERE status = 'running' ORDER BY created_at"
        )))
        .fetch_all(&mut tx)
        .await?;
        let batches = rows.iter().map(batch_row).collect::<Result<Vec<_>>>()?;
        tx.commit().await?;
        Ok(batches)
    }
}
