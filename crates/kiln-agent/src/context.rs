//! The context window: what the model sees on each step, assembled within a token budget.
//!
//! Order and priority follow the design brief: system prompt → pinned context → focus and
//! recent materials → relevant past findings → the summary of older turns → the last
//! `max_history` messages. The system prompt, pinned items and the current turn (the user's
//! message and this turn's tool calls and results) are never dropped; the other parts get
//! what the budget leaves, history newest first. [`assemble`] is pure; the agent feeds it
//! what it read from the store.

use kiln_db::Node;
use kiln_llm::{ChatMessage, PlannerContext, ToolCall};
use kiln_types::{ContextConfig, NodeKind, ResearchState};
use serde::Serialize;
use serde_json::Value;

use crate::relevance;
use crate::tokens;

/// What [`assemble`] works from.
#[derive(Debug, Clone, Copy)]
pub struct ContextInputs<'a> {
    /// The system prompt (from templates/prompts).
    pub system_prompt: &'a str,
    /// The session's context settings.
    pub config: &'a ContextConfig,
    /// The research state at the branch head.
    pub state: &'a ResearchState,
    /// The newest summary node on the path, if any.
    pub summary: Option<&'a Node>,
    /// The last messages of the branch, newest first (as the store pages them).
    pub history: &'a [Node],
    /// The user's memory (their notes and preferences across sessions), oldest first.
    pub memory: &'a [MemoryLine],
    /// Findings from the user's other sessions the request is about, best first.
    pub recall: &'a [RecallItem],
}

/// One entry of the user's memory as the window shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryLine {
    pub id: String,
    /// `note` or `preference`.
    pub kind: String,
    pub content: String,
}

/// A finding from another of the user's sessions, linked to where it was recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecallItem {
    pub session_id: String,
    pub session_name: String,
    /// The node that recorded it (none for an optimizer's best result, which the branch's
    /// tool state holds).
    pub node_id: Option<String>,
    /// `discovery`, `hypothesis` or `optimizer`.
    pub kind: String,
    /// What the window shows of it.
    pub text: String,
}

/// One part of the window and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextPart {
    /// system, pinned, memory, focus, findings, recall, summary or history.
    pub name: &'static str,
    /// Tokens the part takes (its messages' overhead included).
    pub tokens: u32,
    /// Items included (pins, materials, findings, messages).
    pub items: u32,
    /// Items left out for lack of budget.
    pub dropped: u32,
}

/// The assembled window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextWindow {
    /// The messages sent to the model, in order.
    pub messages: Vec<ChatMessage>,
    /// Per-part token accounting.
    pub parts: Vec<ContextPart>,
    /// Tokens of all messages.
    pub total_tokens: u32,
    /// The session's `context_window`.
    pub budget: u32,
    /// True when the parts that are never dropped alone exceed the budget.
    pub over_budget: bool,
    /// The current focus material.
    pub focus: Option<String>,
    /// Recently referenced materials in the window, newest first.
    pub recent_materials: Vec<String>,
    /// Ids of the discoveries and hypotheses in the window.
    pub findings: Vec<String>,
    /// Ids of the user's memory entries in the window.
    pub memory: Vec<String>,
    /// The findings from the user's other sessions in the window.
    pub recalled: Vec<RecallItem>,
    /// The summary node in the window.
    pub summary_node: Option<String>,
    /// Ids of the history nodes in the window, oldest first.
    pub history_nodes: Vec<String>,
    /// Every finding recorded on the branch, newest first (at most 20), for the planner.
    #[serde(skip)]
    pub recorded: Vec<String>,
    /// The seq of the oldest history node in the window: what is older has left it.
    #[serde(skip)]
    pub history_from: Option<i64>,
    /// Older messages exist than the page the window was built from (`max_history` cut them).
    #[serde(skip)]
    pub older_unfetched: bool,
    /// The optimiser's space and objective (`{space, objective}` from its tool state), for
    /// the offline planner, which reads results written with units against it.
    #[serde(skip)]
    pub optimizer_space: Option<Value>,
}

impl ContextWindow {
    /// The facts the offline planner needs beyond the messages.
    /// The seq before which messages have left the window (the budget or `max_history` left
    /// them out), if any have.
    pub fn left_before(&self) -> Option<i64> {
        let dropped = self
            .parts
            .iter()
            .any(|p| p.name == "history" && p.dropped > 0);
        self.history_from
            .filter(|_| dropped || self.older_unfetched)
    }

