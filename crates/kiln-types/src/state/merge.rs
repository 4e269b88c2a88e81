//! Three-way merge and diff of research states, with per-kind rules.
//!
//! Keyed collections (materials by formula, discoveries, hypotheses and tasks by id, links by
//! their ends and relationship, context pins by key, tool states by tool) merge entry by entry:
//! a side that left an entry as it was in the base takes the other side's version; two different
//! changes conflict. Materials never conflict (mentions and data combine). The focus follows
//! ours (it is where the receiving branch is looking). Tool states defer to the tool's merger.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Focus, Material, ResearchState};

/// How conflicts are settled in a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MergeStrategy {
    /// Conflicts are reported and nothing is merged.
    #[default]
    Fail,
    /// Conflicts take the receiving branch's value.
    Ours,
    /// Conflicts take the merged branch's value.
    Theirs,
    /// Conflicting entries are both kept: ours under its key, theirs under `key@branch`.
    /// Where two values cannot coexist (tool states without a merger) ours is kept.
    Union,
}

/// One field on which the two sides made different changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    pub field: String,
    pub base: Option<Value>,
    pub ours: Option<Value>,
    pub theirs: Option<Value>,
}

/// Merges a tool's own state; returns `None` when the tool has no merger.
pub trait ToolMerger {
    fn merge_tool(
        &self,
        tool: &str,
        base: Option<&Value>,
        ours: &Value,
        theirs: &Value,
    ) -> Option<Result<Value, Vec<Conflict>>>;

    /// Renders a tool's state as Markdown for the session report; `None`: nothing to add.
    fn report_tool(&self, _tool: &str, _state: &Value) -> Option<String> {
        None
    }
}

impl ToolMerger for () {
    fn merge_tool(
        &self,
        _: &str,
        _: Option<&Value>,
        _: &Value,
        _: &Value,
    ) -> Option<Result<Value, Vec<Conflict>>> {
        None
    }
}

/// The merged state and the conflicts that the strategy settled.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    pub state: ResearchState,
    pub resolved: Vec<Conflict>,
}

/// Merges `theirs` into `ours` given their common `base`.
///
/// With [`MergeStrategy::Fail`] any conflict returns `Err` with every conflict found.
pub fn merge(
    base: &ResearchState,
    ours: &ResearchState,
    theirs: &ResearchState,
    strategy: MergeStrategy,
    theirs_label: &str,
    tools: &dyn ToolMerger,
) -> Result<MergeOutcome, Vec<Conflict>> {
    let mut m = Merger {
        strategy,
        label: theirs_label,
        conflicts: Vec::new(),
    };
    let materials = merge_materials(&base.materials, &ours.materials, &theirs.materials);
    let discoveries = m.keyed(
        "discoveries",
        &base.discoveries,
        &ours.discoveries,
        &theirs.discoveries,
        |d| d.id.clone(),
        |d, sfx| {
            let mut d = d.clone();
            d.id = format!("{}@{sfx}", d.id);
            d
        },
    );
    let links = m.keyed(
        "links",
        &base.links,
        &ours.links,
        &theirs.links,
        |l| format!("{}->{}:{}", l.from, l.to, l.relationship),
        |l, _| l.clone(),
    );
    let hypotheses = m.keyed(
        "hypotheses",
        &base.hypotheses,
        &ours.hypotheses,
        &theirs.hypotheses,
        |h| h.id.clone(),
        |h, sfx| {
            let mut h = h.clone();
            h.id = format!("{}@{sfx}", h.id);
            h
        },
    );
    let tasks = m.keyed(
        "tasks",
        &base.tasks,
        &ours.tasks,
        &theirs.tasks,
        |t| t.id.clone(),
        |t, sfx| {
            let mut t = t.clone();
            t.id = format!("{}@{sfx}", t.id);
            t
        },
    );
    let context = m.map(
        "context",
        &base.context,
        &ours.context,
        &theirs.context,
        true,
    );
    let tools_merged = m.tools(&base.tools, &ours.tools, &theirs.tools, tools);
    let focus = if ours.focus == base.focus {
        theirs.focus.clone()
    } else {
        ours.focus.clone()
    };
    let state = ResearchState {
        materials,
        discoveries,
        links,
        hypotheses,
        tasks,
        context,
        focus,
        tools: tools_merged,
    };
    if strategy == MergeStrategy::Fail && !m.conflicts.is_empty() {
        return Err(m.conflicts);
    }
    Ok(MergeOutcome {
        state,
        resolved: m.conflicts,
    })
}

