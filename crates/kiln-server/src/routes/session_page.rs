//! The session workspace: a sessions sidebar, the conversation on one branch, and a side panel
//! with one tab per concern (research state, branches, optimizer, notebook, audit, sharing),
//! each at its own URL (`/web/sessions/{id}/{tab}`). Rendered on the server so it reads without
//! JavaScript; kiln.js enhances it (streaming, tab switching in place, older history loading
//! upward). A page computes only what its tab shows. `?part=conversation` and `?part=panel`
//! return just that region, for the script to swap in.

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kiln_agent::tools::NotebookState;
use kiln_session::{Caller, Error, ListQuery, Node, SessionSort, TreeBranch};
use kiln_types::{NodeKind, Permission};
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
const PAGE_AUDIT: usize = 100;
/// The tools with a tab of their own.
const OPTIMIZER: &str = "bayesian_optimizer";
const NOTEBOOK: &str = "notebook";
/// How many sessions the sidebar lists (by last activity).
const SIDEBAR_SESSIONS: u32 = 30;

/// The side panel's tabs: URL segment and label.
pub(crate) const TABS: [(&str, &str); 6] = [
    ("state", "Research state"),
    ("branches", "Branches"),
    ("optimizer", "Optimizer"),
    ("notebook", "Notebook"),
    ("audit", "Audit"),
    ("sharing", "Sharing"),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/sessions/{id}", get(session_page))
        .route("/web/sessions/{id}/{tab}", get(session_tab))
        .route(
            "/web/sessions/{id}/notebook/attachment",
            get(notebook_attachment),
        )
        .route("/static/kiln.js", get(script))
        .route("/static/theme.js", get(theme_script))
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

/// The colour-scheme chooser every page loads first (a few lines; before the first paint).
async fn theme_script() -> Response {
    (
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        include_str!("../../../../templates/html/static/theme.js"),
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
    /// Only one region: `conversation` or `panel`.
    part: Option<String>,
    /// The audit tab's filter: entries whose action starts with this.
    #[serde(rename = "type")]
    entry_type: Option<String>,
    /// The notebook tab's log filter: this level and above.
    level: Option<String>,
    /// The sidebar's filter: sessions in this lifecycle status only.
    side_status: Option<String>,
    /// The notebook tab's tracks to chart (`track=a&track=b`; read from the raw query, as the
    /// key repeats).
    #[serde(skip)]
    tracks: Vec<String>,
}

async fn session_page(
    st: State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: PageQuery<SessionPageQuery>,
    uri: axum::http::Uri,
) -> Response {
    render(st, headers, id, "state".into(), q, uri).await
}

async fn session_tab(
    st: State<AppState>,
    headers: HeaderMap,
    Path((id, tab)): Path<(String, String)>,
    q: PageQuery<SessionPageQuery>,
    uri: axum::http::Uri,
) -> Response {
    render(st, headers, id, tab, q, uri).await
}

async fn render(
    State(st): State<AppState>,
    headers: HeaderMap,
    id: String,
    tab: String,
    PageQuery(q): PageQuery<SessionPageQuery>,
    uri: axum::http::Uri,
) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    let mut q = q;
    q.tracks = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("track="))
        .filter_map(|v| {
            percent_encoding::percent_decode_str(&v.replace('+', " "))
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
        .filter(|t| !t.is_empty())
        .take(6)
        .collect();
    if !TABS.iter().any(|(t, _)| *t == tab) {
        return html::error_page(&Error::not_found(format!("no tab `{tab}` on a session")));
    }
    let part = q.part.clone();
    if part
        .as_deref()
        .is_some_and(|p| !matches!(p, "conversation" | "panel" | "sidebar"))
    {
        return html::error_page(&Error::bad_request(
            "`part` is conversation, panel or sidebar",
        ));
    }
    match page_context(&st, &caller, &id, &tab, q).await {
        Ok(mut ctx) => {
            ctx["csrf"] = json!(csrf_for(&token));
            ctx["user"] = json!(caller.name);
            ctx["model"] = json!(st.agent.model_name());
            ctx["admin"] = json!(caller.is_owner);
            ctx["theme"] = json!(html::theme(&headers));
            let template = match part.as_deref() {
                Some("conversation") => "conversation.html",
                Some("sidebar") => "sidebar.html",
                Some("panel") => "panel.html",
                _ => "session.html",
            };
            html::page(StatusCode::OK, template, ctx)
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

/// The conversation as the page shows it: messages with their author's name; a tool call and
/// its result as one card (tool, action, readable result, raw JSON behind a toggle); a summary
/// as one folded line.
fn conversation_items(nodes: &[Node], names: &BTreeMap<String, String>) -> Vec<Value> {
    let results: HashMap<&str, &Node> = nodes
        .iter()
        .filter(|n| n.kind == NodeKind::ToolResult)
        .filter_map(|n| Some((n.data.as_ref()?.get("call_id")?.as_str()?, n)))
        .collect();
    let mut used: std::collections::HashSet<&str> = Default::default();
    let mut out = Vec::with_capacity(nodes.len());
    for n in nodes {
        let data = n.data.as_ref();
        let author = n
            .author
            .as_ref()
            .map(|a| names.get(a).cloned().unwrap_or_else(|| a.clone()));
        match n.kind {
            NodeKind::ToolCall => {
                let name = data.and_then(|d| d.get("name")).and_then(Value::as_str);
                let args = data
                    .and_then(|d| d.get("arguments"))
                    .map(|a| match a {
                        Value::String(s) => serde_json::from_str(s).unwrap_or(a.clone()),
                        other => other.clone(),
                    })
                    .unwrap_or(Value::Null);
                let action = args.get("action").and_then(Value::as_str);
                let result = data
                    .and_then(|d| d.get("call_id"))
                    .and_then(Value::as_str)
                    .and_then(|c| results.get(c).copied());
                if let Some(r) = result {
                    used.insert(r.id.as_str());
                }
                out.push(tool_card(n, name, action, &args, result));
            }
            NodeKind::ToolResult if used.contains(n.id.as_str()) => {}
            NodeKind::ToolResult => {
                let name = data.and_then(|d| d.get("name")).and_then(Value::as_str);
                out.push(tool_card(n, name, None, &Value::Null, Some(n)));
            }
            _ => {
                let mut v = json!({
                    "id": n.id, "kind": n.kind, "parent": n.parent_id, "content": n.content,
                    "created_at": n.created_at, "author": author,
                });
                if n.kind == NodeKind::Summary {
                    v["covers"] = data
                        .and_then(|d| d.get("messages"))
                        .cloned()
                        .unwrap_or(Value::Null);
                }
                if n.kind == NodeKind::Assistant
                    && data
                        .and_then(|d| d.get("interrupted"))
                        .and_then(Value::as_bool)
                        == Some(true)
                {
                    v["interrupted"] = json!(true);
                }
                out.push(v);
            }
        }
    }
    // A tool card whose result the answer right after it repeats (the offline planner answers
    // with the tool's words) folds to one line, so the page does not read the same text twice.
    for i in 1..out.len() {
        let answer = (out[i]["kind"] == json!(NodeKind::Assistant))
            .then(|| out[i]["content"].as_str().unwrap_or("").to_owned());
        if let Some(answer) = answer
            && out[i - 1]["kind"] == "tool"
            && out[i - 1]["text"]
                .as_str()
                .is_some_and(|t| !t.is_empty() && answer.contains(t.trim()))
        {
            out[i - 1]["echoed"] = json!(true);
        }
    }
    group_tool_runs(out)
}

/// Runs of three or more cards of the same tool and action in a row (a script logging a
/// metric each step) fold into one line, "12 × notebook · log metric", that opens in place.
fn group_tool_runs(items: Vec<Value>) -> Vec<Value> {
    const MIN_RUN: usize = 3;
    let key = |v: &Value| -> Option<(String, String)> {
        (v["kind"] == "tool").then(|| {
            (
                v["tool"].as_str().unwrap_or("").to_owned(),
                v["action"].as_str().unwrap_or("").to_owned(),
            )
        })
    };
    let mut out: Vec<Value> = Vec::with_capacity(items.len());
    let mut run: Vec<Value> = Vec::new();
    let flush = |run: &mut Vec<Value>, out: &mut Vec<Value>| {
        if run.len() >= MIN_RUN {
            let first = &run[0];
            out.push(json!({
                "kind": "tool_group", "id": first["id"], "tool": first["tool"],
                "action": first["action"], "count": run.len(),
                "failed": run.iter().filter(|c| c["ok"] == json!(false)).count(),
                "items": std::mem::take(run),
            }));
        } else {
            out.append(run);
        }
    };
    for item in items {
        match (key(&item), run.first().and_then(key)) {
            (Some(k), Some(current)) if k == current => run.push(item),
            (Some(_), _) => {
                flush(&mut run, &mut out);
                run.push(item);
            }
            (None, _) => {
                flush(&mut run, &mut out);
                out.push(item);
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

fn tool_card(
    at: &Node,
    name: Option<&str>,
    action: Option<&str>,
    args: &Value,
    result: Option<&Node>,
) -> Value {
    let (text, ok) = match result {
        Some(r) => match r.result_words() {
            Some((words, failed)) => (words.to_owned(), !failed),
            None => (r.content.clone(), true),
        },
        None => (String::new(), true),
    };
    let raw = json!({
        "arguments": args,
        "result": result.and_then(|r| r.data.as_ref()).and_then(|d| d.get("result").or(d.get("error"))),
    });
    json!({
        "id": at.id, "kind": "tool", "tool": name.unwrap_or("tool"), "action": action,
        "text": text, "ok": ok, "pending": result.is_none(),
        "result_id": result.map(|r| &r.id),
        "raw": serde_json::to_string_pretty(&raw).unwrap_or_default(),
        "created_at": at.created_at,
    })
}

pub(crate) async fn page_context(
    st: &AppState,
    caller: &Caller,
    id: &str,
    tab: &str,
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
    let manage = perms.has(Permission::Manage);
    let open = session.status.accepts_writes();
    let mut ctx = json!({
        "session": session,
        "branch": branch,
        "tab": tab,
        "tabs": TABS.iter().map(|(t, label)| json!({"id": t, "label": label})).collect::<Vec<_>>(),
        "perms": {
            "write": perms.has(Permission::Write),
            "comment": perms.has(Permission::Comment),
            "add_materials": perms.has(Permission::AddMaterials),
            "manage": manage,
        },
        "open": open,
        "actions": crate::routes::web::lifecycle_actions(session.status),
        "branches": tree.iter().map(|b| &b.branch.name).collect::<Vec<_>>(),
        "public_url": st.public_url,
    });

    let part = q.part.as_deref();
    if matches!(part, None | Some("conversation")) {
        // Around a node: the page ending half a page after it, so it sits mid-page.
        let before = match (&q.before, q.around.as_deref().filter(|a| !a.is_empty())) {
            (None, Some(node)) => Some(
                (mgr.node(caller, id, node).await?.seq + i64::from(PAGE_MESSAGES / 2) + 1)
                    .to_string(),
            ),
            _ => q.before.clone(),
        };
        let mut page = mgr
            .messages(caller, id, &branch, Some(PAGE_MESSAGES), before.as_deref())
            .await?;
        page.items.reverse();
        let names = mgr
            .db()
            .user_names(page.items.iter().filter_map(|n| n.author.as_deref()))
            .await?;
        let checkpoints = mgr.checkpoints(caller, id).await?;
        let message_ids: std::collections::HashSet<&str> =
            page.items.iter().map(|n| n.id.as_str()).collect();
        let mut checkpoint_here: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for c in &checkpoints {
            if message_ids.contains(c.node.as_str()) {
                checkpoint_here.entry(&c.node).or_default().push(&c.name);
            }
        }
        // Regenerate belongs to the newest answer only, and only on the newest page.
        let last_answer = if before.is_none() {
            page.items
                .iter()
                .rev()
                .find(|n| n.kind == NodeKind::Assistant)
                .map(|n| n.id.clone())
        } else {
            None
        };
        ctx["messages"] = json!(conversation_items(&page.items, &names));
        ctx["older"] = json!(page.next_cursor);
        ctx["newer"] = json!(before.is_some());
        ctx["checkpoints_in_view"] = json!(checkpoint_here);
        ctx["last_answer"] = json!(last_answer);
    }
    if matches!(part, None | Some("sidebar")) {
        let side_status = match q.side_status.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(
                serde_json::from_value::<kiln_types::SessionStatus>(json!(s))
                    .map_err(|_| Error::bad_request(format!("unknown status `{s}`")))?,
            ),
            None => None,
        };
        let sidebar = mgr
            .list_sessions(
                caller,
                ListQuery {
                    sort: SessionSort::Activity,
                    limit: Some(SIDEBAR_SESSIONS),
                    status: side_status,
                    ..Default::default()
                },
            )
            .await?;
        ctx["sidebar"] = json!(sidebar.items);
        ctx["side_status"] = json!(side_status);
        ctx["sidebar_more"] = json!(sidebar.next_cursor.is_some());
    }
    if matches!(part, None | Some("panel")) {
        let filters = TabFilters {
            entry_type: q.entry_type,
            level: q.level,
            tracks: q.tracks,
        };
        tab_context(
            st, caller, id, tab, &branch, &tree, manage, filters, &mut ctx,
        )
        .await?;
    }
    Ok(ctx)
}

/// The filters a tab takes from the address.
struct TabFilters {
    entry_type: Option<String>,
    level: Option<String>,
    tracks: Vec<String>,
}

/// What one tab shows.
#[allow(clippy::too_many_arguments)]
async fn tab_context(
    st: &AppState,
    caller: &Caller,
    id: &str,
    tab: &str,
    branch: &str,
    tree: &[TreeBranch],
    manage: bool,
    filters: TabFilters,
    ctx: &mut Value,
) -> Result<(), Error> {
    let mgr = &st.mgr;
    match tab {
        "state" => {
            let state = mgr.state(caller, id, branch, None).await?;
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
            ctx["links"] = json!(links);
            ctx["materials"] = json!(materials);
            ctx["relationships"] = json!(kiln_types::state::LINK_RELATIONSHIPS);
            ctx["context"] = json!(st.agent.context(caller, id, Some(branch)).await?);
            ctx["stats"] = json!(mgr.statistics(caller, id).await?);
            // Tools other than the two with their own tab show here.
            let tools: Vec<Value> = state
                .tools
                .iter()
                .filter(|(name, _)| !matches!(name.as_str(), OPTIMIZER | NOTEBOOK))
                .map(|(name, value)| tool_view(st, name, value))
                .collect();
            ctx["tools"] = json!(tools);
            ctx["state"] = json!(state);
            let mut batches = mgr.batches(caller, id).await?;
            batches.truncate(10);
            ctx["batches"] = json!(batches);
        }
        "branches" => {
            let checkpoints = mgr.checkpoints(caller, id).await?;
            // The newest checkpoints get a line each; older ones (hourly automatic checkpoints
            // add up) are one select.
            let mut newest_first: Vec<&kiln_session::Checkpoint> = checkpoints.iter().collect();
            newest_first.sort_by(|a, b| b.created_at.cmp(&a.created_at));
            let (recent, older) = newest_first.split_at(newest_first.len().min(PAGE_CHECKPOINTS));
            ctx["tree"] = json!(tree_json(tree, None));
            let graph = mgr.branch_graph(caller, id).await?;
            ctx["graph"] = json!(crate::graph::render(
                &graph,
                branch,
                &format!("/web/sessions/{id}/branches")
            ));
            ctx["checkpoints"] = json!(recent);
            ctx["older_checkpoints"] = json!(older.iter().map(|c| &c.name).collect::<Vec<_>>());
        }
        "optimizer" => {
            let state = mgr.state(caller, id, branch, None).await?;
            if let Some(value) = state.tools.get(OPTIMIZER) {
                ctx["tool"] = tool_view(st, OPTIMIZER, value);
                // The forms start from the space as it is.
                ctx["opt"] = value.clone();
            }
            ctx["controller"] = json!(mgr.controller_lock(caller, id, branch).await?);
        }
        "notebook" => {
            let state = mgr.state(caller, id, branch, None).await?;
            if let Some(nb) = state
                .tools
                .get(NOTEBOOK)
                .and_then(|v| serde_json::from_value::<NotebookState>(v.clone()).ok())
            {
                let stored = stored_tracks(st, caller, id, branch, &nb, &filters).await?;
                ctx["notebook"] = notebook_view(&nb, &filters, &stored);
            }
        }
        "audit" => {
            let (entries, verification) = mgr.audit_verified(caller, id).await?;
            let mut types: Vec<&str> = entries
                .iter()
                .map(|e| e.action.split('.').next().unwrap_or(&e.action))
                .collect();
            types.sort_unstable();
            types.dedup();
            let wanted = filters.entry_type.filter(|t| !t.is_empty());
            let mut shown: Vec<&kiln_session::AuditEntry> = entries
                .iter()
                .rev()
                .filter(|e| {
                    wanted
                        .as_deref()
                        .is_none_or(|t| kiln_session::entry_type_matches(&e.action, t))
                })
                .collect();
            let matching = shown.len();
            shown.truncate(PAGE_AUDIT);
            let actor_names = mgr
                .db()
                .user_names(shown.iter().map(|e| e.actor.as_str()))
                .await?;
            let audit: Vec<Value> = shown
                .iter()
                .map(|e| {
                    json!({
                        "seq": e.seq, "at": e.at, "action": e.action,
                        "actor": actor_names.get(&e.actor).unwrap_or(&e.actor),
                        "summary": audit_summary(&e.payload),
                    })
                })
                .collect();
            ctx["audit"] = json!(audit);
            ctx["audit_matching"] = json!(matching);
            ctx["audit_types"] = json!(types);
            ctx["audit_type"] = json!(wanted);
            ctx["verification"] = json!(verification);
        }
        "sharing" if manage => {
            ctx["shares"] = json!(mgr.shares(caller, id).await?);
            ctx["collaborators"] = json!(mgr.collaborators(caller, id).await?);
        }
        _ => {}
    }
    Ok(())
}

/// A tool's state as the page shows it: its own view (tables and charts), or its JSON.
fn tool_view(st: &AppState, name: &str, value: &Value) -> Value {
    match st.agent.tools().get(name).and_then(|t| t.view(value)) {
        Some(view) => json!({"name": name, "view": view}),
        None => json!({
            "name": name,
            "raw": serde_json::to_string_pretty(value).unwrap_or_default(),
        }),
    }
}

/// An audit payload in a line of words: its scalar fields as `key: value`.
fn audit_summary(payload: &Value) -> String {
    let Some(map) = payload.as_object() else {
        return String::new();
    };
    map.iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) if !s.is_empty() => Some(format!("{k}: {}", kiln_agent::clip(s, 80))),
            Value::Number(n) => Some(format!("{k}: {n}")),
            Value::Bool(b) => Some(format!("{k}: {b}")),
            _ => None,
        })
        .take(6)
        .collect::<Vec<_>>()
        .join(" · ")
}

/// Log levels from least to most severe.
const LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];
/// Log lines the notebook tab lists (newest first).
const PAGE_LOG: usize = 200;

/// Points of a stored track the notebook tab draws (its first page).
const CHART_POINTS: u64 = 5000;

/// A stored metric track as the tab shows it: its stats, and its points when drawn.
struct StoredTrack {
    name: String,
    stats: Value,
    points: Option<Vec<(f64, f64)>>,
}

/// The field a stored track's chart and columns show: `value` when it has one, else the
/// first field that is not `step`, `epoch` or `index`.
fn shown_field(stats: &Value) -> Option<String> {
    let fields = stats["fields"].as_object()?;
    if fields.contains_key("value") {
        return Some("value".into());
    }
    fields
        .keys()
        .find(|k| !matches!(k.as_str(), "step" | "epoch" | "index"))
        .cloned()
}

/// The branch's stored tracks with their stats, and the points of those the tab draws.
async fn stored_tracks(
    st: &AppState,
    caller: &kiln_session::Caller,
    id: &str,
    branch: &str,
    nb: &NotebookState,
    f: &TabFilters,
) -> Result<Vec<StoredTrack>, Error> {
    let mut out = Vec::new();
    let chosen_any = f
        .tracks
        .iter()
        .any(|t| nb.tracks.contains_key(t) || nb.metrics.contains_key(t));
    for (i, name) in nb.tracks.keys().enumerate() {
        let stats = st
            .agent
            .notebook_track_stats(caller, id, branch, name)
            .await?;
        let drawn = f.tracks.contains(name) || (!chosen_any && nb.metrics.is_empty() && i == 0);
        let points = match (drawn, shown_field(&stats)) {
            (true, Some(field)) => {
                let range = kiln_agent::tools::notebook::tracks::TrackRange {
                    limit: Some(CHART_POINTS),
                    ..Default::default()
                };
                let page = st
                    .agent
                    .notebook_track(caller, id, branch, name, range)
                    .await?;
                let pts = page["points"].as_array().cloned().unwrap_or_default();
                Some(
                    pts.iter()
                        .filter_map(|p| {
                            let x = p.get("step").or_else(|| p.get("index"))?.as_f64()?;
                            Some((x, p.get(&field)?.as_f64()?))
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        out.push(StoredTrack {
            name: name.clone(),
            stats,
            points,
        });
    }
    Ok(out)
}

/// The notebook tab: parameters (dotted keys), metric tracks (several on one chart, picked by
/// name, with their statistics), log lines at or above a level with their metadata, files and
/// attachments to download.
fn notebook_view(nb: &NotebookState, f: &TabFilters, stored: &[StoredTrack]) -> Value {
    let rank = |l: &str| LEVELS.iter().position(|x| x.eq_ignore_ascii_case(l));
    let min = f.level.as_deref().and_then(rank).unwrap_or(0);
    let lines: Vec<&kiln_agent::tools::LogLine> = nb
        .log
        .iter()
        .rev()
        .filter(|l| rank(&l.level).unwrap_or(1) >= min)
        .collect();
    let matching = lines.len();
    let tracks: Vec<Value> = nb
        .metrics
        .iter()
        .map(|(name, pts)| {
            let values = pts.iter().map(|p| p.value).filter(|v| v.is_finite());
            let (mut lo, mut hi, mut sum, mut n) = (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0usize);
            for v in values {
                lo = lo.min(v);
                hi = hi.max(v);
                sum += v;
                n += 1;
            }
            json!({
                "name": name, "count": pts.len(),
                "min": (n > 0).then_some(lo), "max": (n > 0).then_some(hi),
                "mean": (n > 0).then(|| sum / n as f64),
                "last": pts.last().map(|p| p.value),
            })
        })
        .chain(stored.iter().map(|t| {
            let field = shown_field(&t.stats).unwrap_or_default();
            let fs = &t.stats["fields"][&field];
            json!({
                "name": t.name, "count": t.stats["points"], "field": field,
                "min": fs["min"], "max": fs["max"], "mean": fs["mean"], "last": fs["last"],
                "partial": t.stats["points"].as_u64().unwrap_or(0) > CHART_POINTS,
            })
        }))
        .collect();
    // The tracks asked for that exist; by default the first one.
    let mut chosen: Vec<&str> = f
        .tracks
        .iter()
        .map(String::as_str)
        .filter(|t| nb.metrics.contains_key(*t) || stored.iter().any(|s| s.name == *t))
        .collect();
    if chosen.is_empty() {
        if let Some(first) = nb.metrics.keys().next() {
            chosen.push(first);
        } else if let Some(first) = stored.iter().find(|t| t.points.is_some()) {
            chosen.push(&first.name);
        }
    }
    let series: Vec<(&str, Vec<(f64, f64)>)> = chosen
        .iter()
        .map(|name| {
            let pts = match nb.metrics.get(*name) {
                Some(m) => m.iter().map(|p| (p.step as f64, p.value)).collect(),
                None => stored
                    .iter()
                    .find(|t| t.name == *name)
                    .and_then(|t| t.points.clone())
                    .unwrap_or_default(),
            };
            (*name, pts)
        })
        .collect();
    let refs: Vec<(&str, &[(f64, f64)])> = series.iter().map(|(n, p)| (*n, p.as_slice())).collect();
    let chart = (!refs.is_empty())
        .then(|| kiln_bayesopt::plot::lines_svg(&chosen.join(", "), "step", "value", &refs));
    let flat = kiln_agent::tools::notebook::params::flatten(&nb.params);
    json!({
        "params": flat.iter().map(|(k, v)| json!({"name": k, "value": match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }})).collect::<Vec<_>>(),
        "files": nb.files.iter().filter(|f| f.deleted_at.is_none()).collect::<Vec<_>>(),
        "tracks": tracks,
        "chosen": chosen,
        "chart": chart,
        "log": lines.into_iter().take(PAGE_LOG).collect::<Vec<_>>(),
        "log_matching": matching,
        "levels": LEVELS,
        "level": LEVELS[min],
        "attachments": nb.attachments,
    })
}

#[derive(Debug, Deserialize)]
struct AttachmentQuery {
    branch: Option<String>,
    name: String,
}

/// Downloads a notebook attachment of a branch the caller may read. Always as a download, and
/// types a browser would run (HTML, SVG, XML, scripts) as plain bytes.
async fn notebook_attachment(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<AttachmentQuery>,
    uri: axum::http::Uri,
) -> Response {
    let Some((caller, _)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    let found = async {
        let session = st.mgr.session(&caller, &id).await?;
        let branch = q
            .branch
            .filter(|b| !b.is_empty())
            .unwrap_or(session.default_branch);
        let state = st.mgr.state(&caller, &id, &branch, None).await?;
        let nb: NotebookState = state
            .tools
            .get(NOTEBOOK)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let att = nb
            .attachments
            .into_iter()
            .rev()
            .find(|a| a.name == q.name)
            .ok_or_else(|| Error::not_found(format!("no attachment `{}` on {branch}", q.name)))?;
        let gone = || Error::not_found("the attachment's content is no longer stored");
        let path = st
            .mgr
            .content(kiln_session::files::Content::Attachments, &att.sha256)
            .await?
            .ok_or_else(gone)?;
        let bytes = tokio::fs::read(&path).await.map_err(|_| gone())?;
        Ok::<_, Error>((att, bytes))
    }
    .await;
    let (att, bytes) = match found {
        Ok(x) => x,
        Err(e) => return html::error_page(&e),
    };
    let media = att.media_type.to_ascii_lowercase();
    let runnable = ["html", "svg", "xml", "javascript", "ecmascript"]
        .iter()
        .any(|k| media.contains(k));
    let content_type = if runnable || HeaderValue::from_str(&media).is_err() {
        HeaderValue::from_static("application/octet-stream")
    } else {
        HeaderValue::from_str(&media)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    let safe_name: String = att
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{safe_name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (CONTENT_TYPE, content_type),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
            (
                axum::http::header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                axum::http::header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(tool: &str, action: &str) -> Value {
        json!({"kind": "tool", "id": "x", "tool": tool, "action": action, "ok": true})
    }

    #[test]
    fn runs_of_three_or_more_alike_cards_fold_into_one_group() {
        let items = vec![
            card("notebook", "log_metric"),
            card("notebook", "log_metric"),
            card("notebook", "log_metric"),
            card("notebook", "log_metric"),
            card("notebook", "log"),
            json!({"kind": "user", "id": "u"}),
            card("bayesian_optimizer", "suggest"),
            card("bayesian_optimizer", "suggest"),
        ];
        let out = group_tool_runs(items);
        let kinds: Vec<&str> = out.iter().map(|v| v["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["tool_group", "tool", "user", "tool", "tool"]);
        assert_eq!(out[0]["count"], 4);
        assert_eq!(out[0]["items"].as_array().unwrap().len(), 4);
    }
}
