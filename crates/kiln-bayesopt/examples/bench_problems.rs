//! Benchmark runner for the skopt comparison: runs Kiln's optimiser (and random search) on
//! Branin, Hartmann-6 and a mixed problem for several seeds and prints simple-regret traces as
//! JSON. Usage: `cargo run --release -p kiln-bayesopt --example bench_problems -- --json [--seeds N]`.

use std::time::Instant;

use kiln_bayesopt::design::{DesignMethod, design};
use kiln_bayesopt::gp::FitOptions;
use kiln_bayesopt::model::{Goal, Surrogate};
use kiln_bayesopt::optimize::{SuggestOptions, suggest};
use kiln_bayesopt::space::{SearchSpace, Variable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const N_INIT: usize = 10;
const BUDGET: usize = 60;

fn branin(x: &[f64]) -> f64 {
    let (a, b, c) = (
        1.0,
        5.1 / (4.0 * std::f64::consts::PI.powi(2)),
        5.0 / std::f64::consts::PI,
    );
    let (r, s, t) = (6.0, 10.0, 1.0 / (8.0 * std::f64::consts::PI));
    a * (x[1] - b * x[0] * x[0] + c * x[0] - r).powi(2) + s * (1.0 - t) * x[0].cos() + s
}

fn hartmann6(x: &[f64]) -> f64 {
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    -(0..4)
        .map(|i| {
            ALPHA[i]
                * (-(0..6)
                    .map(|j| A[i][j] * (x[j] - P[i][j]).powi(2))
                    .sum::<f64>())
                .exp()
        })
        .sum::<f64>()
}

/// Mixed problem: x real in [-5, 5], k integer in [0, 10], c in {a, b, c}; the optimum's
/// location in x depends on the category, so the model must learn the interaction.
fn mixed(x: &[f64]) -> f64 {
    const SHIFT: [f64; 3] = [1.0, -2.0, 2.5];
    const BASE: [f64; 3] = [0.5, 0.0, 0.8];
    let c = x[2] as usize;
    (x[0] - SHIFT[c]).powi(2) / 4.0
        + ((x[1] - 6.0) / 3.0).powi(2)
        + BASE[c]
        + 0.2 * (3.0 * x[0]).sin()
}

/// Minimum of the mixed problem on a fine grid in x (the same grid the Python script uses).
fn mixed_min() -> f64 {
    (0..=1_000_000)
        .map(|i| -5.0 + 10.0 * i as f64 / 1e6)
        .map(|x| mixed(&[x, 6.0, 1.0]))
        .fold(f64::INFINITY, f64::min)
}

struct Problem {
    name: &'static str,
    space: SearchSpace,
    f: fn(&[f64]) -> f64,
    f_min: f64,
}

fn problems() -> Vec<Problem> {
    let real = |n: &str, lo: f64, hi: f64| Variable::real(n, lo, hi).expect("valid variable");
    vec![
        Problem {
            name: "branin",
            space: SearchSpace::new(vec![real("x1", -5.0, 10.0), real("x2", 0.0, 15.0)])
                .expect("valid space"),
            f: branin,
            f_min: 0.397_887_357_729_738_2,
        },
        Problem {
            name: "hartmann6",
            space: SearchSpace::new((1..=6).map(|i| real(&format!("x{i}"), 0.0, 1.0)).collect())
                .expect("valid space"),
            f: hartmann6,
            f_min: -3.322_368_011_415_51,
        },
        Problem {
            name: "mixed",
            space: SearchSpace::new(vec![
                real("x", -5.0, 5.0),
                Variable::integer("k", 0, 10).expect("valid variable"),
                Variable::categorical("c", &["a", "b", "c"]).expect("valid variable"),
            ])
            .expect("valid space"),
            f: mixed,
            f_min: mixed_min(),
        },
    ]
}

fn best_trace(ys: &[f64], f_min: f64) -> Vec<f64> {
    let mut best = f64::INFINITY;
    ys.iter()
        .map(|y| {
            best = best.min(*y);
            best - f_min
        })
        .collect()
}

fn run_kiln(p: &Problem, seed: u64) -> (Vec<f64>, f64) {
    // Random initial points, like skopt.gp_minimize's default, so that the comparison measures
    // the Bayesian optimisation itself (the tool's own default design is LHS).
    let mut raws = design(&p.space, DesignMethod::Random, N_INIT, seed, &[]).expect("design");
    let mut ys: Vec<f64> = raws.iter().map(|r| (p.f)(r)).collect();
    let mut hyp = None;
    let mut ask_time = 0.0;
    while ys.len() < BUDGET {
        let t = Instant::now();
        let opts = FitOptions {
            seed: seed * 1000 + ys.len() as u64,
            warm_start: hyp.clone(),
            ..Default::default()
        };
        let model = Surrogate::fit(
            &p.space,
            &raws,
            &ys,
            &vec![0.0; ys.len()],
            Goal::Minimize,
            &opts,
        )
        .expect("fit");
        hyp = Some(model.hyperparameters().clone());
        let s = suggest(
            &model,
            &SuggestOptions {
                seed: seed * 7919 + ys.len() as u64,
                ..Default::default()
            },
        );
        ask_time += t.elapsed().as_secs_f64();
        let Some(next) = s.into_iter().next() else {
            break;
        };
        ys.push((p.f)(&next.raw));
        raws.push(next.raw);
    }
    (
        best_trace(&ys, p.f_min),
        ask_time / (BUDGET - N_INIT) as f64,
    )
}

fn run_random(p: &Problem, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xABCD);
    let ys: Vec<f64> = (0..BUDGET)
        .map(|_| {
            let u: Vec<f64> = (0..p.space.len()).map(|_| rng.random::<f64>()).collect();
            (p.f)(&p.space.from_unit(&u))
        })
        .collect();
    best_trace(&ys, p.f_min)
}

