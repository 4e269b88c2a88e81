//! The session page: everything about one session on one branch, rendered on the server so it
//! reads without JavaScript. Controls that write are shown only to callers allowed to use them;
//! they call the JSON API through kiln.js (the sign-in cookie plus the CSRF header), and the
//! conversation streams its answer over SSE.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_session::{Caller, Error, TreeBranch};
use kiln_types::Permission;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::csrf_for;
use crate::extract::{PageQuery, Path};
use crate::html;
use crate::routes::web::{login_then, redirect, signed_in};

/// How many messages the page shows before an "older" link.
const PAGE_MESSAGES: u32 = 50;
/// How many checkpoints the page lists one per line (newest first).
const PAGE_CHECKPOINTS: usize = 20;
/// How many audit entries the page lists (newest first).
const PAGE_AUDIT: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/sessions/{id}", get(session_page))
        .route("/static/kiln.js", get(script))
        .route("/web/needs-script", axum::routing::post(needs_script))
}

/// The page's own script: progressive enhancement, no build step, no CDN.
async fn script() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        include_str!("../../../../templates/html/static/kiln.js"),
    )
        .into_response()
}

/// Where the script-driven forms post when the script did not run: says so instead of
/// silently doing nothing (they carry no CSRF field, so nothing here could write anyway).
async fn needs_script() -> Response {
    html::error_page(&Error::bad_request(
        "This control needs JavaScript. Reading a session and sending messages work without it.",
    ))
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct SessionPageQuery {
    branch: Option<String>,
    /// Cursor for older messages (`next_cursor` of the page before).
    before: Option<String>,
    /// A node to show (a search hit): the page of the conversation around it.
    around: Option<String>,
}

async fn session_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<SessionPageQuery>,
    uri: axum::http::Uri,
) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    match page_context(&st, &caller, &id, q).await {
        Ok(mut ctx) => {
            ctx["csrf"] = json!(csrf_for(&token));
            ctx["user"] = json!(caller.name);
            ctx["model"] = json!(st.agent.model_name());
            ctx["admin"] = json!(caller.is_owner);
            html::page(StatusCode::OK, "session.html", ctx)
        }
        Err(e) => html::error_page(&e),
    }
}

/// Nests the branches under their parents for the tree view.
fn tree_json(branches: &[TreeBranch], parent: Option<&str>) -> Vec<Value> {
    branches
        .iter()
        .filter(|b| b.parent.as_deref() == parent)
        .map(|b| {
            json!({
                "name": b.branch.name,
                "status": b.branch.status,
                "base": b.branch.base,
                "head": b.branch.head,
                "created_at": b.branch.created_at,
                "merged": b.merged.iter().map(|(from, at)| json!({"from": from, "at": at})).collect::<Vec<_>>(),
                "children": tree_json(branches, Some(&b.branch.name)),
            })
        })
        .collect()
}

