//! The route table: one group per file under routes/, merged here with the shared layers.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use kiln_session::Error;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::routes;

/// Builds the whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    let mcp = routes::mcp::routes(&state);
    Router::new()
        .route("/v1/health", get(routes::health::health))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/v1/instance/key", get(routes::instance::key))
        .merge(routes::sessions::routes())
        .merge(routes::live::routes())
        .merge(routes::tree::routes())
        .merge(routes::history::routes())
        .merge(routes::templates::routes())
        .merge(routes::memory::routes())
        .merge(routes::batches::routes())
        .merge(routes::agent::routes())
        .merge(routes::collaborators::routes())
        .merge(routes::shares::routes())
        .merge(routes::search::routes())
        .merge(routes::optimizer::routes())
        .merge(routes::projects::routes())
        .merge(routes::notebook::routes())
        .merge(routes::web::routes())
        .merge(routes::session_page::routes())
        .merge(routes::diff_page::routes())
        .merge(routes::settings_page::routes())
        .merge(routes::memory_page::routes())
        .merge(routes::batch_page::routes())
        .merge(mcp)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(errors_as_json))
        .layer(axum::middleware::map_response(no_store_by_default))
        // A bug must not drop the connection: a panicking handler answers 500 `internal`.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                tracing::debug_span!(
                    "request",
                    method = %req.method(),
                    uri = %redacted(req.uri()),
                    version = ?req.version(),
                )
            }),
        )
        .with_state(state)
}

/// `uri` as logs may show it: API and share tokens (the sign-in link's `token=`, the share
/// paths' `ks_…`) are replaced, so no log line carries a credential.
pub(crate) fn redacted(uri: &Uri) -> String {
    let secret = |s: &str| s.starts_with("kiln_") || s.starts_with("ks_");
    let path: Vec<&str> = uri
        .path()
        .split('/')
        .map(|seg| if secret(seg) { "[redacted]" } else { seg })
        .collect();
    let mut out = path.join("/");
    if let Some(q) = uri.query() {
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) if k == "token" || secret(v) => format!("{k}=[redacted]"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

async fn not_found() -> ApiError {
    Error::not_found("no such route").into()
}

/// Nothing Kiln serves is for a shared cache: signed-in pages, share pages and API answers
/// carry someone's research. Responses say `Cache-Control: no-store` unless they chose a
/// policy of their own (the page script's `no-cache`).
async fn no_store_by_default(mut resp: Response) -> Response {
    resp.headers_mut()
        .entry(axum::http::header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The answer to a request whose handler panicked: logged with its message, answered as
/// `internal` without it.
fn panicked(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = message, "request handler panicked");
    axum::response::IntoResponse::into_response(ApiError(Error::internal(message)))
}

/// Gives every error response that has no body of its own (axum's 405, a bare rejection in
/// text/plain) Kiln's JSON error body, keeping its status and headers (`Allow` on a 405).
/// HTML error pages and JSON errors pass through untouched.
async fn errors_as_json(req: Request, next: axum::middleware::Next) -> Response {
    let method = req.method().clone();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let kind = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(kind.is_empty() || kind.starts_with("text/plain")) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("this route does not accept {method}"),
        ),
        StatusCode::NOT_FOUND => ("not_found", "no such route".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", text),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", text),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", text),
        s if s.is_server_error() => ("internal", "internal error".to_string()),
        _ => ("invalid_request", text),
    };
    let message = if message.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        message
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = serde_json::json!({"error": {
        "code": code,
        "message": message,
        "recoverable": !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
    }});
    Response::from_parts(parts, axum::body::Body::from(body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn tokens_never_reach_a_log_line() {
        let cases = [
            (
                "/login?token=kiln_abc123&next=/web/sessions/x",
                "/login?token=[redacted]&next=/web/sessions/x",
            ),
            (
                "/v1/shared/ks_0123abcd?before=5",
                "/v1/shared/[redacted]?before=5",
            ),
            ("/s/ks_0123abcd", "/s/[redacted]"),
            (
                "/v1/sessions/01a2/branches/main/messages?limit=5",
                "/v1/sessions/01a2/branches/main/messages?limit=5",
            ),
            ("/x?a=kiln_secret", "/x?a=[redacted]"),
        ];
        for (raw, want) in cases {
            let uri: axum::http::Uri = raw.parse().unwrap();
            assert_eq!(redacted(&uri), want);
        }
    }
}
