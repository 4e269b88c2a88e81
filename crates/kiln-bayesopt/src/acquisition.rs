//! Acquisition functions on a minimisation-oriented, standardised GP: LogEI (stable), PI (in
//! log form while optimising) and UCB, each with its gradient w.r.t. posterior mean and std.

use serde::{Deserialize, Serialize};

use crate::special::{dlog_h, log_h, log_norm_cdf};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Smallest posterior std (standardised units) used in the formulas; avoids 0/0 at data points.
const MIN_STD: f64 = 1e-9;

/// The acquisition strategy and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "UPPERCASE")]
pub enum Acquisition {
    /// Expected improvement, optimised as log EI; `xi` is the required margin in output units.
    Ei {
        /// Required improvement margin (output units).
        xi: f64,
    },
    /// Probability of improvement by at least `xi` (output units).
    Pi {
        /// Required improvement margin (output units).
        xi: f64,
    },
    /// Upper confidence bound `mean + sqrt(beta) std` (lower bound when minimising).
    Ucb {
        /// Exploration weight.
        beta: f64,
    },
}

impl Default for Acquisition {
    fn default() -> Self {
        Acquisition::Ei { xi: 0.0 }
    }
}

/// Value of the acquisition and its partial derivatives w.r.t. the mean and the std.
#[derive(Debug, Clone, Copy)]
pub struct AcqValue {
    /// The value that is maximised (log EI, log PI, or the negated lower bound).
    pub value: f64,
    /// ∂value/∂μ.
    pub d_mu: f64,
    /// ∂value/∂σ.
    pub d_sigma: f64,
}

impl Acquisition {
    /// Short label for reports.
    pub fn label(&self) -> String {
        match self {
            Acquisition::Ei { xi } => format!("EI (log form, xi = {xi})"),
            Acquisition::Pi { xi } => format!("PI (xi = {xi})"),
            Acquisition::Ucb { beta } => format!("UCB (beta = {beta})"),
        }
    }

    /// The same acquisition with margins expressed in standardised units (outputs divided by `scale`).
    pub fn standardised(&self, scale: f64) -> Self {
        let s = if scale > 0.0 && scale.is_finite() {
            scale
        } else {
            1.0
        };
        match *self {
            Acquisition::Ei { xi } => Acquisition::Ei { xi: xi / s },
            Acquisition::Pi { xi } => Acquisition::Pi { xi: xi / s },
            ucb @ Acquisition::Ucb { .. } => ucb,
        }
    }

    /// Evaluates the acquisition for a minimisation problem with incumbent `best`, at posterior
    /// mean `mu` and std `sigma` (all standardised). Always finite for finite inputs.
    pub fn eval(&self, mu: f64, sigma: f64, best: f64) -> AcqValue {
        let s = sigma.max(MIN_STD);
        match *self {
            Acquisition::Ei { xi } => {
                let z = (best - mu - xi) / s;
                let r = dlog_h(z);
                AcqValue {
                    value: s.ln() + log_h(z),
                    d_mu: -r / s,
                    d_sigma: if sigma > MIN_STD {
                        (1.0 - z * r) / s
                    } else {
                        0.0
                    },
                }
            }
            Acquisition::Pi { xi } => {
                let z = (best - mu - xi) / s;
                let lc = log_norm_cdf(z);
                let q = (-0.5 * z * z - LN_SQRT_2PI - lc).exp();
                AcqValue {
                    value: lc,
                    d_mu: -q / s,
                    d_sigma: if sigma > MIN_STD { -z * q / s } else { 0.0 },
                }
            }
            Acquisition::Ucb { beta } => {
                let k = beta.max(0.0).sqrt();
                AcqValue {
                    value: -mu + k * sigma,
                    d_mu: -1.0,
                    d_sigma: k,
                }
            }
        }
    }

