//! The permission matrix: every role (owner, manager, writer, materials, commenter, reader,
//! stranger) against the session routes, each allow and deny asserted, on a real server.
//! A role without read access sees 404 (as for a missing session); a role with read access
//! but without what a route needs gets 403 `forbidden`.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::{Server, start};

/// The roles and the permissions each collaborator is given (the owner and the stranger get
/// none: one owns the session, the other is not invited).
const ROLES: [(&str, &[&str]); 7] = [
    ("owner", &[]),
    ("manager", &["manage"]),
    ("writer", &["write"]),
    ("materials", &["add_materials"]),
    ("commenter", &["comment"]),
    ("reader", &["read"]),
    ("stranger", &[]),
];

/// What each role holds once implications are expanded.
fn holds(role: &str, perm: &str) -> bool {
    match role {
        "owner" => true,
        "stranger" => false,
        "manager" => matches!(perm, "read" | "manage"),
        "writer" => matches!(perm, "read" | "comment" | "write" | "add_materials"),
        "materials" => matches!(perm, "read" | "add_materials"),
        "commenter" => matches!(perm, "read" | "comment"),
        "reader" => perm == "read",
        other => panic!("unknown role {other}"),
    }
}

impl Server {
    fn token(&self, role: &str) -> String {
        match role {
            "owner" => self.alice.clone(),
            "stranger" => self.bob.clone(),
            r => self.users[r].clone(),
        }
    }

    async fn call(
        &self,
        role: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.request(method, path, Some(&self.token(role)), body)
            .await
    }
}

/// One route: method, path and body for a role, and the permission it needs.
struct Case {
    perm: &'static str,
    method: Method,
    path: String,
    body: Option<Value>,
}

fn case(perm: &'static str, method: Method, path: String, body: Option<Value>) -> Case {
    Case {
        perm,
        method,
        path,
        body,
    }
}

