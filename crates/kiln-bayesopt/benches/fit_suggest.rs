//! Criterion benchmarks: fit + suggest one point with 20, 100 and 500 observations in 6-D
//! (Hartmann-6 data), and a batch of q = 4 at 100 observations. Measured twice: wall clock
//! (criterion's default) and this thread's CPU time, which stays meaningful on a shared,
//! loaded machine (Linux `/proc/thread-self/schedstat`; falls back to wall clock elsewhere).
//! Also the optimizer panel's model charts from a stored, current model (what a session page
//! view costs): six 41-point dependence lines and the LOO parity chart, and a 30 × 30 map.

use std::hint::black_box;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kiln_bayesopt::gp::FitOptions;
use kiln_bayesopt::model::{Goal, Surrogate};
use kiln_bayesopt::optimize::{SuggestOptions, suggest};
use kiln_bayesopt::space::{SearchSpace, Variable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// CPU time of the benchmarking thread, in nanoseconds.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| {
            std::time::UNIX_EPOCH
                .elapsed()
                .map_or(0, |d| d.as_nanos() as u64)
        })
}

struct NsFormatter;

impl ValueFormatter for NsFormatter {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = if typical < 1e3 {
            (1.0, "ns (cpu)")
        } else if typical < 1e6 {
            (1e-3, "µs (cpu)")
        } else if typical < 1e9 {
            (1e-6, "ms (cpu)")
        } else {
            (1e-9, "s (cpu)")
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        _throughput: &Throughput,
        _values: &mut [f64],
    ) -> &'static str {
        "ns (cpu)"
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, i: u64) -> u64 {
        thread_cpu_ns().saturating_sub(i)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &NsFormatter
    }
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

fn data(n: usize) -> (SearchSpace, Vec<Vec<f64>>, Vec<f64>) {
    let space = SearchSpace::new(
        (1..=6)
            .map(|i| Variable::real(&format!("x{i}"), 0.0, 1.0).expect("valid"))
            .collect(),
    )
    .expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
    let raws: Vec<Vec<f64>> = (0..n)
        .map(|_| (0..6).map(|_| rng.random::<f64>()).collect())
        .collect();
    let ys = raws.iter().map(|r| hartmann6(r)).collect();
    (space, raws, ys)
}

fn fit_and_suggest(space: &SearchSpace, raws: &[Vec<f64>], ys: &[f64], q: usize) -> usize {
    let noise = vec![0.0; ys.len()];
    let model = Surrogate::fit(
        space,
        raws,
        ys,
        &noise,
        Goal::Minimize,
        &FitOptions::default(),
    )
    .expect("fit");
    suggest(
        &model,
        &SuggestOptions {
            q,
            ..SuggestOptions::default()
        },
    )
    .len()
}

fn bench<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for n in [20, 100, 500] {
        let (space, raws, ys) = data(n);
        group.bench_with_input(BenchmarkId::new("q1", n), &n, |b, _| {
            b.iter(|| black_box(fit_and_suggest(&space, &raws, &ys, 1)))
        });
    }
    let (space, raws, ys) = data(100);
    group.bench_with_input(BenchmarkId::new("q4", 100), &100, |b, _| {
        b.iter(|| black_box(fit_and_suggest(&space, &raws, &ys, 4)))
    });
    group.finish();
}

/// A state with `n` Hartmann-6 experiments and a stored model fitted to them.
fn fitted_state(n: usize) -> kiln_bayesopt::OptimizerState {
    let (space, raws, ys) = data(n);
    let mut st = kiln_bayesopt::OptimizerState::new(
        space.clone(),
        kiln_bayesopt::Objective {
            name: "y".into(),
            goal: Goal::Minimize,
            unit: None,
        },
    );
    st.experiments = raws
        .iter()
        .zip(&ys)
        .map(|(r, y)| kiln_bayesopt::experiment::Experiment::new(space.to_inputs(r), *y))
        .collect();
    st.surrogate(None, false, 1).expect("fit");
    st
}

fn charts(c: &mut Criterion) {
    let mut group = c.benchmark_group("panel_charts_6d_wall");
    group.sample_size(10);
    for n in [20, 100] {
        let st = fitted_state(n);
        group.bench_with_input(BenchmarkId::new("page_view", n), &n, |b, _| {
            b.iter(|| {
                let mut s = st.clone();
                let mut bytes = 0;
                for v in 1..=6 {
                    let svg = kiln_bayesopt::figures::dependence_svg(
                        &mut s,
                        &format!("x{v}"),
                        Some(41),
                        0,
                    )
                    .expect("chart");
                    bytes += svg.len();
                }
                bytes += kiln_bayesopt::figures::parity_svg(&mut s, 0)
                    .expect("chart")
                    .len();
                black_box(bytes)
            })
        });
        group.bench_with_input(BenchmarkId::new("map_30x30", n), &n, |b, _| {
            b.iter(|| {
                let mut s = st.clone();
                black_box(
                    kiln_bayesopt::figures::map_svg(&mut s, "x1", "x2", Some(30), 0)
                        .expect("chart"),
                )
            })
        });
    }
    group.finish();
}

fn wall(c: &mut Criterion) {
    bench(c, "fit_suggest_6d_wall");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    bench(c, "fit_suggest_6d_cpu");
}

criterion_group!(wall_clock, wall, charts);
criterion_group! {
    name = cpu_time;
    config = Criterion::default().with_measurement(CpuTime);
    targets = cpu
}
criterion_main!(wall_clock, cpu_time);
