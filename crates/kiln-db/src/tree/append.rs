//! Appending to a branch: checks, the one-transaction append and its round-trip budget.

use kiln_types::{NodeKind, Permission, Permissions, ResearchState, SessionStatus};
use serde_json::Value;

use super::{Access, AppendOutcome, NewNode, insert_snapshot, may, new_segment, owned_head};
use crate::conn::{Dialect, Query, query};
use crate::integrity::{NodeFields, node_hash};
use crate::model::Node;
use crate::pool::{CachedHead, Tx, Writer};
use crate::sql::Marks;
use crate::{Db, Error, Result, now, sessions};

/// Refuses nodes the tree could not replay: a root or merge node (only session creation and
/// merge write those), a state kind without its event, or an event under another kind.
pub(crate) fn check_new_node(n: &NewNode) -> Result<()> {
    match (&n.event, n.kind) {
        (_, NodeKind::Root | NodeKind::Merge) => Err(Error::Invalid(format!(
            "`{}` nodes cannot be appended",
            n.kind
        ))),
        (None, k) if k.is_state() => Err(Error::Invalid(format!(
            "a `{k}` node needs its state event"
        ))),
        (Some(e), k) if e.node_kind() != k => Err(Error::Invalid(format!(
            "a `{}` event cannot be recorded as a `{k}` node",
            e.node_kind()
        ))),
        _ => Ok(()),
    }
}

impl Db {
    /// Appends nodes to a branch in one transaction and returns them.
    ///
    /// Refuses writes to paused or archived sessions; a write to a created or resumed session
    /// makes it active. With `expected_head`, fails with `HeadMoved` if the head is elsewhere.
    pub async fn append(
        &self,
        session: &str,
        branch: &str,
        nodes: Vec<NewNode>,
        expected_head: Option<&str>,
        actor: &str,
    ) -> Result<AppendOutcome> {
        self.append_checked(session, branch, nodes, expected_head, actor, None)
            .await
    }

    /// Like [`Db::append`], for `user`, who needs the permissions the nodes call for
    /// ([`required_for`]). The check rides on the append's first query, saving the hot path a
    /// round trip.
    pub async fn append_as(
        &self,
        user: &str,
        session: &str,
        branch: &str,
        nodes: Vec<NewNode>,
        expected_head: Option<&str>,
        actor: &str,
    ) -> Result<AppendOutcome> {
        let required = required_for(&nodes);
        self.append_checked(
            session,
            branch,
            nodes,
            expected_head,
            actor,
            Some((user, required)),
        )
        .await
    }

    async fn append_checked(
        &self,
        session: &str,
        branch: &str,
        nodes: Vec<NewNode>,
        expected_head: Option<&str>,
        actor: &str,
        access: Access<'_>,
    ) -> Result<AppendOutcome> {
        if nodes.is_empty() {
            return Err(Error::Invalid("nothing to append".into()));
        }
        for n in &nodes {
            check_new_node(n)?;
        }
        let mut w = self.writer().await?;
        let nodes = match fast_append(&mut w, session, branch, nodes, expected_head, access).await {
            Ok(out) => return Ok(out),
            Err(nodes) => nodes,
        };
        let mut tx = self.begin(w).await?;
        let (out, head) = append_in(
            &mut tx,
            self.snapshot_every,
            session,
            branch,
            nodes,
            expected_head,
            actor,
            access,
        )
        .await?;
        // Remembered before the commit: if the commit fails, the version will not match and
        // the next append takes this path again.
        tx.writer().remember(session, branch, head);
        tx.commit().await?;
        self.count_appended(out.nodes.len());
        Ok(out)
    }
}

