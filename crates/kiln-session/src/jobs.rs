//! Scheduled jobs, as functions of the time they run at (tests pass a clock; the server's
//! scheduler passes `Utc::now()`): automatic checkpoints of research sessions, archiving
//! research sessions past their duration (with a final summary), pausing idle sessions,
//! archiving long-paused ones, purging dead share links, and SQLite online backups.
//!
//! Each job on each session runs under a lease (`job_leases`), so two processes on one data
//! directory never run it twice; a failure is logged and counted, the other jobs and sessions
//! go on, and the next tick retries.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};
use futures::FutureExt as _;
use kiln_db::{NewNode, Session, stamp};
use kiln_types::{CheckpointFrequency, NodeKind, SessionStatus};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, SessionManager};

/// The `[jobs]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the jobs in `kiln serve`.
    pub enabled: bool,
    /// When the lifecycle jobs run (cron, seconds first): checkpoints, archiving, pausing,
    /// purging share links.
    pub tick: String,
    /// When a backup is taken (cron, seconds first).
    pub backup: String,
    /// When the weekly digests are written (cron, seconds first; empty: never).
    pub digest: String,
    /// Active sessions idle this long are paused (0: never).
    pub idle_pause_minutes: u32,
    /// Sessions paused this long are archived (0: never).
    pub paused_archive_days: u32,
    /// Backups kept in `<data_dir>/backups` (the oldest go first; 0: no scheduled backups).
    pub backup_keep: u32,
    /// How long a job may hold a session before another process may take it over.
    pub lease_seconds: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tick: "0 * * * * *".into(),
            backup: "0 30 3 * * *".into(),
            digest: "0 0 7 * * Mon".into(),
            idle_pause_minutes: 120,
            paused_archive_days: 30,
            backup_keep: 7,
            lease_seconds: 300,
        }
    }
}

/// What one run of the lifecycle jobs did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobReport {
    pub checkpoints: usize,
    pub research_archived: usize,
    pub idle_paused: usize,
    pub paused_archived: usize,
    pub shares_purged: u64,
    /// Imports deleted because their process stopped before the last chunk.
    pub imports_purged: usize,
    /// Sessions another process held the lease on.
    pub skipped: usize,
    /// Failures (logged; retried next tick).
    pub errors: Vec<String>,
}

/// Whether a session is due for a lifecycle step.
type DueFuture<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool>> + Send + 'a>>;

/// The scheduler's actor name in session events and the audit log.
const ACTOR: &str = "scheduler";

fn parse(t: &str) -> Option<DateTime<Utc>> {
    t.parse().ok()
}

/// `t + d`, or `None` past the calendar's end: stored values are never trusted to be sane.
fn add(t: DateTime<Utc>, d: Option<TimeDelta>) -> Option<DateTime<Utc>> {
    t.checked_add_signed(d?)
}

/// `t - d`, or `None` past the calendar's start.
fn sub(t: DateTime<Utc>, d: Option<TimeDelta>) -> Option<DateTime<Utc>> {
    t.checked_sub_signed(d?)
}

/// Whether a checkpoint is due at `now`, the last one (or the session's start) being `since`.
fn checkpoint_due(freq: &CheckpointFrequency, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    match freq {
        CheckpointFrequency::Hourly => {
            add(since, TimeDelta::try_hours(1)).is_some_and(|t| t <= now)
        }
        CheckpointFrequency::Daily => add(since, TimeDelta::try_days(1)).is_some_and(|t| t <= now),
        CheckpointFrequency::Cron(expr) => {
            use croner::parser::{CronParser, Seconds};
            CronParser::builder()
                .seconds(Seconds::Optional)
                .build()
                .parse(expr)
                .ok()
                .and_then(|c| c.find_next_occurrence(&since, false).ok())
                .is_some_and(|next| next <= now)
        }
    }
}

/// Runs one session's step so that even a panic (a bug meeting a value nobody foresaw) is that
/// session's error: the other sessions' jobs still run.
async fn isolated<T>(step: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    match std::panic::AssertUnwindSafe(step).catch_unwind().await {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(Error::internal(format!("the job panicked: {what}")))
        }
    }
}

