//! Research state at any node: the nearest snapshot on the path plus the events after it.

use kiln_types::{NodeKind, ResearchState, StateEvent};

use crate::conn::{Conn, query};
use crate::tree::{Pos, chain, pos};
use crate::{Db, Error, Result};

/// Returns the state at `at` (a node of `session`) and how many events were replayed since the
/// nearest snapshot.
pub(crate) async fn state_at(
    conn: &mut Conn,
    session: &str,
    at: &Pos,
    k: i64,
) -> Result<(ResearchState, i64)> {
    let links = chain(conn, session, at.segment, at.seq).await?;
    let mut events: Vec<(String, String, Option<String>)> = Vec::new();
    let mut base: Option<ResearchState> = None;
    'walk: for link in &links {
        let mut upper = link.upto;
        loop {
            let rows = query(sqlx::AssertSqlSafe(format!(
                "SELECT n.id, n.kind, n.data, s.state, n.seq FROM nodes n \
                 LEFT JOIN state_snapshots s ON s.session_id = n.session_id AND s.node_id = n.id \
                 WHERE n.session_id = $1 AND n.segment_id = $2 AND n.seq >= $3 AND n.seq <= $4 \
                 AND n.is_state = 1 \
                 ORDER BY n.seq DESC LIMIT {}",
                k + 1
            )))
            .bind(session)
            .bind(link.segment)
            .bind(link.start)
            .bind(upper)
            .fetch_all(&mut *conn)
            .await?;
            let n = rows.len() as i64;
            for r in rows {
                if let Some(snap) = r.try_get::<Option<&str>, _>(3)? {
                    base = Some(serde_json::from_str(snap)?);
                    break 'walk;
                }
                upper = r.try_get::<i64, _>(4)? - 1;
                events.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
            }
            if n <= k {
                break;
            }
        }
    }
    let mut state = base.unwrap_or_default();
    let replayed = events.len() as i64;
    for (id, kind, data) in events.into_iter().rev() {
        if kind == NodeKind::Merge.as_str() {
            return Err(Error::Corrupt(format!(
                "merge node {id} has no state snapshot"
            )));
        }
        let data = data.ok_or_else(|| Error::Corrupt(format!("state node {id} has no data")))?;
        let event: StateEvent = serde_json::from_str(&data)?;
        state.apply(&id, &event);
    }
    Ok((state, replayed))
}

impl Db {
    /// Returns the materialised state at a branch head (O(1)).
    pub async fn head_state(&self, session: &str, branch: &str) -> Result<ResearchState> {
        let mut conn = self.read().await?;
        let h = crate::tree::head_state(&mut conn, session, branch).await?;
        Ok(serde_json::from_str(&h.state)?)
    }

    /// Returns the state at any node: the nearest snapshot plus at most K replayed events.
    pub async fn state_at_node(&self, session: &str, node: &str) -> Result<ResearchState> {
        let mut conn = self.read().await?;
        let p = pos(&mut conn, session, node).await?;
        Ok(state_at(&mut conn, session, &p, self.snapshot_every)
            .await?
            .0)
    }
}
