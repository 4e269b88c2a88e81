//! The node hash chain in the store: the backfill of nodes written before migration 0009, and
//! the verification of a session's nodes against their hashes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::conn::{Conn, Dialect, query, query_scalar};
use crate::integrity::{NodeFields, node_hash};
use crate::{Db, Result};

/// A node row with what its hash covers.
#[derive(sqlx::FromRow)]
pub(crate) struct Stored {
    rowid: i64,
    id: String,
    seq: i64,
    #[sqlx(rename = "parent_id")]
    parent: Option<String>,
    #[sqlx(rename = "merge_parent_id")]
    merge_parent: Option<String>,
    kind: String,
    author: Option<String>,
    content: String,
    data: Option<String>,
    tokens: Option<i64>,
    created_at: String,
    hash: Option<Vec<u8>>,
}

impl Stored {
    fn hash_with(&self, parent: Option<&[u8]>, merge_parent: Option<&[u8]>) -> [u8; 32] {
        node_hash(
            parent,
            merge_parent,
            &NodeFields {
                id: &self.id,
                seq: self.seq,
                parent_id: self.parent.as_deref(),
                merge_parent_id: self.merge_parent.as_deref(),
                kind: &self.kind,
                author: self.author.as_deref(),
                content: &self.content,
                data: self.data.as_deref(),
                tokens: self.tokens,
                created_at: &self.created_at,
            },
        )
    }
}

async fn stored(conn: &mut Conn, session: &str) -> Result<Vec<Stored>> {
    match conn {
        Conn::Lite(c) => stored_in(&mut *c, session).await,
        Conn::Pg(c) => stored_in(&mut **c, session).await,
    }
}

/// A session's nodes in write order with what their hashes cover, from either database.
async fn stored_in<'e, DB, E>(conn: E, session: &str) -> Result<Vec<Stored>>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    Stored: for<'r> sqlx::FromRow<'r, DB::Row>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    Ok(sqlx::query_as(
        "SELECT rowid, id, seq, parent_id, merge_parent_id, kind, author, content, data, tokens, \
         created_at, hash FROM nodes WHERE session_id = $1 ORDER BY rowid",
    )
    .bind(session.to_string())
    .fetch_all(conn)
    .await?)
}

/// Checks a session's nodes against their hashes, in either database.
pub(crate) async fn verify_in<'e, DB, E>(conn: E, session: &str) -> Result<NodeVerification>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    Stored: for<'r> sqlx::FromRow<'r, DB::Row>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
{
    Ok(verify_stored(&stored_in(conn, session).await?))
}

fn verify_stored(nodes: &[Stored]) -> NodeVerification {
    let hashes = recompute(nodes);
    let first_broken = nodes
        .iter()
        .find(|n| n.hash.as_deref() != hashes.get(n.id.as_str()).map(|h| &h[..]))
        .map(|n| n.id.clone());
    NodeVerification {
        valid: first_broken.is_none(),
        nodes: nodes.len() as i64,
        first_broken,
    }
}

/// Recomputes every node's hash from its stored fields, parents first. Returns the hashes by
/// node id (a node whose parent is missing is left out).
fn recompute(nodes: &[Stored]) -> HashMap<&str, [u8; 32]> {
    let mut done: HashMap<&str, [u8; 32]> = HashMap::with_capacity(nodes.len());
    // Rowids grow with time, so a parent nearly always comes first: one or two passes.
    loop {
        let before = done.len();
        for n in nodes {
            if done.contains_key(n.id.as_str()) {
                continue;
            }
            let get = |p: &Option<String>| match p {
                None => Some(None),
                Some(p) => done.get(p.as_str()).map(|h| Some(*h)),
            };
            if let (Some(p), Some(m)) = (get(&n.parent), get(&n.merge_parent)) {
                let h = n.hash_with(p.as_ref().map(|h| &h[..]), m.as_ref().map(|h| &h[..]));
                done.insert(n.id.as_str(), h);
            }
        }
        if done.len() == before || done.len() == nodes.len() {
            return done;
        }
    }
}

/// Gives nodes written before migration 0009 their hash (once: the partial index finds none
/// afterwards).
pub(crate) async fn backfill(conn: &mut Conn) -> Result<()> {
    let sessions: Vec<String> =
        query_scalar("SELECT DISTINCT session_id FROM nodes WHERE hash IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    for session in sessions {
        let nodes = stored(conn, &session).await?;
        let hashes = recompute(&nodes);
        // dialect: BEGIN IMMEDIATE: PostgreSQL uses BEGIN
        let begin = match conn.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        query(begin).execute(&mut *conn).await?;
        for n in nodes.iter().filter(|n| n.hash.is_none()) {
            if let Some(h) = hashes.get(n.id.as_str()) {
                query("UPDATE nodes SET hash = $1 WHERE session_id = $2 AND rowid = $3")
                    .bind(&h[..])
                    .bind(&session)
                    .bind(n.rowid)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        query("COMMIT").execute(&mut *conn).await?;
        tracing::info!(session = %session, nodes = nodes.len(), "node hashes written");
    }
    Ok(())
}

/// Whether a session's nodes match their hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVerification {
    pub valid: bool,
    /// Nodes checked.
    pub nodes: i64,
    /// The first node (in write order) whose stored hash is not the recomputed one: its
    /// content, author, data or a parent was changed after it was written.
    pub first_broken: Option<String>,
}

impl Db {
    /// Recomputes the hash of every node of a session from its stored fields.
    pub async fn verify_nodes(&self, session: &str) -> Result<NodeVerification> {
        let mut conn = self.read().await?;
        crate::sessions::exists(&mut conn, session).await?;
        let nodes = stored(&mut conn, session).await?;
        drop(conn);
        Ok(verify_stored(&nodes))
    }
}
