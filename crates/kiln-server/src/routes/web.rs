//! The web pages' first part: signing in with an API token (a form, or `/login?token=…` as
//! `serve` prints on first start) into an HttpOnly, SameSite=Strict cookie; `/` showing the
//! sessions page when signed in and the sign-in page otherwise; lifecycle buttons that offer only
//! valid transitions. Every form that writes carries a CSRF token derived from the sign-in.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kiln_session::{Caller, Error, ListQuery};
use kiln_types::SessionStatus;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::auth::{COOKIE_NAME, cookie_token, csrf_for, csrf_ok};
use crate::extract::{PageQuery, Path};
use crate::html;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_form))
        .route("/logout", post(logout))
        .route("/web/sessions", post(new_session))
        .route("/web/sessions/from-template", post(from_template))
        .route("/web/sessions/{id}/status", post(set_status))
        .route("/web/sessions/{id}/leave", post(leave))
        .route("/web/sessions/{id}/messages", post(send_message))
}

/// The signed-in caller and their API token.
pub(crate) async fn signed_in(st: &AppState, headers: &HeaderMap) -> Option<(Caller, String)> {
    let token = cookie_token(headers)?;
    st.mgr.authenticate(&token).await.ok().map(|c| (c, token))
}

pub(crate) fn redirect(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

fn sign_in_cookie(token: &str, secure: bool) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000{secure}"
    ))
    .ok()
}

/// Whether the browser reached us over HTTPS: the public URL says so, or a proxy in front says
/// so (`X-Forwarded-Proto: https`, `Forwarded: proto=https`). Kiln itself speaks plain HTTP on
/// loopback; trusting the header can only make the cookie stricter.
fn over_https(st: &AppState, headers: &HeaderMap) -> bool {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    st.public_url.starts_with("https://")
        || values("x-forwarded-proto")
            .iter()
            .any(|v| v.split(',').next().is_some_and(|p| p.trim() == "https"))
        || values("forwarded")
            .iter()
            .any(|v| v.split([';', ',']).any(|p| p.trim() == "proto=https"))
}

/// Whether a form post comes from another site (login CSRF): the browser says so in
/// `Sec-Fetch-Site`, or its `Origin` is not this host. Clients that send neither (curl,
/// scripts) are not browsers carrying someone else's form.
fn cross_site(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    match (get("origin"), get("host")) {
        (None, _) => false,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_none_or(|(_, rest)| !rest.eq_ignore_ascii_case(host)),
        (Some(_), None) => true,
    }
}

/// The lifecycle buttons a session in `status` offers (becoming active is not a button: a
/// message does it).
pub(crate) fn lifecycle_actions(status: SessionStatus) -> Vec<&'static str> {
    status
        .allowed_targets()
        .iter()
        .filter(|t| **t != SessionStatus::Active)
        .map(|t| t.as_str())
        .collect()
}

