//! The caller's memory across sessions: list, save, change and delete their notes and
//! preferences. Only the caller's own entries exist here; another user's id answers 404.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use kiln_session::{MemoryEntry, MemoryInput, MemoryPatch, MemorySource, Page};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/memory", get(list).post(save))
        .route("/v1/me/memory/{id}", patch(update).delete(remove))
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
) -> ApiResult<Json<Page<MemoryEntry>>> {
    Ok(Json(Page {
        items: st.mgr.memory(&caller).await?,
        next_cursor: None,
    }))
}

async fn save(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Body(input): Body<MemoryInput>,
) -> ApiResult<(StatusCode, Json<MemoryEntry>)> {
    let saved = st.mgr.remember(&caller, &input, MemorySource::User).await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

async fn update(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(patch): Body<MemoryPatch>,
) -> ApiResult<Json<MemoryEntry>> {
    Ok(Json(st.mgr.update_memory(&caller, &id, &patch).await?))
}

async fn remove(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.mgr.forget(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
