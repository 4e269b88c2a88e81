//! Research-state changes and merge conflicts in words, as a person reads them: discoveries by
//! their description, hypotheses by their statement, tasks by description, pins by key,
//! materials by formula; no ids, no JSON.

use serde_json::Value;

use super::{
    Discovery, Focus, Hypothesis, HypothesisStatus, Link, ResearchState, Task, TaskStatus,
    ToolMerger,
};

/// Longest quoted text in a sentence; longer text ends in an ellipsis.
const QUOTE_CHARS: usize = 80;

/// Returns `s` on one line, cut to [`QUOTE_CHARS`] characters.
pub fn short(s: &str) -> String {
    let one_line: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= QUOTE_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(QUOTE_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

/// Returns a value as words: strings as they are, numbers and booleans as written, lists
/// joined by commas, objects as `key: value` pairs; never JSON punctuation.
pub fn value_text(v: &Value) -> String {
    let s = match v {
        Value::Null => "empty".to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(xs) if xs.is_empty() => "an empty list".to_string(),
        Value::Array(xs) => xs.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Object(m) if m.is_empty() => "empty".to_string(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}: {}", value_text(v)))
            .collect::<Vec<_>>()
            .join("; "),
    };
    short(&s)
}

pub fn hypothesis_status(s: HypothesisStatus) -> &'static str {
    match s {
        HypothesisStatus::Open => "open",
        HypothesisStatus::Supported => "supported",
        HypothesisStatus::Refuted => "refuted",
    }
}

pub fn task_status(s: TaskStatus) -> &'static str {
    match s {
        TaskStatus::Pending => "pending",
        TaskStatus::InProgress => "in progress",
        TaskStatus::Done => "done",
        TaskStatus::Cancelled => "cancelled",
    }
}

/// The words for one conflict: what it is about and each side's version.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConflictWords {
    pub subject: String,
    pub base: Option<String>,
    pub ours: String,
    pub theirs: String,
}

/// Composes the sentence for a conflict: "Hypothesis 'X': supported on main, refuted on sodium
/// (was open)"; "(new on both)" when the base had no such entry.
pub fn conflict_sentence(w: &ConflictWords, ours_label: &str, theirs_label: &str) -> String {
    let was = match &w.base {
        Some(b) => format!("was {b}"),
        None => "new on both".to_string(),
    };
    format!(
        "{}: {} on {ours_label}, {} on {theirs_label} ({was})",
        w.subject, w.ours, w.theirs
    )
}

fn side<T>(x: Option<&T>, text: impl Fn(&T) -> String) -> String {
    x.map_or_else(|| "removed".to_string(), text)
}

fn first<'a, T>(b: Option<&'a T>, o: Option<&'a T>, t: Option<&'a T>) -> Option<&'a T> {
    b.or(o).or(t)
}

/// Words for a hypothesis conflict: by statement, each side by its status (and its statement
/// when the statements differ).
pub fn hypothesis_words(
    b: Option<&Hypothesis>,
    o: Option<&Hypothesis>,
    t: Option<&Hypothesis>,
) -> ConflictWords {
    let Some(any) = first(b, o, t) else {
        return ConflictWords::default();
    };
    let same = [b, o, t]
        .iter()
        .flatten()
        .all(|h| h.statement == any.statement);
    let again = [b, o, t].iter().flatten().all(|h| h.status == any.status);
    let text = |h: &Hypothesis| {
        if same && again {
            format!("{}, recorded separately", hypothesis_status(h.status))
        } else if same {
            hypothesis_status(h.status).to_string()
        } else {
            format!("'{}', {}", short(&h.statement), hypothesis_status(h.status))
        }
    };
    ConflictWords {
        subject: format!("Hypothesis '{}'", short(&any.statement)),
        base: b.map(text),
        ours: side(o, text),
        theirs: side(t, text),
    }
}

