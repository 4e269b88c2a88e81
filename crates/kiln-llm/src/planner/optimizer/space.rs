//! The optimiser's search space as the planner knows it (from the session's state or the
//! conversation), read from prose when defined, and used to read results and points written
//! as numbers with units.

use serde_json::{Map, Value, json};

use super::super::intent::Plan;
use super::super::quantity::Token;
use super::super::words::snake;
use super::{Reading, call};

/// A variable as the planner needs it: a name, a unit to recognise values by, levels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Variable {
    pub name: String,
    pub unit: Option<String>,
    pub categories: Vec<String>,
    /// The middle of its range, when the space says (for examples inside the space).
    pub middle: Option<f64>,
}

impl Variable {
    /// "time (h)", "atmosphere (air or argon)".
    pub(crate) fn described(&self) -> String {
        match (&self.unit, self.categories.is_empty()) {
            (Some(unit), _) => format!("{} ({unit})", self.name),
            (None, false) => format!("{} ({})", self.name, self.categories.join(" or ")),
            (None, true) => self.name.clone(),
        }
    }
}

/// The space: variables and the objective's name.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Space {
    pub variables: Vec<Variable>,
    pub objective: Option<String>,
}

impl Space {
    /// Reads `define_space` arguments (or the tool state's `space`/`objective` shape).
    pub(crate) fn from_arguments(arguments: &Value) -> Option<Space> {
        // define_space arguments have `variables`; the tool's state has `space`, the list.
        let variables = arguments
            .get("variables")
            .or_else(|| arguments.get("space").filter(|s| s.is_array()))
            .or_else(|| arguments.get("space")?.get("variables"))?
            .as_array()?;
        let variables: Vec<Variable> = variables
            .iter()
            .filter_map(|v| {
                Some(Variable {
                    name: v.get("name")?.as_str()?.to_owned(),
                    unit: v.get("unit").and_then(Value::as_str).map(str::to_owned),
                    categories: v
                        .get("categories")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned))
                        .collect(),
                    middle: bounds(v).map(|(lo, hi)| (lo + hi) / 2.0),
                })
            })
            .collect();
        let objective = arguments
            .get("objective")
            .and_then(|o| o.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        (!variables.is_empty()).then_some(Space {
            variables,
            objective,
        })
    }

    pub(crate) fn objective_name(&self) -> &str {
        self.objective.as_deref().unwrap_or("output")
    }

    /// A made-up point inside the space, written as a researcher would ("700 °C for 5 h").
    pub(crate) fn example(&self) -> String {
        self.variables
            .iter()
            .map(|var| {
                let value = number_text(var.middle.map_or(1.0, round_for_example));
                match (&var.unit, var.categories.first()) {
                    (_, Some(level)) => format!("in {level}"),
                    (Some(unit), None) => format!("{value} {unit}"),
                    (None, None) => format!("{}={value}", var.name),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A variable's bounds as `define_space` writes them (`bounds: [lo, hi]`) or the tool's state
/// keeps them (`lower`, `upper`).
fn bounds(v: &Value) -> Option<(f64, f64)> {
    if let Some([lo, hi]) = v.get("bounds").and_then(Value::as_array).map(Vec::as_slice) {
        return Some((lo.as_f64()?, hi.as_f64()?));
    }
    Some((v.get("lower")?.as_f64()?, v.get("upper")?.as_f64()?))
}

/// A middle value as a researcher would type it: two significant figures.
fn round_for_example(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = 10f64.powi(x.abs().log10().floor() as i32 - 1);
    (x / magnitude).round() * magnitude
}

/// The variable a word names: its whole name, or one word of a longer name when no other
/// variable has it ("water" for `water_fraction`).
pub(crate) fn variable_named<'s>(space: &'s Space, word: &str) -> Option<&'s Variable> {
    if let Some(v) = space.variables.iter().find(|v| v.name == word) {
        return Some(v);
    }
    if word.len() < 3 {
        return None;
    }
    let mut named = space
        .variables
        .iter()
        .filter(|v| v.name.split('_').any(|part| part == word));
    let first = named.next()?;
    named.next().is_none().then_some(first)
}

/// A range read from prose.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Range {
    name: String,
    low: f64,
    high: f64,
    unit: Option<&'static str>,
    integer: bool,
}

const NAME_STOPWORDS: [&str; 47] = [
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
    "integer",
    "vary",
    "varying",
    "by",
    "from",
    "between",
    "in",
    "within",
    "range",
    "find",
    "that",
    "give",
    "i",
    "want",
    "like",
    "would",
    "bo",
    "target",
    "objective",
    "also",
    "s",
    "d",
    "we",
];

fn number(token: Option<&Token>) -> Option<(f64, Option<&'static str>)> {
    match token {
        Some(Token::Num { value, unit }) if value.is_finite() => Some((*value, *unit)),
        _ => None,
    }
}

fn is_word(token: Option<&Token>, words: &[&str]) -> bool {
    token
        .and_then(Token::word)
        .is_some_and(|w| words.contains(&w.as_str()))
}

/// The variable name: up to two words right before `index` (a bracket or colon between is
/// skipped).
fn name_before(tokens: &[Token], index: usize) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    let mut i = index;
    while i > 0 && words.len() < 2 {
        i -= 1;
        match &tokens[i] {
            Token::Punct('(' | ':') if words.is_empty() => continue,
            Token::Word(word)
                if word.starts_with(char::is_alphabetic)
                    && !NAME_STOPWORDS.contains(&word.to_lowercase().as_str()) =>
            {
                words.push(word);
            }
            _ => break,
        }
    }
    words.reverse();
    (!words.is_empty()).then(|| snake(&words))
}