    pub fn planner_context(&self, session: &str, branch: &str) -> PlannerContext {
        PlannerContext {
            session_id: Some(session.to_owned()),
            branch: Some(branch.to_owned()),
            focus: self.focus.clone(),
            recent_materials: self.recent_materials.clone(),
            optimizer_space: self.optimizer_space.clone(),
            findings: self.recorded.clone(),
        }
    }
}

/// A run of history that enters or leaves the window whole: one message, or a tool group
/// (an assistant's tool calls followed by their results).
struct Unit {
    messages: Vec<ChatMessage>,
    nodes: Vec<String>,
    /// The seq of the unit's first node.
    seq: i64,
    tokens: u32,
    /// Part of the current turn (at or after the last user message): never dropped.
    current: bool,
}

fn node_tokens(n: &Node, m: &ChatMessage) -> u32 {
    match n.tokens {
        Some(t) if n.kind != NodeKind::ToolCall => {
            tokens::PER_MESSAGE + u32::try_from(t).unwrap_or(u32::MAX)
        }
        _ => tokens::message(m),
    }
}

fn call_of(n: &Node) -> Option<ToolCall> {
    let d = n.data.as_ref()?;
    Some(ToolCall {
        id: d.get("call_id")?.as_str()?.to_owned(),
        name: d.get("name")?.as_str()?.to_owned(),
        arguments: d
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}")
            .to_owned(),
    })
}

fn result_id(n: &Node) -> Option<&str> {
    n.data.as_ref()?.get("call_id")?.as_str()
}

/// Turns history (newest first) into units, oldest first, leaving out summaries and the
/// messages up to `covered` (the seq the summary in the window covers through).
fn units(history: &[Node], covered: i64) -> Vec<Unit> {
    let nodes: Vec<&Node> = history
        .iter()
        .rev()
        .filter(|n| n.kind != NodeKind::Summary && n.seq > covered)
        .collect();
    let last_user = nodes.iter().rposition(|n| n.kind == NodeKind::User);
    let mut out: Vec<Unit> = Vec::new();
    let mut i = 0;
    while i < nodes.len() {
        let n = nodes[i];
        let current = last_user.is_some_and(|u| i >= u);
        match n.kind {
            NodeKind::ToolCall => {
                // Gather consecutive calls, then their results.
                let mut calls: Vec<(ToolCall, &Node)> = Vec::new();
                let mut text: Option<String> = None;
                while i < nodes.len() && nodes[i].kind == NodeKind::ToolCall {
                    if let Some(c) = call_of(nodes[i]) {
                        if text.is_none() {
                            text = nodes[i]
                                .data
                                .as_ref()
                                .and_then(|d| d.get("assistant_text"))
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                        }
                        calls.push((c, nodes[i]));
                    }
                    i += 1;
                }
                let mut results: Vec<&Node> = Vec::new();
                while i < nodes.len() && nodes[i].kind == NodeKind::ToolResult {
                    results.push(nodes[i]);
                    i += 1;
                }
                // Keep the calls that have a result, and the results that have a call.
                let answered: Vec<(ToolCall, &Node)> = calls
                    .into_iter()
                    .filter(|(c, _)| results.iter().any(|r| result_id(r) == Some(c.id.as_str())))
                    .collect();
                if answered.is_empty() {
                    continue;
                }
                let call_msg = ChatMessage::assistant_tool_calls(
                    text,
                    answered.iter().map(|(c, _)| c.clone()).collect(),
                );
                let mut unit = Unit {
                    seq: answered[0].1.seq,
                    tokens: tokens::message(&call_msg),
                    nodes: answered.iter().map(|(_, n)| n.id.clone()).collect(),
                    messages: vec![call_msg],
                    current,
                };
                for r in results {
                    let Some(id) = result_id(r) else { continue };
                    if !answered.iter().any(|(c, _)| c.id == id) {
                        continue;
                    }
                    let m = ChatMessage::tool(id, r.content.clone());
                    unit.tokens += node_tokens(r, &m);
                    unit.nodes.push(r.id.clone());
                    unit.messages.push(m);
                }
                out.push(unit);
                continue;
            }
            NodeKind::ToolResult => {
                // A result whose call fell outside the page: meaningless alone.
                i += 1;
                continue;
            }
            _ => {}
        }
        let m = match n.kind {
            NodeKind::User => Some(ChatMessage::user(n.content.clone())),
            NodeKind::Assistant if !n.content.is_empty() => {
                Some(ChatMessage::assistant(n.content.clone()))
            }
            NodeKind::System => Some(ChatMessage::system(n.content.clone())),
            NodeKind::Note => Some(ChatMessage::system(format!("Note: {}", n.content))),
            NodeKind::Merge => Some(ChatMessage::system(format!("Merge: {}", n.content))),
            _ => None,
        };
        if let Some(m) = m {
            out.push(Unit {
                seq: n.seq,
                tokens: node_tokens(n, &m),
                nodes: vec![n.id.clone()],
                messages: vec![m],
                current,
            });
        }
        i += 1;
    }
    out
}

