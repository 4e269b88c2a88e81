//! The web pages over real HTTP: sign-in by form and by `/login?token=` into an HttpOnly,
//! SameSite=Strict cookie, the sessions page with filters and only valid lifecycle buttons, the
//! session page's panels and who sees which control, the cookie + CSRF header on the JSON API,
//! and CSRF on every form that writes. In a real browser: tests/browser.rs.

mod support;

use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use support::{csrf_of, start};

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
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
    // The link alone signs nobody in (login CSRF): it names the account and offers a button
    // that posts the token; the page is never cached.
    let r = http
        .get(format!("{}/login?token={}", srv.base, srv.alice))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(r.headers()["cache-control"], "no-store");
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("Sign in as alice"), "{confirm}");
    assert!(confirm.contains(&format!("value=\"{}\"", srv.alice)));
    // A form posted from another site is refused, whichever way the browser says so.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("origin", "null"),
    ] {
        let r = http
            .post(format!("{}/login", srv.base))
            .header(name, value)
            .form(&[("token", srv.alice.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(r.headers().get("set-cookie").is_none());
    }
    // Our own page's button: signed in with a strict cookie, Secure only over HTTPS.
    let r = http
        .post(format!("{}/login", srv.base))
        .header("origin", &srv.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("token", srv.alice.as_str())])
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
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: {cookie}"
    );
    for (name, value) in [
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=10.0.0.1;proto=https"),
    ] {
        let r = http
            .post(format!("{}/login", srv.base))
            .header(name, value)
            .form(&[("token", srv.alice.as_str())])
            .send()
            .await
            .unwrap();
        let secure = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        assert!(secure.contains("; Secure"), "behind {name}: {secure}");
    }
    let cookie = cookie.split(';').next().unwrap().to_owned();

    // The sessions page: escaped names, only valid transitions, filters.
    let get = |path: &str| page_as(&http, format!("{}{path}", srv.base), cookie.clone());
    let r = http
        .get(format!("{}/", srv.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store", "signed-in pages");
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
    // More sessions than a page: the oldest ones are one "Older sessions" link away, and
    // paging keeps the filters.
    for i in 0..55 {
        api(
            "/v1/sessions",
            json!({"name": format!("Filler {i}"), "project": "bulk"}),
        )
        .await;
    }
    let older_link = |page: &str| {
        page.split("id=\"older-sessions\" href=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .expect("an Older sessions link")
            .replace("&amp;", "&")
    };
    let (_, first) = get("/").await;
    assert!(
        first.contains("Filler 54") && !first.contains("Olivine &lt;b&gt;study"),
        "the first page holds the newest sessions"
    );
    let (_, second) = get(&older_link(&first)).await;
    assert!(second.contains("Olivine &lt;b&gt;study"), "{second}");
    assert!(second.contains(">First page<"));
    let (_, bulk) = get("/?project=bulk").await;
    let older = older_link(&bulk);
    assert!(older.contains("&project=bulk"), "{older}");
    let (_, bulk2) = get(&older).await;
    assert!(
        bulk2.contains("Filler 0") && !bulk2.contains("Olivine"),
        "{bulk2}"
    );
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
    let status = || async {
        let path = format!("/v1/sessions/{b_id}");
        let (_, v) = srv
            .request(reqwest::Method::GET, &path, Some(&srv.alice), None)
            .await;
        v["status"].as_str().unwrap().to_owned()
    };
    assert_eq!(status().await, "paused");
    let ok = post(vec![("status", "resumed".into()), ("csrf", csrf.clone())]).await;
    assert_eq!(ok, StatusCode::SEE_OTHER);
    assert_eq!(status().await, "resumed");

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
    let hit = api(
        &format!("/v1/sessions/{b_id}/branches/main/messages"),
        json!({"role": "user", "content": "the olivine framework is stable"}),
    )
    .await;
    let hit = hit["head"].as_str().unwrap().to_owned();
    // Bury the hit under more than a page of newer messages.
    for i in 0..60 {
        api(
            &format!("/v1/sessions/{b_id}/branches/main/messages"),
            json!({"role": "user", "content": format!("later message {i}")}),
        )
        .await;
    }
    let (s, page) = get("/?q=olivine").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<b>olivine</b>"), "highlighted hit: {page}");
    // The hit links to the conversation around it, which the newest page no longer shows.
    let link = format!("/web/sessions/{b_id}?branch=main&amp;around={hit}#n-{hit}");
    assert!(page.contains(&link), "{page}");
    assert!(page.contains(&format!("href=\"/web/sessions/{b_id}\"")));
    let anchor = format!("id=\"n-{hit}\"");
    let (_, newest) = get(&format!("/web/sessions/{b_id}")).await;
    assert!(
        !newest.contains(&anchor),
        "the hit is older than the newest page"
    );
    let (s, around) = get(&format!("/web/sessions/{b_id}?branch=main&around={hit}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(around.contains(&anchor), "{around}");
    let (_, page) = get("/?q=%22olivine").await;
    assert!(page.contains("never closed"), "{page}");

    // Bob's page shows none of alice's sessions; signing out clears the cookie.
    let (_, _, page) = signed_in(&srv, &http, &srv.bob).await;
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

/// GETs `url` with the sign-in `cookie`; returns the status and the body.
async fn page_as(http: &Client, url: String, cookie: String) -> (StatusCode, String) {
    let r = http.get(url).header("cookie", cookie).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Signs `token` in by the one-time link; returns the cookie pair, the CSRF token of its pages
/// and the page `/` shows it.
async fn signed_in(srv: &support::Server, http: &Client, token: &str) -> (String, String, String) {
    let r = http
        .post(format!("{}/login", srv.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = http
        .get(format!("{}/", srv.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    (cookie, csrf, page)
}

#[tokio::test]
async fn the_session_page_shows_every_panel_and_controls_only_to_those_allowed() {
    let srv = start(1 << 20).await;
    let http = client();
    let api = |path: String, body: Value| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .request(reqwest::Method::POST, &path, Some(&srv.alice), Some(body))
                .await;
            assert!(s.is_success(), "{path}: {v}");
            v
        }
    };
    let s = api("/v1/sessions".into(), json!({"name": "Olivine study"})).await;
    let id = s["id"].as_str().unwrap().to_owned();
    let turn = api(
        format!("/v1/sessions/{id}/query"),
        json!({"message": "Analyse LiFePO4"}),
    )
    .await;
    let user_node = turn["user_node"].as_str().unwrap().to_owned();
    let tool = |name: &str, args: Value| {
        api(
            format!("/v1/sessions/{id}/tools/{name}"),
            json!({"arguments": args}),
        )
    };
    tool(
        "bayesian_optimizer",
        json!({"action": "define_space",
        "variables": [{"name": "t", "type": "real", "bounds": [300, 900]}],
        "objective": {"name": "capacity", "goal": "maximize"}}),
    )
    .await;
    tool(
        "bayesian_optimizer",
        json!({"action": "add_experiments", "experiments": [
        {"inputs": {"t": 400}, "output": 120.5}, {"inputs": {"t": 700}, "output": 151.25}]}),
    )
    .await;
    tool("bayesian_optimizer", json!({"action": "suggest"})).await;
    for v in [0.2, 0.4] {
        tool(
            "notebook",
            json!({"action": "log_metric", "name": "coulombic_efficiency", "value": v}),
        )
        .await;
    }
    let event = |body: Value| api(format!("/v1/sessions/{id}/branches/main/events"), body);
    let d1 = event(json!({"kind": "discovery", "type": "structure",
        "description": "Olivine <script>alert(1)</script> stays stable", "evidence": [user_node]}))
    .await;
    let d2 = event(json!({"kind": "discovery", "type": "property", "description": "Fe-site doping raises rate"})).await;
    let (d1, d2) = (
        d1["head"].as_str().unwrap().to_owned(),
        d2["head"].as_str().unwrap().to_owned(),
    );
    event(json!({"kind": "discovery_link", "from": d2, "to": d1, "relationship": "supports"}))
        .await;
    event(json!({"kind": "hypothesis", "statement": "Mn substitution lowers the voltage hysteresis", "status": "open"})).await;
    event(json!({"kind": "task", "description": "Run the 1C cycling test", "status": "pending"}))
        .await;
    api(
        format!("/v1/sessions/{id}/shares"),
        json!({"expires_in_days": 3}),
    )
    .await;
    api(
        format!("/v1/sessions/{id}/collaborators"),
        json!({"user": "reader", "permissions": ["read"]}),
    )
    .await;

    // Signed out: to the sign-in page.
    let r = http
        .get(format!("{}/web/sessions/{id}", srv.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(login, format!("/login?next=/web/sessions/{id}"));
    // … whose form comes back to the page after signing in.
    let r = http
        .get(format!("{}{login}", srv.base))
        .send()
        .await
        .unwrap();
    // (minijinja escapes `/` in attributes as `&#x2f;`, which the browser reads as `/`.)
    let form = r.text().await.unwrap().replace("&#x2f;", "/");
    let hidden = format!("name=\"next\" value=\"/web/sessions/{id}\"");
    assert!(form.contains(&hidden), "{form}");
    let back = format!("/web/sessions/{id}");
    let r = http
        .post(format!("{}/login", srv.base))
        .form(&[("token", srv.alice.as_str()), ("next", back.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], back.as_str());
    // A sign-in link cannot send anyone to another site.
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "x",
    ] {
        let r = http
            .post(format!("{}/login", srv.base))
            .form(&[("token", srv.alice.as_str()), ("next", evil)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/", "next={evil}");
    }

    let (cookie, csrf, _) = signed_in(&srv, &http, &srv.alice).await;
    let get = |path: String, cookie: String| page_as(&http, format!("{}{path}", srv.base), cookie);
    // The workspace: every tab of the side panel, each at its own URL, with the conversation.
    let all_tabs = |cookie: String| {
        let (get, id) = (&get, id.clone());
        async move {
            let mut all = String::new();
            for tab in [
                "state",
                "branches",
                "optimizer",
                "notebook",
                "audit",
                "sharing",
            ] {
                let (status, page) = get(format!("/web/sessions/{id}/{tab}"), cookie.clone()).await;
                assert_eq!(status, StatusCode::OK, "{tab}");
                assert!(
                    page.contains("Analyse LiFePO4"),
                    "{tab} shows the conversation"
                );
                all.push_str(&page);
            }
            all
        }
    };
    let (status, _) = get(format!("/web/sessions/{id}/nope"), cookie.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown tab");
    let page = all_tabs(cookie.clone()).await;
    for expected in [
        "Analyse LiFePO4",                                     // the conversation
        "<span class=\"tool-name\">materials_analyzer</span>", // tool calls, compact
        "<caption>Search space</caption>",                     // the optimizer's tables
        "151.25",
        "Latest suggestions (EI)",
        "Convergence",
        "coulombic_efficiency",       // a notebook metric track
        "Fe-site doping raises rate", // discoveries, links, evidence
        "<em>supports</em>",
        &format!("#n-{user_node}\""),
        "Mn substitution lowers the voltage hysteresis",
        "Run the 1C cycling test",
        "Chain verified",
        "<dt>bayesian_optimizer</dt><dd>3 call(s)</dd>", // statistics: tool usage
        "id=\"context-tokens\"",
        "Share links",
        "Collaborators",
        "id=\"composer\"",
        ">Pause<",
        "id=\"new-branch-form\"",
        "id=\"note-form\"",
        "id=\"material-form\"",
        "id=\"hypothesis-form\"",
        "id=\"task-form\"",
        "id=\"discovery-form\"",
        "id=\"link-form\"",
        "/v1/sessions/",
    ] {
        assert!(page.contains(expected), "missing {expected:?}");
    }
    assert!(
        page.matches("<svg").count() >= 2,
        "convergence + metric charts"
    );
    // A tool card shows the result's text, not its JSON.
    let texts: Vec<&str> = page
        .split("class=\"tool-text md\">")
        .skip(1)
        .map(|s| s.split("</div>").next().unwrap())
        .collect();
    assert!(!texts.is_empty());
    for text in texts {
        assert!(!text.contains("{&quot;"), "a tool card shows JSON: {text}");
    }
    // A discovery without a confidence shows none (not an empty "confidence ·").
    assert!(
        !page.contains("confidence  ·"),
        "an empty confidence is shown"
    );
    // User text is escaped everywhere.
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;"));

    // Defence in depth: only our own script runs, nothing frames the page.
    let r = http
        .get(format!("{}/web/sessions/{id}", srv.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // A script-driven form posted without the script says so and changes nothing.
    let r = http
        .post(format!("{}/web/needs-script", srv.base))
        .header("cookie", &cookie)
        .form(&[("name", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("needs JavaScript"));

    // A reader sees the session but no control that writes.
    let (reader_cookie, _, _) = signed_in(&srv, &http, &srv.users["reader"]).await;
    let page = all_tabs(reader_cookie.clone()).await;
    for absent in [
        "id=\"composer\"",
        "new-branch-form",
        "Share links",
        "Restore",
        "Pause",
    ] {
        assert!(!page.contains(absent), "a reader sees {absent:?}");
    }
    for absent in [
        "note-form",
        "material-form",
        "hypothesis-form",
        "discovery-form",
    ] {
        assert!(!page.contains(absent), "a reader sees {absent:?}");
    }
    // A writer chats and branches but moves no lifecycle (that needs manage), here and on the
    // sessions page.
    api(
        format!("/v1/sessions/{id}/collaborators"),
        json!({"user": "writer", "permissions": ["write"]}),
    )
    .await;
    let (writer_cookie, _, writer_home) = signed_in(&srv, &http, &srv.users["writer"]).await;
    let page = all_tabs(writer_cookie).await;
    assert!(page.contains("id=\"composer\"") && page.contains("new-branch-form"));
    assert!(!page.contains(">Pause<") && !page.contains(">Archive<"));
    assert!(writer_home.contains("Olivine study") && !writer_home.contains(">Pause<"));
    // A commenter may add notes (not chat); a materials collaborator may add materials.
    for (user, perm) in [("commenter", "comment"), ("materials", "add_materials")] {
        api(
            format!("/v1/sessions/{id}/collaborators"),
            json!({"user": user, "permissions": [perm]}),
        )
        .await;
    }
    let (commenter_cookie, commenter_csrf, _) =
        signed_in(&srv, &http, &srv.users["commenter"]).await;
    let page = all_tabs(commenter_cookie.clone()).await;
    assert!(page.contains("id=\"note-form\"") && !page.contains("id=\"composer\""));
    assert!(!page.contains("material-form") && !page.contains("hypothesis-form"));
    let r = http
        .post(format!(
            "{}/v1/sessions/{id}/branches/main/messages",
            srv.base
        ))
        .header("cookie", &commenter_cookie)
        .header("x-csrf-token", &commenter_csrf)
        .json(&json!({"role": "note", "content": "Check the Fe-O distances"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (materials_cookie, _, _) = signed_in(&srv, &http, &srv.users["materials"]).await;
    let page = all_tabs(materials_cookie).await;
    assert!(page.contains("id=\"material-form\"") && !page.contains("hypothesis-form"));
    assert!(page.contains("Check the Fe-O distances"));
    // A stranger and an unknown branch get error pages; nothing leaks.
    let (bob_cookie, _, _) = signed_in(&srv, &http, &srv.bob).await;
    let (status, page) = get(format!("/web/sessions/{id}"), bob_cookie).await;
    assert!(
        status == StatusCode::NOT_FOUND || status == StatusCode::FORBIDDEN,
        "{status}"
    );
    assert!(!page.contains("Olivine"));
    let (status, _) = get(format!("/web/sessions/{id}?branch=nope"), cookie.clone()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The JSON API takes the sign-in cookie: reads as is, writes only with the CSRF header.
    let (status, body) = get(format!("/v1/sessions/{id}"), cookie.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let branch = |csrf: Option<&str>| {
        let (http, base, cookie) = (&http, &srv.base, cookie.clone());
        let csrf = csrf.map(str::to_owned);
        let id = id.clone();
        async move {
            let mut req = http
                .post(format!("{base}/v1/sessions/{id}/branches"))
                .header("cookie", cookie)
                .json(&json!({"name": format!("b{}", csrf.as_deref().map_or(0, str::len))}));
            if let Some(c) = csrf {
                req = req.header("x-csrf-token", c);
            }
            req.send().await.unwrap().status()
        }
    };
    assert_eq!(branch(None).await, StatusCode::FORBIDDEN);
    assert_eq!(branch(Some("0123")).await, StatusCode::FORBIDDEN);
    assert_eq!(branch(Some(&csrf)).await, StatusCode::CREATED);
    // A reader's cookie with a valid CSRF header still cannot write.
    let (_, reader_csrf, _) = signed_in(&srv, &http, &srv.users["reader"]).await;
    let r = http
        .post(format!("{}/v1/sessions/{id}/branches", srv.base))
        .header("cookie", &reader_cookie)
        .header("x-csrf-token", &reader_csrf)
        .json(&json!({"name": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The composer without JavaScript: the turn runs, then the page again.
    let r = http
        .post(format!("{}/web/sessions/{id}/messages", srv.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("message", "Analyse LiCoO2"),
            ("branch", "main"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()["location"],
        format!("/web/sessions/{id}?branch=main")
    );
    let (_, page) = get(format!("/web/sessions/{id}"), cookie.clone()).await;
    assert!(page.contains("Analyse LiCoO2") && page.contains("97.871"));

    // Lifecycle buttons return to a session page, never to another site.
    let status_form = |back: &str| {
        let (http, base, cookie, csrf) = (&http, &srv.base, cookie.clone(), csrf.clone());
        let (id, back) = (id.clone(), back.to_owned());
        async move {
            let r = http
                .post(format!("{base}/web/sessions/{id}/status"))
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("status", "paused"),
                    ("back", back.as_str()),
                ])
                .send()
                .await
                .unwrap();
            r.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    let back = format!("/web/sessions/{id}?branch=main");
    assert_eq!(status_form(&back).await, back);
    // (paused → paused is refused with an error page, which has no location; resume first.)
    let r = http
        .post(format!("{}/web/sessions/{id}/status", srv.base))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("status", "resumed")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/");
    assert_eq!(
        http.post(format!("{}/web/sessions/{id}/status", srv.base))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("status", "paused"),
                ("back", "//evil.example/x")
            ])
            .send()
            .await
            .unwrap()
            .headers()["location"],
        "/"
    );

    // A session from a template, parameters as `name = value` lines; a bad line is refused.
    let from_template = |params: &str| {
        let (http, base, cookie, csrf) = (&http, &srv.base, cookie.clone(), csrf.clone());
        let params = params.to_owned();
        async move {
            http.post(format!("{base}/web/sessions/from-template"))
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("template", "materials-discovery"),
                    ("params", params.as_str()),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = from_template("material = NaFePO4\nproperty = rate capability\n").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    let (status, page) = get(to, cookie.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("NaFePO4 discovery: rate capability"),
        "{page}"
    );
    let r = from_template("material NaFePO4").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("name = value"));

    // The page's script is served from the binary, no CDN.
    let r = http
        .get(format!("{}/static/kiln.js", srv.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(r.text().await.unwrap().contains("text/event-stream"));
}

/// The notebook tab: tracks charted together by name with their statistics, parameters, log
/// lines filtered by level, attachments downloaded safely and only by readers.
#[tokio::test]
async fn the_notebook_tab_charts_tracks_filters_the_log_and_downloads_attachments() {
    let srv = start(1 << 20).await;
    let http = client();
    let (s, v) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "Cycling"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let nb = |args: Value| {
        let (srv, id) = (&srv, id.clone());
        async move {
            let (s, v) = srv
                .request(
                    reqwest::Method::POST,
                    &format!("/v1/sessions/{id}/tools/notebook"),
                    Some(&srv.alice),
                    Some(json!({"arguments": args})),
                )
                .await;
            assert!(s.is_success(), "{v}");
        }
    };
    for v in [2.0, 1.5, 1.25] {
        nb(json!({"action": "log_metric", "name": "loss", "value": v})).await;
    }
    for v in [0.5, 0.75] {
        nb(json!({"action": "log_metric", "name": "accuracy", "value": v})).await;
    }
    nb(json!({"action": "set_params", "params": {"anneal_temperature": 700, "atmosphere": "argon"}})).await;
    for (level, line) in [
        ("debug", "probe line"),
        ("info", "cell assembled"),
        ("warn", "furnace drift"),
        ("error", "cell shorted"),
    ] {
        nb(json!({"action": "log", "level": level, "message": line})).await;
    }
    nb(json!({"action": "attach", "name": "cycler.html", "content": "<script>alert(1)</script>", "media_type": "text/html"})).await;
    nb(json!({"action": "attach", "name": "notes.txt", "content": "C/10 then 1C"})).await;

    let (cookie, _, _) = signed_in(&srv, &http, &srv.alice).await;
    let get = |path: String, cookie: String| page_as(&http, format!("{}{path}", srv.base), cookie);
    let (status, page) = get(format!("/web/sessions/{id}/notebook"), cookie.clone()).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "anneal_temperature",
        "argon",
        "cell shorted",
        "probe line",
        "notes.txt",
        "cycler.html",
    ] {
        assert!(page.contains(shown), "{shown} missing");
    }
    // By default the first track (by name) is drawn; its statistics are in the table.
    assert!(page.contains(">accuracy</text>") && !page.contains(">loss</text>"));
    assert!(
        page.contains("<td class=\"num\">1.25</td>"),
        "loss: last and min"
    );
    // Two tracks on one chart, picked by name (unknown names are ignored).
    let (_, page) = get(
        format!("/web/sessions/{id}/notebook?track=loss&track=accuracy&track=nope"),
        cookie.clone(),
    )
    .await;
    assert!(page.contains(">loss</text>") && page.contains(">accuracy</text>"));
    // The log from warn up.
    let (_, page) = get(
        format!("/web/sessions/{id}/notebook?level=warn"),
        cookie.clone(),
    )
    .await;
    let log = page
        .split("id=\"log\"")
        .nth(1)
        .unwrap()
        .split("</ol>")
        .next()
        .unwrap();
    assert!(
        log.contains("furnace drift") && log.contains("cell shorted"),
        "{log}"
    );
    assert!(
        !log.contains("probe line") && !log.contains("cell assembled"),
        "{log}"
    );
    // Downloads: always as a file; a type a browser would run comes as plain bytes.
    let dl = |name: &str, cookie: String| {
        let url = format!(
            "{}/web/sessions/{id}/notebook/attachment?branch=main&name={name}",
            srv.base
        );
        let http = &http;
        async move { http.get(url).header("cookie", cookie).send().await.unwrap() }
    };
    let r = dl("cycler.html", cookie.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.text().await.unwrap(), "<script>alert(1)</script>");
    let r = dl("notes.txt", cookie.clone()).await;
    assert_eq!(r.headers()["content-type"], "text/plain");
    assert_eq!(r.text().await.unwrap(), "C/10 then 1C");
    let r = dl("missing.txt", cookie.clone()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Someone who may not read the session gets nothing.
    let (bob_cookie, _, _) = signed_in(&srv, &http, &srv.bob).await;
    let r = dl("notes.txt", bob_cookie).await;
    assert!(r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains("C/10"));
}

/// The workspace's regions alone (what the script swaps in), the sidebar's status filter, and
/// typed errors for a part or a status that does not exist.
#[tokio::test]
async fn the_workspace_serves_each_region_alone_and_filters_the_sidebar() {
    let srv = start(1 << 20).await;
    let http = client();
    let mut ids = Vec::new();
    for name in ["Active one", "Paused one"] {
        let (_, v) = srv
            .request(
                reqwest::Method::POST,
                "/v1/sessions",
                Some(&srv.alice),
                Some(json!({"name": name})),
            )
            .await;
        let id = v["id"].as_str().unwrap().to_owned();
        srv.request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{id}/branches/main/messages"),
            Some(&srv.alice),
            Some(json!({"role": "user", "content": format!("hello from {name}")})),
        )
        .await;
        ids.push(id);
    }
    let (st, _) = srv
        .request(
            reqwest::Method::POST,
            &format!("/v1/sessions/{}/status", ids[1]),
            Some(&srv.alice),
            Some(json!({"status": "paused"})),
        )
        .await;
    assert!(st.is_success());
    let (cookie, _, _) = signed_in(&srv, &http, &srv.alice).await;
    let get = |path: String| page_as(&http, format!("{}{path}", srv.base), cookie.clone());
    let id = &ids[0];
    // The conversation alone: messages, no sidebar, no panel, no page shell.
    let (st, conv) = get(format!("/web/sessions/{id}?part=conversation")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(conv.contains("hello from Active one"));
    assert!(
        !conv.contains("side-sessions")
            && !conv.contains("class=\"tabs\"")
            && !conv.contains("<html")
    );
    // The panel alone: the tab bar and the tab, not the conversation.
    let (_, panel) = get(format!("/web/sessions/{id}/audit?part=panel")).await;
    assert!(panel.contains("class=\"tabs\"") && panel.contains("audit-state"));
    assert!(!panel.contains("hello from Active one"));
    // The sidebar alone, by last activity, filtered by status.
    let (_, side) = get(format!("/web/sessions/{id}?part=sidebar")).await;
    let (a, p) = (
        side.find("Active one").unwrap(),
        side.find("Paused one").unwrap(),
    );
    assert!(p < a, "the paused one moved last, so it comes first");
    let (_, side) = get(format!(
        "/web/sessions/{id}?part=sidebar&side_status=paused"
    ))
    .await;
    assert!(side.contains("Paused one") && !side.contains("Active one"));
    // Bad input: typed error pages.
    let (st, _) = get(format!("/web/sessions/{id}?part=everything")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, page) = get(format!("/web/sessions/{id}?side_status=sleeping")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(page.contains("unknown status"));
}

/// Older turns the agent summarised show as one folded line that opens in place, above the
/// turns after it.
#[tokio::test]
async fn a_summary_shows_as_one_folded_line() {
    let srv = start(1 << 20).await;
    let http = client();
    let (_, v) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "Long chat", "context": {"max_history": 4}})),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    for f in [
        "LiFePO4", "LiCoO2", "LiMn2O4", "NaFePO4", "LiNiO2", "Li2MnO3", "LiFeSO4F",
    ] {
        let (st, v) = srv
            .request(
                reqwest::Method::POST,
                &format!("/v1/sessions/{id}/query"),
                Some(&srv.alice),
                Some(json!({"message": format!("Analyse {f}")})),
            )
            .await;
        assert!(st.is_success(), "{v}");
    }
    let (_, msgs) = srv
        .request(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/branches/main/messages?limit=200"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert!(
        msgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["kind"] == "summary"),
        "the agent summarised older turns: {msgs}"
    );
    let (cookie, _, _) = signed_in(&srv, &http, &srv.alice).await;
    let (_, page) = page_as(&http, format!("{}/web/sessions/{id}", srv.base), cookie).await;
    let fold = page
        .split("<details class=\"summary-fold\"")
        .nth(1)
        .expect("a folded summary");
    let line = fold.split("</summary>").next().unwrap();
    assert!(line.contains("earlier messages summarised"), "{line}");
    assert!(
        !fold.split("</details>").next().unwrap().contains(" open"),
        "folded"
    );
}

#[tokio::test]
async fn the_memory_page_lists_adds_edits_and_deletes_the_users_own_entries() {
    let srv = start(1 << 20).await;
    let http = client();
    let (cookie, csrf, home) = signed_in(&srv, &http, &srv.alice).await;
    assert!(
        home.contains("href=\"/web/memory\""),
        "the sessions page links it"
    );
    let url = format!("{}/web/memory", srv.base);
    let (s, page) = page_as(&http, url.clone(), cookie.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Nothing yet."), "{page}");
    // Signed out: to the sign-in page, not the entries.
    let r = http.get(&url).send().await.unwrap();
    assert!(r.status().is_redirection());

    let post = |path: String, form: Vec<(&'static str, String)>| {
        let (http, cookie) = (&http, &cookie);
        async move {
            let r = http
                .post(path)
                .header("cookie", cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    let (s, page) = post(
        url.clone(),
        vec![
            ("csrf", csrf.clone()),
            ("content", "I work at 1 atm <b>bold</b>".into()),
            ("kind", "preference".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("I work at 1 atm &lt;b&gt;bold&lt;&#x2f;b&gt;"),
        "escaped: {page}"
    );
    let (_, api) = srv
        .request(
            reqwest::Method::GET,
            "/v1/me/memory",
            Some(&srv.alice),
            None,
        )
        .await;
    let id = api["items"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(api["items"][0]["kind"], "preference");
    // Without the CSRF token nothing is saved.
    let (s, _) = post(
        url.clone(),
        vec![("csrf", "nope".into()), ("content", "x".into())],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Blank text: the page says why, with a 400, and keeps what is there.
    let (s, page) = post(
        url.clone(),
        vec![("csrf", csrf.clone()), ("content", "  ".into())],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("needs some text") && page.contains("1 atm"),
        "{page}"
    );
    // Edit, then delete.
    let entry = format!("{url}/{id}");
    let (s, page) = post(
        entry.clone(),
        vec![
            ("csrf", csrf.clone()),
            ("content", "I work at 2 atm".into()),
            ("kind", "note".into()),
            ("action", "save".into()),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("I work at 2 atm"), "{page}");
    // Bob cannot touch Alice's entry from his page.
    let (bob_cookie, bob_csrf, _) = signed_in(&srv, &http, &srv.bob).await;
    let r = http
        .post(&entry)
        .header("cookie", bob_cookie)
        .form(&[("csrf", bob_csrf.as_str()), ("action", "delete")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let (s, page) = post(
        entry,
        vec![("csrf", csrf.clone()), ("action", "delete".into())],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("Deleted.") && page.contains("Nothing yet."),
        "{page}"
    );
}

#[tokio::test]
async fn a_batch_starts_from_the_state_tab_and_its_page_fills_in() {
    let srv = start(1 << 20).await;
    let http = client();
    let (s, v) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "Screen"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (cookie, csrf, _) = signed_in(&srv, &http, &srv.alice).await;
    let (_, tab) = page_as(
        &http,
        format!("{}/web/sessions/{id}/state", srv.base),
        cookie.clone(),
    )
    .await;
    assert!(
        tab.contains("id=\"batch-form\""),
        "the state tab offers a batch"
    );
    let r = http
        .post(format!("{}/web/sessions/{id}/batches", srv.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", "Analyse {formula}"),
            ("items", "LiFePO4\nLiCoO2\n\nNaCl\n"),
            ("mode", "branches"),
            ("concurrency", "2"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("/web/sessions/{id}/batches/")),
        "{to}"
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let (s, page) = page_as(&http, format!("{}{to}", srv.base), cookie.clone()).await;
        assert_eq!(s, StatusCode::OK);
        if page.contains("Done: 3 of 3") {
            break page;
        }
        // While it runs, the page reloads itself.
        assert!(page.contains("http-equiv=\"refresh\""), "{page}");
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        !page.contains("http-equiv=\"refresh\""),
        "a finished batch stays put"
    );
    assert!(
        page.contains("<progress id=\"batch-progress\" max=\"3\" value=\"3\""),
        "{page}"
    );
    assert_eq!(page.matches("data-status=\"done\"").count(), 3, "{page}");
    assert!(
        page.contains("157.755") && page.contains("molar_mass"),
        "{page}"
    );
    assert!(page.contains("results.csv"), "{page}");
    // The state tab lists it.
    let (_, tab) = page_as(
        &http,
        format!("{}/web/sessions/{id}/state", srv.base),
        cookie.clone(),
    )
    .await;
    assert!(tab.contains(&to), "{tab}");
    // Several fields need a header row: the page says so, nothing starts.
    let r = http
        .post(format!("{}/web/sessions/{id}/batches", srv.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("request", "Analyse {formula} at {t}"),
            ("items", "LiFePO4"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("header row"));
    // Without the CSRF token nothing starts.
    let r = http
        .post(format!("{}/web/sessions/{id}/batches", srv.base))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", "nope"),
            ("request", "Analyse {formula}"),
            ("items", "NaCl"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, list) = srv
        .request(
            reqwest::Method::GET,
            &format!("/v1/sessions/{id}/batches"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
}

/// The notebook tab shows the notebook resource's data: nested parameters by dotted key, log
/// metadata and the fatal level, a stored track charted with its stats, files to download
/// (through the API with the sign-in cookie, never run by the browser).
#[tokio::test]
async fn the_notebook_tab_shows_stored_tracks_files_and_log_metadata() {
    let srv = start(1 << 20).await;
    let http = client();
    let (_, v) = srv
        .request(
            reqwest::Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "Sweep"})),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let nb = format!("/v1/sessions/{id}/branches/main/notebook");
    let call = |m: reqwest::Method, path: String, body: Value| {
        let srv = &srv;
        async move {
            let (s, v) = srv.request(m, &path, Some(&srv.alice), Some(body)).await;
            assert!(s.is_success(), "{path}: {v}");
        }
    };
    call(
        reqwest::Method::PATCH,
        format!("{nb}/params"),
        json!({"anneal": {"temperature_c": 650}}),
    )
    .await;
    call(
        reqwest::Method::POST,
        format!("{nb}/logs"),
        json!({"message": "interlock tripped", "level": "fatal", "metadata": {"sample": 4}}),
    )
    .await;
    let points: Vec<Value> = (0..50)
        .map(|i| json!({"step": i, "value": 100.0 + f64::from(i)}))
        .collect();
    call(
        reqwest::Method::POST,
        format!("{nb}/tracks/capacity"),
        json!({"points": points}),
    )
    .await;
    let up = http
        .post(format!("{}{nb}/files?name=page.html", srv.base))
        .bearer_auth(&srv.alice)
        .header("content-type", "text/html")
        .body("<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), StatusCode::OK);
    let file = up.json::<Value>().await.unwrap()["result"]["file"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (cookie, _, _) = signed_in(&srv, &http, &srv.alice).await;
    let (status, page) = page_as(
        &http,
        format!("{}/web/sessions/{id}/notebook?level=error", srv.base),
        cookie.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "anneal.temperature_c",
        "interlock tripped",
        "sample=4",
        ">capacity</text>",
        "<td class=\"num\">149",
        "page.html",
        &format!("/notebook/files/{file}"),
    ] {
        assert!(page.contains(shown), "{shown} missing");
    }
    // The link downloads with the cookie; the browser is told never to run it.
    let r = http
        .get(format!("{}{nb}/files/{file}", srv.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-security-policy"], "sandbox");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
}
