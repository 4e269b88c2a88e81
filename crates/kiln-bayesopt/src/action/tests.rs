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
