//! Extractors whose rejections use Kiln's JSON error body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::StatusCode;
use kiln_session::Error;
use kiln_types::ErrorKind;

use crate::error::ApiError;

/// JSON body; malformed JSON is 400, a body over the limit is 413, and a body that is not the
/// documented shape (an array for an object, `null` for an integer) is 400 `invalid_json`
/// naming the place, before serde would quietly take it.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let schema = documented_body(&req);
        let axum::Json(v) = axum::Json::<serde_json::Value>::from_request(req, state).await?;
        shaped(schema, v).map(Body)
    }
}

/// The documented body schema of the request's route, if any.
fn documented_body(req: &axum::extract::Request) -> Option<&'static serde_json::Value> {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|p| crate::openapi::validate::request_schema(req.method(), p.as_str()))
}

/// Holds `v` to `schema` (an object when undocumented), then hands it to serde.
fn shaped<T: serde::de::DeserializeOwned>(
    schema: Option<&serde_json::Value>,
    mut v: serde_json::Value,
) -> Result<T, ApiError> {
    let shape = match schema {
        Some(schema) => crate::openapi::validate::check(schema, &mut v, "body"),
        None if v.is_object() => Ok(()),
        None => Err("body: expected an object".to_owned()),
    };
    shape.map_err(|e| invalid_json(format!("the body is not the documented shape: {e}")))?;
    serde_json::from_value(v).map_err(|e| invalid_json(format!("invalid JSON body: {e}")))
}

fn invalid_json(message: String) -> ApiError {
    ApiError(Error::new(ErrorKind::BadRequest, "invalid_json", message))
}

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        unreadable(r.status(), r.body_text(), "invalid_json")
    }
}

/// A body that could not be taken: over the limit is 413, anything else 400 `code`.
fn unreadable(status: StatusCode, message: String, code: &'static str) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(Error::new(
            ErrorKind::PayloadTooLarge,
            "payload_too_large",
            message,
        ))
    } else {
        ApiError(Error::new(ErrorKind::BadRequest, code, message))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError(Error::new(
            ErrorKind::BadRequest,
            "invalid_query",
            r.body_text(),
        ))
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError(Error::new(
            ErrorKind::BadRequest,
            "invalid_path",
            r.body_text(),
        ))
    }
}

/// A web page's query string: a malformed one (a duplicate or mistyped parameter) renders the
/// HTML error page with 400, as the page's other errors do.
#[derive(Debug)]
pub struct PageQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for PageQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(q)) => Ok(PageQuery(q)),
            Err(r) => Err(crate::html::error_page(&Error::new(
                ErrorKind::BadRequest,
                "invalid_query",
                r.body_text(),
            ))),
        }
    }
}

/// An optional JSON body: none (zero bytes) means the defaults; otherwise as [`Body`].
#[derive(Debug)]
pub struct OptionalBody<T>(pub T);

impl<T, S> FromRequest<S> for OptionalBody<T>
where
    T: serde::de::DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let schema = documented_body(&req);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| unreadable(r.status(), r.body_text(), "invalid_body"))?;
        if bytes.is_empty() {
            return Ok(OptionalBody(T::default()));
        }
        let v = serde_json::from_slice(&bytes)
            .map_err(|e| invalid_json(format!("invalid JSON body: {e}")))?;
        shaped(schema, v).map(OptionalBody)
    }
}
