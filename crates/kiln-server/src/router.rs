//! The route table: one group per file under routes/, merged here with the shared layers.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use kiln_session::Error;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::routes;

/// Builds the whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/health", get(routes::health::health))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .merge(routes::sessions::routes())
        .merge(routes::tree::routes())
        .merge(routes::history::routes())
        .merge(routes::templates::routes())
        .merge(routes::agent::routes())
        .merge(routes::collaborators::routes())
        .merge(routes::shares::routes())
        .merge(routes::search::routes())
        .merge(routes::web::routes())
        .merge(routes::session_page::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn not_found() -> ApiError {
    Error::not_found("no such route").into()
}