/// Ranges written as `NAME A-B unit`, `NAME from A to B`, `NAME between A and B`,
/// `NAME A to B`, `NAME in [A, B]`, `NAME (A-B unit)`.
pub(crate) fn ranges(tokens: &[Token]) -> Vec<Range> {
    let mut out: Vec<Range> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let at = |k: usize| tokens.get(i + k);
        let dash = |t: Option<&Token>| {
            t.is_some_and(|t| t.is('-') || t.is('–') || t.is('—')) || is_word(t, &["to"])
        };
        let found = if is_word(at(0), &["from", "between"]) {
            number(at(1))
                .zip(number(at(3)))
                .filter(|_| dash(at(2)) || is_word(at(2), &["and"]))
                .map(|b| (b, 4))
        } else if is_word(at(0), &["in", "within"]) && at(1).is_some_and(|t| t.is('[') || t.is('('))
        {
            number(at(2))
                .zip(number(at(4)))
                .filter(|_| at(3).is_some_and(|t| t.is(',')))
                .map(|b| (b, 6))
        } else {
            number(at(0))
                .zip(number(at(2)))
                .filter(|_| dash(at(1)))
                .map(|b| (b, 3))
        };
        if let Some((((low, low_unit), (high, high_unit)), width)) = found
            && let Some(name) = name_before(tokens, i)
        {
            let integer = tokens[i.saturating_sub(3)..i]
                .iter()
                .any(|t| is_word(Some(t), &["integer"]));
            let (low, high) = if low <= high {
                (low, high)
            } else {
                (high, low)
            };
            out.push(Range {
                name,
                low,
                high,
                unit: high_unit.or(low_unit),
                integer,
            });
            i += width;
            continue;
        }
        i += 1;
    }
    out
}

const GOALS: [(&str, &str); 12] = [
    ("maximise", "maximize"),
    ("maximize", "maximize"),
    ("minimise", "minimize"),
    ("minimize", "minimize"),
    ("maximum", "maximize"),
    ("minimum", "minimize"),
    ("max", "maximize"),
    ("min", "minimize"),
    ("highest", "maximize"),
    ("lowest", "minimize"),
    ("optimise", "maximize"),
    ("optimize", "maximize"),
];
const OBJECTIVE_STOP: [&str; 14] = [
    "with", "over", "by", "using", "and", "subject", "while", "for", "at", "in", "vary", "varying",
    "across", "given",
];

/// The objective: `maximise capacity`, `target: max density`, `the highest surface area`.
pub(crate) fn objective(tokens: &[Token]) -> Option<Value> {
    let (position, goal) = GOALS.iter().find_map(|(word, goal)| {
        tokens
            .iter()
            .position(|t| t.word().as_deref() == Some(*word))
            .map(|p| (p, *goal))
    })?;
    let words: Vec<&str> = tokens[position + 1..]
        .iter()
        .skip_while(|t| is_word(Some(t), &["the", "a", "an", "of"]) || t.is(':'))
        .map_while(|t| match t {
            Token::Word(word)
                if word.starts_with(char::is_alphabetic)
                    && !OBJECTIVE_STOP.contains(&word.to_lowercase().as_str()) =>
            {
                Some(word.as_str())
            }
            _ => None,
        })
        .take(2)
        .collect();
    let named = if words.is_empty() {
        named_target(tokens)
    } else {
        Some(snake(&words))
    };
    let name = named.unwrap_or_else(|| "objective".to_owned());
    Some(json!({"name": name, "goal": goal}))
}

