//! `kiln import-dreamlake` on the hand-written fixture folder (tests/fixtures/dreamlake): the
//! binary's report, then the session read back through the notebook's own functions.

use std::process::Command;
use std::sync::Arc;

use kiln_agent::tools::notebook::logs::LogFilter;
use kiln_agent::tools::notebook::tracks::TrackRange;
use kiln_agent::{Agent, Registry};
use kiln_llm::OfflinePlanner;
use kiln_session::{Config, SessionManager};
use serde_json::Value;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/dreamlake/cathodes/lfp-anneal-sweep"
);

fn import(data: &std::path::Path, extra: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .arg("--data-dir")
        .arg(data)
        .args(["import-dreamlake", FIXTURE, "--json"])
        .args(extra)
        .env_remove("KILN_STORAGE__DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_dreamlake_folder_becomes_a_session_with_its_notebook() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let report = import(&data, &[]);
    assert_eq!(report["created"], true);
    assert_eq!(report["project"], "cathodes");
    assert_eq!(report["name"], "lfp-anneal-sweep");
    assert_eq!(report["params"], 8);
    assert_eq!(report["log_lines"], 7, "the cut line is skipped");
    assert_eq!(report["tracks"]["train/loss"], 40);
    assert_eq!(report["tracks"]["xrd/peak"], 5);
    assert_eq!(report["files"], 2, "the deleted file is not imported");
    let skipped = report["skipped"].to_string();
    for what in [
        "not JSON",
        "deleted in Dreamlake",
        "`phase`",
        "`pattern`",
        "session metadata",
    ] {
        assert!(skipped.contains(what), "{what}: {skipped}");
    }

    let mut config = Config::default();
    config.storage.data_dir = data.clone();
    let mgr = SessionManager::open(&config).await.unwrap();
    let caller = mgr.local_caller(None).await.unwrap();
    let session = report["session"].as_str().unwrap().to_owned();
    let s = mgr.session(&caller, &session).await.unwrap();
    assert_eq!(s.folder, "/experiments/2026/jan");
    assert_eq!(s.tags, ["lfp", "anneal", "sweep"]);
    let agent = Agent::new(
        mgr.clone(),
        Arc::new(OfflinePlanner::new()),
        Registry::builtin(),
        config.agent.clone(),
    );
    let params = agent
        .notebook_params(&caller, &session, "main", false)
        .await
        .unwrap();
    assert_eq!(params["params"]["anneal"]["temperature_c"], 650);
    assert_eq!(params["params"]["model"]["batch_size"], 64);
    let warn = agent
        .notebook_logs(
            &caller,
            &session,
            "main",
            &LogFilter {
                level: Some("warn".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(warn["total"], 3);
    assert_eq!(warn["lines"][0]["at"], "2026-01-12T09:31:05.002000Z");
    assert_eq!(warn["lines"][0]["metadata"]["flow_sccm"], 74.5);
    let stats = agent
        .notebook_track_stats(&caller, &session, "main", "train/loss")
        .await
        .unwrap();
    assert_eq!(stats["fields"]["step"]["max"], 39.0);
    assert_eq!(stats["fields"]["epoch"]["last"], 3.0);
    let xrd = agent
        .notebook_track(&caller, &session, "main", "xrd/peak", TrackRange::default())
        .await
        .unwrap();
    assert_eq!(xrd["points"][2]["two_theta"], 35.09);
    assert!(xrd["points"][2].get("phase").is_none());
    let files = agent
        .notebook_files(&caller, &session, "main")
        .await
        .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["results/capacity.csv", "notes.md"]);
    let (csv, path) = agent
        .notebook_file(&caller, &session, "main", &files[0].id)
        .await
        .unwrap();
    assert_eq!(csv.content_type, "text/csv");
    let path = path.expect("the imported file's content is stored");
    assert!(std::fs::read_to_string(path).unwrap().contains("650,158.3"));
    mgr.close().await;

    // Importing again adds to the same session (Dreamlake's upsert), it does not make another.
    let again = import(&data, &[]);
    assert_eq!(again["created"], false);
    assert_eq!(again["session"], session.as_str());
}
