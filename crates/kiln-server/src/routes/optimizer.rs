//! The optimizer as a resource of a branch (`/v1/sessions/{id}/branches/{b}/optimizer/…`):
//! status, space, experiments (JSON, CSV with preview, edit and exclude), suggest, lock, the
//! experiment queue (queue, start, complete, fail), predict, optimum and SVG charts. Thin:
//! each handler is one `Agent` call; reads write nothing.

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router, extract::State};
use kiln_agent::ToolCallRecord;
use kiln_agent::optimizer::{CsvUpload, Plot};
use kiln_session::Error;
use kiln_session::{CONTROLLER_HEADER, ControllerGrant, ControllerLock};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Body, OptionalBody, Path, Query};

const BASE: &str = "/v1/sessions/{id}/branches/{b}/optimizer";

pub fn routes() -> Router<AppState> {
    let at = |p: &str| format!("{BASE}{p}");
    Router::new()
        .route(BASE, get(status))
        .route(&at("/space"), put(define_space))
        .route(&at("/experiments"), get(experiments).post(add_experiments))
        .route(&at("/experiments/csv"), post(upload_csv))
        .route(&at("/experiments/{n}"), patch(edit_experiment))
        .route(&at("/suggest"), post(suggest))
        .route(&at("/locks"), post(lock))
        .route(&at("/queue"), get(queue).post(enqueue))
        .route(&at("/lock"), get(controller).post(acquire).delete(release))
        .route(&at("/lock/renew"), post(renew))
        .route(&at("/export"), get(export))
        .route(&at("/locks/{p}/confirm"), post(confirm_lock))
        .route(&at("/locks/{p}/reject"), post(reject_lock))
        .route(&at("/queue/{q}/start"), post(start_queued))
        .route(&at("/queue/{q}/complete"), post(complete_queued))
        .route(&at("/queue/{q}/fail"), post(fail_queued))
        .route(&at("/predict"), get(predict))
        .route(&at("/optimum"), get(optimum))
        .route(&at("/plots/{file}"), get(plot))
}

async fn status(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.agent.optimizer_status(&caller, &id, &b).await?))
}

async fn experiments(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(
        st.agent.optimizer_experiments(&caller, &id, &b).await?,
    ))
}