impl SessionManager {
    /// Runs the lifecycle jobs once, as of `now`, as process `holder`.
    pub async fn run_jobs(&self, cfg: &JobsConfig, now: DateTime<Utc>, holder: &str) -> JobReport {
        let mut r = JobReport::default();
        self.research_jobs(cfg, now, holder, &mut r).await;
        match self.db.purge_stale_imports(&stamp(now)).await {
            Ok(n) => r.imports_purged = n,
            Err(e) => r.errors.push(format!("purge_stale_imports: {e}")),
        }
        if cfg.idle_pause_minutes > 0
            && let Some(cutoff) = sub(
                now,
                TimeDelta::try_minutes(i64::from(cfg.idle_pause_minutes)),
            )
        {
            self.lifecycle_job(
                cfg,
                now,
                holder,
                "pause_idle",
                SessionStatus::Active,
                &mut r,
                |m, s| {
                    Box::pin(async move {
                        let last = m.db.last_activity(&s.id).await?;
                        Ok(parse(&last).is_some_and(|t| t < cutoff))
                    })
                },
            )
            .await;
        }
        if cfg.paused_archive_days > 0
            && let Some(cutoff) = sub(now, TimeDelta::try_days(i64::from(cfg.paused_archive_days)))
        {
            self.lifecycle_job(
                cfg,
                now,
                holder,
                "archive_paused",
                SessionStatus::Paused,
                &mut r,
                |m, s| {
                    Box::pin(async move {
                        let since = m.db.entered_status_at(&s.id, "paused").await?;
                        Ok(since.as_deref().and_then(parse).is_some_and(|t| t < cutoff))
                    })
                },
            )
            .await;
        }
        match self.db.purge_shares(&stamp(now)).await {
            Ok(n) => r.shares_purged = n,
            Err(e) => r.errors.push(format!("purge_shares: {e}")),
        }
        for e in &r.errors {
            tracing::warn!(error = %e, "scheduled job failed; retrying next tick");
        }
        r
    }

    /// Takes the lease on `(job, session)`; `false` if another process holds it.
    async fn lease(
        &self,
        cfg: &JobsConfig,
        job: &str,
        s: &str,
        holder: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let until = add(
            now,
            TimeDelta::try_seconds(i64::from(cfg.lease_seconds.max(1))),
        )
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Ok(self
            .db
            .try_lease(job, s, holder, &stamp(now), &stamp(until))
            .await?)
    }

