//! Session records: create, list, get, update (If-Match), delete, lifecycle, events.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header::IF_MATCH};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_session::{CreateSession, Error, ListQuery, Page, Session, SessionEvent, UpdateSession};
use kiln_types::SessionStatus;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(create).get(list))
        .route("/v1/sessions/{id}", get(show).patch(update).delete(remove))
        .route("/v1/sessions/{id}/status", post(set_status))
        .route("/v1/sessions/{id}/leave", post(leave))
        .route("/v1/sessions/{id}/protect", post(protect))
        .route("/v1/sessions/{id}/unprotect", post(unprotect))
        .route("/v1/sessions/{id}/events", get(events))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FromTemplate {
    template: String,
    #[serde(default)]
    parameters: BTreeMap<String, String>,
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, Error> {
    serde_json::from_value(v).map_err(|e| Error::bad_request(format!("invalid request: {e}")))
}

/// `POST /v1/sessions`: a session, or one made from a template when `parameters` is given
/// (or a `template` without a `name`).
async fn create(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Body(body): Body<Value>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let from_template = body.get("parameters").is_some()
        || (body.get("name").is_none() && body.get("template").is_some_and(Value::is_string));
    let s = if from_template {
        let t: FromTemplate = parse(body)?;
        st.mgr
            .create_from_template(&caller, &t.template, &t.parameters)
            .await?
    } else {
        let req: CreateSession = parse(body)?;
        st.mgr.create_session(&caller, req).await?
    };
    Ok((StatusCode::CREATED, Json(s)))
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Page<Value>>> {
    let page = st.mgr.list_sessions(&caller, q).await?;
    let mut shared = st.mgr.shared_with_caller(&caller, &page.items).await?;
    let items = page
        .items
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["shared_with_you"] = serde_json::to_value(shared.remove(&s.id)).unwrap_or_default();
            v
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// `POST /v1/sessions/{id}/leave`: stop collaborating on a session someone else added you to.
async fn leave(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.mgr.leave_session(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(st.mgr.session(&caller, &id).await?))
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Error> {
    match headers.get(IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .map(|s| s.trim().trim_matches('"'))
            .and_then(|s| s.parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| {
                Error::bad_request("If-Match must be the session version, e.g. If-Match: 3")
            }),
    }
}

async fn update(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    Body(body): Body<UpdateSession>,
) -> ApiResult<Json<Session>> {
    let version = if_match(&headers)?;
    Ok(Json(
        st.mgr.update_session(&caller, &id, body, version).await?,
    ))
}

async fn remove(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    st.mgr.delete_session(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: SessionStatus,
}

async fn set_status(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(b): Body<StatusBody>,
) -> ApiResult<Json<Session>> {
    Ok(Json(st.mgr.set_status(&caller, &id, b.status).await?))
}

async fn events(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<SessionEvent>>> {
    let items = st.mgr.session_events(&caller, &id).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// `POST /v1/sessions/{id}/protect`: every write is refused (409 `session_protected`) until
/// the owner unprotects it.
async fn protect(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(st.mgr.set_protected(&caller, &id, true).await?))
}

async fn unprotect(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Session>> {
    Ok(Json(st.mgr.set_protected(&caller, &id, false).await?))
}
