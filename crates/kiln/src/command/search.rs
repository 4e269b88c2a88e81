//! `kiln search QUERY`: full-text search over the sessions the local user may read, and
//! `kiln search reindex`: rebuild the index from SQLite with a progress bar.

use std::io::IsTerminal as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use kiln_session::SearchParams;

use super::context::{Cli as _, GlobalArgs, Local};
use super::output::clip;
use crate::command::output::{errln, outln, plain};

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
    pub limit: u32,
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
        errln!();
        outln!("indexed {n} nodes");
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
        outln!("{}", serde_json::to_string(&page)?);
        return Ok(());
    }
    if page.items.is_empty() {
        outln!("no matches");
    }
    if page.fuzzy {
        outln!("(no exact match; showing matches with one typo)");
    }
    // Matches in bold on a terminal; plain text when piped or with NO_COLOR set.
    let bold = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for s in &page.items {
        outln!("{}  {}", s.session_name, s.session_id);
        for h in &s.hits {
            let branches = if h.branches.is_empty() {
                String::new()
            } else {
                format!(" [{}]", h.branches.join(", "))
            };
            // Raw: the line is `clip`ped (controls removed) plus our own bold escapes.
            println!(
                "  {:<12}{} {}",
                plain(&h.kind),
                plain(&branches),
                hit_line(&h.snippet, bold)
            );
        }
    }
    if page.next_cursor.is_some() {
        outln!("(more sessions match: raise --limit)");
    }
    Ok(())
}

/// A hit's snippet on one line of at most 160 characters, matches in bold when `bold`; a cut
/// inside a match still ends the bold.
fn hit_line(snippet: &str, bold: bool) -> String {
    // Private-use marks (not controls: `clip` strips controls from the user's text).
    const ON: char = '\u{e000}';
    const OFF: char = '\u{e001}';
    let marked = kiln_session::snippet_text(snippet, "\u{e000}", "\u{e001}").replace('\n', " ");
    let cut = clip(&marked, 160);
    let open = cut.matches(ON).count() > cut.matches(OFF).count();
    let (on, off) = if bold {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    let mut line = cut.replace(ON, on).replace(OFF, off);
    if open {
        line.push_str(off);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::hit_line;

    #[test]
    fn hits_are_bold_only_when_asked_and_a_cut_match_is_closed() {
        let snippet = "LiFePO4 keeps the <b>olivine</b> structure";
        assert_eq!(
            hit_line(snippet, false),
            "LiFePO4 keeps the olivine structure"
        );
        assert_eq!(
            hit_line(snippet, true),
            "LiFePO4 keeps the \x1b[1molivine\x1b[0m structure"
        );
        let long = format!("{} <b>olivine</b>", "x".repeat(155));
        let line = hit_line(&long, true);
        assert!(line.ends_with("\x1b[0m"), "{line:?}");
        assert_eq!(
            line.matches("\x1b[1m").count(),
            line.matches("\x1b[0m").count()
        );
    }
}
