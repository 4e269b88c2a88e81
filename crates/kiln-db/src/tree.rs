//! The conversation tree: segments, nodes, branch heads, appends, path reads and forks.
//!
//! A node's path is found by walking segments, never node by node: its own segment up to its
//! seq, then each parent segment up to the fork point. Appending at a segment's tip extends it;
//! appending anywhere else (a fork, a restored head) starts a new segment. Nothing is copied.

use kiln_types::{NodeKind, Permission, Permissions, ResearchState, SessionStatus, StateEvent};
use serde::Serialize;
use serde_json::Value;

use crate::conn::{Conn, Dialect, query, query_as, query_scalar};
use crate::integrity::{NodeFields, node_hash};
use crate::model::{
    BRANCH_COLUMNS, Branch, NODE_COLUMNS, Node, Page, nodes_as_json, nodes_from_json,
};
use crate::sql::Marks;
use crate::{Db, Error, Result, audit, now, sessions, state};

mod append;

/// Where a node sits: its segment and depth.
#[derive(Debug, Clone)]
pub(crate) struct Pos {
    pub id: String,
    pub segment: i64,
    pub seq: i64,
    pub total_tokens: i64,
    /// The node's hash (see `integrity::node_hash`); `None` only for a node written before
    /// migration 0009 that the backfill at open has not reached.
    pub hash: Option<Vec<u8>>,
}

/// One segment of a path: nodes `start..=upto` of `segment`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub segment: i64,
    pub start: i64,
    pub upto: i64,
}

/// What the agent reads for one step (see [`Db::turn_view`]).
#[derive(Debug, Clone)]
pub struct TurnView {
    pub state: ResearchState,
    pub summary: Option<Node>,
    pub messages: Page<Node>,
    pub head: String,
}

/// A node to append.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub kind: NodeKind,
    pub author: Option<String>,
    pub content: String,
    pub data: Option<Value>,
    pub event: Option<StateEvent>,
    pub tokens: Option<i64>,
}

impl NewNode {
    /// A conversation node (user, assistant, note, tool call or result, summary).
    pub fn message(kind: NodeKind, author: Option<String>, content: impl Into<String>) -> Self {
        Self {
            kind,
            author,
            content: content.into(),
            data: None,
            event: None,
            tokens: None,
        }
    }

