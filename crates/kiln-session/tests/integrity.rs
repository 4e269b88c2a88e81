//! Hostile imports and stored values: import validation (the create rules), the scheduler
//! surviving any stored value, signed exports and the four tampering attacks, and the node
//! hash chain catching an edited message.

mod common;

use chrono::{Duration, Utc};
use common::{Env, code, msg};
use kiln_session::{Caller, CreateSession, JobsConfig, SessionManager};
use kiln_types::{CheckpointFrequency, Role, SessionType};
use serde_json::{Value, json};
async fn count(e: &Env) -> i64 {
    e.raw().await.count("SELECT COUNT(*) FROM sessions").await
}

/// A session where alice and bob (a writer) both speak, with a discovery, a checkpoint and a
/// branch; returns its id.
async fn shared(e: &Env) -> String {
    let (m, a) = (&e.mgr, &e.alice);
    let id = e.session("shared").await;
    let write = kiln_types::Permissions::of([kiln_types::Permission::Write]);
    m.share_with_user(a, &id, "bob", write).await.unwrap();
    e.say(&id, "main", Role::User, "Analyse LiFePO4").await;
    m.append_message(
        &e.bob,
        &id,
        "main",
        msg(Role::User, "I think it is an olivine"),
    )
    .await
    .unwrap();
    e.record(
        &id,
        "main",
        json!({"kind": "discovery", "id": "d1", "type": "stability_insight",
               "description": "Olivine is stable", "confidence": 0.8}),
    )
    .await;
    // Past the snapshot interval (4 in tests), so the export carries a snapshot.
    for f in ["LiFePO4", "NaFePO4", "LiCoO2", "LiMn2O4"] {
        e.record(&id, "main", json!({"kind": "material", "formula": f}))
            .await;
    }
    m.create_checkpoint(a, &id, "cp", None, None).await.unwrap();
    m.create_branch(a, &id, "alt", None).await.unwrap();
    e.say(&id, "alt", Role::User, "Try sodium").await;
    id
}

async fn export(e: &Env, id: &str) -> Value {
    serde_json::to_value(e.mgr.export_json(&e.alice, id).await.unwrap()).unwrap()
}

fn authors(m: &[kiln_session::Node]) -> Vec<Option<String>> {
    m.iter().map(|n| n.author.clone()).collect()
}

