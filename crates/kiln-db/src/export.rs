//! Export of a whole session as one JSON document, its signature, and the checks an import
//! runs before writing anything: structure, names and text (the same rules as creating them),
//! and a replay of the events against every snapshot and branch state (`replay.rs`). Writing
//! an import is `import.rs`.

mod import;
mod replay;

use std::collections::{HashMap, HashSet};

use kiln_types::{NodeKind, ResearchState, StateEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{self, AuditEntry};
use crate::conn::query;
use crate::integrity::{self, ExportSignature, InstanceKey, PublicKey, Trust};
use crate::model::{Branch, Checkpoint, ReflogEntry, Session, SessionEvent};
use crate::{Db, Error, Result, now, sessions};

pub(crate) use import::delete_rows;
pub use import::{ImportOptions, Provenance};

pub const EXPORT_FORMAT: &str = "kiln-session";

/// The largest node content an import stores: the largest message an append takes.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The longest free text (reasons, actions, actor ids) in the records around the tree.
const MAX_LABEL_BYTES: usize = 1000;

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
    /// The node's hash in the exporting store's chain (64 hex digits); import recomputes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportBranch {
    #[serde(flatten)]
    pub branch: Branch,
    /// The state at the head: import checks it against a replay of the events.
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
    /// Metric track points, which the notebook state names by batch (left out when there are
    /// none, so exports made before tracks existed keep their digest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracks: Vec<ExportTrackBatch>,
    /// The exporting instance's signature over everything else (see [`SessionExport::digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<ExportSignature>,
}

/// One appended batch of metric-track points, with its stored chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportTrackBatch {
    pub batch: i64,
    pub track: String,
    pub count: i64,
    pub stats: Value,
    pub min_step: Option<f64>,
    pub max_step: Option<f64>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub chunks: Vec<ExportTrackChunk>,
}

/// Up to 1,000 points of a batch as stored (`{"fields": [...], "rows": [[...], ...]}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportTrackChunk {
    pub chunk: i64,
    pub count: i64,
    pub min_step: Option<f64>,
    pub max_step: Option<f64>,
    pub points: Value,
}

/// A document that passed [`SessionExport::check`]: the only thing [`Db::import`] writes.
#[derive(Debug, Clone)]
pub struct CheckedExport(SessionExport);

impl CheckedExport {
    pub fn doc(&self) -> &SessionExport {
        &self.0
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Invalid(format!("import: {}", msg.into()))
}

/// An RFC 3339 time (what the store writes), so date arithmetic on it is defined.
fn check_time(what: &str, t: &str) -> Result<()> {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(_) if t.len() <= 64 => Ok(()),
        _ => Err(bad(format!("{what} `{}` is not an RFC 3339 time", clip(t)))),
    }
}

/// A short label (actor, reason, action): at most 1000 bytes, no control characters.
fn check_label(what: &str, v: &str) -> Result<()> {
    if v.len() > MAX_LABEL_BYTES || v.chars().any(char::is_control) {
        return Err(bad(format!(
            "{what} must be at most {MAX_LABEL_BYTES} bytes without control characters"
        )));
    }
    Ok(())
}

/// The start of a value for an error message.
fn clip(v: &str) -> String {
    let mut out: String = v.chars().take(40).filter(|c| !c.is_control()).collect();
    if v.chars().count() > 40 {
        out.push('…');
    }
    out
}

impl SessionExport {
    /// Checks the document's internal consistency and content, and replays its events against
    /// every snapshot and branch state; names the first problem found.
    pub fn check(&self) -> Result<()> {
        self.check_structure()?;
        self.check_records()?;
        replay::check(self)
    }

    /// Runs [`SessionExport::check`] and keeps the proof that it passed.
    pub fn checked(self) -> Result<CheckedExport> {
        self.check()?;
        Ok(CheckedExport(self))
    }

    /// SHA-256 of the document's canonical JSON without its `signature` field.
    pub fn digest(&self) -> Result<[u8; 32]> {
        let mut v = serde_json::to_value(self)?;
        if let Some(o) = v.as_object_mut() {
            o.remove("signature");
        }
        Ok(integrity::canonical_digest(&v))
    }

    /// Signs the document with this instance's key.
    pub fn sign(&mut self, key: &InstanceKey) -> Result<()> {
        self.signature = None;
        self.signature = Some(key.sign(&self.digest()?));
        Ok(())
    }

    /// Whether the document is signed, unchanged since, by one of the `trusted` keys.
    pub fn trust(&self, trusted: &[PublicKey]) -> Result<Trust> {
        Ok(match &self.signature {
            None => Trust::Unverified {
                reason: "the export is not signed".into(),
            },
            Some(sig) => sig.trust(&self.digest()?, trusted),
        })
    }

