//! The weekly digest: per user, what changed across the sessions they may read in the week
//! before — new discoveries, hypotheses recorded or settled, optimizer progress — written as one
//! Markdown note in the user's `digest` session (made on first need, so it shows on the web like
//! any session). Runs from the scheduler under a lease per user and week, so two servers write
//! one digest.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use kiln_db::{NewNode, NewSession, stamp};
use kiln_types::{NodeKind, SessionType, StateEvent};
use serde::Serialize;
use serde_json::json;

use crate::{Result, SessionManager};

/// Sessions one digest covers, most recently active first.
const SESSIONS: u32 = 50;
/// Findings listed per session.
const PER_SESSION: u32 = 20;
const DIGEST_NAME: &str = "Weekly digest";

/// What one run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DigestReport {
    /// Digests written (users with something to report).
    pub written: usize,
    /// Users with nothing new, or whose digest another process wrote.
    pub skipped: usize,
    pub errors: Vec<String>,
}

/// The Markdown of one session's week, or `None` when nothing worth telling happened.
fn session_part(name: &str, nodes: &[kiln_db::Node], best: Option<String>) -> Option<String> {
    let mut discoveries = Vec::new();
    let mut hypotheses = Vec::new();
    let mut optimizer_steps = 0usize;
    for n in nodes {
        let event: Option<StateEvent> = n
            .data
            .as_ref()
            .and_then(|d| serde_json::from_value(d.clone()).ok());
        match (n.kind, event) {
            (
                NodeKind::Discovery,
                Some(StateEvent::Discovery {
                    description,
                    discovery_type,
                    ..
                }),
            ) => {
                discoveries.push(format!("- [{discovery_type}] {description}"));
            }
            (
                NodeKind::Hypothesis,
                Some(StateEvent::Hypothesis {
                    statement, status, ..
                }),
            ) => {
                let status = serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                hypotheses.push(format!("- ({status}) {statement}"));
            }
            (NodeKind::ToolState, Some(StateEvent::ToolState { tool, .. }))
                if tool == "bayesian_optimizer" =>
            {
                optimizer_steps += 1;
            }
            (NodeKind::Discovery, _) => discoveries.push(format!("- {}", n.readable_text())),
            (NodeKind::Hypothesis, _) => hypotheses.push(format!("- {}", n.readable_text())),
            _ => {}
        }
    }
    if discoveries.is_empty() && hypotheses.is_empty() && optimizer_steps == 0 {
        return None;
    }
    let mut md = format!("## {name}\n");
    if !discoveries.is_empty() {
        md.push_str(&format!(
            "\nNew discoveries ({}):\n{}\n",
            discoveries.len(),
            discoveries.join("\n")
        ));
    }
    if !hypotheses.is_empty() {
        md.push_str(&format!(
            "\nHypotheses recorded or settled ({}):\n{}\n",
            hypotheses.len(),
            hypotheses.join("\n")
        ));
    }
    if optimizer_steps > 0 {
        md.push_str(&format!(
            "\nOptimizer: {optimizer_steps} change(s) this week{}.\n",
            best.map(|b| format!("; {b}")).unwrap_or_default()
        ));
    }
    Some(md)
}

impl SessionManager {
    /// Writes the digest of the week before `now` for every user with something new, once per
    /// user and ISO week across processes (`holder` names this one).
    pub async fn run_digests(&self, now: DateTime<Utc>, holder: &str) -> DigestReport {
        let mut r = DigestReport::default();
        let users = match self.db.user_ids().await {
            Ok(u) => u,
            Err(e) => {
                r.errors.push(format!("digest: {e}"));
                return r;
            }
        };
        let week = now.iso_week();
        let tag = format!("{}-W{:02}", week.year(), week.week());
        for user in users {
            let until = now + TimeDelta::days(8);
            match self
                .db
                .try_lease(
                    "digest",
                    &format!("{user}@{tag}"),
                    holder,
                    &stamp(now),
                    &stamp(until),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    r.skipped += 1;
                    continue;
                }
                Err(e) => {
                    r.errors.push(format!("digest {user}: {e}"));
                    continue;
                }
            }
            match self.write_digest(&user, now, &tag).await {
                Ok(true) => r.written += 1,
                Ok(false) => r.skipped += 1,
                Err(e) => r.errors.push(format!("digest {user}: {}", e.message)),
            }
        }
        for e in &r.errors {
            tracing::warn!(error = %e, "the weekly digest failed for a user; retried next week");
        }
        r
    }

    /// One user's digest; false when nothing happened in their sessions that week.
    async fn write_digest(&self, user: &str, now: DateTime<Utc>, tag: &str) -> Result<bool> {
        let since = stamp(now - TimeDelta::days(7));
        let mut parts = Vec::new();
        for s in self.db.active_sessions_of(user, &since, SESSIONS).await? {
            let nodes = self
                .db
                .findings_since(&s.id, &since, PER_SESSION * 4)
                .await?;
            let best = self
                .db
                .head_state(&s.id, &s.default_branch)
                .await
                .ok()
                .and_then(|st| st.tools.get("bayesian_optimizer").cloned())
                .and_then(|v| {
                    let n = v.get("experiments")?.as_array()?.len();
                    let goal = v.pointer("/objective/goal")?.as_str()?.to_owned();
                    let name = v.pointer("/objective/name")?.as_str()?.to_owned();
                    let values = v
                        .get("experiments")?
                        .as_array()?
                        .iter()
                        .filter(|e| e.get("excluded").is_none())
                        .filter_map(|e| e.get("output")?.as_f64());
                    let best = if goal.starts_with("min") {
                        values.fold(f64::INFINITY, f64::min)
                    } else {
                        values.fold(f64::NEG_INFINITY, f64::max)
                    };
                    best.is_finite()
                        .then(|| format!("best {name} {best} after {n} experiment(s)"))
                });
            let mut nodes = nodes;
            nodes.truncate(PER_SESSION as usize * 3);
            if let Some(md) = session_part(&format!("{} ({})", s.name, s.id), &nodes, best) {
                parts.push(md);
            }
        }
        if parts.is_empty() {
            return Ok(false);
        }
        let text = format!(
            "# Weekly digest, {tag} (the 7 days to {})\n\n{}",
            now.format("%Y-%m-%d"),
            parts.join("\n")
        );
        let session = match self.db.digest_session(user).await? {
            Some(id) => id,
            None => {
                let new = NewSession {
                    owner_id: user.to_owned(),
                    name: DIGEST_NAME.to_owned(),
                    description: "What changed across your sessions, week by week".into(),
                    session_type: SessionType::Interactive,
                    project: None,
                    tags: vec!["digest".into()],
                    metadata: json!({"digest": true}),
                    config: Default::default(),
                    template: None,
                    folder: "/".into(),
                };
                self.db.create_session(new, "scheduler").await?.id
            }
        };
        let s = self.db.session(&session).await?;
        if s.status != kiln_types::SessionStatus::Active
            && s.status != kiln_types::SessionStatus::Resumed
        {
            let to = if s.status == kiln_types::SessionStatus::Created {
                kiln_types::SessionStatus::Active
            } else {
                kiln_types::SessionStatus::Resumed
            };
            self.db
                .set_status(&session, to, "scheduler", "weekly digest")
                .await?;
        }
        let node = NewNode::message(NodeKind::Note, None, text).with_data(json!({"digest": tag}));
        self.db
            .append(&session, &s.default_branch, vec![node], None, "scheduler")
            .await?;
        Ok(true)
    }
}
