//! A small, deterministic L-BFGS minimiser (two-loop recursion, backtracking Armijo search,
//! curvature-guarded updates). Used for GP hyperparameters and acquisition local search.
//!
//! Written here rather than taken from argmin: the two uses need ~100 lines, a plain
//! `FnMut(&[f64], &mut [f64]) -> f64` objective that may return non-finite values (failed
//! Cholesky), and no extra dependency tree.

/// Stopping rules.
#[derive(Debug, Clone, Copy)]
pub struct LbfgsConfig {
    /// Maximum number of iterations.
    pub max_iter: usize,
    /// Number of correction pairs kept.
    pub memory: usize,
    /// Stop when the largest gradient component is below this.
    pub gtol: f64,
    /// Stop when the relative decrease of the objective is below this.
    pub ftol: f64,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            max_iter: 100,
            memory: 7,
            gtol: 1e-6,
            ftol: 1e-10,
        }
    }
}

/// Result of a minimisation.
#[derive(Debug, Clone)]
pub struct Minimum {
    /// Best point found.
    pub x: Vec<f64>,
    /// Objective at `x`.
    pub f: f64,
    /// Iterations performed.
    pub iterations: usize,
}

/// Minimises `f` from `x0`. `f(x, grad)` returns the value and writes the gradient; a
/// non-finite value is treated as "outside the domain" and makes the line search step back.
pub fn minimize<F>(mut f: F, x0: &[f64], cfg: LbfgsConfig) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Minimum {
            x,
            f: f64::INFINITY,
            iterations: 0,
        };
    }
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(cfg.memory);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(cfg.memory);
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut iterations = 0;
    for it in 0..cfg.max_iter {
        iterations = it + 1;
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) < cfg.gtol {
            break;
        }
        let mut d = two_loop(&g, &s_hist, &y_hist);
        let mut slope: f64 = d.iter().zip(&g).map(|(a, b)| a * b).sum();
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = -g.iter().map(|v| v * v).sum::<f64>();
        }
        let mut step = if s_hist.is_empty() {
            1.0 / d.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0)
        } else {
            1.0
        };
        let mut accepted = false;
        let mut f_new = f64::INFINITY;
        for _ in 0..40 {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = f(&x_new, &mut g_new);
            if f_new.is_finite()
                && g_new.iter().all(|v| v.is_finite())
                && f_new <= fx + 1e-4 * step * slope
            {
                accepted = true;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            break;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
        let yy: f64 = y.iter().map(|v| v * v).sum();
        if sy > 1e-12 * yy.sqrt() * s.iter().map(|v| v * v).sum::<f64>().sqrt() && sy > 0.0 {
            if s_hist.len() == cfg.memory {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        let decrease = fx - f_new;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
        if decrease <= cfg.ftol * fx.abs().max(1.0) {
            break;
        }
    }
    Minimum {
        x,
        f: fx,
        iterations,
    }
}

fn two_loop(g: &[f64], s_hist: &[Vec<f64>], y_hist: &[Vec<f64>]) -> Vec<f64> {
    let mut q = g.to_vec();
    let m = s_hist.len();
    let mut alpha = vec![0.0; m];
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for k in (0..m).rev() {
        let rho = 1.0 / dot(&y_hist[k], &s_hist[k]);
        alpha[k] = rho * dot(&s_hist[k], &q);
        for (qi, yi) in q.iter_mut().zip(&y_hist[k]) {
            *qi -= alpha[k] * yi;
        }
    }
    if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
        let gamma = dot(s, y) / dot(y, y);
        for qi in &mut q {
            *qi *= gamma;
        }
    }
    for k in 0..m {
        let rho = 1.0 / dot(&y_hist[k], &s_hist[k]);
        let beta = rho * dot(&y_hist[k], &q);
        for (qi, si) in q.iter_mut().zip(&s_hist[k]) {
            *qi += (alpha[k] - beta) * si;
        }
    }
    q.iter().map(|v| -v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let cfg = LbfgsConfig {
            max_iter: 500,
            ..Default::default()
        };
        let m = minimize(rosenbrock, &[-1.2, 1.0], cfg);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-4 && (m.x[1] - 1.0).abs() < 1e-4,
            "{:?}",
            m
        );
    }

    #[test]
    fn minimises_an_ill_conditioned_quadratic() {
        let scales = [1.0, 10.0, 100.0, 1000.0];
        let f = |x: &[f64], g: &mut [f64]| {
            let mut v = 0.0;
            for i in 0..4 {
                g[i] = scales[i] * (x[i] - i as f64);
                v += 0.5 * scales[i] * (x[i] - i as f64).powi(2);
            }
            v
        };
        let m = minimize(
            f,
            &[5.0; 4],
            LbfgsConfig {
                max_iter: 200,
                gtol: 1e-9,
                ..Default::default()
            },
        );
        for (i, xi) in m.x.iter().enumerate() {
            assert!((xi - i as f64).abs() < 1e-6, "{:?}", m.x);
        }
    }

    #[test]
    fn steps_back_from_a_non_finite_region() {
        // Domain x > 0; minimum of x - ln x at x = 1.
        let f = |x: &[f64], g: &mut [f64]| {
            if x[0] <= 0.0 {
                return f64::NAN;
            }
            g[0] = 1.0 - 1.0 / x[0];
            x[0] - x[0].ln()
        };
        let m = minimize(f, &[5.0], LbfgsConfig::default());
        assert!((m.x[0] - 1.0).abs() < 1e-5, "{:?}", m);
        let bad = minimize(
            |_x: &[f64], _g: &mut [f64]| f64::NAN,
            &[1.0],
            LbfgsConfig::default(),
        );
        assert_eq!(bad.f, f64::INFINITY);
    }
}
