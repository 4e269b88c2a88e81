//! Export of a whole session as one JSON document, and import as a new session.
//!
//! Import checks the document's structure (tree shape, references, state events, audit chain)
//! before writing, and writes everything in one transaction: a bad file writes nothing.

use std::collections::{HashMap, HashSet};

use kiln_types::{NodeKind, ResearchState, SessionId, StateEvent};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use crate::audit::{self, AuditEntry};
use crate::model::{Branch, Checkpoint, ReflogEntry, Session, SessionEvent};
use crate::{Db, Error, Result, now, sessions};

pub const EXPORT_FORMAT: &str = "kiln-session";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportSegment {
    pub id: i64,
    pub parent: Option<i64>,
    pub fork_seq: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportNode {
    pub id: String,
    pub segment: i64,
    pub seq: i64,
    pub parent_id: Option<String>,
    #[serde(default)]
    pub merge_parent_id: Option<String>,
    pub kind: NodeKind,
    pub author: Option<String>,
    pub content: String,
    #[serde(default)]
    pub data: Option<Value>,
    #[serde(default)]
    pub tokens: Option<i64>,
    #[serde(default)]
    pub total_tokens: Option<i64>,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportBranch {
    #[serde(flatten)]
    pub branch: Branch,
    /// The state at the head (informative: import recomputes it).
    #[serde(default)]
    pub state: ResearchState,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportMerge {
    pub from_branch: String,
    pub into_branch: String,
    pub from_head: String,
    pub merge_node: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportSnapshot {
    pub node: String,
    pub state: ResearchState,
}

/// Everything in a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionExport {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
    pub session: Session,
    pub segments: Vec<ExportSegment>,
    pub nodes: Vec<ExportNode>,
    pub branches: Vec<ExportBranch>,
    pub checkpoints: Vec<Checkpoint>,
    pub reflog: Vec<ReflogEntry>,
    pub merges: Vec<ExportMerge>,
    pub snapshots: Vec<ExportSnapshot>,
    pub events: Vec<SessionEvent>,
    pub audit: Vec<AuditEntry>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("import: {}", msg.into()))
}

impl SessionExport {
    /// Checks the document's internal consistency; names the first problem found.
    pub fn check(&self) -> Result<()> {
        if self.format != EXPORT_FORMAT {
            return Err(bad(format!(
                "format is `{}`, expected `{EXPORT_FORMAT}`",
                self.format
            )));
        }
        if self.version != 1 {
            return Err(bad(format!(
                "version {} is not supported (1 is)",
                self.version
            )));
        }
        let segs: HashMap<i64, &ExportSegment> = self.segments.iter().map(|s| (s.id, s)).collect();
        if segs.len() != self.segments.len() {
            return Err(bad("segment ids repeat"));
        }
        for s in &self.segments {
            match (s.parent, s.fork_seq) {
                (None, None) => {}
                (Some(p), Some(_)) if segs.contains_key(&p) && p != s.id => {}
                _ => {
                    return Err(bad(format!(
                        "segment {} has a missing or inconsistent parent",
                        s.id
                    )));
                }
            }
        }
        let nodes: HashMap<&str, &ExportNode> =
            self.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        if nodes.len() != self.nodes.len() {
            return Err(bad("node ids repeat"));
        }
        let mut slots = HashSet::new();
        let mut roots = 0;
        for n in &self.nodes {
            let seg = segs
                .get(&n.segment)
                .ok_or_else(|| bad(format!("node {} is in unknown segment {}", n.id, n.segment)))?;
            if !slots.insert((n.segment, n.seq)) {
                return Err(bad(format!(
                    "two nodes at seq {} of segment {}",
                    n.seq, n.segment
                )));
            }
            match &n.parent_id {
                None => {
                    if n.kind != NodeKind::Root || n.seq != 0 || seg.parent.is_some() {
                        return Err(bad(format!(
                            "node {} has no parent but is not the root",
                            n.id
                        )));
                    }
                    roots += 1;
                }
                Some(p) => {
                    let parent = nodes
                        .get(p.as_str())
                        .ok_or_else(|| bad(format!("node {} has unknown parent {p}", n.id)))?;
                    let same_segment = parent.segment == n.segment;
                    let fork_point =
                        seg.parent == Some(parent.segment) && seg.fork_seq == Some(parent.seq);
                    if parent.seq + 1 != n.seq || !(same_segment || fork_point) {
                        return Err(bad(format!("node {} does not follow its parent {p}", n.id)));
                    }
                }
            }
            if let Some(m) = &n.merge_parent_id
                && !nodes.contains_key(m.as_str())
            {
                return Err(bad(format!(
                    "merge node {} has unknown second parent {m}",
                    n.id
                )));
            }
            if n.kind.is_state() && n.kind != NodeKind::Merge {
                let data = n
                    .data
                    .clone()
                    .ok_or_else(|| bad(format!("state node {} has no data", n.id)))?;
                serde_json::from_value::<StateEvent>(data)
                    .map_err(|e| bad(format!("state node {} is not a valid event: {e}", n.id)))?;
            }
        }
        if roots != 1 {
            return Err(bad(format!(
                "expected exactly one root node, found {roots}"
            )));
        }
        let snaps: HashSet<&str> = self.snapshots.iter().map(|s| s.node.as_str()).collect();
        for s in &self.snapshots {
            if !nodes.contains_key(s.node.as_str()) {
                return Err(bad(format!("snapshot of unknown node {}", s.node)));
            }
        }
        for n in self.nodes.iter().filter(|n| n.kind == NodeKind::Merge) {
            if !snaps.contains(n.id.as_str()) {
                return Err(bad(format!("merge node {} has no state snapshot", n.id)));
            }
        }
        let mut names = HashSet::new();
        for b in &self.branches {
            crate::tree::check_name("branch", &b.branch.name)?;
            if !names.insert(b.branch.name.as_str()) {
                return Err(bad(format!("branch `{}` appears twice", b.branch.name)));
            }
            for id in [&b.branch.head, &b.branch.base] {
                if !nodes.contains_key(id.as_str()) {
                    return Err(bad(format!(
                        "branch `{}` points at unknown node {id}",
                        b.branch.name
                    )));
                }
            }
            if !["open", "merged", "discarded"].contains(&b.branch.status.as_str()) {
                return Err(bad(format!(
                    "branch `{}` has unknown status",
                    b.branch.name
                )));
            }
        }
        if !names.contains(self.session.default_branch.as_str()) {
            return Err(bad(format!(
                "default branch `{}` is missing",
                self.session.default_branch
            )));
        }
        for c in &self.checkpoints {
            if !nodes.contains_key(c.node.as_str()) {
                return Err(bad(format!(
                    "checkpoint `{}` points at unknown node",
                    c.name
                )));
            }
        }
        for m in &self.merges {
            if !nodes.contains_key(m.from_head.as_str())
                || !nodes.contains_key(m.merge_node.as_str())
            {
                return Err(bad("a merge record points at unknown nodes"));
            }
        }
        let v = audit::verify(&self.audit);
        if !v.valid {
            return Err(bad(format!(
                "audit chain broken at entry {}: {}",
                v.first_broken.unwrap_or(0),
                v.reason.unwrap_or_default()
            )));
        }
        Ok(())
    }
}

impl Db {
    /// Reads everything in a session.
    pub async fn export(&self, id: &str) -> Result<SessionExport> {
        let mut conn = self.read().await?;
        let session = sessions::get_in(&mut conn, id).await?;
        let segments = sqlx::query(
            "SELECT id, parent_segment, fork_seq FROM segments WHERE session_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            Ok(ExportSegment {
                id: r.try_get(0)?,
                parent: r.try_get(1)?,
                fork_seq: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let nodes = sqlx::query(
            "SELECT id, segment_id, seq, parent_id, merge_parent_id, kind, author, content, data, \
             tokens, total_tokens, created_at FROM nodes WHERE session_id = ? ORDER BY segment_id, seq",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let kind: &str = r.try_get(5)?;
            let data: Option<&str> = r.try_get(8)?;
            Ok(ExportNode {
                id: r.try_get(0)?,
                segment: r.try_get(1)?,
                seq: r.try_get(2)?,
                parent_id: r.try_get(3)?,
                merge_parent_id: r.try_get(4)?,
                kind: kind.parse().map_err(Error::Invalid)?,
                author: r.try_get(6)?,
                content: r.try_get(7)?,
                data: data.map(serde_json::from_str).transpose()?,
                tokens: r.try_get(9)?,
                total_tokens: r.try_get(10)?,
                created_at: r.try_get(11)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let mut branches = Vec::new();
        for r in sqlx::query(
            "SELECT name, head_id, base_id, status, version, created_by, created_at, updated_at, state \
             FROM branches WHERE session_id = ? ORDER BY created_at, name",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        {
            let state: &str = r.try_get(8)?;
            branches.push(ExportBranch { branch: Branch::from_row(&r)?, state: serde_json::from_str(state)? });
        }
        let merges = sqlx::query("SELECT from_branch, into_branch, from_head, merge_node, at FROM merges WHERE session_id = ? ORDER BY id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| Ok(ExportMerge { from_branch: r.try_get(0)?, into_branch: r.try_get(1)?, from_head: r.try_get(2)?, merge_node: r.try_get(3)?, at: r.try_get(4)? }))
            .collect::<Result<Vec<_>>>()?;
        let snapshots = sqlx::query(
            "SELECT node_id, state FROM state_snapshots WHERE session_id = ? ORDER BY node_id",
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|r| {
            let s: &str = r.try_get(1)?;
            Ok(ExportSnapshot {
                node: r.try_get(0)?,
                state: serde_json::from_str(s)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let audit = audit::entries(&mut conn, id).await?;
        drop(conn);
        Ok(SessionExport {
            format: EXPORT_FORMAT.into(),
            version: 1,
            exported_at: now(),
            session,
            segments,
            nodes,
            branches,
            checkpoints: self.checkpoints(id).await?,
            reflog: self.reflog(id).await?,
            merges,
            snapshots,
            events: self.session_events(id).await?,
            audit,
        })
    }

    /// Imports an export as a new session owned by `owner`; writes nothing if the file is bad.
    pub async fn import(&self, doc: &SessionExport, owner: &str, actor: &str) -> Result<Session> {
        doc.check()?;
        let id = SessionId::new().to_string();
        let s = &doc.session;
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, owner_id, name, description, session_type, status, project, \
             tags, metadata, config, template, default_branch, version, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
        )
        .bind(&id)
        .bind(owner)
        .bind(&s.name)
        .bind(&s.description)
        .bind(s.session_type.as_str())
        .bind(s.status.as_str())
        .bind(&s.project)
        .bind(serde_json::to_string(&s.tags)?)
        .bind(s.metadata.to_string())
        .bind(serde_json::to_string(&s.config)?)
        .bind(&s.template)
        .bind(&s.default_branch)
        .bind(&s.created_at)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        // Segments get new ids, parents first.
        let mut map: HashMap<i64, i64> = HashMap::new();
        let mut left: Vec<&ExportSegment> = doc.segments.iter().collect();
        while !left.is_empty() {
            let before = left.len();
            let mut rest = Vec::new();
            for seg in left {
                let parent = match seg.parent {
                    None => None,
                    Some(p) => match map.get(&p) {
                        Some(&np) => Some(np),
                        None => {
                            rest.push(seg);
                            continue;
                        }
                    },
                };
                let new_id: i64 = sqlx::query_scalar(
                    "INSERT INTO segments (session_id, parent_segment, fork_seq) VALUES (?, ?, ?) RETURNING id",
                )
                .bind(&id)
                .bind(parent)
                .bind(seg.fork_seq)
                .fetch_one(&mut *tx)
                .await?;
                map.insert(seg.id, new_id);
            }
            if rest.len() == before {
                return Err(bad("segments form a cycle"));
            }
            left = rest;
        }
        for n in &doc.nodes {
            sqlx::query(
                "INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, merge_parent_id, kind, \
                 is_state, author, content, data, tokens, total_tokens, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&n.id)
            .bind(&id)
            .bind(map[&n.segment])
            .bind(n.seq)
            .bind(&n.parent_id)
            .bind(&n.merge_parent_id)
            .bind(n.kind.as_str())
            .bind(n.kind.is_state())
            .bind(&n.author)
            .bind(&n.content)
            .bind(n.data.as_ref().map(|d| d.to_string()))
            .bind(n.tokens)
            .bind(n.total_tokens)
            .bind(&n.created_at)
            .execute(&mut *tx)
            .await?;
        }
        for snap in &doc.snapshots {
            crate::tree::insert_snapshot(
                &mut tx,
                &id,
                &snap.node,
                &serde_json::to_string(&snap.state)?,
            )
            .await?;
        }
        for b in &doc.branches {
            let b = &b.branch;
            let head = crate::tree::pos(&mut tx, &id, &b.head).await?;
            let (st, pending) = crate::state::state_at(&mut tx, &head, self.snapshot_every).await?;
            sqlx::query(
                "INSERT INTO branches (session_id, name, head_id, base_id, status, version, state, \
                 state_pending, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(&b.name)
            .bind(&b.head)
            .bind(&b.base)
            .bind(&b.status)
            .bind(serde_json::to_string(&st)?)
            .bind(pending)
            .bind(&b.created_by)
            .bind(&b.created_at)
            .bind(&b.updated_at)
            .execute(&mut *tx)
            .await?;
        }
        for c in &doc.checkpoints {
            sqlx::query(
                "INSERT INTO refs (session_id, name, node_id, branch, auto, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&id)
            .bind(&c.name)
            .bind(&c.node)
            .bind(&c.branch)
            .bind(c.auto)
            .bind(&c.created_by)
            .bind(&c.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|_| bad(format!("checkpoint `{}` appears twice", c.name)))?;
        }
        for r in doc.reflog.iter().rev() {
            crate::tree::reflog(
                &mut tx,
                &id,
                &r.branch,
                r.old_head.as_deref(),
                &r.new_head,
                &r.actor,
                &r.reason,
                &r.at,
            )
            .await?;
        }
        for m in &doc.merges {
            sqlx::query("INSERT INTO merges (session_id, from_branch, into_branch, from_head, merge_node, at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&id)
                .bind(&m.from_branch)
                .bind(&m.into_branch)
                .bind(&m.from_head)
                .bind(&m.merge_node)
                .bind(&m.at)
                .execute(&mut *tx)
                .await?;
        }
        for e in &doc.events {
            sqlx::query("INSERT INTO session_events (session_id, from_status, to_status, actor, reason, at) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(&id)
                .bind(e.from.map(|s| s.as_str()))
                .bind(e.to.as_str())
                .bind(&e.actor)
                .bind(&e.reason)
                .bind(&e.at)
                .execute(&mut *tx)
                .await?;
        }
        for a in &doc.audit {
            sqlx::query("INSERT INTO audit_log (session_id, seq, actor, action, payload, at, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&id)
                .bind(a.seq)
                .bind(&a.actor)
                .bind(&a.action)
                .bind(a.payload.to_string())
                .bind(&a.at)
                .bind(&a.prev_hash)
                .bind(&a.hash)
                .execute(&mut *tx)
                .await?;
        }
        audit::append(
            &mut tx,
            &id,
            actor,
            "session.import",
            &json!({"source": s.id}),
        )
        .await?;
        let out = sessions::get_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(out)
    }
}
