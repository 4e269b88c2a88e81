//! Session templates over real HTTP: who sees, instantiates, changes and deletes a template
//! (owner, shared user, other user, administrator) and who may save one from a session; a
//! template nobody else sees leaks nothing (not its name, not its texts, not that it exists);
//! texts saved from a session are never evaluated; the web page offers only visible templates.

mod support;

use reqwest::Method;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use support::{Server, csrf_of, start};

/// `method path` as the user holding `token`.
async fn call(
    srv: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    srv.request(method, path, Some(token), body).await
}

/// The names of the templates `token`'s user lists.
async fn listed(srv: &Server, token: &str) -> Vec<String> {
    let (s, v) = call(srv, token, Method::GET, "/v1/templates", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ref"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates a session from `template` with no parameters; returns the status and body.
async fn instantiate(srv: &Server, token: &str, template: &str) -> (StatusCode, Value) {
    call(
        srv,
        token,
        Method::POST,
        "/v1/sessions",
        Some(json!({"template": template, "parameters": {}})),
    )
    .await
}

fn assert_not_found(got: (StatusCode, Value), name: &str) {
    assert_eq!(got.0, StatusCode::NOT_FOUND, "{name}: {}", got.1);
    assert_eq!(got.1["error"]["code"], "not_found", "{}", got.1);
    // Word for word what a template that does not exist answers.
    assert_eq!(
        got.1["error"]["message"],
        format!("template `{name}` not found"),
        "{}",
        got.1
    );
}

fn assert_status(got: &(StatusCode, Value), want: StatusCode, what: &str) {
    assert_eq!(got.0, want, "{what}: {}", got.1);
}

/// A session owned by bob with a private research state, readers, writers and managers.
async fn bobs_session(srv: &Server) -> String {
    let bob = &srv.bob;
    let (s, v) = call(
        srv,
        bob,
        Method::POST,
        "/v1/sessions",
        Some(
            json!({"name": "Secret cathode", "description": "unpublished",
                    "tags": ["confidential"]}),
        ),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    for event in [
        json!({"kind": "hypothesis", "statement": "Mn doping lifts capacity 12%", "status": "open"}),
        json!({"kind": "task", "description": "file the patent", "status": "pending"}),
        json!({"kind": "context_pin", "key": "supplier", "value": "Acme lot 7"}),
        json!({"kind": "focus", "material": "LiMn0.2Fe0.8PO4"}),
    ] {
        let (s, v) = call(
            srv,
            bob,
            Method::POST,
            &format!("/v1/sessions/{id}/branches/main/events"),
            Some(event),
        )
        .await;
        assert!(s.is_success(), "{v}");
    }
    for (user, perm) in [
        ("reader", "read"),
        ("writer", "write"),
        ("manager", "manage"),
    ] {
        let (s, v) = call(
            srv,
            bob,
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(json!({"user": user, "permissions": [perm]})),
        )
        .await;
        assert!(s.is_success(), "{v}");
    }
    id
}

/// The whole matrix: owner (bob), shared user (spare), other user (boss), administrator
/// (alice) × list / get / instantiate / update / delete, for a private, a shared, an
/// instance-wide and a built-in template; and saving from a session with read, write and
/// manage on it.
#[tokio::test]
async fn who_sees_uses_changes_and_deletes_which_template() {
    let srv = start(1 << 20).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let [reader, writer, manager, spare, boss] =
        ["reader", "writer", "manager", "spare", "boss"].map(|u| srv.users[u].clone());
    let id = bobs_session(&srv).await;
    let save = |name: &str| json!({"name": name, "from_session": id});

    // Saving needs manage on the session: read-only and write collaborators are refused (403,
    // they know the session), strangers and the administrator without access get 404.
    for (who, token, want) in [
        ("reader", &reader, StatusCode::FORBIDDEN),
        ("writer", &writer, StatusCode::FORBIDDEN),
        ("spare", &spare, StatusCode::NOT_FOUND),
        ("alice", &alice, StatusCode::NOT_FOUND),
    ] {
        let got = call(
            &srv,
            token,
            Method::POST,
            "/v1/templates",
            Some(save("leak")),
        )
        .await;
        assert_status(&got, want, who);
    }
    let got = call(
        &srv,
        &manager,
        Method::POST,
        "/v1/templates",
        Some(save("mgr-copy")),
    )
    .await;
    assert_status(&got, StatusCode::CREATED, "a manager saves");
    assert_eq!(got.1["owner"], "manager");
    assert_eq!(got.1["visibility"], "private");
    let got = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/templates",
        Some(save("study")),
    )
    .await;
    assert_status(&got, StatusCode::CREATED, "the owner saves");
    assert_eq!(got.1["ref"], "study@bob");
    assert_eq!(got.1["hypotheses"], json!(["Mn doping lifts capacity 12%"]));
    assert_eq!(got.1["shared_with"], json!([]));
    let got = call(&srv, &bob, Method::GET, "/v1/templates/study", None).await;
    assert_status(&got, StatusCode::OK, "the owner gets it");
    assert_eq!(got.1["tasks"], json!(["file the patent"]));
    // Names are the owner's own: saving again is a conflict for bob only.
    let again = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/templates",
        Some(save("study")),
    )
    .await;
    assert_status(&again, StatusCode::CONFLICT, "bob saves `study` twice");
    assert_eq!(again.1["error"]["code"], "already_exists");
    // Built-in names are public and taken.
    let builtin = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/templates",
        Some(save("quick-chat")),
    )
    .await;
    assert_status(&builtin, StatusCode::CONFLICT, "a built-in name");

    // Private: only bob sees, uses, changes and deletes it.
    assert!(listed(&srv, &bob).await.contains(&"study@bob".to_string()));
    // (The manager saved a copy of their own: theirs, not bob's, so left out here.)
    for token in [&spare, &boss, &alice, &reader] {
        let names = listed(&srv, token).await;
        assert!(!names.iter().any(|n| n.starts_with("study")), "{names:?}");
        let all = call(&srv, token, Method::GET, "/v1/templates", None)
            .await
            .1;
        for secret in [
            "Mn doping",
            "patent",
            "Acme",
            "LiMn0.2",
            "Secret cathode",
            "confidential",
        ] {
            assert!(!all.to_string().contains(secret), "{secret} leaked: {all}");
        }
        for name in ["study", "study@bob"] {
            assert_not_found(
                call(
                    &srv,
                    token,
                    Method::GET,
                    &format!("/v1/templates/{name}"),
                    None,
                )
                .await,
                name,
            );
            assert_not_found(instantiate(&srv, token, name).await, name);
            assert_not_found(
                call(
                    &srv,
                    token,
                    Method::PATCH,
                    &format!("/v1/templates/{name}"),
                    Some(json!({"description": "mine now"})),
                )
                .await,
                name,
            );
            assert_not_found(
                call(
                    &srv,
                    token,
                    Method::DELETE,
                    &format!("/v1/templates/{name}"),
                    None,
                )
                .await,
                name,
            );
        }
    }
    // What a name that exists nowhere answers, for comparison.
    assert_not_found(
        call(&srv, &boss, Method::GET, "/v1/templates/nothing-here", None).await,
        "nothing-here",
    );
    // Another user's template of the same name is no clash and reveals nothing.
    let got = call(
        &srv,
        &boss,
        Method::POST,
        "/v1/templates",
        Some(json!({"name": "study", "from_session": boss_session(&srv, &boss).await})),
    )
    .await;
    assert_status(&got, StatusCode::CREATED, "boss saves his own `study`");
    assert_eq!(got.1["ref"], "study@boss");
    let got = instantiate(&srv, &bob, "study").await;
    assert_status(&got, StatusCode::CREATED, "bob instantiates");
    assert_eq!(got.1["name"], "Secret cathode");
    assert_eq!(got.1["template"], "study@bob");

    // Shared with spare: spare sees and uses it but cannot change it, and does not see whom
    // else it is shared with; boss and alice still see nothing.
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "shared", "shared_with": ["spare"]})),
    )
    .await;
    assert_status(&got, StatusCode::OK, "bob shares");
    assert_eq!(got.1["shared_with"], json!(["spare"]));
    assert!(
        listed(&srv, &spare)
            .await
            .contains(&"study@bob".to_string())
    );
    let got = call(&srv, &spare, Method::GET, "/v1/templates/study", None).await;
    assert_status(&got, StatusCode::OK, "spare gets it");
    assert_eq!(got.1["owner"], "bob");
    assert!(got.1.get("shared_with").is_none(), "{}", got.1);
    let made = instantiate(&srv, &spare, "study@bob").await;
    assert_status(&made, StatusCode::CREATED, "spare instantiates");
    // The new session is spare's own: bob, the template's owner, has no access to it.
    let made_path = format!("/v1/sessions/{}", made.1["id"].as_str().unwrap());
    assert_status(
        &call(&srv, &spare, Method::GET, &made_path, None).await,
        StatusCode::OK,
        "spare reads the session",
    );
    assert_status(
        &call(&srv, &bob, Method::GET, &made_path, None).await,
        StatusCode::NOT_FOUND,
        "bob does not",
    );
    for (method, body) in [
        (Method::PATCH, Some(json!({"description": "spare's now"}))),
        (Method::DELETE, None),
    ] {
        let got = call(&srv, &spare, method.clone(), "/v1/templates/study", body).await;
        assert_status(&got, StatusCode::FORBIDDEN, &format!("spare {method}"));
    }
    for token in [&boss, &alice] {
        // boss's own `study` answers for him; `study@bob` is still nobody's business.
        assert!(!listed(&srv, token).await.contains(&"study@bob".to_string()));
        assert_not_found(
            call(&srv, token, Method::GET, "/v1/templates/study@bob", None).await,
            "study@bob",
        );
        assert_not_found(instantiate(&srv, token, "study@bob").await, "study@bob");
        for (method, body) in [
            (Method::PATCH, Some(json!({"visibility": "private"}))),
            (Method::DELETE, None),
        ] {
            assert_not_found(
                call(&srv, token, method, "/v1/templates/study@bob", body).await,
                "study@bob",
            );
        }
    }
    assert_eq!(
        call(&srv, &boss, Method::GET, "/v1/templates/study", None)
            .await
            .1["ref"],
        "study@boss",
        "a plain name is the caller's own first"
    );

    // Two templates of one name shared with spare: the plain name is ambiguous (naming only
    // what spare sees), `name@owner` settles it, and spare's own would win.
    let got = call(
        &srv,
        &boss,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "shared", "shared_with": ["spare"]})),
    )
    .await;
    assert_status(&got, StatusCode::OK, "boss shares");
    let got = instantiate(&srv, &spare, "study").await;
    assert_status(&got, StatusCode::CONFLICT, "ambiguous");
    assert_eq!(got.1["error"]["code"], "ambiguous_template");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("study@boss")
    );
    assert_status(
        &instantiate(&srv, &spare, "study@boss").await,
        StatusCode::CREATED,
        "by ref",
    );

    // Instance-wide needs an administrator; then everyone sees and uses it, only its owner
    // changes or deletes it.
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "instance"})),
    )
    .await;
    assert_status(&got, StatusCode::FORBIDDEN, "bob publishes");
    let alice_session = boss_session(&srv, &alice).await;
    let got = call(
        &srv,
        &alice,
        Method::POST,
        "/v1/templates",
        Some(json!({"name": "house", "from_session": alice_session, "visibility": "instance"})),
    )
    .await;
    assert_status(&got, StatusCode::CREATED, "alice publishes");
    for token in [&bob, &spare, &boss, &reader] {
        assert!(
            listed(&srv, token)
                .await
                .contains(&"house@alice".to_string())
        );
        assert_status(
            &call(&srv, token, Method::GET, "/v1/templates/house", None).await,
            StatusCode::OK,
            "get instance-wide",
        );
        assert_status(
            &instantiate(&srv, token, "house").await,
            StatusCode::CREATED,
            "instantiate instance-wide",
        );
        assert_status(
            &call(
                &srv,
                token,
                Method::PATCH,
                "/v1/templates/house",
                Some(json!({"visibility": "private"})),
            )
            .await,
            StatusCode::FORBIDDEN,
            "update instance-wide",
        );
        assert_status(
            &call(&srv, token, Method::DELETE, "/v1/templates/house", None).await,
            StatusCode::FORBIDDEN,
            "delete instance-wide",
        );
    }
    // The administrator changes and deletes her own instance-wide template like any owner.
    let got = call(
        &srv,
        &alice,
        Method::PATCH,
        "/v1/templates/house",
        Some(json!({"description": "the house template"})),
    )
    .await;
    assert_status(&got, StatusCode::OK, "alice changes hers");
    assert_eq!(got.1["description"], "the house template");
    assert_eq!(
        call(&srv, &boss, Method::GET, "/v1/templates/house", None)
            .await
            .1["description"],
        "the house template"
    );
    assert_status(
        &call(&srv, &alice, Method::DELETE, "/v1/templates/house", None).await,
        StatusCode::NO_CONTENT,
        "alice deletes hers",
    );
    assert_not_found(instantiate(&srv, &boss, "house").await, "house");
    // The manager's copy is the manager's: not even the session's owner sees it.
    assert!(
        !listed(&srv, &bob)
            .await
            .iter()
            .any(|n| n.starts_with("mgr-copy"))
    );
    assert_not_found(
        call(&srv, &bob, Method::GET, "/v1/templates/mgr-copy", None).await,
        "mgr-copy",
    );

    // Built-in templates: everyone sees and uses them, nobody changes them.
    for token in [&alice, &bob, &boss] {
        assert!(
            listed(&srv, token)
                .await
                .contains(&"quick-chat".to_string())
        );
        assert_status(
            &instantiate(&srv, token, "quick-chat").await,
            StatusCode::CREATED,
            "built-in",
        );
        for (method, body) in [
            (Method::PATCH, Some(json!({"description": "x"}))),
            (Method::DELETE, None),
        ] {
            let got = call(&srv, token, method, "/v1/templates/quick-chat", body).await;
            assert_status(&got, StatusCode::FORBIDDEN, "change a built-in");
        }
    }

    // Back to private: spare loses it, and going back to shared shares with nobody.
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "private"})),
    )
    .await;
    assert_eq!(got.1["shared_with"], json!([]), "{}", got.1);
    assert_not_found(
        call(&srv, &spare, Method::GET, "/v1/templates/study@bob", None).await,
        "study@bob",
    );
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "shared"})),
    )
    .await;
    assert_eq!(got.1["shared_with"], json!([]), "{}", got.1);
    assert_not_found(instantiate(&srv, &spare, "study@bob").await, "study@bob");
    // A list needs visibility `shared`; an unknown user is named.
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"visibility": "private", "shared_with": ["spare"]})),
    )
    .await;
    assert_status(&got, StatusCode::BAD_REQUEST, "a list without `shared`");
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        "/v1/templates/study",
        Some(json!({"shared_with": ["nobody-at-all"]})),
    )
    .await;
    assert_status(&got, StatusCode::NOT_FOUND, "an unknown user");

    // The owner deletes: gone for everyone, the sessions made from it stay.
    let got = call(&srv, &bob, Method::DELETE, "/v1/templates/study", None).await;
    assert_status(&got, StatusCode::NO_CONTENT, "bob deletes");
    assert_not_found(
        call(&srv, &bob, Method::GET, "/v1/templates/study@bob", None).await,
        "study@bob",
    );
    assert_status(
        &call(&srv, &spare, Method::GET, &made_path, None).await,
        StatusCode::OK,
        "a session made from it",
    );
}

