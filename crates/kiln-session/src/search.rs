//! Full-text search across the sessions a user may read (the seed API's `search_sessions`):
//! session-level filters and permissions choose the sessions in SQL, the tantivy index
//! (kiln-search) finds and ranks the hits in them, and each hit is resolved to the branches
//! that reach it. The index lives in `<data_dir>/search` and is opened on first use.
//!
//! A search is bounded: the query by `[search]`'s limits before anything else, the whole of
//! it (catching the index up, matching, snippets) by a deadline that stops the work. Index
//! work runs on blocking threads, never on the async workers. Storage faults are answered 507
//! or 503, kept as the health report's reason and logged once when they begin and end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln_search::{Opened, SearchIndex, SearchPage, SearchRequest, StorageFault};
use kiln_types::{ErrorKind, SessionStatus, SessionType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{Caller, Error, Result, SessionManager};

/// A search, as the HTTP query string and the CLI give it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    pub q: String,
    /// Only this session.
    pub session: Option<String>,
    pub project: Option<String>,
    pub status: Option<SessionStatus>,
    #[serde(rename = "type")]
    pub session_type: Option<SessionType>,
    pub tag: Option<String>,
    /// Only nodes written by this user (name or id).
    pub author: Option<String>,
    /// Only this node kind (`user`, `assistant`, `discovery`, …, or `session` for session
    /// names and descriptions).
    pub kind: Option<String>,
    /// Only nodes mentioning this formula, or this element.
    pub material: Option<String>,
    pub element: Option<String>,
    /// RFC 3339 bounds on the node's time (inclusive).
    pub from: Option<String>,
    pub to: Option<String>,
    pub cursor: Option<String>,
    /// Sessions per page (default 10, at most 100).
    pub limit: Option<u32>,
    /// Hits shown per session (default 5, at most 20).
    pub per_session: Option<u32>,
}

impl From<kiln_search::Error> for Error {
    fn from(e: kiln_search::Error) -> Self {
        match e {
            kiln_search::Error::Syntax(s) => invalid_query(s),
            kiln_search::Error::Invalid(m) => Error::bad_request(m),
            kiln_search::Error::Timeout => Error::new(
                ErrorKind::Unavailable,
                "search_timeout",
                "the search ran past its deadline and was stopped; retry, or narrow the query",
            ),
            kiln_search::Error::Storage(StorageFault::NoSpace) => Error::insufficient_storage(
                "the search index's disk is full; retry once space is freed",
            ),
            kiln_search::Error::Storage(StorageFault::Unavailable) => {
                Error::storage_unavailable("the search index cannot be written; retry later")
            }
            kiln_search::Error::Db(d) => d.into(),
            other => {
                tracing::error!(error = %other, "search index failure");
                Error::internal("the search index failed; `kiln search reindex` rebuilds it")
            }
        }
    }
}

fn invalid_query(s: kiln_search::SyntaxError) -> Error {
    Error::new(ErrorKind::BadRequest, "invalid_query", s.to_string())
        .with_details(json!({"position": s.position}))
}

/// How the service is doing, as `GET /v1/health` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok`, or `degraded` while a part of the service is failing (it still answers).
    pub status: &'static str,
    /// What is failing, in a few words (no paths, no internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Whether the search index kept up at its last sync or open, and why not. A change of state
/// is logged once (fault begins, fault ends), however often the indexer retries.
#[derive(Debug, Default)]
pub(crate) struct SearchHealth(std::sync::Mutex<Option<&'static str>>);

impl SearchHealth {
    fn reason(&self) -> Option<&'static str> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records how a sync or open went; returns whether that changed the state (and so was
    /// logged).
    fn record<T>(&self, outcome: &std::result::Result<T, kiln_search::Error>) -> bool {
        let now = match outcome {
            Ok(_) => None,
            Err(e) => match fault_reason(e) {
                Some(r) => Some(r),
                // A timeout or a bad request says nothing about the index's health.
                None => return false,
            },
        };
        let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if *held == now {
            return false;
        }
        match (now, outcome) {
            (Some(reason), Err(e)) => {
                tracing::warn!(reason, error = %e, "search index degraded");
            }
            _ => tracing::info!("search index recovered"),
        }
        *held = now;
        true
    }
}

/// The health report's reason for a failed sync or open, or `None` when the failure is not
/// the index's (a deadline, a bad query).
fn fault_reason(e: &kiln_search::Error) -> Option<&'static str> {
    use kiln_search::Error as S;
    Some(match e {
        S::Timeout | S::Syntax(_) | S::Invalid(_) => return None,
        S::Storage(StorageFault::NoSpace) => "search index: no space left on the device",
        S::Storage(StorageFault::Unavailable) => "search index: storage cannot be written",
        S::Db(kiln_db::Error::StorageFull(_)) => "database: no space left on the device",
        S::Db(kiln_db::Error::StorageFailed(_)) => "database: storage is failing",
        S::Db(d) if d.is_busy() => return None,
        S::Db(_) => "search index: cannot read the database",
        S::Index(_) | S::Io(_) => "search index: writes are failing",
    })
}

