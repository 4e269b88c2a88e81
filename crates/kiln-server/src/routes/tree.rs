//! The conversation tree: branches, messages, state events, state, merge, discard,
//! checkpoints, restore and recover.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::BTreeMap;

use kiln_session::{
    AppendOutcome, Branch, BranchFrom, Checkpoint, EventInput, MergeChoices, MergePreview,
    MergeResult, MessageInput, Node, Page,
};
use kiln_types::{MergeStrategy, ResearchState, Resolution};
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, OptionalBody, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/sessions/{id}/branches",
            get(list_branches).post(create_branch),
        )
        .route(
            "/v1/sessions/{id}/branches/{b}/messages",
            get(messages).post(append_message),
        )
        .route("/v1/sessions/{id}/branches/{b}/events", post(append_event))
        .route("/v1/sessions/{id}/branches/{b}/state", get(state))
        .route("/v1/sessions/{id}/branches/{b}/merge", post(merge))
        .route(
            "/v1/sessions/{id}/branches/{b}/merge/preview",
            post(merge_preview),
        )
        .route("/v1/sessions/{id}/branches/{b}/discard", post(discard))
        .route("/v1/sessions/{id}/branches/{b}/undo", post(undo))
        .route("/v1/sessions/{id}/fresh-branch", post(fresh))
        .route("/v1/sessions/{id}/branches/{b}/reopen", post(reopen))
        .route(
            "/v1/sessions/{id}/checkpoints",
            get(checkpoints).post(create_checkpoint),
        )
        .route(
            "/v1/sessions/{id}/checkpoints/{name}/restore",
            post(restore),
        )
        .route("/v1/sessions/{id}/recover", post(recover))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListBranches {
    #[serde(default)]
    all: bool,
}

async fn list_branches(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListBranches>,
) -> ApiResult<Json<Page<Branch>>> {
    let items = st.mgr.branches(&caller, &id, q.all).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBranch {
    name: String,
    #[serde(default)]
    from: Option<BranchFrom>,
}

async fn create_branch(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(b): Body<NewBranch>,
) -> ApiResult<(StatusCode, Json<Branch>)> {
    let branch = st.mgr.create_branch(&caller, &id, &b.name, b.from).await?;
    Ok((StatusCode::CREATED, Json(branch)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct History {
    limit: Option<u32>,
    before: Option<String>,
}

async fn messages(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<History>,
) -> ApiResult<Json<Page<Node>>> {
    Ok(Json(
        st.mgr
            .messages(&caller, &id, &b, q.limit, q.before.as_deref())
            .await?,
    ))
}

async fn append_message(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(m): Body<MessageInput>,
) -> ApiResult<(StatusCode, Json<AppendOutcome>)> {
    Ok((
        StatusCode::CREATED,
        Json(st.mgr.append_message(&caller, &id, &b, m).await?),
    ))
}

async fn append_event(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(v): Body<Value>,
) -> ApiResult<(StatusCode, Json<AppendOutcome>)> {
    let e: EventInput = serde_json::from_value(v)
        .map_err(|e| kiln_session::Error::bad_request(format!("invalid state event: {e}")))?;
    Ok((
        StatusCode::CREATED,
        Json(st.mgr.append_event(&caller, &id, &b, e).await?),
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct At {
    at: Option<String>,
}

async fn state(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<At>,
) -> ApiResult<Json<ResearchState>> {
    Ok(Json(st.mgr.state(&caller, &id, &b, q.at.as_deref()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MergeBody {
    into: String,
    #[serde(default)]
    strategy: Option<MergeStrategy>,
    /// A resolution per conflict key; conflicts not named fall back to the strategy.
    #[serde(default)]
    resolutions: BTreeMap<String, Resolution>,
}

impl MergeBody {
    fn choices(self) -> (String, MergeChoices) {
        (
            self.into,
            MergeChoices {
                strategy: self.strategy.unwrap_or_default(),
                resolutions: self.resolutions,
            },
        )
    }
}

async fn merge(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(m): Body<MergeBody>,
) -> ApiResult<Json<MergeResult>> {
    st.limiter.charge(&caller, 1.0).await?;
    let (into, choices) = m.choices();
    Ok(Json(
        st.mgr.merge_with(&caller, &id, &b, &into, &choices).await?,
    ))
}

/// The same body as a merge; answers what the merge would do and writes nothing.
async fn merge_preview(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(m): Body<MergeBody>,
) -> ApiResult<Json<MergePreview>> {
    st.limiter.charge(&caller, 1.0).await?;
    let (into, choices) = m.choices();
    Ok(Json(
        st.mgr
            .merge_preview(&caller, &id, &b, &into, &choices)
            .await?,
    ))
}

async fn discard(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Branch>> {
    Ok(Json(st.mgr.discard_branch(&caller, &id, &b).await?))
}

/// The chat's `/undo`: the branch back to before its last question, which stays reachable.
async fn undo(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    let (r, text) = st.mgr.undo_turn(&caller, &id, &b).await?;
    let mut v = serde_json::json!(r);
    v["undone"] = serde_json::json!(text);
    Ok(Json(v))
}

/// The chat's `/clear`: a new branch from the session's root; every branch is kept.
async fn fresh(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<(axum::http::StatusCode, Json<Branch>)> {
    let b = st.mgr.fresh_branch(&caller, &id).await?;
    Ok((axum::http::StatusCode::CREATED, Json(b)))
}

async fn reopen(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Branch>> {
    Ok(Json(st.mgr.reopen_branch(&caller, &id, &b).await?))
}

async fn checkpoints(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<Checkpoint>>> {
    let items = st.mgr.checkpoints(&caller, &id).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCheckpoint {
    name: String,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    node: Option<String>,
}

async fn create_checkpoint(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(c): Body<NewCheckpoint>,
) -> ApiResult<(StatusCode, Json<Checkpoint>)> {
    let cp = st
        .mgr
        .create_checkpoint(
            &caller,
            &id,
            &c.name,
            c.branch.as_deref(),
            c.node.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(cp)))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RestoreBody {
    #[serde(default)]
    branch: Option<String>,
}

async fn restore(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, name)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<RestoreBody>,
) -> ApiResult<Json<Value>> {
    let branch = body.branch;
    let r = st
        .mgr
        .restore(&caller, &id, &name, branch.as_deref())
        .await?;
    Ok(Json(serde_json::to_value(r).unwrap_or_default()))
}

async fn recover(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalBody(body): OptionalBody<RestoreBody>,
) -> ApiResult<Json<Value>> {
    let branch = body.branch;
    let r = st.mgr.recover(&caller, &id, branch.as_deref()).await?;
    Ok(Json(serde_json::to_value(r).unwrap_or_default()))
}
