//! `kiln serve` as a user starts it: first start creates the owner and prints its token once,
//! the service answers on the bound address, and a second start prints no token.

mod support;

use support::start;

#[tokio::test]
async fn first_start_prints_an_owner_token_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let token = server
        .token
        .clone()
        .expect("first start prints the owner token");
    assert_eq!(token.len(), 69);
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    assert!(server.addr.starts_with("127.0.0.1:"));
    let r = http.get(format!("{base}/v1/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{base}/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "from the binary"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    drop(server);
    assert!(dir.path().join("kiln.db").exists());
    let again = start(dir.path());
    assert!(
        again.token.is_none(),
        "the token is shown only on first start"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_service_cleanly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    let pid = server.pid().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = server
        .wait_for_exit(std::time::Duration::from_secs(20))
        .await;
    assert_eq!(
        (status.code(), status.signal()),
        (Some(0), None),
        "SIGTERM ends `serve` with success, not by the signal"
    );
    // The clean stop folded the WAL into the database.
    let wal = dir.path().join("kiln.db-wal");
    let wal_len = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_len, 0, "the WAL was checkpointed on the way out");
}
