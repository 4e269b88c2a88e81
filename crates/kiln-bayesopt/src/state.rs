//! The serialisable optimiser state kept by the session tool: space, objective, experiments,
//! the fitted model (so a load never refits unless asked), last suggestions and lock history.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::experiment::{Experiment, validate_rows};
use crate::gp::{FitOptions, Hyperparameters, LooMetrics};
use crate::kernel::Kernel;
use crate::model::{Goal, Surrogate};
use crate::space::{Inputs, SearchSpace};

/// Current version of the state layout.
pub const STATE_VERSION: u32 = 1;

/// What is optimised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// Name of the measured output.
    pub name: String,
    /// Whether larger or smaller is better.
    pub goal: Goal,
    /// Unit of the output, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// Another measured output: recorded with each experiment, not optimised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Column name.
    pub name: String,
    /// Unit, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// LOO cross-validation summary stored with a model (per-point predictions omitted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvSummary {
    /// Root mean squared LOO error (output units).
    pub rmse: f64,
    /// LOO coefficient of determination (None for constant outputs).
    pub r2: Option<f64>,
    /// Fraction of experiments inside their 95 % LOO interval.
    pub coverage_95: f64,
    /// Mean squared standardised LOO residual (≈ 1 when calibrated).
    pub mean_z2: f64,
}

impl From<&LooMetrics> for CvSummary {
    fn from(m: &LooMetrics) -> Self {
        CvSummary {
            rmse: m.rmse,
            r2: m.r2,
            coverage_95: m.coverage_95,
            mean_z2: m.mean_z2,
        }
    }
}

/// A fitted model as stored: enough to rebuild the GP exactly without refitting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Fitted hyperparameters (normalised feature and standardised output units).
    pub hyperparameters: Hyperparameters,
    /// Fingerprint of the experiments the model was fitted to.
    pub data_fingerprint: String,
    /// Number of experiments the model was fitted to.
    pub n_experiments: usize,
    /// Log marginal likelihood at the fit.
    pub log_marginal_likelihood: f64,
    /// Leave-one-out metrics at the fit.
    pub cv: CvSummary,
}

/// A point proposed by a design or an acquisition, in user terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestedPoint {
    /// Variable values.
    pub inputs: Inputs,
    /// Posterior mean (absent for designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Posterior std (absent for designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Acquisition figure (absent for designs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquisition: Option<f64>,
}

/// The last batch of suggestions and how it was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestionRecord {
    /// "EI", "PI", "UCB", "qEI", or "design:lhs" / "design:sobol" / "design:random".
    pub strategy: String,
    /// Strategy parameters (q, beta, xi, batch method, kernel, seed).
    pub params: serde_json::Value,
    /// The points.
    pub points: Vec<SuggestedPoint>,
}

/// What a lock records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "lowercase")]
pub enum LockDetails {
    /// The data the iteration's decisions rest on.
    Data {
        /// Number of experiments.
        n_experiments: usize,
        /// Fingerprint of the experiments.
        data_fingerprint: String,
        /// The best experiment so far.
        best: Option<Experiment>,
    },
    /// The model used for the iteration.
    Model {
        /// Kernel.
        kernel: Kernel,
        /// Hyperparameters.
        hyperparameters: Hyperparameters,
        /// LOO metrics.
        cv: CvSummary,
        /// Experiments the model was fitted to.
        n_experiments: usize,
    },
    /// The acquisition decision.
    Acquisition {
        /// Strategy name.
        strategy: String,
        /// Strategy parameters.
        params: serde_json::Value,
        /// The points chosen.
        points: Vec<SuggestedPoint>,
    },
}

/// One entry of the lock history, numbered by iteration. The session layer adds actor and time
/// when it writes the record to the hash-chained audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    /// Iteration the lock belongs to (starts at 1; an acquisition lock closes the iteration).
    pub iteration: u32,
    /// What was locked and its content.
    #[serde(flatten)]
    pub details: LockDetails,
    /// Free-text notes from the researcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A lock the model proposed, waiting for a person with write access to confirm it (it then
/// becomes a [`LockRecord`] of the iteration current at confirmation) or reject it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockProposal {
    /// Stable id ("p" + 10 hex digits of the proposed record).
    pub id: String,
    /// The lock as proposed (its iteration is the one current when proposed).
    #[serde(flatten)]
    pub record: LockRecord,
}