    /// Track batches: numbered once each, their chunks once each, points as stored.
    fn check_tracks(&self) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for b in &self.tracks {
            if b.batch < 1 || !seen.insert(b.batch) {
                return Err(bad(format!(
                    "track batch {} is not a new positive number",
                    b.batch
                )));
            }
            check_label("a track name", &b.track)?;
            let mut chunks = std::collections::HashSet::new();
            for c in &b.chunks {
                if !chunks.insert(c.chunk) || c.count < 0 {
                    return Err(bad(format!(
                        "track batch {}: chunk {} is repeated or negative",
                        b.batch, c.chunk
                    )));
                }
                if !c.points.get("rows").is_some_and(Value::is_array)
                    || !c.points.get("fields").is_some_and(Value::is_array)
                {
                    return Err(bad(format!(
                        "track batch {}: chunk {} needs `fields` and `rows`",
                        b.batch, c.chunk
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_structure(&self) -> Result<()> {
        self.check_tracks()?;
        if self.format != EXPORT_FORMAT {
            return Err(bad(format!(
                "format is `{}`, expected `{EXPORT_FORMAT}`",
                clip(&self.format)
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
                (Some(p), Some(f)) if segs.contains_key(&p) && p != s.id && f >= 0 => {}
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
            check_label("a node id", &n.id)?;
            if n.id.is_empty() || n.id.len() > 64 {
                return Err(bad(format!("node id `{}` must be 1-64 bytes", clip(&n.id))));
            }
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
                    let parent = nodes.get(p.as_str()).ok_or_else(|| {
                        bad(format!("node {} has unknown parent {}", n.id, clip(p)))
                    })?;
                    let same_segment = parent.segment == n.segment;
                    let fork_point =
                        seg.parent == Some(parent.segment) && seg.fork_seq == Some(parent.seq);
                    if parent.seq.checked_add(1) != Some(n.seq) || !(same_segment || fork_point) {
                        return Err(bad(format!("node {} does not follow its parent {p}", n.id)));
                    }
                }
            }
            if n.kind == NodeKind::Root && n.parent_id.is_some() {
                return Err(bad(format!("root node {} has a parent", n.id)));
            }
            match (&n.merge_parent_id, n.kind) {
                (Some(m), NodeKind::Merge) if nodes.contains_key(m.as_str()) => {}
                (Some(m), NodeKind::Merge) => {
                    return Err(bad(format!(
                        "merge node {} has unknown second parent {}",
                        n.id,
                        clip(m)
                    )));
                }
                (None, NodeKind::Merge) => {
                    return Err(bad(format!("merge node {} has no second parent", n.id)));
                }
                (Some(_), _) => {
                    return Err(bad(format!(
                        "node {} has a second parent but is not a merge",
                        n.id
                    )));
                }
                (None, _) => {}
            }
            if n.kind.is_state() && n.kind != NodeKind::Merge {
                let data = n
                    .data
                    .clone()
                    .ok_or_else(|| bad(format!("state node {} has no data", n.id)))?;
                let event = serde_json::from_value::<StateEvent>(data)
                    .map_err(|e| bad(format!("state node {} is not a valid event: {e}", n.id)))?;
                if event.node_kind() != n.kind {
                    return Err(bad(format!(
                        "state node {} records a `{}` event as `{}`",
                        n.id,
                        event.node_kind(),
                        n.kind
                    )));
                }
            }
        }
        if roots != 1 {
            return Err(bad(format!(
                "expected exactly one root node, found {roots}"
            )));
        }
        let mut snaps = HashSet::new();
        for s in &self.snapshots {
            if !nodes.contains_key(s.node.as_str()) {
                return Err(bad(format!("snapshot of unknown node {}", clip(&s.node))));
            }
            if !snaps.insert(s.node.as_str()) {
                return Err(bad(format!("two snapshots of node {}", s.node)));
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
                        "branch `{}` points at unknown node {}",
                        b.branch.name,
                        clip(id)
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
                clip(&self.session.default_branch)
            )));
        }
        let mut checkpoints = HashSet::new();
        for c in &self.checkpoints {
            crate::tree::check_name("checkpoint", &c.name)?;
            if !checkpoints.insert(c.name.as_str()) {
                return Err(bad(format!("checkpoint `{}` appears twice", c.name)));
            }
            if !nodes.contains_key(c.node.as_str()) {
                return Err(bad(format!(
                    "checkpoint `{}` points at unknown node",
                    c.name
                )));
            }
            if let Some(b) = &c.branch {
                crate::tree::check_name("branch", b)?;
            }
        }
        for m in &self.merges {
            if !nodes.contains_key(m.from_head.as_str())
                || !nodes.contains_key(m.merge_node.as_str())
            {
                return Err(bad("a merge record points at unknown nodes"));
            }
            crate::tree::check_name("branch", &m.from_branch)?;
            crate::tree::check_name("branch", &m.into_branch)?;
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

    /// Sizes, labels and times of everything stored beside the tree. (The session's own
    /// fields are checked by the session manager with the rules that create and update use.)
    fn check_records(&self) -> Result<()> {
        let s = &self.session;
        check_time("session created_at", &s.created_at)?;
        check_time("session updated_at", &s.updated_at)?;
        if let Some(t) = &s.template {
            crate::tree::check_name("template", t)?;
        }
        for n in &self.nodes {
            if n.content.len() > MAX_MESSAGE_BYTES {
                return Err(bad(format!(
                    "node {} is larger than {MAX_MESSAGE_BYTES} bytes",
                    n.id
                )));
            }
            if let Some(a) = &n.author {
                check_label("an author", a)?;
            }
            if n.tokens.is_some_and(|t| t < 0) || n.total_tokens.is_some_and(|t| t < 0) {
                return Err(bad(format!("node {} has a negative token count", n.id)));
            }
            check_time("a node's created_at", &n.created_at)?;
        }
        for b in &self.branches {
            let b = &b.branch;
            check_time("a branch's created_at", &b.created_at)?;
            check_time("a branch's updated_at", &b.updated_at)?;
            if let Some(by) = &b.created_by {
                check_label("created_by", by)?;
            }
        }
        for c in &self.checkpoints {
            check_time("a checkpoint's created_at", &c.created_at)?;
            if let Some(by) = &c.created_by {
                check_label("created_by", by)?;
            }
        }
        for r in &self.reflog {
            crate::tree::check_name("branch", &r.branch)?;
            check_label("a reflog actor", &r.actor)?;
            check_label("a reflog reason", &r.reason)?;
            check_time("a reflog time", &r.at)?;
        }
        for m in &self.merges {
            check_time("a merge time", &m.at)?;
        }
        for e in &self.events {
            check_label("an event actor", &e.actor)?;
            check_label("an event reason", &e.reason)?;
            check_time("an event time", &e.at)?;
        }
        for a in &self.audit {
            check_label("an audit actor", &a.actor)?;
            check_label("an audit action", &a.action)?;
            check_time("an audit time", &a.at)?;
        }
        Ok(())
    }
}

impl Db {
    /// Reads everything in a session (unsigned: see [`SessionExport::sign`]).
    pub async fn export(&self, id: &str) -> Result<SessionExport> {
        let mut conn = self.read().await?;
        let session = sessions::get_in(&mut conn, id).await?;
        let segments = query(
            "SELECT id, parent_segment, fork_seq FROM segments WHERE session_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut conn)
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
        let nodes = query(
            "SELECT id, segment_id, seq, parent_id, merge_parent_id, kind, author, content, data, \
             tokens, total_tokens, created_at, hash FROM nodes WHERE session_id = $1 ORDER BY segment_id, seq",
        )
        .bind(id)
        .fetch_all(&mut conn)
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
                hash: r.try_get::<Option<Vec<u8>>, _>(12)?.map(hex::encode),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let mut branches = Vec::new();
        for r in query(
            "SELECT name, head_id, base_id, status, version, created_by, created_at, updated_at, state \
             FROM branches WHERE session_id = $1 ORDER BY created_at, name",
        )
        .bind(id)
        .fetch_all(&mut conn)
        .await?
        {
            let state: &str = r.try_get(8)?;
            branches.push(ExportBranch { branch: Branch::from_row(&r)?, state: serde_json::from_str(state)? });
        }
        let merges = query("SELECT from_branch, into_branch, from_head, merge_node, at FROM merges WHERE session_id = $1 ORDER BY id")
            .bind(id)
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|r| Ok(ExportMerge { from_branch: r.try_get(0)?, into_branch: r.try_get(1)?, from_head: r.try_get(2)?, merge_node: r.try_get(3)?, at: r.try_get(4)? }))
            .collect::<Result<Vec<_>>>()?;
        let snapshots = query(
            "SELECT node_id, state FROM state_snapshots WHERE session_id = $1 ORDER BY node_id",
        )
        .bind(id)
        .fetch_all(&mut conn)
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
        let mut tracks = Vec::new();
        for r in query(
            "SELECT batch, track, count, stats, min_step, max_step, created_by, created_at \
             FROM track_batches WHERE session_id = $1 ORDER BY batch",
        )
        .bind(id)
        .fetch_all(&mut conn)
        .await?
        {
            let batch: i64 = r.try_get(0)?;
            let chunks = query(
                "SELECT chunk, count, min_step, max_step, points FROM track_chunks \
                 WHERE session_id = $1 AND batch = $2 ORDER BY chunk",
            )
            .bind(id)
            .bind(batch)
            .fetch_all(&mut conn)
            .await?
            .iter()
            .map(|c| {
                Ok(ExportTrackChunk {
                    chunk: c.try_get(0)?,
                    count: c.try_get(1)?,
                    min_step: c.try_get(2)?,
                    max_step: c.try_get(3)?,
                    points: serde_json::from_str(c.try_get::<&str, _>(4)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            tracks.push(ExportTrackBatch {
                batch,
                track: r.try_get(1)?,
                count: r.try_get(2)?,
                stats: serde_json::from_str(r.try_get::<&str, _>(3)?)?,
                min_step: r.try_get(4)?,
                max_step: r.try_get(5)?,
                created_by: r.try_get(6)?,
                created_at: r.try_get(7)?,
                chunks,
            });
        }
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
            tracks,
            signature: None,
        })
    }
}
