//! End-to-end tests of the tool actions: workflow, fallbacks, duplicates, typed errors.
use super::*;

fn define() -> OptimizerState {
    let args = json!({"action": "define_space", "variables": [
        {"name": "temp", "type": "real", "bounds": [100, 300], "unit": "°C"},
        {"name": "time", "type": "integer", "bounds": [1, 8]},
        {"name": "solvent", "type": "categorical", "categories": ["water", "ethanol"]}
    ], "objective": {"name": "yield", "goal": "maximize"}});
    apply(None, &args, 0).unwrap().state
}

fn yield_of(inputs: &Inputs) -> f64 {
    let t = match inputs["temp"] {
        crate::space::Value::Number(v) => v,
        _ => 0.0,
    };
    let h = match inputs["time"] {
        crate::space::Value::Number(v) => v,
        _ => 0.0,
    };
    let s = if inputs["solvent"] == crate::space::Value::Text("ethanol".into()) {
        0.2
    } else {
        0.0
    };
    1.0 - ((t - 220.0) / 80.0).powi(2) - ((h - 5.0) / 4.0).powi(2) + s
}

fn measured(points: &Json) -> Json {
    let list = points["suggestions"].as_array().unwrap();
    Json::Array(
        list.iter()
            .map(|p| {
                let inputs: Inputs = serde_json::from_value(p["inputs"].clone()).unwrap();
                json!({"inputs": inputs, "output": yield_of(&inputs)})
            })
            .collect(),
    )
}

#[test]
fn full_workflow_design_add_suggest_lock() {
    let s = define();
    let design = apply(
        Some(s),
        &json!({"action": "initial_design", "method": "sobol", "n": 6}),
        1,
    )
    .unwrap();
    assert_eq!(design.result["suggestions"].as_array().unwrap().len(), 6);
    let added = apply(
        Some(design.state),
        &json!({"action": "add_experiments", "experiments": measured(&design.result)}),
        0,
    )
    .unwrap();
    assert_eq!(added.state.experiments.len(), 6);
    let lock_data = apply(
        Some(added.state),
        &json!({"action": "lock", "what": "data", "notes": "first batch"}),
        0,
    )
    .unwrap();
    assert_eq!(lock_data.lock.as_ref().unwrap().iteration, 1);
    let sug = apply(
        Some(lock_data.state),
        &json!({"action": "suggest", "strategy": "qEI", "q": 3}),
        2,
    )
    .unwrap();
    let list = sug.result["suggestions"].as_array().unwrap();
    assert_eq!(list.len(), 3);
    for p in list {
        assert!(p["mean"].as_f64().unwrap().is_finite() && p["std"].as_f64().unwrap() >= 0.0);
        let inputs: Inputs = serde_json::from_value(p["inputs"].clone()).unwrap();
        assert!(sug.state.space.parse_inputs(&inputs).is_ok());
    }
    let lm = apply(
        Some(sug.state),
        &json!({"action": "lock", "what": "model"}),
        3,
    )
    .unwrap();
    assert!(matches!(
        lm.lock.unwrap().details,
        LockDetails::Model { .. }
    ));
    let la = apply(
        Some(lm.state),
        &json!({"action": "lock", "what": "acquisition"}),
        3,
    )
    .unwrap();
    let LockDetails::Acquisition {
        points, strategy, ..
    } = la.lock.unwrap().details
    else {
        panic!("wrong lock")
    };
    assert_eq!((points.len(), strategy.as_str()), (3, "qEI"));
    assert_eq!(la.state.iteration(), 2);
    let st = apply(Some(la.state), &json!({"action": "status"}), 0).unwrap();
    assert!(st.text.contains("iteration 2"), "{}", st.text);
}

