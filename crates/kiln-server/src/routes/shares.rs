//! Share links: managers create, list and revoke them under `/v1/sessions/{id}/shares`; anyone
//! with a token reads `/v1/shared/{token}` (JSON) or `/s/{token}` (an HTML page). Share
//! tokens only ever read: any other method is 405.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use kiln_session::{CreateShare, Error, Page, ShareLink};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, PageQuery, Path, Query};
use crate::html;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{id}/shares", post(create).get(list))
        .route("/v1/sessions/{id}/shares/{share}", delete(revoke))
        .route("/v1/shared/{token}", get(shared_json).fallback(read_only))
        .route("/s/{token}", get(shared_page).fallback(read_only))
}

async fn create(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(body): Body<CreateShare>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let created = st.mgr.create_share(&caller, &id, body).await?;
    let mut v = serde_json::to_value(&created).unwrap_or_default();
    v["url"] = json!(format!("{}{}", st.public_url, created.path));
    Ok((StatusCode::CREATED, Json(v)))
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<ShareLink>>> {
    Ok(Json(Page {
        items: st.mgr.shares(&caller, &id).await?,
        next_cursor: None,
    }))
}

async fn revoke(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, share)): Path<(String, String)>,
) -> ApiResult<Json<ShareLink>> {
    Ok(Json(st.mgr.revoke_share(&caller, &id, &share).await?))
}

/// A shared view's page: `?before=` takes the `older` cursor of the page after it.
#[derive(Debug, Default, serde::Deserialize)]
struct SharedPage {
    before: Option<String>,
}

async fn shared_json(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<SharedPage>,
) -> Response {
    match st.mgr.open_share(&token, q.before.as_deref()).await {
        Ok(view) => ([html::NOINDEX], Json(view)).into_response(),
        Err(e) => ([html::NOINDEX], ApiError::from(e)).into_response(),
    }
}

async fn shared_page(
    State(st): State<AppState>,
    Path(token): Path<String>,
    PageQuery(q): PageQuery<SharedPage>,
) -> Response {
    match st.mgr.open_share(&token, q.before.as_deref()).await {
        Ok(view) => html::page(
            StatusCode::OK,
            "share.html",
            json!({ "view": view, "paged": q.before.is_some() }),
        ),
        Err(e) => html::error_page(&e),
    }
}

/// Any method but GET and HEAD on a share: 405 naming the two it allows (TRACE included).
async fn read_only() -> Response {
    let e = Error::new(
        kiln_types::ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        "share links are read-only: only GET and HEAD are allowed",
    );
    (
        [
            (
                axum::http::header::ALLOW,
                axum::http::HeaderValue::from_static("GET, HEAD"),
            ),
            html::NOINDEX,
        ],
        ApiError::from(e),
    )
        .into_response()
}