/// A session `token`'s user owns, with one pin; returns its id.
async fn boss_session(srv: &Server, token: &str) -> String {
    let (s, v) = call(
        srv,
        token,
        Method::POST,
        "/v1/sessions",
        Some(json!({"name": "A study"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

/// The owner adds parameters and texts; placeholders fill as plain text, a text naming no
/// parameter is refused, and template code saved from a session stays text (a nested loop in
/// a task ran for minutes per request).
#[tokio::test]
async fn parameters_fill_as_text_and_nothing_is_evaluated() {
    let srv = start(1 << 20).await;
    let bob = srv.bob.clone();
    let id = boss_session(&srv, &bob).await;
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
    for event in [
        json!({"kind": "hypothesis", "statement": "{{ 7*7 }}", "status": "open"}),
        json!({"kind": "task", "description": slow, "status": "pending"}),
    ] {
        let (s, v) = call(
            &srv,
            &bob,
            Method::POST,
            &format!("/v1/sessions/{id}/branches/main/events"),
            Some(event),
        )
        .await;
        assert!(s.is_success(), "{v}");
    }
    let (s, v) = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/templates",
        Some(json!({"name": "team/lfp", "from_session": id})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Saved texts are escaped so they fill to themselves.
    assert_eq!(v["hypotheses"], json!(["{{{{ 7*7 }}"]));
    // The nested loop is text: it is stored, not run (the session crate's tests bound the wait).
    let made = instantiate(&srv, &bob, "team/lfp").await;
    assert_eq!(made.0, StatusCode::CREATED, "{}", made.1);
    let sid = made.1["id"].as_str().unwrap();
    let (_, state) = call(
        &srv,
        &bob,
        Method::GET,
        &format!("/v1/sessions/{sid}/branches/main/state"),
        None,
    )
    .await;
    assert_eq!(state["hypotheses"][0]["statement"], "{{ 7*7 }}");
    assert_eq!(state["tasks"][0]["description"], slow);

    // A name with `/` is one path segment when encoded.
    let path = "/v1/templates/team%2Flfp";
    let bad = call(
        &srv,
        &bob,
        Method::PATCH,
        path,
        Some(json!({"session_name": "{material} study"})),
    )
    .await;
    assert_status(&bad, StatusCode::BAD_REQUEST, "an undeclared placeholder");
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{material}")
    );
    let stray = call(
        &srv,
        &bob,
        Method::PATCH,
        path,
        Some(json!({"tasks": ["{{ material }}", "{ material }"]})),
    )
    .await;
    assert_status(&stray, StatusCode::BAD_REQUEST, "a stray `{`");
    assert!(
        stray.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tasks[1]")
    );
    let got = call(
        &srv,
        &bob,
        Method::PATCH,
        path,
        Some(json!({
            "description": "an olivine study",
            "parameters": [{"name": "material", "required": true},
                           {"name": "property", "default": "capacity"}],
            "session_name": "{material} study of {property}",
            "pins": {"target": "{material}", "literal": "{{material}"},
            "focus": "{material}",
            "hypotheses": ["{material} beats {{ 7*7 }}"],
            "tasks": [],
        })),
    )
    .await;
    assert_status(&got, StatusCode::OK, "bob adds parameters");
    assert_eq!(got.1["description"], "an olivine study");
    let got = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/sessions",
        Some(json!({"template": "team/lfp", "parameters": {}})),
    )
    .await;
    assert_status(
        &got,
        StatusCode::BAD_REQUEST,
        "a required parameter missing",
    );
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("material")
    );
    let got = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/sessions",
        Some(json!({"template": "team/lfp", "parameters": {"material": "{{ 7*7 }}{property}"}})),
    )
    .await;
    assert_status(&got, StatusCode::CREATED, "filled");
    assert_eq!(got.1["name"], "{{ 7*7 }}{property} study of capacity");
    let sid = got.1["id"].as_str().unwrap();
    let (_, state) = call(
        &srv,
        &bob,
        Method::GET,
        &format!("/v1/sessions/{sid}/branches/main/state"),
        None,
    )
    .await;
    assert_eq!(state["context"]["target"], "{{ 7*7 }}{property}");
    assert_eq!(state["context"]["literal"], "{material}");
    assert_eq!(state["focus"]["material"], "{{ 7*7 }}{property}");
    assert_eq!(
        state["hypotheses"][0]["statement"],
        "{{ 7*7 }}{property} beats { 7*7 }}"
    );
    assert_eq!(state["tasks"], json!([]));
}

/// The sessions page offers only the templates the signed-in user sees, and its form cannot
/// reach another user's private template.
#[tokio::test]
async fn the_web_form_offers_and_reaches_only_visible_templates() {
    let srv = start(1 << 20).await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let bob = srv.bob.clone();
    let boss = srv.users["boss"].clone();
    let id = bobs_session(&srv).await;
    let (s, v) = call(
        &srv,
        &bob,
        Method::POST,
        "/v1/templates",
        Some(json!({"name": "bobs-secret-plan", "from_session": id})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let sign_in = |token: String| {
        let (http, base) = (&http, srv.base.clone());
        async move {
            let r = http
                .post(format!("{base}/login"))
                .form(&[("token", token.as_str())])
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
                .get(format!("{base}/"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            (cookie, csrf_of(&page), page)
        }
    };
    let (bob_cookie, bob_csrf, page) = sign_in(bob.clone()).await;
    assert!(page.contains("value=\"bobs-secret-plan@bob\""), "{page}");
    assert!(page.contains("value=\"materials-discovery\""));
    let (cookie, csrf, page) = sign_in(boss).await;
    assert!(!page.contains("bobs-secret-plan"), "{page}");
    assert!(page.contains("value=\"materials-discovery\""));
    let post = |cookie: String, csrf: String, template: &str| {
        let (http, base, template) = (&http, srv.base.clone(), template.to_owned());
        async move {
            http.post(format!("{base}/web/sessions/from-template"))
                .header("cookie", cookie)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("template", template.as_str()),
                    ("params", ""),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(cookie.clone(), csrf.clone(), "bobs-secret-plan@bob").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = post(bob_cookie, bob_csrf, "bobs-secret-plan@bob").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = post(cookie, csrf, "quick-chat").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}
