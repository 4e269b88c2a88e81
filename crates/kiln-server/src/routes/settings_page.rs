//! The administrators' model settings page (`/web/settings`): base URL, model and a write-only
//! API key, saved without a restart, and a button that runs one tool-calling round trip against
//! the server and says what worked. Everyone else gets 403.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use kiln_agent::ModelSettingsUpdate;
use kiln_session::Caller;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::csrf_for;
use crate::html;
use crate::routes::web::{form_caller, login_then, redirect, signed_in};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/settings", get(settings_page).post(save))
        .route("/web/settings/test", post(test))
}

/// Renders the page for an administrator, with what just happened (`notice`, `error`, `report`).
async fn render(
    st: &AppState,
    caller: &Caller,
    token: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match st.agent.model_settings(caller) {
        Ok(settings) => {
            let mut ctx = json!({
                "user": caller.name,
                "csrf": csrf_for(token),
                "settings": settings,
            });
            if let (Some(ctx), Value::Object(extra)) = (ctx.as_object_mut(), extra) {
                ctx.extend(extra);
            }
            html::page(status, "settings.html", ctx)
        }
        Err(e) => html::error_page(&e),
    }
}

async fn settings_page(
    State(st): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    render(&st, &caller, &token, StatusCode::OK, json!({})).await
}

#[derive(Deserialize)]
struct SettingsForm {
    csrf: String,
    #[serde(default)]
    base_url: String,
    #[serde(default)]
    model: String,
    /// Write-only: empty keeps the key in force.
    #[serde(default)]
    api_key: String,
    /// The "forget the saved key" checkbox.
    #[serde(default)]
    clear_key: Option<String>,
    /// `reset` goes back to the configuration's settings; anything else saves.
    #[serde(default)]
    action: Option<String>,
}

impl std::fmt::Debug for SettingsForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsForm")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The signed-in token of a caller `form_caller` accepted.
async fn token_of(st: &AppState, headers: &HeaderMap) -> String {
    signed_in(st, headers)
        .await
        .map(|(_, token)| token)
        .unwrap_or_default()
}

async fn save(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<SettingsForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let token = token_of(&st, &headers).await;
    let done = if f.action.as_deref() == Some("reset") {
        st.agent.reset_model_settings(&caller).await
    } else {
        let update = ModelSettingsUpdate {
            base_url: f.base_url,
            model: f.model,
            api_key: Some(f.api_key).filter(|k| !k.trim().is_empty()),
            clear_key: f.clear_key.is_some(),
        };
        st.agent.save_model_settings(&caller, update).await
    };
    match done {
        Ok(s) => {
            let notice = format!(
                "Saved. {} answers from the next message on.",
                s.active_model
            );
            render(
                &st,
                &caller,
                &token,
                StatusCode::OK,
                json!({"notice": notice}),
            )
            .await
        }
        Err(e) if e.kind == kiln_types::ErrorKind::Forbidden => html::error_page(&e),
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            render(&st, &caller, &token, status, json!({"error": e.message})).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct TestForm {
    csrf: String,
}

async fn test(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<TestForm>) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    if let Err(e) = st.agent.model_settings(&caller) {
        return html::error_page(&e);
    }
    // A round trip costs the model server two calls: it counts like an agent turn.
    if let Err(e) = st.limiter.charge(&caller, 1.0).await {
        return html::error_page(&e);
    }
    let token = token_of(&st, &headers).await;
    match st.agent.test_model_connection(&caller).await {
        Ok(report) => {
            render(
                &st,
                &caller,
                &token,
                StatusCode::OK,
                json!({"report": report}),
            )
            .await
        }
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            render(&st, &caller, &token, status, json!({"error": e.message})).await
        }
    }
}
