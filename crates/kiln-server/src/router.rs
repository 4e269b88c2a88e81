//! The route table: one group per file under routes/, merged here with the shared layers.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::Request;
use axum::http::Uri;
use axum::routing::get;
use kiln_session::Error;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::routes;

/// Builds the whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/v1/health", get(routes::health::health))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/v1/instance/key", get(routes::instance::key))
        .merge(routes::sessions::routes())
        .merge(routes::tree::routes())
        .merge(routes::history::routes())
        .merge(routes::templates::routes())
        .merge(routes::agent::routes())
        .merge(routes::collaborators::routes())
        .merge(routes::shares::routes())
        .merge(routes::search::routes())
        .merge(routes::web::routes())
        .merge(routes::session_page::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
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
