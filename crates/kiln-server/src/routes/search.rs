//! `GET /v1/search`: full-text search over every session the caller may read.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use kiln_session::{SearchPage, SearchParams};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::Query;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/search", get(search))
}

async fn search(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<SearchPage>> {
    st.limiter.charge(&caller, 1.0).await?;
    Ok(Json(st.mgr.search_sessions(&caller, params).await?))
}