async fn main_messages(m: &SessionManager, c: &Caller, id: &str) -> Vec<kiln_session::Node> {
    m.messages(c, id, "main", Some(50), None)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn imports_refuse_what_create_rename_and_checkpoint_refuse_and_store_nothing() {
    let e = common::env().await;
    let id = e.session("fine").await;
    e.say(&id, "main", Role::User, "hello").await;
    e.mgr
        .create_checkpoint(&e.alice, &id, "cp", None, None)
        .await
        .unwrap();
    let good = export(&e, &id).await;
    let before = count(&e).await;
    type Edit = Box<dyn Fn(&mut Value)>;
    let research = |d: &mut Value| {
        d["session"]["session_type"] = json!("research");
        d["session"]["config"]["checkpoint_frequency"] = json!("daily");
    };
    let cases: Vec<(&str, Edit)> = vec![
        (
            "duration_days",
            Box::new(move |d| {
                research(d);
                d["session"]["config"]["duration_days"] = json!(4_294_967_295u32);
            }),
        ),
        ("name", Box::new(|d| d["session"]["name"] = json!(""))),
        (
            "name",
            Box::new(|d| d["session"]["name"] = json!("x".repeat(1_500_000))),
        ),
        (
            "control",
            Box::new(|d| d["session"]["name"] = json!("bell\u{7}name")),
        ),
        (
            "control",
            Box::new(|d| d["session"]["name"] = json!("nul\u{0}name")),
        ),
        (
            "checkpoint name",
            Box::new(|d| d["checkpoints"][0]["name"] = json!("c".repeat(100_000))),
        ),
        (
            "context_window",
            Box::new(|d| d["session"]["config"]["context"]["context_window"] = json!(0)),
        ),
        (
            "context_window",
            Box::new(|d| d["session"]["config"]["context"]["context_window"] = json!(u32::MAX)),
        ),
        (
            "tag",
            Box::new(|d| d["session"]["tags"] = json!(["ok", "tab\u{9}tag"])),
        ),
        (
            "created_at",
            Box::new(|d| d["session"]["created_at"] = json!("+262143-12-31T23:59:59Z")),
        ),
        (
            "larger than",
            Box::new(|d| d["nodes"][1]["content"] = json!("y".repeat(1_100_000))),
        ),
    ];
    for (want, edit) in cases {
        let mut doc = good.clone();
        edit(&mut doc);
        let err = code(e.mgr.import(&e.alice, &doc).await, "invalid_input");
        assert!(
            err.message.contains(want),
            "expected `{want}` in `{}`",
            &err.message[..err.message.len().min(300)]
        );
        assert_eq!(count(&e).await, before, "{want}: nothing stored");
    }
    // Creating and renaming apply the same rules.
    let nul = CreateSession {
        name: "nul\u{0}name".into(),
        ..Default::default()
    };
    code(e.mgr.create_session(&e.alice, nul).await, "invalid_input");
    let forever = CreateSession {
        name: "forever".into(),
        duration_days: Some(u32::MAX),
        ..Default::default()
    };
    code(
        e.mgr.create_session(&e.alice, forever).await,
        "invalid_input",
    );
    let rename = kiln_session::UpdateSession {
        name: Some("bad\u{1b}[31m".into()),
        ..Default::default()
    };
    code(
        e.mgr.update_session(&e.alice, &id, rename, None).await,
        "invalid_input",
    );
    e.mgr.import(&e.alice, &good).await.unwrap();
    assert_eq!(count(&e).await, before + 1);
}

#[tokio::test]
async fn one_session_with_hostile_stored_values_does_not_stop_the_others_jobs() {
    let e = common::env().await;
    let research = |name: &str| CreateSession {
        name: name.into(),
        session_type: SessionType::Research,
        duration_days: Some(30),
        checkpoint_frequency: Some(CheckpointFrequency::Daily),
        ..Default::default()
    };
    // Sessions are visited in id order: the hostile ones come first.
    let huge = e
        .mgr
        .create_session(&e.alice, research("huge"))
        .await
        .unwrap();
    let broken = e
        .mgr
        .create_session(&e.alice, research("broken"))
        .await
        .unwrap();
    let late = e
        .mgr
        .create_session(&e.alice, research("late"))
        .await
        .unwrap();
    let fine = e
        .mgr
        .create_session(&e.alice, research("fine"))
        .await
        .unwrap();
    let mut c = e.raw().await;
    // Written straight into the store, as no API would accept them.
    let huge_days = if c.is_postgres() {
        "UPDATE sessions SET config = jsonb_set(config::jsonb, '{duration_days}', '4294967295')::text \
         WHERE id = $1"
    } else {
        "UPDATE sessions SET config = json_set(config, '$.duration_days', 4294967295) WHERE id = $1"
    };
    c.exec(huge_days, &[(&huge.id).into()]).await;
    c.exec(
        "UPDATE sessions SET config = '{\"context\": {\"context_window\": -1}}' WHERE id = $1",
        &[(&broken.id).into()],
    )
    .await;
    c.exec(
        "UPDATE sessions SET created_at = '9999-12-31T23:59:59Z' WHERE id = $1",
        &[(&late.id).into()],
    )
    .await;
    let now = Utc::now() + Duration::days(2);
    let cfg = JobsConfig::default();
    let run = e.mgr.run_jobs(&cfg, now, "A");
    let r = tokio::time::timeout(std::time::Duration::from_secs(20), run)
        .await
        .expect("the jobs finish");
    // The fine session (after the hostile ones) got its daily checkpoint; so did `huge`, whose
    // duration never falls due.
    let cps = |id: String| {
        let m = e.mgr.clone();
        let a = e.alice.clone();
        async move { m.checkpoints(&a, &id).await.unwrap() }
    };
    assert!(cps(fine.id.clone()).await.iter().any(|c| c.auto), "{r:?}");
    assert!(cps(huge.id.clone()).await.iter().any(|c| c.auto), "{r:?}");
    assert_eq!(r.research_archived, 0, "{r:?}");
    assert!(
        r.errors.iter().any(|x| x.contains(&broken.id)),
        "the unreadable session is reported: {r:?}"
    );
}

#[tokio::test]
async fn a_signed_export_imports_verified_with_its_authors() {
    let e = common::env().await;
    let id = shared(&e).await;
    let doc = export(&e, &id).await;
    assert_eq!(doc["signature"]["algorithm"], "ed25519");
    let key = e.mgr.instance_key().await.unwrap();
    assert_eq!(doc["signature"]["key"], json!(key.public_key));
    let new = e.mgr.import(&e.alice, &doc).await.unwrap();
    assert_eq!(new.provenance.as_deref(), Some("verified"));
    let before = authors(&main_messages(&e.mgr, &e.alice, &id).await);
    assert!(before.contains(&Some(e.bob.user_id.clone())));
    assert_eq!(
        authors(&main_messages(&e.mgr, &e.alice, &new.id).await),
        before
    );
    let log = e.mgr.audit(&e.alice, &new.id).await.unwrap();
    let entry = log.last().unwrap();
    assert_eq!(entry.action, "session.import");
    assert_eq!(entry.payload["provenance"], "verified");
    assert!(e.mgr.verify_nodes(&e.alice, &new.id).await.unwrap().valid);
    // The key order of the JSON does not matter: the signature covers the canonical form.
    let text = serde_json::to_string(&doc).unwrap();
    let reordered: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        e.mgr
            .import_bytes(&e.alice, text.into_bytes())
            .await
            .unwrap()
            .provenance
            .as_deref(),
        Some("verified")
    );
    assert_eq!(reordered, doc);
}

