//! `kiln memory`: your memory across sessions — the notes and preferences the agent reads in
//! every turn of yours (list, add, edit, rm).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use kiln_session::{MemoryInput, MemoryPatch, MemorySource};

use super::context::{Cli as _, GlobalArgs, Local};
use super::output::{self, table};
use crate::command::output::{out, outln};

#[derive(Debug, Subcommand)]
pub enum MemoryCommand {
    /// List your entries, oldest first.
    List,
    /// Save a note (or, with --preference, a standing preference).
    Add {
        text: String,
        #[arg(long)]
        preference: bool,
    },
    /// Change an entry's text.
    Edit { id: String, text: String },
    /// Delete an entry.
    Rm { id: String },
}

pub async fn run(global: &GlobalArgs, cmd: MemoryCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, cmd).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn dispatch(local: &Local, cmd: MemoryCommand) -> anyhow::Result<()> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        MemoryCommand::List => {
            let all = m.memory(caller).await.cli()?;
            if local.json {
                return output::json(&all);
            }
            if all.is_empty() {
                outln!("your memory is empty: `kiln memory add \"I work at 1 atm\"` saves a note");
                return Ok(());
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|e| vec![e.id.clone(), e.kind.clone(), e.content.clone()])
                .collect();
            out!("{}", table(&["ID", "KIND", "TEXT"], &rows));
        }
        MemoryCommand::Add { text, preference } => {
            let input = MemoryInput {
                content: text,
                kind: preference.then(|| "preference".to_owned()),
            };
            let e = m
                .remember(caller, &input, MemorySource::User)
                .await
                .cli()
                .context("could not save to your memory")?;
            if local.json {
                return output::json(&e);
            }
            outln!("saved {} ({}): {}", e.id, e.kind, e.content);
        }
        MemoryCommand::Edit { id, text } => {
            let patch = MemoryPatch {
                content: Some(text),
                kind: None,
            };
            let e = m
                .update_memory(caller, &id, &patch)
                .await
                .cli()
                .with_context(|| format!("could not change memory entry {id}"))?;
            if local.json {
                return output::json(&e);
            }
            outln!("changed {}: {}", e.id, e.content);
        }
        MemoryCommand::Rm { id } => {
            m.forget(caller, &id)
                .await
                .cli()
                .with_context(|| format!("could not delete memory entry {id}"))?;
            outln!("deleted {id}");
        }
    }
    Ok(())
}
