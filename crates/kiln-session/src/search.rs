//! Full-text search across the sessions a user may read (the seed API's `search_sessions`):
//! session-level filters and permissions choose the sessions in SQL, the tantivy index
//! (kiln-search) finds and ranks the hits in them, and each hit is resolved to the branches
//! that reach it. The index lives in `<data_dir>/search` and is opened on first use.

use std::sync::Arc;

use kiln_search::{Opened, SearchIndex, SearchPage, SearchRequest};
use kiln_types::{ErrorKind, SessionStatus, SessionType};
use serde::Deserialize;
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
    pub limit: Option<usize>,
    /// Hits shown per session (default 5, at most 20).
    pub per_session: Option<usize>,
}

impl From<kiln_search::Error> for Error {
    fn from(e: kiln_search::Error) -> Self {
        match e {
            kiln_search::Error::Syntax(s) => {
                Error::new(ErrorKind::BadRequest, "invalid_query", s.to_string())
                    .with_details(json!({"position": s.position}))
            }
            kiln_search::Error::Invalid(m) => Error::bad_request(m),
            kiln_search::Error::Db(d) => d.into(),
            other => {
                tracing::error!(error = %other, "search index failure");
                Error::internal("the search index failed; `kiln search reindex` rebuilds it")
            }
        }
    }
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
    /// The search index, opened (and brought up to date, or rebuilt) on first use.
    pub async fn search_index(&self) -> Result<Arc<SearchIndex>> {
        let dir = self.data_dir.join("search");
        let db = self.db.clone();
        self.search
            .get_or_try_init(|| async move {
                let (idx, opened) = SearchIndex::open(&dir, &db, |_, _| {}).await?;
                if let Opened::Rebuilt { nodes } = opened {
                    tracing::info!(nodes, "search index rebuilt from SQLite");
                }
                Ok::<_, Error>(Arc::new(idx))
            })
            .await
            .cloned()
    }

    /// Applies outstanding changes to the search index; returns how many.
    pub async fn sync_search(&self) -> Result<usize> {
        Ok(self.search_index().await?.sync(&self.db).await?)
    }

    /// Rebuilds the search index from SQLite, reporting `(done, total)` nodes as it goes.
    pub async fn reindex(&self, progress: impl Fn(u64, u64)) -> Result<u64> {
        let dir = self.data_dir.join("search");
        if let Some(idx) = self.search.get() {
            return Ok(idx.rebuild(&self.db, progress).await?);
        }
        let (idx, opened) = SearchIndex::open(&dir, &self.db, &progress).await?;
        let n = match opened {
            Opened::Rebuilt { nodes } => nodes,
            Opened::Current { .. } => idx.rebuild(&self.db, &progress).await?,
        };
        let _ = self.search.set(Arc::new(idx));
        Ok(n)
    }

    /// Searches every session the caller may read. Hits come grouped per session, best first,
    /// each with the branches that reach it.
    pub async fn search_sessions(&self, caller: &Caller, p: SearchParams) -> Result<SearchPage> {
        if p.q.len() > kiln_search::query::MAX_QUERY_BYTES {
            return Err(Error::new(
                ErrorKind::BadRequest,
                "invalid_query",
                format!(
                    "the query is longer than {} bytes",
                    kiln_search::query::MAX_QUERY_BYTES
                ),
            ));
        }
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
        let index = self.search_index().await?;
        index.sync(&self.db).await?;
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
            limit: p.limit.unwrap_or(10),
            hits_per_session: p.per_session.unwrap_or(5),
            cursor: p.cursor,
            ..Default::default()
        };
        let mut page = index.search(&req, &access)?;
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
