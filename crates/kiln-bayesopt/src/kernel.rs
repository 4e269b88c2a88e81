//! Stationary ARD kernels (Matérn 5/2, RBF) as functions of the scaled squared distance r².

use serde::{Deserialize, Serialize};

/// The covariance family of the GP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kernel {
    /// Matérn ν = 5/2: twice differentiable, the usual choice for physical responses.
    #[default]
    Matern52,
    /// Squared exponential (RBF): infinitely smooth.
    Rbf,
}

const SQRT5: f64 = 2.236_067_977_499_79;

impl Kernel {
    /// Returns `(k(r²), dk/d(r²))` for unit signal variance.
    #[inline]
    pub fn eval(self, r2: f64) -> (f64, f64) {
        match self {
            Kernel::Rbf => {
                let k = (-0.5 * r2).exp();
                (k, -0.5 * k)
            }
            Kernel::Matern52 => {
                let r = r2.max(0.0).sqrt();
                let e = (-SQRT5 * r).exp();
                let k = (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
                (k, -5.0 / 6.0 * (1.0 + SQRT5 * r) * e)
            }
        }
    }

    /// Parses "matern52"/"matern" or "rbf" (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s
            .to_ascii_lowercase()
            .replace(['-', '_', ' ', '/'], "")
            .as_str()
        {
            "matern52" | "matern" => Some(Kernel::Matern52),
            "rbf" | "se" | "squaredexponential" | "gaussian" => Some(Kernel::Rbf),
            _ => None,
        }
    }

    /// Display name for reports.
    pub fn label(self) -> &'static str {
        match self {
            Kernel::Matern52 => "Matérn 5/2",
            Kernel::Rbf => "RBF",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_are_one_at_zero_and_decay() {
        for k in [Kernel::Matern52, Kernel::Rbf] {
            assert_eq!(k.eval(0.0).0, 1.0);
            let mut prev = 1.0;
            for i in 1..50 {
                let v = k.eval(i as f64 * 0.2).0;
                assert!(v < prev && v > 0.0);
                prev = v;
            }
        }
    }

    #[test]
    fn derivative_matches_finite_differences() {
        for k in [Kernel::Matern52, Kernel::Rbf] {
            for r2 in [1e-3, 0.1, 1.0, 4.0, 20.0] {
                let h = 1e-6 * r2;
                let fd = (k.eval(r2 + h).0 - k.eval(r2 - h).0) / (2.0 * h);
                assert!(
                    (fd - k.eval(r2).1).abs() < 1e-6 * fd.abs().max(1e-8),
                    "{k:?} r2={r2}"
                );
            }
        }
    }

    #[test]
    fn names_parse() {
        assert_eq!(Kernel::parse("Matern-5/2"), Some(Kernel::Matern52));
        assert_eq!(Kernel::parse("RBF"), Some(Kernel::Rbf));
        assert_eq!(Kernel::parse("linear"), None);
    }
}
