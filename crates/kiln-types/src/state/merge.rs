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

use super::words::{self, ConflictWords};
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

/// How one conflict is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The receiving branch's version.
    Ours,
    /// The merged branch's version.
    Theirs,
    /// Both versions side by side (ours under its key, theirs under `key@branch`).
    Both,
}

/// One entry on which the two sides made different changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conflict {
    /// Stable handle for this conflict in a merge's `resolutions` (for research-state entries
    /// the same as `field`; a tool that settles field by field gives each its own key).
    pub key: String,
    pub field: String,
    pub base: Option<Value>,
    pub ours: Option<Value>,
    pub theirs: Option<Value>,
    /// Whether `both` can settle it (two values that can coexist).
    #[serde(default)]
    pub can_keep_both: bool,
    /// How it was settled; absent while it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The conflict as a sentence: "Hypothesis 'X': supported on main, refuted on sodium
    /// (was open)".
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub base_text: Option<String>,
    #[serde(default)]
    pub ours_text: String,
    #[serde(default)]
    pub theirs_text: String,
}

impl Conflict {
    /// A conflict keyed by its field, with its words.
    pub fn new(
        key: impl Into<String>,
        values: [Option<Value>; 3],
        can_keep_both: bool,
        words: ConflictWords,
    ) -> Self {
        let key = key.into();
        let [base, ours, theirs] = values;
        Self {
            field: key.clone(),
            key,
            base,
            ours,
            theirs,
            can_keep_both,
            resolution: None,
            description: String::new(),
            subject: words.subject,
            base_text: words.base,
            ours_text: words.ours,
            theirs_text: words.theirs,
        }
    }

    fn words(&self) -> ConflictWords {
        ConflictWords {
            subject: self.subject.clone(),
            base: self.base_text.clone(),
            ours: self.ours_text.clone(),
            theirs: self.theirs_text.clone(),
        }
    }
}

/// The choices for one merge: a resolution per conflict key, and a strategy for the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolver {
    pub strategy: MergeStrategy,
    pub by_key: BTreeMap<String, Resolution>,
}

impl Resolver {
    pub fn new(strategy: MergeStrategy, by_key: BTreeMap<String, Resolution>) -> Self {
        Self { strategy, by_key }
    }

    /// Returns how `c` is settled, or `None` while it stays open. A named `both` on a conflict
    /// whose values cannot coexist settles nothing (the merge reports it as a bad choice); the
    /// `union` strategy keeps ours there.
    pub fn pick(&self, c: &Conflict) -> Option<Resolution> {
        match self.by_key.get(&c.key) {
            Some(Resolution::Both) if !c.can_keep_both => None,
            Some(r) => Some(*r),
            None => match self.strategy {
                MergeStrategy::Fail => None,
                MergeStrategy::Ours => Some(Resolution::Ours),
                MergeStrategy::Theirs => Some(Resolution::Theirs),
                MergeStrategy::Union if c.can_keep_both => Some(Resolution::Both),
                MergeStrategy::Union => Some(Resolution::Ours),
            },
        }
    }
}

/// Resolutions that name no conflict of this merge, or ask `both` of one that cannot.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ResolutionError {
    pub unknown: Vec<String>,
    pub cannot_keep_both: Vec<String>,
}

impl ResolutionError {
    pub fn message(&self) -> String {
        let mut parts = Vec::new();
        if !self.unknown.is_empty() {
            parts.push(format!(
                "no conflict in this merge has the key {}",
                quoted(&self.unknown)
            ));
        }
        if !self.cannot_keep_both.is_empty() {
            parts.push(format!(
                "`both` cannot settle {} (the two values cannot coexist): choose ours or theirs",
                quoted(&self.cannot_keep_both)
            ));
        }
        parts.join("; ")
    }
}

fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a tool's merger made of two changed states: the merged state with every settled
/// conflict applied, and each conflict found (with its resolution, or none while open).
#[derive(Debug, Clone, PartialEq)]
pub struct ToolMerge {
    pub state: Value,
    pub conflicts: Vec<Conflict>,
}

