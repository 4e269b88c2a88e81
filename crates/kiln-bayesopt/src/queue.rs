//! The experiment queue: points waiting to be measured, each knowing the iteration, strategy
//! and model that proposed it, moved through queued → running → done (or failed, with a
//! reason); a completed one names the experiment it became, so suggested and actual inputs sit
//! side by side for every experiment.

use serde::{Deserialize, Serialize};

use crate::kernel::Kernel;
use crate::space::Inputs;
use crate::state::fnv_hex;

/// Most entries one queue holds (finished ones included: the queue is part of the record).
pub const MAX_QUEUE: usize = 10_000;

/// Where a queued experiment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueStatus {
    /// Waiting to be run.
    Queued,
    /// Being run (started by a person or a controller).
    Running,
    /// Measured: `experiment` names the recorded row.
    Done,
    /// Given up, with a reason.
    Failed,
}

impl QueueStatus {
    /// The status as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Queued => "queued",
            QueueStatus::Running => "running",
            QueueStatus::Done => "done",
            QueueStatus::Failed => "failed",
        }
    }

    /// Whether the entry is finished (done or failed).
    pub fn is_final(self) -> bool {
        matches!(self, QueueStatus::Done | QueueStatus::Failed)
    }
}

/// One queued experiment and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedExperiment {
    /// Stable id ("q" + 10 hex digits of its provenance and point): the same suggestion queued
    /// on two branches is the same entry, so a merge unions queues by id.
    pub id: String,
    /// The iteration the point was proposed in.
    pub iteration: u32,
    /// The strategy that proposed it ("EI", "qEI", "design:lhs", or "manual").
    pub strategy: String,
    /// The acquisition with its parameters, as the suggestion recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition: Option<serde_json::Value>,
    /// The model's kernel, when a model proposed the point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<Kernel>,
    /// The suggestion's seed, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The point as suggested.
    pub suggested: Inputs,
    /// The model's mean at the point when suggested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_mean: Option<f64>,
    /// The model's std at the point when suggested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_std: Option<f64>,
    /// Where it is in its life.
    pub status: QueueStatus,
    /// The inputs actually run, when they differ from the suggestion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual: Option<Inputs>,
    /// The recorded experiment's key, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl QueuedExperiment {
    /// An entry for `suggested`, proposed in `iteration` by `strategy`; `salt` tells apart
    /// two entries for the same point and provenance (the point's place in its batch).
    pub fn new(iteration: u32, strategy: &str, suggested: Inputs, salt: &str) -> Self {
        let basis = serde_json::json!({"iteration": iteration, "strategy": strategy, "inputs": suggested, "salt": salt});
        QueuedExperiment {
            id: format!("q{}", &fnv_hex(&basis.to_string())[..10]),
            iteration,
            strategy: strategy.to_owned(),
            acquisition: None,
            kernel: None,
            seed: None,
            suggested,
            predicted_mean: None,
            predicted_std: None,
            status: QueueStatus::Queued,
            actual: None,
            experiment: None,
            reason: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Value;

    fn at(x: f64) -> Inputs {
        [("x".to_string(), Value::Number(x))].into_iter().collect()
    }

    #[test]
    fn ids_follow_provenance_and_point() {
        let a = QueuedExperiment::new(1, "EI", at(0.5), "0");
        assert_eq!(a.id, QueuedExperiment::new(1, "EI", at(0.5), "0").id);
        assert_ne!(a.id, QueuedExperiment::new(2, "EI", at(0.5), "0").id);
        assert_ne!(a.id, QueuedExperiment::new(1, "EI", at(0.6), "0").id);
        assert_ne!(a.id, QueuedExperiment::new(1, "EI", at(0.5), "1").id);
        assert!(a.id.starts_with('q') && a.id.len() == 11);
        assert!(QueueStatus::Done.is_final() && !QueueStatus::Running.is_final());
    }
}
