//! Gaussian-process regression: ARD kernel, learned signal and noise variances, standardised
//! outputs, hyperparameters by multi-start L-BFGS on the log marginal likelihood, predictions
//! with input gradients, closed-form leave-one-out metrics, and fantasy conditioning for batches.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::lbfgs::{self, LbfgsConfig};
use crate::linalg::Cholesky;

/// Bounds on ln(lengthscale) for unit-scaled features.
const LOG_LS: (f64, f64) = (-4.605_170_185_988_091, 4.605_170_185_988_091); // 0.01 .. 100
/// Bounds on ln(signal variance) of standardised outputs.
const LOG_SF2: (f64, f64) = (-4.605_170_185_988_091, 6.907_755_278_982_137); // 0.01 .. 1000
/// Bounds on ln(noise variance) of standardised outputs.
const LOG_SN2: (f64, f64) = (-13.815_510_557_964_274, 0.0); // 1e-6 .. 1
const LN_2PI: f64 = 1.837_877_066_409_345_5;
/// Log-normal priors (MAP fit), after Hvarfner et al. 2024 ("Vanilla Bayesian optimization
/// performs great in high dimensions", BoTorch's default): ln ℓ ~ N(√2 + ½ ln D, 3) scales
/// with the dimension D, and ln σ²ₙ ~ N(-4, 1). With few points in several dimensions, plain
/// maximum likelihood sends lengthscales to the bounds (erratic, overconfident models) or
/// explains everything as noise; these weak priors prevent both and fade as data accrue.
const LS_PRIOR_SD2: f64 = 3.0;
const NOISE_PRIOR: (f64, f64) = (-4.0, 1.0);

/// Fitted kernel hyperparameters (in the normalised feature and standardised output units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    /// Covariance family.
    pub kernel: Kernel,
    /// One lengthscale per GP feature.
    pub lengthscales: Vec<f64>,
    /// Signal variance.
    pub signal_variance: f64,
    /// Homoscedastic noise variance (per-experiment noise is added on top).
    pub noise_variance: f64,
}

impl Hyperparameters {
    fn theta(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.lengthscales.iter().map(|l| l.ln()).collect();
        t.push(self.signal_variance.ln());
        t.push(self.noise_variance.ln());
        t
    }

    /// Unclamped map used inside the optimiser (consistent with the analytic gradient).
    fn from_theta_raw(kernel: Kernel, theta: &[f64]) -> Self {
        let d = theta.len() - 2;
        Hyperparameters {
            kernel,
            lengthscales: theta[..d].iter().map(|t| t.exp()).collect(),
            signal_variance: theta[d].exp(),
            noise_variance: theta[d + 1].exp(),
        }
    }

    fn from_theta(kernel: Kernel, theta: &[f64]) -> Self {
        let d = theta.len() - 2;
        Hyperparameters {
            kernel,
            lengthscales: theta[..d]
                .iter()
                .map(|t| t.clamp(LOG_LS.0, LOG_LS.1).exp())
                .collect(),
            signal_variance: theta[d].clamp(LOG_SF2.0, LOG_SF2.1).exp(),
            noise_variance: theta[d + 1].clamp(LOG_SN2.0, LOG_SN2.1).exp(),
        }
    }

    fn is_valid_for(&self, d: usize) -> bool {
        self.lengthscales.len() == d
            && self.lengthscales.iter().all(|l| l.is_finite() && *l > 0.0)
            && self.signal_variance.is_finite()
            && self.signal_variance > 0.0
            && self.noise_variance.is_finite()
            && self.noise_variance > 0.0
    }
}

