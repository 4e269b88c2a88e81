//! The node hash chain in the store: the backfill of nodes written before migration 0009, and
//! the verification of a session's nodes against their hashes.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Row, SqliteConnection};

use crate::integrity::{NodeFields, node_hash};
use crate::{Db, Result};

/// A node row with what its hash covers.
struct Stored {
    rowid: i64,
    id: String,
    seq: i64,
    parent: Option<String>,
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

async fn stored(conn: &mut SqliteConnection, session: &str) -> Result<Vec<Stored>> {
    let rows = sqlx::query(
        "SELECT rowid, id, seq, parent_id, merge_parent_id, kind, author, content, data, tokens, \
         created_at, hash FROM nodes WHERE session_id = ? ORDER BY rowid",
    )
    .bind(session)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Stored {
                rowid: r.try_get(0)?,
                id: r.try_get(1)?,
                seq: r.try_get(2)?,
                parent: r.try_get(3)?,
                merge_parent: r.try_get(4)?,
                kind: r.try_get(5)?,
                author: r.try_get(6)?,
                content: r.try_get(7)?,
                data: r.try_get(8)?,
                tokens: r.try_get(9)?,
                created_at: r.try_get(10)?,
                hash: r.try_get(11)?,
            })
        })
        .collect()
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
pub(crate) async fn backfill(conn: &mut SqliteConnection) -> Result<()> {
    let sessions: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT session_id FROM nodes WHERE hash IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    for session in sessions {
        let nodes = stored(conn, &session).await?;
        let hashes = recompute(&nodes);
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        for n in nodes.iter().filter(|n| n.hash.is_none()) {
            if let Some(h) = hashes.get(n.id.as_str()) {
                sqlx::query("UPDATE nodes SET hash = ? WHERE rowid = ?")
                    .bind(&h[..])
                    .bind(n.rowid)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        sqlx::query("COMMIT").execute(&mut *conn).await?;
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
        let hashes = recompute(&nodes);
        let first_broken = nodes
            .iter()
            .find(|n| n.hash.as_deref() != hashes.get(n.id.as_str()).map(|h| &h[..]))
            .map(|n| n.id.clone());
        Ok(NodeVerification {
            valid: first_broken.is_none(),
            nodes: nodes.len() as i64,
            first_broken,
        })
    }
}