/// The append fast path: conversation nodes (no state events) appended at a head this process
/// wrote last, in one round trip to SQLite — `BEGIN IMMEDIATE`, the node INSERT and the head
/// UPDATE, both conditional on the branch still being at the remembered head and version, the
/// session being active (and the user holding the permissions asked for), then `COMMIT`. The head being its segment's tip
/// is guarded by the `(segment_id, seq)` unique index. Anything else — no remembered head, a
/// state event, a condition that no longer holds, any SQL error — gives the nodes back for the
/// full path, which re-reads everything and reports errors precisely.
async fn fast_append(
    w: &mut Writer,
    session: &str,
    branch: &str,
    nodes: Vec<NewNode>,
    expected_head: Option<&str>,
    access: Access<'_>,
) -> std::result::Result<AppendOutcome, Vec<NewNode>> {
    let key = (session.to_string(), branch.to_string());
    // PostgreSQL's pooled writers keep no cached heads: the full path, under the write lock.
    let Some(head) = w.heads.get(&key).cloned() else {
        return Err(nodes);
    };
    let eligible = nodes.len() <= INSERT_CHUNK
        && nodes
            .iter()
            .all(|n| n.event.is_none() && !n.kind.is_state())
        && expected_head.is_none_or(|e| e == head.id);
    if !eligible {
        return Err(nodes);
    }
    let now = now();
    let mut rows = Vec::with_capacity(nodes.len());
    let (mut prev_id, mut seq, mut total) = (head.id.clone(), head.seq, head.total_tokens);
    let mut prev_hash = head.hash.clone();
    for n in &nodes {
        let id = kiln_types::NodeId::new().to_string();
        let Ok(data_text) = n.data.as_ref().map(serde_json::to_string).transpose() else {
            return Err(nodes);
        };
        seq += 1;
        total += n.tokens.unwrap_or(0);
        let hash = chain_hash(
            prev_hash.as_deref(),
            &id,
            seq,
            &prev_id,
            n,
            data_text.as_deref(),
            &now,
        );
        prev_hash = Some(hash.to_vec());
        let parent = std::mem::replace(&mut prev_id, id.clone());
        rows.push((id, seq, parent, data_text, total, hash));
    }
    let sql = fast_sql(nodes.len(), access.is_some());
    let mut q = query(sqlx::AssertSqlSafe(sql))
        .bind(session)
        .bind(head.segment)
        .bind(&now);
    for ((id, seq, parent, data_text, total, hash), n) in rows.iter().zip(&nodes) {
        q = q
            .bind(id)
            .bind(seq)
            .bind(parent)
            .bind(n.kind.as_str())
            .bind(n.author.as_deref())
            .bind(&n.content)
            .bind(data_text.as_deref())
            .bind(n.tokens)
            .bind(total)
            .bind(&hash[..]);
    }
    q = q
        .bind(session)
        .bind(branch)
        .bind(head.version)
        .bind(&head.id);
    q = bind_access(q, access);
    q = q
        .bind(&prev_id)
        .bind(&now)
        .bind(session)
        .bind(branch)
        .bind(head.version)
        .bind(&head.id)
        .bind(session);
    q = bind_access(q, access);
    w.dirty = true;
    let done = q.fetch_all(&mut w.conn).await;
    match done {
        Ok(moved) if moved.len() == 1 => w.dirty = false,
        Ok(_) => {
            // The conditions failed: nothing was written and the COMMIT ran.
            w.dirty = false;
            w.heads.remove(&key);
            return Err(nodes);
        }
        Err(e) => {
            tracing::debug!(error = %e, "append fast path fell back");
            w.settle().await;
            w.heads.remove(&key);
            return Err(nodes);
        }
    }
    w.heads.insert(
        key,
        CachedHead {
            id: prev_id.clone(),
            segment: head.segment,
            seq,
            total_tokens: total,
            version: head.version + 1,
            hash: prev_hash,
        },
    );
    let written = rows
        .into_iter()
        .zip(nodes)
        .map(|((id, seq, parent, _, _, _), n)| Node {
            id,
            seq,
            parent_id: Some(parent),
            merge_parent_id: None,
            kind: n.kind,
            role: n.kind,
            author: n.author,
            content: n.content,
            data: n.data,
            tokens: n.tokens,
            created_at: now.clone(),
        })
        .collect();
    Ok(AppendOutcome {
        nodes: written,
        head: prev_id,
        activated: false,
    })
}

