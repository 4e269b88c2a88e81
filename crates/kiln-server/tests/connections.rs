//! The connection layer under attack, on a real listener: idle and half-sent connections are
//! closed and never starve other clients, over-long request lines and heads, wrong methods
//! and malformed query strings all get the JSON error body, and a request refused before its
//! body is read says `Connection: close`, so a keep-alive client's next request still works.

mod support;

use std::sync::Arc;
use std::time::Duration;

use kiln_llm::OfflinePlanner;
use kiln_session::ServerConfig;
use reqwest::StatusCode;
use serde_json::Value;
use support::{Server, start_configured, start_with_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start(server: ServerConfig) -> Server {
    start_configured(&server, Arc::new(OfflinePlanner::new())).await
}

fn quick() -> ServerConfig {
    ServerConfig {
        header_timeout_secs: 1,
        idle_timeout_secs: 1,
        body_timeout_secs: 1,
        ..Default::default()
    }
}

async fn connect(s: &Server) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Waits until the server closes `c` (a read returns end of stream or an error); returns
/// whatever it sent first. Panics after `limit`.
async fn closed_within(c: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match c.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closed the connection in time");
    got
}

/// Sends raw bytes and reads the whole answer (the server closes after it).
async fn raw(s: &Server, request: &[u8]) -> String {
    let mut c = connect(s).await;
    // The server may answer and close before everything is sent.
    let _ = c.write_all(request).await;
    String::from_utf8_lossy(&closed_within(&mut c, Duration::from_secs(5)).await).into_owned()
}

fn json_body(response: &str) -> Value {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {response}"))
}

#[tokio::test]
async fn idle_and_half_sent_connections_never_starve_other_clients() {
    let s = start(ServerConfig {
        max_connections: 16,
        ..quick()
    })
    .await;
    let mut attackers = Vec::new();
    // Idle connections, connections stuck inside a request head, and inside a body: more
    // than the cap allows.
    for i in 0..30 {
        let mut c = connect(&s).await;
        match i % 3 {
            0 => {}
            1 => c
                .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap(),
            _ => c
                .write_all(
                    b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                      Content-Length: 1000\r\n\r\n{\"name\":",
                )
                .await
                .unwrap(),
        }
        attackers.push(c);
    }
    // Everyone else is still served, and promptly.
    for _ in 0..5 {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            s.http.get(format!("{}/v1/health", s.base)).send(),
        )
        .await
        .expect("a legitimate request is answered while attackers hold connections")
        .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // And every attacking connection is closed by the server.
    for c in &mut attackers {
        closed_within(c, Duration::from_secs(5)).await;
    }
}

#[tokio::test]
async fn each_kind_of_slow_connection_is_closed_by_its_own_deadline() {
    let s = start(quick()).await;
    // A connection that never sends a request.
    let mut idle = connect(&s).await;
    // A head that never ends, trickled a byte at a time.
    let mut trickle = connect(&s).await;
    trickle
        .write_all(b"GET /v1/health HTTP/1.1\r\n")
        .await
        .unwrap();
    let trickler = tokio::spawn(async move {
        for _ in 0..40 {
            if trickle.write_all(b"X").await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    // A body that never ends.
    let mut body = connect(&s).await;
    body.write_all(
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    // A keep-alive connection left idle after one request.
    let mut kept = connect(&s).await;
    kept.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1024];
    let n = kept.read(&mut first).await.unwrap();
    assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));

    closed_within(&mut idle, Duration::from_secs(4)).await;
    closed_within(&mut body, Duration::from_secs(4)).await;
    closed_within(&mut kept, Duration::from_secs(4)).await;
    assert!(
        tokio::time::timeout(Duration::from_secs(4), trickler)
            .await
            .unwrap()
            .unwrap(),
        "a trickled head is cut off although bytes keep coming"
    );
}

#[tokio::test]
async fn over_long_request_lines_and_heads_get_the_json_error_body() {
    let s = start(ServerConfig::default()).await;
    let long_uri = format!(
        "GET /v1/health?x={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let r = raw(&s, long_uri.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 414 "), "{r}");
    assert!(r.to_lowercase().contains("connection: close"));
    assert_eq!(json_body(&r)["error"]["code"], "uri_too_long");

    let long_head = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    let r = raw(&s, long_head.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    assert_eq!(json_body(&r)["error"]["code"], "headers_too_large");
    assert_eq!(json_body(&r)["error"]["recoverable"], true);

    // The limits sit just where the configuration puts them: a long but allowed URI works.
    let ok = format!("{}/v1/health?x={}", s.base, "a".repeat(7_000));
    assert_eq!(
        s.http.get(ok).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn wrong_methods_and_malformed_queries_get_the_json_error_body() {
    let s = start(ServerConfig::default()).await;
    let cases = [
        (reqwest::Method::DELETE, "/v1/health".to_string(), 405),
        (reqwest::Method::TRACE, "/v1/sessions".to_string(), 405),
        (reqwest::Method::TRACE, "/v1/shared/ks_00".to_string(), 405),
        (
            reqwest::Method::GET,
            "/v1/shared/ks_00?before=a&before=b".to_string(),
            400,
        ),
        (reqwest::Method::GET, "/v1/nowhere".to_string(), 404),
    ];
    for (method, path, status) in cases {
        let r = s
            .http
            .request(method.clone(), format!("{}{path}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        assert_eq!(
            r.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        if status == 405 {
            assert!(r.headers().contains_key("allow"), "{method} {path}");
        }
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["code"].is_string(), "{method} {path}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A page's malformed query string renders the HTML error page instead.
    let r = s
        .http
        .get(format!("{}/login?next=a&next=b", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn a_request_refused_before_its_body_is_read_says_connection_close() {
    let s = start(ServerConfig::default()).await;
    // Raw: the answer to an unauthenticated POST whose body was never read closes.
    let mut c = connect(&s).await;
    c.write_all(
        b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100000\r\n\r\n{\"name\":",
    )
    .await
    .unwrap();
    let r = String::from_utf8_lossy(&closed_within(&mut c, Duration::from_secs(5)).await)
        .to_lowercase();
    assert!(r.starts_with("http/1.1 401 "), "{r}");
    assert!(r.contains("connection: close"), "{r}");

    // A keep-alive client whose request was refused unread sends its next one fine.
    let big = vec![b' '; 1 << 20];
    for _ in 0..3 {
        let r = s
            .http
            .post(format!("{}/v1/sessions", s.base))
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = s
            .http
            .get(format!("{}/v1/sessions", s.base))
            .bearer_auth(&s.alice)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // A request whose body was read keeps its connection.
    let r = s
        .http
        .post(format!("{}/v1/sessions", s.base))
        .bearer_auth(&s.alice)
        .json(&serde_json::json!({"name": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(!r.headers().contains_key("connection"));
}

/// The rest of a body the server never read is not a request of its own, whatever it looks
/// like: one long line (once answered a second time, 414, by the connection layer after a
/// 429), or requests smuggled inside the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_of_an_unread_body_is_never_taken_for_a_request() {
    let mut config = kiln_session::Config::default();
    config.limits.expensive_per_minute = 1;
    config.limits.expensive_burst = 1;
    let s = start_with_config(config, Arc::new(OfflinePlanner::new())).await;
    // Spend the one expensive request: every import after it is refused unread, 429.
    let r = s
        .http
        .get(format!("{}/v1/search?q=x", s.base))
        .bearer_auth(&s.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for auth in ["", "Authorization: Bearer ALICE\r\n"] {
        let auth = auth.replace("ALICE", &s.alice);
        let want = if auth.is_empty() { "401" } else { "429" };
        for (rest, pause) in [
            (vec![b'x'; 1_900_000], 0),
            (vec![b'x'; 64 << 10], 100),
            (b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100), 0),
            (
                b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(100),
                100,
            ),
        ] {
            let mut c = connect(&s).await;
            let head = format!(
                "POST /v1/sessions/import HTTP/1.1\r\nHost: x\r\n{auth}\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                rest.len()
            );
            // The body with the head, or once the refusal is written.
            if pause == 0 {
                let _ = c.write_all(&[head.as_bytes(), &rest].concat()).await;
            } else {
                c.write_all(head.as_bytes()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(pause)).await;
                let _ = c.write_all(&rest).await;
            }
            let r = String::from_utf8_lossy(&closed_within(&mut c, Duration::from_secs(5)).await)
                .to_lowercase();
            assert_eq!(r.matches("http/1.1 ").count(), 1, "one answer only: {r}");
            assert!(r.starts_with(&format!("http/1.1 {want} ")), "{r}");
        }
    }
}
