//! Bayesian-optimisation requests in the researcher's words, to `bayesian_optimizer` tool
//! arguments: a space from prose (dash ranges, units, categorical levels, the objective),
//! results in lab shorthand or pasted tables, suggestions, predictions, status and locks.

pub(crate) mod space;

use serde_json::{Map, Value, json};

use super::intent::Plan;
use super::quantity::{Token, lex};
use super::words::{has_any, starts_with_any};
pub(crate) use space::Space;

const SUGGEST_CUES: [&str; 26] = [
    "suggest",
    "what next",
    "what's next",
    "what now",
    "what should i do next",
    "recommend",
    "next experiment",
    "next point",
    "next run",
    "next sample",
    "measure next",
    "test next",
    "try next",
    "run next",
    "next round",
    "next batch",
    "next condition",
    "next two",
    "next three",
    "what should i try",
    "what should we try",
    "where should",
    "which conditions",
    "points to run",
    "more points",
    "best next",
];
const STATUS_CUES: [&str; 20] = [
    "status",
    "model reliable",
    "can i trust the model",
    "how good is the fit",
    "model quality",
    "how's the model",
    "model doing",
    "how are we doing",
    "how is it going",
    "how's it going",
    "how is the optimi",
    "how's the optimi",
    "how is the model",
    "how good is the model",
    "model any good",
    "progress",
    "best result",
    "so far",
    "best experiment",
    "convergence",
];
const PREDICT_CUES: [&str; 8] = [
    "predict",
    "model say",
    "expected ",
    "what would we get",
    "what would i get",
    "what would the",
    "estimate at",
    "would it give",
];
const DESIGN_CUES: [&str; 9] = [
    "initial design",
    "space-filling",
    "space filling",
    "sobol",
    "latin hypercube",
    "lhs",
    "random points",
    "random design",
    "start with",
];
const RESULT_CUES: [&str; 11] = [
    "got ", "measured", "gave", "obtained", "yielded", "result", "->", "→", "=>", "run", "sample",
];

/// What a sentence tells the optimiser matcher before planning.
pub(crate) struct Reading<'a> {
    pub text: &'a str,
    /// Lowercase with typos of keywords corrected.
    pub cues: &'a str,
    pub tokens: Vec<Token>,
    pub space: Option<&'a Space>,
}

impl<'a> Reading<'a> {
    pub(crate) fn new(text: &'a str, cues: &'a str, space: Option<&'a Space>) -> Self {
        Reading {
            text,
            cues,
            tokens: lex(text),
            space,
        }
    }

    fn has_units(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t, Token::Num { unit: Some(_), .. }))
    }
}

/// Returns the plan when the sentence is about the optimiser, `None` otherwise.
pub(crate) fn plan(reading: &Reading<'_>, names_compounds: bool) -> Option<Plan> {
    let cues = reading.cues;
    if let Some(csv) = table(reading.text) {
        if reading.space.is_none() {
            return Some(need_space());
        }
        return Some(call(json!({"action": "add_experiments", "csv": csv})));
    }
    let ranges = space::ranges(&reading.tokens);
    let objective = space::objective(&reading.tokens);
    let defines = !ranges.is_empty()
        && (objective.is_some()
            || has_any(
                cues,
                &[
                    "define",
                    "space",
                    "variable",
                    "vary",
                    "varying",
                    "parameter",
                    "set up",
                    "optimi",
                    "range",
                    "bayesian",
                ],
            ));
    if defines {
        return Some(space::define(reading, ranges, objective));
    }
    let explicit = has_any(
        cues,
        &[
            "optimi",
            "experiment",
            "bayesian",
            "acquisition",
            "the model",
        ],
    );
    if names_compounds && !explicit && !reading.has_units() {
        return None;
    }
    if starts_with_any(cues, &["lock", "freeze"])
        || has_any(cues, &[" lock ", " freeze ", "lock the", "lock in"])
    {
        return Some(lock(reading));
    }
    if has_any(cues, &DESIGN_CUES) {
        return Some(initial_design(reading));
    }
    // "what would 1300 °C, 5 h give?"
    let would_give = cues.contains("would") && cues.contains("give") && reading.has_units();
    if has_any(cues, &PREDICT_CUES) || would_give {
        return Some(predict(reading));
    }
    if let Some(plan) = results(reading) {
        return Some(plan);
    }
    if has_any(cues, &SUGGEST_CUES) || next_few(cues) {
        return Some(suggest(reading));
    }
    if has_any(cues, &STATUS_CUES) || cues.contains("optimi") || cues.contains("bayesian") {
        return Some(call(json!({"action": "status"})));
    }
    None
}

