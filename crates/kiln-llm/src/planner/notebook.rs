//! Notebook and findings requests: log lines, parameters, metrics, and discoveries written
//! in the researcher's words ("we found that…", "key insight - …").

use serde_json::{Map, Value, json};

use super::discovery::detect_discoveries;
use super::formula::find_formulas;
use super::intent::Plan;
use super::optimizer::space::json_number;
use super::quantity::{Token, lex};
use super::words::{
    capitalise, clean_clause, has_any, snake, starts_with_any, strip_prefix_ci, strip_suffix_ci,
};

fn call(tool: &str, arguments: Value) -> Plan {
    Plan::Calls(vec![(tool.to_owned(), arguments)])
}

/// Parameters, metrics, listing: requests for the notebook's structured parts.
pub(crate) fn structured(text: &str, cues: &str, has_ranges: bool) -> Option<Plan> {
    let params_cue = starts_with_any(
        cues,
        &[
            "set params",
            "set param",
            "set the param",
            "params:",
            "param:",
            "parameters:",
            "record the parameter",
            "record parameter",
            "log parameter",
            "log the parameter",
            "log param",
            "log params",
            "set parameter",
            "set parameters",
        ],
    );
    if params_cue && !has_ranges {
        return Some(set_params(text));
    }
    if has_any(
        cues,
        &[
            "what parameters",
            "which parameters",
            "show the param",
            "list the param",
            "show params",
            "show parameters",
            "my parameters",
        ],
    ) {
        return Some(call("notebook", json!({"action": "get_params"})));
    }
    let metric_cue = starts_with_any(
        cues,
        &[
            "log metric",
            "log the metric",
            "metric:",
            "track ",
            "record metric",
            "record the metric",
        ],
    );
    let tokens = lex(text);
    let has_number = tokens.iter().any(|t| matches!(t, Token::Num { .. }));
    if (metric_cue || at_step(&tokens).is_some()) && has_number {
        return log_metric(&tokens);
    }
    if cues.contains("metric") && !has_number {
        let words: Vec<String> = tokens.iter().filter_map(Token::word).collect();
        let at = words.iter().position(|w| w == "metric")?;
        let skip = [
            "the", "show", "plot", "read", "how", "has", "what", "is", "my", "of",
        ];
        let name = words[..at]
            .iter()
            .rev()
            .find(|w| !skip.contains(&w.as_str()))
            .or_else(|| words.get(at + 1).filter(|w| !skip.contains(&w.as_str())))?;
        return Some(call(
            "notebook",
            json!({"action": "read_metric", "name": name}),
        ));
    }
    if has_any(
        cues,
        &[
            "in the notebook?",
            "show the notebook",
            "notebook contents",
            "list the notebook",
            "show me the notebook",
        ],
    ) {
        return Some(call("notebook", json!({"action": "list"})));
    }
    None
}

fn set_params(text: &str) -> Plan {
    let body = text
        .split_once(':')
        .map(|(_, rest)| rest)
        .or_else(|| {
            strip_prefix_ci(
                text,
                &[
                    "set the parameters",
                    "set the parameter",
                    "set parameters",
                    "set parameter",
                    "set params",
                    "set param",
                    "record the parameter",
                    "record parameter",
                    "log the parameters",
                    "log the parameter",
                    "log parameters",
                    "log parameter",
                    "log params",
                    "log param",
                ],
            )
        })
        .unwrap_or(text);
    let mut params = Map::new();
    for part in body.split([',', ';']) {
        let part = clean_clause(part);
        let (name, value) = if let Some((name, value)) = part.split_once('=') {
            (name.trim().to_owned(), value.trim().to_owned())
        } else if let Some(at) = part.to_lowercase().find(" to ") {
            (
                part[..at].trim().to_owned(),
                part[at + 4..].trim().to_owned(),
            )
        } else {
            // "batch size 32": the name is the words before the first number.
            let at = part
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(part.len());
            (part[..at].trim().to_owned(), part[at..].trim().to_owned())
        };
        if name.is_empty() || value.is_empty() {
            continue;
        }
        let name = snake(&name.split_whitespace().collect::<Vec<_>>());
        let value = value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map_or_else(|| json!(value), json_number);
        params.insert(name, value);
    }
    if params.is_empty() {
        return Plan::Reply(
            "Which parameters should I set? For example: \"Set params: batch size 32, furnace=tube\"."
                .into(),
        );
    }
    call(
        "notebook",
        json!({"action": "set_params", "params": params}),
    )
}

fn log_metric(tokens: &[Token]) -> Option<Plan> {
    let skip = [
        "log", "metric", "the", "track", "record", "a", "of", "is", "was", "our", "my",
    ];
    let value_at = tokens.iter().position(|t| matches!(t, Token::Num { .. }))?;
    let Token::Num { value, .. } = tokens[value_at] else {
        return None;
    };
    let words: Vec<String> = tokens[..value_at]
        .iter()
        .filter_map(Token::word)
        .filter(|w| !skip.contains(&w.as_str()))
        .collect();
    if words.is_empty() {
        return Some(Plan::Reply(
            "Which metric is that? For example: \"Log metric capacity 151\".".into(),
        ));
    }
    let name = snake(&words.iter().map(String::as_str).collect::<Vec<_>>());
    let mut arguments = json!({"action": "log_metric", "name": name, "value": json_number(value)});
    if let Some(step) = at_step(tokens) {
        arguments["step"] = json!(step);
    }
    Some(call("notebook", arguments))
}