/// The latest user message's text in the history (what relevance is judged against).
pub(crate) fn query_of(history: &[Node]) -> &str {
    history
        .iter()
        .find(|n| n.kind == NodeKind::User)
        .map_or("", |n| n.content.as_str())
}

fn material_line(m: &kiln_types::state::Material) -> String {
    let Some(d) = &m.data else {
        return m.formula.clone();
    };
    let mut facts = Vec::new();
    if let Some(x) = d.get("molar_mass").and_then(Value::as_f64) {
        facts.push(format!("{x:.3} g/mol"));
    }
    if let Some(v) = d.get("valid").and_then(Value::as_bool) {
        facts.push(
            if v {
                "valid"
            } else {
                "fails the validity screen"
            }
            .to_owned(),
        );
    }
    if let Some(s) = d.get("chemical_system").and_then(Value::as_str) {
        facts.push(s.to_owned());
    }
    if facts.is_empty() {
        m.formula.clone()
    } else {
        format!("{} ({})", m.formula, facts.join(", "))
    }
}

/// One system message of `header` and as many of `lines` as fit in `cap` tokens, in order
/// (a line that does not fit is dropped and the next tried); the part named `name` accounts
/// for it, and the indices of the lines kept are returned.
fn listed(
    name: &'static str,
    header: &str,
    lines: &[String],
    cap: u32,
) -> (Option<ChatMessage>, ContextPart, Vec<usize>) {
    let mut cost = tokens::PER_MESSAGE + tokens::count(header);
    let mut kept = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = tokens::count(line) + 1;
        if cost + t <= cap {
            cost += t;
            kept.push(i);
        }
    }
    let dropped = (lines.len() - kept.len()) as u32;
    if kept.is_empty() {
        let part = ContextPart {
            name,
            tokens: 0,
            items: 0,
            dropped,
        };
        return (None, part, kept);
    }
    let body: Vec<&str> = kept.iter().map(|&i| lines[i].as_str()).collect();
    let m = ChatMessage::system(format!("{header}\n{}", body.join("\n")));
    let part = ContextPart {
        name,
        tokens: tokens::message(&m),
        items: kept.len() as u32,
        dropped,
    };
    (Some(m), part, kept)
}

