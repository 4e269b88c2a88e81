//! The job scheduler of `kiln serve` (tokio-cron-scheduler): the lifecycle jobs and backups of
//! `kiln_session::jobs` on the schedules of the `[jobs]` configuration. A run that fails is
//! logged and the next tick retries; one job failing never stops the others.

use kiln_session::{JobsConfig, SessionManager};
use tokio_cron_scheduler::{Job, JobScheduler};

/// Starts the scheduler; it runs until the returned handle is shut down or dropped.
pub async fn start(mgr: SessionManager, cfg: JobsConfig) -> Result<JobScheduler, String> {
    let sched = JobScheduler::new().await.map_err(|e| e.to_string())?;
    // Unique per process, so leases tell processes apart.
    let holder = format!("kiln-{}-{}", std::process::id(), kiln_types::NodeId::new());
    let tick = {
        let (mgr, job_cfg, holder) = (mgr.clone(), cfg.clone(), holder.clone());
        Job::new_async(cfg.tick.as_str(), move |_, _| {
            let (mgr, cfg, holder) = (mgr.clone(), job_cfg.clone(), holder.clone());
            Box::pin(async move {
                let r = mgr.run_jobs(&cfg, chrono::Utc::now(), &holder).await;
                tracing::debug!(report = ?r, "lifecycle jobs ran");
            })
        })
        .map_err(|e| format!("jobs.tick `{}`: {e}", cfg.tick))?
    };
    sched.add(tick).await.map_err(|e| e.to_string())?;
    if !cfg.digest.trim().is_empty() {
        let (mgr, holder) = (mgr.clone(), holder.clone());
        let digest = Job::new_async(cfg.digest.as_str(), move |_, _| {
            let (mgr, holder) = (mgr.clone(), holder.clone());
            Box::pin(async move {
                let r = mgr.run_digests(chrono::Utc::now(), &holder).await;
                tracing::info!(written = r.written, "weekly digests written");
            })
        })
        .map_err(|e| format!("jobs.digest `{}`: {e}", cfg.digest))?;
        sched.add(digest).await.map_err(|e| e.to_string())?;
    }
    // PostgreSQL is backed up by the database's own tools, not by `VACUUM INTO` copies.
    if cfg.backup_keep > 0 && !mgr.db().is_postgres() {
        let keep = cfg.backup_keep;
        let backup = Job::new_async(cfg.backup.as_str(), move |_, _| {
            let mgr = mgr.clone();
            Box::pin(async move {
                let dir = mgr.backup_dir();
                match mgr.backup(&dir, chrono::Utc::now(), keep).await {
                    Ok(file) => tracing::info!(file = %file.display(), "backup written"),
                    Err(e) => tracing::warn!(code = e.code, "backup failed: {}", e.message),
                }
            })
        })
        .map_err(|e| format!("jobs.backup `{}`: {e}", cfg.backup))?;
        sched.add(backup).await.map_err(|e| e.to_string())?;
    }
    sched.start().await.map_err(|e| e.to_string())?;
    Ok(sched)
}
