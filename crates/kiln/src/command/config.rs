//! `kiln config`: prints the commented reference configuration.

use std::process::ExitCode;

use crate::command::output::out;
use clap::Subcommand;

/// The commented reference of every configuration key, embedded at build time.
pub const DEFAULT_CONFIG: &str = include_str!("../../../../config/default.toml");

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print config/default.toml, the commented reference of every key.
    Default,
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Default => out!("{DEFAULT_CONFIG}"),
    }
    Ok(ExitCode::SUCCESS)
}
