//! The model settings page over real HTTP: an administrator points Kiln at a scripted
//! OpenAI-compatible server on 127.0.0.1, the next message is answered by it without a restart,
//! the choice survives one, the key is write-only (never on a page, in a file others can read
//! or in an answer), the connection test says what worked, and everyone else gets 403.

mod support;

#[path = "../../kiln-llm/tests/support/server.rs"]
mod llm_server;

use llm_server::{Reply, chunk, text_answer, tool_answer};
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;
use support::{Server, csrf_of, start_from_config};

const KEY: &str = "sk-page-secret-4242";

/// A signed-in browser: the cookie on every request, no redirects followed.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Browser {
    fn new(srv: &Server, token: &str) -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: srv.base.clone(),
            cookie: format!("kiln_token={token}"),
        }
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    }
}

fn sse_text(text: &str) -> Reply {
    Reply::Sse(vec![
        chunk(json!({"role": "assistant", "content": text}), None),
        chunk(json!({}), Some("stop")),
    ])
}

#[tokio::test]
async fn an_admin_connects_a_model_that_answers_at_once_and_after_a_restart() {
    let model = llm_server::MockServer::start(vec![
        // The connection test: one tool call, then an answer after its result.
        tool_answer(&[("c1", "kiln_echo", r#"{"word": "kiln"}"#)]),
        text_answer("The echo tool said kiln."),
        // The next message on a session page.
        sse_text("Answered by the connected model."),
    ])
    .await;
    model.set_models(&["test-model"]);
    // No discovery call after the answer: the script holds exactly the calls asserted below.
    let mut config = kiln_session::Config::default();
    config.agent.auto_detect_discoveries = false;
    let srv = start_from_config(config).await;
    let alice = Browser::new(&srv, &srv.alice);

    let (status, page) = alice.get("/web/settings").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("offline-planner"), "{page}");
    let csrf = csrf_of(&page);

    let base_url = model.base_url();
    let (status, page) = alice
        .post(
            "/web/settings",
            &[
                ("csrf", &csrf),
                ("base_url", &base_url),
                ("model", "test-model"),
                ("api_key", KEY),
                ("action", "save"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"active-model\">test-model"), "{page}");
    assert!(page.contains("A key is set (settings page)"), "{page}");
    assert!(!page.contains(KEY), "the key came back on the page");

    // Stored for the server's user only.
    let file = srv.data_dir().join("llm.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }

    // The test button: every step worked, in words, and the key is not among them.
    let (status, page) = alice.post("/web/settings/test", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("everything worked"), "{page}");
    assert_eq!(page.matches("data-ok=\"true\"").count(), 4, "{page}");
    assert!(page.contains("called kiln_echo"), "{page}");
    assert!(!page.contains(KEY));

    // Every session page names the model; the next message goes to it with the key.
    let (_, session) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "connected"})),
        )
        .await;
    let id = session["id"].as_str().unwrap();
    let (_, page) = alice.get(&format!("/web/sessions/{id}")).await;
    assert!(page.contains("id=\"model\">test-model"), "{page}");
    let (_, home) = alice.get("/").await;
    assert!(home.contains("id=\"model\">test-model"), "{home}");
    let (status, _) = alice
        .post(
            &format!("/web/sessions/{id}/messages"),
            &[("csrf", &csrf), ("message", "hello")],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let seen = model.seen();
    assert_eq!(seen.len(), 3, "two test calls and the turn");
    assert_eq!(
        seen[2].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );
    let (_, page) = alice.get(&format!("/web/sessions/{id}")).await;
    assert!(page.contains("Answered by the connected model."));

    // A restart reads the saved settings back.
    let mut config = kiln_session::Config::default();
    config.storage.data_dir = srv.data_dir().to_path_buf();
    let slot = kiln_agent::ModelSlot::load(&config).unwrap();
    let view = slot.view();
    assert_eq!(view.active_model, "test-model");
    assert_eq!(view.key_source, kiln_agent::KeySource::SettingsPage);
    assert!(!format!("{view:?}{slot:?}").contains(KEY));
}

#[tokio::test]
async fn bad_settings_change_nothing_and_say_why() {
    let srv = start_from_config(kiln_session::Config::default()).await;
    let alice = Browser::new(&srv, &srv.alice);
    let (_, page) = alice.get("/web/settings").await;
    let csrf = csrf_of(&page);
    let (status, page) = alice
        .post(
            "/web/settings",
            &[
                ("csrf", &csrf),
                ("base_url", "localhost:11434"),
                ("model", "llama3.2"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("base URL must start with http"), "{page}");
    assert!(
        page.contains("id=\"active-model\">offline-planner"),
        "{page}"
    );
    assert!(!srv.data_dir().join("llm.json").exists());
    // Testing with no server configured says so.
    let (status, page) = alice.post("/web/settings/test", &[("csrf", &csrf)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("no model server is configured"), "{page}");
    // A form without the sign-in's CSRF token writes nothing.
    let (status, _) = alice
        .post(
            "/web/settings",
            &[("csrf", "0000"), ("base_url", "http://127.0.0.1:9/v1")],
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!srv.data_dir().join("llm.json").exists());
}

#[tokio::test]
async fn only_administrators_see_or_change_the_settings() {
    let srv = start_from_config(kiln_session::Config::default()).await;
    let bob = Browser::new(&srv, &srv.bob);
    let (status, page) = bob.get("/web/settings").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("administrator"), "{page}");
    // His own sessions page has a CSRF token; it does not open the settings.
    let (_, home) = bob.get("/").await;
    assert!(!home.contains("/web/settings"), "no link for non-admins");
    let csrf = csrf_of(&home);
    for (path, form) in [
        (
            "/web/settings",
            vec![
                ("csrf", csrf.as_str()),
                ("base_url", "http://127.0.0.1:9/v1"),
                ("model", "m"),
            ],
        ),
        ("/web/settings/test", vec![("csrf", csrf.as_str())]),
    ] {
        let (status, _) = bob.post(path, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(!srv.data_dir().join("llm.json").exists());
    // Not signed in: to the sign-in page and back.
    let (status, _) = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/web/settings", srv.base))
        .send()
        .await
        .map(|r| (r.status(), ()))
        .unwrap();
    assert_eq!(status, StatusCode::SEE_OTHER);
}