#[tokio::test]
async fn every_role_against_every_route() {
    let srv = start(1 << 20).await;
    let (s, v) = srv
        .call(
            "owner",
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "matrix"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let base = format!("/v1/sessions/{id}");
    for (path, body) in [
        (
            format!("{base}/branches/main/messages"),
            json!({"role": "user", "content": "first"}),
        ),
        (format!("{base}/checkpoints"), json!({"name": "cp0"})),
        (format!("{base}/branches"), json!({"name": "side"})),
    ] {
        let (s, v) = srv.call("owner", Method::POST, &path, Some(body)).await;
        assert!(s.is_success(), "{path}: {v}");
    }
    for (role, perms) in ROLES.iter().copied().chain([("boss", &["manage"][..])]) {
        if perms.is_empty() {
            continue;
        }
        let (s, v) = srv
            .call(
                "owner",
                Method::POST,
                &format!("{base}/collaborators"),
                Some(json!({"user": role, "permissions": perms})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{role}: {v}");
    }

    let mut checked = 0;
    for (role, _) in ROLES {
        let cases = vec![
            case("read", Method::GET, base.clone(), None),
            case("read", Method::GET, format!("{base}/branches"), None),
            case(
                "read",
                Method::GET,
                format!("{base}/branches/main/messages"),
                None,
            ),
            case(
                "read",
                Method::GET,
                format!("{base}/branches/main/state"),
                None,
            ),
            case("read", Method::GET, format!("{base}/checkpoints"), None),
            case("read", Method::GET, format!("{base}/reflog"), None),
            case("read", Method::GET, format!("{base}/events"), None),
            case("read", Method::GET, format!("{base}/audit"), None),
            case("read", Method::GET, format!("{base}/audit/verify"), None),
            case("read", Method::GET, format!("{base}/statistics"), None),
            case(
                "read",
                Method::GET,
                format!("{base}/diff?from=main&to=side"),
                None,
            ),
            case("read", Method::GET, format!("{base}/export"), None),
            case(
                "read",
                Method::GET,
                format!("{base}/export?format=markdown"),
                None,
            ),
            case("read", Method::GET, format!("{base}/context"), None),
            case("read", Method::GET, format!("{base}/summary"), None),
            case("read", Method::GET, format!("{base}/collaborators"), None),
            case("read", Method::GET, format!("{base}/contributions"), None),
            case(
                "comment",
                Method::POST,
                format!("{base}/branches/main/messages"),
                Some(json!({"role": "note", "content": format!("a note by {role}")})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/branches/main/messages"),
                Some(json!({"role": "user", "content": format!("a message by {role}")})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/branches/main/events"),
                Some(json!({"kind": "hypothesis", "statement": format!("{role} thinks so")})),
            ),
            case(
                "add_materials",
                Method::POST,
                format!("{base}/branches/main/events"),
                Some(json!({"kind": "material", "formula": "NaCl"})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/query"),
                Some(json!({"message": "Analyse LiFePO4"})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/tools/materials_analyzer"),
                Some(json!({"arguments": {"action": "analyze", "formula": "MgO"}})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/branches"),
                Some(json!({"name": format!("b-{role}")})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/checkpoints"),
                Some(json!({"name": format!("cp-{role}")})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/checkpoints/cp0/restore"),
                Some(json!({"branch": "side"})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/context/items"),
                Some(json!({"kind": "goal", "content": format!("goal of {role}")})),
            ),
            case(
                "write",
                Method::POST,
                format!("{base}/context/compress"),
                Some(json!({"keep_recent": 50})),
            ),
            case(
                "manage",
                Method::POST,
                format!("{base}/collaborators"),
                Some(json!({"user": "spare", "permissions": ["read"]})),
            ),
            case(
                "manage",
                Method::DELETE,
                format!("{base}/collaborators/spare"),
                None,
            ),
            case(
                "owner",
                Method::PATCH,
                format!("{base}/collaborators/boss"),
                Some(json!({"permissions": ["manage", "comment"]})),
            ),
            case(
                "manage",
                Method::POST,
                format!("{base}/status"),
                Some(json!({"status": "paused"})),
            ),
        ];
        for c in cases {
            let (s, v) = srv
                .call(role, c.method.clone(), &c.path, c.body.clone())
                .await;
            let allowed = holds(role, c.perm);
            let what = format!("{role} {} {} (needs {})", c.method, c.path, c.perm);
            if allowed {
                assert!(s.is_success(), "{what}: expected success, got {s}: {v}");
            } else {
                let want = if holds(role, "read") {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(s, want, "{what}: {v}");
                let code = if want == StatusCode::FORBIDDEN {
                    "forbidden"
                } else {
                    "not_found"
                };
                assert_eq!(v["error"]["code"], code, "{what}: {v}");
            }
            // Put back what a permitted state change changed.
            if allowed && c.path.ends_with("/status") {
                let (s, v) = srv
                    .call(
                        "owner",
                        Method::POST,
                        &format!("{base}/status"),
                        Some(json!({"status": "resumed"})),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{v}");
            }
            checked += 1;
        }

        // The session list shows the session to everyone who may read it, and only to them.
        let (_, list) = srv.call(role, Method::GET, "/v1/sessions", None).await;
        let listed = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == id.as_str());
        assert_eq!(listed, holds(role, "read"), "{role} listing: {list}");
        // PATCH needs write, with the current version.
        let (_, cur) = srv.call("owner", Method::GET, &base, None).await;
        let resp = srv
            .http
            .patch(format!("{}{base}", srv.base))
            .bearer_auth(srv.token(role))
            .header("if-match", cur["version"].to_string())
            .json(&json!({"description": format!("edited by {role}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().is_success(),
            holds(role, "write"),
            "{role} PATCH: {}",
            resp.status()
        );
    }
    assert_eq!(checked, 32 * ROLES.len());

    // Nobody but the owner deletes the session; a reader's denied query wrote nothing.
    let (_, before) = srv
        .call(
            "owner",
            Method::GET,
            &format!("{base}/branches/main/messages?limit=1000"),
            None,
        )
        .await;
    let (s, _) = srv
        .call(
            "reader",
            Method::POST,
            &format!("{base}/query"),
            Some(json!({"message": "Record that NaCl is a cathode"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, after) = srv
        .call(
            "owner",
            Method::GET,
            &format!("{base}/branches/main/messages?limit=1000"),
            None,
        )
        .await;
    assert_eq!(before["items"], after["items"]);
    for (role, _) in ROLES {
        if role == "owner" {
            continue;
        }
        let (s, _) = srv.call(role, Method::DELETE, &base, None).await;
        let want = if holds(role, "read") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(s, want, "{role} DELETE");
    }
    let (s, _) = srv.call("owner", Method::DELETE, &base, None).await;
    assert!(s.is_success());
}

#[tokio::test]
async fn sharing_rules_and_contributions() {
    let srv = start(1 << 20).await;
    let (_, v) = srv
        .call(
            "owner",
            Method::POST,
            "/v1/sessions",
            Some(json!({"name": "team"})),
        )
        .await;
    let base = format!("/v1/sessions/{}", v["id"].as_str().unwrap());
    // POST adds a collaborator; PATCH changes one.
    let put = |who: &'static str, target: &'static str, perms: Value| {
        let srv = &srv;
        let base = base.clone();
        async move {
            let (s, v) = srv
                .call(
                    who,
                    Method::PATCH,
                    &format!("{base}/collaborators/{target}"),
                    Some(json!({ "permissions": perms.clone() })),
                )
                .await;
            if v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not a collaborator"))
            {
                srv.call(
                    who,
                    Method::POST,
                    &format!("{base}/collaborators"),
                    Some(json!({ "user": target, "permissions": perms })),
                )
                .await
            } else {
                (s, v)
            }
        }
    };
    // Bad input: unknown permission, empty set, unknown user, the owner themselves.
    let (s, v) = put("owner", "writer", json!(["admin"])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = put("owner", "writer", json!([])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = put("owner", "nobody", json!(["read"])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = put("owner", "alice", json!(["read"])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A manager invites and changes plain collaborators but not other managers or owners.
    let (s, v) = put("owner", "manager", json!(["manage", "write"])).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["permissions"],
        json!(["read", "comment", "write", "add_materials", "manage"])
    );
    // Adding them again is a conflict; PATCH changes them.
    let (s, v) = srv
        .call(
            "owner",
            Method::POST,
            &format!("{base}/collaborators"),
            Some(json!({"user": "manager", "permissions": ["read"]})),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "already_exists");
    let (s, _) = put("manager", "writer", json!(["write"])).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = put("manager", "writer", json!(["comment"])).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = put("manager", "reader", json!(["owner"])).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = put("owner", "spare", json!(["manage"])).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = put("manager", "spare", json!(["read"])).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = srv
        .call(
            "manager",
            Method::DELETE,
            &format!("{base}/collaborators/spare"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Anyone may leave.
    let (s, _) = srv
        .call(
            "spare",
            Method::DELETE,
            &format!("{base}/collaborators/spare"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = srv.call("spare", Method::GET, &base, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Contributions per user.
    for (who, body) in [
        ("owner", json!({"role": "user", "content": "hello"})),
        ("manager", json!({"role": "user", "content": "hi"})),
        ("manager", json!({"role": "user", "content": "again"})),
        ("writer", json!({"role": "note", "content": "noted"})),
    ] {
        let (s, v) = srv
            .call(
                who,
                Method::POST,
                &format!("{base}/branches/main/messages"),
                Some(body),
            )
            .await;
        assert!(s.is_success(), "{who}: {v}");
    }
    let (s, v) = srv
        .call(
            "manager",
            Method::POST,
            &format!("{base}/branches/main/events"),
            Some(json!({"kind": "material", "formula": "LiFePO4"})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let (_, c) = srv
        .call(
            "writer",
            Method::GET,
            &format!("{base}/contributions"),
            None,
        )
        .await;
    let row = |name: &str| {
        c["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(row("manager")["queries"], 2, "{c}");
    assert_eq!(row("manager")["materials"], 1, "{c}");
    assert_eq!(row("alice")["messages"], 1, "{c}");
    assert_eq!(row("writer")["messages"], 1, "{c}");
    assert_eq!(row("writer")["queries"], 0, "{c}");
    let (_, list) = srv
        .call(
            "writer",
            Method::GET,
            &format!("{base}/collaborators"),
            None,
        )
        .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["manager", "writer"], "{list}");
    // Not invited here: nothing to see, not even the collaborator list.
    let (s, _) = srv
        .call(
            "reader",
            Method::GET,
            &format!("{base}/collaborators"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Being added to someone else's session is visible and reversible: the list marks the
/// session as shared with you (by whom, with what), and you can leave it; the owner cannot.
#[tokio::test]
async fn a_session_someone_added_you_to_is_marked_and_you_can_leave_it() {
    let srv = start(64 * 1024).await;
    let (alice, bob) = (srv.alice.clone(), srv.bob.clone());
    let (s, v) = srv
        .request(
            Method::POST,
            "/v1/sessions",
            Some(&alice),
            Some(json!({"name": "joint"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = srv
        .request(
            Method::POST,
            &format!("/v1/sessions/{id}/collaborators"),
            Some(&alice),
            Some(json!({"user": "bob", "permissions": ["write"]})),
        )
        .await;
    assert!(s.is_success(), "{v}");

    let listed = |token: String| {
        let srv = &srv;
        async move {
            let (s, v) = srv
                .request(Method::GET, "/v1/sessions", Some(&token), None)
                .await;
            assert_eq!(s, StatusCode::OK, "{v}");
            v["items"].as_array().unwrap().clone()
        }
    };
    let mine = listed(alice.clone()).await;
    assert_eq!(mine[0]["id"], id.as_str());
    assert!(mine[0]["shared_with_you"].is_null(), "{}", mine[0]);
    let theirs = listed(bob.clone()).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["shared_with_you"]["added_by"], "alice");
    assert!(
        theirs[0]["shared_with_you"]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("write"))
    );

    // The owner cannot leave; a stranger has nothing to leave.
    let leave = format!("/v1/sessions/{id}/leave");
    let (s, v) = srv.request(Method::POST, &leave, Some(&alice), None).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("owner_cannot_leave"))
    );
    let stranger = srv.users["spare"].clone();
    let (s, _) = srv
        .request(Method::POST, &leave, Some(&stranger), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bob leaves: the session is gone from his list and closed to him, and the owner's audit
    // log says he left.
    let (s, v) = srv.request(Method::POST, &leave, Some(&bob), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert!(listed(bob.clone()).await.is_empty());
    let (s, _) = srv
        .request(Method::GET, &format!("/v1/sessions/{id}"), Some(&bob), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, audit) = srv
        .request(
            Method::GET,
            &format!("/v1/sessions/{id}/audit"),
            Some(&alice),
            None,
        )
        .await;
    assert!(
        audit.to_string().contains("collaborator_removed"),
        "{audit}"
    );
}