struct Merger<'a> {
    strategy: MergeStrategy,
    label: &'a str,
    conflicts: Vec<Conflict>,
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

enum Pick<T> {
    Keep(T),
    Drop,
    Both(T, T),
}

impl Merger<'_> {
    /// Decides one entry present in at least one side.
    fn decide<T: Clone + PartialEq + Serialize>(
        &mut self,
        field: String,
        b: Option<&T>,
        o: Option<&T>,
        t: Option<&T>,
    ) -> Pick<T> {
        let take = |x: Option<&T>| x.map_or(Pick::Drop, |v| Pick::Keep(v.clone()));
        if o == t {
            return take(o);
        }
        if o == b {
            return take(t);
        }
        if t == b {
            return take(o);
        }
        self.conflicts.push(Conflict {
            field,
            base: b.map(to_value),
            ours: o.map(to_value),
            theirs: t.map(to_value),
        });
        match (self.strategy, o, t) {
            (MergeStrategy::Theirs, _, _) => take(t),
            (MergeStrategy::Union, Some(o), Some(t)) => Pick::Both(o.clone(), t.clone()),
            (MergeStrategy::Union, o, t) => take(o.or(t)),
            _ => take(o),
        }
    }

    fn keyed<T: Clone + PartialEq + Serialize>(
        &mut self,
        field: &str,
        base: &[T],
        ours: &[T],
        theirs: &[T],
        key: impl Fn(&T) -> String,
        rekey: impl Fn(&T, &str) -> T,
    ) -> Vec<T> {
        let index = |xs: &[T]| -> BTreeMap<String, usize> {
            xs.iter().enumerate().map(|(i, x)| (key(x), i)).collect()
        };
        let (bi, oi, ti) = (index(base), index(ours), index(theirs));
        let mut keys: Vec<String> = ours.iter().map(&key).collect();
        keys.extend(theirs.iter().map(&key).filter(|k| !oi.contains_key(k)));
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let (b, o, t) = (
                bi.get(&k).map(|&i| &base[i]),
                oi.get(&k).map(|&i| &ours[i]),
                ti.get(&k).map(|&i| &theirs[i]),
            );
            match self.decide(format!("{field}.{k}"), b, o, t) {
                Pick::Keep(v) => out.push(v),
                Pick::Drop => {}
                Pick::Both(o, t) => {
                    out.push(o);
                    out.push(rekey(&t, self.label));
                }
            }
        }
        out
    }

    fn map(
        &mut self,
        field: &str,
        base: &BTreeMap<String, Value>,
        ours: &BTreeMap<String, Value>,
        theirs: &BTreeMap<String, Value>,
        union_rekeys: bool,
    ) -> BTreeMap<String, Value> {
        let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        let mut out = BTreeMap::new();
        for k in keys {
            match self.decide(
                format!("{field}.{k}"),
                base.get(k),
                ours.get(k),
                theirs.get(k),
            ) {
                Pick::Keep(v) => {
                    out.insert(k.clone(), v);
                }
                Pick::Drop => {}
                Pick::Both(o, t) => {
                    out.insert(k.clone(), o);
                    if union_rekeys {
                        out.insert(format!("{k}@{}", self.label), t);
                    }
                }
            }
        }
        out
    }

    fn tools(
        &mut self,
        base: &BTreeMap<String, Value>,
        ours: &BTreeMap<String, Value>,
        theirs: &BTreeMap<String, Value>,
        mergers: &dyn ToolMerger,
    ) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        for k in keys {
            let (b, o, t) = (base.get(k), ours.get(k), theirs.get(k));
            if let (Some(o), Some(t)) = (o, t)
                && o != t
                && b != Some(o)
                && b != Some(t)
                && let Some(result) = mergers.merge_tool(k, b, o, t)
            {
                match result {
                    Ok(v) => {
                        out.insert(k.clone(), v);
                    }
                    Err(conflicts) => {
                        self.conflicts.extend(conflicts);
                        let v = if self.strategy == MergeStrategy::Theirs {
                            t
                        } else {
                            o
                        };
                        out.insert(k.clone(), v.clone());
                    }
                }
                continue;
            }
            match self.decide(format!("tools.{k}"), b, o, t) {
                Pick::Keep(v) => {
                    out.insert(k.clone(), v);
                }
                Pick::Drop => {}
                Pick::Both(o, _) => {
                    out.insert(k.clone(), o);
                }
            }
        }
        out
    }
}

