//! Materials requests: which action (analyse, validate, similar, compare, a goal) and which
//! materials — the ones named, never a lone element named in passing, never the focus in
//! place of a formula that failed to read; the focus only when nothing is named.

use serde_json::{Value, json};

use super::formula::Mentions;
use super::intent::{Context, Plan};
use super::words::{has_any, starts_with_any};

const COMPARE_CUES: [&str; 12] = [
    "compare",
    " vs ",
    " vs. ",
    "versus",
    "difference between",
    "differ from",
    "different from",
    "differ",
    "stack up",
    "which is",
    "which one",
    "side by side",
];
const GOAL_CUES: [&str; 11] = [
    "higher",
    "lower",
    "better",
    "cheaper",
    "safer",
    "greener",
    "more stable",
    "larger",
    "smaller",
    "improved",
    "less toxic",
];
const SIMILAR_CUES: [&str; 16] = [
    "similar",
    "alternative",
    "substitut",
    "analog",
    "related material",
    "replacement",
    "replace",
    "like it",
    "like this",
    "is like",
    "swap",
    "instead of",
    "same structure",
    "a material like",
    "something like",
    "options",
];
const VALIDATE_CUES: [&str; 13] = [
    "oxidation",
    "valid",
    "charge",
    "neutral",
    "balance",
    "plausib",
    "feasib",
    "valence",
    "sensible",
    "make sense",
    "realistic",
    "mixed valence",
    "stoichiometr",
];
const ANALYSE_CUES: [&str; 20] = [
    "analy",
    "tell me about",
    "tell me more",
    "propert",
    "molar mass",
    "molecular weight",
    "composition",
    "describe",
    "look at",
    "more about",
    "about it",
    "by weight",
    "weight percent",
    "wt%",
    "mass fraction",
    "how heavy",
    "info",
    "rundown",
    "know about",
    "details",
];
/// Properties no tool computes: a question about one is answered with what can be done.
pub(crate) const UNKNOWN_PROPERTIES: [&str; 22] = [
    "band gap",
    "bandgap",
    "voltage",
    "conductivity",
    "melting point",
    "boiling point",
    "price",
    "cost",
    "toxicity",
    "crystal structure",
    "space group",
    "lattice",
    "formation energy",
    "hardness",
    "magnetic",
    "synthesi",
    "how do i make",
    "xrd",
    "solubility",
    "density",
    "capacity",
    "thermal",
];
const FOLLOW_UP: [&str; 10] = [
    "and ",
    "what about",
    "how about",
    "same for",
    "same with",
    "now for",
    "also ",
    "ok and",
    "then ",
    "now ",
];

/// The action a materials request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Analyze,
    Validate,
    Similar,
    Compare,
    /// A goal ("a cathode with higher voltage than LiFePO4"): similar first, then compare.
    Goal,
}

impl Action {
    fn tool_action(self) -> &'static str {
        match self {
            Action::Analyze => "analyze",
            Action::Validate => "validate",
            Action::Similar | Action::Goal => "similar",
            Action::Compare => "compare",
        }
    }

    fn from_tool(action: &str) -> Option<Action> {
        Some(match action {
            "analyze" => Action::Analyze,
            "validate" => Action::Validate,
            "similar" => Action::Similar,
            "compare" => Action::Compare,
            _ => return None,
        })
    }
}

/// The action the words ask for, if any.
pub(crate) fn action(cues: &str, subjects: usize) -> Option<Action> {
    let compare = has_any(cues, &COMPARE_CUES) || cues.starts_with("vs");
    if compare && (subjects != 1 || !cues.contains("which is")) {
        return Some(Action::Compare);
    }
    let goal = has_any(cues, &GOAL_CUES)
        && (has_any(cues, &[" than ", "with ", "but ", "without"]) || has_any(cues, &SIMILAR_CUES));
    if goal && subjects <= 1 {
        return Some(Action::Goal);
    }
    if has_any(cues, &SIMILAR_CUES) {
        return Some(Action::Similar);
    }
    if has_any(cues, &VALIDATE_CUES) {
        return Some(Action::Validate);
    }
    if has_any(cues, &ANALYSE_CUES) {
        return Some(Action::Analyze);
    }
    None
}