/// Imports `doc` as alice and checks it came in unverified, nodes credited to her.
async fn assert_unverified(e: &Env, doc: &Value, why: &str) -> String {
    let new = e.mgr.import(&e.alice, doc).await.unwrap();
    assert_eq!(new.provenance.as_deref(), Some("unverified"), "{why}");
    let got = authors(&main_messages(&e.mgr, &e.alice, &new.id).await);
    assert!(
        got.iter()
            .all(|a| a.is_none() || a.as_deref() == Some(&e.alice.user_id)),
        "{why}: every author is the importer: {got:?}"
    );
    let entry = e.mgr.audit(&e.alice, &new.id).await.unwrap().pop().unwrap();
    assert_eq!(entry.action, "session.import");
    assert_eq!(entry.payload["provenance"], "unverified", "{why}");
    assert!(
        entry.payload["reason"].as_str().unwrap().contains(why),
        "{why}: {}",
        entry.payload
    );
    assert!(e.mgr.verify_nodes(&e.alice, &new.id).await.unwrap().valid);
    new.id
}

fn rechain(audit: &mut [Value]) {
    use sha2::{Digest, Sha256};
    let mut prev = "0".repeat(64);
    for a in audit {
        a["prev_hash"] = json!(prev);
        let canonical = json!({"seq": a["seq"], "at": a["at"], "actor": a["actor"],
                               "action": a["action"], "payload": a["payload"]});
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(canonical.to_string().as_bytes());
        prev = hex::encode(h.finalize());
        a["hash"] = json!(prev);
    }
}

