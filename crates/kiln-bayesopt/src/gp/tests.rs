//! Unit tests of the Gaussian process: interpolation, LOO, gradients, conditioning, bad data.
use super::*;

fn grid_1d(n: usize) -> Vec<Vec<f64>> {
    (0..n).map(|i| vec![i as f64 / (n - 1) as f64]).collect()
}

fn smooth(x: &[f64]) -> f64 {
    (6.0 * x[0]).sin() + 0.5 * x.get(1).map_or(0.0, |v| (3.0 * v).cos())
}

fn data_2d(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<Vec<f64>> = (0..n)
        .map(|_| vec![rng.random::<f64>(), rng.random::<f64>()])
        .collect();
    let y = x.iter().map(|p| smooth(p)).collect();
    (x, y)
}

#[test]
fn interpolates_noise_free_training_data() {
    for kernel in [Kernel::Matern52, Kernel::Rbf] {
        let x = grid_1d(8);
        let y: Vec<f64> = x.iter().map(|p| smooth(p)).collect();
        let gp = Gp::fit(
            &x,
            &y,
            &[0.0; 8],
            &FitOptions {
                kernel,
                ..Default::default()
            },
        )
        .unwrap();
        for (p, t) in x.iter().zip(&y) {
            let pred = gp.predict(p);
            assert!(
                (pred.mean - t).abs() < 1e-2,
                "{kernel:?}: {} vs {t}",
                pred.mean
            );
            assert!(pred.std < 0.05, "{kernel:?} std {}", pred.std);
        }
        // Far from data, uncertainty is larger than at the data.
        let mid = gp.predict(&[1.0 / 14.0]).std;
        assert!(mid > gp.predict(&[0.0]).std);
    }
}

#[test]
fn loo_is_accurate_on_a_smooth_function() {
    let (x, y) = data_2d(40, 3);
    let gp = Gp::fit(&x, &y, &[0.0; 40], &FitOptions::default()).unwrap();
    let loo = gp.loo();
    assert!(loo.rmse < 0.05, "rmse {}", loo.rmse);
    assert!(loo.r2.unwrap() > 0.99, "r2 {:?}", loo.r2);
    // Brute-force LOO at the same hyperparameters agrees with the closed form.
    let hyp = gp.hyperparameters().clone();
    for i in [0, 17, 39] {
        let mut xs = x.clone();
        let mut ys = y.clone();
        let xi = xs.remove(i);
        ys.remove(i);
        let sub = Gp::with_hyperparameters(&xs, &ys, &[0.0; 39], hyp.clone()).unwrap();
        // The sub-model standardises differently: compare in output units.
        let p = sub.predict(&xi);
        assert!(
            (p.mean - loo.predictions[i].mean).abs() < 0.05 * loo.rmse.max(1e-3) + 1e-3,
            "point {i}"
        );
    }
}

#[test]
fn lml_gradient_matches_finite_differences() {
    let (x, y) = data_2d(15, 9);
    let flat: Vec<f64> = x.iter().flatten().copied().collect();
    let (m, s) = standardise(&y);
    let ys: Vec<f64> = y.iter().map(|v| (v - m) / s).collect();
    let extra = vec![0.01; 15];
    let data = Data {
        prior: true,
        n: 15,
        d: 2,
        x: &flat,
        ys: &ys,
        extra: &extra,
    };
    for kernel in [Kernel::Matern52, Kernel::Rbf] {
        let theta = vec![-1.0, 0.3, 0.2, -4.0];
        let mut g = vec![0.0; 4];
        data.neg_lml(kernel, &theta, Some(&mut g));
        for k in 0..4 {
            let mut tp = theta.clone();
            let mut tm = theta.clone();
            tp[k] += 1e-5;
            tm[k] -= 1e-5;
            let fd = (data.neg_lml(kernel, &tp, None) - data.neg_lml(kernel, &tm, None)) / 2e-5;
            assert!(
                (fd - g[k]).abs() < 1e-4 * fd.abs().max(1.0),
                "{kernel:?} θ{k}: fd {fd} vs {}",
                g[k]
            );
        }
    }
}

