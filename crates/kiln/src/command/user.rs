//! `kiln user`: add users and issue tokens. A new API token is printed alone on stdout (it
//! is stored only as a hash and cannot be shown again); everything else goes to stderr.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use kiln_session::{SessionManager, User, hash_token, new_token};

use super::context::{self, Cli as _, GlobalArgs};
use crate::command::output::{errln, outln};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print its new API token alone on stdout.
    Add {
        name: String,
        /// Make the user an owner.
        #[arg(long)]
        owner: bool,
    },
    /// Issue another API token for an existing user (for example the local `owner`) and
    /// print it alone on stdout.
    Token { name: String },
}

pub async fn run(global: &GlobalArgs, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    let (_, manager) = context::open(global).await?;
    let result = dispatch(&manager, cmd).await;
    manager.close().await;
    let (user, token) = result?;
    outln!("{token}");
    errln!(
        "token for user {} ({}); it is shown once",
        user.name,
        user.id
    );
    Ok(ExitCode::SUCCESS)
}

async fn dispatch(manager: &SessionManager, cmd: UserCommand) -> anyhow::Result<(User, String)> {
    match cmd {
        UserCommand::Add { name, owner } => manager
            .add_user(name.trim(), owner)
            .await
            .cli()
            .with_context(|| format!("could not add user `{name}`")),
        UserCommand::Token { name } => {
            let user = manager
                .db()
                .user_by_name(&name)
                .await
                .map_err(kiln_session::Error::from)
                .cli()
                .with_context(|| format!("could not find user `{name}`"))?;
            let token = new_token();
            manager
                .db()
                .add_token(&user.id, &hash_token(&token))
                .await
                .map_err(kiln_session::Error::from)
                .cli()
                .context("could not store the token")?;
            Ok((user, token))
        }
    }
}