/// The objective named apart from its goal: `target = PL intensity (maximise)`, `objective:
/// yield`, `response: conversion`.
fn named_target(tokens: &[Token]) -> Option<String> {
    let at = tokens.iter().position(|t| {
        is_word(
            Some(t),
            &["target", "objective", "response", "goal", "output"],
        )
    })?;
    let words: Vec<&str> = tokens[at + 1..]
        .iter()
        .skip_while(|t| t.is('=') || t.is(':') || is_word(Some(t), &["is", "the"]))
        .map_while(|t| match t {
            Token::Word(word)
                if word.starts_with(char::is_alphabetic)
                    && !GOALS.iter().any(|(g, _)| g.eq_ignore_ascii_case(word))
                    && !OBJECTIVE_STOP.contains(&word.to_lowercase().as_str()) =>
            {
                Some(word.as_str())
            }
            _ => None,
        })
        .take(2)
        .collect();
    (!words.is_empty()).then(|| snake(&words))
}

/// Categorical variables: a clause without numbers naming levels with `or` or `/`
/// ("atmosphere air or argon", "atmosphere O2/air/N2").
fn categoricals(tokens: &[Token]) -> Vec<Value> {
    let mut out = Vec::new();
    for clause in tokens.split(|t| t.is(',') || t.is(';') || t.is('\n') || t.is('.')) {
        if clause.iter().any(|t| matches!(t, Token::Num { .. }))
            || clause.iter().any(|t| {
                t.word()
                    .is_some_and(|w| GOALS.iter().any(|(goal, _)| *goal == w))
            })
        {
            continue;
        }
        let separator = |t: &Token| t.is('/') || is_word(Some(t), &["or"]);
        let Some(first_sep) = clause.iter().position(separator) else {
            continue;
        };
        if first_sep < 1 {
            continue;
        }
        let mut levels = Vec::new();
        let mut k = first_sep - 1;
        while let Some(Token::Word(level)) = clause.get(k) {
            levels.push(level.clone());
            if clause.get(k + 1).is_some_and(separator) {
                k += 2;
            } else {
                break;
            }
        }
        if levels.len() >= 2
            && let Some(name) = name_before(clause, first_sep - 1)
        {
            out.push(json!({"name": name, "type": "categorical", "categories": levels}));
        }
    }
    out
}

/// `define_space` from the ranges, the categorical clauses and the objective.
pub(crate) fn define(reading: &Reading<'_>, ranges: Vec<Range>, objective: Option<Value>) -> Plan {
    let mut variables: Vec<Value> = ranges
        .into_iter()
        .map(|range| {
            let mut variable = json!({
                "name": range.name,
                "type": if range.integer { "integer" } else { "real" },
                "bounds": [json_number(range.low), json_number(range.high)],
            });
            if let Some(unit) = range.unit {
                variable["unit"] = json!(unit);
            }
            variable
        })
        .collect();
    variables.extend(categoricals(&reading.tokens));
    let mut arguments = json!({"action": "define_space", "variables": variables});
    if let Some(objective) = objective {
        arguments["objective"] = objective;
    }
    call(arguments)
}

/// A whole number as a JSON integer, others as floats.
pub(crate) fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        json!(value as i64)
    } else {
        json!(value)
    }
}

/// A number as the researcher would write it back (`5`, `5.5`).
pub(crate) fn number_text(value: f64) -> String {
    json_number(value).to_string()
}

/// One run (or point) read from a message: inputs and, for a result, the output.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Run {
    pub inputs: Map<String, Value>,
    pub output: Option<f64>,
    units: Map<String, Value>,
}

