//! `kiln bench`: issue 2's measurements through the real SessionManager — the side-by-side
//! workload of scripts/bench_sessions_compare.py, and per-operation costs by history size;
//! issue 5's search measurements; and issue 16's live-event fan-out.

mod compare;
mod live;
mod search;
mod textgen;
mod tree;

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::context::GlobalArgs;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The workload of scripts/bench_sessions_compare.py: append turns one at a time, read
    /// the last items, fork at a turn; prints one JSON object with `--json`.
    Compare(compare::CompareArgs),
    /// Per-operation timings at several history sizes (append, read last 50, fork,
    /// checkpoint, restore, state at head, state at an old checkpoint).
    Tree(tree::TreeArgs),
    /// Search at scale (issue 5): index throughput, query latency p50/p99 for single-term,
    /// phrase, filtered and fuzzy queries (and, with `--hot N`, one session holding N matches:
    /// issue 13), SQLite FTS5 on the same corpus in the same run.
    Search(search::SearchArgs),
    /// Server-sent event fan-out (issue 16): N watchers of one session over loopback HTTP;
    /// per write, the time until every watcher has it.
    Live(live::LiveArgs),
}

pub async fn run(global: &GlobalArgs, cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Compare(args) => compare::run(global, args).await?,
        BenchCommand::Tree(args) => tree::run(global, args).await?,
        BenchCommand::Search(args) => search::run(global, args).await?,
        BenchCommand::Live(args) => live::run(global, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Returns the size of a SQLite database and its WAL (after the store has checkpointed it).
fn db_bytes(db: &Path) -> anyhow::Result<u64> {
    let main = std::fs::metadata(db)
        .map_err(|e| anyhow::anyhow!("could not stat {}: {e}", db.display()))?
        .len();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    let wal = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    Ok(main + wal)
}

/// Progress for people; stdout stays machine-readable.
fn log(msg: &str) {
    eprintln!("[kiln bench] {msg}");
}
