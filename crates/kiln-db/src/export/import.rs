//! Writing a checked export as a new session, in bounded chunks.
//!
//! Each chunk is its own short `BEGIN IMMEDIATE` transaction (about `chunk_bytes` of rows), so
//! a large import never holds the writer long: appends queued behind it run between chunks.
//! Invariant: the session stays invisible (`sessions.import_until` is set, and every query that
//! finds sessions skips such rows) until the last chunk clears the mark, in the same
//! transaction that writes the branches and the `session.import` audit entry. An import that
//! fails half-way deletes what it wrote; one whose process died leaves a lease that runs out,
//! and [`Db::purge_stale_imports`] deletes it at the next open or scheduler tick. So from the
//! user's point of view an import is still all or nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{CheckedExport, ExportNode, bad, replay};
use crate::conn::{Conn, query, query_scalar};
use crate::pool::Tx;
use crate::sql::Marks;
use kiln_types::SessionId;

use crate::{Db, Error, Result, audit, now, sessions, stamp};

/// How far an import's history can be trusted (see [`crate::integrity::Trust`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Signed by a trusted key: the original authors are kept.
    Verified,
    /// Anything else: every node that names an author, every branch and checkpoint creator and
    /// every lifecycle and reflog actor is the importer.
    Unverified,
}

impl Provenance {
    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Verified => "verified",
            Provenance::Unverified => "unverified",
        }
    }
}

/// How to write an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The new session's owner, who is also the actor of the `session.import` entry.
    pub owner: String,
    pub provenance: Provenance,
    /// The `session.import` audit entry's payload (source, verification, reason).
    pub audit: Value,
    /// About this many bytes of rows per transaction.
    pub chunk_bytes: usize,
    /// How long a half-written import may sit before it counts as abandoned.
    pub lease_seconds: i64,
}

impl ImportOptions {
    pub fn new(owner: &str, provenance: Provenance, audit: Value) -> Self {
        ImportOptions {
            owner: owner.to_string(),
            provenance,
            audit,
            chunk_bytes: 256 * 1024,
            lease_seconds: 120,
        }
    }
}

/// Rows per INSERT statement (15 parameters each).
const NODE_ROWS: usize = 32;

/// The current chunk's transaction, committed and reopened as rows add up.
struct Chunks<'a> {
    db: &'a Db,
    session: &'a str,
    lease_seconds: i64,
    limit: usize,
    bytes: usize,
    tx: Option<Tx>,
}

impl Chunks<'_> {
    fn until(&self) -> String {
        let until = Utc::now()
            .checked_add_signed(chrono::TimeDelta::seconds(self.lease_seconds))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        stamp(until)
    }

    /// The open transaction, after committing the current one if `cost` more bytes would
    /// overflow it. A new chunk renews the import's lease, and fails if cleanup took it.
    async fn tx(&mut self, cost: usize) -> Result<&mut Tx> {
        if self.tx.is_some() && self.bytes > 0 && self.bytes + cost > self.limit {
            if let Some(tx) = self.tx.take() {
                tx.commit().await?;
            }
            self.bytes = 0;
        }
        if self.tx.is_none() {
            let mut tx = self.db.write().await?;
            let renewed = query(
                "UPDATE sessions SET import_until = $1 WHERE id = $2 AND import_until IS NOT NULL",
            )
            .bind(self.until())
            .bind(self.session)
            .execute(&mut tx)
            .await?;
            if renewed != 1 {
                return Err(Error::Corrupt(
                    "the import's lease ran out and it was cleaned up; import again".into(),
                ));
            }
            self.tx = Some(tx);
        }
        self.bytes += cost;
        self.tx
            .as_mut()
            .ok_or_else(|| Error::Corrupt("import chunk missing".into()))
    }
}

