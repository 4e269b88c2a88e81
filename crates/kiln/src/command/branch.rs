//! `kiln branch`: create, list, merge, discard and diff branches of a session.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use kiln_session::BranchFrom;
use kiln_types::MergeStrategy;

use super::context::{Cli as _, GlobalArgs, Local, parse_enum};
use super::output::{self, clip, short, table};
use crate::command::output::{errln, out, outln};

#[derive(Debug, Subcommand)]
pub enum BranchCommand {
    /// Create a branch (default: at the head of the session's default branch). O(1).
    New(NewArgs),
    /// List a session's branches.
    List {
        session: String,
        /// Include discarded branches.
        #[arg(long)]
        all: bool,
    },
    /// Merge branch FROM into another branch.
    Merge {
        session: String,
        from: String,
        /// The receiving branch (default: the session's default branch).
        #[arg(long)]
        into: Option<String>,
        /// How conflicts are settled: fail (report them), ours, theirs or union.
        #[arg(long, default_value = "fail", value_parser = parse_enum::<MergeStrategy>)]
        strategy: MergeStrategy,
    },
    /// Discard a branch (kept and hidden; `--undo` reopens it).
    Discard {
        session: String,
        name: String,
        #[arg(long)]
        undo: bool,
    },
    /// Show messages only on each side and the state difference between two branches,
    /// checkpoints or nodes.
    Diff {
        session: String,
        from: String,
        to: String,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    pub session: String,
    pub name: String,
    /// Start at the head of this branch.
    #[arg(long, conflicts_with_all = ["from_node", "from_checkpoint"])]
    pub from: Option<String>,
    /// Start at this node.
    #[arg(long, conflicts_with = "from_checkpoint")]
    pub from_node: Option<String>,
    /// Start at this checkpoint.
    #[arg(long)]
    pub from_checkpoint: Option<String>,
}

pub async fn run(global: &GlobalArgs, cmd: BranchCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, cmd).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn dispatch(local: &Local, cmd: BranchCommand) -> anyhow::Result<()> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        BranchCommand::New(args) => {
            let id = local.session_id(&args.session).await?;
            let from = match (args.from, args.from_node, args.from_checkpoint) {
                (Some(b), _, _) => Some(BranchFrom::Branch(b)),
                (_, Some(n), _) => Some(BranchFrom::Node(n)),
                (_, _, Some(c)) => Some(BranchFrom::Checkpoint(c)),
                _ => None,
            };
            let b = m
                .create_branch(caller, &id, &args.name, from)
                .await
                .cli()
                .with_context(|| format!("could not create branch `{}`", args.name))?;
            if local.json {
                return output::json(&b);
            }
            outln!("created branch {} at {}", b.name, b.head);
        }
        BranchCommand::List { session, all } => {
            let id = local.session_id(&session).await?;
            let branches = m.branches(caller, &id, all).await.cli()?;
            if local.json {
                return output::json(&branches);
            }
            let rows: Vec<Vec<String>> = branches
                .iter()
                .map(|b| {
                    vec![
                        b.name.clone(),
                        b.status.clone(),
                        b.head.clone(),
                        b.base.clone(),
                        b.updated_at.clone(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(&["NAME", "STATUS", "HEAD", "BASE", "UPDATED"], &rows)
            );
        }
        BranchCommand::Merge {
            session,
            from,
            into,
            strategy,
        } => {
            let id = local.session_id(&session).await?;
            let into = match into {
                Some(i) => i,
                None => m.session(caller, &id).await.cli()?.default_branch,
            };
            let r = m
                .merge(caller, &id, &from, &into, strategy)
                .await
                .cli()
                .with_context(|| format!("could not merge `{from}` into `{into}`"))?;
            if local.json {
                return output::json(&r);
            }
            if r.merged {
                outln!(
                    "merged {from} into {into}: merge node {}",
                    r.merge_node.as_deref().unwrap_or("-")
                );
                if !r.summary.is_empty() {
                    outln!("{}", r.summary);
                }
                for c in &r.resolved {
                    errln!("resolved conflict on {} ({strategy:?})", c.field);
                }
            } else {
                outln!("nothing to merge: {into} already contains {from}");
            }
        }
        BranchCommand::Discard {
            session,
            name,
            undo,
        } => {
            let id = local.session_id(&session).await?;
            let b = if undo {
                m.reopen_branch(caller, &id, &name).await.cli()?
            } else {
                m.discard_branch(caller, &id, &name).await.cli()?
            };
            if local.json {
                return output::json(&b);
            }
            outln!("branch {} is now {}", b.name, b.status);
        }
        BranchCommand::Diff { session, from, to } => {
            let id = local.session_id(&session).await?;
            let d = m.diff(caller, &id, &from, &to, None).await.cli()?;
            if local.json {
                return output::json(&d);
            }
            outln!("common ancestor {}", d.base);
            for (label, nodes, total) in [
                (&from, &d.only_from, d.only_from_total),
                (&to, &d.only_to, d.only_to_total),
            ] {
                let shown = if total > nodes.len() {
                    format!(", newest {} shown", nodes.len())
                } else {
                    String::new()
                };
                outln!("\nonly on {label} ({total} messages{shown}):");
                for n in nodes {
                    outln!("  {} {:<9} {}", short(&n.id), n.kind, clip(&n.content, 70));
                }
            }
            print_state_diff(&serde_json::to_value(&d.state)?);
        }
    }
    Ok(())
}

/// Prints the non-empty parts of a state difference, one line per added, removed or
/// changed entry.
fn print_state_diff(state: &serde_json::Value) {
    let mut any = false;
    outln!("\nstate difference:");
    for (part, diff) in state.as_object().into_iter().flatten() {
        if part == "focus" {
            outln!("  focus: {diff}");
            any = true;
            continue;
        }
        for (change, sign) in [("added", '+'), ("removed", '-'), ("changed", '~')] {
            for item in diff
                .get(change)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                outln!("  {part} {sign} {}", clip(&item.to_string(), 100));
                any = true;
            }
        }
    }
    if !any {
        outln!("  none");
    }
}
