//! Server-rendered pages: templates/html embedded at build time, rendered with minijinja
//! (HTML auto-escaping on, by file name).

use std::sync::OnceLock;

use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_session::Error;
use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: [(&str, &str); 6] = [
    (
        "base.html",
        include_str!("../../../templates/html/base.html"),
    ),
    (
        "share.html",
        include_str!("../../../templates/html/share.html"),
    ),
    (
        "error.html",
        include_str!("../../../templates/html/error.html"),
    ),
    (
        "login.html",
        include_str!("../../../templates/html/login.html"),
    ),
    (
        "session.html",
        include_str!("../../../templates/html/session.html"),
    ),
    (
        "sessions.html",
        include_str!("../../../templates/html/sessions.html"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.add_filter("truncate", truncate);
        for (name, src) in TEMPLATES {
            // The templates are part of the binary; a syntax error fails the tests, and a
            // template that failed to load renders as the plain-text fallback below.
            if let Err(e) = env.add_template(name, src) {
                tracing::error!(template = name, error = %e, "bad HTML template");
            }
        }
        env
    })
}

/// `text | truncate(n)`: the first `n` characters, with `…` when cut.
fn truncate(text: String, n: usize) -> String {
    kiln_agent::clip(&text, n)
}

/// Keeps shared and error pages out of search engines.
pub const NOINDEX: (HeaderName, HeaderValue) = (
    HeaderName::from_static("x-robots-tag"),
    HeaderValue::from_static("noindex"),
);

/// What a page may load: its own script and styles (the inline `<style>` of base.html), its own
/// images and inline SVG; no framing, no plugins, forms only to itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// Renders `template` with `ctx` as an HTML response with `status`.
pub fn page(status: StatusCode, template: &str, ctx: impl Serialize) -> Response {
    let body = env()
        .get_template(template)
        .and_then(|t| t.render(ctx))
        .unwrap_or_else(|e| {
            tracing::error!(template, error = %e, "page rendering failed");
            "<!doctype html><title>Kiln</title><p>This page could not be rendered.</p>".into()
        });
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            NOINDEX,
            (
                HeaderName::from_static("content-security-policy"),
                HeaderValue::from_static(CSP),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
            (
                HeaderName::from_static("referrer-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        body,
    )
        .into_response()
}

/// An error as an HTML page with the error's status.
pub fn error_page(e: &Error) -> Response {
    let status = crate::error::status_of(e.kind);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::GONE => "No longer available",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    page(
        status,
        "error.html",
        serde_json::json!({"title": title, "message": e.message}),
    )
}