/// Deletes every row of a session (no visibility check: it may be a half-written import).
pub(crate) async fn delete_rows(conn: &mut Conn, id: &str) -> Result<()> {
    for table in [
        "track_chunks",
        "track_batches",
        "state_snapshots",
        "nodes",
        "refs",
        "reflog",
        "merges",
        "branches",
        "segments",
        "session_events",
        "audit_log",
    ] {
        let sql = format!("DELETE FROM {table} WHERE session_id = $1");
        query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Db {
    /// Imports a checked export as a new session (see the module docs for how it is written).
    pub async fn import(
        &self,
        doc: &CheckedExport,
        opts: &ImportOptions,
    ) -> Result<crate::Session> {
        let id = SessionId::new().to_string();
        let mut chunks = Chunks {
            db: self,
            session: &id,
            lease_seconds: opts.lease_seconds.max(1),
            limit: opts.chunk_bytes.max(1),
            bytes: 0,
            tx: None,
        };
        let s = &doc.doc().session;
        let mut tx = self.write().await?;
        query(
            "INSERT INTO sessions (id, owner_id, name, description, session_type, status, project, \
             tags, metadata, config, template, default_branch, version, created_at, updated_at, \
             provenance, import_until) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $14, $15, $16)",
        )
        .bind(&id)
        .bind(&opts.owner)
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
        .bind(opts.provenance.as_str())
        .bind(chunks.until())
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        match self.write_import(doc, opts, &mut chunks).await {
            Ok(out) => Ok(out),
            Err(e) => {
                drop(chunks.tx.take());
                match self.write().await {
                    Ok(mut tx) => {
                        let cleaned = match delete_rows(&mut tx, &id).await {
                            Ok(()) => tx.commit().await,
                            Err(e) => Err(e),
                        };
                        if let Err(c) = cleaned {
                            tracing::warn!(session = %id, error = %c, "could not delete a failed import; its lease will run out");
                        }
                    }
                    Err(c) => {
                        tracing::warn!(session = %id, error = %c, "could not delete a failed import; its lease will run out")
                    }
                }
                Err(e)
            }
        }
    }

    async fn write_import(
        &self,
        checked: &CheckedExport,
        opts: &ImportOptions,
        chunks: &mut Chunks<'_>,
    ) -> Result<crate::Session> {
        let doc = checked.doc();
        let id = chunks.session.to_string();
        let credit = (opts.provenance == Provenance::Unverified).then_some(opts.owner.as_str());
        let who = |a: &str| credit.unwrap_or(a).to_string();
        let (hashes, order) = replay::hashes_in_order(doc, credit)?;
        // Segments get new ids, parents first (check() proved they form a tree).
        let mut map: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        let mut left: Vec<&super::ExportSegment> = doc.segments.iter().collect();
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
                let new_id: i64 = query_scalar(
                    "INSERT INTO segments (session_id, parent_segment, fork_seq) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(&id)
                .bind(parent)
                .bind(seg.fork_seq)
                .fetch_one(&mut **chunks.tx(32).await?)
                .await?;
                map.insert(seg.id, new_id);
            }
            if rest.len() == before {
                return Err(bad("segments form a cycle"));
            }
            left = rest;
        }
        // Nodes, parents first, up to NODE_ROWS per statement.
        let mut batch: Vec<usize> = Vec::with_capacity(NODE_ROWS);
        let mut batch_bytes = 0;
        for (k, &i) in order.iter().enumerate() {
            let n = &doc.nodes[i];
            batch.push(i);
            batch_bytes += n.content.len() + n.data.as_ref().map_or(0, |_| 256) + 200;
            let last = k + 1 == order.len();
            if batch.len() == NODE_ROWS || batch_bytes >= chunks.limit / 4 || last {
                let tx = chunks.tx(batch_bytes).await?;
                insert_nodes(tx, &id, doc, &batch, &map, &hashes, credit).await?;
                batch.clear();
                batch_bytes = 0;
            }
        }
        for snap in &doc.snapshots {
            let text = serde_json::to_string(&snap.state)?;
            let tx = chunks.tx(text.len() + 100).await?;
            crate::tree::insert_snapshot(tx, &id, &snap.node, &text).await?;
        }
        for c in &doc.checkpoints {
            let tx = chunks.tx(200).await?;
            query(
                "INSERT INTO refs (session_id, name, node_id, branch, auto, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(&c.name)
            .bind(&c.node)
            .bind(&c.branch)
            .bind(c.auto)
            .bind(c.created_by.as_deref().map(who))
            .bind(&c.created_at)
            .execute(tx)
            .await
            .map_err(|_| bad(format!("checkpoint `{}` appears twice", c.name)))?;
        }
        for r in doc.reflog.iter().rev() {
            let tx = chunks.tx(200 + r.reason.len()).await?;
            crate::tree::reflog(
                tx,
                &id,
                &r.branch,
                r.old_head.as_deref(),
                &r.new_head,
                &who(&r.actor),
                &r.reason,
                &r.at,
            )
            .await?;
        }
        for m in &doc.merges {
            let tx = chunks.tx(200).await?;
            query("INSERT INTO merges (session_id, from_branch, into_branch, from_head, merge_node, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(&m.from_branch)
                .bind(&m.into_branch)
                .bind(&m.from_head)
                .bind(&m.merge_node)
                .bind(&m.at)
                .execute(tx)
                .await?;
        }
        for e in &doc.events {
            let tx = chunks.tx(200 + e.reason.len()).await?;
            query("INSERT INTO session_events (session_id, from_status, to_status, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(&id)
                .bind(e.from.map(|s| s.as_str()))
                .bind(e.to.as_str())
                .bind(who(&e.actor))
                .bind(&e.reason)
                .bind(&e.at)
                .execute(tx)
                .await?;
        }
        // Track points, as the notebook state names them by batch.
        for b in &doc.tracks {
            let stats = b.stats.to_string();
            let tx = chunks.tx(300 + stats.len()).await?;
            query(
                "INSERT INTO track_batches (session_id, batch, track, count, stats, min_step, \
                 max_step, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&id)
            .bind(b.batch)
            .bind(&b.track)
            .bind(b.count)
            .bind(&stats)
            .bind(b.min_step)
            .bind(b.max_step)
            .bind(b.created_by.as_deref().map(who))
            .bind(&b.created_at)
            .execute(tx)
            .await?;
            for c in &b.chunks {
                let points = c.points.to_string();
                let tx = chunks.tx(200 + points.len()).await?;
                query(
                    "INSERT INTO track_chunks (session_id, batch, chunk, count, min_step, \
                     max_step, points) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(b.batch)
                .bind(c.chunk)
                .bind(c.count)
                .bind(c.min_step)
                .bind(c.max_step)
                .bind(&points)
                .execute(tx)
                .await?;
            }
        }
        // The imported chain is kept as it was hashed; the import entry after it says how far
        // its actors can be trusted.
        for a in &doc.audit {
            let payload = a.payload.to_string();
            let tx = chunks.tx(300 + payload.len()).await?;
            query("INSERT INTO audit_log (session_id, seq, actor, action, payload, at, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&id)
                .bind(a.seq)
                .bind(&a.actor)
                .bind(&a.action)
                .bind(payload)
                .bind(&a.at)
                .bind(&a.prev_hash)
                .bind(&a.hash)
                .execute(tx)
                .await?;
        }
        // The last chunk: branches (their state folded from what is now stored), the import
        // entry, and the session becomes visible.
        let snapshot_every = self.snapshot_every;
        let tx = chunks.tx(0).await?;
        for b in &doc.branches {
            let b = &b.branch;
            let head = crate::tree::pos(tx, &id, &b.head).await?;
            let (st, pending) = crate::state::state_at(tx, &id, &head, snapshot_every).await?;
            query(
                "INSERT INTO branches (session_id, name, head_id, base_id, status, version, state, \
                 state_pending, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8, $9, $10)",
            )
            .bind(&id)
            .bind(&b.name)
            .bind(&b.head)
            .bind(&b.base)
            .bind(&b.status)
            .bind(serde_json::to_string(&st)?)
            .bind(pending)
            .bind(b.created_by.as_deref().map(who))
            .bind(&b.created_at)
            .bind(&b.updated_at)
            .execute(tx)
            .await?;
        }
        audit::append(tx, &id, &opts.owner, "session.import", &opts.audit).await?;
        query("UPDATE sessions SET import_until = NULL WHERE id = $1")
            .bind(&id)
            .execute(tx)
            .await?;
        // The search index skipped the nodes while the session was invisible: index it whole.
        query("INSERT INTO search_outbox (session_id, op) VALUES ($1, 'meta')")
            .bind(&id)
            .execute(tx)
            .await?;
        let out = sessions::get_in(tx, &id).await?;
        if let Some(tx) = chunks.tx.take() {
            tx.commit().await?;
        }
        Ok(out)
    }

    /// Deletes imports whose lease ran out before their last chunk (a failed or killed
    /// import), as of `now`. Returns how many.
    pub async fn purge_stale_imports(&self, now: &str) -> Result<usize> {
        let stale: Vec<String> = query_scalar(
            "SELECT id FROM sessions WHERE import_until IS NOT NULL AND import_until <= $1",
        )
        .bind(now)
        .fetch_all(&mut *self.read().await?)
        .await?;
        for id in &stale {
            let mut tx = self.write().await?;
            // Only if it is still stale: its importer may have renewed the lease meanwhile.
            let still: bool = query_scalar(
                "SELECT EXISTS(SELECT 1 FROM sessions WHERE id = $1 AND import_until <= $2)",
            )
            .bind(id)
            .bind(now)
            .fetch_one(&mut tx)
            .await?;
            if still {
                delete_rows(&mut tx, id).await?;
                tracing::info!(session = %id, "deleted an import that did not finish");
            }
            tx.commit().await?;
        }
        Ok(stale.len())
    }
}

/// Inserts the nodes `batch` (indexes into `doc.nodes`) in one statement.
async fn insert_nodes(
    tx: &mut Tx,
    session: &str,
    doc: &super::SessionExport,
    batch: &[usize],
    segments: &std::collections::HashMap<i64, i64>,
    hashes: &[[u8; 32]],
    credit: Option<&str>,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, merge_parent_id, kind, \
         is_state, author, content, data, tokens, total_tokens, created_at, hash) VALUES {}",
        Marks::new().rows(batch.len(), 15)
    );
    let mut q = query(sqlx::AssertSqlSafe(sql));
    for &i in batch {
        let n: &ExportNode = &doc.nodes[i];
        let segment = *segments
            .get(&n.segment)
            .ok_or_else(|| bad(format!("node {} is in unknown segment", n.id)))?;
        q = q
            .bind(n.id.clone())
            .bind(session.to_string())
            .bind(segment)
            .bind(n.seq)
            .bind(n.parent_id.clone())
            .bind(n.merge_parent_id.clone())
            .bind(n.kind.as_str())
            .bind(n.kind.is_state())
            .bind(n.author.as_deref().map(|a| credit.unwrap_or(a).to_string()))
            .bind(n.content.clone())
            .bind(n.data.as_ref().map(|d| d.to_string()))
            .bind(n.tokens)
            .bind(n.total_tokens)
            .bind(n.created_at.clone())
            .bind(hashes[i].to_vec());
    }
    q.execute(tx).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use kiln_types::{NodeKind, SessionType};
    use serde_json::json;

    use super::*;
    use crate::conn::query_as;
    use crate::{DbOptions, NewNode, NewSession, SessionFilter};

    async fn db_with_session(dir: &std::path::Path) -> (Db, String, String) {
        let db = Db::open(&dir.join("kiln.db"), &DbOptions::default())
            .await
            .unwrap();
        let alice = db.create_user("alice", true, b"h").await.unwrap().id;
        let s = db
            .create_session(
                NewSession {
                    owner_id: alice.clone(),
                    name: "big".into(),
                    description: String::new(),
                    session_type: SessionType::Interactive,
                    project: None,
                    tags: vec![],
                    metadata: json!({}),
                    config: Default::default(),
                    template: None,
                    folder: "/".into(),
                },
                &alice,
            )
            .await
            .unwrap();
        for i in 0..40 {
            let n = NewNode::message(NodeKind::User, Some(alice.clone()), format!("message {i}"));
            db.append(&s.id, "main", vec![n], None, &alice)
                .await
                .unwrap();
        }
        (db, alice, s.id)
    }

    /// Sessions visible to `owner` and all session rows, counted.
    async fn counts(db: &Db, owner: &str) -> (usize, i64, i64) {
        let listed = db
            .sessions(&SessionFilter {
                visible_to: Some(owner.to_string()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .len();
        let mut c = db.read().await.unwrap();
        let rows: i64 = query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(&mut c)
            .await
            .unwrap();
        let nodes: i64 = query_scalar("SELECT COUNT(*) FROM nodes")
            .fetch_one(&mut c)
            .await
            .unwrap();
        (listed, rows, nodes)
    }

    #[tokio::test]
    async fn a_half_written_import_is_invisible_then_deleted_when_its_lease_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let (db, alice, id) = db_with_session(dir.path()).await;
        let doc = db.export(&id).await.unwrap().checked().unwrap();
        let (_, _, nodes_before) = counts(&db, &alice).await;
        let mut opts = ImportOptions::new(&alice, Provenance::Verified, json!({}));
        opts.chunk_bytes = 1; // one statement per transaction
        // The import stops (its process dies) once some of its chunks are in.
        let watch = async {
            loop {
                let mut c = db.read().await.unwrap();
                let pending: Vec<(String, i64)> = query_as(
                    "SELECT s.id, (SELECT COUNT(*) FROM nodes n WHERE n.session_id = s.id) \
                     FROM sessions s WHERE s.import_until IS NOT NULL",
                )
                .fetch_all(&mut c)
                .await
                .unwrap();
                drop(c);
                if let Some((pending, n)) = pending.into_iter().next()
                    && n >= 10
                {
                    // Committed chunks, yet nobody sees the session.
                    assert!(matches!(
                        db.session(&pending).await,
                        Err(Error::NotFound(_))
                    ));
                    assert_eq!(
                        counts(&db, &alice).await.0,
                        1,
                        "only the original is listed"
                    );
                    return pending;
                }
                tokio::task::yield_now().await;
            }
        };
        let pending = tokio::select! {
            done = db.import(&doc, &opts) => panic!("the import finished first: {done:?}"),
            pending = watch => pending,
        };
        let (listed, rows, nodes) = counts(&db, &alice).await;
        assert_eq!((listed, rows), (1, 2));
        assert!(nodes > nodes_before);
        // Not yet: its lease still runs.
        assert_eq!(db.purge_stale_imports(&now()).await.unwrap(), 0);
        let later = stamp(Utc::now() + chrono::TimeDelta::minutes(10));
        assert_eq!(db.purge_stale_imports(&later).await.unwrap(), 1);
        assert_eq!(counts(&db, &alice).await, (1, 1, nodes_before));
        assert!(matches!(
            db.session(&pending).await,
            Err(Error::NotFound(_))
        ));

        // Written to the end in the same small chunks, it appears whole.
        let s = db.import(&doc, &opts).await.unwrap();
        assert_eq!(counts(&db, &alice).await, (2, 2, 2 * nodes_before));
        assert_eq!(
            db.head_state(&s.id, "main").await.unwrap(),
            db.head_state(&id, "main").await.unwrap()
        );
        let (old, new) = (
            db.export(&id).await.unwrap(),
            db.export(&s.id).await.unwrap(),
        );
        let hashes =
            |d: &crate::SessionExport| d.nodes.iter().map(|n| n.hash.clone()).collect::<Vec<_>>();
        assert_eq!(
            hashes(&old),
            hashes(&new),
            "a verified import keeps every node hash"
        );
        assert!(db.verify_nodes(&s.id).await.unwrap().valid);
    }
}