/// How to fit the hyperparameters.
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Covariance family.
    pub kernel: Kernel,
    /// Number of L-BFGS runs from the best screened random starts (besides the default and warm starts).
    pub restarts: usize,
    /// Random hyperparameter vectors screened by likelihood value to pick the starts. The
    /// default (2, so both random starts are used, as in scikit-optimize) is deliberately not
    /// thorough: with few points, the global likelihood maximum is often a degenerate,
    /// overconfident model, and a wider screen measurably hurt optimisation on Hartmann-6.
    pub screen: usize,
    /// L-BFGS iteration cap per start.
    pub max_iter: usize,
    /// Seed for the random starts.
    pub seed: u64,
    /// Previous hyperparameters to start from (a refit after adding data).
    pub warm_start: Option<Hyperparameters>,
    /// Maximise the posterior under weak log-normal lengthscale and noise priors instead of the
    /// plain likelihood. Off by default: it was worse than plain likelihood on the benchmarks.
    pub lengthscale_prior: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            kernel: Kernel::Matern52,
            restarts: 2,
            screen: 2,
            max_iter: 50,
            seed: 0,
            warm_start: None,
            lengthscale_prior: false,
        }
    }
}

/// A posterior prediction in output units (latent function, noise excluded).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Posterior mean.
    pub mean: f64,
    /// Posterior standard deviation (never negative).
    pub std: f64,
}

/// Leave-one-out cross-validation metrics, in output units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LooMetrics {
    /// Root mean squared LOO error.
    pub rmse: f64,
    /// Coefficient of determination of the LOO predictions (None for constant outputs).
    pub r2: Option<f64>,
    /// Fraction of points inside their 95 % LOO predictive interval (≈ 0.95 when calibrated).
    pub coverage_95: f64,
    /// Mean squared standardised LOO residual (≈ 1 when calibrated; > 1 overconfident).
    pub mean_z2: f64,
    /// Per-point LOO predictions (mean, predictive std including noise).
    pub predictions: Vec<Prediction>,
}

/// A fitted Gaussian process on unit-scaled features.
#[derive(Debug, Clone)]
pub struct Gp {
    n: usize,
    d: usize,
    x: Vec<f64>,
    ys: Vec<f64>,
    extra: Vec<f64>,
    y_mean: f64,
    y_scale: f64,
    hyp: Hyperparameters,
    inv_ls2: Vec<f64>,
    chol: Cholesky,
    alpha: Vec<f64>,
    lml: f64,
}

struct Data<'a> {
    prior: bool,
    n: usize,
    d: usize,
    x: &'a [f64],
    ys: &'a [f64],
    extra: &'a [f64],
}

/// Standardisation of outputs: mean and scale; constant outputs get scale 1 (a flat model).
fn standardise(y: &[f64]) -> (f64, f64) {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let scale = var.sqrt();
    if scale > 1e-12 * mean.abs().max(1e-300) && scale.is_finite() && scale > 0.0 {
        (mean, scale)
    } else {
        (mean, 1.0)
    }
}

