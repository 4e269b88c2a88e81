//! Three-way merge of optimiser states from two session branches: experiments are unioned by
//! identity (an edit on one branch wins over the unchanged row), the same inputs measured on both
//! branches with different outputs, or one experiment edited differently on both, is a conflict.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::experiment::Experiment;
use crate::model::Goal;
use crate::queue::QueuedExperiment;
use crate::space::{Domain, Inputs, SearchSpace, format_number};
use crate::state::{Objective, OptimizerState};

/// How one conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Our version.
    Ours,
    /// Their version.
    Theirs,
    /// Both (only where both can be kept: rows measured at the same inputs stay as replicates).
    Both,
}

/// One conflicting field, with the three versions and their words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConflictItem {
    /// Stable handle: "space", "objective", or "experiment.<name>=<value>,…" for the inputs.
    #[serde(default)]
    pub key: String,
    /// What conflicts ("space", "objective", or "experiment" with the inputs in `base`).
    pub field: String,
    /// The common ancestor's value (for experiments: the inputs).
    pub base: Json,
    /// Our value.
    pub ours: Json,
    /// Their value.
    pub theirs: Json,
    /// Whether [`Choice::Both`] can settle it.
    #[serde(default)]
    pub can_keep_both: bool,
    /// What the conflict is about, in words ("Optimizer experiment at x = 0.5").
    #[serde(default)]
    pub subject: String,
    /// The base version in words; `None` when the base had none.
    #[serde(default)]
    pub base_text: Option<String>,
    #[serde(default)]
    pub ours_text: String,
    #[serde(default)]
    pub theirs_text: String,
}

/// The merge could not be done automatically.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("optimizer merge conflict: {}", .conflicts.iter().map(|c| c.field.as_str()).collect::<Vec<_>>().join(", "))]
pub struct MergeConflict {
    /// Every conflict found.
    pub conflicts: Vec<ConflictItem>,
}

/// A merge with choices: the merged state (open conflicts keep ours) and each conflict with
/// the choice that settled it.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub state: OptimizerState,
    pub conflicts: Vec<(ConflictItem, Option<Choice>)>,
}

fn to_json<T: Serialize>(v: &T) -> Json {
    serde_json::to_value(v).unwrap_or(Json::Null)
}