#[test]
fn suggest_without_data_falls_back_to_a_design_and_says_so() {
    let out = apply(Some(define()), &json!({"action": "suggest"}), 4).unwrap();
    assert_eq!(out.result["fallback"], "initial_design");
    assert_eq!(out.result["suggestions"].as_array().unwrap().len(), 7);
    assert!(out.text.contains("initial Latin hypercube design"));
    // The points themselves are listed, one table row each, with the unit in the header.
    assert!(
        out.text.contains("| # | temp (°C) | time | solvent |"),
        "{}",
        out.text
    );
    assert_eq!(
        out.text.lines().filter(|l| l.starts_with("| ")).count(),
        1 + 7
    );
}

#[test]
fn suggestions_name_the_strategy_that_ran_and_a_model_worse_than_the_mean() {
    let s = define();
    // Neighbours with opposite outputs: leaving one out, the model cannot beat the mean.
    let rows: Vec<Json> = [
        (100, 1, "water", 5.0),
        (104, 1, "water", -5.0),
        (200, 4, "ethanol", 5.0),
        (204, 4, "ethanol", -5.0),
        (300, 8, "water", 5.0),
        (296, 8, "water", -5.0),
        (150, 6, "water", 5.0),
        (154, 6, "water", -5.0),
    ]
    .iter()
    .map(|(t, h, s, y)| json!({"inputs": {"temp": t, "time": h, "solvent": s}, "output": y}))
    .collect();
    let added = apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap();
    let out = apply(
        Some(added.state),
        &json!({"action": "suggest", "strategy": "EI", "q": 3}),
        1,
    )
    .unwrap();
    assert!(
        out.text.starts_with("3 suggestion(s) by qEI"),
        "{}",
        out.text
    );
    assert!(
        out.text.contains("predicted yield (mean ± std)"),
        "{}",
        out.text
    );
    let r2 = out.state.model.as_ref().and_then(|m| m.cv.r2);
    assert!(r2.is_some_and(|r2| r2 <= 0.0), "{r2:?}");
    assert!(out.text.contains("worse than the mean"), "{}", out.text);
}

#[test]
fn bad_rows_leave_the_state_untouched() {
    let s = define();
    let before = s.clone();
    let args = json!({"action": "add_experiments", "csv": "temp,time,solvent,yield\n150,2,water,0.5\n400,2,water,0.1\n150,2,oil,0.2\n"});
    let err = apply(Some(s), &args, 0).unwrap_err();
    let Error::InvalidExperiments(rows) = err else {
        panic!("wrong error")
    };
    assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), vec![1, 2]);
    // The caller still holds `before`: nothing was half-written anywhere.
    assert!(before.experiments.is_empty());
}

#[test]
fn duplicates_are_skipped_and_replicates_kept() {
    let s = define();
    let row = json!({"inputs": {"temp": 150, "time": 2, "solvent": "water"}, "output": 0.5});
    let rep = json!({"inputs": {"temp": 150, "time": 2, "solvent": "water"}, "output": 0.6});
    let out = apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": [row.clone(), row, rep]}),
        0,
    )
    .unwrap();
    assert_eq!(out.result["added"], 2);
    assert_eq!(out.result["skipped_duplicates"], 1);
    assert_eq!(out.result["replicates"], 1);
}

#[test]
fn constant_outputs_still_give_finite_distinct_suggestions() {
    let s = define();
    let rows: Vec<Json> = (0..4).map(|i| json!({"inputs": {"temp": 100 + 50 * i, "time": 1 + i, "solvent": "water"}, "output": 1.0})).collect();
    let s = apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap()
    .state;
    let out = apply(Some(s), &json!({"action": "suggest", "q": 2}), 0).unwrap();
    assert_eq!(out.result["suggestions"].as_array().unwrap().len(), 2);
    assert!(out.text.contains("model is flat"));
}