impl Data<'_> {
    /// Builds K and, when asked, caches (k, dk/dr²) for each pair i > j.
    fn kernel_matrix(
        &self,
        hyp: &Hyperparameters,
        pairs: Option<&mut Vec<(f64, f64)>>,
    ) -> Vec<f64> {
        let (n, d) = (self.n, self.d);
        let inv: Vec<f64> = hyp.lengthscales.iter().map(|l| 1.0 / (l * l)).collect();
        let sf2 = hyp.signal_variance;
        let mut k = vec![0.0; n * n];
        let mut cache = pairs;
        if let Some(c) = cache.as_deref_mut() {
            c.clear();
        }
        for i in 0..n {
            let xi = &self.x[i * d..(i + 1) * d];
            for j in 0..i {
                let xj = &self.x[j * d..(j + 1) * d];
                let r2: f64 = xi
                    .iter()
                    .zip(xj)
                    .zip(&inv)
                    .map(|((a, b), w)| (a - b) * (a - b) * w)
                    .sum();
                let (kv, dk) = hyp.kernel.eval(r2);
                k[i * n + j] = sf2 * kv;
                k[j * n + i] = sf2 * kv;
                if let Some(c) = cache.as_deref_mut() {
                    c.push((kv, dk));
                }
            }
            k[i * n + i] = sf2 + hyp.noise_variance + self.extra[i];
        }
        k
    }

    /// Negative log marginal likelihood; with `grad`, also its gradient w.r.t. θ.
    fn neg_lml(&self, kernel: Kernel, theta: &[f64], grad: Option<&mut [f64]>) -> f64 {
        let (n, d) = (self.n, self.d);
        // Soft bounds: quadratic walls outside the box keep L-BFGS unconstrained.
        let mut penalty = 0.0;
        let bounds = |k: usize| {
            if k < d {
                LOG_LS
            } else if k == d {
                LOG_SF2
            } else {
                LOG_SN2
            }
        };
        let mut pgrad = vec![0.0; theta.len()];
        for (k, t) in theta.iter().enumerate() {
            let (lo, hi) = bounds(k);
            let excess = if *t > hi {
                t - hi
            } else if *t < lo {
                t - lo
            } else {
                0.0
            };
            penalty += 10.0 * excess * excess;
            pgrad[k] = 20.0 * excess;
            if self.prior && k < d {
                let mu = std::f64::consts::SQRT_2 + 0.5 * (d as f64).ln();
                penalty += (t - mu).powi(2) / (2.0 * LS_PRIOR_SD2);
                pgrad[k] += (t - mu) / LS_PRIOR_SD2;
            } else if self.prior && k == d + 1 {
                let (mu, var) = NOISE_PRIOR;
                penalty += (t - mu).powi(2) / (2.0 * var);
                pgrad[k] += (t - mu) / var;
            }
        }
        let hyp = Hyperparameters::from_theta_raw(kernel, theta);
        if !hyp.is_valid_for(d) {
            return f64::INFINITY;
        }
        let want_grad = grad.is_some();
        let mut pairs = Vec::new();
        let k = self.kernel_matrix(&hyp, want_grad.then_some(&mut pairs));
        let Some(chol) = Cholesky::new(&k, n) else {
            return f64::INFINITY;
        };
        let mut alpha = self.ys.to_vec();
        chol.solve(&mut alpha);
        let fit: f64 = alpha.iter().zip(self.ys).map(|(a, y)| a * y).sum();
        let value = 0.5 * fit + 0.5 * chol.log_det() + 0.5 * n as f64 * LN_2PI + penalty;
        if let Some(g) = grad {
            let kinv = chol.inverse();
            let sf2 = hyp.signal_variance;
            let inv: Vec<f64> = hyp.lengthscales.iter().map(|l| 1.0 / (l * l)).collect();
            g.iter_mut().for_each(|v| *v = 0.0);
            let mut g_sf2 = 0.0;
            let mut g_sn2 = 0.0;
            let mut p = 0;
            for i in 0..n {
                let xi = &self.x[i * d..(i + 1) * d];
                for j in 0..i {
                    let w = alpha[i] * alpha[j] - kinv[i * n + j];
                    let (kv, dk) = pairs[p];
                    p += 1;
                    g_sf2 += w * sf2 * kv;
                    let xj = &self.x[j * d..(j + 1) * d];
                    let coef = -2.0 * w * sf2 * dk;
                    for ((gd, (a, b)), iw) in g[..d].iter_mut().zip(xi.iter().zip(xj)).zip(&inv) {
                        *gd += coef * (a - b) * (a - b) * iw;
                    }
                }
                let w_ii = alpha[i] * alpha[i] - kinv[i * n + i];
                g_sf2 += 0.5 * w_ii * sf2;
                g_sn2 += 0.5 * w_ii * hyp.noise_variance;
            }
            g[d] = g_sf2;
            g[d + 1] = g_sn2;
            // Gradient of the likelihood → of the negative, plus the walls.
            for (gk, pk) in g.iter_mut().zip(&pgrad) {
                *gk = -*gk + pk;
            }
        }
        value
    }
}