/// The sessions page's filters, as its GET form sends them (empty fields mean no filter).
#[derive(Debug, Default, Deserialize)]
struct HomeQuery {
    status: Option<String>,
    project: Option<String>,
    #[serde(rename = "type")]
    session_type: Option<String>,
    tag: Option<String>,
    /// Full-text search over the sessions (the search box).
    q: Option<String>,
    /// The page after this cursor (`next_cursor` of the page before).
    cursor: Option<String>,
    /// `activity` (the default here: last activity first) or `created`.
    sort: Option<String>,
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Parses an optional enum filter by its serialized name.
fn parse_filter<T: serde::de::DeserializeOwned>(
    what: &str,
    v: Option<String>,
) -> Result<Option<T>, Error> {
    given(v)
        .map(|s| serde_json::from_value(serde_json::Value::String(s)))
        .transpose()
        .map_err(|_| Error::bad_request(format!("unknown {what}")))
}

fn list_query(h: HomeQuery) -> Result<ListQuery, Error> {
    Ok(ListQuery {
        status: parse_filter("status", h.status)?,
        session_type: parse_filter("session type", h.session_type)?,
        project: given(h.project),
        tag: given(h.tag),
        cursor: given(h.cursor),
        sort: parse_filter("sort order", h.sort)?.unwrap_or(kiln_session::SessionSort::Activity),
        ..Default::default()
    })
}

async fn home(
    State(st): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<HomeQuery>,
) -> Response {
    let Some((caller, token)) = signed_in(&st, &headers).await else {
        return html::page(StatusCode::OK, "login.html", json!({}));
    };
    let search_text = given(q.q.clone());
    let q = match list_query(q) {
        Ok(q) => q,
        Err(e) => return html::error_page(&e),
    };
    // The search box: hits grouped per session, with the matched words highlighted (the
    // snippets are escaped text with `<b>` around matches, so the template shows them as is).
    let search = match &search_text {
        Some(text) if st.limiter.charge(&caller, 1.0).await.is_ok() => {
            let params = kiln_session::SearchParams {
                q: text.clone(),
                ..Default::default()
            };
            match st.mgr.search_sessions(&caller, params).await {
                Ok(page) => json!({"q": text, "page": page}),
                Err(e) => json!({"q": text, "error": e.message}),
            }
        }
        Some(text) => json!({"q": text, "error": "too many searches; retry in a minute"}),
        None => serde_json::Value::Null,
    };
    // The filters as a query string, so paging keeps them.
    let keep = [
        ("status", q.status.map(|s| s.as_str().to_owned())),
        ("type", q.session_type.map(|t| t.as_str().to_owned())),
        ("project", q.project.clone()),
        ("tag", q.tag.clone()),
        (
            "sort",
            (q.sort == kiln_session::SessionSort::Created).then(|| "created".to_owned()),
        ),
    ]
    .iter()
    .filter_map(|(k, v)| {
        let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
        let v = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
        Some(format!("{k}={v}"))
    })
    .collect::<Vec<_>>()
    .join("&");
    let filter = json!({"status": q.status, "project": q.project, "type": q.session_type,
                        "tag": q.tag, "cursor": q.cursor, "sort": q.sort});
    let templates = st.mgr.templates(&caller).await.unwrap_or_default();
    match st.mgr.list_sessions(&caller, q).await {
        Ok(page) => {
            let mut sessions = Vec::with_capacity(page.items.len());
            // Sessions others added the caller to: marked, leavable, and their permissions
            // (one query for the page) decide the lifecycle buttons.
            let shared = st
                .mgr
                .shared_with_caller(&caller, &page.items)
                .await
                .unwrap_or_default();
            for s in &page.items {
                let membership = shared.get(&s.id);
                let manages = s.owner_id == caller.user_id
                    || membership
                        .is_some_and(|m| m.permissions.has(kiln_types::Permission::Manage));
                let actions: Vec<&str> = if manages {
                    lifecycle_actions(s.status)
                } else {
                    Vec::new()
                };
                sessions.push(json!({"session": s, "actions": actions, "shared": membership}));
            }
            html::page(
                StatusCode::OK,
                "sessions.html",
                json!({"user": caller.name, "sessions": sessions, "csrf": csrf_for(&token),
                       "theme": html::theme(&headers),
                       "model": st.agent.model_name(), "admin": caller.is_owner,
                       "filter": filter, "search": search, "templates": templates,
                       "next_cursor": page.next_cursor, "keep": keep}),
            )
        }
        Err(e) => html::error_page(&e),
    }
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    token: Option<String>,
    /// The page to return to after signing in.
    next: Option<String>,
}

/// The sign-in page. With `?token=` (the link `serve` prints) it does not sign in by itself:
/// it names the account and offers a button that posts the token, so a link planted by
/// someone else cannot sign a browser into their account (login CSRF).
async fn login_page(State(st): State<AppState>, PageQuery(q): PageQuery<LoginQuery>) -> Response {
    let next = local_path(q.next.as_deref());
    let Some(token) = q.token else {
        return html::page(StatusCode::OK, "login.html", json!({"next": next}));
    };
    let token = token.trim();
    match st.mgr.authenticate(token).await {
        Ok(caller) => html::page(
            StatusCode::OK,
            "login.html",
            json!({"confirm": {"token": token, "user": caller.name}, "next": next}),
        ),
        Err(_) => html::page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            json!({"error": "That sign-in link is not valid.", "next": next}),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if cross_site(&headers) {
        return html::error_page(&Error::forbidden(
            "signing in must start from this site's own sign-in page",
        ));
    }
    let secure = over_https(&st, &headers);
    sign_in(&st, f.token.trim(), local_path(f.next.as_deref()), secure).await
}

/// `next` when it is a path on this site (`/…`, printable ASCII, not `//host` or `/\host`),
/// else `/`: a sign-in link cannot send anyone elsewhere.
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n
        }
        _ => "/",
    }
}

/// The sign-in page's address that comes back to `uri` afterwards.
pub(crate) fn login_then(uri: &axum::http::Uri) -> String {
    // A query value keeps paths readable: only `?`, `&`, `=`, `#`, `%` and the like are escaped.
    const NEXT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let back = uri.path_and_query().map_or("/", |pq| pq.as_str());
    format!(
        "/login?next={}",
        percent_encoding::utf8_percent_encode(back, NEXT)
    )
}

