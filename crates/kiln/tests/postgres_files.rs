//! Notebook files and attachments when servers share a PostgreSQL database but no disk: a file
//! uploaded through one server downloads byte for byte from another (fetched from the
//! database into that server's cache), a purge on one is a 410 on both; `kiln migrate` moves
//! the files and attachments of a SQLite data directory into the database, refuses to call a
//! copy verified while a stored file is damaged, and a server on a fresh data directory then
//! serves them. Needs a server: `scripts/pg run cargo test -p kiln --test postgres_files --
//! --include-ignored` (scripts/test does it).

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::{Client, pg_database, pg_server_url, psql};

impl Client {
    async fn session(&self, base: &str) -> String {
        let (st, s) = self
            .call(
                "POST",
                &format!("{base}/v1/sessions"),
                Some(json!({"name": "Cathode files"})),
            )
            .await;
        assert_eq!(st, 201, "{s}");
        s["id"].as_str().unwrap().to_owned()
    }

    /// Uploads `content` as `name` on main; returns the file entry.
    async fn upload(&self, base: &str, session: &str, name: &str, content: &[u8]) -> Value {
        let res = self
            .http
            .post(format!(
                "{base}/v1/sessions/{session}/branches/main/notebook/files?name={name}"
            ))
            .bearer_auth(&self.token)
            .header("content-type", "application/octet-stream")
            .body(content.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        let rec: Value = res.json().await.unwrap();
        rec["result"]["file"].clone()
    }

    async fn download(&self, base: &str, session: &str, file: &str) -> (u16, Vec<u8>) {
        self.download_from(base, session, "main", file).await
    }

    async fn download_from(
        &self,
        base: &str,
        session: &str,
        branch: &str,
        file: &str,
    ) -> (u16, Vec<u8>) {
        let res = self
            .http
            .get(format!(
                "{base}/v1/sessions/{session}/branches/{branch}/notebook/files/{file}"
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let st = res.status().as_u16();
        (st, res.bytes().await.unwrap().to_vec())
    }
}

/// Content over several 1 MiB chunks, ending part-way through one.
fn content(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn a_file_uploaded_on_one_server_downloads_from_another_and_a_purge_holds_on_both() {
    let server = pg_server_url("postgres_files");
    let name = format!("kiln_files_{}", std::process::id());
    let db = pg_database(&server, &name);
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = support::start_with(dirs.0.path(), &["--database-url", &db]);
    let b = support::start_with(dirs.1.path(), &["--database-url", &db]);
    let c = Client::new(a.token.clone().unwrap());
    let (ua, ub) = (format!("http://{}", a.addr), format!("http://{}", b.addr));
    let id = c.session(&ua).await;

    let bytes = content(2 * (1 << 20) + 12_345, 7);
    let file = c.upload(&ua, &id, "xrd.bin", &bytes).await;
    let fid = file["id"].as_str().unwrap().to_owned();
    let sha = file["sha256"].as_str().unwrap().to_owned();
    assert_eq!(
        psql(
            &db,
            &format!("SELECT count(*) FROM file_chunks WHERE sha256 = '{sha}'")
        ),
        "3",
        "stored in the database in 1 MiB chunks"
    );
    let cached = dirs.1.path().join("files").join(&sha[..2]).join(&sha);
    assert!(!cached.exists(), "B has not seen the file yet");

    // B has never seen the file: it fetches it from the database, then serves its cache.
    let (st, got) = c.download(&ub, &id, &fid).await;
    assert_eq!(st, 200);
    assert!(got == bytes, "B serves the bytes A stored");
    assert!(cached.is_file(), "B keeps a copy");
    let (st, again) = c.download(&ub, &id, &fid).await;
    assert_eq!((st, again.len()), (200, bytes.len()));

    // The same content uploaded through B is stored once.
    let twin = c.upload(&ub, &id, "xrd-copy.bin", &bytes).await;
    assert_eq!(twin["sha256"], sha.as_str());
    assert_eq!(
        psql(
            &db,
            &format!("SELECT count(*) FROM file_blobs WHERE sha256 = '{sha}'")
        ),
        "1"
    );

    // A branch made now keeps its own entry for the file.
    let (st, v) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions/{id}/branches"),
            Some(json!({"name": "keep"})),
        )
        .await;
    assert_eq!(st, 201, "{v}");

    // A purge on A (after main's entries are deleted) is a 410 on B for the branch that still
    // names the file, and B's cached copy goes too.
    for f in [&fid, twin["id"].as_str().unwrap()] {
        let (st, v) = c
            .call(
                "DELETE",
                &format!("{ua}/v1/sessions/{id}/branches/main/notebook/files/{f}"),
                None,
            )
            .await;
        assert_eq!(st, 200, "{v}");
    }
    let (st, v) = c
        .call(
            "POST",
            &format!("{ua}/v1/sessions/{id}/branches/main/notebook/files/{fid}/purge"),
            None,
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["removed"], true, "{v}");
    let (st, _) = c.download(&ub, &id, &fid).await;
    assert_eq!(st, 404, "deleted on main");
    let (st, body) = c.download_from(&ub, &id, "keep", &fid).await;
    assert_eq!(st, 410, "{}", String::from_utf8_lossy(&body));
    let err: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(err["error"]["code"], "file_content_gone");
    assert!(!cached.exists(), "B's copy of purged content is removed");
    assert_eq!(
        psql(
            &db,
            &format!("SELECT count(*) FROM file_chunks WHERE sha256 = '{sha}'")
        ),
        "0"
    );

    drop((a, b));
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}

fn kiln(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("KILN_MIGRATE_TO")
        .env_remove("KILN_DATABASE__URL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
async fn migrate_moves_files_and_attachments_and_a_server_on_postgres_serves_them() {
    let server = pg_server_url("postgres_files");
    let name = format!("kiln_files_migrate_{}", std::process::id());
    let db = pg_database(&server, &name);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    // A SQLite server: a file and an attachment.
    let lite = support::start(&data);
    let c = Client::new(lite.token.clone().unwrap());
    let base = format!("http://{}", lite.addr);
    let id = c.session(&base).await;
    let bytes = content((1 << 20) + 99, 3);
    let file = c.upload(&base, &id, "cycling.csv", &bytes).await;
    let (st, v) = c
        .call(
            "POST",
            &format!("{base}/v1/sessions/{id}/tools/notebook"),
            Some(json!({"arguments": {"action": "attach", "name": "note.txt",
                                      "content": "olivine keeps Li+ channels open"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    drop(lite);

    // A damaged file in the data directory: the copy is not called verified.
    let damaged = data.join("files").join("00").join("0".repeat(64));
    std::fs::create_dir_all(damaged.parent().unwrap()).unwrap();
    std::fs::write(&damaged, b"not what the name says").unwrap();
    let out = kiln(&data, &["migrate", "--to", &db]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("damaged on disk"), "{}", text(&out));

    // Without it, everything moves and is checked.
    std::fs::remove_file(&damaged).unwrap();
    let out = kiln(&data, &["migrate", "--to", &db, "--replace"]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("verified:"), "{shown}");
    assert!(
        shown.contains("sessions read back and replayed: 1; differing: 0"),
        "{shown}"
    );
    assert_eq!(
        psql(
            &db,
            "SELECT kind || ':' || count(*) FROM file_blobs GROUP BY kind ORDER BY kind"
        ),
        "attachments:1\nfiles:1"
    );

    // A server on a fresh data directory serves the moved file and lists the attachment.
    let fresh = tempfile::tempdir().unwrap();
    let pg = support::start_with(fresh.path(), &["--database-url", &db]);
    let base = format!("http://{}", pg.addr);
    let (st, got) = c.download(&base, &id, file["id"].as_str().unwrap()).await;
    assert_eq!(st, 200);
    assert!(got == bytes, "the moved file reads back byte for byte");
    let (st, v) = c
        .call(
            "POST",
            &format!("{base}/v1/sessions/{id}/tools/notebook"),
            Some(json!({"arguments": {"action": "list"}})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v.to_string().contains("note.txt"), "{v}");

    drop(pg);
    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}