fn merge_materials(base: &[Material], ours: &[Material], theirs: &[Material]) -> Vec<Material> {
    let mut out: Vec<Material> = ours.to_vec();
    for t in theirs {
        match out.iter_mut().find(|m| m.formula == t.formula) {
            Some(m) if m == t => {}
            Some(m) => {
                let base_mentions = base
                    .iter()
                    .find(|b| b.formula == t.formula)
                    .map_or(0, |b| b.mentions);
                m.mentions += t.mentions.saturating_sub(base_mentions);
                if m.data.is_none() {
                    m.data = t.data.clone();
                }
            }
            None => {
                if !base.iter().any(|b| b == t) {
                    out.push(t.clone());
                }
            }
        }
    }
    out
}

/// How one keyed collection differs between two states.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct KeyedDiff {
    pub added: Vec<Value>,
    pub removed: Vec<Value>,
    pub changed: Vec<Changed>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Changed {
    pub key: String,
    pub from: Value,
    pub to: Value,
}

impl KeyedDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The difference between two research states.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct StateDiff {
    pub materials: KeyedDiff,
    pub discoveries: KeyedDiff,
    pub links: KeyedDiff,
    pub hypotheses: KeyedDiff,
    pub tasks: KeyedDiff,
    pub context: KeyedDiff,
    pub tools: KeyedDiff,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<(Focus, Focus)>,
}

fn keyed_diff<T: Serialize>(from: &[T], to: &[T], key: impl Fn(&T) -> String) -> KeyedDiff {
    let f: BTreeMap<String, Value> = from.iter().map(|x| (key(x), to_value(x))).collect();
    let t: BTreeMap<String, Value> = to.iter().map(|x| (key(x), to_value(x))).collect();
    map_diff(&f, &t)
}

fn map_diff(f: &BTreeMap<String, Value>, t: &BTreeMap<String, Value>) -> KeyedDiff {
    let mut d = KeyedDiff::default();
    for (k, v) in t {
        match f.get(k) {
            None => d.added.push(v.clone()),
            Some(old) if old != v => d.changed.push(Changed {
                key: k.clone(),
                from: old.clone(),
                to: v.clone(),
            }),
            Some(_) => {}
        }
    }
    d.removed = f
        .iter()
        .filter(|(k, _)| !t.contains_key(*k))
        .map(|(_, v)| v.clone())
        .collect();
    d
}