impl Gp {
    /// Fits a GP to features `x` (rows of equal length, unit-scaled), outputs `y` and per-point
    /// noise standard deviations `noise_sd` (0 when unknown), choosing hyperparameters by
    /// multi-start L-BFGS on the log marginal likelihood.
    pub fn fit(x: &[Vec<f64>], y: &[f64], noise_sd: &[f64], opts: &FitOptions) -> Result<Gp> {
        let (flat, n, d) = Self::check(x, y, noise_sd)?;
        let (y_mean, y_scale) = standardise(y);
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_scale).collect();
        let extra: Vec<f64> = noise_sd.iter().map(|s| (s / y_scale).powi(2)).collect();
        let data = Data {
            prior: opts.lengthscale_prior,
            n,
            d,
            x: &flat,
            ys: &ys,
            extra: &extra,
        };
        let kernel = opts.kernel;

        let default = Hyperparameters {
            kernel,
            lengthscales: vec![0.5; d],
            signal_variance: 1.0,
            noise_variance: 1e-3,
        };
        let mut starts = vec![default.theta()];
        if let Some(w) = opts.warm_start.as_ref().filter(|w| w.is_valid_for(d)) {
            starts.push(w.theta());
        }
        // Screen random starts by likelihood value (one Cholesky each), keep the best few.
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x6B69_6C6E);
        let mut screened: Vec<(f64, Vec<f64>)> = (0..opts.screen)
            .map(|_| {
                let mut t: Vec<f64> = (0..d)
                    .map(|_| rng.random_range((0.03f64).ln()..(3.0f64).ln()))
                    .collect();
                t.push(rng.random_range((0.3f64).ln()..(3.0f64).ln()));
                t.push(rng.random_range((1e-6f64).ln()..(1e-1f64).ln()));
                (data.neg_lml(kernel, &t, None), t)
            })
            .filter(|(v, _)| v.is_finite())
            .collect();
        screened.sort_by(|a, b| a.0.total_cmp(&b.0));
        // Large data sets have a well-defined likelihood and cost O(n³) per evaluation: fewer starts.
        let restarts = if n > 300 {
            0
        } else if n > 150 {
            opts.restarts.min(1)
        } else {
            opts.restarts
        };
        starts.extend(screened.into_iter().take(restarts).map(|(_, t)| t));

        let cfg = LbfgsConfig {
            max_iter: opts.max_iter,
            gtol: 1e-5,
            ftol: 1e-9,
            ..Default::default()
        };
        let mut best: Option<(f64, Vec<f64>)> = None;
        for start in &starts {
            let m = lbfgs::minimize(|t, g| data.neg_lml(kernel, t, Some(g)), start, cfg);
            if m.f.is_finite() && best.as_ref().is_none_or(|(f, _)| m.f < *f) {
                best = Some((m.f, m.x));
            }
        }
        let theta = best.map(|(_, t)| t).unwrap_or_else(|| default.theta());
        let hyp = Hyperparameters::from_theta(kernel, &theta);
        Self::assemble(flat, n, d, ys, extra, y_mean, y_scale, hyp)
    }

    /// Builds a GP with given hyperparameters (no optimisation): used to restore a saved model.
    pub fn with_hyperparameters(
        x: &[Vec<f64>],
        y: &[f64],
        noise_sd: &[f64],
        hyp: Hyperparameters,
    ) -> Result<Gp> {
        let (flat, n, d) = Self::check(x, y, noise_sd)?;
        if !hyp.is_valid_for(d) {
            return Err(Error::Numerical(format!(
                "saved hyperparameters do not fit the {d} features of this space"
            )));
        }
        let (y_mean, y_scale) = standardise(y);
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_scale).collect();
        let extra: Vec<f64> = noise_sd.iter().map(|s| (s / y_scale).powi(2)).collect();
        Self::assemble(flat, n, d, ys, extra, y_mean, y_scale, hyp)
    }

    fn check(x: &[Vec<f64>], y: &[f64], noise_sd: &[f64]) -> Result<(Vec<f64>, usize, usize)> {
        let n = x.len();
        if n == 0 {
            return Err(Error::MissingState(
                "no experiments to fit a model to".into(),
            ));
        }
        let d = x[0].len();
        if d == 0 || x.iter().any(|r| r.len() != d) || y.len() != n || noise_sd.len() != n {
            return Err(Error::Numerical("inconsistent training data shapes".into()));
        }
        let finite = |v: &f64| v.is_finite();
        if !y.iter().all(finite)
            || !x.iter().flatten().all(finite)
            || !noise_sd.iter().all(|s| s.is_finite() && *s >= 0.0)
        {
            return Err(Error::Numerical(
                "training data contains NaN or infinite values".into(),
            ));
        }
        Ok((x.iter().flatten().copied().collect(), n, d))
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        x: Vec<f64>,
        n: usize,
        d: usize,
        ys: Vec<f64>,
        extra: Vec<f64>,
        y_mean: f64,
        y_scale: f64,
        hyp: Hyperparameters,
    ) -> Result<Gp> {
        let data = Data {
            prior: false,
            n,
            d,
            x: &x,
            ys: &ys,
            extra: &extra,
        };
        let k = data.kernel_matrix(&hyp, None);
        let chol = Cholesky::new(&k, n).ok_or_else(|| {
            Error::Numerical("covariance matrix is not positive definite even with jitter".into())
        })?;
        let mut alpha = ys.clone();
        chol.solve(&mut alpha);
        let fit: f64 = alpha.iter().zip(&ys).map(|(a, y)| a * y).sum();
        let lml = -0.5 * fit - 0.5 * chol.log_det() - 0.5 * n as f64 * LN_2PI;
        let inv_ls2 = hyp.lengthscales.iter().map(|l| 1.0 / (l * l)).collect();
        Ok(Gp {
            n,
            d,
            x,
            ys,
            extra,
            y_mean,
            y_scale,
            hyp,
            inv_ls2,
            chol,
            alpha,
            lml,
        })
    }

    /// The fitted hyperparameters.
    pub fn hyperparameters(&self) -> &Hyperparameters {
        &self.hyp
    }

    /// Log marginal likelihood of the standardised data at the fitted hyperparameters.
    pub fn log_marginal_likelihood(&self) -> f64 {
        self.lml
    }

    /// Number of training points (including fantasies).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Standardised training outputs.
    pub fn standardised_outputs(&self) -> &[f64] {
        &self.ys
    }

    /// Converts an output value to standardised units.
    pub fn standardise(&self, y: f64) -> f64 {
        (y - self.y_mean) / self.y_scale
    }

    /// The output scale used for standardisation.
    pub fn output_scale(&self) -> f64 {
        self.y_scale
    }

    fn kvec(&self, f: &[f64], dk_out: Option<&mut Vec<f64>>) -> Vec<f64> {
        let (n, d) = (self.n, self.d);
        let sf2 = self.hyp.signal_variance;
        let mut k = Vec::with_capacity(n);
        let mut dks = dk_out;
        for i in 0..n {
            let xi = &self.x[i * d..(i + 1) * d];
            let r2: f64 = xi
                .iter()
                .zip(f)
                .zip(&self.inv_ls2)
                .map(|((a, b), w)| (a - b) * (a - b) * w)
                .sum();
            let (kv, dk) = self.hyp.kernel.eval(r2);
            k.push(sf2 * kv);
            if let Some(v) = dks.as_deref_mut() {
                v.push(sf2 * dk);
            }
        }
        k
    }

    /// Posterior mean and variance of the latent function in standardised units.
    pub fn predict_standardised(&self, f: &[f64]) -> (f64, f64) {
        let k = self.kvec(f, None);
        let mu: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let mut v = k;
        self.chol.solve_lower(&mut v);
        let var = (self.hyp.signal_variance - v.iter().map(|x| x * x).sum::<f64>()).max(0.0);
        (mu, var)
    }

    /// Posterior mean and variance (standardised) with their gradients w.r.t. the features.
    pub fn predict_with_gradient(
        &self,
        f: &[f64],
        dmu: &mut [f64],
        dvar: &mut [f64],
    ) -> (f64, f64) {
        let d = self.d;
        let mut dks = Vec::with_capacity(self.n);
        let k = self.kvec(f, Some(&mut dks));
        let mu: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let mut w = k;
        self.chol.solve_lower(&mut w);
        let var_raw = self.hyp.signal_variance - w.iter().map(|x| x * x).sum::<f64>();
        self.chol.solve_upper(&mut w);
        dmu.iter_mut().for_each(|v| *v = 0.0);
        dvar.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..self.n {
            let xi = &self.x[i * d..(i + 1) * d];
            // dk_i/df_j = sf2 dk/dr² · 2 (f_j - x_ij) / ℓ_j².
            let a = dks[i] * 2.0 * self.alpha[i];
            let b = -2.0 * dks[i] * 2.0 * w[i];
            for j in 0..d {
                let t = (f[j] - xi[j]) * self.inv_ls2[j];
                dmu[j] += a * t;
                dvar[j] += b * t;
            }
        }
        if var_raw <= 0.0 {
            dvar.iter_mut().for_each(|v| *v = 0.0);
        }
        (mu, var_raw.max(0.0))
    }

    /// Posterior mean and standard deviation in output units.
    pub fn predict(&self, f: &[f64]) -> Prediction {
        let (mu, var) = self.predict_standardised(f);
        Prediction {
            mean: self.y_mean + self.y_scale * mu,
            std: self.y_scale * var.sqrt(),
        }
    }

    /// Closed-form leave-one-out metrics from the factor (Rasmussen & Williams eq. 5.12).
    pub fn loo(&self) -> LooMetrics {
        let n = self.n;
        let kinv = self.chol.inverse();
        let mut predictions = Vec::with_capacity(n);
        let (mut sse, mut sz2, mut inside) = (0.0, 0.0, 0usize);
        for i in 0..n {
            let kii = kinv[i * n + i].max(1e-300);
            let resid = self.alpha[i] / kii; // y_i - μ_{-i}
            let sd = (1.0 / kii).sqrt();
            predictions.push(Prediction {
                mean: self.y_mean + self.y_scale * (self.ys[i] - resid),
                std: self.y_scale * sd,
            });
            sse += (resid * self.y_scale).powi(2);
            let z = resid / sd;
            sz2 += z * z;
            if z.abs() <= 1.959_963_984_540_054 {
                inside += 1;
            }
        }
        let nf = n as f64;
        let ss_tot: f64 = self.ys.iter().map(|v| (v * self.y_scale).powi(2)).sum();
        LooMetrics {
            rmse: (sse / nf).sqrt(),
            r2: (ss_tot > 0.0).then(|| 1.0 - sse / ss_tot),
            coverage_95: inside as f64 / nf,
            mean_z2: sz2 / nf,
            predictions,
        }
    }

    /// Returns the GP conditioned on one more (fantasy) observation at features `f` with
    /// standardised value `ys`, keeping the hyperparameters (kriging believer, constant liar).
    pub fn condition_on(&self, f: &[f64], ys: f64) -> Option<Gp> {
        if f.len() != self.d || !ys.is_finite() {
            return None;
        }
        let c = self.kvec(f, None);
        let chol = self
            .chol
            .append(&c, self.hyp.signal_variance + self.hyp.noise_variance)?;
        let mut g = self.clone();
        g.x.extend_from_slice(f);
        g.ys.push(ys);
        g.extra.push(0.0);
        g.n += 1;
        let mut alpha = g.ys.clone();
        chol.solve(&mut alpha);
        g.alpha = alpha;
        g.chol = chol;
        Some(g)
    }
}

#[cfg(test)]
mod tests;
