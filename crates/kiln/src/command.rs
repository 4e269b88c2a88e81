//! The command-line surface: one submodule per subcommand.

mod admin;
mod batch;
mod bench;
mod branch;
mod chat;
mod checkpoint;
mod config;
pub mod context;
mod import_dreamlake;
mod markdown;
mod materials;
mod mcp;
mod memory;
mod message;
mod migrate;
mod output;
mod search;
mod serve;
mod sessions;
mod user;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use context::GlobalArgs;

/// Kiln: a research-agent service with persistent, branching sessions.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Backups: write one now (`backup`), or put one back (`restore FILE`).
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// Run the agent over a list of materials (or CSV rows); list, show, cancel, resume.
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Chat with the research agent in a session (a terminal REPL with slash commands).
    Chat(chat::ChatArgs),
    /// Show the configuration reference.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Analyse chemical formulas: composition, oxidation states, validity, similar materials.
    #[command(subcommand)]
    Materials(materials::MaterialsCommand),
    /// Your memory across sessions: notes and preferences every turn of yours sees.
    #[command(subcommand)]
    Memory(memory::MemoryCommand),
    /// Serve Kiln to an MCP client (a desktop assistant) on stdin/stdout, as the user whose
    /// API token is in KILN_TOKEN.
    Mcp(mcp::McpArgs),
    /// Copy this data directory's store into PostgreSQL and check the copy (server stopped).
    Migrate(migrate::MigrateArgs),
    /// Run the HTTP service (SQLite under the data directory; 127.0.0.1:8080 by default).
    Serve(serve::ServeArgs),
    /// Create, list, inspect, move through the lifecycle, export and import sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Branches of a session's conversation tree: create, list, merge, discard, diff.
    #[command(subcommand)]
    Branch(branch::BranchCommand),
    /// Named checkpoints: create, list, restore.
    #[command(subcommand)]
    Checkpoint(checkpoint::CheckpointCommand),
    /// Append messages to a branch and read its history.
    #[command(subcommand)]
    Message(message::MessageCommand),
    /// Full-text search over your sessions; `kiln search reindex` rebuilds the index.
    Search(search::SearchArgs),
    /// Import a Dreamlake local session folder (logs, parameters, tracks, files) into the
    /// session of its workspace and name.
    ImportDreamlake(import_dreamlake::ImportDreamlakeArgs),
    /// Users and their API tokens.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Measure the session store (issue 2's workloads).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Runs one parsed command line and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Admin(cmd) => admin::run(g, cmd).await,
        Command::Batch(cmd) => batch::run(g, cmd).await,
        Command::Chat(args) => chat::run(g, args).await,
        Command::Config(cmd) => config::run(cmd),
        Command::Materials(cmd) => materials::run(cmd),
        Command::Memory(cmd) => memory::run(g, cmd).await,
        Command::Mcp(args) => mcp::run(g, args).await,
        Command::Migrate(args) => migrate::run(g, args).await,
        Command::Serve(args) => serve::run(g, args).await,
        Command::Sessions(cmd) => sessions::run(g, cmd).await,
        Command::Search(args) => search::run(g, args).await,
        Command::Branch(cmd) => branch::run(g, cmd).await,
        Command::Checkpoint(cmd) => checkpoint::run(g, cmd).await,
        Command::Message(cmd) => message::run(g, cmd).await,
        Command::ImportDreamlake(args) => import_dreamlake::run(g, args).await,
        Command::User(cmd) => user::run(g, cmd).await,
        Command::Bench(cmd) => bench::run(g, cmd).await,
    }
}