    /// Pauses or archives the sessions in `from` that `due` picks.
    #[allow(clippy::too_many_arguments)]
    async fn lifecycle_job<F>(
        &self,
        cfg: &JobsConfig,
        now: DateTime<Utc>,
        holder: &str,
        job: &str,
        from: SessionStatus,
        r: &mut JobReport,
        due: F,
    ) where
        F: for<'a> Fn(&'a SessionManager, &'a Session) -> DueFuture<'a>,
    {
        let to = if from == SessionStatus::Active {
            SessionStatus::Paused
        } else {
            SessionStatus::Archived
        };
        let sessions = match self.db.sessions_with_status(&[from.as_str()], None).await {
            Ok(s) => s,
            Err(e) => {
                r.errors.push(format!("{job}: {e}"));
                return;
            }
        };
        for (id, s) in sessions {
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    r.errors
                        .push(format!("{job} {id}: unreadable session: {e}"));
                    continue;
                }
            };
            let step = async {
                if !due(self, &s).await? {
                    return Ok(false);
                }
                if !self.lease(cfg, job, &s.id, holder, now).await? {
                    return Ok::<_, Error>(false);
                }
                let reason = if to == SessionStatus::Paused {
                    "idle"
                } else {
                    "paused too long"
                };
                self.db.set_status(&s.id, to, ACTOR, reason).await?;
                Ok(true)
            };
            match isolated(step).await {
                Ok(true) if to == SessionStatus::Paused => r.idle_paused += 1,
                Ok(true) => r.paused_archived += 1,
                Ok(false) => {}
                Err(e) => r.errors.push(format!("{job} {}: {}", s.id, e.message)),
            }
        }
    }

    /// Automatic checkpoints, and archiving research sessions past their duration.
    async fn research_jobs(
        &self,
        cfg: &JobsConfig,
        now: DateTime<Utc>,
        holder: &str,
        r: &mut JobReport,
    ) {
        let sessions = match self
            .db
            .sessions_with_status(
                &["created", "active", "paused", "resumed"],
                Some("research"),
            )
            .await
        {
            Ok(s) => s,
            Err(e) => {
                r.errors.push(format!("research jobs: {e}"));
                return;
            }
        };
        for (id, s) in sessions {
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    r.errors
                        .push(format!("research {id}: unreadable session: {e}"));
                    continue;
                }
            };
            let outcome = async {
                let created = parse(&s.created_at).unwrap_or(now);
                // A duration past the calendar's end never falls due.
                let over = s.config.duration_days.is_some_and(|d| {
                    add(created, TimeDelta::try_days(i64::from(d))).is_some_and(|end| end <= now)
                });
                if over {
                    if !self
                        .lease(cfg, "archive_research", &s.id, holder, now)
                        .await?
                    {
                        return Ok::<_, Error>((false, false, true));
                    }
                    self.final_summary(&s).await?;
                    self.db
                        .set_status(
                            &s.id,
                            SessionStatus::Archived,
                            ACTOR,
                            "research duration over",
                        )
                        .await?;
                    return Ok((false, true, false));
                }
                let Some(freq) = &s.config.checkpoint_frequency else {
                    return Ok((false, false, false));
                };
                // The time is in the name (`auto-%Y%m%dT%H%M%SZ`), as the job's clock had it.
                let since = self
                    .db
                    .last_auto_checkpoint(&s.id)
                    .await?
                    .and_then(|n| {
                        chrono::NaiveDateTime::parse_from_str(&n, "auto-%Y%m%dT%H%M%SZ").ok()
                    })
                    .map_or(created, |t| t.and_utc());
                if !checkpoint_due(freq, since, now) {
                    return Ok((false, false, false));
                }
                if !self.lease(cfg, "checkpoint", &s.id, holder, now).await? {
                    return Ok((false, false, true));
                }
                let name = format!("auto-{}", now.format("%Y%m%dT%H%M%SZ"));
                match self
                    .db
                    .create_checkpoint(&s.id, &name, Some(&s.default_branch), None, true, ACTOR)
                    .await
                {
                    Ok(_) | Err(kiln_db::Error::AlreadyExists(_)) => Ok((true, false, false)),
                    Err(e) => Err(e.into()),
                }
            };
            match isolated(outcome).await {
                Ok((cp, archived, skipped)) => {
                    r.checkpoints += usize::from(cp);
                    r.research_archived += usize::from(archived);
                    r.skipped += usize::from(skipped);
                }
                Err(e) => r.errors.push(format!("research {}: {}", s.id, e.message)),
            }
        }
    }

    /// Appends a closing note to a research session: what it found and used.
    async fn final_summary(&self, s: &Session) -> Result<()> {
        let state = self.db.head_state(&s.id, &s.default_branch).await?;
        let mut text = format!(
            "Final summary: {} discoveries, {} materials, {} open hypotheses.",
            state.discoveries.len(),
            state.materials.len(),
            state
                .hypotheses
                .iter()
                .filter(|h| h.status == kiln_types::HypothesisStatus::Open)
                .count()
        );
        for d in state.discoveries.iter().take(20) {
            text.push_str(&format!("\n- [{}] {}", d.discovery_type, d.description));
        }
        let materials: Vec<&str> = state.materials.iter().map(|m| m.formula.as_str()).collect();
        if !materials.is_empty() {
            text.push_str(&format!("\nMaterials: {}", materials.join(", ")));
        }
        let node = NewNode::message(NodeKind::Note, None, text)
            .with_data(serde_json::json!({"final_summary": true}));
        // A paused session takes no messages; the note goes in after resuming it.
        if s.status == SessionStatus::Paused {
            self.db
                .set_status(&s.id, SessionStatus::Resumed, ACTOR, "final summary")
                .await?;
        }
        self.db
            .append(&s.id, &s.default_branch, vec![node], None, ACTOR)
            .await?;
        Ok(())
    }

    /// Writes a consistent copy of the database into `dir` (created if needed) named after
    /// `now`, then keeps only the newest `keep` backups there. Returns the new file.
    pub async fn backup(&self, dir: &Path, now: DateTime<Utc>, keep: u32) -> Result<PathBuf> {
        if self.db.is_postgres() {
            return Err(Error::bad_request(
                "the store is on PostgreSQL: back it up with the database's own tools \
                 (pg_dump, base backups)",
            ));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("could not create {}: {e}", dir.display())))?;
        let file = dir.join(format!("kiln-{}.db", now.format("%Y%m%dT%H%M%S%.3fZ")));
        self.db.backup_to(&file).await?;
        let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::internal(format!("could not list {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("kiln-") && n.ends_with(".db"))
            })
            .collect();
        all.sort();
        let excess = all.len().saturating_sub(keep.max(1) as usize);
        for old in &all[..excess] {
            if let Err(e) = std::fs::remove_file(old) {
                tracing::warn!(file = %old.display(), error = %e, "could not remove an old backup");
            }
        }
        Ok(file)
    }

    /// Where scheduled backups go.
    pub fn backup_dir(&self) -> PathBuf {
        self.data_dir.join("backups")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_fall_due_by_frequency() {
        let t0: DateTime<Utc> = "2026-11-23T10:00:00Z".parse().unwrap();
        let h = |m: i64| t0 + TimeDelta::minutes(m);
        assert!(!checkpoint_due(&CheckpointFrequency::Hourly, t0, h(59)));
        assert!(checkpoint_due(&CheckpointFrequency::Hourly, t0, h(60)));
        assert!(!checkpoint_due(&CheckpointFrequency::Daily, t0, h(23 * 60)));
        assert!(checkpoint_due(&CheckpointFrequency::Daily, t0, h(24 * 60)));
        // Every 15 minutes: due at 10:15, not at 10:14.
        let cron = CheckpointFrequency::Cron("0 */15 * * * *".into());
        assert!(!checkpoint_due(&cron, t0, h(14)));
        assert!(checkpoint_due(&cron, t0, h(15)));
    }
}
