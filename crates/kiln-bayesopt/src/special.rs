//! Special functions for the acquisitions: normal pdf/cdf in log space, `erfcx`, and the
//! numerically stable `log h(z)` of LogEI (Ament et al. 2023, "Unexpected improvements to EI").

use std::f64::consts::{PI, SQRT_2};

const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
/// Beyond this |z| the asymptotic series replaces the direct formulas (cancellation guard).
const ASYMPTOTIC_Z: f64 = 20.0;

/// Standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z - LN_SQRT_2PI).exp()
}

/// Standard normal distribution function.
pub fn norm_cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z / SQRT_2)
}

/// Scaled complementary error function `exp(x²) erfc(x)` for `x ≥ 0` (and direct below).
pub fn erfcx(x: f64) -> f64 {
    if x < 25.0 {
        (x * x).exp() * libm::erfc(x)
    } else {
        let x2 = x * x;
        let series = 1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2);
        series / (x * PI.sqrt())
    }
}

/// `ln Φ(z)`, accurate far into the lower tail.
pub fn log_norm_cdf(z: f64) -> f64 {
    if z > -5.0 {
        norm_cdf(z).ln()
    } else {
        (0.5 * erfcx(-z / SQRT_2)).ln() - 0.5 * z * z
    }
}

/// `1 - |z| sqrt(π/2) erfcx(|z|/√2)` for `z ≤ -1`, i.e. `h(z) sqrt(2π) e^{z²/2}`.
fn tail_factor(z: f64) -> f64 {
    let a = z.abs();
    if a > ASYMPTOTIC_Z {
        let w = 1.0 / (a * a);
        w * (1.0 - 3.0 * w + 15.0 * w * w - 105.0 * w * w * w)
    } else {
        1.0 - a * (PI / 2.0).sqrt() * erfcx(a / SQRT_2)
    }
}

/// `ln h(z)` with `h(z) = φ(z) + z Φ(z)`, so that `EI = σ h((f* - μ)/σ)`; finite for all finite z.
pub fn log_h(z: f64) -> f64 {
    if z > -1.0 {
        (norm_pdf(z) + z * norm_cdf(z)).ln()
    } else {
        -0.5 * z * z - LN_SQRT_2PI + tail_factor(z).ln()
    }
}

/// `d ln h / dz = Φ(z) / h(z)`, computed without forming the tiny factors.
pub fn dlog_h(z: f64) -> f64 {
    if z > -1.0 {
        norm_cdf(z) / (norm_pdf(z) + z * norm_cdf(z))
    } else {
        // Φ(z) = ½ erfcx(-z/√2) e^{-z²/2}; h(z) = e^{-z²/2} tail / √(2π).
        let phi_scaled = if z.abs() > ASYMPTOTIC_Z {
            // ½ erfcx(u) √(2π) with u = |z|/√2 expands to (1/|z|)(1 - 1/z² + 3/z⁴ - 15/z⁶).
            let w = 1.0 / (z * z);
            (1.0 - w + 3.0 * w * w - 15.0 * w * w * w) / z.abs()
        } else {
            0.5 * erfcx(-z / SQRT_2) * (2.0 * PI).sqrt()
        };
        phi_scaled / tail_factor(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-2.0, 0.022_750_131_948_179_2),
            (3.0, 0.998_650_101_968_369_9),
        ];
        for (z, p) in cases {
            assert!((norm_cdf(z) - p).abs() < 1e-14, "Φ({z})");
        }
        // ln Φ(-10) = -53.231285150512...; ln Φ(-40) = -804.608442013754...
        assert!((log_norm_cdf(-10.0) + 53.231_285_150_512_9).abs() < 1e-9);
        assert!((log_norm_cdf(-40.0) + 804.608_442_013_754).abs() < 1e-8);
    }

    #[test]
    fn erfcx_is_continuous_across_the_switch() {
        let below = erfcx(25.0 - 1e-9);
        let above = erfcx(25.0 + 1e-9);
        assert!((below / above - 1.0).abs() < 1e-9);
        assert!((erfcx(1.0) - 0.427_583_576_155_807).abs() < 1e-14);
        assert_eq!(erfcx(0.0), 1.0);
    }

    #[test]
    fn log_h_matches_direct_ei_where_representable() {
        for i in 0..=200 {
            let z = -8.0 + i as f64 * 0.065;
            let direct = norm_pdf(z) + z * norm_cdf(z);
            let rel = (log_h(z) - direct.ln()).abs() / direct.ln().abs().max(1.0);
            // Direct evaluation itself loses digits to cancellation deep in the tail.
            let tol = if z < -5.0 { 1e-6 } else { 1e-11 };
            assert!(rel < tol, "z={z}: {} vs {}", log_h(z), direct.ln());
        }
    }

    #[test]
    fn log_h_is_finite_monotone_and_smooth_in_the_far_tail() {
        let mut prev = f64::NEG_INFINITY;
        for i in 0..2000 {
            let z = -1e4 + i as f64 * 5.0;
            let v = log_h(z);
            assert!(v.is_finite() && v > prev, "z={z}");
            prev = v;
        }
        for z in [-1.0, -ASYMPTOTIC_Z] {
            assert!(
                (log_h(z - 1e-9) - log_h(z + 1e-9)).abs() < 1e-6,
                "jump at {z}"
            );
            assert!(
                (dlog_h(z - 1e-9) / dlog_h(z + 1e-9) - 1.0).abs() < 1e-5,
                "gradient jump at {z}"
            );
        }
    }

    #[test]
    fn dlog_h_matches_finite_differences() {
        for z in [
            -300.0_f64, -25.0, -19.0, -6.0, -2.0, -1.0, -0.3, 0.0, 1.5, 6.0,
        ] {
            let eps = 1e-6 * (1.0_f64).max(z.abs());
            let fd = (log_h(z + eps) - log_h(z - eps)) / (2.0 * eps);
            assert!(
                (fd - dlog_h(z)).abs() / dlog_h(z).abs() < 1e-5,
                "z={z}: fd {fd} vs {}",
                dlog_h(z)
            );
        }
    }
}
