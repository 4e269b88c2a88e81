//! `/mcp`: Kiln as an MCP server over streamable HTTP (kiln-mcp's service), behind the same
//! bearer tokens as `/v1`. Only a bearer token opens it (no sign-in cookie): MCP clients send
//! headers, and a page in a browser has no business here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
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
    let gate: kiln_mcp::Gate = Arc::new(move |caller: &Caller| limiter.charge(caller, 1.0));
    let service = kiln_mcp::http_service(state.agent.clone(), Some(gate), state.max_body_bytes);
    Router::new()
        .route_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state.clone(), bearer))
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
