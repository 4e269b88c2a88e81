//! Authentication: the `Auth` extractor yields the calling user, from `Authorization: Bearer`
//! or from the web pages' sign-in cookie. A cookie alone never writes: a request that is not a
//! GET or HEAD must also carry the sign-in's CSRF token in `X-CSRF-Token`, which a page from
//! another site cannot know (and SameSite=Strict keeps the cookie off its requests anyway).

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use kiln_session::{Caller, Error};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// The web pages' sign-in cookie.
pub const COOKIE_NAME: &str = "kiln_token";

/// The header a script sends the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The API token in the sign-in cookie, if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

/// The CSRF token of a signed-in browser: derived from its API token, so it needs no storage.
pub fn csrf_for(token: &str) -> String {
    let d = Sha256::digest(format!("kiln-csrf:{token}").as_bytes());
    hex::encode(&d[..16])
}

/// Whether `given` is the CSRF token of the sign-in `token` (constant time).
pub fn csrf_ok(token: &str, given: &str) -> bool {
    bool::from(csrf_for(token).as_bytes().ct_eq(given.as_bytes()))
}

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            return cookie_caller(parts, state).await;
        };
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

/// A browser signed in by cookie: reads need nothing more, writes the CSRF header.
async fn cookie_caller(parts: &Parts, state: &AppState) -> Result<Auth, ApiError> {
    let Some(token) = cookie_token(&parts.headers) else {
        return Err(Error::unauthorized("missing Authorization: Bearer <token> header").into());
    };
    let caller = state.mgr.authenticate(&token).await?;
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let given = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !csrf_ok(&token, given) {
            return Err(Error::forbidden(
                "a request signed in by cookie that writes needs the X-CSRF-Token header",
            )
            .into());
        }
    }
    Ok(Auth(caller))
}
