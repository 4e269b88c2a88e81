//! `kiln migrate --to postgres://…` on a real data directory and a real PostgreSQL: a session
//! with branches, a merge, tool state and an audit chain is copied and verified; a second run
//! is refused without `--replace`; a run that fails half-way leaves the target as it was, and
//! the same command then succeeds. Needs a server: `scripts/pg run cargo test -p kiln --test
//! migrate -- --include-ignored` (scripts/test does it).

mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use support::{pg_database, pg_server_url, psql};

fn kiln(data: &Path, args: &[&str], input: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("KILN_LLM__BASE_URL")
        .env_remove("KILN_LLM__API_KEY")
        .env_remove("KILN_MIGRATE_TO")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.unwrap_or("").as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
#[ignore = "needs PostgreSQL: scripts/pg runs it (KILN_TEST_DATABASE_URL)"]
fn a_data_directory_moves_to_postgres_verified_and_a_failed_run_can_be_rerun() {
    let server = pg_server_url("migrate");
    let name = format!("kiln_migrate_{}", std::process::id());
    let url = pg_database(&server, &name);
    let base = server.rsplit_once('/').map(|(b, _)| b).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let chat = kiln(
        &data,
        &["chat"],
        Some(
            "Analyse LiFePO4\n\
             Record that the olivine structure seems crucial for Li+ mobility\n\
             /branch cobalt\n\
             Analyse LiCoO2\n\
             /switch main\n\
             /merge cobalt\n\
             /quit\n",
        ),
    );
    assert!(chat.status.success(), "{}", text(&chat));
    let user = kiln(&data, &["user", "add", "bob"], None);
    assert!(user.status.success(), "{}", text(&user));

    // First run: everything copied and checked.
    let first = kiln(&data, &["migrate", "--to", &url], None);
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(out.contains("verified:"), "{out}");
    assert!(!out.contains("DIFFERENT"), "{out}");
    let nodes: i64 = psql(&url, "SELECT count(*) FROM nodes").parse().unwrap();
    assert!(nodes >= 10, "only {nodes} nodes copied:\n{out}");
    assert_eq!(
        psql(&url, "SELECT count(*) FROM users WHERE name = 'bob'"),
        "1"
    );
    let merges: i64 = psql(
        &url,
        "SELECT count(*) FROM nodes WHERE merge_parent_id IS NOT NULL",
    )
    .parse()
    .unwrap();
    assert!(merges >= 1, "the merge node is missing:\n{out}");
    // New rows continue after the copied ids instead of colliding with them.
    let next: i64 = psql(
        &url,
        "SELECT nextval(pg_get_serial_sequence('nodes', 'rowid'))",
    )
    .parse()
    .unwrap();
    let max: i64 = psql(&url, "SELECT max(rowid) FROM nodes").parse().unwrap();
    assert!(next > max, "identity restarts at {next} below {max}");

    // A second run does not silently overwrite the target.
    let again = kiln(&data, &["migrate", "--to", &url], None);
    let out = text(&again);
    assert!(!again.status.success(), "{out}");
    assert!(out.contains("--replace"), "{out}");

    // A run that fails half-way (the target refuses one node) leaves the earlier copy whole.
    psql(
        &url,
        "ALTER TABLE nodes ADD CONSTRAINT refuse_cobalt CHECK (content NOT LIKE '%LiCoO2%') NOT VALID",
    );
    let failed = kiln(&data, &["migrate", "--to", &url, "--replace"], None);
    let out = text(&failed);
    assert!(!failed.status.success(), "{out}");
    assert!(out.contains("target is unchanged"), "{out}");
    assert_eq!(
        psql(&url, "SELECT count(*) FROM nodes")
            .parse::<i64>()
            .unwrap(),
        nodes
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM users WHERE name = 'bob'"),
        "1"
    );

    // The same command succeeds once the cause is gone.
    psql(&url, "ALTER TABLE nodes DROP CONSTRAINT refuse_cobalt");
    let rerun = kiln(&data, &["migrate", "--to", &url, "--replace"], None);
    let out = text(&rerun);
    assert!(rerun.status.success(), "{out}");
    assert!(out.contains("verified:"), "{out}");

    // The password of a URL never reaches the output.
    let secret = format!("{}/{name}", base.replacen("kiln@", "kiln:hunter2@", 1));
    let pw = kiln(&data, &["migrate", "--to", &secret, "--replace"], None);
    assert!(!text(&pw).contains("hunter2"), "{}", text(&pw));

    // Bad input: not a PostgreSQL URL, and an empty data directory.
    let bad = kiln(&data, &["migrate", "--to", "mysql://x"], None);
    assert!(!bad.status.success());
    assert!(text(&bad).contains("PostgreSQL URL"), "{}", text(&bad));
    let empty = kiln(&dir.path().join("empty"), &["migrate", "--to", &url], None);
    assert!(!empty.status.success());
    assert!(
        text(&empty).contains("no Kiln database"),
        "{}",
        text(&empty)
    );

    psql(&server, &format!("DROP DATABASE {name} WITH (FORCE)"));
}
