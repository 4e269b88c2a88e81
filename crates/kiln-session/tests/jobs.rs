//! Scheduled jobs with an injected clock (no sleeping): research checkpoints and archiving,
//! idle pausing, archiving long-paused sessions, purging dead share links, leases between two
//! processes, and backups with retention.

mod common;

use chrono::{Duration, Utc};
use common::{env, msg};
use kiln_session::{CreateSession, CreateShare, JobsConfig};
use kiln_types::CheckpointFrequency;
use kiln_types::{Role, SessionStatus, SessionType};

/// A research session owned by alice.
async fn research(
    e: &common::Env,
    name: &str,
    days: u32,
    every: CheckpointFrequency,
) -> kiln_session::Session {
    e.mgr
        .create_session(
            &e.alice,
            CreateSession {
                name: name.into(),
                session_type: SessionType::Research,
                duration_days: Some(days),
                checkpoint_frequency: Some(every),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn research_sessions_are_checkpointed_then_archived_with_a_final_summary() {
    let e = env().await;
    let cfg = JobsConfig::default();
    let s = research(&e, "long study", 2, CheckpointFrequency::Hourly).await;
    e.mgr
        .append_event(
            &e.alice,
            &s.id,
            "main",
            common::ev(serde_json::json!(
            {"kind": "discovery", "type": "stability_insight", "description": "Doping helps"})),
        )
        .await
        .unwrap();
    let t0 = Utc::now();
    let r = e.mgr.run_jobs(&cfg, t0 + Duration::minutes(30), "A").await;
    assert_eq!(r.checkpoints, 0, "{r:?}");
    let r = e.mgr.run_jobs(&cfg, t0 + Duration::minutes(61), "A").await;
    assert_eq!(r.checkpoints, 1, "{r:?}");
    assert!(r.errors.is_empty(), "{r:?}");
    // Not due again until an hour after that checkpoint.
    let r = e.mgr.run_jobs(&cfg, t0 + Duration::minutes(90), "A").await;
    assert_eq!(r.checkpoints, 0, "{r:?}");
    let cps = e.mgr.checkpoints(&e.alice, &s.id).await.unwrap();
    assert_eq!(
        cps.iter()
            .filter(|c| c.auto && c.name.starts_with("auto-"))
            .count(),
        1
    );

    // Past its duration: a final summary, then archived.
    let r = e
        .mgr
        .run_jobs(&cfg, t0 + Duration::days(2) + Duration::minutes(1), "A")
        .await;
    assert_eq!(r.research_archived, 1, "{r:?}");
    let after = e.mgr.session(&e.alice, &s.id).await.unwrap();
    assert_eq!(after.status, SessionStatus::Archived);
    let last = e
        .mgr
        .messages(&e.alice, &s.id, "main", Some(1), None)
        .await
        .unwrap()
        .items;
    assert!(
        last[0].content.starts_with("Final summary: 1 discoveries"),
        "{:?}",
        last[0]
    );
    assert!(last[0].content.contains("Doping helps"));
}

#[tokio::test]
async fn idle_sessions_pause_and_long_paused_ones_archive() {
    let e = env().await;
    let cfg = JobsConfig {
        idle_pause_minutes: 60,
        paused_archive_days: 7,
        ..JobsConfig::default()
    };
    let s = e.session("chatty").await;
    e.mgr
        .append_message(&e.alice, &s, "main", msg(Role::User, "hello"))
        .await
        .unwrap();
    let now = Utc::now();
    let r = e.mgr.run_jobs(&cfg, now + Duration::minutes(30), "A").await;
    assert_eq!(r.idle_paused, 0);
    let r = e.mgr.run_jobs(&cfg, now + Duration::minutes(61), "A").await;
    assert_eq!(r.idle_paused, 1, "{r:?}");
    let st = e.mgr.session(&e.alice, &s).await.unwrap().status;
    assert_eq!(st, SessionStatus::Paused);
    let events = e.mgr.session_events(&e.alice, &s).await.unwrap();
    assert_eq!(events.last().unwrap().actor, "scheduler");
    let r = e.mgr.run_jobs(&cfg, now + Duration::days(6), "A").await;
    assert_eq!(r.paused_archived, 0);
    let r = e.mgr.run_jobs(&cfg, now + Duration::days(8), "A").await;
    assert_eq!(r.paused_archived, 1, "{r:?}");
    assert_eq!(
        e.mgr.session(&e.alice, &s).await.unwrap().status,
        SessionStatus::Archived
    );
}

#[tokio::test]
async fn leases_keep_two_processes_off_the_same_session_and_dead_links_are_purged() {
    let e = env().await;
    let cfg = JobsConfig::default();
    let s = research(&e, "shared job", 30, CheckpointFrequency::Daily).await;
    let due = Utc::now() + Duration::days(1) + Duration::minutes(1);
    // Process B holds the checkpoint lease on this session (it is mid-run).
    let until = (due + Duration::minutes(5)).to_rfc3339();
    assert!(
        e.mgr
            .db()
            .try_lease("checkpoint", &s.id, "B", &due.to_rfc3339(), &until)
            .await
            .unwrap()
    );
    let r = e.mgr.run_jobs(&cfg, due, "A").await;
    assert_eq!((r.checkpoints, r.skipped), (0, 1), "{r:?}");
    // Once the lease has expired, A takes over.
    let r = e.mgr.run_jobs(&cfg, due + Duration::minutes(6), "A").await;
    assert_eq!(r.checkpoints, 1, "{r:?}");

    let share = e
        .mgr
        .create_share(
            &e.alice,
            &s.id,
            CreateShare {
                expires_in_days: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = e.mgr.run_jobs(&cfg, Utc::now(), "A").await;
    assert_eq!(r.shares_purged, 0);
    let r = e
        .mgr
        .run_jobs(&cfg, Utc::now() + Duration::days(2), "A")
        .await;
    assert_eq!(r.shares_purged, 1);
    assert_eq!(
        e.mgr.open_share(&share.token, None).await.unwrap_err().code,
        "share_not_found"
    );
}

#[tokio::test]
async fn backups_are_consistent_copies_with_retention() {
    let e = env().await;
    let s = e.session("backed up").await;
    e.mgr
        .append_message(&e.alice, &s, "main", msg(Role::User, "keep me"))
        .await
        .unwrap();
    let dir = e.dir.path().join("backups");
    let t0 = Utc::now();
    if common::on_postgres() {
        // PostgreSQL is backed up with its own tools; the job says so and writes nothing.
        let err = e.mgr.backup(&dir, t0, 2).await.unwrap_err();
        assert_eq!(err.code, "invalid_input");
        assert!(err.message.contains("pg_dump"), "{}", err.message);
        assert!(!dir.exists());
        return;
    }
    let mut files = Vec::new();
    for i in 0..3 {
        files.push(
            e.mgr
                .backup(&dir, t0 + Duration::seconds(i), 2)
                .await
                .unwrap(),
        );
    }
    let kept: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|d| d.unwrap().path())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(!files[0].exists() && files[2].exists());
    // The newest backup opens as a store holding the message.
    let mut config = common::config(e.dir.path(), 4);
    let restored_dir = e.dir.path().join("restored");
    std::fs::create_dir_all(&restored_dir).unwrap();
    std::fs::copy(&files[2], restored_dir.join("kiln.db")).unwrap();
    config.storage.data_dir = restored_dir;
    let m = kiln_session::SessionManager::open(&config).await.unwrap();
    let page = m
        .messages(&e.alice, &s, "main", Some(5), None)
        .await
        .unwrap();
    assert_eq!(page.items[0].content, "keep me");
}

#[tokio::test]
async fn a_failing_job_on_one_session_spares_the_others_and_is_retried_next_tick() {
    let e = env().await;
    let cfg = JobsConfig::default();
    let mut ids = Vec::new();
    for name in ["broken", "healthy"] {
        let s = research(&e, name, 30, CheckpointFrequency::Hourly).await;
        ids.push(s.id);
    }
    // Point one session's default branch at a branch that does not exist.
    let mut raw = e.raw().await;
    raw.exec(
        "UPDATE sessions SET default_branch = 'gone' WHERE id = $1",
        &[(&ids[0]).into()],
    )
    .await;
    let t = Utc::now() + Duration::minutes(61);
    let r = e.mgr.run_jobs(&cfg, t, "A").await;
    assert_eq!(
        r.checkpoints, 1,
        "the healthy session still gets its checkpoint: {r:?}"
    );
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].contains(&ids[0]), "{r:?}");
    // Mended, the next tick retries and succeeds; the healthy one is not due again.
    raw.exec(
        "UPDATE sessions SET default_branch = 'main' WHERE id = $1",
        &[(&ids[0]).into()],
    )
    .await;
    let r = e.mgr.run_jobs(&cfg, t + Duration::minutes(1), "A").await;
    assert_eq!((r.checkpoints, r.errors.len()), (1, 0), "{r:?}");
}
