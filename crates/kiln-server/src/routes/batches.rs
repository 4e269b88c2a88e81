//! Batches: start one (a request template and items, or CSV rows), watch its progress (JSON, or
//! server-sent events), read its results (JSON or CSV) and cancel it. The agent runs it in the
//! background (kiln-agent's `batch.rs`); these routes are thin.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::stream;
use kiln_session::{BatchSpec, BatchView, Caller, Page};
use serde_json::json;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path};

/// How often the progress stream looks at the batch.
const POLL: Duration = Duration::from_millis(250);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{id}/batches", post(start).get(list))
        .route("/v1/sessions/{id}/batches/{batch}", get(show))
        .route("/v1/sessions/{id}/batches/{batch}/cancel", post(cancel))
        .route("/v1/sessions/{id}/batches/{batch}/results.csv", get(csv))
        .route("/v1/sessions/{id}/batches/{batch}/events", get(events))
}

async fn start(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Body(spec): Body<BatchSpec>,
) -> ApiResult<(StatusCode, Json<BatchView>)> {
    st.limiter.charge(&caller, 1.0).await?;
    let view = st.agent.start_batch(&caller, &id, &spec).await?;
    Ok((StatusCode::ACCEPTED, Json(view)))
}

async fn list(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<BatchView>>> {
    Ok(Json(Page {
        items: st.mgr.batches(&caller, &id).await?,
        next_cursor: None,
    }))
}

async fn show(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, batch)): Path<(String, String)>,
) -> ApiResult<Json<BatchView>> {
    Ok(Json(st.mgr.batch(&caller, &id, &batch, true).await?))
}

async fn cancel(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, batch)): Path<(String, String)>,
) -> ApiResult<Json<BatchView>> {
    Ok(Json(st.mgr.cancel_batch(&caller, &id, &batch).await?))
}

async fn csv(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, batch)): Path<(String, String)>,
) -> ApiResult<Response> {
    let view = st.mgr.batch(&caller, &id, &batch, true).await?;
    let text = view.to_csv()?;
    let name = format!("batch-{}.csv", kiln_session::batch_tag(&batch));
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        text,
    )
        .into_response())
}

/// What the stream has sent so far.
struct Seen {
    st: AppState,
    caller: Caller,
    session: String,
    batch: String,
    /// Per item, the status last sent.
    statuses: Vec<String>,
    progress: Option<(u32, u32, u32, u32)>,
    finished: bool,
    n: u64,
}

/// `progress` ({status, total, counts, progress, elapsed_seconds}) whenever the counts change,
/// `item` ({idx, item, status, branch, answer, numbers, error}) as each item finishes, then
/// `done` (the whole batch without its items) and the end of the stream.
async fn events(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, batch)): Path<(String, String)>,
) -> ApiResult<Response> {
    // Checked before the stream starts: an unknown batch is a plain 404.
    st.mgr.batch(&caller, &id, &batch, false).await?;
    let seen = Seen {
        st,
        caller,
        session: id,
        batch,
        statuses: Vec::new(),
        progress: None,
        finished: false,
        n: 0,
    };
    let s = stream::unfold(seen, |mut seen| async move {
        if seen.finished {
            return None;
        }
        let mut out: Vec<Event> = Vec::new();
        loop {
            let view = match seen
                .st
                .mgr
                .batch(&seen.caller, &seen.session, &seen.batch, true)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    seen.finished = true;
                    out.push(
                        Event::default()
                            .event("closed")
                            .data(json!({"reason": e.message, "code": e.code}).to_string()),
                    );
                    break;
                }
            };
            let items = view.items.clone().unwrap_or_default();
            seen.statuses.resize(items.len(), "pending".to_owned());
            for it in &items {
                let was = &mut seen.statuses[it.idx as usize];
                if *was != it.status && !matches!(it.status.as_str(), "pending" | "running") {
                    out.push(Event::default().event("item").data(json!(it).to_string()));
                }
                *was = it.status.clone();
            }
            let c = view.counts;
            let now = (c.done, c.failed, c.cancelled, c.running);
            if seen.progress != Some(now) {
                seen.progress = Some(now);
                out.push(
                    Event::default().event("progress").data(
                        json!({"status": view.batch.status, "total": view.total,
                           "counts": view.counts, "progress": view.progress,
                           "elapsed_seconds": view.elapsed_seconds})
                        .to_string(),
                    ),
                );
            }
            if view.finished() {
                seen.finished = true;
                let summary = BatchView {
                    items: None,
                    ..view
                };
                out.push(
                    Event::default()
                        .event("done")
                        .data(json!(summary).to_string()),
                );
            }
            if !out.is_empty() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let events: Vec<Result<Event, Infallible>> = out
            .into_iter()
            .map(|e| {
                seen.n += 1;
                Ok(e.id(seen.n.to_string()))
            })
            .collect();
        Some((stream::iter(events), seen))
    });
    use futures::StreamExt as _;
    Ok(Sse::new(s.flatten())
        .keep_alive(KeepAlive::default())
        .into_response())
}
