//! Projects: a session found or made by project and name (`PUT
//! /v1/projects/{project}/sessions/{name}`), the caller's projects, and a project's folders as
//! a tree.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use kiln_session::{Found, Page, Project, ProjectTree, PutSession};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{OptionalBody, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list))
        .route("/v1/projects/{project}/sessions", get(tree))
        .route(
            "/v1/projects/{project}/sessions/{name}",
            put(find_or_create),
        )
}

/// 201 when the session was made, 200 when it existed.
async fn find_or_create(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((project, name)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<PutSession>,
) -> ApiResult<(StatusCode, Json<Found>)> {
    let found = st
        .mgr
        .put_project_session(&caller, &project, &name, body)
        .await?;
    let status = if found.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(found)))
}

async fn list(State(st): State<AppState>, Auth(caller): Auth) -> ApiResult<Json<Page<Project>>> {
    Ok(Json(Page {
        items: st.mgr.projects(&caller).await?,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeQuery {
    folder: Option<String>,
}

async fn tree(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(project): Path<String>,
    Query(q): Query<TreeQuery>,
) -> ApiResult<Json<ProjectTree>> {
    Ok(Json(
        st.mgr
            .project_tree(&caller, &project, q.folder.as_deref())
            .await?,
    ))
}
