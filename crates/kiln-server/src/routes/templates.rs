//! Session templates: list built-in and saved ones, save a session as a template.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use kiln_session::{Page, SessionTemplate};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::Body;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/templates", get(list).post(save))
}

async fn list(
    State(st): State<AppState>,
    Auth(_caller): Auth,
) -> ApiResult<Json<Page<SessionTemplate>>> {
    Ok(Json(Page {
        items: st.mgr.templates().await?,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaveTemplate {
    name: String,
    #[serde(default)]
    description: String,
    from_session: String,
}

async fn save(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Body(t): Body<SaveTemplate>,
) -> ApiResult<(StatusCode, Json<SessionTemplate>)> {
    let saved = st
        .mgr
        .save_as_template(&caller, &t.from_session, &t.name, &t.description)
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}
