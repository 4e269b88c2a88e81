//! The research state of a branch: state events, their fold, three-way merge and diff.
//!
//! The state at a node is the fold of the state events on its path. Folding is pure and
//! deterministic, so the materialised state of a branch head always equals a replay.

mod merge;
pub mod words;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use merge::{
    Conflict, Labels, MergeOutcome, MergeStrategy, Resolution, ResolutionError, Resolver,
    StateDiff, ToolMerge, ToolMerger, diff, merge,
};

/// Relationships a discovery link may state.
pub const LINK_RELATIONSHIPS: [&str; 6] = [
    "supports",
    "contradicts",
    "refines",
    "extends",
    "derives_from",
    "related_to",
];

/// One change to the research state, recorded as a node on the tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StateEvent {
    Material {
        formula: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
    Discovery {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(rename = "type")]
        discovery_type: String,
        description: String,
        #[serde(default)]
        materials: Vec<String>,
        #[serde(default)]
        evidence: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
        #[serde(default)]
        source: DiscoverySource,
    },
    DiscoveryLink {
        from: String,
        to: String,
        relationship: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
    Hypothesis {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        statement: String,
        #[serde(default)]
        status: HypothesisStatus,
    },
    Task {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        description: String,
        #[serde(default)]
        status: TaskStatus,
    },
    ContextPin {
        key: String,
        value: Value,
    },
    ContextClear {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Focus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        material: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
    },
    ToolState {
        tool: String,
        state: Value,
    },
}

/// Whether a discovery was recorded by a person or detected automatically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DiscoverySource {
    #[default]
    Manual,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum HypothesisStatus {
    #[default]
    Open,
    Supported,
    Refuted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    #[default]
    Pending,
    InProgress,
    Done,
    Cancelled,
}

impl StateEvent {
    /// Returns the node kind that records this event.
    pub fn node_kind(&self) -> crate::NodeKind {
        use crate::NodeKind as K;
        match self {
            StateEvent::Material { .. } => K::Material,
            StateEvent::Discovery { .. } => K::Discovery,
            StateEvent::DiscoveryLink { .. } => K::DiscoveryLink,
            StateEvent::Hypothesis { .. } => K::Hypothesis,
            StateEvent::Task { .. } => K::Task,
            StateEvent::ContextPin { .. } => K::ContextPin,
            StateEvent::ContextClear { .. } => K::ContextClear,
            StateEvent::Focus { .. } => K::Focus,
            StateEvent::ToolState { .. } => K::ToolState,
        }
    }

    /// Fills in ids the caller left out, using the recording node's id, so that the stored
    /// event is self-contained and replays identically.
    pub fn with_ids(mut self, node_id: &str) -> Self {
        match &mut self {
            StateEvent::Discovery { id, .. }
            | StateEvent::Hypothesis { id, .. }
            | StateEvent::Task { id, .. }
                if id.is_none() =>
            {
                *id = Some(node_id.to_string());
            }
            _ => {}
        }
        self
    }

    /// Checks the event on its own and against the state it would apply to.
    pub fn validate(&self, state: &ResearchState) -> Result<(), String> {
        fn non_empty(field: &str, v: &str) -> Result<(), String> {
            if v.trim().is_empty() {
                Err(format!("{field} must not be empty"))
            } else if v.len() > 100_000 {
                Err(format!("{field} is longer than 100000 bytes"))
            } else {
                Ok(())
            }
        }
        match self {
            StateEvent::Material { formula, .. } => non_empty("formula", formula),
            StateEvent::Discovery {
                discovery_type,
                description,
                confidence,
                ..
            } => {
                non_empty("type", discovery_type)?;
                non_empty("description", description)?;
                match confidence {
                    Some(c) if !(0.0..=1.0).contains(c) => {
                        Err("confidence must be between 0 and 1".into())
                    }
                    _ => Ok(()),
                }
            }
            StateEvent::DiscoveryLink {
                from,
                to,
                relationship,
                ..
            } => {
                if !LINK_RELATIONSHIPS.contains(&relationship.as_str()) {
                    return Err(format!(
                        "relationship must be one of {}",
                        LINK_RELATIONSHIPS.join(", ")
                    ));
                }
                if from == to {
                    return Err("a discovery cannot link to itself".into());
                }
                for end in [from, to] {
                    if !state.discoveries.iter().any(|d| &d.id == end) {
                        return Err(format!("no discovery `{end}` on this branch"));
                    }
                }
                Ok(())
            }
            StateEvent::Hypothesis { statement, .. } => non_empty("statement", statement),
            StateEvent::Task { description, .. } => non_empty("description", description),
            StateEvent::ContextPin { key, .. } => non_empty("key", key),
            StateEvent::ContextClear { .. } => Ok(()),
            StateEvent::Focus { material, topic } => {
                if material.is_none() && topic.is_none() {
                    Err("focus needs a material or a topic".into())
                } else {
                    Ok(())
                }
            }
            StateEvent::ToolState { tool, .. } => non_empty("tool", tool),
        }
    }
}