fn time(name: &str, v: &Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    v.as_deref()
        .map(|s| {
            s.parse::<chrono::DateTime<chrono::Utc>>().map_err(|_| {
                Error::bad_request(format!(
                    "{name} must be an RFC 3339 time, like 2026-11-23T12:00:00Z"
                ))
            })
        })
        .transpose()
}

impl SessionManager {
    /// The search index, opened (and brought up to date, or rebuilt) on first use. The open
    /// runs as a task of its own, so a caller that stops waiting (a deadline) does not abandon
    /// a rebuild half-way: the next caller finds it done or still going.
    pub async fn search_index(&self) -> Result<Arc<SearchIndex>> {
        if let Some(idx) = self.search.get() {
            return Ok(idx.clone());
        }
        let mgr = self.clone();
        tokio::spawn(async move { mgr.open_search_index().await })
            .await
            .map_err(|e| Error::internal(format!("the search index open stopped: {e}")))?
    }

    async fn open_search_index(&self) -> Result<Arc<SearchIndex>> {
        let dir = self.data_dir.join("search");
        let (db, faults, health) = (
            self.db.clone(),
            self.search_faults.clone(),
            self.search_health.clone(),
        );
        self.search
            .get_or_try_init(|| async move {
                let opened = SearchIndex::open(&dir, &db, |_, _| {}, faults).await;
                health.record(&opened);
                let (idx, opened) = opened?;
                if let Opened::Rebuilt { nodes } = opened {
                    tracing::info!(nodes, "search index rebuilt from SQLite");
                }
                Ok::<_, Error>(Arc::new(idx))
            })
            .await
            .cloned()
    }

    /// Applies outstanding changes to the search index; returns how many. After a storage
    /// fault this is also what mends the index: it re-opens the writer and catches up.
    pub async fn sync_search(&self) -> Result<usize> {
        let index = self.search_index().await?;
        let synced = index.sync(&self.db, None).await;
        self.search_health.record(&synced);
        Ok(synced?)
    }

    /// Rebuilds the search index from SQLite, reporting `(done, total)` nodes as it goes.
    pub async fn reindex(&self, progress: impl Fn(u64, u64)) -> Result<u64> {
        let dir = self.data_dir.join("search");
        if let Some(idx) = self.search.get() {
            let rebuilt = idx.rebuild(&self.db, progress).await;
            self.search_health.record(&rebuilt);
            return Ok(rebuilt?);
        }
        let (idx, opened) =
            SearchIndex::open(&dir, &self.db, &progress, self.search_faults.clone()).await?;
        let n = match opened {
            Opened::Rebuilt { nodes } => nodes,
            Opened::Current { .. } => idx.rebuild(&self.db, &progress).await?,
        };
        let _ = self.search.set(Arc::new(idx));
        Ok(n)
    }

    /// How the service is doing: `degraded`, with a short reason, while the search index
    /// cannot keep up (its storage or the database's is failing). Cheap: no IO.
    pub fn health(&self) -> Health {
        match self.search_health.reason() {
            None => Health {
                status: "ok",
                reason: None,
            },
            Some(r) => Health {
                status: "degraded",
                reason: Some(r),
            },
        }
    }

    /// The switch every write to the search index goes through: a test seam that makes the
    /// index's writes fail as a full disk (or a failing device) would.
    pub fn search_faults(&self) -> &kiln_search::FaultSwitch {
        &self.search_faults
    }