#[test]
fn argument_errors_are_typed() {
    let cases = [
        (None, json!({"action": "status"}), "MissingState"),
        (None, json!({"action": "explode"}), "InvalidArguments"),
        (
            None,
            json!({"action": "status", "bogus": 1}),
            "InvalidArguments",
        ),
        (
            None,
            json!({"action": "define_space", "variables": [], "objective": {"name": "y", "goal": "max"}}),
            "InvalidSpace",
        ),
        (
            Some(define()),
            json!({"action": "suggest", "strategy": "UCB", "beta": -1}),
            "InvalidArguments",
        ),
        (
            Some(define()),
            json!({"action": "suggest", "q": 0}),
            "InvalidArguments",
        ),
        (
            Some(define()),
            json!({"action": "predict", "points": [{"temp": 1000, "time": 2, "solvent": "water"}]}),
            "InvalidPoint",
        ),
        (
            Some(define()),
            json!({"action": "lock", "what": "acquisition"}),
            "MissingState",
        ),
        (
            Some(define()),
            json!({"action": "initial_design", "method": "grid"}),
            "InvalidArguments",
        ),
    ];
    for (state, args, kind) in cases {
        let err = apply(state, &args, 0).unwrap_err();
        assert!(format!("{err:?}").starts_with(kind), "{args}: {err:?}");
    }
}

#[test]
fn schema_lists_every_action() {
    let schema = tool_schema();
    let actions = schema["properties"]["action"]["enum"].as_array().unwrap();
    for a in [
        "define_space",
        "initial_design",
        "add_experiments",
        "suggest",
        "predict",
        "status",
        "lock",
    ] {
        assert!(actions.contains(&json!(a)));
    }
}

#[test]
fn design_sizes_past_the_limit_are_refused_not_allocated() {
    let state = define();
    for n in [
        0u64,
        MAX_DESIGN_POINTS as u64 + 1,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let args = json!({"action": "initial_design", "n": n});
        match apply(Some(state.clone()), &args, 0) {
            Err(Error::InvalidArguments(m)) => assert!(m.contains("n must be"), "{m}"),
            other => panic!("n = {n}: {:?}", other.map(|o| o.text)),
        }
    }
    let args = json!({"action": "initial_design", "n": MAX_DESIGN_POINTS});
    let out = apply(Some(state), &args, 0).unwrap();
    assert!(out.text.starts_with("1000 initial design point(s)") || out.text.contains("only"));
}

fn with_rows(n: usize) -> OptimizerState {
    let s = define();
    let rows: Vec<Json> = (0..n)
        .map(|i| {
            let inputs = json!({"temp": 100 + 25 * i, "time": 1 + i % 8, "solvent": if i % 2 == 0 { "water" } else { "ethanol" }});
            let parsed: Inputs = serde_json::from_value(inputs.clone()).unwrap();
            json!({"inputs": inputs, "output": yield_of(&parsed)})
        })
        .collect();
    apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap()
    .state
}