pub(crate) async fn page_context(
    st: &AppState,
    caller: &Caller,
    id: &str,
    q: SessionPageQuery,
) -> Result<Value, Error> {
    let mgr = &st.mgr;
    let (session, perms) = mgr.session_and_permissions(caller, id).await?;
    let branch = q
        .branch
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| session.default_branch.clone());
    let tree = mgr.branch_tree(caller, id).await?;
    if !tree.iter().any(|b| b.branch.name == branch) {
        return Err(Error::not_found(format!(
            "no open branch `{branch}` in this session"
        )));
    }
    // Around a node: the page ending half a page after it, so it sits mid-page.
    let before = match (&q.before, q.around.as_deref().filter(|a| !a.is_empty())) {
        (None, Some(node)) => Some(
            (mgr.node(caller, id, node).await?.seq + i64::from(PAGE_MESSAGES / 2) + 1).to_string(),
        ),
        _ => q.before.clone(),
    };
    let mut page = mgr
        .messages(caller, id, &branch, Some(PAGE_MESSAGES), before.as_deref())
        .await?;
    page.items.reverse();
    // Authors by name, not id.
    let names = mgr
        .db()
        .user_names(page.items.iter().filter_map(|n| n.author.as_deref()))
        .await?;
    let messages: Vec<Value> = page
        .items
        .iter()
        .map(|n| {
            let mut v = json!(n);
            if let Some(name) = n.author.as_ref().and_then(|a| names.get(a)) {
                v["author"] = json!(name);
            }
            // A tool result's summary line: its text, or why it failed.
            if let Some((words, _)) = n.result_words() {
                v["brief"] = json!(words);
            }
            v
        })
        .collect();
    let state = mgr.state(caller, id, &branch, None).await?;
    let checkpoints = mgr.checkpoints(caller, id).await?;
    let context = st.agent.context(caller, id, Some(&branch)).await?;
    let stats = mgr.statistics(caller, id).await?;
    let (mut audit, verification) = mgr.audit_verified(caller, id).await?;
    audit.reverse();
    audit.truncate(PAGE_AUDIT);
    let manage = perms.has(Permission::Manage);
    let (shares, collaborators) = if manage {
        (
            mgr.shares(caller, id).await?,
            mgr.collaborators(caller, id).await?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    // Each tool with state on this branch shows itself (optimizer tables and plots, notebook
    // metric tracks …); a tool without a view shows its state as JSON.
    let tools: Vec<Value> = state
        .tools
        .iter()
        .map(
            |(name, value)| match st.agent.tools().get(name).and_then(|t| t.view(value)) {
                Some(view) => json!({"name": name, "view": view}),
                None => json!({
                    "name": name,
                    "raw": serde_json::to_string_pretty(value).unwrap_or_default(),
                }),
            },
        )
        .collect();
    // Discoveries by id, for the links and the evidence anchors.
    let discovery_names: BTreeMap<&str, &str> = state
        .discoveries
        .iter()
        .map(|d| (d.id.as_str(), d.description.as_str()))
        .collect();
    let links: Vec<Value> = state
        .links
        .iter()
        .map(|l| {
            json!({
                "from": l.from, "to": l.to, "relationship": l.relationship, "notes": l.notes,
                "from_text": discovery_names.get(l.from.as_str()),
                "to_text": discovery_names.get(l.to.as_str()),
            })
        })
        .collect();
    let materials: Vec<Value> = state
        .materials
        .iter()
        .rev()
        .map(|m| {
            json!({
                "formula": m.formula, "mentions": m.mentions,
                "data": m.data.as_ref().map(|d| serde_json::to_string_pretty(d).unwrap_or_default()),
            })
        })
        .collect();
    // Checkpoint names by the shown node they mark.
    let message_ids: std::collections::HashSet<&str> =
        page.items.iter().map(|n| n.id.as_str()).collect();
    let mut checkpoint_here: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in &checkpoints {
        if message_ids.contains(c.node.as_str()) {
            checkpoint_here.entry(&c.node).or_default().push(&c.name);
        }
    }
    // The newest checkpoints get a line each; older ones (hourly automatic checkpoints add up)
    // are one select.
    let mut newest_first: Vec<&kiln_session::Checkpoint> = checkpoints.iter().collect();
    newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    let (recent, older) = newest_first.split_at(newest_first.len().min(PAGE_CHECKPOINTS));
    let actions = crate::routes::web::lifecycle_actions(session.status);
    let open = session.status.accepts_writes();
    Ok(json!({
        "session": session,
        "branch": branch,
        "perms": {
            "write": perms.has(Permission::Write),
            "comment": perms.has(Permission::Comment),
            "add_materials": perms.has(Permission::AddMaterials),
            "manage": manage,
        },
        "open": open,
        "actions": actions,
        "tree": tree_json(&tree, None),
        "branches": tree.iter().map(|b| &b.branch.name).collect::<Vec<_>>(),
        "messages": messages,
        "older": page.next_cursor,
        "newer": before.is_some(),
        "state": state,
        "links": links,
        "relationships": kiln_types::state::LINK_RELATIONSHIPS,
        "materials": materials,
        "checkpoints": recent,
        "older_checkpoints": older.iter().map(|c| &c.name).collect::<Vec<_>>(),
        "checkpoints_in_view": checkpoint_here,
        "context": context,
        "stats": stats,
        "audit": audit,
        "verification": verification,
        "shares": shares,
        "collaborators": collaborators,
        "tools": tools,
        "public_url": st.public_url,
    }))
}