/// "next 2 experiments", "another 4 runs", "3 more points": a count of points asked for.
fn next_few(cues: &str) -> bool {
    const THINGS: [&str; 6] = [
        "experiment",
        "point",
        "run",
        "condition",
        "sample",
        "suggestion",
    ];
    const COUNTS: [&str; 7] = ["two", "three", "four", "five", "six", "few", "couple"];
    let words: Vec<&str> = cues
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let count = |w: &str| w.parse::<u32>().is_ok_and(|n| n > 0) || COUNTS.contains(&w);
    let thing = |w: &str| THINGS.iter().any(|t| w.starts_with(t));
    words.windows(3).any(|w| {
        (["next", "another", "more"].contains(&w[0]) && count(w[1]) && thing(w[2]))
            || (count(w[0]) && w[1] == "more" && thing(w[2]))
    })
}

fn call(arguments: Value) -> Plan {
    Plan::Calls(vec![("bayesian_optimizer".to_owned(), arguments)])
}

/// The answer when results or a table arrive before any space is defined.
pub(crate) fn need_space() -> Plan {
    Plan::Reply(
        "I need a search space first: tell me the variables and their ranges, for example \
         \"Define the space: temperature 300-900 °C, time 1-10 h; maximise capacity\". Then \
         send the results again and I will record them."
            .into(),
    )
}

fn lock(reading: &Reading<'_>) -> Plan {
    let cues = reading.cues;
    let what = if has_any(cues, &["data", "experiments", "results"]) {
        "data"
    } else if has_any(cues, &["acquisition", "strategy", "suggestion"]) {
        "acquisition"
    } else {
        "model"
    };
    let mut arguments = json!({"action": "lock", "what": what});
    if let Some((_, notes)) = reading.text.split_once(':') {
        let notes = super::words::clean_clause(notes);
        if !notes.is_empty() {
            arguments["notes"] = json!(notes);
        }
    }
    call(arguments)
}

fn initial_design(reading: &Reading<'_>) -> Plan {
    let cues = reading.cues;
    let method = if cues.contains("sobol") {
        "sobol"
    } else if cues.contains("random") {
        "random"
    } else {
        "lhs"
    };
    let mut arguments = json!({"action": "initial_design", "method": method});
    if let Some(n) = count(&reading.tokens) {
        arguments["n"] = json!(n);
    }
    call(arguments)
}

fn suggest(reading: &Reading<'_>) -> Plan {
    let cues = reading.cues;
    let words: Vec<String> = reading.tokens.iter().filter_map(Token::word).collect();
    let explicit = if cues.contains("qei") || cues.contains("q-ei") {
        Some("qEI")
    } else if cues.contains("ucb") || cues.contains("upper confidence") {
        Some("UCB")
    } else if cues.contains("probability of improvement") || words.iter().any(|w| w == "pi") {
        Some("PI")
    } else if cues.contains("expected improvement") || words.iter().any(|w| w == "ei") {
        Some("EI")
    } else {
        None
    };
    let q = count(&reading.tokens).filter(|q| *q > 1);
    let strategy = explicit.unwrap_or(if q.is_some() { "qEI" } else { "EI" });
    let mut arguments = json!({"action": "suggest", "strategy": strategy});
    if let Some(q) = q {
        arguments["q"] = json!(q);
    }
    call(arguments)
}

fn predict(reading: &Reading<'_>) -> Plan {
    let points: Vec<Value> = space::runs(&reading.tokens, reading.space)
        .into_iter()
        .filter(|run| !run.inputs.is_empty())
        .map(|run| Value::Object(run.inputs))
        .collect();
    if points.is_empty() {
        let example = reading.space.map_or_else(
            || "\"Predict temperature=650, time=3\"".to_owned(),
            |space| format!("\"What does the model predict at {}?\"", space.example()),
        );
        return Plan::Reply(format!(
            "Which point should I predict? For example: {example}."
        ));
    }
    call(json!({"action": "predict", "points": points}))
}

/// Experiments in the message, when it reports results; a question back when it reports a
/// result with a variable missing.
fn results(reading: &Reading<'_>) -> Option<Plan> {
    let cues = reading.cues;
    let assigned = reading.text.contains('=');
    let reported = has_any(cues, &RESULT_CUES) || assigned;
    let Some(space) = reading.space else {
        if !assigned && reported && reading.has_units() {
            return Some(need_space());
        }
        if !assigned {
            return None;
        }
        return assigned_experiments(reading);
    };
    let runs = space::runs(&reading.tokens, Some(space));
    let runs: Vec<space::Run> = runs
        .into_iter()
        .filter(|run| !run.inputs.is_empty())
        .collect();
    if runs.is_empty() || !runs.iter().any(|run| run.output.is_some()) {
        return (assigned && reported)
            .then(|| assigned_experiments(reading))
            .flatten();
    }
    let mut experiments = Vec::new();
    for run in runs {
        let missing: Vec<String> = space
            .variables
            .iter()
            .filter(|var| !run.inputs.contains_key(&var.name))
            .map(space::Variable::described)
            .collect();
        let Some(output) = run.output else {
            return Some(Plan::Reply(format!(
                "I read {}, but no measured {}. Write the result with it, for example \"{} -> 151\".",
                run.described(space),
                space.objective_name(),
                run.described(space)
            )));
        };
        if !missing.is_empty() {
            return Some(Plan::Reply(format!(
                "I read {} with {} = {}, but not {}: every run needs all the variables of the \
                 space. Send it again with {}, for example \"got 151 mAh/g at {}\".",
                run.described(space),
                space.objective_name(),
                space::number_text(output),
                missing.join(" or "),
                if missing.len() == 1 { "it" } else { "them" },
                space.example()
            )));
        }
        experiments.push(json!({"inputs": run.inputs, "output": space::json_number(output)}));
    }
    Some(call(
        json!({"action": "add_experiments", "experiments": experiments}),
    ))
}