#[test]
fn an_excluded_experiment_stays_recorded_and_leaves_the_model() {
    let s = with_rows(6);
    let best = s.best().cloned().unwrap();
    let n = s.experiments.iter().position(|e| *e == best).unwrap() + 1;
    let out = apply(
        Some(s.clone()),
        &json!({"action": "edit_experiment", "experiment": n, "exclude": true, "reason": "thermocouple off"}),
        0,
    )
    .unwrap();
    let st = out.state;
    assert_eq!(st.experiments.len(), 6, "never deleted");
    assert_eq!(
        st.experiments[n - 1].excluded.as_deref(),
        Some("thermocouple off")
    );
    assert_eq!(st.experiments[n - 1].edits[0].reason, "thermocouple off");
    assert_ne!(
        st.best(),
        Some(&best),
        "the best is chosen among the rows in use"
    );
    let (raws, _, _) = st.training_data().unwrap();
    assert_eq!(raws.len(), 5);
    // Taken back in, it is the best again; its identity never changed.
    let back = apply(
        Some(st.clone()),
        &json!({"action": "edit_experiment", "experiment": n, "exclude": false, "reason": "re-checked"}),
        0,
    )
    .unwrap()
    .state;
    assert_eq!(back.best().map(|e| e.output), Some(best.output));
    assert_eq!(back.experiments[n - 1].key(), best.key());
    assert_eq!(back.experiments[n - 1].edits.len(), 2);
    // Typed refusals: no such row, no reason, nothing to change, a value outside the space.
    let err = |args: Json| apply(Some(st.clone()), &args, 0).unwrap_err();
    assert!(matches!(
        err(json!({"action": "edit_experiment", "experiment": 7, "exclude": true, "reason": "x"})),
        Error::NotFound(_)
    ));
    assert!(matches!(
        err(json!({"action": "edit_experiment", "experiment": 1, "exclude": true})),
        Error::InvalidArguments(_)
    ));
    assert!(matches!(
        err(json!({"action": "edit_experiment", "experiment": 1, "reason": "x"})),
        Error::InvalidArguments(_)
    ));
    assert!(matches!(
        err(
            json!({"action": "edit_experiment", "experiment": 1, "inputs": {"temp": 900}, "reason": "x"})
        ),
        Error::InvalidExperiments(_)
    ));
    // An update keeps the old value in the edit.
    let fixed = apply(
        Some(st),
        &json!({"action": "edit_experiment", "experiment": 1, "output": 0.5, "reason": "typo"}),
        0,
    )
    .unwrap()
    .state;
    assert_eq!(fixed.experiments[0].output, 0.5);
    assert!(fixed.experiments[0].edits[0].before.contains_key("output"));
}

#[test]
fn suggestions_and_designs_are_rounded_to_each_variables_precision() {
    let s = apply(
        None,
        &json!({"action": "define_space", "variables": [
            {"name": "ratio", "type": "real", "bounds": [0, 1], "precision": 0.05},
            {"name": "temp", "type": "real", "bounds": [100, 300], "unit": "°C"}
        ], "objective": {"name": "y", "goal": "maximize"}}),
        0,
    )
    .unwrap()
    .state;
    let on_step = |x: f64, step: f64| ((x / step).round() * step - x).abs() < 1e-9;
    let design = apply(
        Some(s.clone()),
        &json!({"action": "initial_design", "n": 6}),
        3,
    )
    .unwrap();
    let rows = measured_2d(&design.result);
    for p in design.result["suggestions"].as_array().unwrap() {
        assert!(on_step(p["inputs"]["ratio"].as_f64().unwrap(), 0.05), "{p}");
        assert!(on_step(p["inputs"]["temp"].as_f64().unwrap(), 1.0), "{p}");
    }
    let st = apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap()
    .state;
    let out = apply(Some(st), &json!({"action": "suggest", "q": 3}), 5).unwrap();
    for p in out.result["suggestions"].as_array().unwrap() {
        assert!(on_step(p["inputs"]["ratio"].as_f64().unwrap(), 0.05), "{p}");
        assert!(on_step(p["inputs"]["temp"].as_f64().unwrap(), 1.0), "{p}");
    }
    // A bad precision is a space error.
    assert!(matches!(
        apply(
            None,
            &json!({"action": "define_space", "variables": [{"name": "r", "type": "real", "bounds": [0, 1], "precision": -1}], "objective": {"name": "y", "goal": "max"}}),
            0
        ),
        Err(Error::InvalidSpace(_))
    ));
}

fn measured_2d(points: &Json) -> Json {
    Json::Array(
        points["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let r = p["inputs"]["ratio"].as_f64().unwrap();
                let t = p["inputs"]["temp"].as_f64().unwrap();
                json!({"inputs": p["inputs"], "output": -(r - 0.3).powi(2) - ((t - 200.0) / 100.0).powi(2)})
            })
            .collect(),
    )
}

