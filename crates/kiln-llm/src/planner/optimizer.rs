//! Bayesian-optimisation requests in plain words, to `bayesian_optimizer` tool arguments:
//! define the space, initial design, add experiments, suggest, predict, status.

use serde_json::{Map, Value, json};

use super::intent::Plan;

/// Returns true when the sentence is about the optimiser.
pub(crate) fn is_optimizer_request(lower: &str) -> bool {
    [
        "optimi",
        "experiment",
        "search space",
        "design space",
        "parameter space",
        "define the space",
        "the space:",
        "bayesian",
        "suggest",
        "next point",
        "acquisition",
        "initial design",
        "sobol",
        "latin hypercube",
    ]
    .iter()
    .any(|cue| lower.contains(cue))
}

/// Plans the optimiser call for the sentence.
pub(crate) fn plan(text: &str, lower: &str) -> Plan {
    let tokens = tokenize(text);
    if ["define", "space", "variables"]
        .iter()
        .any(|cue| lower.contains(cue))
    {
        return define_space(&tokens, lower);
    }
    if [
        "initial design",
        "sobol",
        "latin hypercube",
        "lhs",
        "random design",
    ]
    .iter()
    .any(|cue| lower.contains(cue))
    {
        let method = if lower.contains("sobol") {
            "sobol"
        } else if lower.contains("random") {
            "random"
        } else {
            "lhs"
        };
        let mut arguments = json!({"action": "initial_design", "method": method});
        if let Some(n) = first_count(&tokens) {
            arguments["n"] = json!(n);
        }
        return call(arguments);
    }
    if text.contains('=')
        && [
            "add",
            "record",
            "result",
            "measured",
            "observed",
            "experiment",
        ]
        .iter()
        .any(|cue| lower.contains(cue))
        && !lower.contains("predict")
    {
        return add_experiments(text);
    }
    if lower.contains("predict") {
        let points: Vec<Value> = segments(text)
            .iter()
            .filter_map(|segment| {
                let (inputs, _) = assignments(segment);
                (!inputs.is_empty()).then_some(Value::Object(inputs))
            })
            .collect();
        if points.is_empty() {
            return Plan::Reply(
                "Which point should I predict? For example: \"Predict temperature=650, time=3\"."
                    .into(),
            );
        }
        return call(json!({"action": "predict", "points": points}));
    }
    if [
        "suggest",
        "next experiment",
        "next point",
        "what should i try",
        "what should we try",
        "recommend",
    ]
    .iter()
    .any(|cue| lower.contains(cue))
    {
        let explicit = if lower.contains("qei") || lower.contains("q-ei") {
            Some("qEI")
        } else if lower.contains("ucb") || lower.contains("upper confidence") {
            Some("UCB")
        } else if lower.contains("probability of improvement") || tokens.iter().any(|t| t == "PI") {
            Some("PI")
        } else if lower.contains("expected improvement") || tokens.iter().any(|t| t == "EI") {
            Some("EI")
        } else {
            None
        };
        let q = first_count(&tokens).filter(|q| *q > 1);
        let strategy = explicit.unwrap_or(if q.is_some() { "qEI" } else { "EI" });
        let mut arguments = json!({"action": "suggest", "strategy": strategy});
        if let Some(q) = q {
            arguments["q"] = json!(q);
        }
        return call(arguments);
    }
    call(json!({"action": "status"}))
}

fn call(arguments: Value) -> Plan {
    Plan::Calls(vec![("bayesian_optimizer".to_owned(), arguments)])
}

const NAME_STOPWORDS: [&str; 24] = [
    "define",
    "the",
    "a",
    "an",
    "space",
    "search",
    "design",
    "parameter",
    "parameters",
    "with",
    "variables",
    "variable",
    "and",
    "over",
    "for",
    "optimise",
    "optimize",
    "set",
    "up",
    "is",
    "of",
    "to",
    "let",
    "real",
];

