//! `kiln checkpoint`: named checkpoints on a session's nodes, and restoring them.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use super::context::{Cli as _, GlobalArgs, Local};
use super::output::{self, table};
use crate::command::output::{out, outln};

#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Name a node (default: the head of the default branch). O(1).
    New {
        session: String,
        name: String,
        /// Checkpoint the head of this branch.
        #[arg(long, conflicts_with = "node")]
        branch: Option<String>,
        /// Checkpoint this node.
        #[arg(long)]
        node: Option<String>,
    },
    /// List a session's checkpoints, automatic ones included.
    List { session: String },
    /// Move a branch's head back to a checkpoint; the old head is kept as
    /// `before-restore-…` and in the reflog.
    Restore {
        session: String,
        name: String,
        /// The branch to move (default: the checkpoint's own branch or the default branch).
        #[arg(long)]
        branch: Option<String>,
    },
}

pub async fn run(global: &GlobalArgs, cmd: CheckpointCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, cmd).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn dispatch(local: &Local, cmd: CheckpointCommand) -> anyhow::Result<()> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        CheckpointCommand::New {
            session,
            name,
            branch,
            node,
        } => {
            let id = local.session_id(&session).await?;
            let cp = m
                .create_checkpoint(caller, &id, &name, branch.as_deref(), node.as_deref())
                .await
                .cli()
                .with_context(|| format!("could not create checkpoint `{name}`"))?;
            if local.json {
                return output::json(&cp);
            }
            outln!("created checkpoint {} at {}", cp.name, cp.node);
        }
        CheckpointCommand::List { session } => {
            let id = local.session_id(&session).await?;
            let cps = m.checkpoints(caller, &id).await.cli()?;
            if local.json {
                return output::json(&cps);
            }
            let rows: Vec<Vec<String>> = cps
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        c.node.clone(),
                        c.branch.clone().unwrap_or_default(),
                        if c.auto { "auto" } else { "" }.to_string(),
                        c.created_at.clone(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(&["NAME", "NODE", "BRANCH", "AUTO", "CREATED"], &rows)
            );
        }
        CheckpointCommand::Restore {
            session,
            name,
            branch,
        } => {
            let id = local.session_id(&session).await?;
            let r = m
                .restore(caller, &id, &name, branch.as_deref())
                .await
                .cli()
                .with_context(|| format!("could not restore checkpoint `{name}`"))?;
            if local.json {
                return output::json(&r);
            }
            if r.old_head == r.new_head {
                outln!("{} is already at {name}: nothing to restore", r.branch);
            } else {
                outln!(
                    "restored {name} onto {}: head {} (old head {} saved as {})",
                    r.branch,
                    r.new_head,
                    r.old_head,
                    r.saved_as
                );
            }
        }
    }
    Ok(())
}