#[test]
fn the_optimum_is_the_best_predicted_point_and_never_worse_than_the_data() {
    let mut s = with_rows(8);
    let best_mean = {
        let m = s.surrogate(None, false, 0).unwrap();
        s.active()
            .map(|e| m.predict(&s.space.parse_inputs(&e.inputs).unwrap()).mean)
            .fold(f64::NEG_INFINITY, f64::max)
    };
    let p = optimum(&mut s, 1).unwrap();
    assert!(p.mean.unwrap() >= best_mean - 1e-9);
    // Near the true optimum of the test function (220 °C, 5 h, ethanol).
    let t = match p.inputs["temp"] {
        crate::space::Value::Number(v) => v,
        _ => f64::NAN,
    };
    assert!((150.0..=290.0).contains(&t), "{p:?}");
}

#[test]
fn configuration_changes_leave_audit_entries() {
    let s = with_rows(4);
    let redefine = json!({"action": "define_space", "variables": [
        {"name": "temp", "type": "real", "bounds": [90, 300], "unit": "°C"},
        {"name": "time", "type": "integer", "bounds": [1, 8]},
        {"name": "solvent", "type": "categorical", "categories": ["water", "ethanol"]}
    ], "outputs": [{"name": "purity", "unit": "%"}]});
    let out = apply(Some(s.clone()), &redefine, 0).unwrap();
    assert_eq!(out.audit.len(), 1);
    assert_eq!(out.audit[0].0, CONFIG_AUDIT);
    assert!(out.audit[0].1.get("space").is_some() && out.audit[0].1.get("outputs").is_some());
    assert!(out.audit[0].1.get("objective").is_none());
    // The same definition again changes nothing and leaves no entry.
    let again = apply(Some(out.state.clone()), &redefine, 0).unwrap();
    assert!(again.audit.is_empty() && again.state == out.state);
    // A new strategy or kernel is recorded.
    let first = apply(
        Some(out.state),
        &json!({"action": "suggest", "strategy": "EI"}),
        1,
    )
    .unwrap();
    let ucb = apply(
        Some(first.state),
        &json!({"action": "suggest", "strategy": "UCB", "kernel": "rbf"}),
        1,
    )
    .unwrap();
    let change = &ucb.audit[0].1;
    assert_eq!(change["strategy"]["before"], "EI");
    assert_eq!(change["kernel"]["after"], "rbf");
    // Other outputs are recorded with experiments, by CSV or JSON.
    let csv = "temp,time,solvent,yield,purity\n150,2,water,0.3,91.5\n160,2,water,0.35,\n";
    let added = apply(
        Some(ucb.state),
        &json!({"action": "add_experiments", "csv": csv}),
        0,
    )
    .unwrap()
    .state;
    let last = &added.experiments[added.experiments.len() - 2..];
    assert_eq!(last[0].outputs.get("purity"), Some(&91.5));
    assert!(last[1].outputs.is_empty());
}

