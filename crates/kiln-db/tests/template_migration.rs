//! Migration 0008 on a database from before it: saved templates, which had no owner and were
//! minijinja text, become private to whoever saved them (or the first administrator when that
//! user is unknown) and read back literally under the `{parameter}` syntax.

use std::path::Path;

use kiln_db::{Db, DbOptions, Visibility};
use serde_json::{Value, json};
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Applies the migrations before 0008 to a new database at `path`, through sqlx's migrator so
/// the file records them as applied, exactly like a Kiln that predates 0008.
async fn schema_before_owners(path: &Path, scratch: &Path) -> sqlx::SqliteConnection {
    let all = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/sqlite");
    for entry in std::fs::read_dir(&all).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.as_str() < "0008" {
            std::fs::copy(entry.path(), scratch.join(&name)).unwrap();
        }
    }
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .foreign_keys(true)
        .connect()
        .await
        .unwrap();
    let before = Migrator::new(scratch).await.unwrap();
    assert_eq!(before.iter().count(), 7);
    before.run(&mut conn).await.unwrap();
    conn
}

fn legacy_body(name: &str, texts: Value) -> String {
    let mut body = json!({
        "name": name, "description": "", "session_type": "research", "tags": ["t"],
        "project": null, "context": null, "duration_days": 3, "checkpoint_frequency": "daily",
        "parameters": [], "session_name": "n", "session_description": "", "pins": {},
        "focus": null, "hypotheses": [], "tasks": [], "built_in": false,
    });
    for (k, v) in texts.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

#[tokio::test]
async fn templates_from_before_owners_become_private_and_literal() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.db");
    let mut conn = schema_before_owners(&path, scratch.path()).await;
    sqlx::query(
        "INSERT INTO users (id, name, is_owner, created_at) VALUES \
         ('u-bob', 'bob', 0, '2025-01-01T00:00:00Z'), \
         ('u-admin', 'root', 1, '2025-01-02T00:00:00Z'), \
         ('u-carol', 'carol', 0, '2025-01-03T00:00:00Z')",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let rows = [
        (
            "bobs",
            "bob's",
            legacy_body(
                "bobs",
                json!({"session_name": "{{ 7*7 }} name", "pins": {"k": "{v} }"},
                       "focus": "{{ m }}", "hypotheses": ["{% for i in range(9) %}"],
                       "tasks": ["plain", "{"]}),
            ),
            Some("u-bob"),
        ),
        (
            "ghosts",
            "",
            legacy_body("ghosts", json!({})),
            Some("u-gone"),
        ),
        ("nobodys", "", legacy_body("nobodys", json!({})), None),
    ];
    for (name, description, body, by) in &rows {
        sqlx::query(
            "INSERT INTO session_templates (name, description, body, created_by, created_at) \
             VALUES (?, ?, ?, ?, '2025-02-01T00:00:00Z')",
        )
        .bind(name)
        .bind(description)
        .bind(body)
        .bind(by)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn.close().await.unwrap();

    let db = Db::open(&path, &DbOptions::default()).await.unwrap();
    let bobs = db.visible_templates("u-bob", None, None).await.unwrap();
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    let t = &bobs[0];
    assert_eq!((t.name.as_str(), t.owner.as_str()), ("bobs", "bob"));
    assert_eq!(t.visibility, Visibility::Private);
    assert_eq!(t.description, "bob's");
    assert!(t.shared_with.is_empty());
    assert_eq!(t.created_at, "2025-02-01T00:00:00Z");
    // Every `{` doubled: the texts fill to what the session said, never to template output.
    assert_eq!(t.body["session_name"], "{{{{ 7*7 }} name");
    assert_eq!(t.body["pins"], json!({"k": "{{v} }"}));
    assert_eq!(t.body["focus"], "{{{{ m }}");
    assert_eq!(t.body["hypotheses"], json!(["{{% for i in range(9) %}"]));
    assert_eq!(t.body["tasks"], json!(["plain", "{{"]));
    assert_eq!(t.body["tags"], json!(["t"]), "the settings are kept");
    assert_eq!(t.body["duration_days"], 3);
    assert!(t.body.get("built_in").is_none(), "{}", t.body);
    // Unknown or missing savers: the first administrator's, still private.
    let admins = db.visible_templates("u-admin", None, None).await.unwrap();
    let names: Vec<_> = admins.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["ghosts", "nobodys"]);
    assert!(admins.iter().all(|t| t.visibility == Visibility::Private));
    assert!(
        db.visible_templates("u-carol", None, None)
            .await
            .unwrap()
            .is_empty(),
        "nobody else sees any of them"
    );
}
