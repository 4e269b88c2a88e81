//! Merging one branch into another, and diffs between any two points.
//!
//! The merge base is the lowest common ancestor of the two heads (first parents), or, when
//! newer, the head taken by the last merge between the two branches in either direction, so
//! merging again merges only what came since and merging back does not re-open settled
//! conflicts. A merge
//! writes one `merge` node with both parents and a snapshot of the merged state.

use kiln_types::state::words::describe_changes;
use kiln_types::state::{Labels, MergeOutcome, Resolver, StateDiff, ToolMerger, diff, merge};
use kiln_types::{Conflict, NodeId, NodeKind, ResearchState};
use serde::Serialize;
use serde_json::json;

use crate::conn::{Conn, query, query_scalar};
use crate::model::{NODE_COLUMNS, Node};
use crate::tree::{
    Link, NodeInsert, Pos, chain, head_state, insert_node, insert_snapshot, lca, nodes_after,
    on_path, pos, reflog, set_head, slot_after,
};
use crate::{Db, Error, Result, audit, now, refs, state};

mod summary;

/// A merge of branch `from` into branch `into`.
pub struct MergeRequest<'a> {
    pub session: &'a str,
    pub from: &'a str,
    pub into: &'a str,
    /// Per-conflict resolutions and the strategy for the rest.
    pub resolver: &'a Resolver,
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

/// What a merge would do, computed without writing anything.
#[derive(Debug, Clone, Serialize)]
pub struct MergePreview {
    pub from: String,
    pub into: String,
    /// True when there is nothing to merge (already merged, or `from` is behind `into`).
    pub nothing_to_merge: bool,
    /// The merge base node.
    pub base: String,
    /// Every conflict, each with how the choices settle it (no `resolution`: still open).
    pub conflicts: Vec<Conflict>,
    /// How many conflicts are still open: the merge itself would be refused while any is.
    pub open: usize,
    /// The merged state (open conflicts keep ours).
    pub state: ResearchState,
    /// What the merge would change on `into`, one sentence each.
    pub changes: Vec<String>,
    /// The merge node's summary of what `from` explored.
    pub summary: String,
}

/// How many conversation nodes a diff shows per side unless told otherwise.
pub const DIFF_CONVERSATION_DEFAULT: usize = 50;
/// The most conversation nodes a diff shows per side.
pub const DIFF_CONVERSATION_MAX: usize = 500;

#[derive(Debug, Clone, Serialize)]
pub struct DiffResult {
    pub from: String,
    pub to: String,
    /// The common ancestor node.
    pub base: String,
    /// Conversation nodes after the common ancestor on each side, oldest first: the newest
    /// `limit` of them.
    pub only_from: Vec<Node>,
    pub only_to: Vec<Node>,
    /// How many conversation nodes each side has after the ancestor in all.
    pub only_from_total: usize,
    pub only_to_total: usize,
    /// True when a side holds more than was returned.
    pub from_truncated: bool,
    pub to_truncated: bool,
    pub state: StateDiff,
    /// The research-state changes from `from` to `to`, one sentence each.
    pub changes: Vec<String>,
}

/// What a merge computes before writing: either nothing to merge or the outcome.
enum Plan {
    Nothing {
        merge_node: Option<String>,
        base: String,
        head: String,
    },
    Ready(Box<Ready>),
}

struct Ready {
    a: crate::tree::HeadState,
    b: crate::tree::HeadState,
    base: Pos,
    ours: ResearchState,
    outcome: MergeOutcome,
    explored: Vec<Node>,
    summary: String,
}

/// A recorded merge still visible from both heads: `from_head` is a common ancestor.
struct PastMerge {
    id: i64,
    from_head: Pos,
    merge_node: String,
}

