//! Search requests: what to look for, and whether in this session or across all of the
//! researcher's sessions.

use serde_json::json;

use super::intent::Plan;
use super::words::{clean_clause, has_any, starts_with_any, strip_prefix_ci, strip_suffix_ci};

const LEADS: [&str; 40] = [
    "search the session for",
    "search this session for",
    "search the history for",
    "search all my sessions for",
    "search all sessions for",
    "search my other sessions for",
    "search my sessions for",
    "search other sessions for",
    "search everything for",
    "search for",
    "search",
    "grep the history for",
    "grep the session for",
    "grep for",
    "grep",
    "look up",
    "find everything about",
    "find everything on",
    "find all about",
    "find",
    "what did we find about",
    "what did we say about",
    "what did we learn about",
    "when did we talk about",
    "when did we discuss",
    "where did we talk about",
    "where did we discuss",
    "when did we",
    "where did we",
    "what did we",
    "what did i",
    "did we ever",
    "did we",
    "did i ever",
    "did i",
    "have we ever",
    "have we",
    "have i ever",
    "have i",
    "any earlier mention of",
];
const VERBS: [&str; 16] = [
    "try ",
    "tried ",
    "test ",
    "tested ",
    "use ",
    "used ",
    "measure ",
    "measured ",
    "look at ",
    "looked at ",
    "worked on ",
    "work on ",
    "discuss ",
    "discussed ",
    "talk about ",
    "mention ",
];
const ALL_SESSIONS: [&str; 9] = [
    "my sessions",
    "all sessions",
    "other session",
    "previous session",
    "any session",
    "across sessions",
    "past sessions",
    "earlier sessions",
    "everything for",
];

/// Returns true when the message asks to search past work.
pub(crate) fn is_search(cues: &str) -> bool {
    if cues.starts_with("search space") {
        return false;
    }
    starts_with_any(cues, &LEADS[..39])
        && !cues.starts_with("find ")
        && !cues.starts_with("find analog")
        || cues.starts_with("find ")
            && has_any(cues, &["session", "earlier", "before", "we ", "everything"])
        || starts_with_any(
            cues,
            &[
                "any earlier mention",
                "any mention",
                "in previous sessions",
                "in my other sessions",
                "in other sessions",
            ],
        )
}

/// Plans the search.
pub(crate) fn plan(text: &str, cues: &str) -> Plan {
    let mut query = text.trim();
    if let Some(rest) = strip_prefix_ci(
        query,
        &[
            "in previous sessions,",
            "in my other sessions,",
            "in other sessions,",
            "in previous sessions",
            "any mention of",
        ],
    ) {
        query = rest.trim();
    }
    query = strip_prefix_ci(query, &LEADS).unwrap_or(query).trim();
    query = strip_prefix_ci(query, &VERBS).unwrap_or(query).trim();
    let mut query = clean_clause(query);
    for suffix in [
        " in the session",
        " in this session",
        " in my sessions",
        " in all my sessions",
        " in any other session",
        " in any other sessions",
        " in other sessions",
        " in my other sessions",
        " in previous sessions",
        " already",
        " earlier",
        " before",
        " previously",
    ] {
        query = strip_suffix_ci(&query, suffix);
    }
    if query.is_empty() {
        return Plan::Reply("What should I search for? For example: \"Search the session for olivine\" or \"Search all my sessions for NASICON\".".into());
    }
    let mut arguments = json!({"query": query});
    if has_any(cues, &ALL_SESSIONS) {
        arguments["scope"] = json!("all");
    }
    Plan::Calls(vec![("session_search".to_owned(), arguments)])
}