/// Everything the `bayesian_optimizer` tool keeps on a session branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerState {
    /// Layout version.
    pub version: u32,
    /// The search space.
    pub space: SearchSpace,
    /// The objective.
    pub objective: Objective,
    /// Other measured outputs recorded with the experiments (not optimised).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
    /// Quantities computed from the inputs, shown beside them (not modelled).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<crate::derived::DerivedVariable>,
    /// Linear input constraints designs and suggestions keep to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<crate::constraint::LinearConstraint>,
    /// Experiments in the order they were added (excluded ones included, marked).
    #[serde(default)]
    pub experiments: Vec<Experiment>,
    /// The last fitted model, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRecord>,
    /// The last suggestions, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_suggestions: Option<SuggestionRecord>,
    /// Lock history.
    #[serde(default)]
    pub locks: Vec<LockRecord>,
    /// Locks the model proposed that wait for a person to confirm (or reject) them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proposals: Vec<LockProposal>,
    /// The experiment queue, finished entries included (they are part of the record).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<crate::queue::QueuedExperiment>,
}

/// Raw coordinates, outputs and noise standard deviations (0 = unknown) of the experiments.
pub type TrainingData = (Vec<Vec<f64>>, Vec<f64>, Vec<f64>);

/// FNV-1a over the canonical JSON of the experiments: stable across runs and platforms.
pub fn fingerprint(experiments: &[Experiment]) -> String {
    fnv_hex(&serde_json::to_string(experiments).unwrap_or_default())
}

