//! Batches on the web: a form starts one (`POST /web/sessions/{id}/batches`, the request and
//! one item per line or CSV rows), and the batch's page shows a progress bar and the results
//! table filling in (it reloads itself every two seconds while the batch runs; no script needed),
//! with Cancel and the CSV download.

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use kiln_session::BatchSpec;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::csrf_for;
use crate::extract::Path;
use crate::html;
use crate::routes::web::{form_caller, login_then, redirect, signed_in};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/web/sessions/{id}/batches", post(start))
        .route("/web/sessions/{id}/batches/{batch}", get(page))
        .route("/web/sessions/{id}/batches/{batch}/cancel", post(cancel))
}

#[derive(Debug, Deserialize)]
struct StartForm {
    csrf: String,
    request: String,
    /// One item per line: a bare value fills `{formula}`, or a CSV table with a header row.
    items: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    concurrency: Option<String>,
}

/// The items as CSV: a header row is kept when the first line names the request's fields
/// (`formula,note`); otherwise every line is one value of the request's only field.
fn items_csv(request: &str, items: &str) -> Result<String, kiln_session::Error> {
    let fields: Vec<&str> = request
        .split('{')
        .skip(1)
        .filter_map(|p| p.split_once('}').map(|(name, _)| name))
        .filter(|n| !n.is_empty() && !n.starts_with('{'))
        .collect();
    let lines: Vec<&str> = items
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let first = lines.first().copied().unwrap_or("");
    let header: Vec<&str> = first.split(',').map(str::trim).collect();
    if !fields.is_empty() && fields.iter().all(|f| header.contains(f)) {
        return Ok(lines.join("\n"));
    }
    match fields.as_slice() {
        [one] => Ok(std::iter::once(*one)
            .chain(lines.iter().copied())
            .collect::<Vec<_>>()
            .join("\n")),
        _ => Err(kiln_session::Error::bad_request(
            "with several fields in the request, start the items with a header row naming them \
             (for example `formula,temperature`)",
        )),
    }
}

async fn start(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<StartForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let csv = match items_csv(&f.request, &f.items) {
        Ok(csv) => csv,
        Err(e) => return html::error_page(&e),
    };
    let concurrency = match f
        .concurrency
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => match c.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return html::error_page(&kiln_session::Error::bad_request(
                    "concurrency must be a whole number from 1 to 16",
                ));
            }
        },
    };
    if let Err(e) = st.limiter.charge(&caller, 1.0).await {
        return html::error_page(&e);
    }
    let spec = BatchSpec {
        request: f.request,
        csv: Some(csv),
        mode: f.mode.filter(|m| !m.is_empty()),
        concurrency,
        ..BatchSpec::default()
    };
    match st.agent.start_batch(&caller, &id, &spec).await {
        Ok(b) => redirect(&format!("/web/sessions/{id}/batches/{}", b.batch.id)),
        Err(e) => html::error_page(&e),
    }
}

async fn page(
    State(st): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((id, batch)): Path<(String, String)>,
) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return redirect(&login_then(&uri));
    };
    let view = match st.mgr.batch(&caller, &id, &batch, true).await {
        Ok(v) => v,
        Err(e) => return html::error_page(&e),
    };
    let session = match st.mgr.session(&caller, &id).await {
        Ok(s) => s,
        Err(e) => return html::error_page(&e),
    };
    let write = st
        .mgr
        .permissions(&caller, &id)
        .await
        .is_ok_and(|p| p.has(kiln_types::Permission::Write));
    // The columns: the items' fields, then the key numbers, in first-seen order.
    let items = view.items.clone().unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    let mut numbers: Vec<String> = Vec::new();
    for i in &items {
        for (list, value) in [
            (&mut fields, &i.item),
            (
                &mut numbers,
                i.numbers.as_ref().unwrap_or(&serde_json::Value::Null),
            ),
        ] {
            if let Some(o) = value.as_object() {
                for k in o.keys() {
                    if !list.contains(k) {
                        list.push(k.clone());
                    }
                }
            }
        }
    }
    numbers.truncate(6);
    html::page(
        StatusCode::OK,
        "batch.html",
        json!({
            "user": caller.name,
            "csrf": csrf_for(&token),
            "sid": id,
            "session": session,
            "batch": view,
            "items": items,
            "fields": fields,
            "numbers": numbers,
            "write": write,
            "percent": (view.progress * 100.0).round(),
        }),
    )
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    csrf: String,
}

async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((id, batch)): Path<(String, String)>,
    Form(f): Form<CancelForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    match st.mgr.cancel_batch(&caller, &id, &batch).await {
        Ok(_) => redirect(&format!("/web/sessions/{id}/batches/{batch}")),
        Err(e) => html::error_page(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::items_csv;

    #[test]
    fn lines_become_csv_rows() {
        assert_eq!(
            items_csv("Analyse {formula}", "LiFePO4\n\n LiCoO2 \n").unwrap(),
            "formula\nLiFePO4\nLiCoO2"
        );
        assert_eq!(
            items_csv("Analyse {formula} at {t}", "formula,t\nLiFePO4,700").unwrap(),
            "formula,t\nLiFePO4,700"
        );
        assert!(items_csv("Analyse {formula} at {t}", "LiFePO4").is_err());
    }
}