/// Merges a tool's own state; returns `None` when the tool has no merger.
pub trait ToolMerger {
    /// Merges one tool's state, settling each conflict the `resolver` picks for (conflicts it
    /// leaves open keep ours in `state`).
    fn merge_tool(
        &self,
        tool: &str,
        base: Option<&Value>,
        ours: &Value,
        theirs: &Value,
        resolver: &Resolver,
    ) -> Option<ToolMerge>;

    /// Renders a tool's state as Markdown for the session report; `None`: nothing to add.
    fn report_tool(&self, _tool: &str, _state: &Value) -> Option<String> {
        None
    }

    /// Describes in sentences how a tool's state changed; `None`: the generic sentence.
    fn describe_tool_change(
        &self,
        _tool: &str,
        _from: Option<&Value>,
        _to: Option<&Value>,
    ) -> Option<Vec<String>> {
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
        _: &Resolver,
    ) -> Option<ToolMerge> {
        None
    }
}

/// The merged state and every conflict found, each with how it was settled.
///
/// Conflicts still open (no resolution) keep ours in `state`, so a preview can show the state
/// the merge would write once they are settled that way; a real merge refuses while any is open.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome {
    pub state: ResearchState,
    pub conflicts: Vec<Conflict>,
}

impl MergeOutcome {
    /// Conflicts no resolution and no strategy settled.
    pub fn open(&self) -> impl Iterator<Item = &Conflict> {
        self.conflicts.iter().filter(|c| c.resolution.is_none())
    }

    pub fn is_settled(&self) -> bool {
        self.open().next().is_none()
    }
}

/// The two branch names a merge's sentences use.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The receiving branch.
    pub ours: &'a str,
    /// The merged branch (also the suffix `both` gives theirs: `key@branch`).
    pub theirs: &'a str,
}

/// Merges `theirs` into `ours` given their common `base`, settling conflicts as `resolver`
/// says. Every conflict comes back in the outcome; it is the caller's to refuse open ones.
/// Errors only when a resolution names no conflict or asks `both` where it cannot apply.
pub fn merge(
    base: &ResearchState,
    ours: &ResearchState,
    theirs: &ResearchState,
    resolver: &Resolver,
    labels: Labels<'_>,
    tools: &dyn ToolMerger,
) -> Result<MergeOutcome, ResolutionError> {
    let mut m = Merger {
        resolver,
        label: labels.theirs,
        conflicts: Vec::new(),
    };
    let states = [ours, theirs, base];
    let materials = merge_materials(&base.materials, &ours.materials, &theirs.materials);
    let discoveries = m.keyed(
        "discoveries",
        [&base.discoveries, &ours.discoveries, &theirs.discoveries],
        |d| d.id.clone(),
        |d, sfx| {
            let mut d = d.clone();
            d.id = format!("{}@{sfx}", d.id);
            d
        },
        words::discovery_words,
    );
    let links = m.keyed(
        "links",
        [&base.links, &ours.links, &theirs.links],
        |l| format!("{}->{}:{}", l.from, l.to, l.relationship),
        |l, _| l.clone(),
        |b, o, t| words::link_words(b, o, t, &states),
    );
    let hypotheses = m.keyed(
        "hypotheses",
        [&base.hypotheses, &ours.hypotheses, &theirs.hypotheses],
        |h| h.id.clone(),
        |h, sfx| {
            let mut h = h.clone();
            h.id = format!("{}@{sfx}", h.id);
            h
        },
        words::hypothesis_words,
    );
    let tasks = m.keyed(
        "tasks",
        [&base.tasks, &ours.tasks, &theirs.tasks],
        |t| t.id.clone(),
        |t, sfx| {
            let mut t = t.clone();
            t.id = format!("{}@{sfx}", t.id);
            t
        },
        words::task_words,
    );
    let context = m.map("context", &base.context, &ours.context, &theirs.context);
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
    let mut conflicts = m.conflicts;
    for c in &mut conflicts {
        c.description = words::conflict_sentence(&c.words(), labels.ours, labels.theirs);
    }
    let keys: BTreeSet<&str> = conflicts.iter().map(|c| c.key.as_str()).collect();
    let unknown: Vec<String> = resolver
        .by_key
        .keys()
        .filter(|k| !keys.contains(k.as_str()))
        .cloned()
        .collect();
    let cannot_keep_both: Vec<String> = conflicts
        .iter()
        .filter(|c| !c.can_keep_both && resolver.by_key.get(&c.key) == Some(&Resolution::Both))
        .map(|c| c.key.clone())
        .collect();
    if !unknown.is_empty() || !cannot_keep_both.is_empty() {
        return Err(ResolutionError {
            unknown,
            cannot_keep_both,
        });
    }
    Ok(MergeOutcome { state, conflicts })
}

