//! Space-filling initial designs (random, Latin hypercube, scrambled Sobol) over mixed spaces.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::SearchSpace;

/// Largest design the library will build in one call.
pub const MAX_DESIGN_POINTS: usize = 10_000;

/// How to fill the space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DesignMethod {
    /// Independent uniform draws.
    Random,
    /// Latin hypercube: one point per stratum in every coordinate.
    Lhs,
    /// Owen-scrambled Sobol sequence (`sobol_burley`).
    Sobol,
}

impl DesignMethod {
    /// Parses "random", "lhs" or "sobol" (case-insensitive).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "random" => Ok(Self::Random),
            "lhs" | "latin" | "latin_hypercube" => Ok(Self::Lhs),
            "sobol" => Ok(Self::Sobol),
            other => Err(Error::InvalidArguments(format!(
                "unknown design method '{other}' (expected lhs, sobol or random)"
            ))),
        }
    }
}

/// Returns `n` unit-cube points (one coordinate per variable) for the given method.
pub fn unit_design(method: DesignMethod, n: usize, dim: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
    if n > MAX_DESIGN_POINTS {
        return Err(Error::InvalidArguments(format!(
            "a design of {n} points exceeds the limit of {MAX_DESIGN_POINTS}"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok(match method {
        DesignMethod::Random => (0..n)
            .map(|_| (0..dim).map(|_| rng.random::<f64>()).collect())
            .collect(),
        DesignMethod::Lhs => {
            let mut pts = vec![vec![0.0; dim]; n];
            for d in 0..dim {
                let mut perm: Vec<usize> = (0..n).collect();
                for i in (1..n).rev() {
                    perm.swap(i, rng.random_range(0..=i));
                }
                for (p, stratum) in pts.iter_mut().zip(perm) {
                    p[d] = (stratum as f64 + rng.random::<f64>()) / n as f64;
                }
            }
            pts
        }
        DesignMethod::Sobol => {
            if dim > sobol_burley::NUM_DIMENSIONS as usize {
                return Err(Error::InvalidArguments(format!(
                    "sobol designs support at most {} variables",
                    sobol_burley::NUM_DIMENSIONS
                )));
            }
            let scramble = rng.random::<u32>();
            (0..n as u32)
                .map(|i| {
                    (0..dim as u32)
                        .map(|d| f64::from(sobol_burley::sample(i, d, scramble)))
                        .collect()
                })
                .collect()
        }
    })
}

/// Returns up to `n` distinct raw points of the space, skipping any in `avoid` (raw coordinates).
/// Fewer than `n` come back only when the space is discrete and nearly exhausted.
pub fn design(
    space: &SearchSpace,
    method: DesignMethod,
    n: usize,
    seed: u64,
    avoid: &[Vec<f64>],
) -> Result<Vec<Vec<f64>>> {
    let dim = space.len();
    let mut out: Vec<Vec<f64>> = Vec::with_capacity(n);
    let mut attempt = 0u64;
    let mut want = n;
    // Discrete spaces can produce repeats; draw again with a new seed a few times.
    while out.len() < n && attempt < 8 {
        for u in unit_design(
            method,
            want,
            dim,
            seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9)),
        )? {
            let raw = space.from_unit(&u);
            if out.len() < n && !out.contains(&raw) && !avoid.contains(&raw) {
                out.push(raw);
            }
        }
        attempt += 1;
        want = (n - out.len()).max(1) * 2;
        if method == DesignMethod::Sobol {
            want = want.max(n);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{Domain, Variable};

    fn mixed() -> SearchSpace {
        SearchSpace::new(vec![
            Variable::real("x", -1.0, 1.0).unwrap(),
            Variable::log_real("r", 1e-3, 1.0).unwrap(),
            Variable::integer("k", 1, 4).unwrap(),
            Variable::categorical("c", &["a", "b", "c"]).unwrap(),
        ])
        .unwrap()
    }

    #[test]
    fn every_method_stays_inside_the_space_and_is_deterministic() {
        let space = mixed();
        for method in [DesignMethod::Random, DesignMethod::Lhs, DesignMethod::Sobol] {
            let a = design(&space, method, 24, 7, &[]).unwrap();
            let b = design(&space, method, 24, 7, &[]).unwrap();
            assert_eq!(a, b, "{method:?} not deterministic");
            assert_eq!(a.len(), 24);
            for p in &a {
                let inputs = space.to_inputs(p);
                assert_eq!(
                    space.parse_inputs(&inputs),
                    Ok(p.clone()),
                    "{method:?} left the space"
                );
            }
        }
    }

    #[test]
    fn lhs_fills_every_stratum_once() {
        let pts = unit_design(DesignMethod::Lhs, 10, 3, 1).unwrap();
        for d in 0..3 {
            let mut strata: Vec<usize> = pts.iter().map(|p| (p[d] * 10.0) as usize).collect();
            strata.sort_unstable();
            assert_eq!(strata, (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn lhs_covers_every_category_evenly() {
        let space = SearchSpace::new(vec![
            Variable::categorical("c", &["a", "b", "c"]).unwrap(),
            Variable::real("x", 0.0, 1.0).unwrap(),
        ])
        .unwrap();
        let pts = design(&space, DesignMethod::Lhs, 9, 3, &[]).unwrap();
        let mut counts = [0; 3];
        for p in &pts {
            counts[p[0] as usize] += 1;
        }
        assert_eq!(counts, [3, 3, 3]);
    }

    #[test]
    fn discrete_spaces_return_distinct_points_and_stop_when_exhausted() {
        let space = SearchSpace::new(vec![
            Variable::integer("k", 0, 2).unwrap(),
            Variable::categorical("c", &["a", "b"]).unwrap(),
        ])
        .unwrap();
        assert!(matches!(
            space.variables()[0].domain,
            Domain::Integer { .. }
        ));
        let avoid = vec![vec![0.0, 0.0]];
        let pts = design(&space, DesignMethod::Random, 20, 5, &avoid).unwrap();
        assert!(pts.len() <= 5);
        assert!(!pts.contains(&avoid[0]));
        let mut sorted = pts.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), pts.len());
    }

    #[test]
    fn oversized_designs_are_refused() {
        assert!(unit_design(DesignMethod::Random, MAX_DESIGN_POINTS + 1, 2, 0).is_err());
    }
}