#[tokio::test]
async fn each_tampering_attack_is_detected() {
    let e = common::env().await;
    let id = shared(&e).await;
    let good = export(&e, &id).await;
    let node = |d: &Value, content: &str| {
        d["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .position(|n| n["content"] == content)
            .unwrap()
    };

    // 1. An edited message (its node hash recomputed too, so only the signature tells).
    let mut doc = good.clone();
    let i = node(&doc, "Analyse LiFePO4");
    doc["nodes"][i]["content"] = json!("Analyse LiCoO2");
    let edited = serde_json::from_value::<kiln_session::SessionExport>(doc.clone()).unwrap();
    doc = rehash(edited);
    assert_unverified(&e, &doc, "does not match the document").await;

    // 2. An edited audit entry with the whole chain recomputed.
    let mut doc = good.clone();
    doc["audit"][0]["payload"]["name"] = json!("renamed");
    rechain(doc["audit"].as_array_mut().unwrap());
    assert_unverified(&e, &doc, "does not match the document").await;

    // 3. Authors changed to another real user: bob's words become alice's, and alice's bob's.
    let mut doc = good.clone();
    let (a, b) = (e.alice.user_id.clone(), e.bob.user_id.clone());
    for n in doc["nodes"].as_array_mut().unwrap() {
        if n["author"] == json!(a) {
            n["author"] = json!(b);
        } else if n["author"] == json!(b) {
            n["author"] = json!(a);
        }
    }
    let swapped = serde_json::from_value::<kiln_session::SessionExport>(doc).unwrap();
    let new = assert_unverified(&e, &rehash(swapped), "does not match the document").await;
    let got = authors(&main_messages(&e.mgr, &e.alice, &new).await);
    assert!(
        !got.contains(&Some(b.clone())),
        "bob is credited with nothing"
    );

    // ... and signed by a key this instance does not trust, with the authors intact.
    let other = common::env().await;
    let mut foreign: kiln_session::SessionExport = serde_json::from_value(good.clone()).unwrap();
    foreign.signature = None;
    let foreign = sign_elsewhere(&other, foreign).await;
    assert_unverified(&e, &foreign, "does not trust").await;

    // 4. A forged snapshot with a discovery no event created: refused outright, signed or not.
    let mut doc = good.clone();
    let forged = json!({"id": "forged", "type": "novel_synthesis", "description": "Room-temperature superconductor",
        "materials": [], "evidence": [], "source": "manual", "node": doc["nodes"][1]["id"]});
    let snaps = doc["snapshots"].as_array_mut().unwrap();
    assert!(!snaps.is_empty(), "the session has a snapshot to forge");
    snaps[0]["state"]["discoveries"]
        .as_array_mut()
        .unwrap()
        .push(forged.clone());
    let before = count(&e).await;
    let err = code(e.mgr.import(&e.alice, &doc).await, "invalid_input");
    assert!(
        err.message.contains("does not match a replay"),
        "{}",
        err.message
    );
    // The same forgery in a branch's head state.
    let mut doc = good.clone();
    doc["branches"][0]["state"]["discoveries"]
        .as_array_mut()
        .unwrap()
        .push(forged);
    let err = code(e.mgr.import(&e.alice, &doc).await, "invalid_input");
    assert!(
        err.message.contains("does not match a replay"),
        "{}",
        err.message
    );
    assert_eq!(count(&e).await, before);
}

/// Recomputes an edited document's node hashes (what a careful forger does) and returns it.
fn rehash(mut doc: kiln_session::SessionExport) -> Value {
    for n in &mut doc.nodes {
        n.hash = None;
    }
    serde_json::to_value(doc).unwrap()
}

/// Has another instance, whose key the first does not trust, sign `doc`: it imports the
/// document and exports it again under its own signature.
async fn sign_elsewhere(other: &Env, doc: kiln_session::SessionExport) -> Value {
    let imported = other
        .mgr
        .import(&other.alice, &serde_json::to_value(doc).unwrap())
        .await
        .unwrap();
    serde_json::to_value(
        other
            .mgr
            .export_json(&other.alice, &imported.id)
            .await
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_configured_trusted_key_keeps_another_instances_authors() {
    let first = common::env().await;
    let id = shared(&first).await;
    let doc = export(&first, &id).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), 4);
    let untrusting = SessionManager::open(&config).await.unwrap();
    let (u, _) = untrusting.add_user("carol", true).await.unwrap();
    let carol: Caller = u.into();
    let s = untrusting.import(&carol, &doc).await.unwrap();
    assert_eq!(s.provenance.as_deref(), Some("unverified"));
    let own_key = untrusting.instance_key().await.unwrap().public_key;
    untrusting.close().await;
    config.integrity.trusted_keys = vec![first.mgr.instance_key().await.unwrap().public_key];
    let trusting = SessionManager::open(&config).await.unwrap();
    assert_eq!(
        trusting.instance_key().await.unwrap().trusted_keys,
        vec![first.mgr.instance_key().await.unwrap().public_key]
    );
    // The key file persisted: the same instance key after reopening.
    assert_eq!(trusting.instance_key().await.unwrap().public_key, own_key);
    let s = trusting.import(&carol, &doc).await.unwrap();
    assert_eq!(s.provenance.as_deref(), Some("verified"));
    let got = authors(&main_messages(&trusting, &carol, &s.id).await);
    assert!(got.contains(&Some(first.bob.user_id.clone())), "{got:?}");
}

#[tokio::test]
async fn an_edited_message_in_the_database_breaks_the_node_chain() {
    let e = common::env().await;
    let id = shared(&e).await;
    let other = shared(&e).await;
    assert!(e.mgr.verify_nodes(&e.alice, &id).await.unwrap().valid);
    let target = main_messages(&e.mgr, &e.alice, &id)
        .await
        .into_iter()
        .find(|n| n.content == "I think it is an olivine")
        .unwrap();
    e.raw()
        .await
        .exec(
            "UPDATE nodes SET content = 'I think it is a spinel' WHERE session_id = $1 AND id = $2",
            &[(&id).into(), (&target.id).into()],
        )
        .await;
    let v = e.mgr.verify_nodes(&e.alice, &id).await.unwrap();
    assert!(!v.valid);
    assert_eq!(v.first_broken.as_deref(), Some(target.id.as_str()));
    assert!(e.mgr.verify_nodes(&e.alice, &other).await.unwrap().valid);
    // An export of the edited store carries the stale hash: it does not import.
    let doc = export(&e, &id).await;
    let err = code(e.mgr.import(&e.alice, &doc).await, "invalid_input");
    assert!(
        err.message.contains("does not match its hash"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn an_export_past_the_import_limit_is_refused_as_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(dir.path(), 4);
    config.integrity.max_import_bytes = 1000;
    let m = SessionManager::open(&config).await.unwrap();
    let (u, _) = m.add_user("alice", true).await.unwrap();
    let alice: Caller = u.into();
    let err = m.import_bytes(&alice, vec![b' '; 1001]).await.unwrap_err();
    assert_eq!(err.kind, kiln_types::ErrorKind::PayloadTooLarge);
    assert_eq!(err.code, "payload_too_large");
    assert!(err.kind.recoverable());
}