    /// A state event node.
    pub fn event(event: StateEvent, author: Option<String>) -> Self {
        Self {
            kind: event.node_kind(),
            author,
            content: String::new(),
            data: None,
            event: Some(event),
            tokens: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn with_tokens(mut self, tokens: i64) -> Self {
        self.tokens = Some(tokens);
        self
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AppendOutcome {
    pub nodes: Vec<Node>,
    pub head: String,
    /// Whether this write moved the session to `active`.
    pub activated: bool,
}

pub(crate) async fn pos(conn: &mut Conn, session: &str, node: &str) -> Result<Pos> {
    let row = query(
        "SELECT segment_id, seq, COALESCE(total_tokens, 0) AS t, hash FROM nodes \
         WHERE session_id = $1 AND id = $2",
    )
    .bind(session)
    .bind(node)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| Error::not_found(format!("node {node}")))?;
    Ok(Pos {
        id: node.to_string(),
        segment: row.try_get(0)?,
        seq: row.try_get(1)?,
        total_tokens: row.try_get(2)?,
        hash: row.try_get(3)?,
    })
}

/// Returns the segment links of a branch head's path; a head on the root segment needs no
/// recursive walk.
async fn head_links(conn: &mut Conn, session: &str, head: &HeadState) -> Result<Vec<Link>> {
    if head.root_segment {
        Ok(vec![Link {
            segment: head.pos.segment,
            start: 0,
            upto: head.pos.seq,
        }])
    } else {
        chain(conn, session, head.pos.segment, head.pos.seq).await
    }
}

/// Returns the segments of the path ending at `(segment, seq)` of `session`, leaf first.
pub(crate) async fn chain(
    conn: &mut Conn,
    session: &str,
    segment: i64,
    seq: i64,
) -> Result<Vec<Link>> {
    let rows = query(
        "WITH RECURSIVE c(id, parent, fork, depth) AS ( \
           SELECT id, parent_segment, fork_seq, 0 FROM segments WHERE session_id = $1 AND id = $2 \
           UNION ALL \
           SELECT s.id, s.parent_segment, s.fork_seq, c.depth + 1 \
           FROM segments s JOIN c ON s.session_id = $1 AND s.id = c.parent) \
         SELECT id, fork FROM c ORDER BY depth",
    )
    .bind(session)
    .bind(segment)
    .fetch_all(&mut *conn)
    .await?;
    let mut links = Vec::with_capacity(rows.len());
    let mut upto = seq;
    for r in rows {
        let id: i64 = r.try_get(0)?;
        let fork: Option<i64> = r.try_get(1)?;
        let start = fork.map_or(0, |f| f + 1);
        links.push(Link {
            segment: id,
            start,
            upto,
        });
        upto = fork.unwrap_or(-1);
    }
    Ok(links)
}

/// Returns whether the node at `x` lies on the path described by `chain`.
pub(crate) fn on_path(chain: &[Link], x: &Pos) -> bool {
    chain
        .iter()
        .any(|l| l.segment == x.segment && x.seq >= l.start && x.seq <= l.upto)
}

/// Returns the lowest common ancestor of two nodes (first parents only).
pub(crate) async fn lca(conn: &mut Conn, session: &str, a: &Pos, b: &Pos) -> Result<Pos> {
    let ca = chain(conn, session, a.segment, a.seq).await?;
    let cb = chain(conn, session, b.segment, b.seq).await?;
    for la in &ca {
        if let Some(lb) = cb.iter().find(|l| l.segment == la.segment) {
            let seq = la.upto.min(lb.upto);
            let id: String = query_scalar(
                "SELECT id FROM nodes WHERE session_id = $1 AND segment_id = $2 AND seq = $3",
            )
            .bind(session)
            .bind(la.segment)
            .bind(seq)
            .fetch_one(&mut *conn)
            .await?;
            return pos(conn, session, &id).await;
        }
    }
    Err(Error::Corrupt(format!(
        "nodes {} and {} share no root",
        a.id, b.id
    )))
}

/// Returns the nodes on `chain` (a path of `session`) with seq greater than `after`, oldest
/// first.
pub(crate) async fn nodes_after(
    conn: &mut Conn,
    session: &str,
    chain: &[Link],
    after: i64,
) -> Result<Vec<Node>> {
    let sql = format!(
        "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.segment_id = $2 \
         AND n.seq >= $3 AND n.seq <= $4 ORDER BY n.seq"
    );
    let mut out = Vec::new();
    for link in chain.iter().rev() {
        if link.upto <= after {
            continue;
        }
        let rows = query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(session)
            .bind(link.segment)
            .bind(link.start.max(after + 1))
            .bind(link.upto)
            .fetch_all(&mut *conn)
            .await?;
        for r in rows {
            out.push(Node::from_row(&r)?);
        }
    }
    Ok(out)
}

/// The branch as an append sees it.
pub(crate) struct HeadState {
    pub pos: Pos,
    pub status: String,
    pub version: i64,
    pub state: String,
    pub pending: i64,
    pub session_status: SessionStatus,
    pub owner: String,
    /// The permission bits of the user asked about, if they are a collaborator.
    pub collaborator: Option<i64>,
    /// No node follows the head in its segment: an append extends the segment.
    pub tip: bool,
    /// The head's segment is the root segment: its path is that one segment.
    pub root_segment: bool,
}

pub(crate) async fn head_state(conn: &mut Conn, session: &str, branch: &str) -> Result<HeadState> {
    head_state_for(conn, session, branch, None).await
}

/// [`head_state`], with `user`'s permissions on the session.
async fn head_state_for(
    conn: &mut Conn,
    session: &str,
    branch: &str,
    user: Option<&str>,
) -> Result<HeadState> {
    let row = query(
        "SELECT b.head_id, n.segment_id, n.seq, COALESCE(n.total_tokens, 0), b.status, b.version, \
                b.state, b.state_pending, s.status, s.owner_id, \
                NOT EXISTS(SELECT 1 FROM nodes t WHERE t.session_id = n.session_id \
                           AND t.segment_id = n.segment_id AND t.seq = n.seq + 1), \
                g.parent_segment IS NULL, \
                (SELECT c.perms FROM collaborators c \
                 WHERE c.session_id = b.session_id AND c.user_id = $1), n.hash \
         FROM branches b JOIN sessions s ON s.id = b.session_id \
         JOIN nodes n ON n.session_id = b.session_id AND n.id = b.head_id \
         JOIN segments g ON g.session_id = n.session_id AND g.id = n.segment_id \
         WHERE b.session_id = $2 AND b.name = $3",
    )
    .bind(user)
    .bind(session)
    .bind(branch)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        sessions::exists(conn, session).await?;
        return Err(Error::not_found(format!("branch `{branch}`")));
    };
    let session_status: &str = row.try_get(8)?;
    Ok(HeadState {
        pos: Pos {
            id: row.try_get(0)?,
            segment: row.try_get(1)?,
            seq: row.try_get(2)?,
            total_tokens: row.try_get(3)?,
            hash: row.try_get(13)?,
        },
        status: row.try_get(4)?,
        version: row.try_get(5)?,
        state: row.try_get(6)?,
        pending: row.try_get(7)?,
        session_status: session_status.parse().map_err(Error::Invalid)?,
        owner: row.try_get(9)?,
        collaborator: row.try_get(12)?,
        tip: row.flag(10)?,
        root_segment: row.flag(11)?,
    })
}

/// Who is asking, and what they need to be allowed to do.
pub(crate) type Access<'a> = Option<(&'a str, Permissions)>;

/// Returns the permissions `user` holds on a session (owner: all; none: empty).
pub(crate) fn held(owner: &str, collaborator: Option<i64>, user: &str) -> Permissions {
    if owner == user {
        Permissions::owner()
    } else {
        collaborator.map_or(Permissions::NONE, Permissions::from_bits)
    }
}

/// Checks `held` against `required`: no read access at all looks like a missing session (a
/// stranger learns nothing); read access without the rest is `Forbidden`, naming what is
/// missing.
pub fn check_access(session: &str, held: Permissions, required: Permissions) -> Result<()> {
    if !held.has(Permission::Read) {
        return Err(Error::not_found(format!("session {session}")));
    }
    if !held.covers(required) {
        let missing: Vec<&str> = required
            .list()
            .into_iter()
            .filter(|p| !held.has(*p))
            .map(Permission::as_str)
            .collect();
        return Err(Error::Forbidden(format!(
            "this needs the {} permission on session {session}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Returns a branch's head as [`head_state`] does; with `access`, the user must hold the
/// permissions asked for ([`check_access`]), whatever else is missing.
pub(crate) async fn owned_head(
    conn: &mut Conn,
    session: &str,
    branch: &str,
    access: Access<'_>,
) -> Result<HeadState> {
    let Some((user, required)) = access else {
        return head_state(conn, session, branch).await;
    };
    match head_state_for(conn, session, branch, Some(user)).await {
        Ok(h) => {
            check_access(session, held(&h.owner, h.collaborator, user), required)?;
            Ok(h)
        }
        Err(Error::NotFound(what)) => {
            let found: Option<(String, Option<i64>)> = query_as(
                "SELECT s.owner_id, (SELECT c.perms FROM collaborators c \
                 WHERE c.session_id = s.id AND c.user_id = $1) FROM sessions s WHERE s.id = $2",
            )
            .bind(user)
            .bind(session)
            .fetch_optional(&mut *conn)
            .await?;
            match found {
                Some((owner, collab)) => {
                    check_access(session, held(&owner, collab, user), required)?;
                    Err(Error::NotFound(what))
                }
                None => Err(Error::not_found(format!("session {session}"))),
            }
        }
        Err(e) => Err(e),
    }
}

/// The SQL condition that the user (bound twice) holds the permission bits (bound twice) on
/// the session aliased `s`: the next four placeholders of `m`, bound user, user, bits, bits.
pub(crate) fn may(m: &mut Marks) -> String {
    let (user, again, bits, equal) = (m.next(), m.next(), m.next(), m.next());
    format!(
        "(s.owner_id = {user} OR EXISTS (SELECT 1 FROM collaborators c \
         WHERE c.session_id = s.id AND c.user_id = {again} AND (c.perms & {bits}) = {equal}))"
    )
}

/// Returns the segment a node appended after `at` goes into: `at`'s own segment when `at` is
/// its tip, otherwise a new segment forking there.
pub(crate) async fn slot_after(conn: &mut Conn, session: &str, at: &Pos) -> Result<i64> {
    let taken: bool = query_scalar(
        "SELECT EXISTS(SELECT 1 FROM nodes WHERE session_id = $1 AND segment_id = $2 AND seq = $3)",
    )
    .bind(session)
    .bind(at.segment)
    .bind(at.seq + 1)
    .fetch_one(&mut *conn)
    .await?;
    if !taken {
        return Ok(at.segment);
    }
    new_segment(conn, session, at).await
}

/// Opens a segment forking after `at`.
pub(crate) async fn new_segment(conn: &mut Conn, session: &str, at: &Pos) -> Result<i64> {
    query_scalar(
        "INSERT INTO segments (session_id, parent_segment, fork_seq) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(session)
    .bind(at.segment)
    .bind(at.seq)
    .fetch_one(&mut *conn)
    .await
}

/// A fully prepared node row.
pub(crate) struct NodeInsert<'a> {
    pub session: &'a str,
    pub id: String,
    pub segment: i64,
    pub seq: i64,
    pub parent: Option<&'a str>,
    pub merge_parent: Option<&'a str>,
    pub kind: NodeKind,
    pub author: Option<&'a str>,
    pub content: &'a str,
    pub data: Option<String>,
    pub tokens: Option<i64>,
    pub total_tokens: i64,
    pub created_at: &'a str,
    /// The parents' hashes (see `integrity::node_hash`).
    pub parent_hash: Option<&'a [u8]>,
    pub merge_parent_hash: Option<&'a [u8]>,
}

impl NodeInsert<'_> {
    /// The node's hash in the chain.
    pub fn hash(&self) -> [u8; 32] {
        node_hash(
            self.parent_hash,
            self.merge_parent_hash,
            &NodeFields {
                id: &self.id,
                seq: self.seq,
                parent_id: self.parent,
                merge_parent_id: self.merge_parent,
                kind: self.kind.as_str(),
                author: self.author,
                content: self.content,
                data: self.data.as_deref(),
                tokens: self.tokens,
                created_at: self.created_at,
            },
        )
    }
}

pub(crate) async fn insert_node(conn: &mut Conn, n: &NodeInsert<'_>) -> Result<()> {
    query(
        "INSERT INTO nodes (id, session_id, segment_id, seq, parent_id, merge_parent_id, kind, \
         is_state, author, content, data, tokens, total_tokens, created_at, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&n.id)
    .bind(n.session)
    .bind(n.segment)
    .bind(n.seq)
    .bind(n.parent)
    .bind(n.merge_parent)
    .bind(n.kind.as_str())
    .bind(n.kind.is_state())
    .bind(n.author)
    .bind(n.content)
    .bind(n.data.as_deref())
    .bind(n.tokens)
    .bind(n.total_tokens)
    .bind(n.created_at)
    .bind(&n.hash()[..])
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(crate) async fn insert_snapshot(
    conn: &mut Conn,
    session: &str,
    node: &str,
    state: &str,
) -> Result<()> {
    query(
        "INSERT INTO state_snapshots (session_id, node_id, state) VALUES ($1, $2, $3) \
         ON CONFLICT (session_id, node_id) DO UPDATE SET state = excluded.state",
    )
    .bind(session)
    .bind(node)
    .bind(state)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Moves a branch head with a compare-and-set on its version.
pub(crate) async fn set_head(
    conn: &mut Conn,
    session: &str,
    branch: &str,
    expected_version: i64,
    head: &str,
    state: Option<(&str, i64)>,
    at: &str,
) -> Result<()> {
    let res = match state {
        Some((state, pending)) => {
            query(
                "UPDATE branches SET head_id = $1, version = version + 1, updated_at = $2, \
                 state = $3, state_pending = $4, status = CASE status WHEN 'merged' THEN 'open' \
                 ELSE status END WHERE session_id = $5 AND name = $6 AND version = $7",
            )
            .bind(head)
            .bind(at)
            .bind(state)
            .bind(pending)
            .bind(session)
            .bind(branch)
            .bind(expected_version)
            .execute(&mut *conn)
            .await?
        }
        None => {
            query(
                "UPDATE branches SET head_id = $1, version = version + 1, updated_at = $2, \
                 status = CASE status WHEN 'merged' THEN 'open' ELSE status END \
                 WHERE session_id = $3 AND name = $4 AND version = $5",
            )
            .bind(head)
            .bind(at)
            .bind(session)
            .bind(branch)
            .bind(expected_version)
            .execute(&mut *conn)
            .await?
        }
    };
    if res != 1 {
        return Err(Error::HeadMoved {
            branch: branch.to_string(),
            expected: format!("version {expected_version}"),
            actual: "a newer version".into(),
        });
    }
    Ok(())
}

pub(crate) async fn reflog(
    conn: &mut Conn,
    session: &str,
    branch: &str,
    old: Option<&str>,
    new: &str,
    actor: &str,
    reason: &str,
    at: &str,
) -> Result<()> {
    query(
        "INSERT INTO reflog (session_id, branch, old_head, new_head, actor, reason, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session)
    .bind(branch)
    .bind(old)
    .bind(new)
    .bind(actor)
    .bind(reason)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks a branch or checkpoint name: 1–64 characters of letters, digits, `._-/`.
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !name.starts_with(['.', '/', '-']);
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
        let more = if name.chars().count() > 64 { "…" } else { "" };
        Err(Error::Invalid(format!(
            "{what} name `{shown}{more}` must be 1-64 letters, digits, `.`, `_`, `-` or `/`, \
             not starting with a punctuation mark"
        )))
    }
}

impl Db {
    /// Returns a branch's conversation newest first, `limit` nodes before seq `before`.
    pub async fn messages(
        &self,
        session: &str,
        branch: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Page<Node>> {
        self.messages_checked(None, session, branch, limit, before)
            .await
    }

    /// Like [`Db::messages`], for `user`, who needs read access ([`check_access`]); the check
    /// rides on the read's first query.
    pub async fn messages_as(
        &self,
        user: &str,
        session: &str,
        branch: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Page<Node>> {
        let access = Some((user, Permissions::of([Permission::Read])));
        self.messages_checked(access, session, branch, limit, before)
            .await
    }

    async fn messages_checked(
        &self,
        access: Access<'_>,
        session: &str,
        branch: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Page<Node>> {
        let mut conn = self.read().await?;
        let user = access.map(|(u, _)| u);
        if let Some(page) = last_messages(&mut conn, user, session, branch, limit, before).await? {
            return Ok(page);
        }
        let head = owned_head(&mut conn, session, branch, access).await?;
        let links = head_links(&mut conn, session, &head).await?;
        page_before(
            &mut conn,
            session,
            &links,
            head.pos.seq,
            limit,
            before,
            true,
        )
        .await
    }

    /// Returns the newest summary node on a branch's path, if any (one index probe per
    /// segment of the path, thanks to the `nodes_summary` partial index).
    pub async fn latest_summary(&self, session: &str, branch: &str) -> Result<Option<Node>> {
        let mut conn = self.read().await?;
        let head = owned_head(&mut conn, session, branch, None).await?;
        let links = head_links(&mut conn, session, &head).await?;
        summary_on(&mut conn, session, &links).await
    }

    /// Everything the agent reads for one step, on one connection: the research state at the
    /// head, the newest summary on the path and the last `limit` messages. With `user`, they
    /// need read access (the check rides on the head query).
    pub async fn turn_view(
        &self,
        user: Option<&str>,
        session: &str,
        branch: &str,
        limit: u32,
    ) -> Result<TurnView> {
        let mut conn = self.read().await?;
        let access = user.map(|u| (u, Permissions::of([Permission::Read])));
        let head = owned_head(&mut conn, session, branch, access).await?;
        let links = head_links(&mut conn, session, &head).await?;
        let messages =
            page_before(&mut conn, session, &links, head.pos.seq, limit, None, true).await?;
        let summary = summary_on(&mut conn, session, &links).await?;
        Ok(TurnView {
            state: serde_json::from_str(&head.state)?,
            summary,
            messages,
            head: head.pos.id,
        })
    }

    /// Returns the path ending at a node, newest first (every kind), with a cursor.
    pub async fn path(
        &self,
        session: &str,
        node: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Page<Node>> {
        self.path_page(session, node, limit, before, false).await
    }

    /// Returns the conversation messages on the path ending at a node, newest first, with a
    /// cursor (a shared view's pages).
    pub async fn path_messages(
        &self,
        session: &str,
        node: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Page<Node>> {
        self.path_page(session, node, limit, before, true).await
    }

    async fn path_page(
        &self,
        session: &str,
        node: &str,
        limit: u32,
        before: Option<i64>,
        messages_only: bool,
    ) -> Result<Page<Node>> {
        let mut conn = self.read().await?;
        let p = pos(&mut conn, session, node).await?;
        let links = chain(&mut conn, session, p.segment, p.seq).await?;
        page_before(
            &mut conn,
            session,
            &links,
            p.seq,
            limit,
            before,
            messages_only,
        )
        .await
    }

    /// Returns one node.
    pub async fn node(&self, session: &str, node: &str) -> Result<Node> {
        let sql =
            format!("SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.id = $2");
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(node)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("node {node}")))?;
        Node::from_row(&row)
    }

    /// The session's root node (seq 0): every branch descends from it.
    pub async fn root(&self, session: &str) -> Result<Node> {
        let sql =
            format!("SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.seq = 0");
        let row = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .fetch_optional(&mut *self.read().await?)
            .await?
            .ok_or_else(|| Error::not_found(format!("session {session}")))?;
        Node::from_row(&row)
    }

    /// Creates a branch whose head is `from` (a node id). Copies nothing; the branch's state
    /// is the nearest snapshot plus the events after it.
    pub async fn create_branch(
        &self,
        session: &str,
        name: &str,
        from: &str,
        actor: &str,
    ) -> Result<Branch> {
        check_name("branch", name)?;
        let mut tx = self.write().await?;
        sessions::exists(&mut tx, session).await?;
        let at = pos(&mut tx, session, from).await?;
        let exists: bool = query_scalar(
            "SELECT EXISTS(SELECT 1 FROM branches WHERE session_id = $1 AND name = $2)",
        )
        .bind(session)
        .bind(name)
        .fetch_one(&mut tx)
        .await?;
        if exists {
            return Err(Error::AlreadyExists(format!("branch `{name}`")));
        }
        let (st, pending) = state::state_at(&mut tx, session, &at, self.snapshot_every).await?;
        let now = now();
        query(
            "INSERT INTO branches (session_id, name, head_id, base_id, status, version, state, \
             state_pending, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'open', 1, $5, $6, $7, $8, $9)",
        )
        .bind(session)
        .bind(name)
        .bind(from)
        .bind(from)
        .bind(serde_json::to_string(&st)?)
        .bind(pending)
        .bind(actor)
        .bind(&now)
        .bind(&now)
        .execute(&mut tx)
        .await?;
        reflog(&mut tx, session, name, None, from, actor, "create", &now).await?;
        let b = branch_in(&mut tx, session, name).await?;
        tx.commit().await?;
        Ok(b)
    }

    /// Lists a session's branches; discarded ones only with `include_discarded`.
    pub async fn branches(&self, session: &str, include_discarded: bool) -> Result<Vec<Branch>> {
        let mut conn = self.read().await?;
        sessions::exists(&mut conn, session).await?;
        let sql = format!(
            "SELECT {BRANCH_COLUMNS} FROM branches WHERE session_id = $1 \
             AND ($2 = 1 OR status != 'discarded') ORDER BY created_at, name"
        );
        let rows = query(sqlx::AssertSqlSafe(sql))
            .bind(session)
            .bind(include_discarded)
            .fetch_all(&mut conn)
            .await?;
        rows.iter().map(Branch::from_row).collect()
    }

    /// Returns one branch.
    pub async fn branch(&self, session: &str, name: &str) -> Result<Branch> {
        let mut conn = self.read().await?;
        branch_in(&mut conn, session, name).await
    }

    /// Discards (`discard = true`) or reopens a branch. Its nodes are kept.
    pub async fn set_branch_discarded(
        &self,
        session: &str,
        name: &str,
        discard: bool,
        actor: &str,
    ) -> Result<Branch> {
        let mut tx = self.write().await?;
        let s = sessions::get_in(&mut tx, session).await?;
        if discard && s.default_branch == name {
            return Err(Error::Invalid(format!(
                "`{name}` is the default branch and cannot be discarded"
            )));
        }
        let b = branch_in(&mut tx, session, name).await?;
        let to = if discard { "discarded" } else { "open" };
        if discard && b.status == "discarded" || !discard && b.status != "discarded" {
            return Ok(b);
        }
        let now = now();
        query("UPDATE branches SET status = $1, version = version + 1, updated_at = $2 WHERE session_id = $3 AND name = $4")
            .bind(to)
            .bind(&now)
            .bind(session)
            .bind(name)
            .execute(&mut tx)
            .await?;
        let reason = if discard { "discard" } else { "reopen" };
        reflog(
            &mut tx,
            session,
            name,
            Some(&b.head),
            &b.head,
            actor,
            reason,
            &now,
        )
        .await?;
        audit::append(
            &mut tx,
            session,
            actor,
            &format!("branch.{reason}"),
            &serde_json::json!({"branch": name, "head": b.head}),
        )
        .await?;
        let b = branch_in(&mut tx, session, name).await?;
        tx.commit().await?;
        Ok(b)
    }
}

pub(crate) async fn branch_in(conn: &mut Conn, session: &str, name: &str) -> Result<Branch> {
    let sql = format!("SELECT {BRANCH_COLUMNS} FROM branches WHERE session_id = $1 AND name = $2");
    let row = query(sqlx::AssertSqlSafe(sql))
        .bind(session)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(r) => Branch::from_row(&r),
        None => {
            sessions::exists(conn, session).await?;
            Err(Error::not_found(format!("branch `{name}`")))
        }
    }
}

/// Returns the newest summary node on a path of `session` (one index probe per segment, newest
/// first).
async fn summary_on(conn: &mut Conn, session: &str, links: &[Link]) -> Result<Option<Node>> {
    let sql = format!(
        "SELECT {NODE_COLUMNS} FROM nodes n WHERE n.session_id = $1 AND n.segment_id = $2 \
         AND n.seq >= $3 AND n.seq <= $4 AND n.kind = 'summary' ORDER BY n.seq DESC LIMIT 1"
    );
    for link in links {
        let row = query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(session)
            .bind(link.segment)
            .bind(link.start)
            .bind(link.upto)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            return Ok(Some(Node::from_row(&row)?));
        }
    }
    Ok(None)
}

/// The read fast path: a page of messages taken from the head's own segment in one query
/// that also finds the head and checks the owner. Answers only when that segment holds the
/// whole page (or is the root segment, so there is nothing before it); otherwise `None`, and the
/// caller walks the path, which also reports a missing session or branch precisely.
async fn last_messages(
    conn: &mut Conn,
    user: Option<&str>,
    session: &str,
    branch: &str,
    limit: u32,
    before: Option<i64>,
) -> Result<Option<Page<Node>>> {
    // dialect: PostgreSQL plans this join as a scan of the head's whole segment and a sort
    // (its cost grew with the segment: 1 ms at 600 nodes), so there the caller's path walk,
    // whose per-segment pages are backward index scans under LIMIT, answers instead.
    if conn.dialect() == Dialect::Postgres {
        return Ok(None);
    }
    let limit = i64::from(limit.clamp(1, 1000));
    let read = Permissions::of([Permission::Read]).bits();
    let allowed = if user.is_some() {
        may(&mut Marks::after(3))
    } else {
        "1 = 1".to_string()
    };
    // LIMIT is a literal, never a bound parameter: SQLite plans with a bound LIMIT's value, so
    // binding one marks the statement expired and it is re-prepared on every execution.
    // The page comes back as one JSON row: each row of a result is a separate hand-off from
    // the connection's worker thread, which costs more than SQLite's JSON encoding.
    // dialect: scalar MIN(h.seq, $1) and NODES_AS_JSON: PostgreSQL uses LEAST(h.seq, $1) and json_agg
    let (root, upto) = match conn.dialect() {
        Dialect::Sqlite => ("p.root_segment", "MIN(h.seq, $1)"),
        Dialect::Postgres => ("bool_or(p.root_segment)", "LEAST(h.seq, $1)"),
    };
    let nodes_json = nodes_as_json(conn.dialect());
    let sql = format!(
        "SELECT {root}, {nodes_json} FROM (SELECT g.parent_segment IS NULL AS root_segment, {NODE_COLUMNS} \
           FROM branches b JOIN sessions s ON s.id = b.session_id \
           JOIN nodes h ON h.session_id = b.session_id AND h.id = b.head_id \
           JOIN segments g ON g.session_id = h.session_id AND g.id = h.segment_id \
           JOIN nodes n ON n.session_id = h.session_id AND n.segment_id = h.segment_id \
             AND n.seq >= COALESCE(g.fork_seq + 1, 0) AND n.seq <= {upto} \
             AND (n.is_state = 0 OR n.kind = 'merge') AND n.kind != 'root' \
           WHERE b.session_id = $2 AND b.name = $3 AND {allowed} \
           ORDER BY n.seq DESC LIMIT {}) AS p",
        limit + 1
    );
    let mut q = query(sqlx::AssertSqlSafe(sql))
        .bind(before.map_or(i64::MAX, |b| b.saturating_sub(1)))
        .bind(session)
        .bind(branch);
    if let Some(u) = user {
        q = q.bind(u).bind(u).bind(read).bind(read);
    }
    let row = q.fetch_one(&mut *conn).await?;
    let Some(root) = row.try_get::<Option<bool>, _>(0)? else {
        return Ok(None);
    };
    let mut items = nodes_from_json(row.try_get(1)?)?;
    let full = items.len() as i64 > limit;
    if !full && !root {
        return Ok(None);
    }
    let next_cursor = if full {
        items.truncate(limit as usize);
        items.last().map(|n| n.seq.to_string())
    } else {
        None
    };
    Ok(Some(Page { items, next_cursor }))
}

async fn page_before(
    conn: &mut Conn,
    session: &str,
    chain: &[Link],
    head_seq: i64,
    limit: u32,
    before: Option<i64>,
    messages_only: bool,
) -> Result<Page<Node>> {
    let limit = i64::from(limit.clamp(1, 1000));
    let filter = if messages_only {
        "AND (n.is_state = 0 OR n.kind = 'merge') AND n.kind != 'root'"
    } else {
        ""
    };
    // One JSON row per segment: each result row would be a separate hand-off from the
    // connection's worker thread.
    // dialect: NODES_AS_JSON (json_group_array): PostgreSQL uses json_agg
    let nodes_json = nodes_as_json(conn.dialect());
    let sql = format!(
        "SELECT {nodes_json} FROM (SELECT {NODE_COLUMNS} FROM nodes n \
           WHERE n.session_id = $1 AND n.segment_id = $2 AND n.seq >= $3 AND n.seq <= $4 \
           {filter} ORDER BY n.seq DESC LIMIT "
    );
    let mut items: Vec<Node> = Vec::new();
    let upper = before.map_or(head_seq, |b| (b - 1).min(head_seq));
    for link in chain {
        let remaining = limit + 1 - items.len() as i64;
        if remaining <= 0 {
            break;
        }
        if link.start > upper {
            continue;
        }
        let json: String = query_scalar(sqlx::AssertSqlSafe(format!("{sql}{remaining}) AS p")))
            .bind(session)
            .bind(link.segment)
            .bind(link.start)
            .bind(link.upto.min(upper))
            .fetch_one(&mut *conn)
            .await?;
        items.extend(nodes_from_json(&json)?);
    }
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|n| n.seq.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