/// A material in play on a branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Material {
    pub formula: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    pub first_node: String,
    pub last_node: String,
    pub mentions: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    pub id: String,
    #[serde(rename = "type")]
    pub discovery_type: String,
    pub description: String,
    pub materials: Vec<String>,
    pub evidence: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub source: DiscoverySource,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub from: String,
    pub to: String,
    pub relationship: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub id: String,
    pub statement: String,
    pub status: HypothesisStatus,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub description: String,
    pub status: TaskStatus,
    pub node: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Focus {
    #[serde(default)]
    pub material: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

/// The folded research state of a branch at a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ResearchState {
    /// Materials in play, least recently referenced first.
    pub materials: Vec<Material>,
    pub discoveries: Vec<Discovery>,
    pub links: Vec<Link>,
    pub hypotheses: Vec<Hypothesis>,
    pub tasks: Vec<Task>,
    pub context: BTreeMap<String, Value>,
    pub focus: Focus,
    pub tools: BTreeMap<String, Value>,
}

impl ResearchState {
    /// Folds one event, recorded at `node`, into the state.
    pub fn apply(&mut self, node: &str, event: &StateEvent) {
        match event.clone().with_ids(node) {
            StateEvent::Material { formula, data } => self.touch_material(node, formula, data),
            StateEvent::Discovery {
                id,
                discovery_type,
                description,
                materials,
                evidence,
                confidence,
                source,
            } => {
                let d = Discovery {
                    id: id.unwrap_or_else(|| node.to_string()),
                    discovery_type,
                    description,
                    materials,
                    evidence,
                    confidence,
                    source,
                    node: node.to_string(),
                };
                upsert(&mut self.discoveries, d, |x| &x.id);
            }
            StateEvent::DiscoveryLink {
                from,
                to,
                relationship,
                notes,
            } => {
                let l = Link {
                    from,
                    to,
                    relationship,
                    notes,
                    node: node.to_string(),
                };
                match self
                    .links
                    .iter_mut()
                    .find(|x| x.from == l.from && x.to == l.to && x.relationship == l.relationship)
                {
                    Some(slot) => *slot = l,
                    None => self.links.push(l),
                }
            }
            StateEvent::Hypothesis {
                id,
                statement,
                status,
            } => {
                let h = Hypothesis {
                    id: id.unwrap_or_else(|| node.to_string()),
                    statement,
                    status,
                    node: node.to_string(),
                };
                upsert(&mut self.hypotheses, h, |x| &x.id);
            }
            StateEvent::Task {
                id,
                description,
                status,
            } => {
                let t = Task {
                    id: id.unwrap_or_else(|| node.to_string()),
                    description,
                    status,
                    node: node.to_string(),
                };
                upsert(&mut self.tasks, t, |x| &x.id);
            }
            StateEvent::ContextPin { key, value } => {
                self.context.insert(key, value);
            }
            StateEvent::ContextClear { key: Some(key) } => {
                self.context.remove(&key);
            }
            StateEvent::ContextClear { key: None } => self.context.clear(),
            StateEvent::Focus { material, topic } => {
                if let Some(m) = &material {
                    self.touch_material(node, m.clone(), None);
                }
                self.focus = Focus { material, topic };
            }
            StateEvent::ToolState { tool, state } => {
                self.tools.insert(tool, state);
            }
        }
    }

