//! Black-box tests of the `kiln` binary on a temporary data directory: output, exit codes and
//! error messages of the sessions, branch, checkpoint, message and user commands.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// A data directory and a way to run `kiln` on it.
struct Kiln {
    dir: tempfile::TempDir,
}

impl Kiln {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs kiln with `--data-dir` and returns its raw output.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_kiln"))
            .arg("--data-dir")
            .arg(self.path().join("data"))
            .args(args)
            .env_remove("KILN_STORAGE__DATA_DIR")
            .output()
            .unwrap()
    }

    /// Runs kiln, asserts success, and returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs kiln with `--json`, asserts success, and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs kiln, asserts failure, and returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "kiln {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with("error: "), "unexpected stderr: {err}");
        err
    }

    fn new_session(&self, name: &str) -> String {
        let s = self.json(&["sessions", "new", name]);
        s["id"].as_str().unwrap().to_string()
    }

    fn say(&self, id: &str, branch: &str, role: &str, text: &str) -> String {
        self.ok(&[
            "message", "add", id, text, "--role", role, "--branch", branch,
        ])
        .trim()
        .to_string()
    }
}

#[test]
fn user_add_prints_only_the_token() {
    let k = Kiln::new();
    let out = k.run(&["user", "add", "alice"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout: {stdout:?}");
    let token = lines[0];
    assert!(token.starts_with("kiln_") && token.len() == 69, "{token}");
    assert!(token[5..].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alice"));
    // Tokens are stored only as hashes.
    let db = std::fs::read(k.path().join("data/kiln.db")).unwrap();
    let wal = std::fs::read(k.path().join("data/kiln.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
    }
    // A second user gets a different token; a duplicate name is refused.
    let second = k.ok(&["user", "add", "bob"]);
    assert_ne!(second.trim(), token);
    let err = k.fails(&["user", "add", "alice"]);
    assert!(err.contains("alice"), "{err}");
    // Sessions still work as the local owner after users were added first.
    let id = k.new_session("after users");
    assert_eq!(id.len(), 36);
}

#[test]
fn sessions_move_through_the_lifecycle_and_refuse_invalid_transitions() {
    let k = Kiln::new();
    let s = k.json(&[
        "sessions",
        "new",
        "Perovskite screen",
        "--project",
        "pv",
        "--tag",
        "halide",
        "--type",
        "batch",
    ]);
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "created");
    assert_eq!(s["session_type"], "batch");
    assert_eq!(s["tags"], serde_json::json!(["halide"]));

    // created -> paused is refused, naming the current status and the allowed targets.
    let err = k.fails(&["sessions", "pause", &id]);
    assert!(err.contains("invalid_transition"), "{err}");
    assert!(err.contains("created") && err.contains("active"), "{err}");

    // A message activates the session; then pause, refuse writes, resume, archive.
    k.say(&id, "main", "user", "which perovskites are stable?");
    assert_eq!(
        k.json(&["sessions", "show", &id])["session"]["status"],
        "active"
    );
    assert_eq!(k.json(&["sessions", "pause", &id])["status"], "paused");
    let err = k.fails(&["message", "add", &id, "hello?"]);
    assert!(err.contains("session_not_active"), "{err}");
    let err = k.fails(&["sessions", "pause", &id]);
    assert!(err.contains("invalid_transition"), "{err}");
    assert_eq!(k.json(&["sessions", "resume", &id])["status"], "resumed");
    assert_eq!(k.json(&["sessions", "pause", &id])["status"], "paused");
    assert_eq!(k.json(&["sessions", "archive", &id])["status"], "archived");
    assert_eq!(k.json(&["sessions", "resume", &id])["status"], "resumed");
    assert_eq!(k.json(&["sessions", "activate", &id])["status"], "active");
    assert_eq!(k.json(&["sessions", "archive", &id])["status"], "archived");
    let err = k.fails(&["sessions", "activate", &id]);
    assert!(err.contains("archived") && err.contains("resumed"), "{err}");

    // Research sessions need a duration and a valid schedule.
    let err = k.fails(&["sessions", "new", "r", "--type", "research"]);
    assert!(err.contains("duration_days"), "{err}");
    let err = k.fails(&[
        "sessions",
        "new",
        "r",
        "--type",
        "research",
        "--duration-days",
        "30",
        "--checkpoint-frequency",
        "61 * * * *",
    ]);
    assert!(err.contains("cron"), "{err}");
    let r = k.json(&[
        "sessions",
        "new",
        "r",
        "--type",
        "research",
        "--duration-days",
        "30",
        "--checkpoint-frequency",
        "daily",
    ]);
    assert_eq!(r["config"]["checkpoint_frequency"], "daily");
}

#[test]
fn sessions_list_filters_and_sessions_are_named_by_prefix() {
    let k = Kiln::new();
    let a = k.json(&["sessions", "new", "alpha", "--project", "p1"]);
    let b = k.json(&["sessions", "new", "beta", "--project", "p2", "--tag", "x"]);
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let all = k.json(&["sessions", "list"]);
    let ids: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![b, a], "newest first");
    let p1 = k.json(&["sessions", "list", "--project", "p1"]);
    assert_eq!(p1["items"].as_array().unwrap().len(), 1);
    assert_eq!(p1["items"][0]["id"], a);
    let tagged = k.json(&["sessions", "list", "--tag", "x"]);
    assert_eq!(tagged["items"][0]["id"], b);
    let active = k.json(&["sessions", "list", "--status", "active"]);
    assert!(active["items"].as_array().unwrap().is_empty());
    let err = k.fails(&["sessions", "list", "--status", "sleeping"]);
    assert!(err.contains("sleeping"), "{err}");

    // The human table lists both names.
    let table = k.ok(&["sessions", "list"]);
    assert!(table.starts_with("ID") && table.contains("alpha") && table.contains("beta"));

    // A unique prefix names a session; an unknown one is a clear error.
    let unique = (1..=36)
        .map(|n| &a[..n])
        .find(|p| !b.starts_with(p))
        .unwrap();
    assert_eq!(k.json(&["sessions", "show", unique])["session"]["id"], a);
    let err = k.fails(&["sessions", "show", "zzzz"]);
    assert!(err.contains("session zzzz not found"), "{err}");
    let err = k.fails(&["sessions", "show", "00000000-0000-7000-8000-000000000000"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn branches_are_created_listed_diffed_merged_and_discarded() {
    let k = Kiln::new();
    let id = k.new_session("branching");
    k.say(&id, "main", "user", "screen CsPbI3");
    let fork_point = k.say(&id, "main", "assistant", "CsPbI3 is metastable");

    let b = k.json(&["branch", "new", &id, "explore"]);
    assert_eq!(b["head"], fork_point.as_str());
    k.say(&id, "explore", "user", "try tin instead of lead");
    k.say(&id, "main", "user", "anneal at 350 C");

    let names = |all: bool| -> Vec<String> {
        let mut args = vec!["branch", "list", id.as_str()];
        if all {
            args.push("--all");
        }
        k.json(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(false), vec!["main", "explore"]);

    let d = k.json(&["branch", "diff", &id, "main", "explore"]);
    assert_eq!(d["base"], fork_point.as_str());
    let contents = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|n| n["content"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(contents(&d["only_from"]), vec!["anneal at 350 C"]);
    assert_eq!(contents(&d["only_to"]), vec!["try tin instead of lead"]);
    let human = k.ok(&["branch", "diff", &id, "main", "explore"]);
    assert!(human.contains("only on explore (1 messages)"), "{human}");

    // A branch from a node and from a checkpoint start where asked.
    let n = k.json(&[
        "branch",
        "new",
        &id,
        "from-node",
        "--from-node",
        &fork_point,
    ]);
    assert_eq!(n["head"], fork_point.as_str());
    k.ok(&["checkpoint", "new", &id, "cp", "--node", &fork_point]);
    let c = k.json(&["branch", "new", &id, "from-cp", "--from-checkpoint", "cp"]);
    assert_eq!(c["head"], fork_point.as_str());
    let err = k.fails(&["branch", "new", &id, "explore"]);
    assert!(err.contains("already_exists"), "{err}");
    let err = k.fails(&["branch", "new", &id, "x", "--from", "nope"]);
    assert!(err.contains("not found"), "{err}");

    // Merge explore into main: a merge node whose summary names what explore did.
    let m = k.json(&["branch", "merge", &id, "explore", "--into", "main"]);
    assert_eq!(m["merged"], true);
    let head = k.json(&["message", "list", &id, "--limit", "1"]);
    assert_eq!(head["items"][0]["kind"], "merge");
    assert!(
        head["items"][0]["content"]
            .as_str()
            .unwrap()
            .contains("try tin")
    );
    // Merging twice is a no-op.
    let again = k.json(&["branch", "merge", &id, "explore"]);
    assert_eq!(again["merged"], false);

    // Discard hides a branch; merging it is refused; --undo brings it back.
    let d = k.json(&["branch", "discard", &id, "from-node"]);
    assert_eq!(d["status"], "discarded");
    assert!(!names(false).contains(&"from-node".to_string()));
    assert!(names(true).contains(&"from-node".to_string()));
    let err = k.fails(&["branch", "merge", &id, "from-node"]);
    assert!(err.contains("discarded"), "{err}");
    k.ok(&["branch", "discard", &id, "from-node", "--undo"]);
    assert!(names(false).contains(&"from-node".to_string()));
    let err = k.fails(&["branch", "discard", &id, "ghost"]);
    assert!(err.contains("not found"), "{err}");
    let err = k.fails(&["branch", "merge", &id, "main", "--strategy", "coinflip"]);
    assert!(err.contains("coinflip"), "{err}");
}

#[test]
fn checkpoints_restore_without_losing_messages() {
    let k = Kiln::new();
    let id = k.new_session("checkpoints");
    k.say(&id, "main", "user", "first");
    let kept = k.say(&id, "main", "assistant", "second");
    let cp = k.json(&["checkpoint", "new", &id, "good"]);
    assert_eq!(cp["node"], kept.as_str());
    let lost = k.say(&id, "main", "user", "a wrong turn");

    let r = k.json(&["checkpoint", "restore", &id, "good"]);
    assert_eq!(r["new_head"], kept.as_str());
    assert_eq!(r["old_head"], lost.as_str());
    let saved = r["saved_as"].as_str().unwrap().to_string();
    assert!(saved.starts_with("before-restore-"));

    let msgs = k.json(&["message", "list", &id]);
    assert_eq!(msgs["items"][0]["id"], kept.as_str());

    // The old head is still reachable through the automatic checkpoint.
    let list = k.json(&["checkpoint", "list", &id]);
    let auto = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == saved.as_str())
        .unwrap();
    assert_eq!(auto["node"], lost.as_str());
    assert_eq!(auto["auto"], true);
    k.ok(&["checkpoint", "restore", &id, &saved]);
    let msgs = k.json(&["message", "list", &id]);
    assert_eq!(msgs["items"][0]["content"], "a wrong turn");
    // Restoring where the branch already is says so and saves nothing.
    let out = k.ok(&["checkpoint", "restore", &id, &saved]);
    assert!(out.contains("already at"), "{out}");

    let table = k.ok(&["checkpoint", "list", &id]);
    assert!(table.contains("good") && table.contains("auto"), "{table}");
    let err = k.fails(&["checkpoint", "restore", &id, "missing"]);
    assert!(err.contains("not found"), "{err}");
    let err = k.fails(&["checkpoint", "new", &id, "before-restore-x"]);
    assert!(err.contains("reserved"), "{err}");
    let err = k.fails(&["checkpoint", "new", &id, "good"]);
    assert!(err.contains("already_exists"), "{err}");
}

#[test]
fn export_then_import_round_trips_a_session() {
    let k = Kiln::new();
    let id = k.new_session("round trip");
    k.say(&id, "main", "user", "what is the band gap of CsPbI3?");
    k.say(&id, "main", "assistant", "about 1.7 eV");
    k.ok(&["branch", "new", &id, "side"]);
    k.say(&id, "side", "note", "check with DFT");
    k.ok(&["checkpoint", "new", &id, "answered"]);

    let file = k.path().join("export.json");
    let file_s = file.to_str().unwrap();
    let out = k.run(&["sessions", "export", &id, "--output", file_s]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(exported["session"]["id"], id.as_str());

    let new_id = k.ok(&["sessions", "import", file_s]).trim().to_string();
    assert_ne!(new_id, id);
    let again = k.json(&["sessions", "export", &new_id]);
    assert_eq!(again["session"]["name"], "round trip");
    for key in ["nodes", "branches", "checkpoints"] {
        assert_eq!(
            again[key].as_array().unwrap().len(),
            exported[key].as_array().unwrap().len(),
            "{key}"
        );
    }
    let side = k.json(&["message", "list", &new_id, "--branch", "side"]);
    assert_eq!(side["items"][0]["content"], "check with DFT");

    let md = k.ok(&["sessions", "export", &id, "--format", "markdown"]);
    assert!(
        md.contains("round trip") && md.contains("about 1.7 eV"),
        "{md}"
    );
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    let k = Kiln::new();
    let count = |k: &Kiln| {
        k.json(&["sessions", "list"])["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let id = k.new_session("source");

    let garbage = k.path().join("garbage.json");
    std::fs::write(&garbage, "{ not json").unwrap();
    let err = k.fails(&["sessions", "import", garbage.to_str().unwrap()]);
    assert!(err.contains("is not valid JSON"), "{err}");

    let wrong = k.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"hello": "world"}"#).unwrap();
    let err = k.fails(&["sessions", "import", wrong.to_str().unwrap()]);
    assert!(err.contains("not a Kiln session export"), "{err}");

    // An export whose node points at a missing parent is inconsistent.
    let mut doc = k.json(&["sessions", "export", &id]);
    k.say(&id, "main", "user", "x");
    let mut doc2 = k.json(&["sessions", "export", &id]);
    if let Some(node) = doc2["nodes"].as_array_mut().unwrap().last_mut() {
        node["parent_id"] = Value::String("01000000-0000-7000-8000-000000000000".into());
    }
    let broken = k.path().join("broken.json");
    std::fs::write(&broken, doc2.to_string()).unwrap();
    let err = k.fails(&["sessions", "import", broken.to_str().unwrap()]);
    assert!(err.contains("unknown parent 01000000-"), "{err}");
    doc["format"] = Value::String("something-else".into());
    std::fs::write(&broken, doc.to_string()).unwrap();
    let err = k.fails(&["sessions", "import", broken.to_str().unwrap()]);
    assert!(err.contains("format is `something-else`"), "{err}");
    assert_eq!(count(&k), 1, "a failed import writes nothing");

    let err = k.fails(&["sessions", "import", "/nonexistent/file.json"]);
    assert!(err.contains("could not read"), "{err}");
    let err = k.fails(&["message", "add", "ffffffff", "hi"]);
    assert!(err.contains("not found"), "{err}");
    let err = k.fails(&["sessions", "new", "   "]);
    assert!(err.contains("name must not be empty"), "{err}");
    let err = k.fails(&["sessions", "new", "m", "--metadata", "[1,2]"]);
    assert!(err.contains("metadata"), "{err}");
    let err = k.fails(&["message", "add", &id, "hi", "--role", "robot"]);
    assert!(err.contains("robot"), "{err}");
    let err = k.fails(&["message", "add", &id, "hi", "--expected-head", "abc"]);
    assert!(err.contains("head_moved"), "{err}");
    let cfg = k.path().join("bad.toml");
    std::fs::write(&cfg, "[storage]\nbusy = 3\n").unwrap();
    let err = k.fails(&["--config", cfg.to_str().unwrap(), "sessions", "list"]);
    assert!(err.contains("busy"), "{err}");
}

#[test]
fn bench_compare_prints_the_json_row_the_python_script_reads() {
    let k = Kiln::new();
    let out = k.ok(&[
        "bench",
        "compare",
        "--turns",
        "30",
        "--reads",
        "5",
        "--read-limit",
        "20",
        "--fork-at",
        "10",
        "--seed",
        "42",
        "--json",
    ]);
    // The script takes the last stdout line starting with `{`.
    let line = out.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let row: Value = serde_json::from_str(line).unwrap();
    assert_eq!(row["turns"], 30);
    assert_eq!(row["fork_at"], 10);
    assert_eq!(row["journal_mode"], "wal");
    assert_eq!(row["synchronous"], "normal");
    for key in [
        "append_per_turn_us",
        "append_per_message_us",
        "read_per_op_us",
        "fork_s",
    ] {
        assert!(row[key].as_f64().unwrap() > 0.0, "{key}");
    }
    assert!(row["db_bytes"].as_u64().unwrap() > row["content_bytes"].as_u64().unwrap());
    // A used data directory is refused rather than measured twice.
    let err = k.fails(&["bench", "compare", "--turns", "5"]);
    assert!(err.contains("fresh --data-dir"), "{err}");
    let err = k.fails(&["bench", "compare", "--turns", "5", "--fork-at", "6"]);
    assert!(err.contains("--fork-at"), "{err}");
}

#[test]
fn bench_tree_times_every_operation_at_every_size() {
    let k = Kiln::new();
    let row = k.json(&["bench", "tree", "--sizes", "20,40", "--iterations", "2"]);
    let results = row["results"].as_object().unwrap();
    assert_eq!(results.len(), 7);
    for (op, per_size) in results {
        for size in ["20", "40"] {
            assert!(
                per_size[size]["median_us"].as_f64().unwrap() > 0.0,
                "{op} at {size}"
            );
        }
    }
    let err = k.fails(&["bench", "tree", "--sizes", "5"]);
    assert!(err.contains("between 10"), "{err}");
}

#[test]
fn search_finds_messages_and_reindex_rebuilds_with_progress() {
    let k = Kiln::new();
    let id = k.new_session("perovskites");
    k.say(
        &id,
        "main",
        "user",
        "CsPbI3 perovskite degrades in humid air",
    );
    k.say(
        &id,
        "main",
        "assistant",
        "Encapsulation slows perovskite degradation",
    );
    let page = k.json(&["search", "perovskite"]);
    let hits = page["items"][0]["hits"].as_array().unwrap();
    assert!(hits.len() >= 2, "{page}");
    assert!(page.to_string().contains("<b>perovskite</b>"), "{page}");
    let text = k.ok(&["search", "humid", "--element", "Cs"]);
    assert!(
        text.contains("perovskites") && text.contains("humid"),
        "{text}"
    );
    assert!(
        !text.contains('\x1b'),
        "no terminal escapes when piped: {text:?}"
    );
    assert!(
        k.ok(&["search", "nothing-like-this"])
            .contains("no matches")
    );

    let out = k.run(&["search", "reindex"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("indexed"), "{stdout}");
    assert!(
        stderr.contains("[###") && stderr.contains("nodes"),
        "{stderr}"
    );
    assert_eq!(
        k.json(&["search", "perovskite"])["items"][0]["hits"],
        page["items"][0]["hits"]
    );

    let err = k.fails(&["search", "\"unclosed"]);
    assert!(err.contains("never closed"), "{err}");
}

#[test]
fn bench_search_measures_both_engines_on_one_corpus() {
    let k = Kiln::new();
    let out = k.json(&[
        "bench",
        "search",
        "--nodes",
        "600",
        "--sessions",
        "30",
        "--queries",
        "3",
    ]);
    assert_eq!(out["nodes"], 600);
    assert!(out["index_nodes_per_s"].as_f64().unwrap() > 0.0, "{out}");
    assert!(out["fts5_nodes_per_s"].as_f64().unwrap() > 0.0, "{out}");
    for q in ["single_term", "phrase", "filtered", "fuzzy"] {
        let r = &out["queries"][q];
        assert_eq!(r["kiln"]["runs"], 3, "{q}: {r}");
        assert!(r["kiln"]["p99_ms"].as_f64().unwrap() >= r["kiln"]["p50_ms"].as_f64().unwrap());
        assert!(r["fts5"]["p50_ms"].as_f64().is_some(), "{q}: {r}");
    }
    // The corpus has the words: both engines find the single term.
    assert!(
        out["queries"]["single_term"]["kiln_sessions_on_page"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(out["queries"]["single_term"]["fts5_rows"].as_u64().unwrap() > 0);
    assert!(out["visible_after_write_ms"].as_f64().unwrap() < 1000.0);
}

#[test]
fn admin_backup_then_restore_brings_back_the_old_state_and_keeps_the_new() {
    let k = Kiln::new();
    let id = k.new_session("to back up");
    k.say(&id, "main", "user", "before the backup");
    let file = k.ok(&["admin", "backup"]).trim().to_string();
    assert!(
        file.contains("backups") && std::path::Path::new(&file).exists(),
        "{file}"
    );
    k.say(&id, "main", "user", "after the backup");
    assert!(k.ok(&["search", "after"]).contains("to back up"));

    let out = k.ok(&["admin", "restore", &file]);
    assert!(out.contains("restored"), "{out}");
    let msgs = k.json(&["message", "list", &id]);
    assert_eq!(msgs["items"][0]["content"], "before the backup");
    // The search index was rebuilt from the restored database.
    assert!(k.ok(&["search", "after"]).contains("no matches"));
    // The replaced database is kept beside it.
    let kept = std::fs::read_dir(k.path().join("data"))
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("kiln.db.before-restore-")
        });
    assert!(kept);

    let junk = k.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    let err = k.fails(&["admin", "restore", junk.to_str().unwrap()]);
    assert!(err.contains("not a Kiln database"), "{err}");
    assert_eq!(
        k.json(&["message", "list", &id])["items"][0]["content"],
        "before the backup"
    );
}

/// Terminal control characters in what people wrote never reach the reader's terminal: a
/// message that would retitle the window, clear the screen and hide text prints as its words.
#[test]
fn printed_names_and_content_carry_no_terminal_controls() {
    let k = Kiln::new();
    let id = k.new_session("escapes");
    let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{1b}[8mhidden\u{1b}[0m\r\u{9b}31m olivine visible";
    k.ok(&["message", "add", &id, hostile]);
    for args in [
        vec!["message", "list", id.as_str()],
        vec!["sessions", "show", id.as_str()],
        vec!["search", "olivine"],
    ] {
        let out = k.ok(&args);
        if args[0] != "sessions" {
            assert!(out.contains("visible"), "{args:?}: {out}");
        }
        assert!(
            !out.chars()
                .any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{9b}'),
            "{args:?} printed a control character: {out:?}"
        );
    }
    // JSON keeps the exact text (escaped by JSON itself) for programs.
    let list = k.json(&["message", "list", &id]);
    assert!(list.to_string().contains("\\u001b]0;pwned"), "{list}");
}

#[test]
fn batch_runs_items_and_csv_rows_shows_them_and_refuses_bad_input() {
    let k = Kiln::new();
    let id = k.new_session("screen");
    let out = k.ok(&[
        "batch",
        "run",
        &id,
        "--request",
        "Analyse {formula}",
        "--item",
        "formula=LiFePO4",
        "--item",
        "formula=LiCoO2",
    ]);
    assert!(out.contains("2 done, 0 failed, 0 cancelled of 2"), "{out}");
    assert!(out.contains("LiCoO2: molar mass 97.871 g/mol"), "{out}");
    let csv_file = k.path().join("items.csv");
    std::fs::write(&csv_file, "formula,note\nNaCl,salt\nKCl,\"potash, too\"\n").unwrap();
    let ran = k.json(&[
        "batch",
        "run",
        &id,
        "--request",
        "Analyse {formula} ({note})",
        "--csv",
        csv_file.to_str().unwrap(),
        "--shared",
    ]);
    assert_eq!(ran["status"], "done");
    assert_eq!(ran["items"][1]["request"], "Analyse KCl (potash, too)");
    let listed = k.json(&["batch", "list", &id]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let first = listed[1]["id"].as_str().unwrap();
    let csv = k.ok(&["batch", "show", &id, first, "--csv"]);
    assert!(
        csv.starts_with("item,formula,status,branch,answer"),
        "{csv}"
    );
    assert!(csv.contains(",97.871,"), "{csv}");
    // Bad input: a clear error, and nothing stored.
    let err = k.fails(&[
        "batch",
        "run",
        &id,
        "--request",
        "Analyse {formula}",
        "--item",
        "formula",
    ]);
    assert!(err.contains("field=value"), "{err}");
    let err = k.fails(&[
        "batch",
        "run",
        &id,
        "--request",
        "Analyse {formula}",
        "--item",
        "f=NaCl",
    ]);
    assert!(err.contains("item 1"), "{err}");
    let err = k.fails(&["batch", "cancel", &id, first]);
    assert!(err.contains("batch_finished"), "{err}");
    assert_eq!(k.json(&["batch", "list", &id]).as_array().unwrap().len(), 2);
    assert!(k.ok(&["batch", "resume"]).contains("no unfinished batches"));
}
