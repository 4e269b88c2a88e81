//! Acquisition optimisation over mixed spaces and batch selection.
//!
//! Continuous and integer variables are searched in a relaxed unit box (integers as reals),
//! categoricals are fixed per start (stratified over every level combination when there are
//! few). Random and incumbent-perturbation candidates are screened, the best start L-BFGS on
//! the relaxed coordinates (through a smooth `u = (1 - cos z) / 2` box map), then integers are
//! rounded and a discrete hill-climb (±1 on integers, every other level on categoricals) runs
//! on rounded points. All comparisons use rounded points, so rounding happens inside the search.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::acquisition::Acquisition;
use crate::gp::Gp;
use crate::lbfgs::{self, LbfgsConfig};
use crate::model::{Goal, Surrogate};
use crate::space::{Domain, SearchSpace};

/// Largest number of categorical level combinations enumerated exactly.
const MAX_ENUMERATED_COMBOS: u64 = 64;
/// Points closer than this (Euclidean, in GP features) count as the same point.
const SAME_POINT: f64 = 1e-6;

/// How a batch of q points is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BatchMethod {
    /// Kriging believer: each chosen point is added with its posterior mean as a fantasy.
    #[default]
    KrigingBeliever,
    /// Constant liar: each chosen point is added with the best observed value as the lie.
    ConstantLiar,
}

/// Options for [`suggest`].
#[derive(Debug, Clone)]
pub struct SuggestOptions {
    /// Acquisition to maximise.
    pub acquisition: Acquisition,
    /// Number of points.
    pub q: usize,
    /// Batch construction.
    pub batch: BatchMethod,
    /// Random candidates screened (0 = automatic).
    pub candidates: usize,
    /// Local L-BFGS runs per point.
    pub local_starts: usize,
    /// Seed (the result is a pure function of the model, the options and the seed).
    pub seed: u64,
    /// Linear input constraints every suggestion meets (index form).
    pub constraints: crate::constraint::Indexed,
}

impl Default for SuggestOptions {
    fn default() -> Self {
        SuggestOptions {
            acquisition: Acquisition::default(),
            q: 1,
            batch: BatchMethod::default(),
            candidates: 0,
            local_starts: 5,
            seed: 0,
            constraints: Vec::new(),
        }
    }
}

/// One suggested point with the model's view of it (output units).
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    /// Raw coordinates (values, integers, category indices).
    pub raw: Vec<f64>,
    /// Posterior mean.
    pub mean: f64,
    /// Posterior std.
    pub std: f64,
    /// Acquisition figure in user terms (EI in output units, PI probability, UCB bound).
    pub acquisition: f64,
}

struct Layout {
    /// (variable index, feature index) of each real or integer variable.
    cont: Vec<(usize, usize)>,
    /// Variable indices of integer variables.
    ints: Vec<usize>,
    /// (variable index, number of levels) of categoricals.
    cats: Vec<(usize, usize)>,
}

impl Layout {
    fn new(space: &SearchSpace) -> Self {
        let (mut cont, mut ints, mut cats) = (Vec::new(), Vec::new(), Vec::new());
        let mut off = 0;
        for (i, v) in space.variables().iter().enumerate() {
            match &v.domain {
                Domain::Real { .. } => cont.push((i, off)),
                Domain::Integer { .. } => {
                    cont.push((i, off));
                    ints.push(i);
                }
                Domain::Categorical { categories } => cats.push((i, categories.len())),
            }
            off += v.n_features();
        }
        Layout { cont, ints, cats }
    }

    fn combos(&self) -> u64 {
        self.cats
            .iter()
            .fold(1u64, |a, (_, k)| a.saturating_mul(*k as u64))
    }
}

/// Maps a relaxed unit coordinate of a real/integer variable to its raw value (integers rounded).
fn unit_to_raw(space: &SearchSpace, var: usize, u: f64) -> f64 {
    let v = &space.variables()[var];
    match &v.domain {
        Domain::Integer { lower, upper } => {
            (*lower as f64 + u.clamp(0.0, 1.0) * (upper - lower) as f64).round()
        }
        _ => v.from_unit(u),
    }
}

/// Relaxed unit coordinate of a raw real/integer value (inverse of the feature map).
fn raw_to_unit(space: &SearchSpace, var: usize, raw: f64) -> f64 {
    let mut f = [0.0];
    space.variables()[var].write_features(raw, &mut f);
    f[0].clamp(0.0, 1.0)
}

struct Searcher<'a> {
    space: &'a SearchSpace,
    layout: Layout,
    acq: Acquisition,
    gp: Gp,
    best: f64,
    constraints: &'a crate::constraint::Indexed,
}

