//! From a researcher's sentence to tool calls: which request it is, which material it is about
//! ("it" is the session's focus), and the tool arguments. Pure and deterministic.

use serde_json::{Value, json};

use super::discovery::detect_discoveries;
use super::formula::find_formulas;
use super::optimizer;

/// What the planner will do with a user message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Call these tools (name, arguments), all at once.
    Calls(Vec<(String, Value)>),
    /// Answer directly with this text.
    Reply(String),
}

/// What the planner can do, said when it cannot help.
pub(crate) const CAPABILITIES: &str = "I am Kiln's offline planner (no language model is \
configured), so I understand a fixed set of requests:\n\
- analyse a formula: \"Analyse LiFePO4\"\n\
- oxidation states and validity: \"What about its oxidation states?\", \"Is LiFePO4 charge balanced?\"\n\
- similar materials: \"Show me similar cathode materials\"\n\
- compare two formulas: \"Compare LiFePO4 and LiCoO2\"\n\
- Bayesian optimisation: \"Define the space: temperature from 300 to 900, time from 1 to 10; maximize conductivity\", \
\"Add experiment temperature=600, time=2 -> 0.83\", \"Suggest the next 3 experiments\", \"Optimizer status\"\n\
- record a discovery: \"Record that the olivine structure seems crucial for Li+ mobility\"\n\
- search this session: \"Search the session for olivine\"\n\
- log to the notebook: \"Log: annealed at 600 C for 2 h\"\n\
Configure an LLM provider in the [llm] section for open-ended questions.";

fn has_any(lower: &str, cues: &[&str]) -> bool {
    cues.iter().any(|cue| lower.contains(cue))
}

fn starts_with_any(lower: &str, cues: &[&str]) -> bool {
    cues.iter().any(|cue| lower.starts_with(cue))
}

/// Returns the plan for `text`, given the focus material (explicit or from history).
pub(crate) fn plan(text: &str, focus: Option<&str>) -> Plan {
    let text = text.trim();
    let lower = text.to_lowercase();
    let formulas = find_formulas(text);

    if is_record(&lower) {
        return record_discovery(text, &lower, focus);
    }
    if is_notebook(&lower) {
        let message = notebook_message(text, &lower);
        if message.is_empty() {
            return Plan::Reply("What should I write in the notebook? For example: \"Log: annealed at 600 C for 2 h\".".into());
        }
        return call("notebook", json!({"action": "log", "message": message}));
    }
    if is_search(&lower) {
        let query = search_query(text, &lower);
        if query.is_empty() {
            return Plan::Reply("What should I search this session for? For example: \"Search the session for olivine\".".into());
        }
        return call("session_search", json!({"query": query}));
    }
    if optimizer::is_optimizer_request(&lower) {
        return optimizer::plan(text, &lower);
    }
    if has_any(
        &lower,
        &[
            "compare",
            " vs ",
            " vs. ",
            "versus",
            "difference between",
            "differ from",
        ],
    ) {
        let mut pair: Vec<String> = formulas.iter().take(2).cloned().collect();
        if pair.len() == 1
            && let Some(focus) = focus.filter(|focus| *focus != pair[0])
        {
            pair.insert(0, focus.to_owned());
        }
        if pair.len() < 2 {
            return Plan::Reply("Which two materials should I compare? For example: \"Compare LiFePO4 and LiCoO2\".".into());
        }
        return call(
            "materials_analyzer",
            json!({"action": "compare", "formulas": pair}),
        );
    }
    let action = if has_any(
        &lower,
        &[
            "similar",
            "alternative",
            "substitut",
            "analog",
            "related material",
            "replacement",
            "like it",
        ],
    ) {
        Some("similar")
    } else if has_any(
        &lower,
        &[
            "oxidation",
            "valid",
            "charge",
            "neutral",
            "balanced",
            "plausib",
            "feasib",
            "valence",
        ],
    ) {
        Some("validate")
    } else if !formulas.is_empty()
        || has_any(
            &lower,
            &[
                "analy",
                "tell me about",
                "propert",
                "molar mass",
                "composition",
                "describe",
                "look at",
                "more about",
                "about it",
            ],
        )
    {
        Some("analyze")
    } else {
        None
    };
    let Some(action) = action else {
        return Plan::Reply(format!(
            "I could not map that request to something I can do.\n\n{CAPABILITIES}"
        ));
    };
    let subjects: Vec<String> = if formulas.is_empty() {
        focus
            .map(|focus| vec![focus.to_owned()])
            .unwrap_or_default()
    } else {
        formulas
    };
    if subjects.is_empty() {
        return Plan::Reply(
            "Which material do you mean? There is no current focus material in this session yet: \
             name a formula, for example \"Analyse LiFePO4\"."
                .into(),
        );
    }
    Plan::Calls(
        subjects
            .into_iter()
            .map(|formula| {
                (
                    "materials_analyzer".to_owned(),
                    json!({"action": action, "formula": formula}),
                )
            })
            .collect(),
    )
}