/// Binds the user and the permission bits of [`may`] (nothing without an access check).
fn bind_access(q: Query, access: Access<'_>) -> Query {
    match access {
        Some((user, required)) => q
            .bind(user)
            .bind(user)
            .bind(required.bits())
            .bind(required.bits()),
        None => q,
    }
}

/// The permissions appending `nodes` needs: notes need comment, materials and the focus
/// add_materials, everything else write.
pub(crate) fn required_for(nodes: &[NewNode]) -> Permissions {
    Permissions::of(nodes.iter().map(|n| match n.kind {
        NodeKind::Note => Permission::Comment,
        NodeKind::Material | NodeKind::Focus => Permission::AddMaterials,
        _ => Permission::Write,
    }))
}

/// The fast path's statement batch for `rows` nodes (see [`fast_append`]); placeholders in
/// the order [`fast_append`] binds.
// dialect: PostgreSQL prepares one statement per query: BEGIN, INSERT … SELECT, UPDATE … RETURNING, COMMIT separately
fn fast_sql(rows: usize, checked: bool) -> String {
    let mut m = Marks::new();
    let (session, segment, now) = (m.next(), m.next(), m.next());
    let values = m.rows(rows, 10);
    let (s1, b1, v1, h1) = (m.next(), m.next(), m.next(), m.next());
    let owner1 = if checked {
        format!("AND {}", may(&mut m))
    } else {
        String::new()
    };
    let (head, at) = (m.next(), m.next());
    let (s2, b2, v2, h2, s3) = (m.next(), m.next(), m.next(), m.next(), m.next());
    let owner2 = if checked {
        format!("AND {}", may(&mut m))
    } else {
        String::new()
    };
    format!(
        "BEGIN IMMEDIATE; \
         INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, merge_parent_id, kind, \
           is_state, author, content, data, tokens, total_tokens, created_at, hash) \
         SELECT v.column1, {session}, {segment}, v.column2, v.column3, NULL, v.column4, 0, \
           v.column5, v.column6, v.column7, v.column8, v.column9, {now}, v.column10 \
         FROM (VALUES {values}) AS v \
         WHERE EXISTS (SELECT 1 FROM branches b JOIN sessions s ON s.id = b.session_id \
           WHERE b.session_id = {s1} AND b.name = {b1} AND b.version = {v1} AND b.head_id = {h1} \
           AND b.status <> 'discarded' AND s.status = 'active' {owner1}); \
         UPDATE branches SET head_id = {head}, version = version + 1, updated_at = {at}, \
           status = CASE status WHEN 'merged' THEN 'open' ELSE status END \
         WHERE session_id = {s2} AND name = {b2} AND version = {v2} AND head_id = {h2} \
           AND status <> 'discarded' \
           AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = {s3} AND s.status = 'active' {owner2}) \
         RETURNING version; \
         COMMIT"
    )
}

/// Returns the hash of an appended node (no merge parent) chained to its parent's.
fn chain_hash(
    parent_hash: Option<&[u8]>,
    id: &str,
    seq: i64,
    parent: &str,
    n: &NewNode,
    data: Option<&str>,
    created_at: &str,
) -> [u8; 32] {
    node_hash(
        parent_hash,
        None,
        &NodeFields {
            id,
            seq,
            parent_id: Some(parent),
            merge_parent_id: None,
            kind: n.kind.as_str(),
            author: n.author.as_deref(),
            content: &n.content,
            data,
            tokens: n.tokens,
            created_at,
        },
    )
}

/// Rows per INSERT statement when appending (15 parameters each).
const INSERT_CHUNK: usize = 32;

/// The compare-and-set head move, placeholders from `m`: head, updated_at, then with
/// `with_state` state and state_pending, then session, branch, version.
fn set_head_sql(m: &mut Marks, with_state: bool) -> String {
    let (head, at) = (m.next(), m.next());
    let state = if with_state {
        format!("state = {}, state_pending = {}, ", m.next(), m.next())
    } else {
        String::new()
    };
    let (session, branch, version) = (m.next(), m.next(), m.next());
    format!(
        "UPDATE branches SET head_id = {head}, version = version + 1, updated_at = {at}, {state}\
         status = CASE status WHEN 'merged' THEN 'open' ELSE status END \
         WHERE session_id = {session} AND name = {branch} AND version = {version}"
    )
}

