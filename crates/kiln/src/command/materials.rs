//! `kiln materials`: the materials analyzer on the command line, one result per formula.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use kiln_materials::{Error, analyze, compare, similar_str, validate_str};
use serde_json::{Value, json};

/// Shown under each subcommand's help.
const NOTES: &str = "Formulas come from the arguments; `-` reads one formula a line from standard \
input (blank lines and lines starting with `#` are skipped). Every formula is processed and \
printed in order, even after one fails; the exit code is then 1.";

#[derive(Debug, Subcommand)]
pub enum MaterialsCommand {
    /// Full analysis: composition, molar mass, oxidation states, validity, descriptors.
    #[command(after_help = NOTES)]
    Analyze(Inputs),
    /// SMACT-like validity screen (charge neutrality, electronegativity order) with reasons.
    #[command(after_help = NOTES)]
    Validate(Inputs),
    /// Similar materials by ionic substitution (Hautier et al. 2011), valid ones only.
    #[command(after_help = NOTES)]
    Similar {
        #[command(flatten)]
        inputs: Inputs,
        /// How many candidates per formula.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
    },
    /// Compare the first formula with each of the others.
    #[command(after_help = NOTES)]
    Compare(Inputs),
}

#[derive(Debug, Args)]
pub struct Inputs {
    /// Chemical formulas, e.g. LiFePO4 'Ca10(PO4)6(OH)2' CuSO4·5H2O; `-` reads stdin.
    #[arg(required = true, value_name = "FORMULA")]
    formulas: Vec<String>,
    /// Print one JSON object per formula (per line, in order); a formula that fails gives
    /// {"formula", "error": {"code", "message", "position"}}.
    #[arg(long)]
    json: bool,
}

impl Inputs {
    /// Expands `-` into the lines of standard input.
    fn expand(&self) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::with_capacity(self.formulas.len());
        for f in &self.formulas {
            if f == "-" {
                for line in io::stdin().lock().lines() {
                    let line = line.context("could not read standard input")?;
                    let t = line.trim();
                    if !t.is_empty() && !t.starts_with('#') {
                        out.push(t.to_owned());
                    }
                }
            } else {
                out.push(f.clone());
            }
        }
        Ok(out)
    }
}

/// One formula's outcome: the JSON value and the human line.
type Outcome = Result<(Value, String), Error>;

fn error_json(formula: &str, err: &Error) -> Value {
    json!({"formula": formula, "error": err.report()})
}

/// Runs one formula; `reference` is the first formula when comparing.
fn one(cmd: &MaterialsCommand, reference: &str, f: &str) -> Outcome {
    match cmd {
        MaterialsCommand::Analyze(_) => {
            let a = analyze(f)?;
            Ok((to_json(&a), a.summary()))
        }
        MaterialsCommand::Validate(_) => {
            let v = validate_str(f)?;
            let verdict = if v.valid { "valid" } else { "invalid" };
            let text = format!("{f}: {verdict} ({})", v.reasons.join("; "));
            Ok((with_formula(to_json(&v), f), text))
        }
        MaterialsCommand::Similar { limit, .. } => {
            let c = similar_str(f, usize::from(*limit))?;
            let list: Vec<String> = c
                .iter()
                .map(|c| format!("{} ({:.3})", c.formula, c.probability))
                .collect();
            let text = format!("{f}: {}", list.join(", "));
            Ok((json!({"formula": f, "candidates": to_json(&c)}), text))
        }
        MaterialsCommand::Compare(_) => {
            let c = compare(reference, f)?;
            Ok((with_formula(to_json(&c), f), c.summary()))
        }
    }
}

/// Adds `"formula": f` to a JSON object, so every line names its input.
fn with_formula(mut data: Value, f: &str) -> Value {
    if let Some(o) = data.as_object_mut() {
        o.insert("formula".to_owned(), Value::from(f));
    }
    data
}

/// Serialises a library result. The result types are plain data (strings, numbers, maps with
/// string keys), so this cannot fail; `null` would be visible if it ever did.
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub fn run(cmd: MaterialsCommand) -> anyhow::Result<ExitCode> {
    let inputs = match &cmd {
        MaterialsCommand::Analyze(i)
        | MaterialsCommand::Validate(i)
        | MaterialsCommand::Compare(i) => i,
        MaterialsCommand::Similar { inputs, .. } => inputs,
    };
    let mut formulas = inputs.expand()?;
    let reference = if let MaterialsCommand::Compare(_) = cmd {
        if formulas.len() < 2 {
            anyhow::bail!("compare needs at least two formulas");
        }
        formulas.remove(0)
    } else {
        String::new()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    for f in &formulas {
        match (one(&cmd, &reference, f), inputs.json) {
            (Ok((data, _)), true) => writeln!(out, "{data}")?,
            (Ok((_, text)), false) => writeln!(out, "{text}")?,
            (Err(e), true) => {
                failed += 1;
                writeln!(out, "{}", error_json(f, &e))?;
            }
            (Err(e), false) => {
                failed += 1;
                writeln!(out, "{f}: error: {e}")?;
            }
        }
    }
    out.flush().context("could not write to standard output")?;
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
