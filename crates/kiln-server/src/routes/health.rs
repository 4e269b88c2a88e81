//! `GET /v1/health`: liveness and whether the service is degraded, without authentication.
//! Cheap (no IO): it reports the state the search indexer last recorded.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;

/// `{"status": "ok" | "degraded", "version", "reason"?}`; 200 either way, since a degraded
/// service still answers (a storage fault stops search, not the rest).
pub async fn health(State(st): State<AppState>) -> Json<Value> {
    let h = st.mgr.health();
    let mut body = json!({"status": h.status, "version": env!("CARGO_PKG_VERSION")});
    if let Some(r) = h.reason {
        body["reason"] = json!(r);
    }
    Json(body)
}