/// `name=value` experiments (no space known): one per segment, the output after `->` or
/// named `output`/`result`/`yield`/`y`.
fn assigned_experiments(reading: &Reading<'_>) -> Option<Plan> {
    let runs = space::runs(&reading.tokens, None);
    let mut experiments = Vec::new();
    for run in runs.into_iter().filter(|run| !run.inputs.is_empty()) {
        let Some(output) = run.output else {
            return Some(Plan::Reply(format!(
                "I read the inputs {} but no measured output. Write it like \
                 \"temperature=600, time=2 -> 0.83\" or add \"output=0.83\".",
                inputs_text(&run.inputs)
            )));
        };
        experiments.push(json!({"inputs": run.inputs, "output": space::json_number(output)}));
    }
    if experiments.is_empty() {
        return None;
    }
    Some(call(
        json!({"action": "add_experiments", "experiments": experiments}),
    ))
}

fn inputs_text(inputs: &Map<String, Value>) -> String {
    inputs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first small count in the message (`4`, `four`): a number of points, not a quantity
/// with a unit.
fn count(tokens: &[Token]) -> Option<u64> {
    const WORDS: [&str; 10] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    tokens.iter().find_map(|token| match token {
        Token::Num { value, unit: None }
            if value.fract() == 0.0 && (1.0..=1000.0).contains(value) =>
        {
            Some(*value as u64)
        }
        Token::Word(word) => WORDS
            .iter()
            .position(|w| w.eq_ignore_ascii_case(word))
            .map(|i| i as u64 + 1),
        _ => None,
    })
}

/// A pasted table (comma, tab or semicolon separated; a header of names, then rows) as CSV
/// with plain column names: units in brackets are dropped, spaces become `_`.
fn table(text: &str) -> Option<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let separator = [',', '\t', ';']
        .into_iter()
        .find(|sep| lines.iter().filter(|l| l.contains(*sep)).count() >= 2)?;
    let header_at = lines.iter().position(|line| {
        let cells: Vec<&str> = line.split(separator).map(str::trim).collect();
        cells.len() >= 2 && cells.iter().all(|c| c.starts_with(char::is_alphabetic))
    })?;
    let header: Vec<String> = lines[header_at]
        .split(separator)
        .map(|cell| {
            let name = cell.split(['(', '[']).next().unwrap_or(cell).trim();
            name.to_lowercase()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join("_")
        })
        .collect();
    let rows: Vec<String> = lines[header_at + 1..]
        .iter()
        .map(|line| {
            line.split(separator)
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(",")
        })
        .take_while(|row| row.split(',').count() == header.len())
        .collect();
    let numeric_row = rows
        .iter()
        .any(|row| row.split(',').any(|cell| cell.parse::<f64>().is_ok()));
    if rows.is_empty() || !numeric_row {
        return None;
    }
    Some(format!("{}\n{}", header.join(","), rows.join("\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(text: &str) -> Value {
        let cues = super::super::words::correct_typos(&text.to_lowercase());
        match plan(&Reading::new(text, &cues, None), false) {
            Some(Plan::Calls(calls)) => {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0].0, "bayesian_optimizer");
                calls[0].1.clone()
            }
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn experiments_suggestions_and_status() {
        assert_eq!(
            arguments(
                "Add experiments: temperature=600, time=2 -> 0.83; temperature=700, time=4, output=0.91"
            ),
            json!({"action": "add_experiments", "experiments": [
                {"inputs": {"temperature": 600, "time": 2}, "output": 0.83},
                {"inputs": {"temperature": 700, "time": 4}, "output": 0.91},
            ]})
        );
        assert_eq!(
            arguments("suggest two points with UCB"),
            json!({"action": "suggest", "strategy": "UCB", "q": 2})
        );
        assert_eq!(
            arguments("How is the optimizer doing?"),
            json!({"action": "status"})
        );
    }

    #[test]
    fn missing_pieces_are_asked_for() {
        for text in ["Define the search space", "Add experiment temperature=600"] {
            let cues = text.to_lowercase();
            assert!(
                matches!(
                    plan(&Reading::new(text, &cues, None), false),
                    Some(Plan::Reply(_)) | None
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn tables_become_csv_with_plain_names() {
        assert_eq!(
            table("runs:\nTemperature (°C);time [h];capacity\n600;2;120\n700;5;151").as_deref(),
            Some("temperature,time,capacity\n600,2,120\n700,5,151")
        );
        assert_eq!(table("a, b and c\nd, e"), None);
    }
}
