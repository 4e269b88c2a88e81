//! Collaborators and contributions: list, add or change (PUT), remove, and who did what.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
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
        .route("/v1/sessions/{id}/collaborators", get(list))
        .route(
            "/v1/sessions/{id}/collaborators/{user}",
            put(set).delete(remove),
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
struct SetBody {
    permissions: Permissions,
}

async fn set(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, user)): Path<(String, String)>,
    Body(body): Body<SetBody>,
) -> ApiResult<Json<Collaborator>> {
    Ok(Json(
        st.mgr
            .share_with_user(&caller, &id, &user, body.permissions)
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