    fn touch_material(&mut self, node: &str, formula: String, data: Option<Value>) {
        let mut m = match self.materials.iter().position(|m| m.formula == formula) {
            Some(i) => self.materials.remove(i),
            None => Material {
                formula: formula.clone(),
                data: None,
                first_node: node.to_string(),
                last_node: node.to_string(),
                mentions: 0,
            },
        };
        m.mentions = m.mentions.saturating_add(1);
        m.last_node = node.to_string();
        if data.is_some() {
            m.data = data;
        }
        self.materials.push(m);
        self.focus.material = Some(formula);
    }

    /// Returns the `n` most recently referenced materials, most recent first.
    pub fn recent_materials(&self, n: usize) -> impl Iterator<Item = &Material> {
        self.materials.iter().rev().take(n)
    }
}

fn upsert<T>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> &String) {
    match items.iter_mut().find(|x| key(x) == key(&item)) {
        Some(slot) => *slot = item,
        None => items.push(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> StateEvent {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn events_parse_from_the_documented_json() {
        let e = ev(json!({"kind": "discovery", "type": "structure_property",
            "description": "olivine helps", "materials": ["LiFePO4"], "confidence": 0.8}));
        assert!(matches!(e, StateEvent::Discovery { confidence: Some(c), .. } if c == 0.8));
        let e = ev(json!({"kind": "tool_state", "tool": "notebook", "state": {"n": 1}}));
        assert_eq!(e.node_kind(), crate::NodeKind::ToolState);
        assert!(serde_json::from_value::<StateEvent>(json!({"kind": "nope"})).is_err());
    }

    #[test]
    fn fold_tracks_materials_by_recency_and_focus() {
        let mut s = ResearchState::default();
        s.apply("n1", &ev(json!({"kind": "material", "formula": "LiFePO4"})));
        s.apply("n2", &ev(json!({"kind": "material", "formula": "LiMnPO4"})));
        s.apply(
            "n3",
            &ev(json!({"kind": "material", "formula": "LiFePO4", "data": {"m": 1}})),
        );
        let recent: Vec<_> = s.recent_materials(5).map(|m| m.formula.as_str()).collect();
        assert_eq!(recent, ["LiFePO4", "LiMnPO4"]);
        assert_eq!(s.materials[1].mentions, 2);
        assert_eq!(s.materials[1].first_node, "n1");
        assert_eq!(s.materials[1].last_node, "n3");
        assert_eq!(s.focus.material.as_deref(), Some("LiFePO4"));
    }

    #[test]
    fn ids_default_to_the_node_and_updates_replace() {
        let mut s = ResearchState::default();
        s.apply("h1", &ev(json!({"kind": "hypothesis", "statement": "s"})));
        s.apply(
            "h2",
            &ev(json!({"kind": "hypothesis", "id": "h1", "statement": "s",
            "status": "supported"})),
        );
        assert_eq!(s.hypotheses.len(), 1);
        assert_eq!(s.hypotheses[0].status, HypothesisStatus::Supported);
        s.apply(
            "c",
            &ev(json!({"kind": "context_pin", "key": "a", "value": 1})),
        );
        s.apply(
            "d",
            &ev(json!({"kind": "context_pin", "key": "b", "value": 2})),
        );
        s.apply("e", &ev(json!({"kind": "context_clear", "key": "a"})));
        assert_eq!(s.context.keys().collect::<Vec<_>>(), ["b"]);
        s.apply("f", &ev(json!({"kind": "context_clear"})));
        assert!(s.context.is_empty());
    }

    #[test]
    fn validation_names_the_problem() {
        let s = ResearchState::default();
        let bad = ev(json!({"kind": "discovery", "type": "x", "description": "d",
            "confidence": 2.0}));
        assert!(bad.validate(&s).unwrap_err().contains("confidence"));
        let link = ev(json!({"kind": "discovery_link", "from": "a", "to": "b",
            "relationship": "supports"}));
        assert!(link.validate(&s).unwrap_err().contains("no discovery `a`"));
        let link = ev(json!({"kind": "discovery_link", "from": "a", "to": "b",
            "relationship": "likes"}));
        assert!(link.validate(&s).unwrap_err().contains("relationship"));
        assert!(ev(json!({"kind": "focus"})).validate(&s).is_err());
        assert!(
            ev(json!({"kind": "material", "formula": " "}))
                .validate(&s)
                .is_err()
        );
    }
}
