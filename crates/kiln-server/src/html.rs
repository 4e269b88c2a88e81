//! Server-rendered pages: templates/html embedded at build time, rendered with minijinja
//! (HTML auto-escaping on, by file name, and a fuel budget per page).

use std::sync::OnceLock;

use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use kiln_session::Error;
use minijinja::Environment;
use serde::Serialize;

const TEMPLATES: [(&str, &str); 19] = [
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
    (
        "settings.html",
        include_str!("../../../templates/html/settings.html"),
    ),
    (
        "memory.html",
        include_str!("../../../templates/html/memory.html"),
    ),
    (
        "batch.html",
        include_str!("../../../templates/html/batch.html"),
    ),
    (
        "conversation.html",
        include_str!("../../../templates/html/conversation.html"),
    ),
    (
        "panel.html",
        include_str!("../../../templates/html/panel.html"),
    ),
    (
        "sidebar.html",
        include_str!("../../../templates/html/sidebar.html"),
    ),
    (
        "tabs/state.html",
        include_str!("../../../templates/html/tabs/state.html"),
    ),
    (
        "tabs/branches.html",
        include_str!("../../../templates/html/tabs/branches.html"),
    ),
    (
        "tabs/optimizer.html",
        include_str!("../../../templates/html/tabs/optimizer.html"),
    ),
    (
        "tabs/notebook.html",
        include_str!("../../../templates/html/tabs/notebook.html"),
    ),
    (
        "tabs/audit.html",
        include_str!("../../../templates/html/tabs/audit.html"),
    ),
    (
        "tabs/sharing.html",
        include_str!("../../../templates/html/tabs/sharing.html"),
    ),
    (
        "diff.html",
        include_str!("../../../templates/html/diff.html"),
    ),
];

/// The fuel (minijinja instructions) one page may burn. The templates are Kiln's own and user
/// text is only ever data to them, so the budget stops nothing a real page does: the largest
/// real page, the session page of a long session (150 each of materials, discoveries,
/// hypotheses and tasks, 200 checkpoints, 120 experiments …), burns about 36 000
/// (`tests::a_long_session_page_renders_within_its_fuel`, which keeps 10× headroom). It bounds
/// what a page can cost if a template ever loops over data in a way that explodes: the render
/// stops early instead of holding a worker thread for minutes.
pub(crate) const PAGE_FUEL: u64 = 2_000_000;

/// The pages' environment: escaping, the fuel budget, the filters and the templates.
fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(PAGE_FUEL));
    env.add_filter("truncate", truncate);
    env.add_filter("markdown", |text: String| {
        minijinja::Value::from_safe_string(crate::markdown::to_html(&text))
    });
    env.add_filter("plain", |text: String| crate::markdown::to_plain(&text));
    for (name, src) in TEMPLATES {
        // The templates are part of the binary; a syntax error fails the tests, and a
        // template that failed to load renders as the plain-text fallback below.
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "bad HTML template");
        }
    }
    env
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(new_env)
}

/// `text | truncate(n)`: the first `n` characters, with `…` when cut.
fn truncate(text: String, n: usize) -> String {
    kiln_agent::clip(&text, n)
}

/// The colour scheme the reader chose with the page's toggle (`kiln_theme` cookie): `light`,
/// `dark`, or `None` to follow the system setting.
pub fn theme(headers: &axum::http::HeaderMap) -> Option<&'static str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| match c.trim() {
            "kiln_theme=dark" => Some("dark"),
            "kiln_theme=light" => Some("light"),
            _ => None,
        })
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

/// Renders `template` with `ctx`; returns the text and the fuel it burnt.
fn render(template: &str, ctx: impl Serialize) -> Result<(String, u64), minijinja::Error> {
    let rendered = env().get_template(template)?.render_captured(ctx)?;
    let fuel = rendered.state().fuel_levels().map_or(0, |(used, _)| used);
    Ok((rendered.into_output(), fuel))
}