/// Returns the last head of `from` merged into `into` that is still on both paths.
async fn last_merged(
    conn: &mut Conn,
    session: &str,
    from: &str,
    into: &str,
    from_chain: &[Link],
    into_chain: &[Link],
) -> Result<Option<PastMerge>> {
    let rows = query(
        "SELECT from_head, merge_node, id FROM merges WHERE session_id = $1 AND into_branch = $2 \
         AND from_branch = $3 ORDER BY id DESC LIMIT 20",
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

/// Works out a merge on `conn` without writing: the base, the merged state and conflicts.
async fn plan(conn: &mut Conn, req: &MergeRequest<'_>, snapshot_every: i64) -> Result<Plan> {
    let (session, from, into) = (req.session, req.from, req.into);
    if from == into {
        return Err(Error::Invalid("cannot merge a branch into itself".into()));
    }
    let a = head_state(conn, session, into).await?;
    let b = head_state(conn, session, from).await?;
    if !a.session_status.accepts_writes() {
        return Err(Error::NotActive(a.session_status));
    }
    if b.status == "discarded" {
        return Err(Error::BranchDiscarded(from.to_string()));
    }
    if a.status == "discarded" {
        return Err(Error::BranchDiscarded(into.to_string()));
    }
    let a_chain = chain(conn, session, a.pos.segment, a.pos.seq).await?;
    let b_chain = chain(conn, session, b.pos.segment, b.pos.seq).await?;
    let previous = last_merged(conn, session, from, into, &b_chain, &a_chain).await?;
    if on_path(&a_chain, &b.pos)
        || previous
            .as_ref()
            .is_some_and(|p| p.from_head.id == b.pos.id)
    {
        return Ok(Plan::Nothing {
            merge_node: previous.map(|p| p.merge_node),
            base: b.pos.id.clone(),
            head: a.pos.id,
        });
    }
    // A merge the other way (`into` merged into `from`) also left a common ancestor: the
    // head of `into` it took, which lies on `into`'s path. The newest such record wins.
    let reverse = last_merged(conn, session, into, from, &a_chain, &b_chain).await?;
    let newest = match (previous, reverse) {
        (Some(p), Some(r)) => Some(if p.id > r.id { p } else { r }),
        (p, r) => p.or(r),
    };
    let fork = lca(conn, session, &a.pos, &b.pos).await?;
    let base = match newest {
        Some(p) if p.from_head.seq > fork.seq => p.from_head,
        _ => fork,
    };
    let (base_state, _) = state::state_at(conn, session, &base, snapshot_every).await?;
    let ours: ResearchState = serde_json::from_str(&a.state)?;
    let theirs: ResearchState = serde_json::from_str(&b.state)?;
    let labels = Labels {
        ours: into,
        theirs: from,
    };
    let outcome = merge(&base_state, &ours, &theirs, req.resolver, labels, req.tools)
        .map_err(Error::BadResolution)?;
    let explored = nodes_after(conn, session, &b_chain, base.seq).await?;
    let summary = summary::summarise(from, &explored, &base_state, &theirs);
    Ok(Plan::Ready(Box::new(Ready {
        a,
        b,
        base,
        ours,
        outcome,
        explored,
        summary,
    })))
}

impl Db {
    /// Shows what merging `from` into `into` with these choices would do; writes nothing.
    pub async fn merge_preview(&self, req: MergeRequest<'_>) -> Result<MergePreview> {
        let mut conn = self.read().await?;
        let plan = plan(&mut conn, &req, self.snapshot_every).await?;
        let (from, into) = (req.from.to_string(), req.into.to_string());
        Ok(match plan {
            Plan::Nothing { base, .. } => {
                let b = head_state(&mut conn, req.session, req.into).await?;
                MergePreview {
                    from,
                    into,
                    nothing_to_merge: true,
                    base,
                    conflicts: Vec::new(),
                    open: 0,
                    state: serde_json::from_str(&b.state)?,
                    changes: Vec::new(),
                    summary: format!(
                        "`{}` has nothing new to merge into `{}`",
                        req.from, req.into
                    ),
                }
            }
            Plan::Ready(r) => MergePreview {
                from,
                into,
                nothing_to_merge: false,
                base: r.base.id.clone(),
                open: r.outcome.open().count(),
                changes: describe_changes(&r.ours, &r.outcome.state, req.tools),
                conflicts: r.outcome.conflicts,
                state: r.outcome.state,
                summary: r.summary,
            },
        })
    }

    /// Merges `from` into `into`; a conflict no resolution or strategy settles fails the
    /// merge with every conflict (settled ones carry their resolution).
    pub async fn merge(&self, req: MergeRequest<'_>) -> Result<MergeResult> {
        let (session, from, into) = (req.session, req.from, req.into);
        let mut tx = self.write().await?;
        let r = match plan(&mut tx, &req, self.snapshot_every).await? {
            Plan::Nothing {
                merge_node,
                base,
                head,
            } => {
                return Ok(MergeResult {
                    merged: false,
                    merge_node,
                    base,
                    head,
                    summary: format!("`{from}` has nothing new to merge into `{into}`"),
                    resolved: Vec::new(),
                });
            }
            Plan::Ready(r) => r,
        };
        if !r.outcome.is_settled() {
            return Err(Error::MergeConflict(r.outcome.conflicts));
        }
        let Ready {
            a,
            b,
            base,
            outcome,
            explored,
            summary,
            ..
        } = *r;
        let now = now();
        let id = NodeId::new().to_string();
        let segment = slot_after(&mut tx, session, &a.pos).await?;
        let data = json!({
            "from_branch": from, "from_head": b.pos.id, "base": base.id,
            "strategy": req.resolver.strategy, "resolutions": req.resolver.by_key,
            "resolved": outcome.conflicts, "nodes_merged": explored.len(),
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
        query(
            "UPDATE branches SET status = 'merged', updated_at = $1 WHERE session_id = $2 AND name = $3",
        )
        .bind(&now)
        .bind(session)
        .bind(from)
        .execute(&mut tx)
        .await?;
        query(
            "INSERT INTO merges (session_id, from_branch, into_branch, from_head, merge_node, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(session)
        .bind(from)
        .bind(into)
        .bind(&b.pos.id)
        .bind(&id)
        .bind(&now)
        .execute(&mut tx)
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
                    "strategy": req.resolver.strategy, "resolved": outcome.conflicts.len()}),
        )
        .await?;
        tx.commit().await?;
        Ok(MergeResult {
            merged: true,
            merge_node: Some(id.clone()),
            base: base.id,
            head: id,
            summary,
            resolved: outcome.conflicts,
        })
    }

    /// Compares two points (branch, checkpoint or node): the newest `limit` conversation
    /// nodes on each side of their common ancestor and the research-state difference, as data
    /// and in words.
    pub async fn diff(
        &self,
        session: &str,
        from: &str,
        to: &str,
        limit: usize,
        tools: &(dyn ToolMerger + Sync),
    ) -> Result<DiffResult> {
        let mut conn = self.read().await?;
        let f = refs::resolve_in(&mut conn, session, from).await?;
        let t = refs::resolve_in(&mut conn, session, to).await?;
        let fp = pos(&mut conn, session, &f).await?;
        let tp = pos(&mut conn, session, &t).await?;
        let base = lca(&mut conn, session, &fp, &tp).await?;
        let fc = chain(&mut conn, session, fp.segment, fp.seq).await?;
        let tc = chain(&mut conn, session, tp.segment, tp.seq).await?;
        let (only_from, only_from_total) =
            conversation_after(&mut conn, session, &fc, base.seq, limit).await?;
        let (only_to, only_to_total) =
            conversation_after(&mut conn, session, &tc, base.seq, limit).await?;
        let (fs, _) = state::state_at(&mut conn, session, &fp, self.snapshot_every).await?;
        let (ts, _) = state::state_at(&mut conn, session, &tp, self.snapshot_every).await?;
        Ok(DiffResult {
            from: f,
            to: t,
            base: base.id,
            from_truncated: only_from_total > only_from.len(),
            to_truncated: only_to_total > only_to.len(),
            only_from,
            only_to,
            only_from_total,
            only_to_total,
            state: diff(&fs, &ts),
            changes: describe_changes(&fs, &ts, tools),
        })
    }
}

/// Returns the newest `limit` conversation nodes on `chain` (a path of `session`) after seq
/// `after` (oldest first) and how many there are in all: newest segment first, each read newest
/// first with a LIMIT, so a long side costs one count per segment, not a read of every node.
async fn conversation_after(
    conn: &mut Conn,
    session: &str,
    chain: &[Link],
    after: i64,
    limit: usize,
) -> Result<(Vec<Node>, usize)> {
    let kinds = NodeKind::ALL
        .iter()
        .filter(|k| k.is_message())
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows_sql = format!(
        "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.segment_id = $2 \
         AND n.seq >= $3 AND n.seq <= $4 AND n.kind IN ({kinds}) ORDER BY n.seq DESC LIMIT $5"
    );
    let count_sql = format!(
        "SELECT COUNT(*) FROM nodes n WHERE n.session_id = $1 AND n.segment_id = $2 \
         AND n.seq >= $3 AND n.seq <= $4 AND n.kind IN ({kinds})"
    );
    let mut newest_first = Vec::new();
    let mut total = 0usize;
    for link in chain {
        if link.upto <= after {
            continue;
        }
        let start = link.start.max(after + 1);
        let n: i64 = query_scalar(sqlx::AssertSqlSafe(count_sql.clone()))
            .bind(session)
            .bind(link.segment)
            .bind(start)
            .bind(link.upto)
            .fetch_one(&mut *conn)
            .await?;
        total += usize::try_from(n).unwrap_or(0);
        let room = limit.saturating_sub(newest_first.len());
        if room == 0 {
            continue;
        }
        let rows = query(sqlx::AssertSqlSafe(rows_sql.clone()))
            .bind(session)
            .bind(link.segment)
            .bind(start)
            .bind(link.upto)
            .bind(i64::try_from(room).unwrap_or(i64::MAX))
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            newest_first.push(Node::from_row(&r)?);
        }
    }
    newest_first.reverse();
    Ok((newest_first, total))
}