fn call(tool: &str, arguments: Value) -> Plan {
    Plan::Calls(vec![(tool.to_owned(), arguments)])
}

fn is_record(lower: &str) -> bool {
    let explicit = starts_with_any(
        lower,
        &[
            "record that",
            "record:",
            "record the finding",
            "record the discovery",
            "record the observation",
            "remember that",
            "note the discovery",
            "note the finding",
        ],
    ) || has_any(
        lower,
        &[
            "as a discovery",
            "as a finding",
            "record a discovery",
            "record discovery",
            "record this discovery",
        ],
    );
    explicit
        || (lower.starts_with("record ") && !lower.contains('=') && !lower.contains("experiment"))
}

fn record_discovery(text: &str, lower: &str, focus: Option<&str>) -> Plan {
    let prefixes = [
        "record that",
        "record the finding that",
        "record the discovery that",
        "record the observation that",
        "record the finding",
        "record the discovery",
        "record the observation",
        "record a discovery:",
        "record a discovery that",
        "record discovery:",
        "record:",
        "remember that",
        "note the discovery that",
        "note the finding that",
        "record",
    ];
    let mut description = text;
    for prefix in prefixes {
        if lower.starts_with(prefix) {
            description = text.get(prefix.len()..).unwrap_or_default();
            break;
        }
    }
    let description = clean_clause(description.trim_start_matches([':', ' ']));
    let description = strip_suffix_ci(&description, " as a discovery");
    let description = strip_suffix_ci(&description, " as a finding");
    if description.is_empty() {
        return Plan::Reply("What is the discovery? For example: \"Record that the olivine structure seems crucial for Li+ mobility\".".into());
    }
    let description = capitalise(&description);
    let mut materials = find_formulas(&description);
    if materials.is_empty() {
        materials.extend(focus.map(str::to_owned));
    }
    let mut arguments = json!({"description": description});
    if let Some(detected) = detect_discoveries(&description).into_iter().next() {
        arguments["type"] = json!(detected.category.as_str());
        arguments["confidence"] = json!(detected.confidence);
    }
    if !materials.is_empty() {
        arguments["materials"] = json!(materials);
    }
    call("record_discovery", arguments)
}

fn is_notebook(lower: &str) -> bool {
    lower.contains("notebook")
        || starts_with_any(
            lower,
            &[
                "log ",
                "log:",
                "log that",
                "write down",
                "jot down",
                "note:",
                "note that",
            ],
        )
}

fn notebook_message(text: &str, lower: &str) -> String {
    if let Some(colon) = text.find(':') {
        let after = text.get(colon + 1..).unwrap_or_default().trim();
        if !after.is_empty() {
            return clean_clause(after);
        }
    }
    let prefixes = [
        "log in the notebook that",
        "log to the notebook that",
        "write in the notebook that",
        "add to the notebook that",
        "add to the notebook",
        "note in the notebook that",
        "log that",
        "write down that",
        "write down",
        "jot down that",
        "jot down",
        "note that",
        "log",
    ];
    let mut message = text;
    for prefix in prefixes {
        if lower.starts_with(prefix) {
            message = text.get(prefix.len()..).unwrap_or_default();
            break;
        }
    }
    let mut message = clean_clause(message);
    for suffix in [
        " in the notebook",
        " to the notebook",
        " in my notebook",
        " to my notebook",
    ] {
        message = strip_suffix_ci(&message, suffix);
    }
    message
}

fn is_search(lower: &str) -> bool {
    lower.starts_with("search")
        || lower.starts_with("find ") && has_any(lower, &["session", "earlier", "before", "we "])
        || starts_with_any(lower, &["what did we", "did we", "have we", "when did we"])
}

fn search_query(text: &str, lower: &str) -> String {
    let markers = [
        "search the session for",
        "search this session for",
        "search the history for",
        "search for",
        "search",
        "find",
        "what did we find about",
        "what did we say about",
        "what did we",
        "did we",
        "have we",
        "when did we",
    ];
    let mut query = text;
    for marker in markers {
        if lower.starts_with(marker) {
            query = text.get(marker.len()..).unwrap_or_default();
            break;
        }
    }
    let mut query = clean_clause(query);
    for suffix in [" in the session", " in this session", " earlier", " before"] {
        query = strip_suffix_ci(&query, suffix);
    }
    query
}

/// Trims spaces, quotes and final punctuation.
fn clean_clause(text: &str) -> String {
    text.trim()
        .trim_matches(['"', '\'', '“', '”'])
        .trim_end_matches(['.', '!', '?'])
        .trim()
        .to_owned()
}

