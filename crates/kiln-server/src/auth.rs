//! Bearer-token authentication: the `Auth` extractor yields the calling user.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use kiln_session::{Caller, Error};

use crate::AppState;
use crate::error::ApiError;

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| Error::unauthorized("missing Authorization: Bearer <token> header"))?;
        let value = header
            .to_str()
            .map_err(|_| Error::unauthorized("malformed Authorization header"))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| Error::unauthorized("Authorization must be `Bearer <token>`"))?;
        let token = token.trim();
        match state.mgr.authenticate(token).await {
            Ok(caller) => Ok(Auth(caller)),
            // A share token used as an API token: it exists, but it only reads shared pages.
            Err(e) if state.mgr.is_share_token(token).await.unwrap_or(false) => {
                tracing::debug!(error = %e.message, "share token used on an API route");
                Err(
                    Error::forbidden("share links are read-only: open /v1/shared/{token} instead")
                        .into(),
                )
            }
            Err(e) => Err(e.into()),
        }
    }
}