/// Describes inputs as `name = value, …` (names in order).
pub fn inputs_text(inputs: &Inputs) -> String {
    inputs
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Describes a search space as its variables and domains.
pub fn space_text(space: &SearchSpace) -> String {
    space
        .variables()
        .iter()
        .map(|v| match &v.domain {
            Domain::Real { lower, upper, log } => format!(
                "{} in [{}, {}]{}",
                v.name,
                format_number(*lower),
                format_number(*upper),
                if *log { " (log)" } else { "" }
            ),
            Domain::Integer { lower, upper } => {
                format!("{} integer in [{lower}, {upper}]", v.name)
            }
            Domain::Categorical { categories } => {
                format!("{} one of {}", v.name, categories.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Describes an objective: "maximise yield".
pub fn objective_text(o: &Objective) -> String {
    match o.goal {
        Goal::Maximize => format!("maximise {}", o.name),
        Goal::Minimize => format!("minimise {}", o.name),
    }
}

fn outputs_text(rows: &[&Experiment]) -> String {
    let vals: Vec<String> = rows.iter().map(|e| format_number(e.output)).collect();
    format!("measured {}", vals.join(", "))
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
    let m = merge_with(base, ours, theirs, &|_| None);
    if m.conflicts.is_empty() {
        Ok(m.state)
    } else {
        Err(MergeConflict {
            conflicts: m.conflicts.into_iter().map(|(c, _)| c).collect(),
        })
    }
}

/// Merges as [`merge`] does, settling each conflict as `choose` says: the space or objective
/// takes one side (`both` cannot apply); an experiment's inputs keep our rows (`ours`), their
/// rows instead of ours (`theirs`), or both sets as replicates (`both`). Conflicts `choose`
/// leaves open keep ours.
pub fn merge_with(
    base: Option<&OptimizerState>,
    ours: &OptimizerState,
    theirs: &OptimizerState,
    choose: &dyn Fn(&ConflictItem) -> Option<Choice>,
) -> Merged {
    let mut conflicts = Vec::new();
    let mut merged = ours.clone();
    if ours.space != theirs.space {
        let c = ConflictItem {
            key: "space".into(),
            field: "space".into(),
            base: base.map_or(Json::Null, |b| to_json(&b.space)),
            ours: to_json(&ours.space),
            theirs: to_json(&theirs.space),
            can_keep_both: false,
            subject: "Optimizer search space".into(),
            base_text: base.map(|b| space_text(&b.space)),
            ours_text: space_text(&ours.space),
            theirs_text: space_text(&theirs.space),
        };
        let pick = choose(&c).filter(|p| *p != Choice::Both);
        if pick == Some(Choice::Theirs) {
            merged.space = theirs.space.clone();
        }
        conflicts.push((c, pick));
    }
    if ours.objective != theirs.objective {
        let c = ConflictItem {
            key: "objective".into(),
            field: "objective".into(),
            base: base.map_or(Json::Null, |b| to_json(&b.objective)),
            ours: to_json(&ours.objective),
            theirs: to_json(&theirs.objective),
            can_keep_both: false,
            subject: "Optimizer objective".into(),
            base_text: base.map(|b| objective_text(&b.objective)),
            ours_text: objective_text(&ours.objective),
            theirs_text: objective_text(&theirs.objective),
        };
        let pick = choose(&c).filter(|p| *p != Choice::Both);
        if pick == Some(Choice::Theirs) {
            merged.objective = theirs.objective.clone();
        }
        conflicts.push((c, pick));
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
    // had it; if both sides edited it, a person chooses (ours or theirs).
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
        let was = base_row(&key);
        if was == Some(o) {
            replaced.push((i, t));
        } else if was != Some(t) {
            let c = ConflictItem {
                key: format!("experiment.edit.{key}"),
                field: "experiment".into(),
                base: was.map_or(Json::Null, to_json),
                ours: to_json(o),
                theirs: to_json(t),
                can_keep_both: false,
                subject: format!("Optimizer experiment at {}", inputs_text(&o.inputs)),
                base_text: was.map(|w| outputs_text(&[w])),
                ours_text: outputs_text(&[o]),
                theirs_text: outputs_text(&[*t]),
            };
            let pick = choose(&c).filter(|p| *p != Choice::Both);
            if pick == Some(Choice::Theirs) {
                replaced.push((i, t));
            }
            conflicts.push((c, pick));
        }
    }
    let edited = |e: &Experiment| edited_keys.contains(&e.key());
    // One conflict per set of inputs both sides measured differently.
    let mut seen: Vec<&Inputs> = Vec::new();
    let mut take: Vec<&Experiment> = Vec::new();
    let mut drop_ours: Vec<&Experiment> = Vec::new();
    for t in theirs_new.iter().filter(|t| !edited(t)) {
        let clashing: Vec<&Experiment> = ours_new
            .iter()
            .filter(|o| !edited(o) && o.inputs == t.inputs && o.output != t.output)
            .copied()
            .collect();
        if clashing.is_empty() {
            take.push(t);
            continue;
        }
        if seen.contains(&&t.inputs) {
            continue;
        }
        seen.push(&t.inputs);
        let theirs_rows: Vec<&Experiment> = theirs_new
            .iter()
            .filter(|x| !edited(x) && x.inputs == t.inputs)
            .copied()
            .collect();
        let c = ConflictItem {
            key: format!(
                "experiment.{}",
                t.inputs
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            field: "experiment".into(),
            base: to_json(&t.inputs),
            ours: Json::Array(clashing.iter().map(|o| to_json(&o.output)).collect()),
            theirs: to_json(&t.output),
            can_keep_both: true,
            subject: format!("Optimizer experiment at {}", inputs_text(&t.inputs)),
            base_text: None,
            ours_text: outputs_text(&clashing),
            theirs_text: outputs_text(&theirs_rows),
        };
        let pick = choose(&c);
        match pick {
            Some(Choice::Theirs) => {
                take.extend(&theirs_rows);
                drop_ours.extend(&clashing);
            }
            Some(Choice::Both) => take.extend(&theirs_rows),
            Some(Choice::Ours) | None => {}
        }
        conflicts.push((c, pick));
    }
    for (i, t) in replaced {
        merged.experiments[i] = t.clone();
    }
    merged.experiments.retain(|e| !drop_ours.contains(&e));
    let mut added: Vec<*const Experiment> = Vec::new();
    for t in take {
        if !added.contains(&std::ptr::from_ref(t)) {
            added.push(std::ptr::from_ref(t));
            merged.experiments.push(t.clone());
        }
    }
    let in_base_lock = |l| base.is_some_and(|b| b.locks.contains(l));
    let their_locks: Vec<_> = theirs
        .locks
        .iter()
        .filter(|l| !in_base_lock(l) && !ours.locks.contains(l))
        .cloned()
        .collect();
    merged.locks.extend(their_locks);
    merge_queues(base, theirs, choose, &mut merged, &mut conflicts);
    // Proposed locks: one settled (confirmed or rejected) on either side is gone; one proposed
    // on either side since the base is kept.
    let in_base_proposal = |id: &str| base.is_some_and(|b| b.proposals.iter().any(|p| p.id == id));
    merged
        .proposals
        .retain(|p| !in_base_proposal(&p.id) || theirs.proposals.iter().any(|t| t.id == p.id));
    for t in &theirs.proposals {
        if !in_base_proposal(&t.id) && !merged.proposals.iter().any(|p| p.id == t.id) {
            merged.proposals.push(t.clone());
        }
    }
    Merged {
        state: merged,
        conflicts,
    }
}

fn queue_text(q: &QueuedExperiment) -> String {
    let mut t = q.status.as_str().to_owned();
    if let Some(r) = &q.reason {
        t.push_str(&format!(": {r}"));
    }
    if let Some(a) = &q.actual {
        t.push_str(&format!(" at {}", inputs_text(a)));
    }
    t
}

/// Queues are unioned by entry id (`merged` starts as ours); an entry changed on one branch takes the change, changed
/// differently on both it is a conflict (`queue.<id>`) settled as ours or theirs.
fn merge_queues(
    base: Option<&OptimizerState>,
    theirs: &OptimizerState,
    choose: &dyn Fn(&ConflictItem) -> Option<Choice>,
    merged: &mut OptimizerState,
    conflicts: &mut Vec<(ConflictItem, Option<Choice>)>,
) {
    let base_entry = |id: &str| base.and_then(|b| b.queue.iter().find(|q| q.id == id));
    for t in &theirs.queue {
        let Some(i) = merged.queue.iter().position(|q| q.id == t.id) else {
            merged.queue.push(t.clone());
            continue;
        };
        let o = &merged.queue[i].clone();
        if o == t {
            continue;
        }
        let was = base_entry(&t.id);
        if was == Some(t) {
            continue;
        }
        if was == Some(o) {
            merged.queue[i] = t.clone();
            continue;
        }
        let c = ConflictItem {
            key: format!("queue.{}", t.id),
            field: "queue".into(),
            base: was.map_or(Json::Null, to_json),
            ours: to_json(o),
            theirs: to_json(t),
            can_keep_both: false,
            subject: format!(
                "Optimizer queued experiment {} at {}",
                t.id,
                inputs_text(&t.suggested)
            ),
            base_text: was.map(queue_text),
            ours_text: queue_text(o),
            theirs_text: queue_text(t),
        };
        let pick = choose(&c).filter(|p| *p != Choice::Both);
        if pick == Some(Choice::Theirs) {
            merged.queue[i] = t.clone();
        }
        conflicts.push((c, pick));
    }
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
    fn each_experiment_conflict_takes_its_own_choice() {
        let base = state(&[(0.1, 1.0)]);
        let ours = state(&[(0.1, 1.0), (0.5, 2.0), (0.7, 4.0)]);
        let theirs = state(&[(0.1, 1.0), (0.5, 2.5), (0.7, 4.5), (0.9, 9.0)]);
        let choose = |c: &ConflictItem| match c.key.as_str() {
            "experiment.x=0.5" => Some(Choice::Theirs),
            "experiment.x=0.7" => Some(Choice::Both),
            _ => None,
        };
        let m = merge_with(Some(&base), &ours, &theirs, &choose);
        let keys: Vec<(&str, Option<Choice>)> = m
            .conflicts
            .iter()
            .map(|(c, p)| (c.key.as_str(), *p))
            .collect();
        assert_eq!(
            keys,
            [
                ("experiment.x=0.5", Some(Choice::Theirs)),
                ("experiment.x=0.7", Some(Choice::Both))
            ]
        );
        assert_eq!(
            m.state.experiments,
            vec![
                exp(0.1, 1.0),
                exp(0.7, 4.0),
                exp(0.5, 2.5),
                exp(0.7, 4.5),
                exp(0.9, 9.0)
            ]
        );
        let c = &m.conflicts[0].0;
        assert_eq!(
            (
                c.subject.as_str(),
                c.ours_text.as_str(),
                c.theirs_text.as_str()
            ),
            (
                "Optimizer experiment at x = 0.5",
                "measured 2",
                "measured 2.5"
            )
        );
        // Left open, ours is kept and theirs' clean row still comes in.
        let open = merge_with(Some(&base), &ours, &theirs, &|_| None);
        assert!(open.conflicts.iter().all(|(_, p)| p.is_none()));
        assert_eq!(open.state.experiments.len(), 4);
    }

    #[test]
    fn a_space_takes_one_side_never_both() {
        let ours = state(&[]);
        let mut theirs = state(&[]);
        theirs.space = SearchSpace::new(vec![Variable::real("x", 0.0, 2.0).unwrap()]).unwrap();
        let m = merge_with(None, &ours, &theirs, &|_| Some(Choice::Both));
        assert_eq!(m.conflicts[0].1, None, "both cannot settle a space");
        assert!(!m.conflicts[0].0.can_keep_both);
        assert_eq!(m.conflicts[0].0.theirs_text, "x in [0, 2]");
        let m = merge_with(None, &ours, &theirs, &|_| Some(Choice::Theirs));
        assert_eq!(m.state.space, theirs.space);
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
        assert_eq!(err.conflicts[0].base, serde_json::json!(exp(0.2, 2.0)));
        assert_eq!(
            err.conflicts[0].key,
            format!("experiment.edit.{}", exp(0.2, 2.0).key())
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

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::queue::{QueueStatus, QueuedExperiment};
    use crate::space::{SearchSpace, Value, Variable};

    fn entry(x: f64) -> QueuedExperiment {
        QueuedExperiment::new(
            1,
            "EI",
            [("x".to_string(), Value::Number(x))].into_iter().collect(),
            "0",
        )
    }

    fn state(queue: Vec<QueuedExperiment>) -> OptimizerState {
        let space = SearchSpace::new(vec![Variable::real("x", 0.0, 1.0).unwrap()]).unwrap();
        let mut s = OptimizerState::new(
            space,
            Objective {
                name: "y".into(),
                goal: Goal::Maximize,
                unit: None,
            },
        );
        s.queue = queue;
        s
    }

    fn with(
        mut e: QueuedExperiment,
        status: QueueStatus,
        reason: Option<&str>,
    ) -> QueuedExperiment {
        e.status = status;
        e.reason = reason.map(String::from);
        e
    }

    #[test]
    fn queues_union_a_one_sided_change_wins_and_different_changes_conflict() {
        let base = state(vec![entry(0.1)]);
        let ours = state(vec![
            with(entry(0.1), QueueStatus::Running, None),
            entry(0.2),
        ]);
        let theirs = state(vec![entry(0.1), entry(0.3)]);
        let m = merge(Some(&base), &ours, &theirs).unwrap();
        let ids: Vec<&str> = m.queue.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, [entry(0.1).id, entry(0.2).id, entry(0.3).id]);
        assert_eq!(m.queue[0].status, QueueStatus::Running, "our change kept");
        // Their change to an entry we left alone is taken.
        let m = merge(Some(&base), &theirs, &ours).unwrap();
        assert_eq!(m.queue[0].status, QueueStatus::Running);
        // Changed differently on both: a conflict, settled by a choice.
        let theirs = state(vec![with(entry(0.1), QueueStatus::Failed, Some("broke"))]);
        let err = merge(Some(&base), &ours, &theirs).unwrap_err();
        assert_eq!(err.conflicts.len(), 1);
        assert_eq!(err.conflicts[0].key, format!("queue.{}", entry(0.1).id));
        assert_eq!(err.conflicts[0].theirs_text, "failed: broke");
        let m = merge_with(Some(&base), &ours, &theirs, &|_| Some(Choice::Theirs));
        assert_eq!(m.state.queue[0].status, QueueStatus::Failed);
        // The same change on both merges cleanly, and merging with itself changes nothing.
        assert_eq!(merge(Some(&base), &ours, &ours).unwrap(), ours);
    }
}