impl Run {
    /// "temperature = 700 °C, time = 5 h".
    pub(crate) fn described(&self, _space: &Space) -> String {
        self.inputs
            .iter()
            .map(|(name, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                match self.units.get(name).and_then(Value::as_str) {
                    Some(unit) => format!("{name} = {value} {unit}"),
                    None => format!("{name} = {value}"),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

const OUTPUT_NAMES: [&str; 6] = ["output", "result", "yield", "y", "objective", "value"];
const OUTPUT_CUES: [&str; 9] = [
    "got", "measured", "gave", "obtained", "yielded", "reached", "give", "gives", "reaching",
];

/// Reads runs: segments split at `;` and new lines, a new run wherever a variable repeats.
/// With a space, numbers are matched to variables by unit (or by the name before them),
/// levels by word; without one, only `name=value` pairs count.
pub(crate) fn runs(tokens: &[Token], space: Option<&Space>) -> Vec<Run> {
    let mut out = Vec::new();
    for segment in tokens.split(|t| t.is(';') || t.is('\n')) {
        let mut run = Run::default();
        let mut output_next = false;
        let mut i = 0;
        while i < segment.len() {
            let token = &segment[i];
            let arrow =
                (token.is('-') || token.is('=')) && segment.get(i + 1).is_some_and(|t| t.is('>'));
            if arrow || token.is('→') {
                output_next = true;
                i += if arrow { 2 } else { 1 };
                continue;
            }
            // name = value, name: value (for a known name)
            if let Token::Word(word) = token {
                let lower = word.to_lowercase();
                let assigned = segment.get(i + 1).is_some_and(|t| t.is('='));
                let is_objective = space
                    .and_then(|s| s.objective.as_deref())
                    .is_some_and(|o| o == lower);
                let is_variable = space.and_then(|s| variable_named(s, &lower));
                let lower = is_variable.map_or(lower, |v| v.name.clone());
                if OUTPUT_CUES.contains(&lower.as_str()) {
                    output_next = true;
                } else if assigned || is_objective || is_variable.is_some() {
                    let skip = if assigned || segment.get(i + 1).is_some_and(|t| t.is(':')) {
                        2
                    } else {
                        1
                    };
                    match segment.get(i + skip) {
                        Some(Token::Num { value, unit }) => {
                            // A variable of the space is an input even when its name is one
                            // an output goes by without a space (`y`).
                            if is_variable.is_some() {
                                push(&mut out, &mut run, &lower, json_number(*value), *unit);
                            } else if is_objective || OUTPUT_NAMES.contains(&lower.as_str()) {
                                run.output = run.output.or(Some(*value));
                            } else if assigned {
                                push(&mut out, &mut run, &lower, json_number(*value), *unit);
                            }
                            i += skip + 1;
                            continue;
                        }
                        Some(Token::Word(level)) if assigned => {
                            push(&mut out, &mut run, &lower, json!(level), None);
                            i += skip + 1;
                            continue;
                        }
                        _ => {}
                    }
                }
                if let Some(space) = space
                    && let Some(var) = space
                        .variables
                        .iter()
                        .find(|v| v.categories.iter().any(|c| c.eq_ignore_ascii_case(word)))
                {
                    let level = var
                        .categories
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(word))
                        .cloned()
                        .unwrap_or_default();
                    push(&mut out, &mut run, &var.name.clone(), json!(level), None);
                }
                i += 1;
                continue;
            }
            // A number before a variable's name ("0.8 water").
            if let (Token::Num { value, unit: None }, Some(space), Some(Token::Word(next))) =
                (token, space, segment.get(i + 1))
                && let Some(var) = variable_named(space, &next.to_lowercase())
                && !run.inputs.contains_key(&var.name)
                && var.categories.is_empty()
            {
                push(
                    &mut out,
                    &mut run,
                    &var.name.clone(),
                    json_number(*value),
                    None,
                );
                i += 2;
                continue;
            }
            if let Token::Num { value, unit } = token {
                let variable = space.and_then(|space| {
                    unit.and_then(|unit| {
                        space
                            .variables
                            .iter()
                            .filter(|v| v.unit.as_deref() == Some(unit))
                            .find(|v| !run.inputs.contains_key(&v.name))
                            .or_else(|| {
                                space
                                    .variables
                                    .iter()
                                    .find(|v| v.unit.as_deref() == Some(unit))
                            })
                    })
                });
                match variable {
                    Some(var) => {
                        push(&mut out, &mut run, &var.name, json_number(*value), *unit);
                    }
                    _ if output_next || unit.is_some() => {
                        if space.is_some() || output_next {
                            run.output = run.output.or(Some(*value));
                        }
                        output_next = false;
                    }
                    _ => {
                        // A bare number ends a run whose inputs are all set ("650 °C 4 h 138").
                        let complete = space.is_some_and(|space| {
                            space
                                .variables
                                .iter()
                                .all(|v| run.inputs.contains_key(&v.name))
                        });
                        if complete && run.output.is_none() {
                            run.output = Some(*value);
                        }
                    }
                }
            }
            i += 1;
        }
        if !run.inputs.is_empty() || run.output.is_some() {
            out.push(run);
        }
    }
    out
}

/// Sets an input, starting a new run when the variable already has a value in this one.
fn push(out: &mut Vec<Run>, run: &mut Run, name: &str, value: Value, unit: Option<&str>) {
    if run.inputs.contains_key(name) {
        out.push(std::mem::take(run));
    }
    run.inputs.insert(name.to_owned(), value);
    if let Some(unit) = unit {
        run.units.insert(name.to_owned(), json!(unit));
    }
}