struct Merger<'a> {
    resolver: &'a Resolver,
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
        [b, o, t]: [Option<&T>; 3],
        can_keep_both: bool,
        words: impl FnOnce() -> ConflictWords,
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
        let mut c = Conflict::new(
            field,
            [b.map(to_value), o.map(to_value), t.map(to_value)],
            can_keep_both,
            words(),
        );
        c.resolution = self.resolver.pick(&c);
        let resolution = c.resolution;
        self.conflicts.push(c);
        match (resolution, o, t) {
            (Some(Resolution::Theirs), _, _) => take(t),
            (Some(Resolution::Both), Some(o), Some(t)) => Pick::Both(o.clone(), t.clone()),
            (Some(Resolution::Both), o, t) => take(o.or(t)),
            _ => take(o),
        }
    }

    fn keyed<T: Clone + PartialEq + Serialize>(
        &mut self,
        field: &str,
        [base, ours, theirs]: [&[T]; 3],
        key: impl Fn(&T) -> String,
        rekey: impl Fn(&T, &str) -> T,
        words: impl Fn(Option<&T>, Option<&T>, Option<&T>) -> ConflictWords,
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
            match self.decide(format!("{field}.{k}"), [b, o, t], true, || words(b, o, t)) {
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
    ) -> BTreeMap<String, Value> {
        let keys: BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
        let mut out = BTreeMap::new();
        for k in keys {
            let sides = [base.get(k), ours.get(k), theirs.get(k)];
            match self.decide(format!("{field}.{k}"), sides, true, || {
                words::pin_words(k, sides[0], sides[1], sides[2])
            }) {
                Pick::Keep(v) => {
                    out.insert(k.clone(), v);
                }
                Pick::Drop => {}
                Pick::Both(o, t) => {
                    out.insert(k.clone(), o);
                    out.insert(format!("{k}@{}", self.label), t);
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
                && let Some(merged) = mergers.merge_tool(k, b, o, t, self.resolver)
            {
                out.insert(k.clone(), merged.state);
                self.conflicts.extend(merged.conflicts);
                continue;
            }
            // Without a merger a tool's state is one value: one side or the other, never both.
            match self.decide(format!("tools.{k}"), [b, o, t], false, || {
                words::tool_words(k, b, o, t)
            }) {
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
    use crate::{HypothesisStatus, StateEvent};
    use proptest::prelude::*;
    use serde_json::json;

    const L: Labels<'static> = Labels {
        ours: "main",
        theirs: "alt",
    };

    fn by(strategy: MergeStrategy) -> Resolver {
        Resolver::new(strategy, BTreeMap::new())
    }

    /// The old contract: `fail` refuses any open conflict.
    fn merge_or_conflicts(
        base: &ResearchState,
        ours: &ResearchState,
        theirs: &ResearchState,
        strategy: MergeStrategy,
        tools: &dyn ToolMerger,
    ) -> Result<MergeOutcome, Vec<Conflict>> {
        let out = merge(base, ours, theirs, &by(strategy), L, tools).unwrap();
        if out.is_settled() {
            Ok(out)
        } else {
            Err(out.conflicts)
        }
    }

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
        let out = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Fail, &()).unwrap();
        assert_eq!(out.state.context["a"], json!(2));
        assert_eq!(out.state.context["x"], json!(1));
        assert_eq!(out.state.discoveries.len(), 1);
        assert_eq!(out.state.materials[0].formula, "NaFePO4");
        assert!(out.conflicts.is_empty());
    }

    #[test]
    fn same_key_different_values_conflict_unless_a_strategy_settles_it() {
        let base = state(&[pin("b1", "a", 1)]);
        let ours = state(&[pin("b1", "a", 2)]);
        let theirs = state(&[pin("b1", "a", 3)]);
        let conflicts =
            merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Fail, &()).unwrap_err();
        assert_eq!(conflicts.len(), 1);
        let c = &conflicts[0];
        assert_eq!(c.field, "context.a");
        assert_eq!(
            (c.base.clone(), c.ours.clone(), c.theirs.clone()),
            (Some(json!(1)), Some(json!(2)), Some(json!(3)))
        );
        let o = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Ours, &()).unwrap();
        assert_eq!(o.state.context["a"], json!(2));
        assert_eq!(o.conflicts.len(), 1);
        let t = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Theirs, &()).unwrap();
        assert_eq!(t.state.context["a"], json!(3));
        let u = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Union, &()).unwrap();
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
        let c = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Fail, &()).unwrap_err();
        assert_eq!(c[0].field, "hypotheses.h");
        let u = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Union, &()).unwrap();
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
            _: &Resolver,
        ) -> Option<ToolMerge> {
            (tool == "opt").then(|| {
                let mut v: Vec<Value> = o.as_array().cloned().unwrap_or_default();
                for x in t.as_array().into_iter().flatten() {
                    if !v.contains(x) {
                        v.push(x.clone());
                    }
                }
                ToolMerge {
                    state: Value::Array(v),
                    conflicts: Vec::new(),
                }
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
        let c = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Fail, &UnionNumbers)
            .unwrap_err();
        assert_eq!(
            c.len(),
            1,
            "only the tool without a merger conflicts: {c:?}"
        );
        assert_eq!(c[0].field, "tools.nb");
        let o =
            merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Ours, &UnionNumbers).unwrap();
        assert_eq!(o.state.tools["opt"], json!([1, 2, 3]));
    }

    fn hyp(node: &'static str, id: &str, statement: &str, status: &str) -> (&'static str, Value) {
        (
            node,
            json!({"kind": "hypothesis", "id": id, "statement": statement, "status": status}),
        )
    }

    #[test]
    fn each_conflict_takes_its_own_resolution_and_the_rest_the_strategy() {
        let base = state(&[
            hyp("n1", "h", "Na on the Li site keeps the olivine", "open"),
            pin("n2", "t", 1),
            pin("n3", "p", 1),
        ]);
        let ours = state(&[
            hyp(
                "n1",
                "h",
                "Na on the Li site keeps the olivine",
                "supported",
            ),
            pin("n2", "t", 2),
            pin("n3", "p", 2),
        ]);
        let theirs = state(&[
            hyp("n1", "h", "Na on the Li site keeps the olivine", "refuted"),
            pin("n2", "t", 3),
            pin("n3", "p", 3),
        ]);
        let picks: BTreeMap<String, Resolution> = [
            ("hypotheses.h".to_string(), Resolution::Theirs),
            ("context.t".to_string(), Resolution::Both),
        ]
        .into();
        let out = merge(
            &base,
            &ours,
            &theirs,
            &Resolver::new(MergeStrategy::Fail, picks.clone()),
            L,
            &(),
        )
        .unwrap();
        let open: Vec<&str> = out.open().map(|c| c.key.as_str()).collect();
        assert_eq!(open, ["context.p"], "the unnamed conflict stays open");
        assert_eq!(out.state.hypotheses[0].status, HypothesisStatus::Refuted);
        assert_eq!(out.state.context["t"], json!(2));
        assert_eq!(out.state.context["t@alt"], json!(3));
        let out = merge(
            &base,
            &ours,
            &theirs,
            &Resolver::new(MergeStrategy::Ours, picks),
            L,
            &(),
        )
        .unwrap();
        assert!(out.is_settled());
        assert_eq!(out.state.context["p"], json!(2));
        assert_eq!(out.state.hypotheses.len(), 1);
        let h = out
            .conflicts
            .iter()
            .find(|c| c.key == "hypotheses.h")
            .unwrap();
        assert_eq!(h.resolution, Some(Resolution::Theirs));
        assert_eq!(
            h.description,
            "Hypothesis 'Na on the Li site keeps the olivine': supported on main, refuted on alt (was open)"
        );
        assert_eq!(
            out.conflicts[1].description,
            "Pin 'p': 2 on main, 3 on alt (was 1)"
        );
    }

    #[test]
    fn a_resolution_for_no_conflict_or_both_for_a_whole_tool_state_is_refused() {
        let ts = |node: &'static str, v: i64| {
            (
                node,
                json!({"kind": "tool_state", "tool": "nb", "state": {"v": v}}),
            )
        };
        let base = state(&[ts("n", 1)]);
        let ours = state(&[ts("n", 2)]);
        let theirs = state(&[ts("n", 3)]);
        let picks = |k: &str, r| Resolver::new(MergeStrategy::Fail, [(k.to_string(), r)].into());
        let e = merge(
            &base,
            &ours,
            &theirs,
            &picks("tools.nb", Resolution::Both),
            L,
            &(),
        )
        .unwrap_err();
        assert_eq!(e.cannot_keep_both, ["tools.nb"]);
        let e = merge(
            &base,
            &ours,
            &theirs,
            &picks("context.zz", Resolution::Ours),
            L,
            &(),
        )
        .unwrap_err();
        assert_eq!(e.unknown, ["context.zz"]);
        assert!(e.message().contains("`context.zz`"));
        let u = merge(&base, &ours, &theirs, &by(MergeStrategy::Union), L, &()).unwrap();
        assert_eq!(u.state.tools["nb"], json!({"v": 2}), "union keeps ours");
        let t = merge(
            &base,
            &ours,
            &theirs,
            &picks("tools.nb", Resolution::Theirs),
            L,
            &(),
        )
        .unwrap();
        assert_eq!(t.state.tools["nb"], json!({"v": 3}));
    }

    #[test]
    fn conflicts_read_without_ids_or_json() {
        let d = |node: &'static str, desc: &str, conf: f64| {
            (
                node,
                json!({"kind": "discovery", "id": "d1", "type": "t", "description": desc,
                       "confidence": conf}),
            )
        };
        let task = |node: &'static str, st: &str| {
            (
                node,
                json!({"kind": "task", "id": "t1", "description": "Measure the capacity", "status": st}),
            )
        };
        let base = state(&[d("n1", "Olivine is stable", 0.5), task("n2", "pending")]);
        let ours = state(&[d("n1", "Olivine is stable", 0.8), task("n2", "done")]);
        let theirs = state(&[d("n1", "Olivine is stable", 0.3), task("n2", "pending")]);
        let out = merge(&base, &ours, &theirs, &by(MergeStrategy::Fail), L, &()).unwrap();
        let text: Vec<&str> = out
            .conflicts
            .iter()
            .map(|c| c.description.as_str())
            .collect();
        assert_eq!(
            text,
            [
                "Discovery 'Olivine is stable': confidence 0.8 on main, confidence 0.3 on alt (was confidence 0.5)",
            ]
        );
        let theirs = state(&[d("n1", "Olivine is stable", 0.5), task("n2", "cancelled")]);
        let out = merge(&base, &ours, &theirs, &by(MergeStrategy::Fail), L, &()).unwrap();
        assert_eq!(
            out.conflicts[0].description,
            "Task 'Measure the capacity': done on main, cancelled on alt (was pending)"
        );
        for c in &out.conflicts {
            assert!(!c.description.contains('{') && !c.description.contains("t1"));
        }
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
            let same = merge_or_conflicts(&base, &ours, &base, MergeStrategy::Fail, &()).unwrap();
            prop_assert_eq!(&same.state.context, &ours.context);
            prop_assert_eq!(&same.state.hypotheses, &ours.hypotheses);
            prop_assert_eq!(&same.state.tools, &ours.tools);
            let twice = merge_or_conflicts(&base, &ours, &ours, MergeStrategy::Fail, &()).unwrap();
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
            let resolved = merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Ours, &()).unwrap().conflicts;
            prop_assert!(merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Theirs, &()).is_ok());
            prop_assert!(merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Union, &()).is_ok());
            match merge_or_conflicts(&base, &ours, &theirs, MergeStrategy::Fail, &()) {
                Ok(_) => prop_assert!(resolved.is_empty()),
                Err(c) => {
                    let keys = |cs: &[Conflict]| cs.iter().map(|c| c.key.clone()).collect::<Vec<_>>();
                    prop_assert_eq!(keys(&c), keys(&resolved));
                    prop_assert!(c.iter().all(|c| c.resolution.is_none()));
                    prop_assert!(resolved.iter().all(|c| c.resolution == Some(Resolution::Ours)));
                }
            }
        }
    }
}
