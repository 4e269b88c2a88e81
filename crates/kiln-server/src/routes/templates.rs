//! Session templates: list the ones the caller sees, save a session as a template, show, change
//! and delete one. `{name}` is a template name or `name@owner`; a template the caller does not
//! see answers 404, like one that does not exist.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kiln_session::{Page, SaveTemplate, SessionTemplate, TemplatePatch};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/templates", get(list).post(save))
        .route(
            "/v1/templates/{name}",
            get(show).patch(update).delete(remove),
        )
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<Json<Page<SessionTemplate>>> {
    Ok(Json(Page {
        items: st.mgr.templates(&caller).await?,
        next_cursor: None,
    }))
}

async fn save(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Body(req): Body<SaveTemplate>,
) -> ApiResult<(StatusCode, Json<SessionTemplate>)> {
    let saved = st.mgr.save_as_template(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

async fn show(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SessionTemplate>> {
    Ok(Json(st.mgr.template(&caller, &name).await?))
}

async fn update(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    Body(patch): Body<TemplatePatch>,
) -> ApiResult<Json<SessionTemplate>> {
    Ok(Json(st.mgr.update_template(&caller, &name, patch).await?))
}

async fn remove(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    st.mgr.delete_template(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