/// The step a metric was measured at: `step 4`, `at cycle 10`, `epoch 3`, `iteration 7`.
fn at_step(tokens: &[Token]) -> Option<u64> {
    const STEPS: [&str; 5] = ["step", "cycle", "epoch", "iteration", "iter"];
    let at = tokens
        .iter()
        .position(|t| t.word().is_some_and(|w| STEPS.contains(&w.as_str())))?;
    match tokens.get(at + 1) {
        Some(Token::Num { value, unit: None }) if value.fract() == 0.0 && *value >= 0.0 => {
            Some(*value as u64)
        }
        _ => None,
    }
}

const FINDING_CUES: [&str; 26] = [
    "record the finding that",
    "record the discovery that",
    "record the observation that",
    "record the finding",
    "record the discovery",
    "record the observation",
    "record a discovery that",
    "record a discovery:",
    "record discovery:",
    "record that",
    "record:",
    "remember that",
    "remember this:",
    "remember:",
    "note the discovery that",
    "note the finding that",
    "discovered that",
    "we found that",
    "i found that",
    "observed that",
    "turns out",
    "key finding",
    "key insight",
    "finding:",
    "discovery:",
    "insight:",
];

/// A discovery in the researcher's words, if the message states one.
pub(crate) fn finding(text: &str, cues: &str, focus: Option<&str>) -> Option<Plan> {
    let lower = text.to_lowercase();
    let suffix_cue = ["as a discovery", "as a finding"]
        .into_iter()
        .find(|cue| lower.contains(cue));
    let (start, end) = match FINDING_CUES.iter().find_map(|cue| {
        let at = lower.find(cue)?;
        // Cues in the middle ("… discovered that …") count; "record" only at the start.
        (at == 0 || !cue.starts_with("record") && !cue.ends_with(':'))
            .then_some((at, at + cue.len()))
    }) {
        Some(found) => found,
        None => {
            let cue = suffix_cue?;
            let at = lower.find(cue)?;
            (at, at + cue.len())
        }
    };
    let _ = cues;
    let body = if suffix_cue.is_some() && start > 0 && !text[end..].trim().is_empty() {
        &text[end..]
    } else if suffix_cue.is_some() && start > 0 {
        &text[..start]
    } else {
        &text[end..]
    };
    let body = body
        .trim()
        .trim_start_matches([':', '-', '–', '—', ','])
        .trim();
    let body = strip_prefix_ci(body, &["that "]).unwrap_or(body);
    let description = clean_clause(body);
    let description = strip_suffix_ci(&description, " as a discovery");
    let description = strip_suffix_ci(&description, " as a finding");
    if description.is_empty() {
        return Some(Plan::Reply("What is the discovery? For example: \"Record that the olivine structure seems crucial for Li+ mobility\".".into()));
    }
    let description = capitalise(&description);
    let mut materials = find_formulas(&description);
    materials.retain(|m| {
        m.chars().filter(char::is_ascii_uppercase).count() > 1
            || m.chars().any(|c| c.is_ascii_digit())
    });
    // The material in focus, unless the finding is about an element the focus does not hold
    // ("Pt deactivates above 8 bar" is not a finding about NaFePO4).
    let elsewhere = super::formula::Mentions::scan(&description)
        .elements
        .iter()
        .any(|el| focus.is_none_or(|f| !f.contains(el.as_str())));
    if materials.is_empty() && !elsewhere {
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
    Some(call("record_discovery", arguments))
}

/// A line for the notebook log, if the message asks to write one.
pub(crate) fn log_line(text: &str, cues: &str) -> Option<Plan> {
    let asks = cues.contains("notebook")
        || starts_with_any(
            cues,
            &[
                "log ",
                "log:",
                "log that",
                "write down",
                "jot down",
                "note:",
                "note that",
                "note -",
                "lab note",
                "note,",
            ],
        );
    if !asks {
        return None;
    }
    let message = message(text);
    if message.is_empty() {
        return Some(Plan::Reply(
            "What should I write in the notebook? For example: \"Log: annealed at 600 C for 2 h\"."
                .into(),
        ));
    }
    Some(call(
        "notebook",
        json!({"action": "log", "message": message}),
    ))
}

fn message(text: &str) -> String {
    let prefixes = [
        "log in the notebook that",
        "log to the notebook that",
        "write in the notebook that",
        "add to the notebook that",
        "add to the notebook",
        "note in the notebook that",
        "notebook:",
        "lab note -",
        "lab note:",
        "lab note",
        "log that",
        "log:",
        "write down that",
        "write down:",
        "write down",
        "jot down that",
        "jot down:",
        "jot down",
        "note that",
        "note:",
        "note -",
        "note,",
        "log",
    ];
    let body = strip_prefix_ci(text.trim(), &prefixes).unwrap_or(text);
    let mut message = clean_clause(body);
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
