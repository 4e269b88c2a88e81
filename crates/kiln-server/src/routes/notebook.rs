//! The notebook as a resource of a branch (`/v1/sessions/{id}/branches/{b}/notebook/…`):
//! parameters (nested set, get, flatten, history), logs (levels, metadata, filters), metric
//! tracks (append, range read, stats) and files (streamed upload and download, list, delete).
//! Thin: each handler is one `Agent` call; reads write nothing.

use axum::body::Body as RawBody;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use kiln_agent::ToolCallRecord;
use kiln_agent::tools::notebook::files::FileEntry;
use kiln_agent::tools::notebook::logs::LogFilter;
use kiln_agent::tools::notebook::step_range;
use kiln_agent::tools::notebook::tracks::TrackRange;
use kiln_session::Error;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, Path, Query};

const BASE: &str = "/v1/sessions/{id}/branches/{b}/notebook";

pub fn routes() -> Router<AppState> {
    let at = |p: &str| format!("{BASE}{p}");
    Router::new()
        .route(BASE, get(summary))
        .route(&at("/params"), get(params).patch(set_params))
        .route(&at("/params/history"), get(param_history))
        .route(&at("/logs"), get(logs).post(log))
        .route(&at("/tracks"), get(tracks))
        .route(&at("/tracks/{track}"), get(track).post(append))
        .route(&at("/tracks/{track}/stats"), get(stats))
        .route(
            &at("/files"),
            get(files).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route(&at("/files/{file}"), get(download).delete(delete_file))
        .route(&at("/files/{file}/purge"), axum::routing::post(purge_file))
}

/// The largest `offset` or `limit` a page takes (the document's maximum).
const MAX_PAGE_NUMBER: u64 = 1_000_000_000_000_000;

/// A paging number within the documented bound, or a 400 naming it.
fn bounded<T: Copy + TryInto<u64>>(name: &str, v: Option<T>) -> Result<Option<T>, Error> {
    match v {
        Some(n) if n.try_into().map_or(true, |n: u64| n > MAX_PAGE_NUMBER) => Err(
            Error::bad_request(format!("`{name}` must be at most {MAX_PAGE_NUMBER}")),
        ),
        other => Ok(other),
    }
}

/// A body's fields as the tool's arguments, under `action`.
fn action(name: &str, body: Map<String, Value>) -> Value {
    let mut args = body;
    args.insert("action".into(), json!(name));
    Value::Object(args)
}

async fn summary(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.agent.notebook_summary(&caller, &id, &b).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsQuery {
    #[serde(default)]
    flatten: bool,
}

async fn params(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<ParamsQuery>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        st.agent
            .notebook_params(&caller, &id, &b, q.flatten)
            .await?,
    ))
}

/// `PATCH …/params`: the body (an object) is merged into the parameters.
async fn set_params(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = json!({"action": "set_params", "params": body});
    Ok(Json(st.agent.notebook_write(&caller, &id, &b, args).await?))
}

async fn param_history(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        st.agent.notebook_param_history(&caller, &id, &b).await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    level: Option<String>,
    since: Option<String>,
    until: Option<String>,
    /// `key=value`: lines whose metadata has this key with this value.
    meta: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn logs(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> ApiResult<Json<Value>> {
    let meta = match q.meta.as_deref() {
        None | Some("") => None,
        Some(m) => match m.split_once('=') {
            Some((k, v)) if !k.is_empty() => Some((k.to_owned(), v.to_owned())),
            _ => return Err(Error::bad_request("`meta` must be key=value").into()),
        },
    };
    let filter = LogFilter {
        level: q.level,
        // An empty bound is no bound, as an empty `meta` is no filter.
        since: q.since.filter(|t| !t.is_empty()),
        until: q.until.filter(|t| !t.is_empty()),
        meta,
        offset: bounded("offset", q.offset)?.unwrap_or(0),
        limit: bounded("limit", q.limit)?,
    };
    Ok(Json(
        st.agent.notebook_logs(&caller, &id, &b, &filter).await?,
    ))
}

async fn log(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = action("log", body);
    Ok(Json(st.agent.notebook_write(&caller, &id, &b, args).await?))
}

async fn tracks(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.agent.notebook_tracks(&caller, &id, &b).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrackQuery {
    offset: Option<u64>,
    limit: Option<u64>,
    step_min: Option<f64>,
    step_max: Option<f64>,
}

async fn track(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, name)): Path<(String, String, String)>,
    Query(q): Query<TrackQuery>,
) -> ApiResult<Json<Value>> {
    let range = TrackRange {
        offset: bounded("offset", q.offset)?.unwrap_or(0),
        limit: bounded("limit", q.limit)?,
        steps: step_range(q.step_min, q.step_max),
    };
    Ok(Json(
        st.agent
            .notebook_track(&caller, &id, &b, &name, range)
            .await?,
    ))
}

/// `POST …/tracks/{track}`: `{"points": [...]}` or `{"point": {...}}`, each point field →
/// number.
async fn append(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, name)): Path<(String, String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let mut args = action("append_track", body);
    args["name"] = json!(name);
    Ok(Json(st.agent.notebook_write(&caller, &id, &b, args).await?))
}

async fn stats(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        st.agent
            .notebook_track_stats(&caller, &id, &b, &name)
            .await?,
    ))
}

async fn files(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let items: Vec<FileEntry> = st.agent.notebook_files(&caller, &id, &b).await?;
    Ok(Json(json!({"items": items})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: String,
}

/// `POST …/files?name=`: the raw body is the file, its `Content-Type` the file's; streamed
/// to disk while hashed, never held whole.
async fn upload(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<UploadQuery>,
    req: Request,
) -> ApiResult<Json<ToolCallRecord>> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    // A declared length past the limit is refused before a byte is read.
    let limit = st.mgr.max_file_bytes();
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(kiln_agent::tools::notebook::files::too_large(limit).into());
    }
    let stream = req.into_body().into_data_stream();
    Ok(Json(
        st.agent
            .notebook_upload(&caller, &id, &b, &q.name, &content_type, stream)
            .await?,
    ))
}

/// `GET …/files/{file}`: the content, streamed, with its type and length.
async fn download(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, file)): Path<(String, String, String)>,
) -> ApiResult<Response> {
    let (entry, path) = st.agent.notebook_file(&caller, &id, &b, &file).await?;
    let gone = || {
        Error::new(
            kiln_types::ErrorKind::Gone,
            "file_content_gone",
            "the file's content is no longer stored (purged)",
        )
    };
    let path = path.ok_or_else(gone)?;
    let f = tokio::fs::File::open(&path).await.map_err(|e| {
        tracing::warn!(error = %e, path = %path.display(), "a notebook file is missing");
        gone()
    })?;
    let stream = futures::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
    .boxed();
    let mut resp = RawBody::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&entry.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(CONTENT_LENGTH, HeaderValue::from(entry.bytes));
    // Served as given, but never run: no sniffing, and a sandbox if a browser renders it.
    h.insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    let safe: String = entry
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The owner removes a deleted file's content for good (see `Agent::notebook_purge`).
async fn purge_file(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, file)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let (f, removed) = st.agent.notebook_purge(&caller, &id, &b, &file).await?;
    Ok(Json(json!({"file": f, "removed": removed})))
}

async fn delete_file(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, file)): Path<(String, String, String)>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = json!({"action": "delete_file", "id": file});
    Ok(Json(st.agent.notebook_write(&caller, &id, &b, args).await?))
}