fn strip_suffix_ci(text: &str, suffix: &str) -> String {
    let lower = text.to_lowercase();
    if lower.ends_with(suffix) && text.len() >= suffix.len() && lower.len() == text.len() {
        text.get(..text.len() - suffix.len())
            .unwrap_or(text)
            .trim_end()
            .to_owned()
    } else {
        text.to_owned()
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(plan: Plan) -> Vec<(String, Value)> {
        match plan {
            Plan::Calls(calls) => calls,
            Plan::Reply(text) => panic!("expected calls, got reply: {text}"),
        }
    }

    /// The planner's own help text (said when it cannot help, and quoted in the README) must
    /// not promise a request it does not understand.
    #[test]
    fn every_example_in_the_help_text_is_understood() {
        let examples: Vec<&str> = CAPABILITIES.split('"').skip(1).step_by(2).collect();
        assert!(examples.len() >= 10, "{examples:?}");
        for example in examples {
            let plan = plan(example, Some("LiFePO4"));
            assert!(
                matches!(plan, Plan::Calls(_)),
                "the help text offers {example:?}, but the planner answers: {plan:?}"
            );
        }
    }

    #[test]
    fn materials_requests() {
        let focus = Some("LiFePO4");
        type Case<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, Value)>);
        let cases: Vec<Case> = vec![
            (
                "Analyse LiFePO4",
                None,
                vec![(
                    "materials_analyzer",
                    json!({"action": "analyze", "formula": "LiFePO4"}),
                )],
            ),
            (
                "analyze Fe2O3 and Fe3O4",
                None,
                vec![
                    (
                        "materials_analyzer",
                        json!({"action": "analyze", "formula": "Fe2O3"}),
                    ),
                    (
                        "materials_analyzer",
                        json!({"action": "analyze", "formula": "Fe3O4"}),
                    ),
                ],
            ),
            (
                "What about its oxidation states?",
                focus,
                vec![(
                    "materials_analyzer",
                    json!({"action": "validate", "formula": "LiFePO4"}),
                )],
            ),
            (
                "Is this material charge balanced?",
                focus,
                vec![(
                    "materials_analyzer",
                    json!({"action": "validate", "formula": "LiFePO4"}),
                )],
            ),
            (
                "Show me similar cathode materials",
                focus,
                vec![(
                    "materials_analyzer",
                    json!({"action": "similar", "formula": "LiFePO4"}),
                )],
            ),
            (
                "Compare LiFePO4 and LiCoO2",
                None,
                vec![(
                    "materials_analyzer",
                    json!({"action": "compare", "formulas": ["LiFePO4", "LiCoO2"]}),
                )],
            ),
            (
                "How does it compare with LiMn2O4?",
                focus,
                vec![(
                    "materials_analyzer",
                    json!({"action": "compare", "formulas": ["LiFePO4", "LiMn2O4"]}),
                )],
            ),
            (
                "Tell me more about it",
                focus,
                vec![(
                    "materials_analyzer",
                    json!({"action": "analyze", "formula": "LiFePO4"}),
                )],
            ),
        ];
        for (text, focus, expected) in cases {
            let got = calls(plan(text, focus));
            let expected: Vec<(String, Value)> = expected
                .into_iter()
                .map(|(name, args)| (name.to_owned(), args))
                .collect();
            assert_eq!(got, expected, "{text}");
        }
    }

    #[test]
    fn session_tools() {
        let got = calls(plan(
            "Record that the olivine structure seems crucial for Li+ mobility",
            Some("LiFePO4"),
        ));
        assert_eq!(got[0].0, "record_discovery");
        assert_eq!(
            got[0].1["description"],
            "The olivine structure seems crucial for Li+ mobility"
        );
        assert_eq!(got[0].1["type"], "structure_property");
        assert_eq!(got[0].1["materials"], json!(["LiFePO4"]));
        assert!(
            got[0].1["confidence"]
                .as_f64()
                .is_some_and(|c| c > 0.0 && c < 0.7)
        );

        let got = calls(plan("Log: annealed at 600 C for 2 h.", None));
        assert_eq!(
            got,
            vec![(
                "notebook".to_owned(),
                json!({"action": "log", "message": "annealed at 600 C for 2 h"})
            )]
        );
        let got = calls(plan(
            "Write down that the furnace drifted in the notebook",
            None,
        ));
        assert_eq!(got[0].1["message"], "the furnace drifted");

        let got = calls(plan("Search the session for olivine", None));
        assert_eq!(
            got,
            vec![("session_search".to_owned(), json!({"query": "olivine"}))]
        );
        let got = calls(plan("What did we find about cobalt?", None));
        assert_eq!(got[0].1["query"], "cobalt");
    }

    #[test]
    fn says_plainly_what_it_cannot_do() {
        let cases = [
            ("Write me a poem about the sea", "could not map"),
            ("What about its oxidation states?", "no current focus"),
            ("Compare it", "Which two materials"),
            ("Search", "What should I search"),
        ];
        for (text, expected) in cases {
            match plan(text, None) {
                Plan::Reply(reply) => assert!(reply.contains(expected), "{text}: {reply}"),
                Plan::Calls(calls) => panic!("{text}: unexpected calls {calls:?}"),
            }
        }
    }
}
