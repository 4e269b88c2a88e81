//! Templates with user data in them, through the SessionManager: session templates never
//! evaluate user text (placeholders are plain substitutions) and are private to their owner
//! unless shared; the Markdown report renders a long session whole within its fuel.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::code;
use kiln_session::SaveTemplate;
use serde_json::json;

/// A request to save session `id` as a private template `name`.
fn save(id: &str, name: &str) -> SaveTemplate {
    SaveTemplate {
        name: name.into(),
        description: String::new(),
        from_session: id.into(),
        visibility: Default::default(),
        shared_with: Vec::new(),
    }
}

/// Template code in a saved session's hypotheses was evaluated: `{{ 7*7 }}` became `49`.
#[tokio::test]
async fn saved_expressions_are_not_evaluated() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("arithmetic").await;
    e.record(
        &id,
        "main",
        json!({"kind": "hypothesis", "statement": "{{ 7*7 }}", "status": "open"}),
    )
    .await;
    m.save_as_template(a, save(&id, "arith")).await.unwrap();
    let made = m
        .create_from_template(a, "arith", &BTreeMap::new())
        .await
        .unwrap();
    let st = m.state(a, &made.id, "main", None).await.unwrap();
    assert_eq!(st.hypotheses[0].statement, "{{ 7*7 }}");
}

/// Whatever a session's texts say (template syntax, broken syntax, lone braces), its template
/// recreates them exactly.
#[tokio::test]
async fn saved_session_text_comes_back_exactly() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("{{ 7*7 }} name {%").await;
    e.record(
        &id,
        "main",
        json!({"kind": "context_pin", "key": "p", "value": "{x} {{ y }} {% if %}"}),
    )
    .await;
    e.record(
        &id,
        "main",
        // A focus is a formula (material events are parsed), so no template text fits in it.
        json!({"kind": "focus", "material": "LiFePO4"}),
    )
    .await;
    e.record(
        &id,
        "main",
        json!({"kind": "task", "description": "{literal} }{", "status": "pending"}),
    )
    .await;
    m.save_as_template(a, save(&id, "verbatim")).await.unwrap();
    let made = m
        .create_from_template(a, "verbatim", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(made.name, "{{ 7*7 }} name {%");
    let st = m.state(a, &made.id, "main", None).await.unwrap();
    assert_eq!(st.context["p"], json!("{x} {{ y }} {% if %}"));
    assert_eq!(st.focus.material.as_deref(), Some("LiFePO4"));
    assert_eq!(st.tasks[0].description, "{literal} }{");
}

/// A nested loop in a saved task ran for minutes per request; it is text, answered at once.
/// (A runaway render blocks its worker thread, so this test runs its own runtime and leaves
/// such a worker behind rather than wait for it: it fails within 5 s instead of hanging.)
#[test]
fn saved_loops_do_not_run() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let slow = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
    let outcome = rt.block_on(async {
        let e = common::env().await;
        let id = e.session("loops").await;
        e.record(
            &id,
            "main",
            json!({"kind": "task", "description": slow, "status": "pending"}),
        )
        .await;
        e.mgr
            .save_as_template(&e.alice, save(&id, "slow"))
            .await
            .unwrap();
        let (m, a) = (e.mgr.clone(), e.alice.clone());
        let job =
            tokio::spawn(async move { m.create_from_template(&a, "slow", &BTreeMap::new()).await });
        match tokio::time::timeout(Duration::from_secs(5), job).await {
            Err(_) => Err("instantiating did not answer within 5 s"),
            Ok(made) => {
                let made = made.unwrap().unwrap();
                let st = e.mgr.state(&e.alice, &made.id, "main", None).await.unwrap();
                assert_eq!(st.tasks[0].description, slow);
                Ok(())
            }
        }
    });
    rt.shutdown_background();
    outcome.unwrap();
}

/// A saved template is its owner's: another user neither lists nor instantiates it.
#[tokio::test]
async fn a_private_template_is_invisible_to_others() {
    let e = common::env().await;
    let id = e.session("private work").await;
    e.record(
        &id,
        "main",
        json!({"kind": "hypothesis", "statement": "secret", "status": "open"}),
    )
    .await;
    e.mgr
        .save_as_template(&e.alice, save(&id, "mine"))
        .await
        .unwrap();
    let listed = e.mgr.templates(&e.bob).await.unwrap();
    assert!(!listed.iter().any(|t| t.body.name == "mine"), "{listed:?}");
    assert_eq!(listed.len(), 2, "the built-in ones only");
    code(
        e.mgr
            .create_from_template(&e.bob, "mine", &BTreeMap::new())
            .await,
        "not_found",
    );
}