/// Plans a materials request; `None` when the message is not about materials at all.
pub(crate) fn plan(text: &str, cues: &str, context: &Context) -> Option<Plan> {
    let mentions = Mentions::scan(text);
    if let Some(reply) = unreadable(&mentions, cues) {
        return Some(Plan::Reply(reply));
    }
    let named = mentions.compounds.clone();
    let mut action = action(cues, named.len());
    // A material was named by a name the tools cannot read: never the focus in its place.
    if named.is_empty()
        && let Some(name) = mentions.abbreviations.first()
        && (action.is_some() || mentions.elements.is_empty())
    {
        return Some(Plan::Reply(format!(
            "I do not know {name} as a formula, so I have not run anything (and have not used \
             the material in focus instead). Write its formula, for example \"Analyse \
             LiNi0.8Mn0.1Co0.1O2\" for NMC811."
        )));
    }
    if action.is_none() && has_any(cues, &UNKNOWN_PROPERTIES) {
        return None;
    }
    let follow_up = starts_with_any(cues.trim_start(), &FOLLOW_UP);
    if action.is_none() && !named.is_empty() {
        action = Some(if follow_up {
            context
                .previous_action
                .as_deref()
                .and_then(Action::from_tool)
                .unwrap_or(Action::Analyze)
        } else {
            Action::Analyze
        });
    }
    // A lone element with nothing else named, asked to be analysed ("analyse Fe", "Fe").
    let lone_elements = named.is_empty()
        && !mentions.elements.is_empty()
        && !has_any(cues, &[" of ", " in ", "replace", "by weight"])
        && context.focus.is_none();
    if action.is_none() && lone_elements {
        action = Some(Action::Analyze);
    }
    let action = action?;
    let subjects = if named.is_empty() && lone_elements {
        mentions.elements.clone()
    } else {
        named
    };
    Some(materials_calls(action, subjects, cues, context))
}

/// The answer when a formula-shaped word uses symbols no element has: it names them and what
/// was understood, and runs nothing (the focus is never used in its place).
fn unreadable(mentions: &Mentions, cues: &str) -> Option<String> {
    if mentions.unknown.is_empty() {
        return None;
    }
    let bad: Vec<String> = mentions
        .unknown
        .iter()
        .map(|unknown| {
            let symbols: Vec<String> = unknown.symbols.iter().map(|s| format!("`{s}`")).collect();
            let verb = if symbols.len() == 1 {
                "is not an element symbol"
            } else {
                "are not element symbols"
            };
            format!("`{}`: {} {verb}", unknown.word, symbols.join(", "))
        })
        .collect();
    let understood = match action(cues, 1) {
        Some(Action::Validate) => "a validity and oxidation-state check",
        Some(Action::Similar | Action::Goal) => "a search for similar materials",
        Some(Action::Compare) => "a comparison",
        _ => "an analysis",
    };
    let mut reply = format!(
        "I could not read {}, so I have not run anything. I understood you want {understood} of it.",
        bad.join("; ")
    );
    if !mentions.compounds.is_empty() {
        reply.push_str(&format!(
            " I did read {}; fix the formula and ask again.",
            mentions.compounds.join(", ")
        ));
    } else {
        reply.push_str(" Correct the formula and ask again, for example \"Analyse LiCoO2\".");
    }
    Some(reply)
}

