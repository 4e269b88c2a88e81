//! The structural points of a session's branch tree for drawing it: each branch's fork base
//! and head (with the branch it forked from), every recorded merge and every checkpoint, each
//! with its depth. Four indexed reads and an in-memory walk of the segments, whatever the
//! number of messages.

use std::collections::HashMap;

use serde::Serialize;

use crate::conn::query;
use crate::tree::{Link, Pos, on_path};
use crate::{Db, Result, sessions};

/// A node of the graph: its id and depth from the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphPoint {
    pub node: String,
    pub seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphBranch {
    pub name: String,
    /// `open`, `merged` or `discarded`.
    pub status: String,
    pub head: GraphPoint,
    /// The node the branch was created at.
    pub base: GraphPoint,
    /// The earliest-created other branch whose path holds the base (none for the first).
    pub parent: Option<String>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphMerge {
    pub from: String,
    pub into: String,
    /// The head of `from` that was merged.
    pub from_head: GraphPoint,
    /// The merge node written on `into`.
    pub merge_node: GraphPoint,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphCheckpoint {
    pub name: String,
    pub node: GraphPoint,
    /// The branch it was taken on, or else the earliest branch whose path holds it.
    pub branch: Option<String>,
    pub auto: bool,
}

/// Everything needed to draw a session's branches, in creation order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BranchGraph {
    pub branches: Vec<GraphBranch>,
    pub merges: Vec<GraphMerge>,
    pub checkpoints: Vec<GraphCheckpoint>,
}

/// Returns the path of `(segment, seq)` from the in-memory segment table.
fn chain_of(
    segments: &HashMap<i64, (Option<i64>, Option<i64>)>,
    segment: i64,
    seq: i64,
) -> Vec<Link> {
    let mut links = Vec::new();
    let (mut at, mut upto) = (Some(segment), seq);
    while let Some(id) = at {
        let Some(&(parent, fork)) = segments.get(&id) else {
            break;
        };
        links.push(Link {
            segment: id,
            start: fork.map_or(0, |f| f + 1),
            upto,
        });
        upto = fork.unwrap_or(-1);
        at = parent;
        if links.len() > segments.len() {
            break; // a cycle cannot happen; never loop on a corrupt table
        }
    }
    links
}

fn at(segment: i64, seq: i64) -> Pos {
    Pos {
        id: String::new(),
        segment,
        seq,
        total_tokens: 0,
        hash: None,
    }
}

impl Db {
    /// Returns the structural points of a session's branch tree.
    pub async fn branch_graph(&self, session: &str) -> Result<BranchGraph> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        let segments: HashMap<i64, (Option<i64>, Option<i64>)> =
            query("SELECT id, parent_segment, fork_seq FROM segments WHERE session_id = $1")
                .bind(session)
                .fetch_all(&mut conn)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?))))
                .collect::<Result<_>>()?;
        let rows = query(
            "SELECT b.name, b.status, b.created_at, b.head_id, h.segment_id, h.seq, \
                    b.base_id, s.segment_id, s.seq \
             FROM branches b \
             JOIN nodes h ON h.session_id = b.session_id AND h.id = b.head_id \
             JOIN nodes s ON s.session_id = b.session_id AND s.id = b.base_id \
             WHERE b.session_id = $1 ORDER BY b.created_at, b.name",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?;
        let mut branches = Vec::with_capacity(rows.len());
        let mut paths = Vec::with_capacity(rows.len());
        let mut bases = Vec::with_capacity(rows.len());
        for r in &rows {
            let (hseg, hseq): (i64, i64) = (r.try_get(4)?, r.try_get(5)?);
            paths.push(chain_of(&segments, hseg, hseq));
            bases.push(at(r.try_get(7)?, r.try_get(8)?));
            branches.push(GraphBranch {
                name: r.try_get(0)?,
                status: r.try_get(1)?,
                created_at: r.try_get(2)?,
                head: GraphPoint {
                    node: r.try_get(3)?,
                    seq: hseq,
                },
                base: GraphPoint {
                    node: r.try_get(6)?,
                    seq: r.try_get(8)?,
                },
                parent: None,
            });
        }
        for i in 0..branches.len() {
            branches[i].parent = (0..i)
                .find(|&j| on_path(&paths[j], &bases[i]))
                .map(|j| branches[j].name.clone());
        }
        let merges = query(
            "SELECT m.from_branch, m.into_branch, m.from_head, f.seq, m.merge_node, n.seq \
             FROM merges m \
             JOIN nodes f ON f.session_id = m.session_id AND f.id = m.from_head \
             JOIN nodes n ON n.session_id = m.session_id AND n.id = m.merge_node \
             WHERE m.session_id = $1 ORDER BY m.id",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| {
            Ok(GraphMerge {
                from: r.try_get(0)?,
                into: r.try_get(1)?,
                from_head: GraphPoint {
                    node: r.try_get(2)?,
                    seq: r.try_get(3)?,
                },
                merge_node: GraphPoint {
                    node: r.try_get(4)?,
                    seq: r.try_get(5)?,
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let mut checkpoints = Vec::new();
        for r in query(
            "SELECT r.name, r.node_id, n.segment_id, n.seq, r.branch, r.auto \
             FROM refs r JOIN nodes n ON n.session_id = r.session_id AND n.id = r.node_id \
             WHERE r.session_id = $1 ORDER BY n.seq, r.name",
        )
        .bind(session)
        .fetch_all(&mut conn)
        .await?
        {
            let p = at(r.try_get(2)?, r.try_get(3)?);
            let named: Option<String> = r.try_get(4)?;
            let holds = |name: &str| {
                branches
                    .iter()
                    .position(|b| b.name == name)
                    .is_some_and(|i| on_path(&paths[i], &p))
            };
            let branch = match named {
                Some(n) if holds(&n) => Some(n),
                _ => (0..branches.len())
                    .find(|&i| on_path(&paths[i], &p))
                    .map(|i| branches[i].name.clone()),
            };
            checkpoints.push(GraphCheckpoint {
                name: r.try_get(0)?,
                node: GraphPoint {
                    node: r.try_get(1)?,
                    seq: p.seq,
                },
                branch,
                auto: r.flag(5)?,
            });
        }
        Ok(BranchGraph {
            branches,
            merges,
            checkpoints,
        })
    }
}
