//! No secret in the logs: with every target at DEBUG (what `KILN_LOG=debug` gives), a real
//! server handling a sign-in link, bearer requests and share links writes no API token and no
//! share token, while the requests themselves are still logged.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use support::start;

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

    let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
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