impl Searcher<'_> {
    fn value(&self, f: &[f64]) -> f64 {
        let (mu, var) = self.gp.predict_standardised(f);
        self.acq.eval(mu, var.sqrt(), self.best).value
    }

    /// The acquisition at raw coordinates; minus infinity outside the constraints, so the
    /// screen, the local runs and the discrete climb all drop such points.
    fn value_raw(&self, raw: &[f64]) -> f64 {
        if !crate::constraint::feasible(self.constraints, raw) {
            return f64::NEG_INFINITY;
        }
        self.value(&self.space.features(raw))
    }

    /// L-BFGS on the relaxed continuous coordinates of `raw` (categoricals fixed); returns the
    /// rounded result.
    fn local(&self, raw: &[f64]) -> Vec<f64> {
        let cont = &self.layout.cont;
        if cont.is_empty() {
            return raw.to_vec();
        }
        let base = self.space.features(raw);
        let d = base.len();
        let z0: Vec<f64> = cont
            .iter()
            .map(|(v, _)| {
                (1.0 - 2.0 * raw_to_unit(self.space, *v, raw[*v]).clamp(1e-4, 1.0 - 1e-4)).acos()
            })
            .collect();
        let objective = |z: &[f64], g: &mut [f64]| {
            let mut f = base.clone();
            for ((_, fi), zi) in cont.iter().zip(z) {
                f[*fi] = 0.5 * (1.0 - zi.cos());
            }
            let (mut dmu, mut dvar) = (vec![0.0; d], vec![0.0; d]);
            let (mu, var) = self.gp.predict_with_gradient(&f, &mut dmu, &mut dvar);
            let sigma = var.sqrt();
            let a = self.acq.eval(mu, sigma, self.best);
            for (gk, ((_, fi), zi)) in g.iter_mut().zip(cont.iter().zip(z)) {
                let dsig = if sigma > 1e-12 {
                    dvar[*fi] / (2.0 * sigma)
                } else {
                    0.0
                };
                let df = a.d_mu * dmu[*fi] + a.d_sigma * dsig;
                *gk = -df * 0.5 * zi.sin();
            }
            -a.value
        };
        let m = lbfgs::minimize(
            objective,
            &z0,
            LbfgsConfig {
                max_iter: 40,
                gtol: 1e-7,
                ftol: 1e-12,
                ..Default::default()
            },
        );
        let mut out = raw.to_vec();
        for ((v, _), zi) in cont.iter().zip(&m.x) {
            out[*v] = unit_to_raw(self.space, *v, 0.5 * (1.0 - zi.cos()));
        }
        out
    }

    /// Greedy hill-climb over discrete neighbours of a rounded point.
    fn discrete_climb(&self, mut raw: Vec<f64>, mut value: f64) -> (Vec<f64>, f64) {
        if self.layout.ints.is_empty() && self.layout.cats.is_empty() {
            return (raw, value);
        }
        for _ in 0..20 {
            let mut best: Option<(Vec<f64>, f64)> = None;
            let mut consider = |cand: Vec<f64>| {
                let v = self.value_raw(&cand);
                if v > best.as_ref().map_or(value, |b| b.1) {
                    best = Some((cand, v));
                }
            };
            for &i in &self.layout.ints {
                if let Domain::Integer { lower, upper } = self.space.variables()[i].domain {
                    for step in [-1.0, 1.0] {
                        let x = raw[i] + step;
                        if x >= lower as f64 && x <= upper as f64 {
                            let mut c = raw.clone();
                            c[i] = x;
                            consider(c);
                        }
                    }
                }
            }
            for &(i, k) in &self.layout.cats {
                for level in 0..k {
                    if level as f64 != raw[i] {
                        let mut c = raw.clone();
                        c[i] = level as f64;
                        consider(c);
                    }
                }
            }
            match best {
                Some((c, v)) => {
                    raw = c;
                    value = v;
                }
                None => break,
            }
        }
        (raw, value)
    }
}