async fn sign_in(st: &AppState, token: &str, next: &str, secure: bool) -> Response {
    if st.mgr.authenticate(token).await.is_err() {
        return html::page(
            StatusCode::UNAUTHORIZED,
            "login.html",
            json!({"error": "That token is not valid.", "next": next}),
        );
    }
    let mut r = redirect(next);
    if let Some(c) = sign_in_cookie(token, secure) {
        r.headers_mut().insert(SET_COOKIE, c);
    }
    r
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

/// The caller behind a form that writes: signed in (else back to sign-in) and sending the CSRF
/// token of their sign-in (else 403).
pub(crate) async fn form_caller(
    st: &AppState,
    headers: &HeaderMap,
    csrf: &str,
) -> Result<Caller, Response> {
    let Some((caller, token)) = signed_in(st, headers).await else {
        return Err(redirect("/login"));
    };
    if !csrf_ok(&token, csrf) {
        return Err(html::error_page(&Error::forbidden(
            "the form's CSRF token is not valid",
        )));
    }
    Ok(caller)
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    if let Some((_, token)) = signed_in(&st, &headers).await
        && !csrf_ok(&token, &f.csrf)
    {
        return html::error_page(&Error::forbidden("the form's CSRF token is not valid"));
    }
    let mut r = redirect("/login");
    r.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static("kiln_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    r
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    status: SessionStatus,
    csrf: String,
    /// Where to go afterwards: a session page (default: the sessions page).
    #[serde(default)]
    back: Option<String>,
}

/// A same-site page to return to: only paths under `/web/sessions/`, never another origin.
fn back_to(back: Option<&str>) -> &str {
    back.filter(|b| b.starts_with("/web/sessions/") && !b.contains("//") && !b.contains('\\'))
        .unwrap_or("/")
}

/// The sessions page's "Leave" button on a session someone else added you to.
async fn leave(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    match st.mgr.leave_session(&caller, &id).await {
        Ok(()) => redirect("/"),
        Err(e) => html::error_page(&e),
    }
}

async fn set_status(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<StatusForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    match st.mgr.set_status(&caller, &id, f.status).await {
        Ok(_) => redirect(back_to(f.back.as_deref())),
        Err(e) => html::error_page(&e),
    }
}

/// What a session started without a name is called until its first request names it.
const NEW_SESSION: &str = "New session";

#[derive(Debug, Deserialize)]
struct NewSessionForm {
    csrf: String,
    /// Empty: the session is named after its first request.
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    session_type: Option<String>,
    #[serde(default)]
    project: Option<String>,
    /// Comma-separated.
    #[serde(default)]
    tags: Option<String>,
}

async fn new_session(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<NewSessionForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let session_type = match parse_filter("session type", f.session_type) {
        Ok(t) => t.unwrap_or_default(),
        Err(e) => return html::error_page(&e),
    };
    let (name, metadata) = match given(Some(f.name)) {
        Some(name) => (name, None),
        None => (
            NEW_SESSION.to_owned(),
            Some(json!({"auto_title": NEW_SESSION})),
        ),
    };
    let req = kiln_session::CreateSession {
        name,
        metadata,
        session_type,
        project: given(f.project),
        tags: f
            .tags
            .unwrap_or_default()
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect(),
        ..Default::default()
    };
    match st.mgr.create_session(&caller, req).await {
        Ok(s) => redirect(&format!("/web/sessions/{}", s.id)),
        Err(e) => html::error_page(&e),
    }
}

#[derive(Debug, Deserialize)]
struct TemplateForm {
    csrf: String,
    template: String,
    /// `name = value`, one per line.
    #[serde(default)]
    params: String,
}

/// Parses `name = value` lines (blank lines skipped).
fn template_params(text: &str) -> Result<BTreeMap<String, String>, Error> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(Error::bad_request(format!(
                "template parameters are `name = value` lines; `{l}` is not"
            ))),
        })
        .collect()
}

async fn from_template(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<TemplateForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    let created = match template_params(&f.params) {
        Ok(params) => {
            st.mgr
                .create_from_template(&caller, &f.template, &params)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(s) => redirect(&format!("/web/sessions/{}", s.id)),
        Err(e) => html::error_page(&e),
    }
}

#[derive(Debug, Deserialize)]
struct MessageForm {
    csrf: String,
    message: String,
    #[serde(default)]
    branch: Option<String>,
}

/// The composer without JavaScript: runs the turn to the end, then shows the page again.
async fn send_message(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<MessageForm>,
) -> Response {
    let caller = match form_caller(&st, &headers, &f.csrf).await {
        Ok(c) => c,
        Err(page) => return page,
    };
    if let Err(e) = st.limiter.charge(&caller, 1.0).await {
        return html::error_page(&e);
    }
    let branch = match f.branch.filter(|b| !b.is_empty()) {
        Some(b) => b,
        None => match st.mgr.session(&caller, &id).await {
            Ok(s) => s.default_branch,
            Err(e) => return html::error_page(&e),
        },
    };
    match st
        .agent
        .run_turn(&caller, &id, &branch, &f.message, None)
        .await
    {
        Ok(_) => {
            let to = format!(
                "/web/sessions/{id}?branch={}",
                percent_encoding::utf8_percent_encode(&branch, percent_encoding::NON_ALPHANUMERIC)
            );
            redirect(&to)
        }
        Err(e) => html::error_page(&e),
    }
}
