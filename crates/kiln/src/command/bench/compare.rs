//! `kiln bench compare`: the same workload as the Python side of
//! scripts/bench_sessions_compare.py, through the SessionManager, as one JSON object.
//!
//! One turn is two `append_message` calls (user, then assistant), each its own transaction
//! and awaited before the next: that is what the agent loop does (the user message is saved
//! before the model call, the answer after it) and what the OpenAI Agents SDK side does (two
//! `add_items` calls per turn), so both sides pay for the same number of commits.

use std::time::Instant;

use anyhow::{Context as _, bail, ensure};
use clap::Args;
use kiln_session::NewNode;
use kiln_session::{BranchFrom, CreateSession, MessageInput, SessionManager};
use kiln_types::{NodeKind, Role};
use serde_json::json;

use super::super::context::{self, Cli as _, GlobalArgs};
use super::textgen::generate_turns;
use super::{db_bytes, log};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Turns to append (a user and an assistant message each).
    #[arg(long, default_value_t = 10_000)]
    pub turns: usize,
    /// Reads of the last `--read-limit` messages.
    #[arg(long, default_value_t = 1_000)]
    pub reads: usize,
    #[arg(long, default_value_t = 20)]
    pub read_limit: u32,
    /// Fork after this many turns (default: half of `--turns`).
    #[arg(long)]
    pub fork_at: Option<usize>,
    /// Seed of the text generator (the same as the Python script's `--seed`).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Append each turn as one `append_nodes` call (one transaction for both messages)
    /// instead of two `append_message` calls.
    #[arg(long)]
    pub one_transaction_per_turn: bool,
}

pub async fn run(global: &GlobalArgs, args: CompareArgs) -> anyhow::Result<()> {
    let fork_at = args.fork_at.unwrap_or(args.turns / 2);
    ensure!(args.turns > 0, "--turns must be at least 1");
    ensure!(
        fork_at >= 1 && fork_at <= args.turns,
        "--fork-at must be between 1 and --turns"
    );
    ensure!(
        (1..=10_000).contains(&args.read_limit),
        "--read-limit must be between 1 and 10000"
    );
    let config = context::load_config(global)?;
    let db_path = config.db_path();
    if db_path.exists() {
        bail!(
            "{} exists: bench compare needs a fresh --data-dir",
            db_path.display()
        );
    }
    let turns = generate_turns(args.seed, args.turns);
    let flat: Vec<&str> = turns
        .iter()
        .flat_map(|(u, a)| [u.as_str(), a.as_str()])
        .collect();
    let content_bytes: usize = flat.iter().map(|t| t.len()).sum();

    let (_, manager) = context::open(global).await?;
    let caller = manager.local_caller(None).await.cli()?;
    let session = manager
        .create_session(
            &caller,
            CreateSession {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .await
        .cli()?;
    let id = session.id.as_str();
    let branch = session.default_branch.as_str();

    log(&format!(
        "appending {} turns one message at a time",
        args.turns
    ));
    let mut fork_node = String::new();
    let start = Instant::now();
    for (i, (user, assistant)) in turns.iter().enumerate() {
        let head = if args.one_transaction_per_turn {
            let author = Some(caller.user_id.clone());
            let nodes = vec![
                NewNode::message(NodeKind::User, author.clone(), user.as_str()),
                NewNode::message(NodeKind::Assistant, author, assistant.as_str()),
            ];
            manager
                .append_nodes(&caller, id, branch, nodes, None)
                .await
                .cli()?
                .head
        } else {
            append(&manager, &caller, id, branch, Role::User, user).await?;
            append(&manager, &caller, id, branch, Role::Assistant, assistant).await?
        };
        if i + 1 == fork_at {
            fork_node = head;
        }
    }
    let append_total = start.elapsed().as_secs_f64();

    log(&format!(
        "reading the last {} messages {} times",
        args.read_limit, args.reads
    ));
    let mut last = Vec::new();
    let start = Instant::now();
    for _ in 0..args.reads {
        last = manager
            .messages(&caller, id, branch, Some(args.read_limit), None)
            .await
            .cli()?
            .items;
    }
    let read_total = start.elapsed().as_secs_f64();
    if args.reads > 0 {
        let got: Vec<&str> = last.iter().rev().map(|n| n.content.as_str()).collect();
        let want = &flat[flat.len().saturating_sub(args.read_limit as usize)..];
        ensure!(
            got == want,
            "messages(limit) did not return the newest messages"
        );
    }

    let (journal_mode, synchronous) = manager
        .db()
        .durability()
        .await
        .map_err(kiln_session::Error::from)
        .cli()?;
    // `close` runs PRAGMA wal_checkpoint(TRUNCATE), as the Python side does before measuring.
    // On PostgreSQL the store is not a file here: its size is not reported (0).
    let on_postgres = manager.db().is_postgres();
    manager.close().await;
    let size = if on_postgres { 0 } else { db_bytes(&db_path)? };

    let (_, manager) = context::open(global).await?;
    let caller = manager.local_caller(None).await.cli()?;
    // Untimed: the reopened store's first read opens a pooled connection.
    manager.branches(&caller, id, false).await.cli()?;
    log(&format!("forking at turn {fork_at}"));
    let start = Instant::now();
    manager
        .create_branch(&caller, id, "fork", Some(BranchFrom::Node(fork_node)))
        .await
        .cli()?;
    let fork_s = start.elapsed().as_secs_f64();
    let forked = manager
        .messages(&caller, id, "fork", Some(2), None)
        .await
        .cli()?;
    ensure!(
        forked.items.first().map(|n| n.content.as_str()) == Some(flat[2 * fork_at - 1]),
        "the fork does not end at turn {fork_at}"
    );
    manager.close().await;
    let size_after_fork = if on_postgres { 0 } else { db_bytes(&db_path)? };

    let n = args.turns as f64;
    let out = json!({
        "system": "kiln SessionManager",
        "journal_mode": journal_mode,
        "synchronous": synchronous,
        "connections_checked": 1,
        "turns": args.turns,
        "append_total_s": append_total,
        "append_per_turn_us": append_total / n * 1e6,
        "append_per_message_us": append_total / (2.0 * n) * 1e6,
        "reads": args.reads,
        "read_limit": args.read_limit,
        "read_total_s": read_total,
        "read_per_op_us": if args.reads > 0 { read_total / args.reads as f64 * 1e6 } else { 0.0 },
        "fork_at": fork_at,
        "fork_s": fork_s,
        "db_bytes": size,
        "db_bytes_after_fork": size_after_fork,
        "content_bytes": content_bytes,
        "seed": args.seed,
        "how": format!("{}; messages(limit) on the branch; fork = create_branch from the \
                node of the fork turn (O(1), copies nothing)", if args.one_transaction_per_turn {
                    "1 append_nodes() per turn (user + assistant in one transaction)"
                } else {
                    "2 append_message() per turn, each one transaction (as the agent saves \
                     input, then output)"
                }),
    });
    if global.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

async fn append(
    m: &SessionManager,
    caller: &kiln_session::Caller,
    id: &str,
    branch: &str,
    role: Role,
    text: &str,
) -> anyhow::Result<String> {
    let out = m
        .append_message(
            caller,
            id,
            branch,
            MessageInput {
                role,
                content: text.to_string(),
                expected_head: None,
            },
        )
        .await
        .cli()
        .context("append failed")?;
    Ok(out.head)
}