/// The built-in templates fill in; a saved template recreates its session's open state.
#[tokio::test]
async fn sessions_come_from_templates_and_save_as_templates() {
    let e = common::env().await;
    let (m, a) = (&e.mgr, &e.alice);
    let names: Vec<_> = m
        .templates(a)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.body.name)
        .collect();
    assert!(names.contains(&"materials-discovery".to_string()));
    let params = BTreeMap::from([
        ("material".to_string(), "LiFePO4".to_string()),
        ("property".to_string(), "capacity".to_string()),
    ]);
    let s = m
        .create_from_template(a, "materials-discovery", &params)
        .await
        .unwrap();
    assert_eq!(s.name, "LiFePO4 discovery: capacity");
    assert_eq!(s.session_type, kiln_types::SessionType::Research);
    assert_eq!(s.template.as_deref(), Some("materials-discovery"));
    assert_eq!(
        s.description,
        "Discovery workflow for LiFePO4 (battery cathodes), optimising capacity."
    );
    assert!(s.config.duration_days.is_some() && s.config.checkpoint_frequency.is_some());
    let st = m.state(a, &s.id, "main", None).await.unwrap();
    assert_eq!(st.context["target_material"], json!("LiFePO4"));
    assert_eq!(
        st.context["application"],
        json!("battery cathodes"),
        "defaults fill in"
    );
    assert_eq!(st.focus.material.as_deref(), Some("LiFePO4"));
    assert_eq!(st.hypotheses.len(), 1);
    assert!(st.hypotheses[0].statement.contains("capacity"));
    assert_eq!(st.tasks.len(), 4);

    let err = code(
        m.create_from_template(a, "materials-discovery", &BTreeMap::new())
            .await,
        "invalid_input",
    );
    assert!(err.message.contains("material"));
    let bad = BTreeMap::from([
        ("material".to_string(), "X".to_string()),
        ("colour".to_string(), "red".to_string()),
    ]);
    let err = code(
        m.create_from_template(a, "materials-discovery", &bad).await,
        "invalid_input",
    );
    assert!(err.message.contains("colour"));
    code(
        m.create_from_template(a, "nope", &BTreeMap::new()).await,
        "not_found",
    );
    let sessions = m
        .list_sessions(a, Default::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(sessions, 1, "refused templates create nothing");

    let t = m.save_as_template(a, save(&s.id, "my-lfp")).await.unwrap();
    assert!(!t.built_in);
    assert_eq!(t.reference, "my-lfp@alice");
    assert_eq!(t.body.tasks.len(), 4);
    let s2 = m
        .create_from_template(a, "my-lfp", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(s2.name, s.name);
    assert_eq!(s2.template.as_deref(), Some("my-lfp@alice"));
    let st2 = m.state(a, &s2.id, "main", None).await.unwrap();
    assert_eq!(st2.context, st.context);
    assert_eq!(st2.tasks.len(), 4);
    code(
        m.save_as_template(a, save(&s.id, "my-lfp")).await,
        "already_exists",
    );
    code(
        m.save_as_template(a, save(&s.id, "materials-discovery"))
            .await,
        "already_exists",
    );
    code(
        m.save_as_template(a, save(&s.id, "bad name")).await,
        "invalid_input",
    );
    code(
        m.save_as_template(&e.bob, save(&s.id, "bobs")).await,
        "not_found",
    );
}

/// The Markdown report (a minijinja template of Kiln's own, with a fuel budget that grows with
/// what it lists) exports a long session whole.
#[tokio::test]
async fn a_long_session_reports_whole_within_its_fuel() {
    let e = common::env_with(64).await;
    let id = e.session("long").await;
    for i in 0..1200 {
        let role = if i % 2 == 0 {
            kiln_types::Role::User
        } else {
            kiln_types::Role::Assistant
        };
        e.say(&id, "main", role, &format!("msg-{i:04}-end")).await;
    }
    for i in 0..300 {
        e.record(
            &id,
            "main",
            json!({"kind": "material", "formula": format!("Li{}FePO4", i + 1)}),
        )
        .await;
        e.record(
            &id,
            "main",
            json!({"kind": "task", "description": format!("task-{i:04}"), "status": "pending"}),
        )
        .await;
    }
    let md = e.mgr.export_markdown(&e.alice, &id).await.unwrap();
    for shown in [
        "msg-0000-end",
        "msg-1199-end",
        "| Li300FePO4 |",
        "task-0299",
    ] {
        assert!(md.contains(shown), "{shown} missing");
    }
}
