//! The first web pages over real HTTP: sign-in by form and by `/login?token=` into an HttpOnly,
//! SameSite=Strict cookie, the sessions page with filters and only valid lifecycle buttons, and
//! CSRF on every form that writes. (Browser tests come with the session page, issue 7.)

mod support;

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::start;

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 32].to_string()
}

#[tokio::test]
async fn sign_in_list_and_move_sessions_with_csrf() {
    let srv = start(1 << 20).await;
    let http = client();
    let api = |path: &str, body: Value| {
        let (srv, path) = (&srv, path.to_string());
        async move {
            let (s, v) = srv
                .send(
                    srv.http
                        .post(format!("{}{path}", srv.base))
                        .bearer_auth(&srv.alice)
                        .json(&body),
                )
                .await;
            assert!(s.is_success(), "{path}: {v}");
            v
        }
    };
    let a = api(
        "/v1/sessions",
        json!({"name": "Olivine <b>study</b>", "project": "lfp"}),
    )
    .await;
    let b = api("/v1/sessions", json!({"name": "Paused one"})).await;
    let b_id = b["id"].as_str().unwrap().to_owned();
    api(
        &format!("/v1/sessions/{b_id}/branches/main/messages"),
        json!({"role": "user", "content": "hi"}),
    )
    .await;
    api(
        &format!("/v1/sessions/{b_id}/status"),
        json!({"status": "paused"}),
    )
    .await;

    // Not signed in: the sign-in page.
    let r = http.get(format!("{}/", srv.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("action=\"/login\""));

    // A bad token is refused; the one-time link signs in with a strict cookie.
    let r = http
        .post(format!("{}/login", srv.base))
        .form(&[("token", "kiln_nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get("set-cookie").is_none());
    let r = http
        .get(format!("{}/login?token={}", srv.base, srv.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();

    // The sessions page: escaped names, only valid transitions, filters.
    let get = |path: &str| {
        let (http, base, cookie, path) = (&http, &srv.base, cookie.clone(), path.to_string());
        async move {
            let r = http
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, page) = get("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Olivine &lt;b&gt;study") && page.contains("Paused one"),
        "{page}"
    );
    let paused_row = &page[page.find("Paused one").unwrap()..];
    let paused_row = &paused_row[..paused_row.find("</tr>").unwrap()];
    assert!(paused_row.contains(">Resume<") && paused_row.contains(">Archive<"));
    assert!(!paused_row.contains(">Pause<"), "{paused_row}");
    let (_, filtered) = get("/?status=paused&type=&project=&tag=").await;
    assert!(filtered.contains("Paused one") && !filtered.contains("Olivine"));
    let (_, by_project) = get("/?project=lfp").await;
    assert!(by_project.contains("Olivine") && !by_project.contains("Paused one"));
    let (s, _) = get("/?status=sleeping").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Moving a session needs the page's CSRF token.
    let csrf = csrf_of(&page);
    let post = |form: Vec<(&'static str, String)>| {
        let (http, base, cookie, id) = (&http, &srv.base, cookie.clone(), b_id.clone());
        async move {
            http.post(format!("{base}/web/sessions/{id}/status"))
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let bad = post(vec![("status", "resumed".into()), ("csrf", "0".repeat(32))]).await;
    assert_eq!(bad, StatusCode::FORBIDDEN);
    let status = |v: &Value| v["status"].as_str().unwrap().to_owned();
    let (_, now) = srv
        .send(
            srv.http
                .get(format!("{}/v1/sessions/{b_id}", srv.base))
                .bearer_auth(&srv.alice),
        )
        .await;
    assert_eq!(status(&now), "paused");
    let ok = post(vec![("status", "resumed".into()), ("csrf", csrf.clone())]).await;
    assert_eq!(ok, StatusCode::SEE_OTHER);
    let (_, now) = srv
        .send(
            srv.http
                .get(format!("{}/v1/sessions/{b_id}", srv.base))
                .bearer_auth(&srv.alice),
        )
        .await;
    assert_eq!(status(&now), "resumed");

    // A new session from the page's form (CSRF checked), and the search box.
    let create = |csrf: String| {
        let (http, base, cookie) = (&http, &srv.base, cookie.clone());
        async move {
            http.post(format!("{base}/web/sessions"))
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("name", "Garnet electrolytes"),
                    ("type", "interactive"),
                    ("project", "ssb"),
                    ("tags", "oxide, li-ion"),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(create("f".repeat(32)).await, StatusCode::FORBIDDEN);
    assert_eq!(create(csrf.clone()).await, StatusCode::SEE_OTHER);
    let (_, page) = get("/?project=ssb").await;
    assert!(
        page.contains("Garnet electrolytes") && page.contains("oxide, li-ion"),
        "{page}"
    );
    api(
        &format!("/v1/sessions/{b_id}/branches/main/messages"),
        json!({"role": "user", "content": "the olivine framework is stable"}),
    )
    .await;
    let (s, page) = get("/?q=olivine").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<b>olivine</b>"), "highlighted hit: {page}");
    let (_, page) = get("/?q=%22olivine").await;
    assert!(page.contains("never closed"), "{page}");

    // Bob's page shows none of alice's sessions; signing out clears the cookie.
    let r = http
        .get(format!("{}/login?token={}", srv.base, srv.bob))
        .send()
        .await
        .unwrap();
    let bob_cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{}/", srv.base))
        .header("cookie", bob_cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("No sessions match") && !page.contains("Olivine"),
        "{page}"
    );
    let r = http
        .post(format!("{}/logout", srv.base))
        .header("cookie", cookie.clone())
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(a["id"].is_string());
}
