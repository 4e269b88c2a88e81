//! Collaborators and contributions: list, add (POST), change (PATCH), remove, and who did
//! what.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use kiln_session::{Collaborator, Contribution, Page};
use kiln_types::Permissions;
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{id}/collaborators", get(list).post(add))
        .route(
            "/v1/sessions/{id}/collaborators/{user}",
            patch(change).delete(remove),
        )
        .route("/v1/sessions/{id}/contributions", get(contributions))
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<Collaborator>>> {
    Ok(Json(Page {
        items: st.mgr.collaborators(&caller, &id).await?,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    /// A user name (or id).
    user: String,
    permissions: Permissions,
}

async fn add(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<AddBody>,
) -> ApiResult<(StatusCode, Json<Collaborator>)> {
    let c = st
        .mgr
        .invite(&caller, &id, &body.user, body.permissions, false)
        .await?;
    Ok((StatusCode::CREATED, Json(c)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    permissions: Permissions,
}

async fn change(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, user)): Path<(String, String)>,
    Body(body): Body<ChangeBody>,
) -> ApiResult<Json<Collaborator>> {
    Ok(Json(
        st.mgr
            .invite(&caller, &id, &user, body.permissions, true)
            .await?,
    ))
}

async fn remove(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, user)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.mgr.remove_collaborator(&caller, &id, &user).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn contributions(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<Contribution>>> {
    Ok(Json(Page {
        items: st.mgr.contributions(&caller, &id).await?,
        next_cursor: None,
    }))
}
