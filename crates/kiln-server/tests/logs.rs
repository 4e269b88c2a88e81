//! No secret in the logs: with every target at DEBUG (what `KILN_LOG=debug` gives), a real
//! server handling a sign-in link, bearer requests and share links writes no API token and no
//! share token, while the requests themselves are still logged.

mod support;

#[path = "../../kiln-llm/tests/support/server.rs"]
mod llm_server;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use support::{csrf_of, start, start_from_config};

/// A log sink the test can read.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn debug_logs_carry_no_api_or_share_token() {
    let sink = Sink::default();
    let writer = sink.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let srv = start(1 << 20).await;
    let (_, s) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "logged"})),
        )
        .await;
    let id = s["id"].as_str().unwrap();
    let (_, share) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/shares"),
            Some(&srv.alice),
            Some(json!({"expires_in_days": 1})),
        )
        .await;
    let share_token = share["token"].as_str().unwrap().to_owned();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        format!("/login?token={}&next=/web/sessions/{id}", srv.alice),
        format!("/v1/shared/{share_token}"),
        format!("/s/{share_token}"),
    ] {
        let r = no_redirects
            .get(format!("{}{path}", srv.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().as_u16() < 400, "{path}: {}", r.status());
    }

    // The settings page: an administrator saves a model's key and tests the connection (a
    // tool-calling round trip that sends the key), all logged at DEBUG.
    const KEY: &str = "sk-logged-nowhere-7731";
    let model = llm_server::MockServer::start(vec![
        llm_server::tool_answer(&[("c1", "kiln_echo", r#"{"word": "kiln"}"#)]),
        llm_server::text_answer("The echo tool said kiln."),
    ])
    .await;
    model.set_models(&["test-model"]);
    let admin = start_from_config(kiln_session::Config::default()).await;
    let cookie = format!("kiln_token={}", admin.alice);
    let page = no_redirects
        .get(format!("{}/web/settings", admin.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    let base_url = model.base_url();
    for (path, form) in [
        (
            "/web/settings",
            vec![
                ("csrf", csrf.as_str()),
                ("base_url", base_url.as_str()),
                ("model", "test-model"),
                ("api_key", KEY),
                ("action", "save"),
            ],
        ),
        ("/web/settings/test", vec![("csrf", csrf.as_str())]),
    ] {
        let r = no_redirects
            .post(format!("{}{path}", admin.base))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    assert_eq!(
        model.seen().len(),
        2,
        "the connection test reached the model"
    );
    assert_eq!(
        model.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str())
    );

    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    assert!(!logs.contains(KEY), "the model's key reached the logs");
    assert!(
        logs.contains("/login?token=[redacted]") && logs.contains("/v1/shared/[redacted]"),
        "requests are still logged, redacted:\n{logs}"
    );
    assert!(!logs.contains(&srv.alice), "an API token reached the logs");
    assert!(
        !logs.contains(&share_token),
        "a share token reached the logs"
    );
    assert!(
        !logs.contains(&share_token[3..]),
        "a share token's secret reached the logs"
    );
}