/// Assembles the window. Pure: the same inputs give the same window.
pub fn assemble(inp: ContextInputs<'_>) -> ContextWindow {
    let budget = inp.config.context_window;
    let mut parts = Vec::new();
    let mut messages: Vec<ChatMessage> = Vec::new();

    // 1. System prompt and pinned context: always in.
    let system = ChatMessage::system(inp.system_prompt);
    let system_tokens = tokens::PER_MESSAGE + tokens::count_cached(inp.system_prompt);
    messages.push(system);
    parts.push(ContextPart {
        name: "system",
        tokens: system_tokens,
        items: 1,
        dropped: 0,
    });
    let mut used = system_tokens;
    if !inp.state.context.is_empty() {
        let lines: Vec<String> = inp
            .state
            .context
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("- {k}: {s}"),
                // A context item (kind, content, added_at): its text is what matters.
                Value::Object(o) if o.get("content").is_some_and(Value::is_string) => {
                    format!("- {k}: {}", o["content"].as_str().unwrap_or_default())
                }
                other => format!("- {k}: {other}"),
            })
            .collect();
        let m = ChatMessage::system(format!("Pinned context:\n{}", lines.join("\n")));
        let t = tokens::message(&m);
        used += t;
        messages.push(m);
        parts.push(ContextPart {
            name: "pinned",
            tokens: t,
            items: lines.len() as u32,
            dropped: 0,
        });
    }

    // The current turn is reserved before the optional parts. Messages the summary covers
    // are left out: the summary stands for them (a forced compression covers recent ones).
    let covered = inp
        .summary
        .and_then(|n| n.data.as_ref()?.get("covers_through")?.as_i64())
        .unwrap_or(-1);
    let units = units(inp.history, covered);
    let current_tokens: u32 = units.iter().filter(|u| u.current).map(|u| u.tokens).sum();
    let reserved = used + current_tokens;
    let mut left = budget.saturating_sub(reserved);

    // 2. The user's memory: their standing notes and preferences, oldest first, as many as
    //    fit (at most a quarter of the budget, so a long memory cannot crowd out the rest).
    let mut optional: Vec<ChatMessage> = Vec::new();
    let mut memory_ids = Vec::new();
    if !inp.memory.is_empty() {
        let lines: Vec<String> = inp
            .memory
            .iter()
            .map(|m| format!("- ({}) {}", m.kind, m.content))
            .collect();
        let cap = left.min(budget / 4);
        let (m, part, kept) = listed(
            "memory",
            "The user's memory (what they asked you to remember, across all their sessions; \
             follow it unless they say otherwise now):",
            &lines,
            cap,
        );
        memory_ids = kept.iter().map(|&i| inp.memory[i].id.clone()).collect();
        left = left.saturating_sub(part.tokens);
        parts.push(part);
        optional.extend(m);
    }

    // 3. Focus and recent materials.
    let focus = inp.state.focus.material.clone();
    let memory = inp.config.material_memory as usize;
    let recent: Vec<&kiln_types::state::Material> =
        inp.state.materials.iter().rev().take(memory).collect();
    let mut recent_materials = Vec::new();
    if focus.is_some() || !recent.is_empty() {
        // The focus line plus the `n` most recent materials, as one message.
        let block = |n: usize| {
            let mut text = String::new();
            if let Some(f) = &focus {
                text.push_str(&format!(
                    "Current focus material: {f} (\"it\" refers to it)."
                ));
            }
            if n > 0 {
                let lines: Vec<String> = recent[..n]
                    .iter()
                    .map(|m| format!("- {}", material_line(m)))
                    .collect();
                text.push_str(&format!(
                    "\nMaterials in play, most recent first:\n{}",
                    lines.join("\n")
                ));
            }
            ChatMessage::system(text.trim_start().to_owned())
        };
        // As many materials as fit, newest first; without a focus, at least one.
        let fewest = usize::from(focus.is_none());
        let fit = (fewest..=recent.len()).rev().find_map(|n| {
            let m = block(n);
            let t = tokens::message(&m);
            (t <= left).then_some((n, m, t))
        });
        let shown = u32::from(focus.is_some());
        match fit {
            Some((n, m, t)) => {
                left -= t;
                recent_materials = recent[..n].iter().map(|m| m.formula.clone()).collect();
                parts.push(ContextPart {
                    name: "focus",
                    tokens: t,
                    items: n as u32 + shown,
                    dropped: (recent.len() - n) as u32,
                });
                optional.push(m);
            }
            None => parts.push(ContextPart {
                name: "focus",
                tokens: 0,
                items: 0,
                dropped: recent.len() as u32 + shown,
            }),
        }
    }

    // 4. Relevant past findings: discoveries and hypotheses scoring at least the threshold.
    let q = relevance::terms(query_of(inp.history));
    let mut scored: Vec<(f64, String, String)> = Vec::new();
    for d in &inp.state.discoveries {
        let text = format!(
            "{} {} {}",
            d.discovery_type,
            d.description,
            d.materials.join(" ")
        );
        let s = relevance::score(&q, &text);
        if s >= inp.config.relevance_threshold && s > 0.0 {
            scored.push((
                s,
                d.id.clone(),
                format!(
                    "- [{}] {} (discovery {})",
                    d.discovery_type, d.description, d.id
                ),
            ));
        }
    }
    for h in &inp.state.hypotheses {
        let s = relevance::score(&q, &h.statement);
        if s >= inp.config.relevance_threshold && s > 0.0 {
            let status = serde_json::to_value(h.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            scored.push((
                s,
                h.id.clone(),
                format!("- hypothesis ({status}): {} ({})", h.statement, h.id),
            ));
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut findings = Vec::new();
    if !scored.is_empty() {
        let header = "Relevant findings from this session:";
        let mut lines: Vec<&str> = Vec::new();
        let mut cost = tokens::PER_MESSAGE + tokens::count(header);
        let mut dropped = 0u32;
        for (_, id, line) in &scored {
            let t = tokens::count(line) + 1;
            if cost + t <= left {
                cost += t;
                lines.push(line);
                findings.push(id.clone());
            } else {
                dropped += 1;
            }
        }
        if lines.is_empty() {
            parts.push(ContextPart {
                name: "findings",
                tokens: 0,
                items: 0,
                dropped,
            });
        } else {
            let m = ChatMessage::system(format!("{header}\n{}", lines.join("\n")));
            let t = tokens::message(&m);
            left = left.saturating_sub(t);
            parts.push(ContextPart {
                name: "findings",
                tokens: t,
                items: lines.len() as u32,
                dropped,
            });
            optional.push(m);
        }
    }

    // 5. Findings from the user's other sessions, within what is left (at most an eighth of
    //    the budget: they inform, the session's own history matters more).
    let mut recalled = Vec::new();
    if !inp.recall.is_empty() {
        let lines: Vec<String> = inp
            .recall
            .iter()
            .map(|r| {
                let node = r
                    .node_id
                    .as_deref()
                    .map(|n| format!(", node {n}"))
                    .unwrap_or_default();
                format!(
                    "- [{}] {} (session \"{}\" {}{node})",
                    r.kind, r.text, r.session_name, r.session_id
                )
            })
            .collect();
        let (m, part, kept) = listed(
            "recall",
            "From the user's other sessions (say which session when you use one):",
            &lines,
            left.min(budget / 8),
        );
        recalled = kept.iter().map(|&i| inp.recall[i].clone()).collect();
        left = left.saturating_sub(part.tokens);
        parts.push(part);
        optional.extend(m);
    }

    // 6. The summary of older turns.
    let mut summary_node = None;
    if let Some(s) = inp.summary {
        let m = ChatMessage::system(format!(
            "Summary of the earlier conversation:\n{}",
            s.content
        ));
        let t = tokens::message(&m);
        if t <= left {
            left -= t;
            summary_node = Some(s.id.clone());
            parts.push(ContextPart {
                name: "summary",
                tokens: t,
                items: 1,
                dropped: 0,
            });
            optional.push(m);
        } else {
            parts.push(ContextPart {
                name: "summary",
                tokens: 0,
                items: 0,
                dropped: 1,
            });
        }
    }
    messages.extend(optional);

    // 7. History: the current turn always, then earlier units newest first while they fit
    //    (an older unit that does not fit stops the walk: the window stays contiguous).
    let max_nodes = inp.config.max_history as usize;
    let mut keep_from = units.len();
    let mut node_count = 0usize;
    let mut history_tokens = 0u32;
    for (idx, u) in units.iter().enumerate().rev() {
        if u.current {
            keep_from = idx;
            node_count += u.nodes.len();
            history_tokens += u.tokens;
            continue;
        }
        if u.tokens > left || node_count + u.nodes.len() > max_nodes {
            break;
        }
        left -= u.tokens;
        keep_from = idx;
        node_count += u.nodes.len();
        history_tokens += u.tokens;
    }
    let mut history_nodes = Vec::new();
    let mut history_messages = 0u32;
    for u in &units[keep_from..] {
        history_nodes.extend(u.nodes.iter().cloned());
        history_messages += u.messages.len() as u32;
        messages.extend(u.messages.iter().cloned());
    }
    parts.push(ContextPart {
        name: "history",
        tokens: history_tokens,
        items: history_messages,
        dropped: units[..keep_from]
            .iter()
            .map(|u| u.messages.len() as u32)
            .sum(),
    });

    let total_tokens: u32 = parts.iter().map(|p| p.tokens).sum();
    ContextWindow {
        messages,
        parts,
        total_tokens,
        budget,
        over_budget: reserved > budget,
        focus,
        recent_materials,
        findings,
        memory: memory_ids,
        recalled,
        summary_node,
        history_nodes,
        history_from: units.get(keep_from).map(|u| u.seq),
        older_unfetched: false,
        recorded: inp
            .state
            .discoveries
            .iter()
            .rev()
            .take(20)
            .map(|d| d.description.clone())
            .collect(),
        optimizer_space: inp.state.tools.get("bayesian_optimizer").map(|state| {
            serde_json::json!({"space": state.get("space"), "objective": state.get("objective")})
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_types::StateEvent;
    use kiln_types::state::DiscoverySource;
    use serde_json::json;

    fn node(seq: i64, kind: NodeKind, content: &str) -> Node {
        Node {
            id: format!("n{seq}"),
            seq,
            parent_id: None,
            merge_parent_id: None,
            kind,
            role: kind,
            author: None,
            content: content.to_owned(),
            data: None,
            tokens: None,
            created_at: String::new(),
        }
    }

    /// `turns` question/answer pairs then the current question, newest first.
    fn history(turns: i64, words: usize) -> Vec<Node> {
        let filler = "lithium iron phosphate cathode ".repeat(words);
        let mut h = Vec::new();
        for i in 0..turns {
            h.push(node(
                2 * i + 1,
                NodeKind::User,
                &format!("question {i} {filler}"),
            ));
            h.push(node(
                2 * i + 2,
                NodeKind::Assistant,
                &format!("answer {i} {filler}"),
            ));
        }
        h.push(node(2 * turns + 1, NodeKind::User, "the current question"));
        h.reverse();
        h
    }

    fn window(
        system_prompt: &str,
        config: &ContextConfig,
        state: &ResearchState,
        summary: Option<&Node>,
        history: &[Node],
    ) -> ContextWindow {
        assemble(ContextInputs {
            system_prompt,
            config,
            state,
            summary,
            history,
            memory: &[],
            recall: &[],
        })
    }

    fn config(window: u32, max_history: u32) -> ContextConfig {
        ContextConfig {
            context_window: window,
            max_history,
            ..ContextConfig::default()
        }
    }

    fn pinned_state() -> ResearchState {
        let mut s = ResearchState::default();
        s.apply(
            "p1",
            &StateEvent::ContextPin {
                key: "goal".into(),
                value: json!("find a cobalt-free cathode"),
            },
        );
        s
    }

    #[test]
    fn the_budget_is_respected_and_history_kept_newest_first() {
        let h = history(30, 20);
        let state = ResearchState::default();
        let cfg = config(1_000, 100);
        let w = window("You are Kiln.", &cfg, &state, None, &h);
        assert!(w.total_tokens <= 1_000, "{}", w.total_tokens);
        assert!(!w.over_budget);
        let hist = w.parts.iter().find(|p| p.name == "history").unwrap();
        assert!(hist.dropped > 0, "something had to go");
        // The newest messages are the ones kept, ending with the current question.
        assert_eq!(w.history_nodes.last().map(String::as_str), Some("n61"));
        assert_eq!(
            w.messages.last().and_then(|m| m.text()),
            Some("the current question")
        );
        let sum: u32 = w.messages.iter().map(tokens::message).sum();
        assert_eq!(
            sum, w.total_tokens,
            "the accounting matches the messages sent"
        );
        // max_history caps the count even with budget to spare.
        let cfg = config(100_000, 5);
        let w = window("You are Kiln.", &cfg, &state, None, &h);
        assert_eq!(w.history_nodes.len(), 5);
    }

    #[test]
    fn system_prompt_pins_and_the_current_question_are_never_dropped() {
        let h = history(5, 50);
        let state = pinned_state();
        let cfg = config(10, 20);
        let w = window(
            "You are Kiln, a research assistant with a long prompt.",
            &cfg,
            &state,
            None,
            &h,
        );
        assert!(w.over_budget);
        assert!(
            matches!(&w.messages[0], ChatMessage::System { content } if content.starts_with("You are Kiln"))
        );
        assert!(w.messages[1].text().unwrap().contains("cobalt-free"));
        assert_eq!(
            w.messages.last().and_then(|m| m.text()),
            Some("the current question")
        );
        assert_eq!(w.history_nodes, vec!["n11".to_string()]);
    }

    #[test]
    fn messages_a_summary_covers_leave_the_history() {
        // Three turns (seq 1..=6) and the current question (seq 7); the summary covers 1..=4.
        let h = history(3, 1);
        let state = ResearchState::default();
        let mut summary = node(8, NodeKind::Summary, "Turns 0 and 1: LiFePO4 analysed.");
        summary.data = Some(serde_json::json!({"covers_from": 1, "covers_through": 4}));
        let cfg = config(2_000, 20);
        let w = window("You are Kiln.", &cfg, &state, Some(&summary), &h);
        let texts: Vec<&str> = w.messages.iter().filter_map(|m| m.text()).collect();
        assert!(
            !texts
                .iter()
                .any(|t| t.starts_with("question 0") || t.starts_with("answer 1"))
        );
        assert!(
            texts.iter().any(|t| t.starts_with("question 2")),
            "{texts:?}"
        );
        assert!(texts.contains(&"the current question"));
        let hist = w.parts.iter().find(|p| p.name == "history").unwrap();
        assert_eq!(hist.items, 3);
        // Without the summary all seven are in.
        let w = window("You are Kiln.", &cfg, &state, None, &h);
        assert_eq!(
            w.parts.iter().find(|p| p.name == "history").unwrap().items,
            7
        );
    }

    #[test]
    fn the_summary_is_used_when_it_fits() {
        let h = history(3, 1);
        let state = ResearchState::default();
        let mut summary = node(
            0,
            NodeKind::Summary,
            "Earlier: LiFePO4 analysed, 157.755 g/mol.",
        );
        summary.id = "sum".into();
        let cfg = config(2_000, 20);
        let w = window("You are Kiln.", &cfg, &state, Some(&summary), &h);
        assert_eq!(w.summary_node.as_deref(), Some("sum"));
        assert!(
            w.messages
                .iter()
                .any(|m| m.text().is_some_and(|t| t.contains("157.755")))
        );
        // Too little room: the summary is left out, the question stays.
        let cfg = config(40, 20);
        let w = window("You are Kiln.", &cfg, &state, Some(&summary), &h);
        assert_eq!(w.summary_node, None);
        assert_eq!(
            w.parts
                .iter()
                .find(|p| p.name == "summary")
                .unwrap()
                .dropped,
            1
        );
    }

    #[test]
    fn findings_need_the_relevance_threshold() {
        let mut state = ResearchState::default();
        for (id, text) in [
            ("d1", "The olivine structure is crucial for Li+ mobility"),
            ("d2", "Sintering above 900 C coarsens the grains"),
        ] {
            state.apply(
                id,
                &StateEvent::Discovery {
                    id: Some(id.into()),
                    discovery_type: "structure_property".into(),
                    description: text.into(),
                    materials: vec![],
                    evidence: vec![],
                    confidence: None,
                    source: DiscoverySource::Manual,
                },
            );
        }
        let h = vec![node(
            1,
            NodeKind::User,
            "How does the olivine structure affect Li+ mobility?",
        )];
        let mut cfg = config(4_000, 20);
        cfg.relevance_threshold = 0.5;
        let w = window("s", &cfg, &state, None, &h);
        assert_eq!(w.findings, vec!["d1".to_string()]);
        cfg.relevance_threshold = 1.0;
        let w = window("s", &cfg, &state, None, &h);
        assert!(w.findings.is_empty(), "{:?}", w.findings);
    }

    #[test]
    fn tool_groups_enter_whole_and_orphans_are_dropped() {
        let mut call = node(2, NodeKind::ToolCall, "materials_analyzer(...)");
        call.data = Some(json!({"call_id": "c1", "name": "materials_analyzer", "arguments": "{}"}));
        let mut result = node(3, NodeKind::ToolResult, "{\"ok\":true}");
        result.data = Some(json!({"call_id": "c1"}));
        let mut orphan = node(0, NodeKind::ToolResult, "{\"ok\":true}");
        orphan.data = Some(json!({"call_id": "gone"}));
        let h = vec![
            node(4, NodeKind::Assistant, "done"),
            result,
            call,
            node(1, NodeKind::User, "analyse"),
            orphan,
        ];
        let state = ResearchState::default();
        let cfg = config(4_000, 20);
        let w = window("s", &cfg, &state, None, &h);
        let roles: Vec<kiln_llm::Role> = w.messages.iter().map(ChatMessage::role).collect();
        use kiln_llm::Role::*;
        assert_eq!(roles, vec![System, User, Assistant, Tool, Assistant]);
        assert_eq!(w.messages[2].tool_calls()[0].id, "c1");
    }
}
