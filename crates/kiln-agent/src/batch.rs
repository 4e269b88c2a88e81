//! Running batches: workers claim a batch's items one at a time and run the agent on each —
//! on its own branch from the batch's checkpoint, or in order on one shared branch — within the
//! item's time budget, then record the answer, the key numbers of its tool results and any
//! error. Cancellation is read from the store (so a batch started by the CLI can be cancelled
//! over HTTP); a restarted server carries on with what is left.

use std::time::Duration;

use kiln_session::{
    BatchRow, BatchSpec, BatchView, BranchFrom, Caller, ItemOutcome, Result, batch_tag,
};
use kiln_types::ErrorKind;
use serde_json::{Map, Value};

use crate::{Agent, TurnOutcome};

/// How often a running item checks whether its batch was cancelled.
const CANCEL_POLL: Duration = Duration::from_millis(500);
/// Key numbers kept per item.
const MAX_NUMBERS: usize = 12;

/// The numbers (and yes/no facts) at the top of the item's successful tool results, first
/// one of a name wins: `molar_mass`, `valid`, `predicted_mean` …
fn key_numbers(turn: &TurnOutcome) -> Option<Value> {
    let mut out = Map::new();
    for call in turn.tool_calls.iter().filter(|c| c.ok) {
        let Value::Object(o) = &call.result else {
            continue;
        };
        for (k, v) in o {
            if out.len() >= MAX_NUMBERS {
                break;
            }
            if out.contains_key(k) {
                continue;
            }
            // Floats as the tools print them (97.871, not 97.87100000000001).
            let v = match v.as_f64() {
                Some(x) if v.is_f64() && x.is_finite() => Value::from((x * 1e6).round() / 1e6),
                _ if v.is_number() || v.is_boolean() => v.clone(),
                _ => continue,
            };
            out.insert(k.clone(), v);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

impl Agent {
    /// Stores a batch and starts running it in the background; returns it as stored.
    pub async fn start_batch(
        &self,
        caller: &Caller,
        session: &str,
        spec: &BatchSpec,
    ) -> Result<BatchView> {
        let b = self.manager().create_batch(caller, session, spec).await?;
        let view = self.manager().batch(caller, session, &b.id, false).await?;
        let agent = self.clone();
        let caller = caller.clone();
        tokio::spawn(async move { agent.run_batch(&caller, &b).await });
        Ok(view)
    }

    /// Carries on with the batches a stopped server left running; returns how many.
    pub async fn resume_batches(&self) -> usize {
        let left = match self.manager().resume_batches().await {
            Ok(left) => left,
            Err(e) => {
                tracing::warn!(
                    code = e.code,
                    "could not look for unfinished batches: {}",
                    e.message
                );
                return 0;
            }
        };
        let n = left.len();
        for (caller, b) in left {
            tracing::info!(batch = %b.id, session = %b.session_id, "resuming a batch");
            let agent = self.clone();
            tokio::spawn(async move { agent.run_batch(&caller, &b).await });
        }
        n
    }

    /// Runs a batch until no item is left (or it is cancelled); returns once it has finished.
    pub async fn run_batch(&self, caller: &Caller, b: &BatchRow) {
        let shared = (b.mode == "shared").then(|| format!("batch-{}", batch_tag(&b.id)));
        if let Some(branch) = &shared
            && let Err(e) = self
                .manager()
                .create_branch(
                    caller,
                    &b.session_id,
                    branch,
                    Some(BranchFrom::Node(b.from_node.clone())),
                )
                .await
            && e.kind != ErrorKind::Conflict
        {
            // (A conflict is the branch of an earlier run of this batch: carry on there.)
            tracing::warn!(batch = %b.id, "the batch's branch cannot be made: {}", e.message);
        }
        let workers = b.concurrency.max(1) as usize;
        let runs = (0..workers).map(|_| self.worker(caller, b, shared.as_deref()));
        futures::future::join_all(runs).await;
        if let Err(e) = self.manager().settle_batch(&b.session_id, &b.id).await {
            tracing::warn!(batch = %b.id, code = e.code, "settling the batch failed: {}", e.message);
        }
    }

    async fn worker(&self, caller: &Caller, b: &BatchRow, shared: Option<&str>) {
        let (session, id) = (b.session_id.as_str(), b.id.as_str());
        loop {
            let item = match self.manager().claim_batch_item(session, id).await {
                Ok(Some(item)) => item,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(batch = %id, code = e.code, "claiming an item failed: {}", e.message);
                    return;
                }
            };
            let outcome = self
                .run_item(caller, b, shared, item.idx, item.attempts, &item.request)
                .await;
            if let Err(e) = self
                .manager()
                .finish_batch_item(session, id, item.idx, &outcome)
                .await
            {
                tracing::warn!(batch = %id, code = e.code, "recording an item failed: {}", e.message);
            }
        }
    }

    /// Runs one item; never fails (a failure is the item's outcome).
    async fn run_item(
        &self,
        caller: &Caller,
        b: &BatchRow,
        shared: Option<&str>,
        idx: u32,
        attempt: u32,
        request: &str,
    ) -> ItemOutcome {
        let failed = |branch: Option<String>, error: String| ItemOutcome {
            status: "failed",
            branch,
            error: Some(error),
            ..ItemOutcome::default()
        };
        let session = b.session_id.as_str();
        let branch = match shared {
            Some(s) => s.to_owned(),
            None => {
                // A second attempt (after a restart) gets a branch of its own: the first
                // attempt's partial turn stays where it was, nothing is lost.
                let mut name = format!("batch-{}-{:03}", batch_tag(&b.id), idx + 1);
                if attempt > 1 {
                    name.push_str(&format!("-r{attempt}"));
                }
                if let Err(e) = self
                    .manager()
                    .create_branch(
                        caller,
                        session,
                        &name,
                        Some(BranchFrom::Node(b.from_node.clone())),
                    )
                    .await
                    && e.kind != ErrorKind::Conflict
                {
                    return failed(None, e.message);
                }
                name
            }
        };
        if let Err(e) = self
            .manager()
            .set_batch_item_branch(session, &b.id, idx, &branch)
            .await
        {
            return failed(Some(branch), e.message);
        }
        let budget = Duration::from_millis(b.item_timeout_ms);
        let turn = tokio::time::timeout(
            budget,
            self.run_turn(caller, session, &branch, request, None),
        );
        let cancelled = async {
            loop {
                tokio::time::sleep(CANCEL_POLL).await;
                if self
                    .manager()
                    .batch_status(session, &b.id)
                    .await
                    .is_ok_and(|s| s == "cancelled")
                {
                    return;
                }
            }
        };
        tokio::select! {
            r = turn => match r {
                Ok(Ok(t)) if t.budget_exhausted => failed(
                    Some(branch),
                    "the agent's step budget ran out before an answer".into(),
                ),
                Ok(Ok(t)) => ItemOutcome {
                    status: "done",
                    numbers: key_numbers(&t),
                    answer: Some(t.answer),
                    branch: Some(branch),
                    error: None,
                },
                Ok(Err(e)) => failed(Some(branch), e.message),
                Err(_) => failed(
                    Some(branch),
                    format!("no answer within the item's {} s budget", budget.as_secs()),
                ),
            },
            () = cancelled => ItemOutcome {
                status: "cancelled",
                branch: Some(branch),
                ..ItemOutcome::default()
            },
        }
    }
}