/// Returns what changed from `from` to `to`.
pub fn diff(from: &ResearchState, to: &ResearchState) -> StateDiff {
    let kv = |m: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| (k.clone(), serde_json::json!({"key": k, "value": v})))
            .collect()
    };
    StateDiff {
        materials: keyed_diff(&from.materials, &to.materials, |m| m.formula.clone()),
        discoveries: keyed_diff(&from.discoveries, &to.discoveries, |d| d.id.clone()),
        links: keyed_diff(&from.links, &to.links, |l| {
            format!("{}->{}:{}", l.from, l.to, l.relationship)
        }),
        hypotheses: keyed_diff(&from.hypotheses, &to.hypotheses, |h| h.id.clone()),
        tasks: keyed_diff(&from.tasks, &to.tasks, |t| t.id.clone()),
        context: map_diff(&kv(&from.context), &kv(&to.context)),
        tools: map_diff(&kv(&from.tools), &kv(&to.tools)),
        focus: (from.focus != to.focus).then(|| (from.focus.clone(), to.focus.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateEvent;
    use proptest::prelude::*;
    use serde_json::json;

    fn state(events: &[(&str, Value)]) -> ResearchState {
        let mut s = ResearchState::default();
        for (node, e) in events {
            let e: StateEvent = serde_json::from_value(e.clone()).unwrap();
            s.apply(node, &e);
        }
        s
    }

    fn pin(node: &str, key: &str, value: i64) -> (&'static str, Value) {
        let node: &'static str = Box::leak(node.to_string().into_boxed_str());
        (
            node,
            json!({"kind": "context_pin", "key": key, "value": value}),
        )
    }

    #[test]
    fn one_sided_changes_merge_cleanly() {
        let base = state(&[pin("b1", "a", 1)]);
        let ours = state(&[pin("b1", "a", 1), pin("o1", "x", 1)]);
        let theirs = state(&[
            pin("b1", "a", 2),
            (
                "t1",
                json!({"kind": "discovery", "type": "t", "description": "d"}),
            ),
            ("t2", json!({"kind": "material", "formula": "NaFePO4"})),
        ]);
        let out = merge(&base, &ours, &theirs, MergeStrategy::Fail, "alt", &()).unwrap();
        assert_eq!(out.state.context["a"], json!(2));
        assert_eq!(out.state.context["x"], json!(1));
        assert_eq!(out.state.discoveries.len(), 1);
        assert_eq!(out.state.materials[0].formula, "NaFePO4");
        assert!(out.resolved.is_empty());
    }

    #[test]
    fn same_key_different_values_conflict_unless_a_strategy_settles_it() {
        let base = state(&[pin("b1", "a", 1)]);
        let ours = state(&[pin("b1", "a", 2)]);
        let theirs = state(&[pin("b1", "a", 3)]);
        let conflicts = merge(&base, &ours, &theirs, MergeStrategy::Fail, "alt", &()).unwrap_err();
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!(c.field, "context.a");
        assert_eq!(
            (c.base.clone(), c.ours.clone(), c.theirs.clone()),
            (Some(json!(1)), Some(json!(2)), Some(json!(3)))
        );
        let o = merge(&base, &ours, &theirs, MergeStrategy::Ours, "alt", &()).unwrap();
        assert_eq!(o.state.context["a"], json!(2));
        assert_eq!(o.resolved.len(), 1);
        let t = merge(&base, &ours, &theirs, MergeStrategy::Theirs, "alt", &()).unwrap();
        assert_eq!(t.state.context["a"], json!(3));
        let u = merge(&base, &ours, &theirs, MergeStrategy::Union, "alt", &()).unwrap();
        assert_eq!(u.state.context["a"], json!(2));
        assert_eq!(u.state.context["a@alt"], json!(3));
    }

    #[test]
    fn hypothesis_status_changed_on_both_sides_conflicts() {
        let h = |node: &'static str, status: &str| {
            (
                node,
                json!({"kind": "hypothesis", "id": "h", "statement": "s", "status": status}),
            )
        };
        let base = state(&[h("n1", "open")]);
        let ours = state(&[h("n1", "open"), h("n2", "supported")]);
        let theirs = state(&[h("n1", "open"), h("n3", "refuted")]);
        let c = merge(&base, &ours, &theirs, MergeStrategy::Fail, "alt", &()).unwrap_err();
        assert_eq!(c[0].field, "hypotheses.h");
        let u = merge(&base, &ours, &theirs, MergeStrategy::Union, "alt", &()).unwrap();
        let ids: Vec<_> = u.state.hypotheses.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids, ["h", "h@alt"]);
    }

    struct UnionNumbers;
    impl ToolMerger for UnionNumbers {
        fn merge_tool(
            &self,
            tool: &str,
            _: Option<&Value>,
            o: &Value,
            t: &Value,
        ) -> Option<Result<Value, Vec<Conflict>>> {
            (tool == "opt").then(|| {
                let mut v: Vec<Value> = o.as_array().cloned().unwrap_or_default();
                for x in t.as_array().into_iter().flatten() {
                    if !v.contains(x) {
                        v.push(x.clone());
                    }
                }
                Ok(Value::Array(v))
            })
        }
    }

    #[test]
    fn tools_defer_to_their_merger() {
        let ts = |node: &'static str, tool: &str, v: Value| {
            (
                node,
                json!({"kind": "tool_state", "tool": tool, "state": v}),
            )
        };
        let base = state(&[ts("n", "opt", json!([1]))]);
        let ours = state(&[ts("n", "opt", json!([1, 2])), ts("m", "nb", json!(1))]);
        let theirs = state(&[ts("n", "opt", json!([1, 3])), ts("m", "nb", json!(2))]);
        let c = merge(
            &base,
            &ours,
            &theirs,
            MergeStrategy::Fail,
            "alt",
            &UnionNumbers,
        )
        .unwrap_err();
        assert_eq!(
            c.len(),
            1,
            "only the tool without a merger conflicts: {c:?}"
        );
        assert_eq!(c[0].field, "tools.nb");
        let o = merge(
            &base,
            &ours,
            &theirs,
            MergeStrategy::Ours,
            "alt",
            &UnionNumbers,
        )
        .unwrap();
        assert_eq!(o.state.tools["opt"], json!([1, 2, 3]));
    }

    #[test]
    fn diff_reports_added_removed_and_changed() {
        let a = state(&[pin("1", "a", 1), pin("2", "b", 1)]);
        let b = state(&[
            pin("1", "a", 2),
            ("3", json!({"kind": "material", "formula": "Fe2O3"})),
        ]);
        let d = diff(&a, &b);
        assert_eq!(d.context.changed.len(), 1);
        assert_eq!(d.context.removed.len(), 1);
        assert_eq!(d.materials.added.len(), 1);
        assert!(d.focus.is_some());
        assert!(diff(&a, &a).context.is_empty());
    }

    fn arb_event() -> impl Strategy<Value = Value> {
        prop_oneof![
            ("[a-c]", 0..3i64).prop_map(|(k, v)| json!({"kind": "context_pin", "key": k, "value": v})),
            "[A-C][a-c]?O[1-3]".prop_map(|f| json!({"kind": "material", "formula": f})),
            ("[h-j]", prop_oneof![Just("open"), Just("supported"), Just("refuted")])
                .prop_map(|(id, st)| json!({"kind": "hypothesis", "id": id, "statement": "s", "status": st})),
            "[x-z]".prop_map(|t| json!({"kind": "tool_state", "tool": t, "state": {"v": t}})),
        ]
    }

    fn fold(prefix: &str, evs: &[Value], start: &ResearchState) -> ResearchState {
        let mut s = start.clone();
        for (i, e) in evs.iter().enumerate() {
            s.apply(
                &format!("{prefix}{i}"),
                &serde_json::from_value(e.clone()).unwrap(),
            );
        }
        s
    }

    proptest! {
        #[test]
        fn merging_with_an_unchanged_side_or_itself_is_identity(
            b in prop::collection::vec(arb_event(), 0..8),
            o in prop::collection::vec(arb_event(), 0..8),
        ) {
            let base = fold("b", &b, &ResearchState::default());
            let ours = fold("o", &o, &base);
            let same = merge(&base, &ours, &base, MergeStrategy::Fail, "x", &()).unwrap();
            prop_assert_eq!(&same.state.context, &ours.context);
            prop_assert_eq!(&same.state.hypotheses, &ours.hypotheses);
            prop_assert_eq!(&same.state.tools, &ours.tools);
            let twice = merge(&base, &ours, &ours, MergeStrategy::Fail, "x", &()).unwrap();
            prop_assert_eq!(twice.state, ours);
        }

        #[test]
        fn strategies_never_fail_and_fail_reports_what_ours_resolves(
            b in prop::collection::vec(arb_event(), 0..6),
            o in prop::collection::vec(arb_event(), 0..6),
            t in prop::collection::vec(arb_event(), 0..6),
        ) {
            let base = fold("b", &b, &ResearchState::default());
            let ours = fold("o", &o, &base);
            let theirs = fold("t", &t, &base);
            let resolved = merge(&base, &ours, &theirs, MergeStrategy::Ours, "x", &()).unwrap().resolved;
            prop_assert!(merge(&base, &ours, &theirs, MergeStrategy::Theirs, "x", &()).is_ok());
            prop_assert!(merge(&base, &ours, &theirs, MergeStrategy::Union, "x", &()).is_ok());
            match merge(&base, &ours, &theirs, MergeStrategy::Fail, "x", &()) {
                Ok(_) => prop_assert!(resolved.is_empty()),
                Err(c) => prop_assert_eq!(c, resolved),
            }
        }
    }
}
