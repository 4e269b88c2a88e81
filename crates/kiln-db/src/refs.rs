//! Checkpoints (named refs), restore and recover, the reflog, and resolving names to nodes.

use serde::Serialize;
use serde_json::json;

use crate::conn::{Conn, Dialect, query, query_scalar};
use crate::model::{Checkpoint, ReflogEntry};
use crate::tree::{branch_in, check_name, head_state, pos, reflog, set_head};
use crate::{Db, Error, Result, audit, now, sessions, state};

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub branch: String,
    pub old_head: String,
    pub new_head: String,
    /// The automatic checkpoint that keeps the old head reachable.
    pub saved_as: String,
}

pub(crate) async fn checkpoint_in(
    conn: &mut Conn,
    session: &str,
    name: &str,
) -> Result<Checkpoint> {
    let row = query(
        "SELECT name, node_id, branch, auto, created_by, created_at FROM refs \
         WHERE session_id = $1 AND name = $2",
    )
    .bind(session)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("checkpoint `{name}`")))?;
    Checkpoint::from_row(&row)
}

async fn insert_ref(
    conn: &mut Conn,
    session: &str,
    name: &str,
    node: &str,
    branch: Option<&str>,
    auto: bool,
    actor: &str,
) -> Result<()> {
    let res = query(
        "INSERT INTO refs (session_id, name, node_id, branch, auto, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(session)
    .bind(name)
    .bind(node)
    .bind(branch)
    .bind(auto)
    .bind(actor)
    .bind(now())
    .execute(&mut *conn)
    .await?;
    if res == 0 {
        return Err(Error::AlreadyExists(format!("checkpoint `{name}`")));
    }
    Ok(())
}

/// Returns an unused checkpoint name starting with `stem`.
async fn fresh_name(conn: &mut Conn, session: &str, stem: &str) -> Result<String> {
    for i in 0..1000 {
        let name = if i == 0 {
            stem.to_string()
        } else {
            format!("{stem}-{i}")
        };
        let taken: bool =
            query_scalar("SELECT EXISTS(SELECT 1 FROM refs WHERE session_id = $1 AND name = $2)")
                .bind(session)
                .bind(&name)
                .fetch_one(&mut *conn)
                .await?;
        if !taken {
            return Ok(name);
        }
    }
    Err(Error::AlreadyExists(format!("checkpoint `{stem}`")))
}

impl Db {
    /// Names a node. `node` defaults to the head of `branch`.
    pub async fn create_checkpoint(
        &self,
        session: &str,
        name: &str,
        branch: Option<&str>,
        node: Option<&str>,
        auto: bool,
        actor: &str,
    ) -> Result<Checkpoint> {
        check_name("checkpoint", name)?;
        let mut tx = self.write().await?;
        let s = sessions::get_in(&mut tx, session).await?;
        let branch = branch.unwrap_or(&s.default_branch).to_string();
        let node = match node {
            Some(n) => pos(&mut tx, session, n).await?.id,
            None => branch_in(&mut tx, session, &branch).await?.head,
        };
        insert_ref(&mut tx, session, name, &node, Some(&branch), auto, actor).await?;
        let c = checkpoint_in(&mut tx, session, name).await?;
        tx.commit().await?;
        Ok(c)
    }

    /// Lists checkpoints, oldest first.
    pub async fn checkpoints(&self, session: &str) -> Result<Vec<Checkpoint>> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        let rows = query(
            "SELECT name, node_id, branch, auto, created_by, created_at FROM refs \
             WHERE session_id = $1 ORDER BY created_at, name",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?;
        rows.iter().map(Checkpoint::from_row).collect()
    }

    pub async fn checkpoint(&self, session: &str, name: &str) -> Result<Checkpoint> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        checkpoint_in(&mut conn, session, name).await
    }

    /// Moves a branch head back to a checkpoint. The old head is kept twice over: in the reflog
    /// and as an automatic `before-restore-…` checkpoint. Nothing is deleted.
    pub async fn restore(
        &self,
        session: &str,
        checkpoint: &str,
        branch: Option<&str>,
        actor: &str,
    ) -> Result<Restored> {
        let mut tx = self.write().await?;
        let s = sessions::get_in(&mut tx, session).await?;
        // A restore moves a head like an append does: not on a paused or archived session.
        if !s.status.accepts_writes() {
            return Err(Error::NotActive(s.status));
        }
        let cp = checkpoint_in(&mut tx, session, checkpoint).await?;
        let branch = branch
            .map(str::to_string)
            .or(cp.branch.clone())
            .unwrap_or(s.default_branch.clone());
        let head = head_state(&mut tx, session, &branch).await?;
        if head.status == "discarded" {
            return Err(Error::BranchDiscarded(branch));
        }
        if head.pos.id == cp.node {
            // Already there: nothing moves, so nothing is saved, logged or audited; the head
            // is kept by the very checkpoint asked for.
            return Ok(Restored {
                branch,
                old_head: head.pos.id.clone(),
                new_head: head.pos.id,
                saved_as: checkpoint.to_owned(),
            });
        }
        // Microseconds: names stay unique without probing through many same-second restores
        // (a seconds stamp made the 1001st restore within one second fail).
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6f").to_string();
        let saved_as = fresh_name(&mut tx, session, &format!("before-restore-{stamp}")).await?;
        insert_ref(
            &mut tx,
            session,
            &saved_as,
            &head.pos.id,
            Some(&branch),
            true,
            actor,
        )
        .await?;
        let target = pos(&mut tx, session, &cp.node).await?;
        let (st, pending) = state::state_at(&mut tx, session, &target, self.snapshot_every).await?;
        let at = now();
        let st = serde_json::to_string(&st)?;
        set_head(
            &mut tx,
            session,
            &branch,
            head.version,
            &target.id,
            Some((&st, pending)),
            &at,
        )
        .await?;
        let reason = format!("restore {checkpoint}");
        reflog(
            &mut tx,
            session,
            &branch,
            Some(&head.pos.id),
            &target.id,
            actor,
            &reason,
            &at,
        )
        .await?;
        audit::append(
            &mut tx,
            session,
            actor,
            "restore",
            &json!({"branch": branch, "checkpoint": checkpoint, "old_head": head.pos.id,
                    "new_head": target.id, "saved_as": saved_as}),
        )
        .await?;
        tx.commit().await?;
        Ok(Restored {
            branch,
            old_head: head.pos.id,
            new_head: target.id,
            saved_as,
        })
    }

    /// Returns the newest checkpoint that is not an automatic `before-restore` one, preferring
    /// checkpoints taken on `branch`.
    pub async fn newest_checkpoint(&self, session: &str, branch: &str) -> Result<Checkpoint> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        // dialect: NOT LIKE is ASCII case-insensitive on SQLite: PostgreSQL needs NOT ILIKE for the same matches
        let sql = match conn.dialect() {
            Dialect::Sqlite => {
                "SELECT name, node_id, branch, auto, created_by, created_at FROM refs \
                 WHERE session_id = $1 AND name NOT LIKE 'before-restore-%' \
                 ORDER BY (branch = $2) DESC, created_at DESC, name DESC LIMIT 1"
            }
            Dialect::Postgres => {
                "SELECT name, node_id, branch, auto, created_by, created_at FROM refs \
                 WHERE session_id = $1 AND name NOT ILIKE 'before-restore-%' \
                 ORDER BY (branch = $2) DESC, created_at DESC, name DESC LIMIT 1"
            }
        };
        let row = query(sql)
            .bind(session)
            .bind(branch)
            .fetch_optional(&mut conn)
            .await?
            .ok_or_else(|| Error::not_found("checkpoint to recover from"))?;
        Checkpoint::from_row(&row)
    }

    /// Returns every head move that was not a plain append, newest first.
    pub async fn reflog(&self, session: &str) -> Result<Vec<ReflogEntry>> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        let rows = query(
            "SELECT id, branch, old_head, new_head, actor, reason, at FROM reflog \
             WHERE session_id = $1 ORDER BY id DESC",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?;
        rows.iter().map(ReflogEntry::from_row).collect()
    }

    /// Resolves a branch name, checkpoint name or node id to a node id, in that order.
    pub async fn resolve(&self, session: &str, spec: &str) -> Result<String> {
        let mut conn = self.read().await?;
        resolve_in(&mut conn, session, spec).await
    }
}

pub(crate) async fn resolve_in(conn: &mut Conn, session: &str, spec: &str) -> Result<String> {
    sessions::exists(conn, session).await?;
    if let Ok(b) = branch_in(conn, session, spec).await {
        return Ok(b.head);
    }
    if let Ok(c) = checkpoint_in(conn, session, spec).await {
        return Ok(c.node);
    }
    match pos(conn, session, spec).await {
        Ok(p) => Ok(p.id),
        Err(_) => Err(Error::not_found(format!(
            "branch, checkpoint or node `{spec}`"
        ))),
    }
}