/// Returns one INSERT of `rows` nodes, followed by the head move ([`set_head_sql`], with the
/// state when `Some(true)`) when given, so that the last rows and the head move reach SQLite in
/// one round trip.
// dialect: PostgreSQL prepares one statement per query: the head move goes separately
fn insert_sql(rows: usize, then_set_head: Option<bool>) -> String {
    const HEAD: &str = "INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, \
        merge_parent_id, kind, is_state, author, content, data, tokens, total_tokens, created_at, \
        hash) VALUES ";
    let mut m = Marks::new();
    let mut sql = String::with_capacity(HEAD.len() + rows * 80 + 300);
    sql.push_str(HEAD);
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        // (id, session, segment, seq, parent, NULL, kind, is_state, …, hash)
        sql.push('(');
        m.push_list(&mut sql, 5);
        sql.push_str(", NULL, ");
        m.push_list(&mut sql, 9);
        sql.push(')');
    }
    if let Some(with_state) = then_set_head {
        sql.push_str("; ");
        sql.push_str(&set_head_sql(&mut m, with_state));
    }
    sql
}

/// A node prepared for insertion by an append.
struct Prepared {
    id: String,
    seq: i64,
    parent: String,
    kind: NodeKind,
    author: Option<String>,
    content: String,
    data: Option<Value>,
    data_text: Option<String>,
    tokens: Option<i64>,
    total: i64,
    hash: [u8; 32],
}

