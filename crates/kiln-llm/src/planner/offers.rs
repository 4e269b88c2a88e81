//! What the planner says when it cannot map a request: what it understood, and the two or
//! three closest things it can do, each with the exact phrase to type.

use super::formula::Mentions;
use super::intent::Context;
use super::materials::UNKNOWN_PROPERTIES;

/// One thing the planner can do: the phrase to type (`{f}` is a material) and the words that
/// make it a close match.
struct Offer {
    phrase: &'static str,
    what: &'static str,
    words: &'static [&'static str],
    materials: bool,
    optimizer: bool,
}

const OFFERS: [Offer; 9] = [
    Offer {
        phrase: "Analyse {f}",
        what: "composition, molar mass, oxidation states and a validity screen",
        words: &[
            "what",
            "tell",
            "properties",
            "property",
            "mass",
            "weight",
            "composition",
            "band",
            "gap",
            "structure",
            "density",
            "formula",
            "about",
        ],
        materials: true,
        optimizer: false,
    },
    Offer {
        phrase: "Is {f} charge balanced?",
        what: "oxidation states and why the formula passes or fails the screen",
        words: &[
            "stable",
            "stability",
            "charge",
            "oxidation",
            "valid",
            "exist",
            "possible",
            "real",
            "make",
            "formation",
            "energy",
        ],
        materials: true,
        optimizer: false,
    },
    Offer {
        phrase: "Show materials similar to {f}",
        what: "charge-balanced ionic substitutes",
        words: &[
            "voltage",
            "capacity",
            "conductivity",
            "cathode",
            "anode",
            "electrolyte",
            "better",
            "alternative",
            "replace",
            "cheaper",
            "price",
            "cost",
            "toxic",
            "toxicity",
            "instead",
        ],
        materials: true,
        optimizer: false,
    },
    Offer {
        phrase: "Compare {f} and LiCoO2",
        what: "two formulas side by side",
        words: &[
            "compare",
            "versus",
            "difference",
            "better",
            "worse",
            "than",
            "which",
        ],
        materials: true,
        optimizer: false,
    },
    Offer {
        phrase: "How is the optimisation going?",
        what: "the best result, the model's fit and the latest suggestions",
        words: &[
            "plot", "chart", "graph", "progress", "model", "fit", "best", "result", "results",
            "curve", "against", "trend", "show",
        ],
        materials: false,
        optimizer: true,
    },
    Offer {
        phrase: "Suggest 3 experiments",
        what: "the next conditions to try",
        words: &[
            "next",
            "try",
            "run",
            "measure",
            "plan",
            "conditions",
            "where",
            "experiment",
            "experiments",
            "do",
        ],
        materials: false,
        optimizer: true,
    },
    Offer {
        phrase: "Define the space: temperature 300-900 °C, time 1-10 h; maximise capacity",
        what: "start a Bayesian optimisation",
        words: &[
            "optimise",
            "optimize",
            "optimum",
            "best",
            "temperature",
            "time",
            "vary",
            "range",
            "conditions",
            "improve",
            "maximise",
            "minimise",
            "plot",
            "against",
        ],
        materials: false,
        optimizer: false,
    },
    Offer {
        phrase: "Log: <what happened>",
        what: "a line in the session's notebook",
        words: &[
            "note", "notes", "log", "write", "remember", "save", "keep", "poem", "story", "text",
        ],
        materials: false,
        optimizer: false,
    },
    Offer {
        phrase: "Search my sessions for <words>",
        what: "earlier work across your sessions",
        words: &[
            "find",
            "earlier",
            "previous",
            "before",
            "history",
            "sessions",
            "look",
            "weather",
            "news",
            "paper",
            "literature",
            "who",
            "when",
        ],
        materials: false,
        optimizer: false,
    },
];

/// The reply for a request no rule maps.
pub(crate) fn reply(text: &str, cues: &str, context: &Context) -> String {
    let mentions = Mentions::scan(text);
    let material = mentions
        .compounds
        .first()
        .cloned()
        .or_else(|| context.focus.clone());
    let property = UNKNOWN_PROPERTIES
        .iter()
        .find(|p| cues.contains(**p))
        .copied();
    let optimised: Vec<&str> = context.space.as_ref().map_or_else(Vec::new, |space| {
        space
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .chain(space.objective.as_deref())
            .filter(|name| cues.contains(&name.replace('_', " ")))
            .collect()
    });
    let understood = match (&material, property, mentions.compounds.is_empty()) {
        _ if !optimised.is_empty() => format!(
            "I understood that this is about your optimisation ({}), but not as something I can run: without a language model I can report, suggest, predict and record, not draw plots or answer open questions.",
            optimised.join(", ")
        ),
        (Some(material), Some(property), _) => format!(
            "I understood a question about the {property} of {material}; none of my tools computes a {property}, so I cannot answer it without a language model."
        ),
        (Some(material), None, false) => format!(
            "I understood that this is about {material}, but not what you want done with it."
        ),
        (_, Some(property), _) => format!(
            "I understood a question about {property}, which none of my tools computes."
        ),
        _ => "I could not match that to anything I can do (I am the offline planner: no language model is configured).".to_owned(),
    };
    let words: Vec<&str> = cues
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut scored: Vec<(usize, usize)> = OFFERS
        .iter()
        .enumerate()
        .map(|(index, offer)| {
            let mut score = offer.words.iter().filter(|w| words.contains(w)).count() * 2;
            if offer.materials && material.is_some() {
                score += 1;
            }
            if offer.optimizer && context.space.is_some() {
                score += 2;
            }
            if property.is_some() && offer.materials {
                score += 1;
            }
            (score, index)
        })
        .collect();
    // Highest score first; ties keep the table's order.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let chosen: Vec<&Offer> = if scored.first().is_some_and(|(score, _)| *score > 0) {
        let cut = scored[0].0.div_ceil(3).max(1);
        scored
            .iter()
            .take(3)
            .filter(|(score, _)| *score >= cut)
            .map(|(_, index)| &OFFERS[*index])
            .collect()
    } else {
        vec![&OFFERS[0], &OFFERS[6], &OFFERS[8]]
    };
    let chosen: Vec<&Offer> = if chosen.len() < 2 {
        let mut more = chosen;
        for (_, index) in &scored {
            if more.len() >= 2 {
                break;
            }
            if !more.iter().any(|o| std::ptr::eq(*o, &OFFERS[*index])) {
                more.push(&OFFERS[*index]);
            }
        }
        more
    } else {
        chosen
    };
    let formula = material.as_deref().unwrap_or("LiFePO4");
    let lines: Vec<String> = chosen
        .iter()
        .map(|offer| {
            format!(
                "- \"{}\": {}",
                offer.phrase.replace("{f}", formula),
                offer.what
            )
        })
        .collect();
    format!(
        "{understood}\n\nThe closest things I can do:\n{}\n\nSay \"help\" for everything I understand.",
        lines.join("\n")
    )
}