fn materials_calls(action: Action, named: Vec<String>, cues: &str, context: &Context) -> Plan {
    let from_history = || -> Vec<String> {
        if has_any(cues, &["them", "these", "both", "those"]) {
            context.previous_materials.clone()
        } else {
            context.focus.iter().cloned().collect()
        }
    };
    if action == Action::Compare {
        let mut subjects = named;
        if subjects.len() == 1 {
            if let Some(focus) = context.focus.as_deref().filter(|f| *f != subjects[0]) {
                subjects.insert(0, focus.to_owned());
            }
        } else if subjects.is_empty() {
            subjects = from_history();
        }
        if subjects.len() < 2 {
            return Plan::Reply(
                "Which two materials should I compare? For example: \"Compare LiFePO4 and LiCoO2\"."
                    .into(),
            );
        }
        let first = subjects[0].clone();
        return Plan::Calls(
            subjects[1..]
                .iter()
                .map(|other| {
                    (
                        "materials_analyzer".to_owned(),
                        json!({"action": "compare", "formulas": [first, other]}),
                    )
                })
                .collect(),
        );
    }
    // "Tell me about perovskites" names a family, not the material in focus.
    if named.is_empty()
        && matches!(action, Action::Analyze | Action::Validate)
        && !has_any(
            cues,
            &[
                " it", "its ", "this", "that", "them", "these", "both", "those",
            ],
        )
        && let Some(family) = family_named(cues)
    {
        return Plan::Reply(format!(
            "My tools work on one formula at a time, so I cannot describe {family} as a family.              Name one, for example \"Analyse CaTiO3\", or look through your sessions with              \"Search my sessions for {family}\"."
        ));
    }
    let subjects = if named.is_empty() {
        from_history()
    } else {
        named
    };
    if subjects.is_empty() {
        return Plan::Reply(
            "Which material do you mean? No material is named and there is no material in \
             focus in this session yet: name a formula, for example \"Analyse LiFePO4\"."
                .into(),
        );
    }
    let limit = (action == Action::Similar)
        .then(|| similar_limit(cues))
        .flatten();
    Plan::Calls(
        subjects
            .into_iter()
            .map(|formula| {
                let mut arguments = json!({"action": action.tool_action(), "formula": formula});
                if let Some(limit) = limit {
                    arguments["limit"] = json!(limit);
                }
                ("materials_analyzer".to_owned(), arguments)
            })
            .collect(),
    )
}

/// "list 5 similar", "ten alternatives": how many candidates.
fn similar_limit(cues: &str) -> Option<u64> {
    const WORDS: [&str; 10] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    cues.split(|c: char| !c.is_alphanumeric()).find_map(|word| {
        word.parse::<u64>()
            .ok()
            .filter(|n| (1..=50).contains(n))
            .or_else(|| WORDS.iter().position(|w| *w == word).map(|i| i as u64 + 1))
    })
}

/// For a goal: the candidate to compare with, from the similar call's result text.
pub(crate) fn goal_candidate(original: &str, result_text: &str) -> Option<String> {
    let mentions = Mentions::scan(result_text);
    mentions
        .compounds
        .into_iter()
        .find(|formula| formula != original)
}

/// Whether a formula string appears in the user's words (so the answer need not say it came
/// from the focus).
pub(crate) fn named_in(text: &str, formula: &str) -> bool {
    let m = Mentions::scan(text);
    m.compounds
        .iter()
        .chain(m.elements.iter())
        .any(|named| named == formula)
}

/// The main formula of a materials call's arguments.
pub(crate) fn subject(arguments: &Value) -> Option<String> {
    arguments
        .get("formula")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Families of materials researchers name by word: a request about one names no formula, yet
/// is not about the material in focus.
const FAMILIES: [&str; 22] = [
    "perovskite",
    "garnet",
    "spinel",
    "olivine",
    "nasicon",
    "oxide",
    "sulfide",
    "sulphide",
    "halide",
    "nitride",
    "carbide",
    "phosphate",
    "silicate",
    "zeolite",
    "mof",
    "mxene",
    "chalcogenide",
    "intermetallic",
    "alloy",
    "polymer",
    "hydride",
    "fluoride",
];

/// The family a request names (as written, singular or plural), if any.
fn family_named(cues: &str) -> Option<String> {
    cues.split(|c: char| !c.is_alphanumeric())
        .find(|w| {
            let singular = w.strip_suffix("es").filter(|s| FAMILIES.contains(s));
            let singular = singular.or_else(|| w.strip_suffix('s'));
            FAMILIES.contains(w) || singular.is_some_and(|s| FAMILIES.contains(&s))
        })
        .map(str::to_owned)
}