/// The controller's lock token the request carries (`Kiln-Lock-Token`), if any.
fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(CONTROLLER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Seconds a controller lock lives unless renewed, when the request names none.
const DEFAULT_TTL: u32 = 300;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcquireBody {
    holder: String,
    #[serde(default)]
    ttl_seconds: Option<u32>,
}

async fn controller(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let lock = st.mgr.controller_lock(&caller, &id, &b).await?;
    Ok(Json(json!({ "controller": lock })))
}

async fn acquire(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<AcquireBody>,
) -> ApiResult<Json<ControllerGrant>> {
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    Ok(Json(
        st.mgr
            .acquire_controller(&caller, &id, &b, &body.holder, ttl)
            .await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    #[serde(default)]
    ttl_seconds: Option<u32>,
}

async fn renew(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<RenewBody>,
) -> ApiResult<Json<ControllerLock>> {
    let token = token(&headers)
        .ok_or_else(|| Error::bad_request("send the lock's token as Kiln-Lock-Token"))?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_TTL);
    Ok(Json(
        st.mgr
            .renew_controller(&caller, &id, &b, token, ttl)
            .await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReleaseQuery {
    #[serde(default)]
    force: bool,
}

async fn release(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<ReleaseQuery>,
) -> ApiResult<Json<ControllerLock>> {
    Ok(Json(
        st.mgr
            .release_controller(&caller, &id, &b, token(&headers), q.force)
            .await?,
    ))
}

/// A body's fields as the tool's arguments, under `action`.
fn action(name: &str, body: Map<String, Value>) -> Value {
    let mut args = body;
    args.insert("action".into(), json!(name));
    Value::Object(args)
}

async fn define_space(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = action("define_space", body);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

async fn add_experiments(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = action("add_experiments", body);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CsvQuery {
    #[serde(default)]
    preview: bool,
    #[serde(default)]
    skip_invalid: bool,
}

async fn upload_csv(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<CsvQuery>,
    text: String,
) -> ApiResult<Json<CsvUpload>> {
    Ok(Json(
        st.agent
            .optimizer_csv(
                &caller,
                &id,
                &b,
                text,
                q.preview,
                q.skip_invalid,
                token(&headers),
            )
            .await?,
    ))
}

async fn edit_experiment(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b, n)): Path<(String, String, usize)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let mut args = action("edit_experiment", body);
    args["experiment"] = json!(n);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

async fn suggest(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    st.limiter.charge(&caller, 1.0).await?;
    let args = action("suggest", body);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

async fn lock(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    st.limiter.charge(&caller, 1.0).await?;
    let args = action("lock", body);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

async fn queue(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(st.agent.optimizer_queue(&caller, &id, &b).await?))
}

async fn enqueue(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b)): Path<(String, String)>,
    OptionalBody(body): OptionalBody<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let args = action("queue", body);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

/// Runs a queue action on entry `q`.
async fn queued_action(
    st: &AppState,
    caller: &kiln_session::Caller,
    (id, b, q): (String, String, String),
    name: &str,
    body: Map<String, Value>,
    token: Option<&str>,
) -> ApiResult<Json<ToolCallRecord>> {
    let mut args = action(name, body);
    args["queued"] = json!(q);
    Ok(Json(
        st.agent
            .optimizer_write(caller, &id, &b, args, token)
            .await?,
    ))
}

async fn start_queued(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
) -> ApiResult<Json<ToolCallRecord>> {
    queued_action(&st, &caller, path, "start", Map::new(), token(&headers)).await
}

async fn complete_queued(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    queued_action(&st, &caller, path, "complete", body, token(&headers)).await
}

async fn fail_queued(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path(path): Path<(String, String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    queued_action(&st, &caller, path, "fail", body, token(&headers)).await
}

async fn confirm_lock(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b, p)): Path<(String, String, String)>,
    OptionalBody(body): OptionalBody<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let mut args = action("confirm_lock", body);
    args["proposal"] = json!(p);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

async fn reject_lock(
    State(st): State<AppState>,
    Auth(caller): Auth,
    headers: HeaderMap,
    Path((id, b, p)): Path<(String, String, String)>,
    Body(body): Body<Map<String, Value>>,
) -> ApiResult<Json<ToolCallRecord>> {
    let mut args = action("reject_lock", body);
    args["proposal"] = json!(p);
    Ok(Json(
        st.agent
            .optimizer_write(&caller, &id, &b, args, token(&headers))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: String,
}

/// The branch's optimizer in another tool's format (`alchemist`: an ALchemist session file).
async fn export(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Json<Value>> {
    if q.format != "alchemist" {
        return Err(Error::bad_request(format!(
            "unknown optimizer export format '{}' (alchemist)",
            q.format
        ))
        .into());
    }
    Ok(Json(
        st.agent
            .optimizer_export_alchemist(&caller, &id, &b)
            .await?,
    ))
}

async fn predict(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
    Query(point): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    st.limiter.charge(&caller, 1.0).await?;
    Ok(Json(
        st.agent.optimizer_predict(&caller, &id, &b, point).await?,
    ))
}

async fn optimum(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    st.limiter.charge(&caller, 1.0).await?;
    Ok(Json(st.agent.optimizer_optimum(&caller, &id, &b).await?))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PlotQuery {
    #[serde(default)]
    variable: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    grid: Option<usize>,
}

async fn plot(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path((id, b, file)): Path<(String, String, String)>,
    Query(q): Query<PlotQuery>,
) -> ApiResult<Response> {
    let need = |v: Option<String>, name: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| Error::bad_request(format!("this chart needs ?{name}=<variable>")))
    };
    let kind = match file.as_str() {
        "convergence.svg" => Plot::Convergence,
        "dependence.svg" => Plot::Dependence {
            variable: need(q.variable, "variable")?,
        },
        "map.svg" => Plot::Map {
            x: need(q.x, "x")?,
            y: need(q.y, "y")?,
        },
        "parity.svg" => Plot::Parity,
        other => {
            return Err(Error::not_found(format!(
                "no chart '{other}' (convergence.svg, dependence.svg, map.svg, parity.svg)"
            ))
            .into());
        }
    };
    let svg = st
        .agent
        .optimizer_plot(&caller, &id, &b, kind, q.grid)
        .await?;
    Ok(([(CONTENT_TYPE, "image/svg+xml; charset=utf-8")], svg).into_response())
}