/// Renders `template` with `ctx` as an HTML response with `status`.
pub fn page(status: StatusCode, template: &str, ctx: impl Serialize) -> Response {
    let body = match render(template, ctx) {
        Ok((body, fuel)) => {
            tracing::debug!(template, fuel, "page rendered");
            body
        }
        Err(e) => {
            tracing::error!(template, error = %e, "page rendering failed");
            "<!doctype html><title>Kiln</title><p>This page could not be rendered.</p>".into()
        }
    };
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kiln_agent::{Agent, Registry};
    use kiln_llm::OfflinePlanner;
    use kiln_session::{
        AgentConfig, Caller, Config, CreateSession, EventInput, MessageInput, SessionManager,
    };
    use kiln_types::{Permission, Permissions, Role};
    use serde_json::{Value, json};

    use super::*;
    use crate::AppState;
    use crate::routes::session_page::{SessionPageQuery, page_context};

    #[test]
    fn a_runaway_loop_stops_on_the_page_budget() {
        let mut env = new_env();
        env.add_template(
            "runaway.html",
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = env
            .get_template("runaway.html")
            .unwrap()
            .render(())
            .unwrap_err();
        assert_eq!(err.kind(), minijinja::ErrorKind::OutOfFuel);
    }

    async fn event(mgr: &SessionManager, who: &Caller, id: &str, event: Value) {
        let event = serde_json::from_value(event).unwrap();
        mgr.append_event(
            who,
            id,
            "main",
            EventInput {
                event,
                expected_head: None,
            },
        )
        .await
        .unwrap();
    }

    /// The largest real page, the session page of a long session, renders whole and well
    /// within the budget: its unbounded lists (research state, branches, older checkpoints,
    /// tool tables) are all long here.
    #[tokio::test]
    async fn a_long_session_page_renders_within_its_fuel() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        let mgr = SessionManager::open(&config).await.unwrap();
        let alice: Caller = mgr.add_user("alice", true).await.unwrap().0.into();
        let agent = Agent::new(
            mgr,
            Arc::new(OfflinePlanner::new()),
            Registry::builtin(),
            AgentConfig::default(),
        );
        let st = AppState::new(agent, 1 << 20);
        let mgr = st.mgr.clone();
        let id = mgr
            .create_session(
                &alice,
                CreateSession {
                    name: "A long study".into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id;
        for i in 0..150 {
            event(
                &mgr,
                &alice,
                &id,
                json!({"kind": "material", "formula": format!("Li{}FePO4", i + 1)}),
            )
            .await;
            event(&mgr, &alice, &id, json!({"kind": "discovery", "id": format!("disc-{i:04}"), "type": "structure", "description": format!("disc-{i:04} olivine holds"), "confidence": 0.5})).await;
            event(
                &mgr,
                &alice,
                &id,
                json!({"kind": "hypothesis", "statement": format!("hyp-{i:04}"), "status": "open"}),
            )
            .await;
            event(
                &mgr,
                &alice,
                &id,
                json!({"kind": "task", "description": format!("task-{i:04}"), "status": "pending"}),
            )
            .await;
        }
        for i in 1..100 {
            event(&mgr, &alice, &id, json!({"kind": "discovery_link", "from": format!("disc-{:04}", i - 1), "to": format!("disc-{i:04}"), "relationship": "supports"})).await;
        }
        for i in 0..50 {
            event(
                &mgr,
                &alice,
                &id,
                json!({"kind": "context_pin", "key": format!("pin-{i:04}"), "value": "160 mAh/g"}),
            )
            .await;
        }
        let tool = async |name: &str, args: Value| {
            st.agent
                .call_tool(&alice, &id, None, name, args)
                .await
                .unwrap();
        };
        tool(
            "bayesian_optimizer",
            json!({"action": "define_space",
                   "variables": [{"name": "t", "type": "real", "bounds": [300, 900]},
                                 {"name": "x", "type": "real", "bounds": [0, 1]}],
                   "objective": {"name": "capacity", "goal": "maximize"}}),
        )
        .await;
        let rows: Vec<Value> = (0..120)
            .map(|i| {
                json!({"inputs": {"t": 300 + 5 * i, "x": f64::from(i) / 120.0},
                            "output": 100.0 + f64::from(i % 17)})
            })
            .collect();
        tool(
            "bayesian_optimizer",
            json!({"action": "add_experiments", "experiments": rows}),
        )
        .await;
        for i in 0..40 {
            tool(
                "notebook",
                json!({"action": "log_metric", "name": "efficiency", "value": f64::from(i) / 40.0}),
            )
            .await;
        }
        // The conversation last, so the newest page is messages, not tool traffic.
        for i in 0..300 {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            let content = format!("msg-{i:04}-end {}", "olivine ".repeat(40));
            let input = MessageInput {
                role,
                content,
                expected_head: None,
            };
            mgr.append_message(&alice, &id, "main", input)
                .await
                .unwrap();
        }
        for i in 0..25 {
            mgr.create_branch(&alice, &id, &format!("branch-{i:04}"), None)
                .await
                .unwrap();
        }
        for i in 0..200 {
            mgr.create_checkpoint(&alice, &id, &format!("cp-{i:04}"), None, None)
                .await
                .unwrap();
        }
        for i in 0..8 {
            let (user, _) = mgr.add_user(&format!("user-{i}"), false).await.unwrap();
            mgr.invite(
                &alice,
                &id,
                &user.name,
                Permissions::of([Permission::Write]),
                false,
            )
            .await
            .unwrap();
            let share = serde_json::from_value(json!({"expires_in_days": 7})).unwrap();
            mgr.create_share(&alice, &id, share).await.unwrap();
        }

        // Every tab renders whole and within the budget; together they show every list to
        // its end, next to the newest page of messages.
        let mut all = String::new();
        for (tab, _) in crate::routes::session_page::TABS {
            let mut ctx = page_context(&st, &alice, &id, tab, SessionPageQuery::default())
                .await
                .unwrap();
            ctx["csrf"] = json!("0".repeat(32));
            ctx["user"] = json!("alice");
            let (html, fuel) = render("session.html", &ctx).unwrap();
            eprintln!(
                "session page ({tab}) of a long session: {fuel} fuel of {PAGE_FUEL}, {} bytes",
                html.len()
            );
            assert!(
                fuel * 10 <= PAGE_FUEL,
                "{tab}: {fuel} fuel leaves less than 10x headroom"
            );
            assert!(html.trim_end().ends_with("</html>"), "{tab} cut short");
            assert!(html.contains("msg-0299-end"), "{tab}: the newest message");
            all.push_str(&html);
        }
        let html = all;
        for shown in [
            "msg-0250-end",
            "disc-0149 olivine holds",
            "hyp-0149",
            "task-0149",
            "pin-0049",
            "Li150FePO4",
            "branch-0024",
            "cp-0199",
            "cp-0000",
            "user-7",
            "capacity",
            "efficiency",
        ] {
            assert!(html.contains(shown), "{shown} missing");
        }
        assert!(!html.contains("msg-0249-end"), "one page of messages");
    }
}