/// Words for a task conflict: by description, each side by its status.
pub fn task_words(b: Option<&Task>, o: Option<&Task>, t: Option<&Task>) -> ConflictWords {
    let Some(any) = first(b, o, t) else {
        return ConflictWords::default();
    };
    let same = [b, o, t]
        .iter()
        .flatten()
        .all(|x| x.description == any.description);
    let again = [b, o, t].iter().flatten().all(|x| x.status == any.status);
    let text = |x: &Task| {
        if same && again {
            format!("{}, recorded separately", task_status(x.status))
        } else if same {
            task_status(x.status).to_string()
        } else {
            format!("'{}', {}", short(&x.description), task_status(x.status))
        }
    };
    ConflictWords {
        subject: format!("Task '{}'", short(&any.description)),
        base: b.map(text),
        ours: side(o, text),
        theirs: side(t, text),
    }
}

/// Words for a discovery conflict: by description; each side names only what differs.
pub fn discovery_words(
    b: Option<&Discovery>,
    o: Option<&Discovery>,
    t: Option<&Discovery>,
) -> ConflictWords {
    let Some(any) = first(b, o, t) else {
        return ConflictWords::default();
    };
    let present: Vec<&Discovery> = [b, o, t].into_iter().flatten().collect();
    let differs = |f: &dyn Fn(&Discovery) -> String| present.iter().any(|d| f(d) != f(present[0]));
    type Part = (&'static str, fn(&Discovery) -> String);
    let parts: [Part; 5] = [
        ("", |d| format!("'{}'", short(&d.description))),
        ("type ", |d| d.discovery_type.clone()),
        ("confidence ", |d| {
            d.confidence.map_or("not given".into(), |c| c.to_string())
        }),
        ("materials ", |d| {
            if d.materials.is_empty() {
                "none".into()
            } else {
                d.materials.join(", ")
            }
        }),
        ("evidence ", |d| {
            if d.evidence.is_empty() {
                "none".into()
            } else {
                short(&d.evidence.join("; "))
            }
        }),
    ];
    let shown: Vec<&Part> = parts.iter().filter(|(_, f)| differs(f)).collect();
    let text = |d: &Discovery| {
        if shown.is_empty() {
            "recorded separately".to_string()
        } else {
            shown
                .iter()
                .map(|(label, f)| format!("{label}{}", f(d)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    ConflictWords {
        subject: format!("Discovery '{}'", short(&any.description)),
        base: b.map(text),
        ours: side(o, text),
        theirs: side(t, text),
    }
}

/// Returns a discovery's description from whichever state has it (links name their ends).
pub fn discovery_name(id: &str, states: &[&ResearchState]) -> String {
    states
        .iter()
        .find_map(|s| s.discoveries.iter().find(|d| d.id == id))
        .map_or_else(
            || "a discovery no longer recorded".to_string(),
            |d| format!("'{}'", short(&d.description)),
        )
}

/// Words for a link conflict: by its ends and relationship, each side by its notes.
pub fn link_words(
    b: Option<&Link>,
    o: Option<&Link>,
    t: Option<&Link>,
    states: &[&ResearchState],
) -> ConflictWords {
    let Some(any) = first(b, o, t) else {
        return ConflictWords::default();
    };
    let text = |l: &Link| {
        l.notes
            .as_deref()
            .map_or("no notes".to_string(), |n| format!("notes '{}'", short(n)))
    };
    ConflictWords {
        subject: format!(
            "Link: {} {} {}",
            discovery_name(&any.from, states),
            any.relationship.replace('_', " "),
            discovery_name(&any.to, states)
        ),
        base: b.map(text),
        ours: side(o, text),
        theirs: side(t, text),
    }
}

/// Words for a pinned-context conflict: by key, each side by its value.
pub fn pin_words(
    key: &str,
    b: Option<&Value>,
    o: Option<&Value>,
    t: Option<&Value>,
) -> ConflictWords {
    ConflictWords {
        subject: format!("Pin '{}'", short(key)),
        base: b.map(value_text),
        ours: side(o, value_text),
        theirs: side(t, value_text),
    }
}

/// Words for a tool state that the tool cannot merge field by field.
pub fn tool_words(
    tool: &str,
    b: Option<&Value>,
    o: Option<&Value>,
    t: Option<&Value>,
) -> ConflictWords {
    let text = |_: &Value| "changed".to_string();
    ConflictWords {
        subject: format!("The {tool} tool's state (kept whole: one side or the other)"),
        base: b.map(|_| "as at the common ancestor".to_string()),
        ours: side(o, text),
        theirs: side(t, text),
    }
}

fn focus_text(f: &Focus) -> String {
    match (&f.material, &f.topic) {
        (Some(m), Some(t)) => format!("{m} ('{}')", short(t)),
        (Some(m), None) => m.clone(),
        (None, Some(t)) => format!("'{}'", short(t)),
        (None, None) => "nothing".to_string(),
    }
}

/// Describes, one sentence per change, how the research state went from `from` to `to`:
/// discoveries, links, hypotheses and their statuses, materials, tasks, pins, focus and tool
/// states (tools that know their state, such as the optimizer, describe their own changes).
pub fn describe_changes(
    from: &ResearchState,
    to: &ResearchState,
    tools: &dyn ToolMerger,
) -> Vec<String> {
    let mut out = Vec::new();
    for m in &to.materials {
        if !from.materials.iter().any(|x| x.formula == m.formula) {
            out.push(format!("Material {} added.", m.formula));
        }
    }
    for m in &from.materials {
        if !to.materials.iter().any(|x| x.formula == m.formula) {
            out.push(format!("Material {} no longer in play.", m.formula));
        }
    }
    for d in &to.discoveries {
        match from.discoveries.iter().find(|x| x.id == d.id) {
            None => out.push(format!("New discovery: '{}'.", short(&d.description))),
            Some(old) if old != d => {
                let w = discovery_words(Some(old), Some(d), None);
                out.push(format!(
                    "{}: now {} (was {}).",
                    w.subject,
                    w.ours,
                    w.base.unwrap_or_default()
                ));
            }
            Some(_) => {}
        }
    }
    for d in &from.discoveries {
        if !to.discoveries.iter().any(|x| x.id == d.id) {
            out.push(format!("Discovery '{}' removed.", short(&d.description)));
        }
    }
    let states = [to, from];
    let same_link =
        |a: &Link, b: &Link| a.from == b.from && a.to == b.to && a.relationship == b.relationship;
    for l in &to.links {
        if !from.links.iter().any(|x| same_link(x, l)) {
            out.push(format!(
                "New link: {} {} {}.",
                discovery_name(&l.from, &states),
                l.relationship.replace('_', " "),
                discovery_name(&l.to, &states)
            ));
        }
    }
    for l in &from.links {
        if !to.links.iter().any(|x| same_link(x, l)) {
            out.push(format!(
                "Link removed: {} {} {}.",
                discovery_name(&l.from, &states),
                l.relationship.replace('_', " "),
                discovery_name(&l.to, &states)
            ));
        }
    }
    for h in &to.hypotheses {
        match from.hypotheses.iter().find(|x| x.id == h.id) {
            None => out.push(format!(
                "New hypothesis '{}' ({}).",
                short(&h.statement),
                hypothesis_status(h.status)
            )),
            Some(old) if old.statement != h.statement => out.push(format!(
                "Hypothesis '{}' now reads '{}' ({}).",
                short(&old.statement),
                short(&h.statement),
                hypothesis_status(h.status)
            )),
            Some(old) if old.status != h.status => out.push(format!(
                "Hypothesis '{}': {} → {}.",
                short(&h.statement),
                hypothesis_status(old.status),
                hypothesis_status(h.status)
            )),
            Some(_) => {}
        }
    }
    for h in &from.hypotheses {
        if !to.hypotheses.iter().any(|x| x.id == h.id) {
            out.push(format!("Hypothesis '{}' removed.", short(&h.statement)));
        }
    }
    for t in &to.tasks {
        match from.tasks.iter().find(|x| x.id == t.id) {
            None => out.push(format!(
                "New task '{}' ({}).",
                short(&t.description),
                task_status(t.status)
            )),
            Some(old) if old.description != t.description => out.push(format!(
                "Task '{}' now reads '{}' ({}).",
                short(&old.description),
                short(&t.description),
                task_status(t.status)
            )),
            Some(old) if old.status != t.status => out.push(format!(
                "Task '{}': {} → {}.",
                short(&t.description),
                task_status(old.status),
                task_status(t.status)
            )),
            Some(_) => {}
        }
    }
    for t in &from.tasks {
        if !to.tasks.iter().any(|x| x.id == t.id) {
            out.push(format!("Task '{}' removed.", short(&t.description)));
        }
    }
    for (k, v) in &to.context {
        match from.context.get(k) {
            None => out.push(format!("Pin '{}' set to {}.", short(k), value_text(v))),
            Some(old) if old != v => out.push(format!(
                "Pin '{}': {} → {}.",
                short(k),
                value_text(old),
                value_text(v)
            )),
            Some(_) => {}
        }
    }
    for k in from.context.keys() {
        if !to.context.contains_key(k) {
            out.push(format!("Pin '{}' removed.", short(k)));
        }
    }
    if from.focus != to.focus {
        out.push(format!(
            "Focus moved from {} to {}.",
            focus_text(&from.focus),
            focus_text(&to.focus)
        ));
    }
    let names: std::collections::BTreeSet<&String> =
        from.tools.keys().chain(to.tools.keys()).collect();
    for tool in names {
        let (f, t) = (from.tools.get(tool), to.tools.get(tool));
        if f == t {
            continue;
        }
        match tools.describe_tool_change(tool, f, t) {
            Some(lines) => out.extend(lines),
            None => out.push(match (f, t) {
                (None, _) => format!("The {tool} tool's state started."),
                (_, None) => format!("The {tool} tool's state removed."),
                _ => format!("The {tool} tool's state changed."),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StateEvent;
    use serde_json::json;

    fn fold(start: &ResearchState, events: &[(&str, Value)]) -> ResearchState {
        let mut s = start.clone();
        for (node, e) in events {
            let e: StateEvent = serde_json::from_value(e.clone()).unwrap();
            s.apply(node, &e);
        }
        s
    }

    #[test]
    fn changes_read_as_sentences_by_name_not_id() {
        let base = fold(
            &ResearchState::default(),
            &[
                (
                    "h1",
                    json!({"kind": "hypothesis", "statement": "Na keeps the olivine"}),
                ),
                ("t1", json!({"kind": "task", "description": "Measure it"})),
                (
                    "p1",
                    json!({"kind": "context_pin", "key": "temp", "value": 600}),
                ),
            ],
        );
        let to = fold(
            &base,
            &[
                (
                    "h2",
                    json!({"kind": "hypothesis", "id": "h1", "statement": "Na keeps the olivine", "status": "supported"}),
                ),
                (
                    "t2",
                    json!({"kind": "task", "id": "t1", "description": "Measure it", "status": "done"}),
                ),
                (
                    "p2",
                    json!({"kind": "context_pin", "key": "temp", "value": {"c": 700, "unit": "C"}}),
                ),
                ("m1", json!({"kind": "material", "formula": "NaFePO4"})),
                (
                    "d1",
                    json!({"kind": "discovery", "type": "t", "description": "Na fits\nthe site"}),
                ),
            ],
        );
        let lines = describe_changes(&base, &to, &());
        assert_eq!(
            lines,
            [
                "Material NaFePO4 added.",
                "New discovery: 'Na fits the site'.",
                "Hypothesis 'Na keeps the olivine': open → supported.",
                "Task 'Measure it': pending → done.",
                "Pin 'temp': 600 → c: 700; unit: C.",
                "Focus moved from nothing to NaFePO4.",
            ]
        );
        assert!(describe_changes(&to, &to, &()).is_empty());
        let back = describe_changes(&to, &base, &());
        assert!(back.contains(&"Discovery 'Na fits the site' removed.".to_string()));
    }

    #[test]
    fn long_text_is_cut_on_one_line() {
        let s = short(&"word ".repeat(40));
        assert_eq!(s.chars().count(), QUOTE_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(value_text(&json!([1, "a", null])), "1, a, empty");
    }
}
