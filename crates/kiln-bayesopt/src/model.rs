//! The surrogate: a GP fitted to experiments of a search space, oriented so that the GP always
//! minimises (maximisation flips the sign), with predictions and LOO metrics in user units.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::gp::{FitOptions, Gp, Hyperparameters, LooMetrics, Prediction};
use crate::space::SearchSpace;

/// Direction of optimisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Goal {
    /// Larger outputs are better.
    #[default]
    Maximize,
    /// Smaller outputs are better.
    Minimize,
}

impl Goal {
    /// +1 when minimising, -1 when maximising: the factor that turns outputs into costs.
    pub fn sign(self) -> f64 {
        match self {
            Goal::Minimize => 1.0,
            Goal::Maximize => -1.0,
        }
    }

    /// `maximize` or `minimize`, as the goal is written in arguments and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Goal::Maximize => "maximize",
            Goal::Minimize => "minimize",
        }
    }

    /// Whether `a` is better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        self.sign() * a < self.sign() * b
    }
}

/// A GP fitted to a search space's experiments.
#[derive(Debug, Clone)]
pub struct Surrogate {
    space: SearchSpace,
    goal: Goal,
    raws: Vec<Vec<f64>>,
    outputs: Vec<f64>,
    gp: Gp,
}

fn prepare(
    space: &SearchSpace,
    raws: &[Vec<f64>],
    outputs: &[f64],
    goal: Goal,
) -> (Vec<Vec<f64>>, Vec<f64>) {
    let x = raws.iter().map(|r| space.features(r)).collect();
    let y = outputs.iter().map(|v| goal.sign() * v).collect();
    (x, y)
}

impl Surrogate {
    /// Fits the GP to raw points, outputs and per-point noise standard deviations (0 = unknown).
    pub fn fit(
        space: &SearchSpace,
        raws: &[Vec<f64>],
        outputs: &[f64],
        noise_sd: &[f64],
        goal: Goal,
        opts: &FitOptions,
    ) -> Result<Self> {
        let (x, y) = prepare(space, raws, outputs, goal);
        let gp = Gp::fit(&x, &y, noise_sd, opts)?;
        Ok(Surrogate {
            space: space.clone(),
            goal,
            raws: raws.to_vec(),
            outputs: outputs.to_vec(),
            gp,
        })
    }

    /// Rebuilds the GP with saved hyperparameters (no optimisation).
    pub fn restore(
        space: &SearchSpace,
        raws: &[Vec<f64>],
        outputs: &[f64],
        noise_sd: &[f64],
        goal: Goal,
        hyp: Hyperparameters,
    ) -> Result<Self> {
        let (x, y) = prepare(space, raws, outputs, goal);
        let gp = Gp::with_hyperparameters(&x, &y, noise_sd, hyp)?;
        Ok(Surrogate {
            space: space.clone(),
            goal,
            raws: raws.to_vec(),
            outputs: outputs.to_vec(),
            gp,
        })
    }

    /// The search space.
    pub fn space(&self) -> &SearchSpace {
        &self.space
    }

    /// The goal.
    pub fn goal(&self) -> Goal {
        self.goal
    }

    /// Raw coordinates of the training points.
    pub fn raws(&self) -> &[Vec<f64>] {
        &self.raws
    }

    /// Measured outputs of the training points (user units).
    pub fn outputs(&self) -> &[f64] {
        &self.outputs
    }

    /// The underlying (minimisation-oriented) GP.
    pub fn gp(&self) -> &Gp {
        &self.gp
    }

    /// The fitted hyperparameters.
    pub fn hyperparameters(&self) -> &Hyperparameters {
        self.gp.hyperparameters()
    }

    /// Posterior mean and std at a raw point, in output units.
    pub fn predict(&self, raw: &[f64]) -> Prediction {
        let p = self.gp.predict(&self.space.features(raw));
        Prediction {
            mean: self.goal.sign() * p.mean,
            std: p.std,
        }
    }

    /// LOO metrics in output units.
    pub fn loo(&self) -> LooMetrics {
        let mut m = self.gp.loo();
        for p in &mut m.predictions {
            p.mean *= self.goal.sign();
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::Variable;

    #[test]
    fn maximisation_predicts_in_user_units() {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 10.0).unwrap()]).unwrap();
        let raws: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64 * 10.0 / 7.0]).collect();
        let ys: Vec<f64> = raws.iter().map(|r| 5.0 + (r[0] / 3.0).sin()).collect();
        for goal in [Goal::Maximize, Goal::Minimize] {
            let s = Surrogate::fit(&space, &raws, &ys, &[0.0; 8], goal, &FitOptions::default())
                .unwrap();
            let p = s.predict(&raws[3]);
            assert!((p.mean - ys[3]).abs() < 1e-2, "{goal:?}: {}", p.mean);
            let loo = s.loo();
            assert!(
                loo.predictions.iter().all(|p| p.mean > 3.0 && p.mean < 7.0),
                "{goal:?}"
            );
        }
        assert!(Goal::Maximize.better(2.0, 1.0) && Goal::Minimize.better(1.0, 2.0));
    }
}