#[test]
fn designs_suggestions_and_the_optimum_keep_to_linear_constraints() {
    let s = apply(
        None,
        &json!({"action": "define_space", "variables": [
            {"name": "a", "type": "real", "bounds": [0, 1]},
            {"name": "b", "type": "real", "bounds": [0, 1]}
        ], "objective": {"name": "y", "goal": "maximize"}, "constraints": ["a + b <= 1"]}),
        0,
    )
    .unwrap();
    assert_eq!(
        s.audit[0].1["constraints"]["after"][0]["text"],
        "a + b <= 1"
    );
    let meets = |p: &Json| {
        p["inputs"]["a"].as_f64().unwrap() + p["inputs"]["b"].as_f64().unwrap() <= 1.0 + 1e-9
    };
    let design = apply(
        Some(s.state.clone()),
        &json!({"action": "initial_design", "n": 8}),
        4,
    )
    .unwrap();
    let pts = design.result["suggestions"].as_array().unwrap();
    assert_eq!(pts.len(), 8);
    assert!(pts.iter().all(meets), "{pts:?}");
    // The unconstrained maximum (a = b = 1) is outside: suggestions stay on the feasible side.
    let rows: Vec<Json> = pts
        .iter()
        .map(|p| {
            let (a, b) = (
                p["inputs"]["a"].as_f64().unwrap(),
                p["inputs"]["b"].as_f64().unwrap(),
            );
            json!({"inputs": p["inputs"], "output": a + 2.0 * b})
        })
        .collect();
    let st = apply(
        Some(s.state),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap()
    .state;
    let out = apply(Some(st.clone()), &json!({"action": "suggest", "q": 4}), 9).unwrap();
    let pts = out.result["suggestions"].as_array().unwrap();
    assert!(!pts.is_empty() && pts.iter().all(meets), "{pts:?}");
    let mut st = st;
    let best = optimum(&mut st, 2).unwrap();
    assert!(meets(&json!({"inputs": best.inputs})), "{best:?}");
    // A constraint nothing in the box meets, or naming an unknown variable, is refused.
    for bad in ["a + b <= -1", "a + z <= 1"] {
        let args = json!({"action": "define_space", "variables": [
            {"name": "a", "type": "real", "bounds": [0, 1]},
            {"name": "b", "type": "real", "bounds": [0, 1]}
        ], "objective": {"name": "y", "goal": "maximize"}, "constraints": [bad]});
        assert!(
            matches!(apply(None, &args, 0), Err(Error::InvalidSpace(_))),
            "{bad}"
        );
    }
}

#[test]
fn rounding_never_turns_a_suggestion_into_a_recorded_experiment() {
    // A coarse step (0.5) and data packed around the optimum: the search finds new points
    // that round onto recorded ones, which then stay as found.
    let s = apply(
        None,
        &json!({"action": "define_space", "variables": [
            {"name": "x", "type": "real", "bounds": [0, 10], "precision": 0.5}
        ], "objective": {"name": "y", "goal": "maximize"}}),
        0,
    )
    .unwrap()
    .state;
    let rows: Vec<Json> = (0..=20)
        .map(|i| {
            let x = f64::from(i) * 0.5;
            json!({"inputs": {"x": x}, "output": -(x - 5.2).powi(2)})
        })
        .collect();
    let st = apply(
        Some(s),
        &json!({"action": "add_experiments", "experiments": rows}),
        0,
    )
    .unwrap()
    .state;
    let observed: Vec<f64> = st
        .experiments
        .iter()
        .map(|e| match e.inputs["x"] {
            crate::space::Value::Number(x) => x,
            _ => f64::NAN,
        })
        .collect();
    for seed in 0..5 {
        let out = apply(
            Some(st.clone()),
            &json!({"action": "suggest", "q": 3}),
            seed,
        )
        .unwrap();
        let xs: Vec<f64> = out.result["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["inputs"]["x"].as_f64().unwrap())
            .collect();
        for (i, x) in xs.iter().enumerate() {
            assert!(
                !observed.contains(x),
                "seed {seed}: {x} repeats a recorded run"
            );
            assert!(
                !xs[..i].contains(x),
                "seed {seed}: {x} repeats in the batch"
            );
        }
    }
}

fn queued_ids(out: &ActionOutcome) -> Vec<String> {
    out.result["queued"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_suggestion_is_queued_with_provenance_then_run_to_an_experiment() {
    let s = define();
    let design = apply(
        Some(s),
        &json!({"action": "initial_design", "n": 6, "method": "sobol"}),
        1,
    )
    .unwrap();
    let added = apply(
        Some(design.state),
        &json!({"action": "add_experiments", "experiments": measured(&design.result)}),
        0,
    )
    .unwrap();
    let sug = apply(
        Some(added.state),
        &json!({"action": "suggest", "strategy": "qEI", "q": 2, "kernel": "rbf"}),
        3,
    )
    .unwrap();
    let q = apply(Some(sug.state), &json!({"action": "queue"}), 0).unwrap();
    let ids = queued_ids(&q);
    assert_eq!(ids.len(), 2);
    let entry = &q.state.queue[0];
    assert_eq!(
        (entry.iteration, entry.strategy.as_str(), entry.kernel),
        (1, "qEI", Some(Kernel::Rbf))
    );
    assert_eq!(entry.seed, Some(3));
    assert!(entry.predicted_mean.is_some() && entry.acquisition.is_some());
    // Queueing the same suggestions again adds nothing.
    let again = apply(Some(q.state.clone()), &json!({"action": "queue"}), 0).unwrap();
    assert_eq!(again.result["skipped"], 2);
    assert_eq!(again.state.queue.len(), 2);
    // Start, then complete with a different temperature: suggested and actual both kept.
    let started = apply(
        Some(q.state),
        &json!({"action": "start", "queued": ids[0]}),
        0,
    )
    .unwrap();
    assert_eq!(
        started.state.queue[0].status,
        crate::queue::QueueStatus::Running
    );
    let err = apply(
        Some(started.state.clone()),
        &json!({"action": "start", "queued": ids[0]}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::QueueState(_)), "{err:?}");
    let done = apply(
        Some(started.state),
        &json!({"action": "complete", "queued": ids[0], "output": 0.8, "inputs": {"temp": 201}}),
        0,
    )
    .unwrap();
    let entry = &done.state.queue[0];
    assert_eq!(entry.status, crate::queue::QueueStatus::Done);
    let actual = entry.actual.as_ref().unwrap();
    assert_eq!(actual["temp"], crate::space::Value::Number(201.0));
    assert_eq!(actual["time"], entry.suggested["time"]);
    let exp = done.state.experiments.last().unwrap();
    assert_eq!(exp.queued.as_deref(), Some(ids[0].as_str()));
    assert_eq!(entry.experiment.as_deref(), Some(exp.key().as_str()));
    assert_eq!(done.state.queued_for(exp), Some(entry));
    // Experiments added the ordinary way are outside the queue; the data table shows both.
    assert!(done.state.experiments[0].queued.is_none());
    let table = crate::report::data_rows(&done.state);
    let last = table.rows.last().unwrap();
    let n = table.columns.len();
    assert_eq!(&table.columns[n - 2..], ["source", "suggested"]);
    assert!(last[n - 2].starts_with(&format!("queue {} (qEI, iteration 1)", ids[0])));
    assert!(last[n - 1].contains("temp = "), "{last:?}");
    assert_eq!(table.rows[0][n - 2..], ["outside the queue", "–"]);
    let queue = crate::report::queue_rows(&done.state);
    assert_eq!(queue.rows[0][4], "done");
    assert!(
        queue.rows[0][6].contains("temp = 201"),
        "{:?}",
        queue.rows[0]
    );
    let err = apply(
        Some(done.state.clone()),
        &json!({"action": "complete", "queued": ids[0], "output": 1.0}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::QueueState(_)));
    // The second fails with a reason; it cannot then complete.
    let err = apply(
        Some(done.state.clone()),
        &json!({"action": "fail", "queued": ids[1]}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArguments(_)));
    let failed = apply(
        Some(done.state),
        &json!({"action": "fail", "queued": ids[1], "reason": "furnace tripped"}),
        0,
    )
    .unwrap();
    assert_eq!(
        failed.state.queue[1].reason.as_deref(),
        Some("furnace tripped")
    );
    assert_eq!(failed.state.experiments.len(), 7);
    let err = apply(
        Some(failed.state),
        &json!({"action": "complete", "queued": "qnope", "output": 1.0}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoSuchQueued(_)));
}

#[test]
fn points_chosen_by_hand_are_queued_as_manual_and_checked_against_the_space() {
    let s = define();
    let err = apply(Some(s.clone()), &json!({"action": "queue"}), 0).unwrap_err();
    assert!(matches!(err, Error::MissingState(_)));
    let err = apply(
        Some(s.clone()),
        &json!({"action": "queue", "points": [{"temp": 900, "time": 2, "solvent": "water"}]}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidPoint(_)), "{err:?}");
    let q = apply(
        Some(s),
        &json!({"action": "queue", "points": [{"temp": 150, "time": 2, "solvent": "water"}]}),
        0,
    )
    .unwrap();
    assert_eq!(q.state.queue[0].strategy, "manual");
    // A completion whose actual inputs leave the space is refused and changes nothing.
    let id = q.state.queue[0].id.clone();
    let err = apply(
        Some(q.state.clone()),
        &json!({"action": "complete", "queued": id, "output": 0.5, "inputs": {"temp": 1000}}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidExperiments(_)), "{err:?}");
    let done = apply(
        Some(q.state),
        &json!({"action": "complete", "queued": id, "output": 0.5}),
        0,
    )
    .unwrap();
    assert!(done.state.queue[0].actual.is_none(), "same as suggested");
    // The state round-trips through JSON with its queue.
    let back: OptimizerState =
        serde_json::from_str(&serde_json::to_string(&done.state).unwrap()).unwrap();
    assert_eq!(back, done.state);
}

#[test]
fn a_proposed_lock_waits_for_a_person_and_acquisition_locks_take_outside_points() {
    let s = define();
    let err = apply(
        Some(s.clone()),
        &json!({"action": "lock", "what": "acquisition", "points": [{"temp": 999, "time": 2, "solvent": "water"}]}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidPoint(_)), "{err:?}");
    let proposed = apply(
        Some(s),
        &json!({"action": "lock", "what": "acquisition", "propose": true, "notes": "from the rig",
                "points": [{"temp": 150, "time": 2, "solvent": "water"}]}),
        0,
    )
    .unwrap();
    assert!(proposed.lock.is_none(), "a proposal is no lock yet");
    assert!(proposed.state.locks.is_empty());
    assert_eq!(proposed.audit[0].0, LOCK_PROPOSED_AUDIT);
    let id = proposed.state.proposals[0].id.clone();
    assert!(id.starts_with('p'));
    let err = apply(
        Some(proposed.state.clone()),
        &json!({"action": "confirm_lock", "proposal": "pnope"}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoSuchProposal(_)));
    let confirmed = apply(
        Some(proposed.state.clone()),
        &json!({"action": "confirm_lock", "proposal": id, "notes": "checked"}),
        0,
    )
    .unwrap();
    let lock = confirmed.lock.clone().unwrap();
    assert_eq!(lock.notes.as_deref(), Some("from the rig\nchecked"));
    match &lock.details {
        LockDetails::Acquisition {
            strategy, points, ..
        } => {
            assert_eq!(strategy, "external");
            assert_eq!(points[0].inputs["temp"], crate::space::Value::Number(150.0));
        }
        other => panic!("{other:?}"),
    }
    assert!(confirmed.state.proposals.is_empty());
    assert_eq!(confirmed.state.iteration(), 2);
    // Rejection needs a reason and is audited; the proposal is gone either way.
    let err = apply(
        Some(proposed.state.clone()),
        &json!({"action": "reject_lock", "proposal": id}),
        0,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArguments(_)));
    let rejected = apply(
        Some(proposed.state.clone()),
        &json!({"action": "reject_lock", "proposal": id, "reason": "wrong batch"}),
        0,
    )
    .unwrap();
    assert!(rejected.state.proposals.is_empty() && rejected.state.locks.is_empty());
    assert_eq!(rejected.audit[0].0, LOCK_REJECTED_AUDIT);
    // Merge: confirmed on one branch, still open on the other: it does not come back.
    let m = crate::merge(Some(&proposed.state), &confirmed.state, &proposed.state).unwrap();
    assert!(m.proposals.is_empty());
    assert_eq!(m.locks.len(), 1);
    let m = crate::merge(Some(&define()), &define(), &proposed.state).unwrap();
    assert_eq!(
        m.proposals.len(),
        1,
        "a new proposal on their side comes along"
    );
}
