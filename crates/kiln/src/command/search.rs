//! `kiln search QUERY`: full-text search over the sessions the local user may read, and
//! `kiln search reindex`: rebuild the index from SQLite with a progress bar.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kiln_session::SearchParams;

use super::context::{Cli as _, GlobalArgs, Local};
use super::output::clip;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SearchArgs {
    #[command(subcommand)]
    pub command: Option<SearchCommand>,
    /// Words, "a phrase", prefix*, (a OR b).
    pub query: Option<String>,
    /// Only this session.
    #[arg(long)]
    pub session: Option<String>,
    /// Only this node kind (user, assistant, discovery, …, session).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only nodes mentioning this formula.
    #[arg(long)]
    pub material: Option<String>,
    /// Only nodes mentioning this element.
    #[arg(long)]
    pub element: Option<String>,
    #[arg(long)]
    pub project: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// Sessions to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// Rebuild the search index from SQLite.
    Reindex,
}

pub async fn run(global: &GlobalArgs, args: SearchArgs) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(&local, args).await;
    local.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Draws `[#####.....] done/total` on stderr, in place.
fn bar(done: u64, total: u64) {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let (f, e) = (filled as usize, (WIDTH - filled) as usize);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {done}/{total} nodes",
        "#".repeat(f),
        ".".repeat(e)
    );
    let _ = err.flush();
}

async fn dispatch(local: &Local, args: SearchArgs) -> anyhow::Result<()> {
    let m = &local.manager;
    if let Some(SearchCommand::Reindex) = args.command {
        let n = m.reindex(bar).await.cli()?;
        eprintln!();
        println!("indexed {n} nodes");
        return Ok(());
    }
    let Some(q) = args.query else {
        anyhow::bail!("give a query, or `kiln search reindex`");
    };
    let params = SearchParams {
        q,
        session: args.session,
        kind: args.kind,
        material: args.material,
        element: args.element,
        project: args.project,
        tag: args.tag,
        limit: Some(args.limit),
        ..Default::default()
    };
    let page = m.search_sessions(&local.caller, params).await.cli()?;
    if local.json {
        println!("{}", serde_json::to_string(&page)?);
        return Ok(());
    }
    if page.items.is_empty() {
        println!("no matches");
    }
    if page.fuzzy {
        println!("(no exact match; showing matches with one typo)");
    }
    for s in &page.items {
        println!("{}  {}", s.session_name, s.session_id);
        for h in &s.hits {
            let text = kiln_session::snippet_text(&h.snippet, "\x1b[1m", "\x1b[0m");
            let branches = if h.branches.is_empty() {
                String::new()
            } else {
                format!(" [{}]", h.branches.join(", "))
            };
            println!(
                "  {:<12}{branches} {}",
                h.kind,
                clip(&text.replace('\n', " "), 160)
            );
        }
    }
    if page.next_cursor.is_some() {
        println!("(more sessions match: raise --limit)");
    }
    Ok(())
}
