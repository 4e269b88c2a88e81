//! `GET /v1/instance/key`: the public key that signs this instance's session exports, and the
//! other instances' keys it trusts; without authentication, like `/v1/health`.

use axum::Json;
use axum::extract::State;
use kiln_session::InstanceKeyInfo;

use crate::AppState;
use crate::error::ApiResult;

pub async fn key(State(st): State<AppState>) -> ApiResult<Json<InstanceKeyInfo>> {
    Ok(Json(st.mgr.instance_key().await?))
}
