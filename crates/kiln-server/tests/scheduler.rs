//! The scheduler starts on valid schedules and refuses invalid ones (the jobs themselves are
//! tested with an injected clock in kiln-session).

use kiln_session::{Config, JobsConfig, SessionManager};

#[tokio::test]
async fn the_scheduler_starts_on_valid_schedules_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let db = kiln_db::testing::Scratch::for_backend();
    if let Some(db) = &db {
        config.database.url = db.url.clone();
    }
    let mgr = SessionManager::open(&config).await.unwrap();
    let mut sched = kiln_server::jobs::start(mgr.clone(), JobsConfig::default())
        .await
        .unwrap();
    sched.shutdown().await.unwrap();
    let bad = JobsConfig {
        tick: "every minute".into(),
        ..JobsConfig::default()
    };
    let Err(err) = kiln_server::jobs::start(mgr, bad).await else {
        panic!("an invalid schedule was accepted");
    };
    assert!(err.contains("jobs.tick"), "{err}");
}