/// Nanoseconds this thread has spent on a CPU (Linux `/proc/thread-self/schedstat`), so the
/// timing is meaningful on a loaded machine; `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Median wall time of fit + suggest (q = 1) from scratch with `n` random points in 6-D.
fn time_fit_suggest(n: usize) -> (f64, f64, Option<f64>) {
    let space = SearchSpace::new(
        (1..=6)
            .map(|i| Variable::real(&format!("x{i}"), 0.0, 1.0).expect("valid"))
            .collect(),
    )
    .expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let raws: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..6).map(|_| rng.random::<f64>()).collect())
        .collect();
    let ys: Vec<f64> = raws.iter().map(|r| hartmann6(r)).collect();
    let (mut fits, mut asks) = (Vec::new(), Vec::new());
    let cpu0 = cpu_ns();
    for rep in 0..5 {
        let t = Instant::now();
        let model = Surrogate::fit(
            &space,
            &raws,
            &ys,
            &vec![0.0; n],
            Goal::Minimize,
            &FitOptions {
                seed: rep,
                ..Default::default()
            },
        )
        .expect("fit");
        fits.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let _ = suggest(
            &model,
            &SuggestOptions {
                seed: rep,
                ..Default::default()
            },
        );
        asks.push(t.elapsed().as_secs_f64());
    }
    let cpu = match (cpu0, cpu_ns()) {
        (Some(a), Some(b)) => Some((b - a) as f64 / 5.0 / 1e9),
        _ => None,
    };
    if let Some(c) = cpu {
        eprintln!(
            "6-D, {n} observations: mean CPU time of fit + suggest {:.1} ms",
            c * 1e3
        );
    }
    fits.sort_by(f64::total_cmp);
    asks.sort_by(f64::total_cmp);
    (fits[2], asks[2], cpu)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds: u64 = args
        .iter()
        .position(|a| a == "--seeds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let only: Option<String> = args
        .iter()
        .position(|a| a == "--problem")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let mut out = serde_json::Map::new();
    if args.iter().any(|a| a == "--time") {
        for n in [20, 100, 500] {
            let (fit, ask, cpu) = time_fit_suggest(n);
            out.insert(
                format!("fit_suggest_{n}_6d_cpu_seconds"),
                serde_json::json!(cpu),
            );
            eprintln!(
                "6-D, {n} observations: median wall time fit {:.1} ms, suggest {:.1} ms",
                fit * 1e3,
                ask * 1e3
            );
            out.insert(
                format!("fit_suggest_{n}_6d_seconds"),
                serde_json::json!(fit + ask),
            );
        }
    }
    for p in problems() {
        if only.as_deref().is_some_and(|o| o != p.name) {
            continue;
        }
        let mut kiln = Vec::new();
        let mut random = Vec::new();
        let mut times = Vec::new();
        for seed in 0..seeds {
            let (trace, t) = run_kiln(&p, seed);
            kiln.push(trace);
            times.push(t);
            random.push(run_random(&p, seed));
        }
        out.insert(
            p.name.to_string(),
            serde_json::json!({"f_min": p.f_min, "kiln": kiln, "random": random, "kiln_mean_ask_seconds": times.iter().sum::<f64>() / times.len().max(1) as f64}),
        );
        if !args.iter().any(|a| a == "--json") {
            let at = |traces: &Vec<Vec<f64>>, n: usize| {
                let mut v: Vec<f64> = traces
                    .iter()
                    .filter_map(|t| t.get(n - 1).copied())
                    .collect();
                v.sort_by(f64::total_cmp);
                v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
            };
            eprintln!(
                "{}: kiln median regret @30 {:.3e} @60 {:.3e}; random @30 {:.3e} @60 {:.3e}",
                p.name,
                at(&kiln, 30),
                at(&kiln, 60),
                at(&random, 30),
                at(&random, 60)
            );
        }
    }
    println!("{}", serde_json::Value::Object(out));
}