fn gaussian(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn is_new(f: &[f64], avoid: &[Vec<f64>]) -> bool {
    avoid.iter().all(|a| {
        a.iter().zip(f).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() > SAME_POINT * SAME_POINT
    })
}

/// Every point of a fully discrete space, in mixed-radix order.
fn enumerate_all(space: &SearchSpace, count: u64) -> Vec<Vec<f64>> {
    (0..count)
        .map(|mut idx| {
            space
                .variables()
                .iter()
                .map(|v| match &v.domain {
                    Domain::Integer { lower, upper } => {
                        let k = (upper - lower + 1) as u64;
                        let digit = idx % k;
                        idx /= k;
                        *lower as f64 + digit as f64
                    }
                    Domain::Categorical { categories } => {
                        let k = categories.len() as u64;
                        let digit = idx % k;
                        idx /= k;
                        digit as f64
                    }
                    Domain::Real { lower, .. } => *lower,
                })
                .collect()
        })
        .collect()
}

fn candidates(
    s: &Searcher<'_>,
    model: &Surrogate,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<Vec<f64>> {
    let space = s.space;
    if let Some(count) = space
        .discrete_cardinality()
        .filter(|c| *c as usize <= n.max(1))
    {
        return enumerate_all(space, count);
    }
    let combos = s.layout.combos();
    let stratify = !s.layout.cats.is_empty() && combos <= MAX_ENUMERATED_COMBOS;
    let mut out = Vec::with_capacity(n);
    let n_random = n - n / 4;
    for i in 0..n_random {
        let u: Vec<f64> = (0..space.len()).map(|_| rng.random::<f64>()).collect();
        let mut raw = space.from_unit(&u);
        if stratify {
            let mut idx = i as u64 % combos;
            for &(v, k) in &s.layout.cats {
                raw[v] = (idx % k as u64) as f64;
                idx /= k as u64;
            }
        }
        out.push(raw);
    }
    // Perturbations of the best observed points sharpen convergence near the incumbent.
    let ys = model.gp().standardised_outputs();
    let mut order: Vec<usize> = (0..model.raws().len()).collect();
    order.sort_by(|a, b| ys[*a].total_cmp(&ys[*b]));
    let top: Vec<&Vec<f64>> = order.iter().take(5).map(|i| &model.raws()[*i]).collect();
    if !top.is_empty() {
        for i in 0..(n - n_random) {
            let mut raw = top[i % top.len()].clone();
            let scale = [0.005, 0.03, 0.1, 0.25][i % 4];
            for &(v, _) in &s.layout.cont {
                let u = raw_to_unit(space, v, raw[v]) + scale * gaussian(rng);
                raw[v] = unit_to_raw(space, v, u.clamp(0.0, 1.0));
            }
            for &(v, k) in &s.layout.cats {
                if rng.random::<f64>() < 0.15 {
                    raw[v] = rng.random_range(0..k) as f64;
                }
            }
            out.push(raw);
        }
    }
    out
}

/// Suggests up to `opts.q` distinct points, none equal to an observed point. Fewer come back only
/// when a discrete space has no unobserved point left.
pub fn suggest(model: &Surrogate, opts: &SuggestOptions) -> Vec<Suggestion> {
    let space = model.space();
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let layout = Layout::new(space);
    let n_cand = if opts.candidates > 0 {
        opts.candidates
    } else {
        // Each candidate costs O(n²) (a triangular solve): shrink the screen for large data.
        let n = model.raws().len().max(1) as f64;
        let shrink = (150.0 / n).powi(2).min(1.0);
        (((800 * space.len()).clamp(1000, 5000) as f64 * shrink) as usize).max(500)
    };
    let mut avoid: Vec<Vec<f64>> = model.raws().iter().map(|r| space.features(r)).collect();
    let mut gp = model.gp().clone();
    let mut out = Vec::new();
    let lie = gp
        .standardised_outputs()
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let maximize = model.goal() == Goal::Maximize;
    for _ in 0..opts.q {
        let best = gp
            .standardised_outputs()
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let searcher = Searcher {
            space,
            layout: Layout {
                cont: layout.cont.clone(),
                ints: layout.ints.clone(),
                cats: layout.cats.clone(),
            },
            acq: opts.acquisition.standardised(gp.output_scale()),
            gp,
            best,
            constraints: &opts.constraints,
        };
        let cands = candidates(&searcher, model, n_cand, &mut rng);
        let mut pool: Vec<(f64, Vec<f64>)> = cands
            .into_iter()
            .map(|r| (searcher.value_raw(&r), r))
            .filter(|(v, _)| v.is_finite())
            .collect();
        pool.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut starts: Vec<Vec<f64>> = Vec::new();
        for (_, r) in &pool {
            if starts.len() >= opts.local_starts {
                break;
            }
            let f = space.features(r);
            if is_new(
                &f,
                &starts.iter().map(|s| space.features(s)).collect::<Vec<_>>(),
            ) {
                starts.push(r.clone());
            }
        }
        for start in starts {
            let local = searcher.local(&start);
            let v = searcher.value_raw(&local);
            let (climbed, cv) = searcher.discrete_climb(local, v);
            if cv.is_finite() {
                pool.push((cv, climbed));
            }
        }
        pool.sort_by(|a, b| b.0.total_cmp(&a.0));
        let chosen = pool
            .into_iter()
            .find(|(_, r)| is_new(&space.features(r), &avoid));
        gp = searcher.gp;
        let Some((value, raw)) = chosen else { break };
        let f = space.features(&raw);
        let p = model.predict(&raw);
        out.push(Suggestion {
            acquisition: opts
                .acquisition
                .report(value, p.mean, p.std, gp.output_scale(), maximize),
            mean: p.mean,
            std: p.std,
            raw,
        });
        let fantasy = match opts.batch {
            BatchMethod::KrigingBeliever => gp.predict_standardised(&f).0,
            BatchMethod::ConstantLiar => lie,
        };
        if out.len() < opts.q
            && let Some(next) = gp.condition_on(&f, fantasy)
        {
            gp = next;
        }
        avoid.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gp::FitOptions;
    use crate::space::Variable;

    fn fit(
        space: &SearchSpace,
        raws: &[Vec<f64>],
        f: impl Fn(&[f64]) -> f64,
        goal: Goal,
    ) -> Surrogate {
        let ys: Vec<f64> = raws.iter().map(|r| f(r)).collect();
        Surrogate::fit(
            space,
            raws,
            &ys,
            &vec![0.0; ys.len()],
            goal,
            &FitOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn finds_the_maximum_of_a_1d_bump() {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 1.0).unwrap()]).unwrap();
        let f = |r: &[f64]| -(r[0] - 0.3).powi(2);
        let mut raws: Vec<Vec<f64>> = [0.0, 0.5, 0.9, 0.1].iter().map(|x| vec![*x]).collect();
        for it in 0..8 {
            let m = fit(&space, &raws, f, Goal::Maximize);
            let s = suggest(
                &m,
                &SuggestOptions {
                    seed: it,
                    ..Default::default()
                },
            );
            raws.push(s[0].raw.clone());
        }
        let best = raws.iter().map(|r| f(r)).fold(f64::NEG_INFINITY, f64::max);
        assert!(best > -1e-4, "best {best}");
    }

    #[test]
    fn batches_are_distinct_and_new_for_every_strategy() {
        let space = SearchSpace::new(vec![
            Variable::real("x", -1.0, 1.0).unwrap(),
            Variable::integer("k", 0, 3).unwrap(),
            Variable::categorical("c", &["a", "b"]).unwrap(),
        ])
        .unwrap();
        let raws = vec![
            vec![0.0, 1.0, 0.0],
            vec![0.5, 2.0, 1.0],
            vec![-0.5, 0.0, 1.0],
            vec![0.9, 3.0, 0.0],
        ];
        let m = fit(
            &space,
            &raws,
            |r| r[0] * r[0] + 0.1 * r[1] + r[2],
            Goal::Minimize,
        );
        for acquisition in [
            Acquisition::Ei { xi: 0.01 },
            Acquisition::Pi { xi: 0.01 },
            Acquisition::Ucb { beta: 2.0 },
        ] {
            for batch in [BatchMethod::KrigingBeliever, BatchMethod::ConstantLiar] {
                let s = suggest(
                    &m,
                    &SuggestOptions {
                        acquisition,
                        batch,
                        q: 4,
                        seed: 1,
                        ..Default::default()
                    },
                );
                assert_eq!(s.len(), 4);
                let mut seen: Vec<Vec<f64>> = raws.clone();
                for sug in &s {
                    assert!(
                        !seen.contains(&sug.raw),
                        "{acquisition:?} {batch:?} repeated {:?}",
                        sug.raw
                    );
                    assert!(space.parse_inputs(&space.to_inputs(&sug.raw)).is_ok());
                    assert!(sug.mean.is_finite() && sug.std >= 0.0 && sug.acquisition.is_finite());
                    seen.push(sug.raw.clone());
                }
            }
        }
    }

    #[test]
    fn exhausted_discrete_spaces_return_fewer_points() {
        let space =
            SearchSpace::new(vec![Variable::categorical("c", &["a", "b", "c"]).unwrap()]).unwrap();
        let raws = vec![vec![0.0], vec![1.0]];
        let m = fit(&space, &raws, |r| r[0], Goal::Maximize);
        let s = suggest(
            &m,
            &SuggestOptions {
                q: 3,
                ..Default::default()
            },
        );
        assert_eq!(
            s.iter().map(|s| s.raw.clone()).collect::<Vec<_>>(),
            vec![vec![2.0]]
        );
    }

    #[test]
    fn suggestions_are_deterministic_for_a_seed() {
        let space = SearchSpace::new(vec![
            Variable::real("x", 0.0, 1.0).unwrap(),
            Variable::real("y", 0.0, 1.0).unwrap(),
        ])
        .unwrap();
        let raws = vec![vec![0.1, 0.2], vec![0.8, 0.3], vec![0.4, 0.9]];
        let m = fit(&space, &raws, |r| r[0] + r[1], Goal::Minimize);
        let a = suggest(
            &m,
            &SuggestOptions {
                q: 2,
                seed: 5,
                ..Default::default()
            },
        );
        let b = suggest(
            &m,
            &SuggestOptions {
                q: 2,
                seed: 5,
                ..Default::default()
            },
        );
        assert_eq!(a, b);
    }
}
