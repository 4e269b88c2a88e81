//! Recall: findings from the caller's other sessions that the current request is about — the
//! "from your other sessions" part of the context window. The search index finds the sessions
//! (with its access rules, so only sessions the caller may read), then each session's research
//! state at its default branch gives the findings as they stand now (a hypothesis's current
//! status, the optimizer's best result). Recall never fails a turn: a search that cannot run
//! leaves the part out.

use std::collections::BTreeSet;

use kiln_bayesopt::OptimizerState;
use kiln_session::{Caller, SearchParams, SessionManager};
use kiln_types::ResearchState;

use crate::context::RecallItem;
use crate::relevance;

/// Sessions looked into per request.
const SESSIONS: usize = 3;
/// Findings taken per session, and in all.
const PER_SESSION: usize = 4;
const TOTAL: usize = 8;

/// What a request is about: the formulas it names (or, naming none, the focus material) and
/// its content words.
struct Subject {
    materials: Vec<String>,
    terms: BTreeSet<String>,
}

impl Subject {
    fn of(request: &str, focus: Option<&str>) -> Self {
        let mut materials = kiln_llm::find_formulas(request);
        if materials.is_empty()
            && let Some(f) = focus
        {
            materials.push(f.to_owned());
        }
        materials.truncate(4);
        let terms = relevance::terms(request)
            .into_iter()
            .filter(|t| t.len() >= 4 && t.chars().all(char::is_alphanumeric))
            .collect();
        Subject { materials, terms }
    }

    /// The index query: the materials as phrases, else the longest content words, OR-ed.
    fn query(&self) -> Option<String> {
        if !self.materials.is_empty() {
            let quoted: Vec<String> = self
                .materials
                .iter()
                .map(|m| format!("\"{}\"", m.replace('"', "")))
                .collect();
            return Some(quoted.join(" OR "));
        }
        let mut words: Vec<&String> = self.terms.iter().collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        words.truncate(6);
        (!words.is_empty()).then(|| {
            words
                .iter()
                .map(|w| w.as_str())
                .collect::<Vec<_>>()
                .join(" OR ")
        })
    }

    /// Whether a finding's text (and materials) is about the subject: it names one of the
    /// materials, or shares at least two content words with the request.
    fn about(&self, text: &str, materials: &[String]) -> bool {
        let lower = text.to_lowercase();
        let names = |m: &String| {
            materials.iter().any(|x| x.eq_ignore_ascii_case(m)) || lower.contains(&m.to_lowercase())
        };
        if self.materials.iter().any(names) {
            return true;
        }
        let have = relevance::terms(text);
        self.terms.iter().filter(|t| have.contains(*t)).count() >= 2
    }
}

/// The findings of the caller's other readable sessions about `request`, best sessions first.
pub(crate) async fn recall(
    manager: &SessionManager,
    caller: &Caller,
    session: &str,
    request: &str,
    focus: Option<&str>,
) -> Vec<RecallItem> {
    let subject = Subject::of(request, focus);
    let Some(q) = subject.query() else {
        return Vec::new();
    };
    let params = SearchParams {
        q,
        limit: Some(SESSIONS as u32 + 1),
        per_session: Some(1),
        ..SearchParams::default()
    };
    let page = match manager.search_sessions(caller, params).await {
        Ok(page) => page,
        Err(e) => {
            tracing::debug!(error = %e, "recall: the search did not run");
            return Vec::new();
        }
    };
    let mut items = Vec::new();
    for hits in page
        .items
        .iter()
        .filter(|h| h.session_id != session)
        .take(SESSIONS)
    {
        let Ok(s) = manager.session(caller, &hits.session_id).await else {
            continue;
        };
        let Ok(state) = manager
            .state(caller, &hits.session_id, &s.default_branch, None)
            .await
        else {
            continue;
        };
        let found = findings(&subject, &state);
        items.extend(
            found
                .into_iter()
                .take(PER_SESSION)
                .map(|(kind, text, node)| RecallItem {
                    session_id: s.id.clone(),
                    session_name: s.name.clone(),
                    node_id: node,
                    kind: kind.to_owned(),
                    text,
                }),
        );
        if items.len() >= TOTAL {
            break;
        }
    }
    items.truncate(TOTAL);
    items
}

/// A state's findings about the subject, newest first: discoveries, hypotheses with their
/// status, then the optimizer's best result when its objective or variables are named.
fn findings(
    subject: &Subject,
    state: &ResearchState,
) -> Vec<(&'static str, String, Option<String>)> {
    let mut out = Vec::new();
    for d in state.discoveries.iter().rev() {
        if subject.about(&d.description, &d.materials) {
            let materials = if d.materials.is_empty() {
                String::new()
            } else {
                format!(" [{}]", d.materials.join(", "))
            };
            out.push((
                "discovery",
                format!("{}: {}{materials}", d.discovery_type, d.description),
                Some(d.node.clone()),
            ));
        }
    }
    for h in state.hypotheses.iter().rev() {
        if subject.about(&h.statement, &[]) {
            let status = serde_json::to_value(h.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push((
                "hypothesis",
                format!("({status}) {}", h.statement),
                Some(h.node.clone()),
            ));
        }
    }
    if let Some(opt) = state
        .tools
        .get("bayesian_optimizer")
        .and_then(|v| serde_json::from_value::<OptimizerState>(v.clone()).ok())
    {
        let names: Vec<String> = std::iter::once(opt.objective.name.clone())
            .chain(opt.space.variables().iter().map(|v| v.name.clone()))
            .collect();
        let about = subject.about(&names.join(" "), &[])
            || names
                .iter()
                .any(|n| subject.terms.contains(&n.to_lowercase()));
        if about && let Some(best) = opt.best() {
            let inputs: Vec<String> = best
                .inputs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            out.push((
                "optimizer",
                format!(
                    "best {} so far {} at {} ({} experiments)",
                    opt.objective.name,
                    best.output,
                    inputs.join(", "),
                    opt.experiments.len()
                ),
                None,
            ));
        }
    }
    out
}
