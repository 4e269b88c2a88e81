//! The diff page: what changed in the research state between two branches, checkpoints or
//! nodes, in words, and the two conversations since their common ancestor side by side
//! (stacked on a narrow screen). Read-only, rendered on the server.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use kiln_session::{Caller, Error, Node};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::extract::{PageQuery, Path};
use crate::html;
use crate::routes::web::{login_then, redirect, signed_in};

/// How many messages each side shows (the newest).
const PAGE_MESSAGES: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new().route("/web/sessions/{id}/diff", get(diff_page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffPageQuery {
    from: Option<String>,
    to: Option<String>,
}

async fn diff_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<DiffPageQuery>,
    uri: axum::http::Uri,
) -> Response {
    let Some((caller, _)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    match context(&st, &caller, &id, q).await {
        Ok(mut ctx) => {
            ctx["user"] = json!(caller.name);
            html::page(StatusCode::OK, "diff.html", ctx)
        }
        Err(e) => html::error_page(&e),
    }
}

fn side(nodes: &[Node]) -> Vec<Value> {
    nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "kind": n.kind,
                "content": n.content,
                "created_at": n.created_at,
            })
        })
        .collect()
}

async fn context(
    st: &AppState,
    caller: &Caller,
    id: &str,
    q: DiffPageQuery,
) -> Result<Value, Error> {
    let mgr = &st.mgr;
    let session = mgr.session(caller, id).await?;
    let branches = mgr.branches(caller, id, true).await?;
    let checkpoints = mgr.checkpoints(caller, id).await?;
    let points: Vec<&str> = branches
        .iter()
        .map(|b| b.name.as_str())
        .chain(checkpoints.iter().map(|c| c.name.as_str()))
        .collect();
    let from = q.from.filter(|s| !s.trim().is_empty());
    let to = q.to.filter(|s| !s.trim().is_empty());
    let mut ctx = json!({
        "title": session.name,
        "session_id": id,
        "from": from,
        "to": to,
        "points": points,
    });
    if let (Some(from), Some(to)) = (from, to) {
        let d = mgr
            .diff(caller, id, &from, &to, Some(PAGE_MESSAGES))
            .await?;
        ctx["diff"] = json!({
            "base": d.base,
            "changes": d.changes,
            "from_messages": side(&d.only_from),
            "to_messages": side(&d.only_to),
            "from_total": d.only_from_total,
            "to_total": d.only_to_total,
            "from_truncated": d.from_truncated,
            "to_truncated": d.to_truncated,
        });
    }
    Ok(ctx)
}
