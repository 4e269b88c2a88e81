//! Three-way merge of optimiser states from two session branches: experiments are unioned by
//! identity (an edit on one branch wins over the unchanged row), the same inputs measured on both
//! branches with different outputs, or one experiment edited differently on both, is a conflict.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::experiment::Experiment;
use crate::state::OptimizerState;

/// One conflicting field, with the three versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictItem {
    /// What conflicts ("space", "objective", or "experiment" with the inputs in `base`).
    pub field: String,
    /// The common ancestor's value (for experiments: the inputs).
    pub base: Json,
    /// Our value.
    pub ours: Json,
    /// Their value.
    pub theirs: Json,
}

/// The merge could not be done automatically.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("optimizer merge conflict: {}", .conflicts.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", "))]
pub struct MergeConflict {
    /// Every conflict found.
    pub conflicts: Vec<ConflictItem>,
}

fn to_json<T: Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Merges `theirs` into `ours` given their common ancestor `base`.
///
/// Rules: the space and the objective must be equal (else conflict). Experiments are `ours`
/// followed by those of `theirs` that `ours` lacks. When both branches added, since `base`, an
/// experiment with the same inputs but a different output (and neither branch has the other's
/// row), that is a conflict; replicates added on one branch alone are kept. An experiment edited
/// (or excluded) on one branch takes the edit; edited differently on both, it conflicts
/// (`experiment`, base = the row's key). Locks are unioned
/// the same way. Our model record and last suggestions are kept; the model is refitted on next
/// use if the merged experiments differ from those it was fitted to. `merge(b, s, s) == s`.
pub fn merge(
    base: Option<&OptimizerState>,
    ours: &OptimizerState,
    theirs: &OptimizerState,
) -> Result<OptimizerState, MergeConflict> {
    let mut conflicts = Vec::new();
    if ours.space != theirs.space {
        conflicts.push(ConflictItem {
            field: "space".into(),
            base: base.map_or(Json::Null, |b| to_json(&b.space)),
            ours: to_json(&ours.space),
            theirs: to_json(&theirs.space),
        });
    }
    if ours.objective != theirs.objective {
        conflicts.push(ConflictItem {
            field: "objective".into(),
            base: base.map_or(Json::Null, |b| to_json(&b.objective)),
            ours: to_json(&ours.objective),
            theirs: to_json(&theirs.objective),
        });
    }
    let in_base = |e: &Experiment| base.is_some_and(|b| b.experiments.contains(e));
    let ours_new: Vec<&Experiment> = ours
        .experiments
        .iter()
        .filter(|e| !in_base(e) && !theirs.experiments.contains(e))
        .collect();
    let theirs_new: Vec<&Experiment> = theirs
        .experiments
        .iter()
        .filter(|e| !in_base(e) && !ours.experiments.contains(e))
        .collect();
    // Their rows that are edits of a row we hold (same key): take theirs if ours is as the base
    // had it, else both edited it.
    let base_row = |key: &str| base.and_then(|b| b.experiments.iter().find(|e| e.key() == key));
    let mut replaced: Vec<(usize, &Experiment)> = Vec::new();
    let mut edited_keys: Vec<String> = Vec::new();
    for t in &theirs_new {
        let key = t.key();
        let Some(i) = ours.experiments.iter().position(|o| o.key() == key) else {
            continue;
        };
        edited_keys.push(key.clone());
        let o = &ours.experiments[i];
        if base_row(&key) == Some(o) {
            replaced.push((i, t));
        } else if base_row(&key) != Some(t) {
            conflicts.push(ConflictItem {
                field: "experiment".into(),
                base: Json::String(key),
                ours: to_json(o),
                theirs: to_json(t),
            });
        }
    }
    let edited = |e: &Experiment| edited_keys.contains(&e.key());
    for t in theirs_new.iter().filter(|t| !edited(t)) {
        let clashing: Vec<&&Experiment> = ours_new
            .iter()
            .filter(|o| !edited(o) && o.inputs == t.inputs && o.output != t.output)
            .collect();
        if !clashing.is_empty() {
            conflicts.push(ConflictItem {
                field: "experiment".into(),
                base: to_json(&t.inputs),
                ours: Json::Array(clashing.iter().map(|o| to_json(&o.output)).collect()),
                theirs: to_json(&t.output),
            });
        }
    }
    if !conflicts.is_empty() {
        return Err(MergeConflict { conflicts });
    }
    let mut merged = ours.clone();
    for (i, t) in replaced {
        merged.experiments[i] = t.clone();
    }
    merged
        .experiments
        .extend(theirs_new.into_iter().filter(|t| !edited(t)).cloned());
    let in_base_lock = |l| base.is_some_and(|b| b.locks.contains(l));
    let their_locks: Vec<_> = theirs
        .locks
        .iter()
        .filter(|l| !in_base_lock(l) && !ours.locks.contains(l))
        .cloned()
        .collect();
    merged.locks.extend(their_locks);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Goal;
    use crate::space::{SearchSpace, Value, Variable};
    use crate::state::Objective;

    fn exp(x: f64, y: f64) -> Experiment {
        Experiment::new(
            [("x".to_string(), Value::Number(x))].into_iter().collect(),
            y,
        )
    }

    fn state(rows: &[(f64, f64)]) -> OptimizerState {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 1.0).unwrap()]).unwrap();
        let mut s = OptimizerState::new(
            space,
            Objective {
                name: "y".into(),
                goal: Goal::Maximize,
                unit: None,
            },
        );
        s.experiments = rows.iter().map(|(x, y)| exp(*x, *y)).collect();
        s
    }

    #[test]
    fn experiments_are_unioned() {
        let base = state(&[(0.1, 1.0)]);
        let ours = state(&[(0.1, 1.0), (0.2, 2.0)]);
        let theirs = state(&[(0.1, 1.0), (0.3, 3.0), (0.2, 2.0)]);
        let m = merge(Some(&base), &ours, &theirs).unwrap();
        assert_eq!(
            m.experiments,
            vec![exp(0.1, 1.0), exp(0.2, 2.0), exp(0.3, 3.0)]
        );
    }

    #[test]
    fn same_inputs_different_outputs_conflict() {
        let base = state(&[(0.1, 1.0)]);
        let ours = state(&[(0.1, 1.0), (0.5, 2.0)]);
        let theirs = state(&[(0.1, 1.0), (0.5, 2.5)]);
        let err = merge(Some(&base), &ours, &theirs).unwrap_err();
        assert_eq!(err.conflicts.len(), 1);
        assert_eq!(err.conflicts[0].field, "experiment");
        assert_eq!(err.conflicts[0].theirs, serde_json::json!(2.5));
    }

    #[test]
    fn a_replicate_of_a_base_point_on_one_branch_is_kept() {
        let base = state(&[(0.1, 1.0)]);
        let ours = state(&[(0.1, 1.0)]);
        let theirs = state(&[(0.1, 1.0), (0.1, 1.1)]);
        assert_eq!(
            merge(Some(&base), &ours, &theirs)
                .unwrap()
                .experiments
                .len(),
            2
        );
    }

    fn excluded(mut e: Experiment, reason: &str) -> Experiment {
        e.id = Some(e.key());
        e.excluded = Some(reason.into());
        e
    }

    #[test]
    fn an_edit_on_one_branch_is_taken_and_two_different_edits_conflict() {
        let base = state(&[(0.1, 1.0), (0.2, 2.0)]);
        let mut ours = state(&[(0.1, 1.0), (0.2, 2.0), (0.4, 4.0)]);
        let mut theirs = base.clone();
        theirs.experiments[1] = excluded(exp(0.2, 2.0), "bad batch");
        let m = merge(Some(&base), &ours, &theirs).unwrap();
        assert_eq!(m.experiments.len(), 3, "the edit replaces the row: {m:?}");
        assert_eq!(m.experiments[1].excluded.as_deref(), Some("bad batch"));
        // Our edit survives their unchanged row.
        let m = merge(Some(&base), &theirs, &ours).unwrap();
        assert_eq!(m.experiments.len(), 3);
        assert_eq!(m.experiments[1].excluded.as_deref(), Some("bad batch"));
        // The same edit on both merges cleanly; different edits conflict on that row.
        ours.experiments[1] = excluded(exp(0.2, 2.0), "bad batch");
        assert_eq!(
            merge(Some(&base), &ours, &theirs)
                .unwrap()
                .experiments
                .len(),
            3
        );
        ours.experiments[1] = excluded(exp(0.2, 2.0), "contaminated");
        let err = merge(Some(&base), &ours, &theirs).unwrap_err();
        assert_eq!(err.conflicts.len(), 1);
        assert_eq!(err.conflicts[0].field, "experiment");
        assert_eq!(
            err.conflicts[0].base,
            serde_json::json!(exp(0.2, 2.0).key())
        );
    }

    #[test]
    fn different_spaces_or_objectives_conflict() {
        let ours = state(&[]);
        let mut theirs = state(&[]);
        theirs.objective.goal = Goal::Minimize;
        theirs.space = SearchSpace::new(vec![Variable::real("x", 0.0, 2.0).unwrap()]).unwrap();
        let err = merge(None, &ours, &theirs).unwrap_err();
        let fields: Vec<&str> = err.conflicts.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["space", "objective"]);
    }
}
