//! Kiln's chemistry library: formulas, compositions, oxidation states, validity, substitution.
//!
//! Pure: no IO, no async. All element data is embedded at compile time (`data/`).
//!
//! Entry points: [`parse`], [`analyze`], [`validate_str`], [`similar_str`], [`compare`], and the
//! tool adapter's [`tool_schema`] / [`run_tool`].

mod amount;
pub mod analysis;
pub mod compare;
pub mod composition;
mod data;
pub mod descriptors;
mod element;
mod error;
pub mod oxidation;
pub mod parse;
pub mod substitution;
pub mod tool;
pub mod validity;

pub use amount::Amount;
pub use analysis::{Analysis, analyze, analyze_formula};
pub use compare::{Comparison, compare};
pub use element::{Element, species_label};
pub use error::{Error, ErrorReport, Result};
pub use parse::{Formula, parse};
pub use substitution::Candidate;
pub use tool::{ToolOutput, run_tool, tool_schema};
pub use validity::Validity;

/// Parses and screens a formula (see [`validity`] for the rule).
pub fn validate_str(input: &str) -> Result<Validity> {
    Ok(validity::validate(&parse(input)?))
}

/// Parses a formula and returns up to `limit` substitution candidates, most probable first.
pub fn similar_str(input: &str, limit: usize) -> Result<Vec<Candidate>> {
    substitution::similar(&parse(input)?, limit)
}
