//! `kiln message`: append a message to a branch and read a branch's history.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use kiln_session::MessageInput;
use kiln_types::Role;

use super::context::{Cli as _, GlobalArgs, Local, parse_enum};
use super::output::{self, clip, table};
use crate::command::output::{errln, out, outln};

#[derive(Debug, Subcommand)]
pub enum MessageCommand {
    /// Append one message and print the new head.
    Add {
        session: String,
        /// The message text.
        content: String,
        /// user, assistant, system, note, tool_call, tool_result or summary.
        #[arg(long, default_value = "user", value_parser = parse_enum::<Role>)]
        role: Role,
        /// The branch (default: the session's default branch).
        #[arg(long)]
        branch: Option<String>,
        /// Refuse if the branch head is no longer this node.
        #[arg(long)]
        expected_head: Option<String>,
    },
    /// Read a branch's history newest first.
    List {
        session: String,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// The `next_cursor` of a previous page.
        #[arg(long)]
        before: Option<String>,
    },
}

pub async fn run(global: &GlobalArgs, cmd: MessageCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, cmd).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

async fn branch_or_default(local: &Local, id: &str, b: Option<String>) -> anyhow::Result<String> {
    match b {
        Some(b) => Ok(b),
        None => Ok(local
            .manager
            .session(&local.caller, id)
            .await
            .cli()?
            .default_branch),
    }
}

async fn dispatch(local: &Local, cmd: MessageCommand) -> anyhow::Result<()> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        MessageCommand::Add {
            session,
            content,
            role,
            branch,
            expected_head,
        } => {
            let id = local.session_id(&session).await?;
            let branch = branch_or_default(local, &id, branch).await?;
            let out = m
                .append_message(
                    caller,
                    &id,
                    &branch,
                    MessageInput {
                        role,
                        content,
                        expected_head,
                    },
                )
                .await
                .cli()
                .with_context(|| format!("could not append to branch `{branch}`"))?;
            if local.json {
                return output::json(&out);
            }
            outln!("{}", out.head);
        }
        MessageCommand::List {
            session,
            branch,
            limit,
            before,
        } => {
            let id = local.session_id(&session).await?;
            let branch = branch_or_default(local, &id, branch).await?;
            let page = m
                .messages(caller, &id, &branch, Some(limit), before.as_deref())
                .await
                .cli()?;
            if local.json {
                return output::json(&page);
            }
            let rows: Vec<Vec<String>> = page
                .items
                .iter()
                .map(|n| {
                    vec![
                        n.id.clone(),
                        n.kind.to_string(),
                        n.created_at.clone(),
                        clip(&n.readable_text(), 60),
                    ]
                })
                .collect();
            out!("{}", table(&["ID", "ROLE", "AT", "CONTENT"], &rows));
            if let Some(c) = page.next_cursor {
                errln!("more: --before {c}");
            }
        }
    }
    Ok(())
}
