//! `GET /v1/sessions/{id}/events/stream`: a session's changes as server-sent events (new nodes,
//! branch heads, lifecycle), for anyone who may read it; see kiln-session's `live.rs`.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use kiln_session::Error;
use serde::Deserialize;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Path, Query};

/// How long a stream lasts unless the client asks for less; clients reconnect after it.
const DEFAULT_SECONDS: u64 = 3600;
const MAX_SECONDS: u64 = 86_400;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/sessions/{id}/events/stream", get(stream))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// End the stream after this many seconds (1–86400; default 3600).
    max_seconds: Option<u64>,
}

async fn stream(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Response> {
    let seconds = q.max_seconds.unwrap_or(DEFAULT_SECONDS);
    if !(1..=MAX_SECONDS).contains(&seconds) {
        return Err(
            Error::bad_request(format!("max_seconds must be between 1 and {MAX_SECONDS}")).into(),
        );
    }
    let events = st
        .mgr
        .watch(&caller, &id, Duration::from_secs(seconds))
        .await?;
    let mut n = 0u64;
    let sse = events.map(move |ev| {
        n += 1;
        Ok::<_, Infallible>(
            Event::default()
                .event(ev.kind)
                .id(n.to_string())
                .data(ev.data.to_string()),
        )
    });
    Ok(Sse::new(sse)
        .keep_alive(KeepAlive::default())
        .into_response())
}
