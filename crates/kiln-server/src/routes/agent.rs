//! The agent over HTTP: a conversational turn (JSON, or SSE with `Accept: text/event-stream`),
//! one tool run directly, the tool list, the context window the model would see, and context
//! control (compress now, pinned items added, cleared by kind and cleaned up, the session summary).

use std::convert::Infallible;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::http::header::ACCEPT;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream;
use kiln_agent::{Compressed, ContextWindow, SessionSummary, ToolCallRecord, ToolInfo, TurnEvent};
use kiln_session::{AppendOutcome, Caller, Cleared, ContextCleanup, ContextItemInput, Error, Page};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, OptionalBody, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/tools", get(tools))
        .route("/v1/sessions/{id}/query", post(query))
        .route("/v1/sessions/{id}/tools/{tool}", post(run_tool))
        .route("/v1/sessions/{id}/context", get(context))
        .route("/v1/sessions/{id}/context/compress", post(compress))
        .route(
            "/v1/sessions/{id}/context/items",
            post(add_item).delete(clear_items),
        )
        .route("/v1/sessions/{id}/context/cleanup", post(cleanup))
        .route("/v1/sessions/{id}/summary", get(summary))
}

async fn tools(State(st): State<AppState>, Auth(_caller): Auth) -> Json<Page<ToolInfo>> {
    Json(Page {
        items: st.agent.tools().infos(),
        next_cursor: None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    message: String,
    #[serde(default)]
    branch: Option<String>,
}

/// Resolves the branch (default: the session's default branch) and checks the session takes
/// messages, so refusals are typed HTTP errors rather than events inside a stream.
async fn target(
    st: &AppState,
    caller: &Caller,
    id: &str,
    branch: Option<String>,
) -> ApiResult<String> {
    let s = st.mgr.active_session(caller, id).await?;
    Ok(branch.unwrap_or(s.default_branch))
}

fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn sse_event(ev: &TurnEvent) -> Event {
    let name = match ev {
        TurnEvent::Started { .. } => "started",
        TurnEvent::Queued { .. } => "queued",
        TurnEvent::Summarised { .. } => "summarised",
        TurnEvent::Token { .. } => "token",
        TurnEvent::ToolCall { .. } => "tool_call",
        TurnEvent::ToolResult { .. } => "tool_result",
        TurnEvent::Discovery(_) => "discovery",
        TurnEvent::Done(_) => "done",
        TurnEvent::Error { .. } => "error",
    };
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".into());
    Event::default().event(name).data(data)
}

async fn query(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<QueryBody>,
) -> ApiResult<Response> {
    st.limiter.charge(&caller, 1.0).await?;
    let branch = target(&st, &caller, &id, body.branch).await?;
    if !wants_stream(&headers) {
        let out = st
            .agent
            .run_turn(&caller, &id, &branch, &body.message, None)
            .await?;
        return Ok(Json(out).into_response());
    }
    if body.message.trim().is_empty() {
        return Err(Error::bad_request("message must not be empty").into());
    }
    // A full line is refused before the stream starts, as a plain 429.
    let queued = st.agent.reserve_turn(&caller, &id, &branch).await?;
    let (tx, rx) = mpsc::channel::<TurnEvent>(64);
    // The turn runs on its own task: a client that disconnects drops the receiver, which the
    // turn notices; it then stores the partial answer marked interrupted and ends cleanly.
    let agent = st.agent.clone();
    tokio::spawn(async move {
        if queued.ahead() > 0 {
            let _ = tx
                .send(TurnEvent::Queued {
                    ahead: queued.ahead(),
                })
                .await;
        }
        let slot = tokio::select! {
            slot = queued.ready() => slot,
            // A client that leaves while waiting gives up its place.
            () = tx.closed() => return,
        };
        match slot {
            Ok(slot) => {
                let _ = agent
                    .run_reserved_turn(slot, &caller, &id, &branch, &body.message, Some(&tx))
                    .await;
            }
            Err(e) => {
                let _ = tx
                    .send(TurnEvent::Error {
                        code: e.code.to_owned(),
                        message: e.message,
                    })
                    .await;
            }
        }
    });
    let events = stream::unfold(rx, |mut rx| async move {
        let ev = rx.recv().await?;
        Some((Ok::<_, Infallible>(sse_event(&ev)), rx))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolBody {
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    branch: Option<String>,
}

async fn run_tool(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: axum::http::HeaderMap,
    Path((id, tool)): Path<(String, String)>,
    Body(body): Body<ToolBody>,
) -> ApiResult<Json<ToolCallRecord>> {
    // Notebook lines and findings are appends, as cheap as a message: a script logging every
    // step must not be throttled. The other tools (a GP fit, a search) are charged.
    if st.agent.tools().get(&tool).is_none_or(|t| t.expensive()) {
        st.limiter.charge(&caller, 1.0).await?;
    }
    let args = body.arguments.unwrap_or(Value::Object(Default::default()));
    if !args.is_object() {
        return Err(Error::bad_request("arguments must be a JSON object").into());
    }
    let token = headers
        .get(kiln_session::CONTROLLER_HEADER)
        .and_then(|v| v.to_str().ok());
    let rec = st
        .agent
        .call_tool_as(&caller, &id, body.branch.as_deref(), &tool, args, token)
        .await?;
    Ok(Json(rec))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ContextQuery {
    #[serde(default)]
    branch: Option<String>,
}

async fn context(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<ContextQuery>,
) -> ApiResult<Json<ContextWindow>> {
    Ok(Json(
        st.agent.context(&caller, &id, q.branch.as_deref()).await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CompressBody {
    #[serde(default)]
    branch: Option<String>,
    /// Messages left out of the summary, newest first (default 4).
    #[serde(default)]
    keep_recent: Option<u32>,
}

async fn compress(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<CompressBody>,
) -> ApiResult<Json<Compressed>> {
    st.limiter.charge(&caller, 1.0).await?;
    let keep = body.keep_recent.unwrap_or(4);
    if keep > 1000 {
        return Err(Error::bad_request("keep_recent must be at most 1000").into());
    }
    Ok(Json(
        st.agent
            .compress_history(&caller, &id, body.branch.as_deref(), keep)
            .await?,
    ))
}

async fn summary(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<ContextQuery>,
) -> ApiResult<Json<SessionSummary>> {
    st.limiter.charge(&caller, 1.0).await?;
    Ok(Json(
        st.agent
            .session_summary(&caller, &id, q.branch.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    kind: String,
    content: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    branch: Option<String>,
}

async fn add_item(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<ItemBody>,
) -> ApiResult<(StatusCode, Json<AppendOutcome>)> {
    let item = ContextItemInput {
        kind: body.kind,
        content: body.content,
        name: body.name,
    };
    let out = st
        .mgr
        .add_context_item(&caller, &id, body.branch.as_deref(), item)
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClearQuery {
    /// A kind, or `all`.
    kind: String,
    #[serde(default)]
    branch: Option<String>,
}

async fn clear_items(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<ClearQuery>,
) -> ApiResult<Json<Cleared>> {
    Ok(Json(
        st.mgr
            .clear_context(&caller, &id, q.branch.as_deref(), &q.kind)
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CleanupBody {
    #[serde(default)]
    older_than_days: Option<u32>,
    #[serde(default)]
    keep_latest: Option<u32>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    branch: Option<String>,
}

async fn cleanup(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<CleanupBody>,
) -> ApiResult<Json<Cleared>> {
    let req = ContextCleanup {
        older_than_days: body.older_than_days,
        keep_latest: body.keep_latest,
        kind: body.kind,
    };
    Ok(Json(
        st.mgr
            .cleanup_context(&caller, &id, body.branch.as_deref(), req)
            .await?,
    ))
}