/// Splits text into words, numbers and punctuation; `300-900` and `1..10` become three tokens.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.extend(split_range(current));
            current.clear();
        }
    };
    for c in text.chars() {
        if c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+') {
            current.push(c);
        } else {
            flush(&mut current, &mut tokens);
            if !c.is_whitespace() {
                tokens.push(c.to_string());
            }
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

fn split_range(word: &str) -> Vec<String> {
    let word = word.trim_end_matches('.');
    for separator in ["..", "–", "-"] {
        if let Some((low, high)) = word.split_once(separator)
            && !low.is_empty()
            && low.parse::<f64>().is_ok()
            && high.parse::<f64>().is_ok()
        {
            return vec![low.to_owned(), "-".to_owned(), high.to_owned()];
        }
    }
    if word.is_empty() {
        Vec::new()
    } else {
        vec![word.to_owned()]
    }
}

fn number(token: &str) -> Option<f64> {
    token.parse::<f64>().ok().filter(|value| value.is_finite())
}

fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// The variable name made of up to two words before `index`.
fn name_before(tokens: &[String], index: usize) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut i = index;
    while i > 0 && words.len() < 2 {
        i -= 1;
        let token = tokens[i].as_str();
        let lower = token.to_lowercase();
        if token == ":" && words.is_empty() {
            continue;
        }
        if !token.chars().next().is_some_and(char::is_alphabetic)
            || NAME_STOPWORDS.contains(&lower.as_str())
            || lower == "integer"
        {
            break;
        }
        words.push(token);
    }
    words.reverse();
    (!words.is_empty()).then(|| words.join("_").to_lowercase())
}

fn define_space(tokens: &[String], lower: &str) -> Plan {
    let mut variables: Vec<Value> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let window = |k: usize| tokens.get(i + k).map(String::as_str).unwrap_or_default();
        // NAME from A to B | NAME between A and B | NAME A - B | NAME in [A, B]
        let bounds = match window(0).to_lowercase().as_str() {
            "from" | "between" => number(window(1))
                .zip(number(window(3)))
                .filter(|_| matches!(window(2).to_lowercase().as_str(), "to" | "and" | "-"))
                .map(|b| (b, 4)),
            "in" | "within" if window(1) == "[" || window(1) == "(" => number(window(2))
                .zip(number(window(4)))
                .filter(|_| window(3) == ",")
                .map(|b| (b, 6)),
            _ => number(window(0))
                .zip(number(window(2)))
                .filter(|_| window(1) == "-")
                .map(|b| (b, 3)),
        };
        if let Some(((low, high), width)) = bounds
            && let Some(name) = name_before(tokens, i)
        {
            let integer = i >= 2
                && tokens[..i]
                    .iter()
                    .rev()
                    .take(3)
                    .any(|t| t.eq_ignore_ascii_case("integer"));
            let (low, high) = if low <= high {
                (low, high)
            } else {
                (high, low)
            };
            variables.push(json!({
                "name": name,
                "type": if integer { "integer" } else { "real" },
                "bounds": [json_number(low), json_number(high)],
            }));
            i += width;
            continue;
        }
        i += 1;
    }
    if variables.is_empty() {
        return Plan::Reply(
            "I could not read any variable ranges. Write them like \"Define the space: \
             temperature from 300 to 900, time from 1 to 10; maximize conductivity\"."
                .into(),
        );
    }
    let mut arguments = json!({"action": "define_space", "variables": variables});
    if let Some(objective) = objective(tokens, lower) {
        arguments["objective"] = objective;
    }
    call(arguments)
}

fn objective(tokens: &[String], _lower: &str) -> Option<Value> {
    let position = tokens.iter().position(|token| {
        let lower = token.to_lowercase();
        lower.starts_with("maximi") || lower.starts_with("minimi")
    })?;
    let goal = if tokens[position].to_lowercase().starts_with("maxi") {
        "maximize"
    } else {
        "minimize"
    };
    let words: Vec<String> = tokens[position + 1..]
        .iter()
        .skip_while(|token| token.eq_ignore_ascii_case("the"))
        .take_while(|token| token.chars().next().is_some_and(char::is_alphabetic))
        .take_while(|token| {
            !["with", "over", "by", "using", "and", "subject"]
                .contains(&token.to_lowercase().as_str())
        })
        .take(2)
        .map(|token| token.to_lowercase())
        .collect();
    let name = if words.is_empty() {
        "objective".to_owned()
    } else {
        words.join("_")
    };
    Some(json!({"name": name, "goal": goal}))
}

