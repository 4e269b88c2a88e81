//! The session summary: key findings, materials of interest, open hypotheses and next steps,
//! read straight from the research state (no model call: exact, instant, and the same on
//! every machine).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use kiln_types::state::{Discovery, Focus, Task};
use kiln_types::{HypothesisStatus, ResearchState, TaskStatus};
use serde::Serialize;
use serde_json::Value;

/// At most this many entries per list.
const MAX_ITEMS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    /// Discoveries, most confident first (then newest).
    pub key_findings: Vec<Finding>,
    /// Materials ranked by focus, the findings that cite them, and mentions.
    pub materials_of_interest: Vec<MaterialOfInterest>,
    pub open_hypotheses: Vec<String>,
    /// Pending tasks, hypotheses to test, and the optimizer's suggested experiments.
    pub next_steps: Vec<String>,
    pub focus: Focus,
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: String,
    #[serde(rename = "type")]
    pub discovery_type: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    pub materials: Vec<String>,
    /// How many nodes the finding cites as evidence.
    pub evidence: usize,
    /// Links to other findings, as `relationship → id`.
    pub links: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaterialOfInterest {
    pub formula: String,
    pub mentions: u32,
    pub in_focus: bool,
    /// How many findings cite it.
    pub findings: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub discoveries: usize,
    pub links: usize,
    pub materials: usize,
    pub open_hypotheses: usize,
    pub open_tasks: usize,
}

/// Summarises a research state.
pub fn summarise(state: &ResearchState) -> SessionSummary {
    let mut findings: Vec<(usize, &Discovery)> = state.discoveries.iter().enumerate().collect();
    findings.sort_by(|(ia, a), (ib, b)| {
        let (ca, cb) = (a.confidence.unwrap_or(0.0), b.confidence.unwrap_or(0.0));
        cb.total_cmp(&ca).then(ib.cmp(ia))
    });
    let key_findings = findings
        .iter()
        .take(MAX_ITEMS)
        .map(|(_, d)| Finding {
            id: d.id.clone(),
            discovery_type: d.discovery_type.clone(),
            description: d.description.clone(),
            confidence: d.confidence,
            materials: d.materials.clone(),
            evidence: d.evidence.len(),
            links: state
                .links
                .iter()
                .filter(|l| l.from == d.id)
                .map(|l| format!("{} → {}", l.relationship, l.to))
                .collect(),
        })
        .collect();

    let mut cited: BTreeMap<&str, usize> = BTreeMap::new();
    for d in &state.discoveries {
        for m in &d.materials {
            *cited.entry(m.as_str()).or_default() += 1;
        }
    }
    let focus_material = state.focus.material.as_deref();
    // The state lists materials least recently referenced first: a higher index is newer.
    let mut materials: Vec<(usize, MaterialOfInterest)> = state
        .materials
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mi = MaterialOfInterest {
                formula: m.formula.clone(),
                mentions: m.mentions,
                in_focus: focus_material == Some(m.formula.as_str()),
                findings: cited.get(m.formula.as_str()).copied().unwrap_or(0),
            };
            (i, mi)
        })
        .collect();
    materials.sort_by(|(ia, a), (ib, b)| {
        b.in_focus
            .cmp(&a.in_focus)
            .then(b.findings.cmp(&a.findings))
            .then(b.mentions.cmp(&a.mentions))
            .then(ib.cmp(ia))
    });

    let open_hypotheses: Vec<String> = state
        .hypotheses
        .iter()
        .filter(|h| h.status == HypothesisStatus::Open)
        .map(|h| h.statement.clone())
        .collect();
    let open_tasks: Vec<&Task> = state
        .tasks
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Pending | TaskStatus::InProgress))
        .collect();
    let mut next_steps: Vec<String> = open_tasks
        .iter()
        .map(|t| match t.status {
            TaskStatus::InProgress => format!("Finish: {}", t.description),
            _ => format!("Do: {}", t.description),
        })
        .collect();
    next_steps.extend(open_hypotheses.iter().map(|h| format!("Test: {h}")));
    next_steps.extend(optimizer_steps(state.tools.get("bayesian_optimizer")));
    next_steps.truncate(MAX_ITEMS);

    SessionSummary {
        key_findings,
        materials_of_interest: materials
            .into_iter()
            .take(MAX_ITEMS)
            .map(|(_, m)| m)
            .collect(),
        counts: Counts {
            discoveries: state.discoveries.len(),
            links: state.links.len(),
            materials: state.materials.len(),
            open_hypotheses: open_hypotheses.len(),
            open_tasks: open_tasks.len(),
        },
        open_hypotheses: open_hypotheses.into_iter().take(MAX_ITEMS).collect(),
        next_steps,
        focus: state.focus.clone(),
    }
}

/// The optimizer's part of the next steps: run its last suggestions, or ask for some.
fn optimizer_steps(state: Option<&Value>) -> Vec<String> {
    let Some(st) = state else {
        return Vec::new();
    };
    let points = st
        .pointer("/last_suggestions/points")
        .and_then(Value::as_array);
    match points {
        Some(points) if !points.is_empty() => points
            .iter()
            .filter_map(|p| p.get("inputs").and_then(Value::as_object))
            .map(|inputs| {
                let xs: Vec<String> = inputs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("Run the suggested experiment: {}", xs.join(", "))
            })
            .collect(),
        _ => {
            let n = st
                .get("experiments")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            if n > 0 {
                vec![format!(
                    "Ask the optimizer for the next experiment ({n} recorded so far)"
                )]
            } else {
                Vec::new()
            }
        }
    }
}