/// FNV-1a of `text` as 16 hex digits.
pub(crate) fn fnv_hex(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl OptimizerState {
    /// A fresh state for a space and objective.
    pub fn new(space: SearchSpace, objective: Objective) -> Self {
        OptimizerState {
            version: STATE_VERSION,
            space,
            objective,
            outputs: Vec::new(),
            derived: Vec::new(),
            constraints: Vec::new(),
            experiments: Vec::new(),
            model: None,
            last_suggestions: None,
            locks: Vec::new(),
            queue: Vec::new(),
            proposals: Vec::new(),
        }
    }

    /// The current iteration: one more than the number of acquisition locks.
    pub fn iteration(&self) -> u32 {
        1 + self
            .locks
            .iter()
            .filter(|l| matches!(l.details, LockDetails::Acquisition { .. }))
            .count() as u32
    }

    /// The experiments the model uses (not excluded), in order.
    pub fn active(&self) -> impl Iterator<Item = &Experiment> {
        self.experiments.iter().filter(|e| e.is_active())
    }

    /// The constraints in index form.
    pub fn indexed_constraints(&self) -> crate::constraint::Indexed {
        self.constraints
            .iter()
            .map(|c| c.indexed(&self.space))
            .collect()
    }

    /// The queue entry an experiment came from, if it came through the queue.
    pub fn queued_for(&self, e: &Experiment) -> Option<&crate::queue::QueuedExperiment> {
        let id = e.queued.as_deref()?;
        self.queue.iter().find(|q| q.id == id)
    }

    /// Names of the other recorded outputs.
    pub fn output_names(&self) -> Vec<String> {
        self.outputs.iter().map(|o| o.name.clone()).collect()
    }

    /// The best experiment the model uses, for the objective's goal.
    pub fn best(&self) -> Option<&Experiment> {
        self.active()
            .fold(None, |best: Option<&Experiment>, e| match best {
                Some(b) if !self.objective.goal.better(e.output, b.output) => Some(b),
                _ => Some(e),
            })
    }

    /// Raw coordinates, outputs and noise of the experiments (validated against the space).
    pub fn training_data(&self) -> Result<TrainingData> {
        let active: Vec<Experiment> = self.active().cloned().collect();
        let raws = validate_rows(&self.space, &active)?;
        let ys = active.iter().map(|e| e.output).collect();
        let noise = active.iter().map(|e| e.noise.unwrap_or(0.0)).collect();
        Ok((raws, ys, noise))
    }

    /// Whether the stored model was fitted to exactly the current experiments.
    pub fn model_is_current(&self) -> bool {
        self.model
            .as_ref()
            .is_some_and(|m| m.data_fingerprint == fingerprint(&self.experiments))
    }

    /// Returns the surrogate: rebuilt from the stored hyperparameters when they are current and
    /// no refit is asked for (no optimisation), otherwise refitted (warm-started from the stored
    /// hyperparameters) and recorded in the state.
    pub fn surrogate(
        &mut self,
        kernel: Option<Kernel>,
        refit: bool,
        seed: u64,
    ) -> Result<Surrogate> {
        if self.active().next().is_none() {
            return Err(Error::MissingState(if self.experiments.is_empty() {
                "no experiments yet: add experiments or run an initial design".into()
            } else {
                "every experiment is excluded: include one again or add experiments".into()
            }));
        }
        let (raws, ys, noise) = self.training_data()?;
        let goal = self.objective.goal;
        if let Some(m) = &self.model {
            let same_kernel = kernel.is_none_or(|k| k == m.hyperparameters.kernel);
            if !refit
                && same_kernel
                && self.model_is_current()
                && let Ok(s) = Surrogate::restore(
                    &self.space,
                    &raws,
                    &ys,
                    &noise,
                    goal,
                    m.hyperparameters.clone(),
                )
            {
                return Ok(s);
            }
        }
        let previous = self.model.as_ref().map(|m| m.hyperparameters.clone());
        let kernel = kernel
            .or(previous.as_ref().map(|h| h.kernel))
            .unwrap_or_default();
        let warm_start = previous.filter(|h| h.kernel == kernel);
        let opts = FitOptions {
            kernel,
            seed,
            warm_start,
            ..FitOptions::default()
        };
        let s = Surrogate::fit(&self.space, &raws, &ys, &noise, goal, &opts)?;
        let loo = s.loo();
        self.model = Some(ModelRecord {
            hyperparameters: s.hyperparameters().clone(),
            data_fingerprint: fingerprint(&self.experiments),
            n_experiments: self.active().count(),
            log_marginal_likelihood: s.gp().log_marginal_likelihood(),
            cv: CvSummary::from(&loo),
        });
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Value, Variable};

    fn state_with(n: usize) -> OptimizerState {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 1.0).unwrap()]).unwrap();
        let mut s = OptimizerState::new(
            space,
            Objective {
                name: "y".into(),
                goal: Goal::Maximize,
                unit: None,
            },
        );
        for i in 0..n {
            let x = i as f64 / n.max(2) as f64;
            s.experiments.push(Experiment::new(
                [("x".to_string(), Value::Number(x))].into_iter().collect(),
                (5.0 * x).sin(),
            ));
        }
        s
    }

    #[test]
    fn a_current_model_is_restored_without_refitting() {
        let mut s = state_with(6);
        let first = s.surrogate(None, false, 1).unwrap();
        let saved = s.model.clone().unwrap();
        // Loading the state from JSON and asking again gives the same hyperparameters and
        // predictions, whatever the seed: nothing is refitted.
        let mut loaded: OptimizerState =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        let again = loaded.surrogate(None, false, 999).unwrap();
        assert_eq!(loaded.model.as_ref().unwrap(), &saved);
        assert_eq!(first.predict(&[0.33]), again.predict(&[0.33]));
        // New data makes the model stale; the refit starts from the old hyperparameters.
        loaded
            .experiments
            .push(state_with(7).experiments[3].clone());
        assert!(!loaded.model_is_current());
        loaded.surrogate(None, false, 2).unwrap();
        assert!(loaded.model_is_current());
        assert_eq!(loaded.model.as_ref().unwrap().n_experiments, 7);
    }

    #[test]
    fn best_follows_the_goal_and_iterations_count_acquisition_locks() {
        let mut s = state_with(5);
        let max = s.best().unwrap().output;
        assert!(s.experiments.iter().all(|e| e.output <= max));
        s.objective.goal = Goal::Minimize;
        let min = s.best().unwrap().output;
        assert!(s.experiments.iter().all(|e| e.output >= min));
        assert_eq!(s.iteration(), 1);
        s.locks.push(LockRecord {
            iteration: 1,
            details: LockDetails::Acquisition {
                strategy: "EI".into(),
                params: serde_json::json!({}),
                points: vec![],
            },
            notes: None,
        });
        assert_eq!(s.iteration(), 2);
    }

    #[test]
    fn fingerprints_change_with_the_data() {
        let a = state_with(3);
        let b = state_with(4);
        assert_ne!(fingerprint(&a.experiments), fingerprint(&b.experiments));
        assert_eq!(
            fingerprint(&a.experiments),
            fingerprint(&state_with(3).experiments)
        );
    }
}
