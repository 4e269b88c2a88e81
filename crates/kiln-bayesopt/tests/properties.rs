//! Property tests of the library's invariants: suggestions lie inside the space, the posterior
//! variance is never negative, merge is idempotent, and parsers never panic.

use kiln_bayesopt::acquisition::Acquisition;
use kiln_bayesopt::experiment::{Experiment, parse_csv, parse_json};
use kiln_bayesopt::gp::{FitOptions, Gp};
use kiln_bayesopt::model::{Goal, Surrogate};
use kiln_bayesopt::optimize::{BatchMethod, SuggestOptions, suggest};
use kiln_bayesopt::space::{SearchSpace, Variable};
use kiln_bayesopt::{Objective, OptimizerState, merge};
use proptest::prelude::*;

fn variable(kind: u8, i: usize) -> Variable {
    let name = format!("v{i}");
    match kind % 4 {
        0 => Variable::real(&name, -2.0, 3.0),
        1 => Variable::log_real(&name, 1e-3, 10.0),
        2 => Variable::integer(&name, -1, 4),
        _ => Variable::categorical(&name, &["a", "b", "c"]),
    }
    .expect("valid variable")
}

fn space_strategy() -> impl Strategy<Value = SearchSpace> {
    prop::collection::vec(0u8..4, 1..4).prop_map(|kinds| {
        SearchSpace::new(
            kinds
                .iter()
                .enumerate()
                .map(|(i, k)| variable(*k, i))
                .collect(),
        )
        .expect("valid space")
    })
}

/// A space plus unit-cube rows and outputs (outputs drawn from a small set so ties and constant
/// outputs happen).
fn data_strategy() -> impl Strategy<Value = (SearchSpace, Vec<Vec<f64>>, Vec<f64>)> {
    space_strategy()
        .prop_flat_map(|space| {
            let dim = space.len();
            (
                Just(space),
                prop::collection::vec((prop::collection::vec(0.0f64..=1.0, dim), -3i32..4), 2..9),
            )
        })
        .prop_map(|(space, rows)| {
            let raws = rows.iter().map(|(u, _)| space.from_unit(u)).collect();
            let ys = rows.iter().map(|(_, y)| f64::from(*y) * 0.7).collect();
            (space, raws, ys)
        })
}

fn acquisition_strategy() -> impl Strategy<Value = Acquisition> {
    prop_oneof![
        (0.0f64..1.0).prop_map(|xi| Acquisition::Ei { xi }),
        (0.0f64..1.0).prop_map(|xi| Acquisition::Pi { xi }),
        (0.0f64..10.0).prop_map(|beta| Acquisition::Ucb { beta }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn suggestions_lie_inside_the_space_and_are_new(
        (space, raws, ys) in data_strategy(),
        acquisition in acquisition_strategy(),
        q in 1usize..4,
        liar in any::<bool>(),
        maximize in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let goal = if maximize { Goal::Maximize } else { Goal::Minimize };
        let noise = vec![0.0; ys.len()];
        let model = Surrogate::fit(&space, &raws, &ys, &noise, goal, &FitOptions { seed, ..FitOptions::default() }).expect("fit");
        let batch = if liar { BatchMethod::ConstantLiar } else { BatchMethod::KrigingBeliever };
        let found = suggest(&model, &SuggestOptions { acquisition, q, batch, seed, candidates: 300, local_starts: 2, constraints: Vec::new() });
        let total = space.discrete_cardinality().unwrap_or(u64::MAX);
        prop_assert!(!found.is_empty() || total <= raws.len() as u64);
        let mut seen = raws.clone();
        for s in &found {
            let inputs = space.to_inputs(&s.raw);
            prop_assert_eq!(space.parse_inputs(&inputs), Ok(s.raw.clone()));
            prop_assert!(!seen.contains(&s.raw));
            prop_assert!(s.mean.is_finite() && s.std.is_finite() && s.std >= 0.0 && s.acquisition.is_finite());
            seen.push(s.raw.clone());
        }
    }

    #[test]
    fn posterior_variance_is_never_negative(
        (space, raws, ys) in data_strategy(),
        probes in prop::collection::vec(prop::collection::vec(-0.2f64..1.2, 8), 1..10),
        rbf in any::<bool>(),
    ) {
        let x: Vec<Vec<f64>> = raws.iter().map(|r| space.features(r)).collect();
        // Duplicate a training row to stress the factorisation.
        let mut x2 = x.clone();
        x2.push(x[0].clone());
        let mut y2 = ys.clone();
        y2.push(ys[0] + 0.5);
        let kernel = if rbf { kiln_bayesopt::kernel::Kernel::Rbf } else { kiln_bayesopt::kernel::Kernel::Matern52 };
        let gp = Gp::fit(&x2, &y2, &vec![0.0; y2.len()], &FitOptions { kernel, ..FitOptions::default() }).expect("fit");
        let d = gp.dim();
        for p in probes.iter().map(|p| p.iter().cycle().take(d).copied().collect::<Vec<f64>>()).chain(x.iter().cloned()) {
            let (mu, var) = gp.predict_standardised(&p);
            prop_assert!(mu.is_finite() && var.is_finite() && var >= 0.0);
            let pred = gp.predict(&p);
            prop_assert!(pred.std >= 0.0 && pred.std.is_finite());
        }
    }

    #[test]
    fn merge_is_idempotent(base_n in 0usize..4, ours_extra in 0usize..4, theirs_extra in 0usize..4) {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 10.0).expect("valid")]).expect("valid");
        let row = |x: usize| Experiment::new([("x".to_string(), kiln_bayesopt::space::Value::Number(x as f64))].into_iter().collect(), (x * x) as f64);
        let mk = |xs: Vec<usize>| {
            let mut s = OptimizerState::new(space.clone(), Objective { name: "y".into(), goal: Goal::Maximize, unit: None });
            s.experiments = xs.into_iter().map(row).collect();
            s
        };
        let base = mk((0..base_n).collect());
        let ours = mk((0..base_n).chain(4..4 + ours_extra).collect());
        let theirs = mk((0..base_n).chain(6..6 + theirs_extra).collect());
        prop_assert_eq!(&merge(Some(&base), &ours, &ours).expect("no conflict"), &ours);
        let merged = merge(Some(&base), &ours, &theirs).expect("no conflict");
        prop_assert_eq!(&merge(Some(&base), &merged, &theirs).expect("no conflict"), &merged);
        prop_assert_eq!(&merge(Some(&base), &merged, &merged).expect("no conflict"), &merged);
    }

    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        let space = SearchSpace::new(vec![variable(0, 0), variable(3, 1)]).expect("valid");
        let _ = parse_csv(&text, &space, "y", &[]);
        let _ = parse_json(&text, &space, "y", &[]);
    }
}