    /// Searches every session the caller may read. Hits come grouped per session, best first,
    /// each with the branches that reach it.
    pub async fn search_sessions(&self, caller: &Caller, p: SearchParams) -> Result<SearchPage> {
        let limits = self.search_config.limits();
        // Bounded before anything else is done for it.
        kiln_search::query::prepare(&p.q, &limits).map_err(invalid_query)?;
        let deadline = Instant::now() + Duration::from_millis(self.search_config.deadline_ms);
        let from = time("from", &p.from)?;
        let to = time("to", &p.to)?;
        let author = match &p.author {
            Some(a) => Some(self.find_user(a).await?.id),
            None => None,
        };
        // Who may see what: the sessions the caller owns plus those shared with them, as index
        // terms; a status filter or one named session narrows that to an explicit list.
        let only = if let Some(one) = &p.session {
            // A session the caller may not read is as missing as one that does not exist.
            self.readable(caller, one).await?;
            Some(vec![one.clone()])
        } else if p.status.is_some() {
            let filter = kiln_db::SessionFilter {
                status: p.status,
                project: p.project.clone(),
                session_type: p.session_type,
                tag: p.tag.clone(),
                ..Default::default()
            };
            let ids = self
                .db
                .searchable_sessions(&caller.user_id, &filter)
                .await?;
            Some(ids.into_iter().map(|(id, _)| id).collect())
        } else {
            None
        };
        let access = kiln_search::Access {
            user: caller.user_id.clone(),
            shared: if only.is_none() {
                self.db.shared_with(&caller.user_id).await?
            } else {
                Vec::new()
            },
            only,
        };
        let index = tokio::time::timeout_at(deadline.into(), self.search_index())
            .await
            .map_err(|_| Error::from(kiln_search::Error::Timeout))??;
        let synced = index.sync(&self.db, Some(deadline)).await;
        self.search_health.record(&synced);
        synced?;
        let req = SearchRequest {
            q: p.q,
            project: p.project,
            session_type: p.session_type.map(|t| t.as_str().to_string()),
            tag: p.tag,
            kind: p.kind,
            author,
            material: p.material,
            element: p.element,
            from,
            to,
            limit: p.limit.map_or(10, |n| n as usize),
            hits_per_session: p.per_session.map_or(5, |n| n as usize),
            // `?cursor=` is no cursor.
            cursor: p.cursor.filter(|c| !c.is_empty()),
            limits,
            deadline: Some(deadline),
            ..Default::default()
        };
        let mut page = tokio::task::spawn_blocking(move || index.search(&req, &access))
            .await
            .map_err(|e| Error::internal(format!("the search stopped: {e}")))??;
        let ids: Vec<String> = page.items.iter().map(|s| s.session_id.clone()).collect();
        let names = self.db.session_names(&ids).await?;
        for s in &mut page.items {
            s.session_name = names.get(&s.session_id).cloned().unwrap_or_default();
            let nodes: Vec<String> = s.hits.iter().filter_map(|h| h.node_id.clone()).collect();
            let reach = self.db.branches_reaching(&s.session_id, &nodes).await?;
            for h in &mut s.hits {
                if let Some(b) = h.node_id.as_ref().and_then(|n| reach.get(n)) {
                    h.branches = b.clone();
                }
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The indexer retries every half second; a fault is logged when it begins, when its
    /// reason changes and when it ends, not at every retry.
    #[test]
    fn a_fault_is_recorded_once_per_change_of_state() {
        let h = SearchHealth::default();
        let full = || Err::<(), _>(kiln_search::Error::Storage(StorageFault::NoSpace));
        assert!(!h.record(&Ok(())));
        assert!(h.record(&full()));
        assert!(!h.record(&full()) && !h.record(&full()));
        assert_eq!(
            h.reason(),
            Some("search index: no space left on the device")
        );
        // A timeout says nothing about the index's health.
        assert!(!h.record(&Err::<(), _>(kiln_search::Error::Timeout)));
        assert!(h.reason().is_some());
        let broken = Err::<(), _>(kiln_search::Error::Storage(StorageFault::Unavailable));
        assert!(h.record(&broken));
        assert!(h.record(&Ok(())));
        assert!(!h.record(&Ok(())));
        assert_eq!(h.reason(), None);
    }
}
