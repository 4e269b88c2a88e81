//! Requests about the researcher's memory across sessions: "remember that I work at 1 atm",
//! "from now on report capacities in mAh/g", "what do you remember about me?", "forget that I
//! work at 1 atm". They become `user_memory` calls; anything else is left to the other matchers.

use serde_json::json;

use super::intent::Plan;
use super::words::{clean_clause, has_any, strip_prefix_ci};

const TOOL: &str = "user_memory";

/// Leads that save the rest of the sentence as a note.
const REMEMBER: [&str; 14] = [
    "remember to ",
    "remember that ",
    "remember:",
    "remember ",
    "note for the future: ",
    "note for the future that ",
    "for future reference, ",
    "for future reference: ",
    "keep in mind that ",
    "bear in mind that ",
    "don't forget that ",
    "do not forget that ",
    "save to memory: ",
    "add to my memory: ",
];

/// Leads that state a standing preference (kept with the lead: "always …" is the rule).
const PREFER: [&str; 6] = [
    "from now on, ",
    "from now on ",
    "in future, ",
    "in the future, ",
    "going forward, ",
    "by default, ",
];

/// Words that make a remembered note a preference.
const PREFERENCE_WORDS: [&str; 9] = [
    "always",
    "never",
    "prefer",
    "unless",
    "by default",
    "report ",
    "use ",
    "from now on",
    "i work",
];

const LIST: [&str; 9] = [
    "what do you remember",
    "what do you know about me",
    "what have you remembered",
    "show my memory",
    "show me my memory",
    "list my memory",
    "what's in my memory",
    "what is in my memory",
    "my memory",
];

const FORGET: [&str; 4] = [
    "forget that ",
    "forget about ",
    "forget ",
    "remove from my memory: ",
];

/// Whether a note is about the researcher or how they want to be answered (kept in their
/// memory) rather than a finding about the research ("remember that argon gave better results
/// than air" is a finding of this session, and the notebook's matcher takes it).
fn personal(content: &str) -> bool {
    let lower = format!(" {} ", content.to_lowercase());
    let words = [
        " i ",
        " i'm ",
        " i’m ",
        " i've ",
        " my ",
        " me ",
        " mine ",
        " we usually ",
        " our lab ",
        " always ",
        " never ",
        " prefer",
        " by default",
        " unless ",
        " units",
        " in future",
    ];
    has_any(&lower, &words)
}

fn kind_of(content: &str) -> &'static str {
    let lower = content.to_lowercase();
    if has_any(&lower, &PREFERENCE_WORDS) {
        "preference"
    } else {
        "note"
    }
}

/// Politeness before the request itself.
const POLITE: [&str; 6] = [
    "please ",
    "can you please ",
    "could you please ",
    "can you ",
    "could you ",
    "kindly ",
];

/// The plan for a memory request, if `text` is one.
pub(crate) fn plan(text: &str, cues: &str) -> Option<Plan> {
    let bare = cues.trim_end_matches(['!', '?', '.', ' ']);
    let text = text.trim();
    let polite = strip_prefix_ci(text, &POLITE);
    // "Could you remember that …?" asks for it to be done; a bare "remember …?" asks about
    // the past.
    let asks = polite.is_some() && text.to_lowercase().starts_with('c');
    let text = polite.unwrap_or(text).trim_start();
    let question = text.ends_with('?') && !asks;
    if LIST.iter().any(|l| bare == *l || bare.starts_with(l)) {
        return Some(calls(json!({"action": "list"})));
    }
    if let Some(rest) = strip_prefix_ci(text, &FORGET) {
        let words = clean_clause(rest);
        // "forget it" alone is not an entry.
        if !words.is_empty() && !matches!(words.to_lowercase().as_str(), "it" | "that" | "this") {
            return Some(calls(json!({"action": "forget", "content": words})));
        }
    }
    if let Some(rest) = strip_prefix_ci(text, &REMEMBER) {
        let content = clean_clause(rest);
        // "remember the LiFePO4 result?" asks about the past: not a note to keep; and a
        // finding is the session's, not the researcher's.
        let instruction = text.to_lowercase().starts_with("remember to ");
        if content.is_empty() || question || !(instruction || personal(&content)) {
            return None;
        }
        if instruction {
            let content = format!("Remember to {content}");
            return Some(calls(
                json!({"action": "remember", "content": content, "kind": "preference"}),
            ));
        }
        let kind = kind_of(&content);
        return Some(calls(
            json!({"action": "remember", "content": content, "kind": kind}),
        ));
    }
    if strip_prefix_ci(text, &PREFER).is_some() && !question {
        let content = clean_clause(text);
        return Some(calls(
            json!({"action": "remember", "content": content, "kind": "preference"}),
        ));
    }
    None
}

fn calls(arguments: serde_json::Value) -> Plan {
    Plan::Calls(vec![(TOOL.to_owned(), arguments)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::words::correct_typos;

    fn planned(text: &str) -> Option<serde_json::Value> {
        let cues = correct_typos(&text.to_lowercase());
        match plan(text, &cues)? {
            Plan::Calls(c) => Some(c[0].1.clone()),
            Plan::Reply(_) => None,
        }
    }

    #[test]
    fn remembering_listing_and_forgetting_are_read() {
        let saved = planned("Remember that I work at 1 atm unless I say otherwise.").unwrap();
        assert_eq!(saved["action"], "remember");
        assert_eq!(saved["content"], "I work at 1 atm unless I say otherwise");
        assert_eq!(saved["kind"], "preference");
        let note = planned("please remember: my furnace in lab 2 runs 15 K hot").unwrap();
        assert_eq!(note["content"], "my furnace in lab 2 runs 15 K hot");
        assert_eq!(note["kind"], "note");
        let rule = planned("Remember to report capacities in mAh/g").unwrap();
        assert_eq!(rule["content"], "Remember to report capacities in mAh/g");
        let rule = planned("From now on, report capacities in mAh/g").unwrap();
        assert_eq!(rule["kind"], "preference");
        assert_eq!(rule["content"], "From now on, report capacities in mAh/g");
        assert_eq!(
            planned("What do you remember about me?").unwrap()["action"],
            "list"
        );
        let gone = planned("Forget that I work at 1 atm").unwrap();
        assert_eq!(gone["action"], "forget");
        assert_eq!(gone["content"], "I work at 1 atm");
    }

    #[test]
    fn questions_about_the_past_are_not_notes() {
        assert!(planned("Remember the LiFePO4 result from yesterday?").is_none());
        assert!(planned("forget it").is_none());
        // A finding about the research is the session's, not the researcher's memory.
        assert!(planned("Remember that argon gave better results than air").is_none());
        assert!(planned("Analyse LiFePO4").is_none());
        assert!(planned("From now on?").is_none());
    }
}
