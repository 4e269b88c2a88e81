//! Merging one branch into another, and diffs between any two points.
//!
//! The merge base is the lowest common ancestor of the two heads (first parents), or, when
//! newer, the head taken by the last merge between the two branches in either direction, so
//! merging again merges only what came since and merging back does not re-open settled
//! conflicts. A merge
//! writes one `merge` node with both parents and a snapshot of the merged state.

use kiln_types::state::{StateDiff, ToolMerger, diff, merge};
use kiln_types::{Conflict, MergeStrategy, NodeId, NodeKind};
use serde::Serialize;
use serde_json::json;
use sqlx::{Row, SqliteConnection};

use crate::model::Node;
use crate::tree::{
    NodeInsert, Pos, chain, head_state, insert_node, insert_snapshot, lca, nodes_after, on_path,
    pos, reflog, set_head, slot_after,
};
use crate::{Db, Error, Result, audit, now, refs, state};

mod summary;

/// A merge of branch `from` into branch `into`.
pub struct MergeRequest<'a> {
    pub session: &'a str,
    pub from: &'a str,
    pub into: &'a str,
    pub strategy: MergeStrategy,
    pub actor: &'a str,
    pub tools: &'a (dyn ToolMerger + Sync),
}

#[derive(Debug, Clone, Serialize)]
pub struct MergeResult {
    /// False when there was nothing to merge (already merged, or `from` is behind `into`).
    pub merged: bool,
    pub merge_node: Option<String>,
    pub base: String,
    pub head: String,
    pub summary: String,
    /// Conflicts the strategy settled.
    pub resolved: Vec<Conflict>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffResult {
    pub from: String,
    pub to: String,
    pub base: String,
    /// Conversation nodes after the common ancestor, on each side.
    pub only_from: Vec<Node>,
    pub only_to: Vec<Node>,
    pub state: StateDiff,
}

/// A recorded merge still visible from both heads: `from_head` is a common ancestor.
struct PastMerge {
    id: i64,
    from_head: Pos,
    merge_node: String,
}

/// Returns the last head of `from` merged into `into` that is still on both paths.
async fn last_merged(
    conn: &mut SqliteConnection,
    session: &str,
    from: &str,
    into: &str,
    from_chain: &[crate::tree::Link],
    into_chain: &[crate::tree::Link],
) -> Result<Option<PastMerge>> {
    let rows = sqlx::query(
        "SELECT from_head, merge_node, id FROM merges WHERE session_id = ? AND into_branch = ? \
         AND from_branch = ? ORDER BY id DESC LIMIT 20",
    )
    .bind(session)
    .bind(into)
    .bind(from)
    .fetch_all(&mut *conn)
    .await?;
    for r in rows {
        let fh: String = r.try_get(0)?;
        let mn: String = r.try_get(1)?;
        let fp = pos(conn, session, &fh).await?;
        let mp = pos(conn, session, &mn).await?;
        if on_path(from_chain, &fp) && on_path(into_chain, &mp) {
            return Ok(Some(PastMerge {
                id: r.try_get(2)?,
                from_head: fp,
                merge_node: mn,
            }));
        }
    }
    Ok(None)
}

impl Db {
    /// Merges `from` into `into`; conflicts fail the merge unless a strategy settles them.
    pub async fn merge(&self, req: MergeRequest<'_>) -> Result<MergeResult> {
        let (session, from, into) = (req.session, req.from, req.into);
        if from == into {
            return Err(Error::Invalid("cannot merge a branch into itself".into()));
        }
        let mut tx = self.write().await?;
        let a = head_state(&mut tx, session, into).await?;
        let b = head_state(&mut tx, session, from).await?;
        if !a.session_status.accepts_writes() {
            return Err(Error::NotActive(a.session_status));
        }
        if b.status == "discarded" {
            return Err(Error::BranchDiscarded(from.to_string()));
        }
        if a.status == "discarded" {
            return Err(Error::BranchDiscarded(into.to_string()));
        }
        let a_chain = chain(&mut tx, a.pos.segment, a.pos.seq).await?;
        let b_chain = chain(&mut tx, b.pos.segment, b.pos.seq).await?;
        let previous = last_merged(&mut tx, session, from, into, &b_chain, &a_chain).await?;
        if on_path(&a_chain, &b.pos)
            || previous
                .as_ref()
                .is_some_and(|p| p.from_head.id == b.pos.id)
        {
            return Ok(MergeResult {
                merged: false,
                merge_node: previous.map(|p| p.merge_node),
                base: b.pos.id.clone(),
                head: a.pos.id,
                summary: format!("`{from}` has nothing new to merge into `{into}`"),
                resolved: Vec::new(),
            });
        }
        // A merge the other way (`into` merged into `from`) also left a common ancestor: the
        // head of `into` it took, which lies on `into`'s path. The newest such record wins.
        let reverse = last_merged(&mut tx, session, into, from, &a_chain, &b_chain).await?;
        let newest = match (previous, reverse) {
            (Some(p), Some(r)) => Some(if p.id > r.id { p } else { r }),
            (p, r) => p.or(r),
        };
        let fork = lca(&mut tx, session, &a.pos, &b.pos).await?;
        let base = match newest {
            Some(p) if p.from_head.seq > fork.seq => p.from_head,
            _ => fork,
        };
        let (base_state, _) = state::state_at(&mut tx, &base, self.snapshot_every).await?;
        let ours = serde_json::from_str(&a.state)?;
        let theirs = serde_json::from_str(&b.state)?;
        let outcome = merge(&base_state, &ours, &theirs, req.strategy, from, req.tools)
            .map_err(Error::MergeConflict)?;
        let explored = nodes_after(&mut tx, &b_chain, base.seq).await?;
        let summary = summary::summarise(from, &explored, &base_state, &theirs);
        let now = now();
        let id = NodeId::new().to_string();
        let segment = slot_after(&mut tx, session, &a.pos).await?;
        let data = json!({
            "from_branch": from, "from_head": b.pos.id, "base": base.id,
            "strategy": req.strategy, "resolved": outcome.resolved,
            "nodes_merged": explored.len(),
        });
        insert_node(
            &mut tx,
            &NodeInsert {
                session,
                id: id.clone(),
                segment,
                seq: a.pos.seq + 1,
                parent: Some(&a.pos.id),
                merge_parent: Some(&b.pos.id),
                kind: NodeKind::Merge,
                author: Some(req.actor),
                content: &summary,
                data: Some(data.to_string()),
                tokens: None,
                total_tokens: a.pos.total_tokens,
                created_at: &now,
                parent_hash: a.pos.hash.as_deref(),
                merge_parent_hash: b.pos.hash.as_deref(),
            },
        )
        .await?;
        let st = serde_json::to_string(&outcome.state)?;
        insert_snapshot(&mut tx, session, &id, &st).await?;
        set_head(&mut tx, session, into, a.version, &id, Some((&st, 0)), &now).await?;
        sqlx::query(
            "UPDATE branches SET status = 'merged', updated_at = ? WHERE session_id = ? AND name = ?",
        )
        .bind(&now)
        .bind(session)
        .bind(from)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO merges (session_id, from_branch, into_branch, from_head, merge_node, at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(session)
        .bind(from)
        .bind(into)
        .bind(&b.pos.id)
        .bind(&id)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        reflog(
            &mut tx,
            session,
            into,
            Some(&a.pos.id),
            &id,
            req.actor,
            &format!("merge {from}"),
            &now,
        )
        .await?;
        audit::append(
            &mut tx,
            session,
            req.actor,
            "merge",
            &json!({"from": from, "into": into, "merge_node": id, "base": base.id,
                    "strategy": req.strategy, "resolved": outcome.resolved.len()}),
        )
        .await?;
        tx.commit().await?;
        Ok(MergeResult {
            merged: true,
            merge_node: Some(id.clone()),
            base: base.id,
            head: id,
            summary,
            resolved: outcome.resolved,
        })
    }

    /// Compares two points (branch, checkpoint or node): conversation on each side of their
    /// common ancestor and the research-state difference.
    pub async fn diff(&self, session: &str, from: &str, to: &str) -> Result<DiffResult> {
        let mut conn = self.read().await?;
        let f = refs::resolve_in(&mut conn, session, from).await?;
        let t = refs::resolve_in(&mut conn, session, to).await?;
        let fp = pos(&mut conn, session, &f).await?;
        let tp = pos(&mut conn, session, &t).await?;
        let base = lca(&mut conn, session, &fp, &tp).await?;
        let fc = chain(&mut conn, fp.segment, fp.seq).await?;
        let tc = chain(&mut conn, tp.segment, tp.seq).await?;
        let is_conv = |n: &Node| n.kind.is_message();
        let only_from = nodes_after(&mut conn, &fc, base.seq)
            .await?
            .into_iter()
            .filter(is_conv)
            .collect();
        let only_to = nodes_after(&mut conn, &tc, base.seq)
            .await?
            .into_iter()
            .filter(is_conv)
            .collect();
        let (fs, _) = state::state_at(&mut conn, &fp, self.snapshot_every).await?;
        let (ts, _) = state::state_at(&mut conn, &tp, self.snapshot_every).await?;
        Ok(DiffResult {
            from: f,
            to: t,
            base: base.id,
            only_from,
            only_to,
            state: diff(&fs, &ts),
        })
    }
}