/// Experiments are separated by `;` or new lines.
fn segments(text: &str) -> Vec<&str> {
    text.split([';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Reads `name=value` pairs; `output`/`result`/`yield`/`y`, or a value after `->`, is the output.
fn assignments(segment: &str) -> (Map<String, Value>, Option<f64>) {
    let (left, arrow_output) = match segment.split_once("->").or_else(|| segment.split_once('→'))
    {
        Some((left, right)) => (
            left,
            right
                .split_whitespace()
                .next()
                .and_then(|v| number(v.trim_end_matches([',', '.']))),
        ),
        None => (segment, None),
    };
    let mut inputs = Map::new();
    let mut output = arrow_output;
    for part in left.split([',', ' ']).filter(|part| part.contains('=')) {
        let Some((name, value)) = part.split_once('=') else {
            continue;
        };
        let name = name.trim().to_lowercase();
        let value = value.trim();
        if name.is_empty() || value.is_empty() {
            continue;
        }
        if ["output", "result", "yield", "y", "objective", "value"].contains(&name.as_str()) {
            output = output.or_else(|| number(value));
            continue;
        }
        inputs.insert(
            name,
            number(value).map_or_else(|| json!(value), json_number),
        );
    }
    (inputs, output)
}

fn add_experiments(text: &str) -> Plan {
    let mut experiments = Vec::new();
    for segment in segments(text) {
        // "Add experiment:" prefixes and the like carry no assignments.
        let body = segment.split_once(':').map_or(segment, |(head, rest)| {
            if head.contains('=') { segment } else { rest }
        });
        let (inputs, output) = assignments(body);
        if inputs.is_empty() {
            continue;
        }
        let Some(output) = output else {
            return Plan::Reply(format!(
                "I read the inputs of \"{}\" but no measured output. Write it like \
                 \"temperature=600, time=2 -> 0.83\" or add \"output=0.83\".",
                segment.trim()
            ));
        };
        experiments.push(json!({"inputs": inputs, "output": json_number(output)}));
    }
    if experiments.is_empty() {
        return Plan::Reply("I could not read any experiment. Write it like \"Add experiment temperature=600, time=2 -> 0.83\".".into());
    }
    call(json!({"action": "add_experiments", "experiments": experiments}))
}

/// The first small positive integer in the text (a count of points or suggestions).
fn first_count(tokens: &[String]) -> Option<u64> {
    const WORDS: [&str; 10] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    ];
    tokens.iter().find_map(|token| {
        let lower = token.to_lowercase();
        token
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .or_else(|| {
                WORDS
                    .iter()
                    .position(|word| *word == lower)
                    .map(|i| i as u64 + 1)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arguments(text: &str) -> Value {
        match plan(text, &text.to_lowercase()) {
            Plan::Calls(calls) => {
                assert_eq!(calls.len(), 1);
                assert_eq!(calls[0].0, "bayesian_optimizer");
                calls[0].1.clone()
            }
            Plan::Reply(reply) => panic!("{text}: {reply}"),
        }
    }

    #[test]
    fn define_space_reads_ranges_and_objective() {
        let got = arguments(
            "Define the search space: temperature from 300 to 900, time 1-10, integer cycles between 1 and 5; maximize ionic conductivity",
        );
        assert_eq!(
            got,
            json!({
                "action": "define_space",
                "variables": [
                    {"name": "temperature", "type": "real", "bounds": [300, 900]},
                    {"name": "time", "type": "real", "bounds": [1, 10]},
                    {"name": "cycles", "type": "integer", "bounds": [1, 5]},
                ],
                "objective": {"name": "ionic_conductivity", "goal": "maximize"}
            })
        );
        let got = arguments(
            "Set up the optimisation space with dopant fraction in [0.01, 0.2], minimise the cost",
        );
        assert_eq!(
            got["variables"][0],
            json!({"name": "dopant_fraction", "type": "real", "bounds": [0.01, 0.2]})
        );
        assert_eq!(
            got["objective"],
            json!({"name": "cost", "goal": "minimize"})
        );
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
            arguments("Suggest the next experiment"),
            json!({"action": "suggest", "strategy": "EI"})
        );
        assert_eq!(
            arguments("Suggest 3 experiments"),
            json!({"action": "suggest", "strategy": "qEI", "q": 3})
        );
        assert_eq!(
            arguments("suggest two points with UCB"),
            json!({"action": "suggest", "strategy": "UCB", "q": 2})
        );
        assert_eq!(
            arguments("Sobol initial design with 8 points"),
            json!({"action": "initial_design", "method": "sobol", "n": 8})
        );
        assert_eq!(
            arguments("How is the optimizer doing?"),
            json!({"action": "status"})
        );
        assert_eq!(
            arguments("Predict the experiment at temperature=650, time=3"),
            json!({"action": "predict", "points": [{"temperature": 650, "time": 3}]})
        );
    }

    #[test]
    fn missing_pieces_are_asked_for() {
        for text in ["Define the search space", "Add experiment temperature=600"] {
            assert!(
                matches!(plan(text, &text.to_lowercase()), Plan::Reply(_)),
                "{text}"
            );
        }
    }
}