    /// Converts an internal value into the figure reported to users: EI in output units, PI as
    /// a probability, UCB as the optimistic bound (`mean ± sqrt(beta) std`) in output units.
    pub fn report(
        &self,
        value: f64,
        mean: f64,
        std: f64,
        output_scale: f64,
        maximize: bool,
    ) -> f64 {
        match self {
            Acquisition::Ei { .. } => value.exp() * output_scale,
            Acquisition::Pi { .. } => value.exp(),
            Acquisition::Ucb { beta } => {
                let k = beta.max(0.0).sqrt();
                if maximize {
                    mean + k * std
                } else {
                    mean - k * std
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::{norm_cdf, norm_pdf};

    #[test]
    fn log_ei_matches_closed_form_ei_where_representable() {
        let acq = Acquisition::Ei { xi: 0.0 };
        for (mu, sigma) in [(0.0, 1.0), (1.0, 0.5), (-2.0, 0.3), (3.0, 1.0), (0.5, 2.0)] {
            let z = (0.0 - mu) / sigma;
            let ei = sigma * (z * norm_cdf(z) + norm_pdf(z));
            let log_ei = acq.eval(mu, sigma, 0.0).value;
            assert!(
                (log_ei.exp() - ei).abs() < 1e-12 * ei.max(1e-300) + 1e-15,
                "mu={mu}"
            );
        }
        // Far from improvement EI underflows but log EI still ranks points.
        let a = acq.eval(40.0, 1.0, 0.0).value;
        let b = acq.eval(41.0, 1.0, 0.0).value;
        assert!(a.is_finite() && b.is_finite() && a > b);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let cases = [
            Acquisition::Ei { xi: 0.01 },
            Acquisition::Pi { xi: 0.01 },
            Acquisition::Ucb { beta: 4.0 },
        ];
        for acq in cases {
            for (mu, sigma) in [(0.3, 0.7), (-1.0, 0.2), (5.0, 0.5)] {
                let v = acq.eval(mu, sigma, 0.0);
                let h = 1e-6;
                let dmu = (acq.eval(mu + h, sigma, 0.0).value - acq.eval(mu - h, sigma, 0.0).value)
                    / (2.0 * h);
                let ds = (acq.eval(mu, sigma + h, 0.0).value - acq.eval(mu, sigma - h, 0.0).value)
                    / (2.0 * h);
                assert!(
                    (dmu - v.d_mu).abs() < 1e-5 * dmu.abs().max(1.0),
                    "{acq:?} dmu"
                );
                assert!(
                    (ds - v.d_sigma).abs() < 1e-5 * ds.abs().max(1.0),
                    "{acq:?} dsigma"
                );
            }
        }
    }

    #[test]
    fn zero_std_gives_finite_values() {
        for acq in [
            Acquisition::Ei { xi: 0.01 },
            Acquisition::Pi { xi: 0.01 },
            Acquisition::Ucb { beta: 2.0 },
        ] {
            let v = acq.eval(0.0, 0.0, 0.0);
            assert!(
                v.value.is_finite() && v.d_mu.is_finite() && v.d_sigma.is_finite(),
                "{acq:?}"
            );
        }
    }

    #[test]
    fn reported_figures_are_in_user_terms() {
        let ei = Acquisition::Ei { xi: 0.0 };
        assert!((ei.report(0.5f64.ln(), 0.0, 1.0, 2.0, true) - 1.0).abs() < 1e-12);
        let ucb = Acquisition::Ucb { beta: 4.0 };
        assert!((ucb.report(0.0, 10.0, 1.5, 2.0, true) - 13.0).abs() < 1e-12);
        assert!((ucb.report(0.0, 10.0, 1.5, 2.0, false) - 7.0).abs() < 1e-12);
        let pi = Acquisition::Pi { xi: 0.0 };
        assert!((pi.report(0.25f64.ln(), 0.0, 1.0, 1.0, true) - 0.25).abs() < 1e-12);
    }
}