/// Appends inside the caller's transaction. With `access`, the user must hold the permissions
/// asked for (the access check rides on the first query).
///
/// Round trips: the head query, the node INSERTs with the compare-and-set head move in the
/// same statement batch (one for up to 32 nodes), plus a new segment when the head is not its
/// segment's tip, a lifecycle transition on the first write, and state snapshots every K
/// events.
#[allow(clippy::too_many_arguments)]
async fn append_in(
    tx: &mut Tx,
    snapshot_every: i64,
    session: &str,
    branch: &str,
    nodes: Vec<NewNode>,
    expected_head: Option<&str>,
    actor: &str,
    access: Access<'_>,
) -> Result<(AppendOutcome, CachedHead)> {
    let head = owned_head(tx, session, branch, access).await?;
    if !head.session_status.accepts_writes() {
        return Err(Error::NotActive(head.session_status));
    }
    if head.status == "discarded" {
        return Err(Error::BranchDiscarded(branch.to_string()));
    }
    if let Some(expected) = expected_head
        && expected != head.pos.id
    {
        return Err(Error::HeadMoved {
            branch: branch.to_string(),
            expected: expected.to_string(),
            actual: head.pos.id.clone(),
        });
    }
    let now = now();
    let activated = head.session_status.write_activates();
    if activated {
        sessions::record_transition(
            tx,
            session,
            head.session_status,
            SessionStatus::Active,
            actor,
            "first write",
            &now,
        )
        .await?;
    }
    let segment = if head.tip {
        head.pos.segment
    } else {
        new_segment(tx, session, &head.pos).await?
    };
    let mut state: Option<ResearchState> = None;
    let mut pending = head.pending;
    let mut snapshots: Vec<(String, String)> = Vec::new();
    let mut rows: Vec<Prepared> = Vec::with_capacity(nodes.len());
    let (mut prev_id, mut prev_seq, mut prev_total) =
        (head.pos.id.clone(), head.pos.seq, head.pos.total_tokens);
    let mut prev_hash = head.pos.hash.clone();
    for n in nodes {
        let id = kiln_types::NodeId::new().to_string();
        let event = n.event.map(|e| e.with_ids(&id));
        let data = match (&event, n.data) {
            // An event's data is the event; the client a caller wrote through rides along.
            (Some(e), d) => {
                let mut v = serde_json::to_value(e)?;
                if let (Some(map), Some(client)) =
                    (v.as_object_mut(), d.as_ref().and_then(|d| d.get("client")))
                {
                    map.insert("client".into(), client.clone());
                }
                Some(v)
            }
            (None, d) => d,
        };
        if let Some(e) = &event {
            let st = match state.as_mut() {
                Some(s) => s,
                None => state.insert(serde_json::from_str(&head.state)?),
            };
            e.validate(st).map_err(Error::Invalid)?;
            st.apply(&id, e);
            pending += 1;
            if pending >= snapshot_every {
                snapshots.push((id.clone(), serde_json::to_string(st)?));
                pending = 0;
            }
        }
        let total = prev_total + n.tokens.unwrap_or(0);
        let data_text = data.as_ref().map(serde_json::to_string).transpose()?;
        prev_seq += 1;
        prev_total = total;
        let hash = node_hash(
            prev_hash.as_deref(),
            None,
            &NodeFields {
                id: &id,
                seq: prev_seq,
                parent_id: Some(&prev_id),
                merge_parent_id: None,
                kind: n.kind.as_str(),
                author: n.author.as_deref(),
                content: &n.content,
                data: data_text.as_deref(),
                tokens: n.tokens,
                created_at: &now,
            },
        );
        prev_hash = Some(hash.to_vec());
        let parent = std::mem::replace(&mut prev_id, id.clone());
        rows.push(Prepared {
            id,
            seq: prev_seq,
            parent,
            kind: n.kind,
            author: n.author,
            content: n.content,
            data,
            data_text,
            tokens: n.tokens,
            total,
            hash,
        });
    }
    let state_text = state.as_ref().map(serde_json::to_string).transpose()?;
    let chunks = rows.len().div_ceil(INSERT_CHUNK);
    // PostgreSQL prepares one statement per query: the head move is sent on its own there.
    let batched = tx.dialect() == Dialect::Sqlite;
    for (i, chunk) in rows.chunks(INSERT_CHUNK).enumerate() {
        let last = i + 1 == chunks;
        let sql = insert_sql(
            chunk.len(),
            (last && batched).then_some(state_text.is_some()),
        );
        let mut q = query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            q = q
                .bind(&r.id)
                .bind(session)
                .bind(segment)
                .bind(r.seq)
                .bind(&r.parent)
                .bind(r.kind.as_str())
                .bind(r.kind.is_state())
                .bind(r.author.as_deref())
                .bind(&r.content)
                .bind(r.data_text.as_deref())
                .bind(r.tokens)
                .bind(r.total)
                .bind(&now)
                .bind(&r.hash[..]);
        }
        let bind_head = |mut q: Query| {
            q = q.bind(&prev_id).bind(&now);
            if let Some(st) = &state_text {
                q = q.bind(st).bind(pending);
            }
            q.bind(session).bind(branch).bind(head.version)
        };
        if last && batched {
            q = bind_head(q);
        }
        let mut done = q.execute(&mut *tx).await?;
        if last && !batched {
            let sql = set_head_sql(&mut Marks::new(), state_text.is_some());
            done += bind_head(query(sqlx::AssertSqlSafe(sql)))
                .execute(&mut *tx)
                .await?;
        }
        if done != chunk.len() as u64 + u64::from(last) {
            return Err(Error::HeadMoved {
                branch: branch.to_string(),
                expected: format!("version {}", head.version),
                actual: "a newer version".into(),
            });
        }
    }
    for (node, st) in &snapshots {
        insert_snapshot(tx, session, node, st).await?;
    }
    let written = rows
        .into_iter()
        .map(|r| Node {
            id: r.id,
            seq: r.seq,
            parent_id: Some(r.parent),
            merge_parent_id: None,
            kind: r.kind,
            role: r.kind,
            author: r.author,
            content: r.content,
            data: r.data,
            tokens: r.tokens,
            created_at: now.clone(),
        })
        .collect();
    let cached = CachedHead {
        id: prev_id.clone(),
        segment,
        seq: prev_seq,
        total_tokens: prev_total,
        version: head.version + 1,
        hash: prev_hash,
    };
    let out = AppendOutcome {
        nodes: written,
        head: prev_id,
        activated,
    };
    Ok((out, cached))
}