impl SessionSummary {
    /// The summary as Markdown (the CLI prints this).
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let focus = match (&self.focus.material, &self.focus.topic) {
            (Some(m), Some(t)) => format!("{m} ({t})"),
            (Some(m), None) => m.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "none".into(),
        };
        let _ = writeln!(out, "Focus: {focus}\n");
        let _ = writeln!(out, "## Key findings ({})", self.counts.discoveries);
        if self.key_findings.is_empty() {
            let _ = writeln!(out, "- none recorded yet");
        }
        for f in &self.key_findings {
            let conf = f
                .confidence
                .map(|c| format!(", confidence {c:.2}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- [{}] {} ({} evidence{conf})",
                f.discovery_type, f.description, f.evidence
            );
        }
        let _ = writeln!(
            out,
            "\n## Materials of interest ({})",
            self.counts.materials
        );
        if self.materials_of_interest.is_empty() {
            let _ = writeln!(out, "- none yet");
        }
        for m in &self.materials_of_interest {
            let tag = if m.in_focus { " (focus)" } else { "" };
            let _ = writeln!(
                out,
                "- {}{tag}: {} mentions, cited by {} findings",
                m.formula, m.mentions, m.findings
            );
        }
        let _ = writeln!(out, "\n## Next steps");
        if self.next_steps.is_empty() {
            let _ = writeln!(out, "- nothing pending");
        }
        for s in &self.next_steps {
            let _ = writeln!(out, "- {s}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_types::StateEvent;
    use serde_json::json;

    fn state(events: &[Value]) -> ResearchState {
        let mut st = ResearchState::default();
        for (i, e) in events.iter().enumerate() {
            let ev: StateEvent = serde_json::from_value(e.clone()).unwrap();
            st.apply(&format!("n{i}"), &ev);
        }
        st
    }

    #[test]
    fn findings_rank_by_confidence_and_materials_by_focus_then_citations() {
        let st = state(&[
            json!({"kind": "material", "formula": "LiCoO2"}),
            json!({"kind": "material", "formula": "LiFePO4"}),
            json!({"kind": "material", "formula": "LiCoO2"}),
            json!({"kind": "discovery", "id": "d1", "type": "stability_insight",
                   "description": "weak", "materials": ["LiCoO2"], "confidence": 0.4}),
            json!({"kind": "discovery", "id": "d2", "type": "structure_property",
                   "description": "olivine helps", "materials": ["LiFePO4"],
                   "evidence": ["n1"], "confidence": 0.9}),
            json!({"kind": "discovery_link", "from": "d2", "to": "d1",
                   "relationship": "contradicts"}),
            json!({"kind": "material", "formula": "NaCl"}),
            json!({"kind": "focus", "material": "LiFePO4"}),
        ]);
        let s = summarise(&st);
        let ids: Vec<&str> = s.key_findings.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(ids, ["d2", "d1"]);
        assert_eq!(s.key_findings[0].links, ["contradicts → d1"]);
        assert_eq!(s.key_findings[0].evidence, 1);
        let formulas: Vec<&str> = s
            .materials_of_interest
            .iter()
            .map(|m| m.formula.as_str())
            .collect();
        // Focus first, then cited (LiCoO2, 1 finding), then the uncited NaCl.
        assert_eq!(formulas, ["LiFePO4", "LiCoO2", "NaCl"]);
        assert!(s.materials_of_interest[0].in_focus);
        assert_eq!(s.counts.discoveries, 2);
        assert_eq!(s.counts.links, 1);
        assert!(s.to_markdown().contains("LiFePO4 (focus)"));
    }

    #[test]
    fn next_steps_come_from_tasks_hypotheses_and_the_optimizer() {
        let mut st = state(&[
            json!({"kind": "task", "id": "t1", "description": "measure conductivity"}),
            json!({"kind": "task", "id": "t2", "description": "done already", "status": "done"}),
            json!({"kind": "hypothesis", "id": "h1", "statement": "Mn doping stabilises"}),
            json!({"kind": "hypothesis", "id": "h2", "statement": "refuted one",
                   "status": "refuted"}),
        ]);
        st.tools.insert(
            "bayesian_optimizer".into(),
            json!({"experiments": [{}], "last_suggestions": {"strategy": "EI", "params": {},
                   "points": [{"inputs": {"T": 450.0}}]}}),
        );
        let s = summarise(&st);
        assert_eq!(
            s.next_steps,
            [
                "Do: measure conductivity",
                "Test: Mn doping stabilises",
                "Run the suggested experiment: T=450.0",
            ]
        );
        assert_eq!(s.open_hypotheses, ["Mn doping stabilises"]);
        assert_eq!(s.counts.open_tasks, 1);
        st.tools.insert(
            "bayesian_optimizer".into(),
            json!({"experiments": [{}, {}], "last_suggestions": null}),
        );
        assert_eq!(
            summarise(&st).next_steps.last().map(String::as_str),
            Some("Ask the optimizer for the next experiment (2 recorded so far)")
        );
    }

    #[test]
    fn an_empty_session_has_an_empty_summary() {
        let s = summarise(&ResearchState::default());
        assert!(s.key_findings.is_empty() && s.next_steps.is_empty());
        assert!(s.to_markdown().contains("none recorded yet"));
    }
}
