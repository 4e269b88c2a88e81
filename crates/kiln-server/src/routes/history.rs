//! Looking back at a session: reflog, diff, audit log and its verification, statistics,
//! export (JSON, Markdown) and import.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kiln_session::{AuditEntry, AuditVerification, Error, Page, ReflogEntry, Session, Statistics};
use kiln_types::ErrorKind;
use serde::Deserialize;
use serde_json::Value;

use crate::AppState;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Path, Query};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions/{id}/reflog", get(reflog))
        .route("/v1/sessions/{id}/diff", get(diff))
        .route("/v1/sessions/{id}/audit", get(audit))
        .route("/v1/sessions/{id}/audit/verify", get(verify))
        .route("/v1/sessions/{id}/audit/export", get(audit_export))
        .route("/v1/sessions/{id}/statistics", get(statistics))
        .route("/v1/sessions/{id}/export", get(export))
        // The import reads its own body up to `integrity.max_import_bytes`.
        .route(
            "/v1/sessions/import",
            post(import).layer(DefaultBodyLimit::disable()),
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditExportQuery {
    /// `markdown` (default) or `json`.
    format: Option<String>,
    /// The branch whose optimizer the record shows (default: the session's default branch).
    branch: Option<String>,
}

/// The stand-alone audit record: Markdown (`text/markdown`) or the same record as JSON.
async fn audit_export(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<AuditExportQuery>,
) -> ApiResult<Response> {
    use kiln_agent::audit_export::{AuditFormat, audit_markdown};
    let format = AuditFormat::parse(q.format.as_deref().unwrap_or("markdown"))?;
    let record = st
        .agent
        .audit_record(&caller, &id, q.branch.as_deref())
        .await?;
    Ok(match format {
        AuditFormat::Json => Json(record).into_response(),
        AuditFormat::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            audit_markdown(&record),
        )
            .into_response(),
    })
}

async fn reflog(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Page<ReflogEntry>>> {
    let items = st.mgr.reflog(&caller, &id).await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    from: String,
    to: String,
    /// The most conversation nodes shown per side (newest first kept).
    limit: Option<usize>,
}

async fn diff(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<Json<Value>> {
    let d = st.mgr.diff(&caller, &id, &q.from, &q.to, q.limit).await?;
    Ok(Json(serde_json::to_value(d).map_err(Error::from)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Only entries of this type: an action (`bayesian_optimizer.lock`) or a dotted prefix of
    /// one (`session`).
    entry_type: Option<String>,
}

async fn audit(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let items = st
        .mgr
        .audit_of_type(&caller, &id, q.entry_type.as_deref())
        .await?;
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

async fn verify(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<AuditVerification>> {
    Ok(Json(st.mgr.verify_audit(&caller, &id).await?))
}

async fn statistics(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<Statistics>> {
    Ok(Json(st.mgr.statistics(&caller, &id).await?))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    format: Option<String>,
}

async fn export(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    st.limiter.charge(&caller, 1.0).await?;
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(Json(st.mgr.export_json(&caller, &id).await?).into_response()),
        "markdown" | "md" => {
            let md = st.mgr.export_markdown(&caller, &id).await?;
            Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response())
        }
        other => {
            Err(Error::bad_request(format!("format `{other}` is not json or markdown")).into())
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportQuery {
    /// `kiln` (default: a Kiln export) or `alchemist` (an ALchemist session file).
    format: Option<String>,
}

async fn import(
    State(st): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult<(StatusCode, Json<Session>)> {
    let alchemist = match q.format.as_deref() {
        None | Some("kiln") => false,
        Some("alchemist") => true,
        Some(other) => {
            return Err(Error::bad_request(format!(
                "unknown import format '{other}' (kiln or alchemist)"
            ))
            .into());
        }
    };
    st.limiter
        .charge(&caller, crate::limits::IMPORT_COST)
        .await?;
    let limit = st.mgr.max_import_bytes();
    // Over the limit: refused before (Content-Length) or while reading, never buffered whole.
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if e.to_string().contains("length limit") {
            kiln_session::import_too_large(limit)
        } else {
            Error::new(
                ErrorKind::BadRequest,
                "invalid_body",
                format!("could not read the body: {e}"),
            )
        }
    })?;
    if alchemist {
        return Ok((
            StatusCode::CREATED,
            Json(st.agent.import_alchemist(&caller, &bytes).await?),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(st.mgr.import_bytes(&caller, bytes.to_vec()).await?),
    ))
}
