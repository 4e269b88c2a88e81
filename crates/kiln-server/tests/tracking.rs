//! Experiment tracking over HTTP on a real server: sessions found by project and name, folders
//! as a tree, and write protection refusing every write with 409 `session_protected`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

async fn put(srv: &Server, token: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    srv.request(Method::PUT, path, Some(token), body).await
}

#[tokio::test]
async fn a_session_is_found_or_made_by_project_and_name_and_listed_in_its_folder() {
    let srv = start(1 << 20).await;
    let path = "/v1/projects/cathodes/sessions/run-1";
    let (s, made) = put(
        &srv,
        &srv.alice,
        path,
        Some(json!({"folder": "/experiments/2026/jan/", "description": "first", "tags": ["lfp"]})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    assert_eq!(made["created"], true);
    assert_eq!(made["session"]["folder"], "/experiments/2026/jan");
    assert_eq!(made["session"]["project"], "cathodes");
    let id = made["session"]["id"].as_str().unwrap().to_owned();

    // The same name again returns the same session, whatever the body says.
    let (s, again) = put(
        &srv,
        &srv.alice,
        path,
        Some(json!({"folder": "/elsewhere"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["session"]["id"], id.as_str());
    assert_eq!(again["created"], false);
    assert_eq!(again["duplicates"], json!([]));
    // No body at all is fine too.
    let (s, _) = put(&srv, &srv.alice, path, None).await;
    assert_eq!(s, StatusCode::OK);

    // Names are per owner: bob's run-1 is his own.
    let (s, bobs) = put(&srv, &srv.bob, path, None).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(bobs["session"]["id"], id.as_str());
    assert_eq!(
        bobs["session"].get("folder"),
        None,
        "the top folder is left out"
    );

    // A duplicate made the old way keeps working and is reported.
    let (s, dup) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "run-1", "project": "cathodes"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, again) = put(&srv, &srv.alice, path, None).await;
    assert_eq!(again["session"]["id"], id.as_str(), "the oldest is the one");
    assert_eq!(again["duplicates"], json!([dup["id"]]));

    put(
        &srv,
        &srv.alice,
        "/v1/projects/cathodes/sessions/run-2",
        Some(json!({"folder": "/experiments"})),
    )
    .await;
    put(&srv, &srv.alice, "/v1/projects/anodes/sessions/a", None).await;

    let (s, tree) = srv
        .request(
            Method::GET,
            "/v1/projects/cathodes/sessions",
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{tree}");
    let top = &tree["tree"];
    assert_eq!(top["path"], "/");
    assert_eq!(
        top["sessions"].as_array().unwrap().len(),
        1,
        "the duplicate"
    );
    let exp = &top["folders"][0];
    assert_eq!(exp["path"], "/experiments");
    assert_eq!(exp["sessions"][0]["name"], "run-2");
    assert_eq!(exp["folders"][0]["path"], "/experiments/2026");
    assert_eq!(
        exp["folders"][0]["folders"][0]["sessions"][0]["id"],
        id.as_str()
    );

    // A sub-folder, and bob sees only his own.
    let (_, sub) = srv
        .request(
            Method::GET,
            "/v1/projects/cathodes/sessions?folder=/experiments/2026",
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(sub["tree"]["path"], "/experiments/2026");
    assert_eq!(sub["tree"]["sessions"], json!([]));
    assert_eq!(sub["tree"]["folders"][0]["sessions"][0]["id"], id.as_str());
    let (_, projects) = srv
        .request(Method::GET, "/v1/projects", Some(&srv.alice), None)
        .await;
    assert_eq!(
        projects["items"],
        json!([
            {"name": "anodes", "sessions": 1, "last_activity_at": projects["items"][0]["last_activity_at"]},
            {"name": "cathodes", "sessions": 3, "last_activity_at": projects["items"][1]["last_activity_at"]},
        ])
    );
    let (_, bobs) = srv
        .request(Method::GET, "/v1/projects", Some(&srv.bob), None)
        .await;
    assert_eq!(bobs["items"].as_array().unwrap().len(), 1);

    // Bad folders and names are 400.
    for (path, body) in [
        (path, json!({"folder": "experiments"})),
        (path, json!({"folder": "/a/../b"})),
        (path, json!({"folder": "/x", "extra": 1})),
        ("/v1/projects/cathodes/sessions/%20", json!({})),
    ] {
        let (s, v) = put(&srv, &srv.alice, path, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
    }
    let (s, _) = srv
        .request(
            Method::GET,
            "/v1/projects/cathodes/sessions?folder=/../x",
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = srv.request(Method::GET, "/v1/projects", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// Adds `user` to the session with `perms`.
async fn invite(srv: &Server, id: &str, user: &str, perms: &[&str]) {
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&srv.alice),
            Some(json!({"user": user, "permissions": perms})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn a_protected_session_refuses_every_write_until_its_owner_unprotects_it() {
    let srv = start(1 << 20).await;
    let (_, s) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "locked"})),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/sessions/{id}");
    let writer = srv.users["writer"].clone();
    let manager = srv.users["manager"].clone();
    invite(&srv, &id, "writer", &["write"]).await;
    invite(&srv, &id, "manager", &["manage"]).await;
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/branches/main/messages"),
            Some(&srv.alice),
            Some(json!({"role": "user", "content": "before"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/checkpoints"),
            Some(&srv.alice),
            Some(json!({"name": "cp"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    srv.request(
        Method::POST,
        &format!("{base}/branches"),
        Some(&srv.alice),
        Some(json!({"name": "side"})),
    )
    .await;

    // Only the owner protects: a manager gets 403, a stranger 404.
    let protect = format!("{base}/protect");
    let (s, _) = srv
        .request(Method::POST, &protect, Some(&manager), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .request(Method::POST, &protect, Some(&srv.bob), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = srv
        .request(Method::POST, &protect, Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["protected"], true);
    assert!(v["protected_at"].is_string());

    let writes: Vec<(&str, Method, String, Option<Value>)> = vec![
        (
            "alice",
            Method::POST,
            format!("{base}/branches/main/messages"),
            Some(json!({"role": "user", "content": "after"})),
        ),
        (
            "writer",
            Method::POST,
            format!("{base}/branches/main/messages"),
            Some(json!({"role": "user", "content": "after"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/branches/main/events"),
            Some(json!({"kind": "material", "formula": "LiFePO4"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/tools/notebook"),
            Some(json!({"branch": "main", "arguments": {"action": "log", "message": "x"}})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/branches"),
            Some(json!({"name": "another"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/checkpoints"),
            Some(json!({"name": "cp2"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/checkpoints/cp/restore"),
            None,
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/branches/side/merge"),
            Some(json!({"into": "main"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/branches/side/discard"),
            None,
        ),
        (
            "alice",
            Method::PATCH,
            base.clone(),
            Some(json!({"description": "changed"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/status"),
            Some(json!({"status": "archived"})),
        ),
        (
            "alice",
            Method::POST,
            format!("{base}/shares"),
            Some(json!({"expires_in_days": 7})),
        ),
        (
            "manager",
            Method::POST,
            format!("{base}/collaborators"),
            Some(json!({"user": "reader", "permissions": ["read"]})),
        ),
        ("alice", Method::DELETE, base.clone(), None),
    ];
    for (who, method, path, body) in writes {
        let token = match who {
            "alice" => srv.alice.clone(),
            "writer" => writer.clone(),
            _ => manager.clone(),
        };
        let (s, v) = srv.request(method.clone(), &path, Some(&token), body).await;
        assert_eq!(s, StatusCode::CONFLICT, "{who} {method} {path}: {v}");
        assert_eq!(
            v["error"]["code"], "session_protected",
            "{method} {path}: {v}"
        );
    }

    // Reads still answer, and nothing was written.
    let (s, msgs) = srv
        .request(
            Method::GET,
            &format!("{base}/branches/main/messages"),
            Some(&writer),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let text = msgs.to_string();
    assert!(text.contains("before") && !text.contains("after"), "{text}");
    let (s, shares) = srv
        .request(
            Method::GET,
            &format!("{base}/shares"),
            Some(&srv.alice),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "listing share links is a read: {shares}");

    // Protection is not archive: the session's status is untouched.
    let (_, session) = srv
        .request(Method::GET, &base, Some(&srv.alice), None)
        .await;
    assert_ne!(session["status"], "archived");

    // Only the owner unprotects; then writes work again.
    let unprotect = format!("{base}/unprotect");
    let (s, _) = srv
        .request(Method::POST, &unprotect, Some(&manager), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v) = srv
        .request(Method::POST, &unprotect, Some(&srv.alice), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v.get("protected"), None);
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("{base}/branches/main/messages"),
            Some(&writer),
            Some(json!({"role": "user", "content": "after"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");

    // Both moves are in the audit log.
    let (_, audit) = srv
        .request(
            Method::GET,
            &format!("{base}/audit?entry_type=session"),
            Some(&srv.alice),
            None,
        )
        .await;
    let actions = audit.to_string();
    assert!(
        actions.contains("session.protect") && actions.contains("session.unprotect"),
        "{actions}"
    );
}

/// The store refuses a protected session's writes even on the one-statement append path the
/// access check rides on (the triggers of migration 0011).
#[tokio::test]
async fn the_fast_append_path_is_refused_too() {
    let srv = start(1 << 20).await;
    let (_, s) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&srv.alice),
            Some(json!({"name": "fast"})),
        )
        .await;
    let id = s["id"].as_str().unwrap().to_owned();
    let msg = format!("/v1/sessions/{id}/branches/main/messages");
    // Two appends: the second takes the fast path (a head this process wrote last).
    for content in ["one", "two"] {
        let (s, _) = srv
            .request(
                Method::POST,
                &msg,
                Some(&srv.alice),
                Some(json!({"role": "user", "content": content})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
    }
    srv.mgr.db().set_protected(&id, true, "test").await.unwrap();
    let caller = srv.mgr.authenticate(&srv.alice).await.unwrap();
    let err = srv
        .mgr
        .append_message(
            &caller,
            &id,
            "main",
            serde_json::from_value(json!({"role": "user", "content": "three"})).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "session_protected");
}
