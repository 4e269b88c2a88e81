//! From a researcher's sentence to tool calls: the order in which request kinds are tried,
//! the context they are resolved against ("it" is the focus; "them" the last materials; the
//! optimiser's space), and the planner's help text. Pure and deterministic.

use serde_json::Value;

use super::formula::Mentions;
use super::optimizer::{self, Reading, Space};
use super::words::{correct_typos, has_any};
use super::{materials, memory, notebook, offers, search};

/// What the planner will do with a user message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Call these tools (name, arguments), all at once.
    Calls(Vec<(String, Value)>),
    /// Answer directly with this text.
    Reply(String),
}

/// What a request is resolved against, gathered from the request's context and history.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Context {
    /// The material "it" means: the session's focus, or the last one in the conversation.
    pub focus: Option<String>,
    /// The last materials tool action (so "and LiMnPO4?" repeats it).
    pub previous_action: Option<String>,
    /// The materials of the last materials request (so "compare them" has two).
    pub previous_materials: Vec<String>,
    /// The optimiser's space, from the session's state or the conversation.
    pub space: Option<Space>,
    /// The findings recorded on the branch, newest first.
    pub findings: Vec<String>,
}

const FOUND_CUES: [&str; 10] = [
    "what have we found",
    "what have we discovered",
    "what did we find",
    "what did we discover",
    "what have i found",
    "our findings",
    "list the findings",
    "list findings",
    "list the discoveries",
    "show the findings",
];

/// What the planner can do, said on "help" and quoted in the README.
pub(crate) const CAPABILITIES: &str = "I am Kiln's offline planner (no language model is \
configured), so I understand a fixed set of requests:\n\
- materials: \"Analyse LiFePO4\", \"Is LiFePO4 charge balanced?\", \"What could replace Co in LiCoO2?\", \
\"LiFePO4 vs LiMn2O4\", \"a cathode with higher voltage than LiFePO4\"\n\
- optimisation: \"Define the space: temperature 300-900 °C, time 1-10 h, atmosphere air or argon; maximise capacity\", \
results such as \"got 151 mAh/g at 700 °C for 5 h\" or a pasted CSV table, \"Suggest 4 experiments\", \
\"What does the model predict at temperature=650, time=3?\", \"How is the optimisation going?\", \"Lock the model\"\n\
- notebook: \"Log: annealed at 600 C for 2 h\", \"Set params: batch size 32\", \"Log metric capacity 151\"\n\
- findings: \"We found that carbon coating doubles the rate capability\"\n\
- search: \"Search the session for olivine\", \"Search all my sessions for NASICON\"\n\
- memory across sessions: \"Remember that I work at 1 atm\", \"What do you remember?\", \"Forget that I work at 1 atm\"\n\
Configure a language model (the [llm] section, or `kiln serve --llm-base-url`) for open-ended questions.";

const GREETINGS: [&str; 8] = [
    "hello",
    "hi",
    "hey",
    "good morning",
    "help",
    "what can you do",
    "what do you do",
    "how do i use",
];
const THANKS: [&str; 5] = ["thanks", "thank you", "cheers", "great", "perfect"];

/// Returns the plan for `text` in `context`.
pub(crate) fn plan(text: &str, context: &Context) -> Plan {
    let text = text.trim();
    let lower = text.to_lowercase();
    let cues = correct_typos(&lower);
    let bare = cues.trim_end_matches(['!', '?', '.', ' ']);
    if bare.is_empty() || GREETINGS.contains(&bare) || bare.starts_with("what can you") {
        return Plan::Reply(CAPABILITIES.to_owned());
    }
    if THANKS
        .iter()
        .any(|t| bare == *t || bare.starts_with(&format!("{t} ")))
    {
        return Plan::Reply("You're welcome. Say \"help\" to see what else I can do.".to_owned());
    }
    // All of them; "what did we find about cobalt?" is a search.
    if (has_any(&cues, &FOUND_CUES)
        || has_any(&cues, &["show the discoveries", "list discoveries"]))
        && !has_any(&cues, &[" about ", " on ", " regarding ", " for "])
    {
        return Plan::Reply(match context.findings.as_slice() {
            [] => "No findings are recorded on this branch yet. Record one in your words, for \
                   example \"We found that carbon coating doubles the rate capability\"."
                .to_owned(),
            found => format!(
                "Findings recorded on this branch, newest first:\n{}",
                found
                    .iter()
                    .map(|f| format!("- {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        });
    }
    if let Some(plan) = memory::plan(text, &cues) {
        return plan;
    }
    let reading = Reading::new(text, &cues, context.space.as_ref());
    let has_ranges = !optimizer::space::ranges(&reading.tokens).is_empty();
    if let Some(plan) = notebook::structured(text, &cues, has_ranges) {
        return plan;
    }
    if let Some(plan) = notebook::finding(text, &cues, context.focus.as_deref()) {
        return plan;
    }
    if let Some(plan) = notebook::log_line(text, &cues) {
        return plan;
    }
    if search::is_search(&cues) {
        return search::plan(text, &cues);
    }
    let mentions = Mentions::scan(text);
    let names_materials = !mentions.compounds.is_empty() || !mentions.unknown.is_empty();
    if let Some(plan) = optimizer::plan(&reading, names_materials) {
        return plan;
    }
    if let Some(plan) = materials::plan(text, &cues, context) {
        return plan;
    }
    if has_any(&cues, &["define", "search space", "design space"]) {
        return Plan::Reply(
            "I could not read any variable ranges. Write them like \"Define the space: \
             temperature 300-900 °C, time 1-10 h, atmosphere air or argon; maximise capacity\"."
                .into(),
        );
    }
    Plan::Reply(offers::reply(text, &cues, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planner's own help text must not promise a request it does not understand.
    #[test]
    fn every_example_in_the_help_text_is_understood() {
        let context = Context {
            focus: Some("LiFePO4".into()),
            space: Space::from_arguments(&serde_json::json!({"variables": [
                {"name": "temperature", "unit": "°C"}, {"name": "time", "unit": "h"}
            ], "objective": {"name": "capacity"}})),
            ..Context::default()
        };
        let examples: Vec<&str> = CAPABILITIES.split('"').skip(1).step_by(2).collect();
        assert!(examples.len() >= 15, "{examples:?}");
        for example in examples {
            let plan = plan(example, &context);
            assert!(
                matches!(plan, Plan::Calls(_)),
                "the help text offers {example:?}, but the planner answers: {plan:?}"
            );
        }
    }
}
