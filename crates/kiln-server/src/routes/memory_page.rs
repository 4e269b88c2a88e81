//! The signed-in user's memory page (`/web/memory`): the notes and preferences every turn of
//! theirs sees, listed, added, edited and deleted with plain forms (no script needed).

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use kiln_session::{Caller, MemoryInput, MemoryPatch, MemorySource};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::csrf_for;
use crate::extract::Path;
use crate::html;
use crate::routes::web::{form_caller, login_then, redirect, signed_in};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/memory", get(page).post(add))
        .route("/web/memory/{id}", post(change))
}

async fn render(
    st: &AppState,
    caller: &Caller,
    token: &str,
    status: StatusCode,
    extra: Value,
) -> Response {
    match st.mgr.memory(caller).await {
        Ok(entries) => {
            let mut ctx = json!({
                "user": caller.name,
                "csrf": csrf_for(token),
                "entries": entries,
                "limit": kiln_session::MAX_MEMORY_ENTRIES,
                "max_chars": kiln_session::MAX_MEMORY_CHARS,
            });
            if let (Some(ctx), Value::Object(extra)) = (ctx.as_object_mut(), extra) {
                ctx.extend(extra);
            }
            html::page(status, "memory.html", ctx)
        }
        Err(e) => html::error_page(&e),
    }
}

async fn page(State(st): State<AppState>, headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    render(&st, &caller, &token, StatusCode::OK, json!({})).await
}

#[derive(Debug, Deserialize)]
struct EntryForm {
    csrf: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    kind: Option<String>,
    /// `delete` deletes; anything else saves.
    #[serde(default)]
    action: Option<String>,
}

async fn add(State(st): State<AppState>, headers: HeaderMap, Form(f): Form<EntryForm>) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let token = signed_in(&st, &headers)
        .await
        .map(|(_, t)| t)
        .unwrap_or_default();
    let input = MemoryInput {
        content: f.content,
        kind: f.kind.filter(|k| !k.is_empty()),
    };
    let done = st.mgr.remember(&caller, &input, MemorySource::User).await;
    outcome(
        &st,
        &caller,
        &token,
        done.map(|e| format!("Saved: {}", e.content)),
    )
    .await
}

async fn change(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<EntryForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let token = signed_in(&st, &headers)
        .await
        .map(|(_, t)| t)
        .unwrap_or_default();
    let done = if f.action.as_deref() == Some("delete") {
        st.mgr
            .forget(&caller, &id)
            .await
            .map(|()| "Deleted.".to_owned())
    } else {
        let patch = MemoryPatch {
            content: Some(f.content),
            kind: f.kind.filter(|k| !k.is_empty()),
        };
        st.mgr
            .update_memory(&caller, &id, &patch)
            .await
            .map(|e| format!("Saved: {}", e.content))
    };
    outcome(&st, &caller, &token, done).await
}

/// The page again, with what happened: a notice, or the error with its status.
async fn outcome(
    st: &AppState,
    caller: &Caller,
    token: &str,
    done: kiln_session::Result<String>,
) -> Response {
    match done {
        Ok(notice) => render(st, caller, token, StatusCode::OK, json!({"notice": notice})).await,
        Err(e) => {
            let status = crate::error::status_of(e.kind);
            render(st, caller, token, status, json!({"error": e.message})).await
        }
    }
}
