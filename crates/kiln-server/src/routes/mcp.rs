//! `/mcp`: Kiln as an MCP server over streamable HTTP (kiln-mcp's service), behind the same
//! bearer tokens as `/v1`. Only a bearer token opens it (no sign-in cookie): MCP clients send
//! headers, and a page in a browser has no business here. An MCP session belongs to the user
//! whose token opened it: a request naming another user's `Mcp-Session-Id` is answered as if
//! the session did not exist, so a leaked id reads nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use kiln_session::{Caller, Error};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiError;

pub fn routes(state: &AppState) -> Router<AppState> {
    let limiter = state.limiter.clone();
    // Expensive MCP calls (agent turns, searches, merges, tools that compute) draw from the
    // same per-user budget as their /v1 routes.
    let gate: kiln_mcp::Gate = Arc::new(move |caller: Caller| {
        let limiter = limiter.clone();
        Box::pin(async move { limiter.charge(&caller, 1.0).await })
    });
    let service = kiln_mcp::http_service(state.agent.clone(), Some(gate), state.max_body_bytes);
    let owners = Owners::default();
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn(move |req, next| {
            let owners = owners.clone();
            async move { owned(owners, req, next).await }
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), bearer))
}

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
/// Most MCP sessions remembered; past it the oldest are forgotten (their clients start anew).
const MAX_OWNED: usize = 10_000;

/// Session id to user id, and the ids oldest first.
type OwnerTable = (HashMap<String, String>, std::collections::VecDeque<String>);

/// Which user opened each MCP session.
#[derive(Clone, Default)]
struct Owners(Arc<Mutex<OwnerTable>>);

impl Owners {
    fn owner(&self, id: &str) -> Option<String> {
        self.0.lock().ok()?.0.get(id).cloned()
    }

    fn record(&self, id: String, user: String) {
        if let Ok(mut g) = self.0.lock() {
            let (map, order) = &mut *g;
            if map.insert(id.clone(), user).is_none() {
                order.push_back(id);
            }
            while order.len() > MAX_OWNED {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
    }

    fn forget(&self, id: &str) {
        if let Ok(mut g) = self.0.lock() {
            g.0.remove(id);
            g.1.retain(|x| x != id);
        }
    }
}

/// Keeps each MCP session to the user who opened it.
async fn owned(owners: Owners, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError(Error::unauthorized("no caller")).into_response();
    };
    let named = req
        .headers()
        .get(&SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(id) = &named
        && owners
            .owner(id)
            .is_some_and(|owner| owner != caller.user_id)
    {
        return ApiError(Error::not_found("no such MCP session")).into_response();
    }
    let deleting = req.method() == Method::DELETE;
    let resp = next.run(req).await;
    match (
        &named,
        resp.headers()
            .get(&SESSION_ID)
            .and_then(|v| v.to_str().ok()),
    ) {
        (None, Some(new)) => owners.record(new.to_owned(), caller.user_id.clone()),
        (Some(id), _) if deleting && resp.status().is_success() => owners.forget(id),
        _ => {}
    }
    resp
}

/// Resolves the bearer token to a [`Caller`] the MCP service reads from the request, or
/// answers 401/403 with Kiln's JSON error body.
async fn bearer(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(AUTHORIZATION) {
        return ApiError(Error::unauthorized(
            "missing Authorization: Bearer <token> header",
        ))
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &st).await {
        Ok(Auth(caller)) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => e.into_response(),
    }
}
