//! Over HTTP: the public instance key, signed exports importing `verified`, an edited one
//! `unverified`, and an import past the size limit refused with 413 before it is buffered.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn the_instance_key_signs_exports_and_imports_say_how_far_they_are_trusted() {
    let s = support::start(2 * 1024 * 1024).await;
    let (st, key) = s.request(Method::GET, "/v1/instance/key", None, None).await;
    assert_eq!(st, StatusCode::OK, "public, without a token: {key}");
    assert_eq!(key["algorithm"], "ed25519");
    assert_eq!(key["public_key"].as_str().unwrap().len(), 64);
    let a = Some(s.alice.as_str());
    let (_, created) = s
        .request(
            Method::POST,
            "/v1/sessions",
            a,
            Some(json!({"name": "signed"})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    s.request(
        Method::POST,
        &format!("/v1/sessions/{id}/branches/main/messages"),
        a,
        Some(json!({"role": "user", "content": "Analyse LiFePO4"})),
    )
    .await;
    let (_, doc) = s
        .request(Method::GET, &format!("/v1/sessions/{id}/export"), a, None)
        .await;
    assert_eq!(doc["signature"]["key"], key["public_key"]);
    let (st, v) = s
        .request(Method::POST, "/v1/sessions/import", a, Some(doc.clone()))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["provenance"], "verified");
    let mut edited = doc.clone();
    edited["session"]["description"] = json!("edited after export");
    let (st, v) = s
        .request(Method::POST, "/v1/sessions/import", a, Some(edited))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["provenance"], "unverified");
    // A session created here has no provenance field at all.
    assert!(created.get("provenance").is_none(), "{created}");
    // The session page says so.
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = web
        .post(format!("{}/login", s.base))
        .form(&[("token", s.alice.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = |id: String| {
        let (web, base, cookie) = (web.clone(), s.base.clone(), cookie.clone());
        async move {
            let r = web
                .get(format!("{base}/web/sessions/{id}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.unwrap()
        }
    };
    let unverified = page(v["id"].as_str().unwrap().to_string()).await;
    assert!(unverified.contains("Imported, unverified"), "{unverified}");
    let native = page(id.to_string()).await;
    assert!(!native.contains("data-provenance"), "{native}");
}

#[tokio::test]
async fn an_import_past_the_limit_is_413_and_recoverable() {
    let s = support::start(2 * 1024 * 1024).await;
    // The default limit is 16 MiB, above the 2 MiB of other bodies.
    let body = vec![b' '; 16 * 1024 * 1024 + 1];
    let req = s
        .http
        .post(format!("{}/v1/sessions/import", s.base))
        .bearer_auth(&s.alice)
        .header("content-type", "application/json")
        .body(body);
    let (st, v) = s.send(req).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert_eq!(v["error"]["recoverable"], true);
    // Between the body limit and the import limit, an import is read (and here refused as
    // not an export, not as too large).
    let req = s
        .http
        .post(format!("{}/v1/sessions/import", s.base))
        .bearer_auth(&s.alice)
        .header("content-type", "application/json")
        .body(format!("{{\"pad\": \"{}\"}}", "x".repeat(3 * 1024 * 1024)));
    let (st, v) = s.send(req).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Without a token nothing is read.
    let (st, _) = s
        .request(Method::POST, "/v1/sessions/import", None, Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