#[test]
fn prediction_gradients_match_finite_differences() {
    let (x, y) = data_2d(12, 4);
    let gp = Gp::fit(&x, &y, &[0.0; 12], &FitOptions::default()).unwrap();
    let f = [0.37, 0.61];
    let (mut dmu, mut dvar) = ([0.0; 2], [0.0; 2]);
    gp.predict_with_gradient(&f, &mut dmu, &mut dvar);
    for j in 0..2 {
        let mut fp = f;
        let mut fm = f;
        fp[j] += 1e-6;
        fm[j] -= 1e-6;
        let (mp, vp) = gp.predict_standardised(&fp);
        let (mm, vm) = gp.predict_standardised(&fm);
        assert!(((mp - mm) / 2e-6 - dmu[j]).abs() < 1e-4 * dmu[j].abs().max(1.0));
        assert!(((vp - vm) / 2e-6 - dvar[j]).abs() < 1e-4 * dvar[j].abs().max(1.0));
    }
}

#[test]
fn conditioning_matches_a_model_built_with_the_extra_point() {
    let (x, y) = data_2d(10, 5);
    let gp = Gp::fit(&x, &y, &[0.0; 10], &FitOptions::default()).unwrap();
    let f = vec![0.5, 0.5];
    let fantasy = gp.predict_standardised(&f).0;
    let cond = gp.condition_on(&f, fantasy).unwrap();
    assert!(cond.predict_standardised(&f).1 < 1e-4);
    assert!((cond.predict_standardised(&f).0 - fantasy).abs() < 1e-6);
    assert_eq!(cond.n(), 11);
}

#[test]
fn constant_outputs_and_duplicates_fit_without_nan() {
    let x = vec![vec![0.1], vec![0.1], vec![0.5], vec![0.9]];
    let gp = Gp::fit(&x, &[3.0; 4], &[0.0; 4], &FitOptions::default()).unwrap();
    let p = gp.predict(&[0.3]);
    assert!((p.mean - 3.0).abs() < 1e-9 && p.std.is_finite());
    assert_eq!(gp.loo().r2, None);
    let gp = Gp::fit(&x, &[1.0, 1.2, 0.0, 2.0], &[0.0; 4], &FitOptions::default()).unwrap();
    assert!(gp.predict(&[0.1]).mean.is_finite());
}

#[test]
fn bad_training_data_is_an_error_not_a_panic() {
    assert!(Gp::fit(&[], &[], &[], &FitOptions::default()).is_err());
    assert!(Gp::fit(&[vec![0.1]], &[f64::NAN], &[0.0], &FitOptions::default()).is_err());
    assert!(
        Gp::fit(
            &[vec![0.1], vec![0.1, 0.2]],
            &[1.0, 2.0],
            &[0.0, 0.0],
            &FitOptions::default()
        )
        .is_err()
    );
    let hyp = Hyperparameters {
        kernel: Kernel::Rbf,
        lengthscales: vec![1.0, 1.0],
        signal_variance: 1.0,
        noise_variance: 1e-3,
    };
    assert!(Gp::with_hyperparameters(&[vec![0.1]], &[1.0], &[0.0], hyp).is_err());
}

#[test]
fn noisy_data_learns_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<Vec<f64>> = (0..40).map(|i| vec![i as f64 / 39.0]).collect();
    let y: Vec<f64> = x
        .iter()
        .map(|p| smooth(p) + 0.3 * (rng.random::<f64>() - 0.5))
        .collect();
    let gp = Gp::fit(&x, &y, &[0.0; 40], &FitOptions::default()).unwrap();
    let noise_sd = gp.hyperparameters().noise_variance.sqrt() * gp.output_scale();
    // Uniform(-0.15, 0.15) has sd 0.087.
    assert!(noise_sd > 0.03 && noise_sd < 0.2, "noise sd {noise_sd}");
}
