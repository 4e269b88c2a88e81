//! `kiln batch`: run the agent over a list of materials (or CSV rows) in a session, with a
//! progress bar; list, show (or export as CSV), cancel and resume batches.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;
use kiln_agent::Agent;
use kiln_session::{BatchSpec, BatchView};
use serde_json::{Map, Value};

use super::context::{Cli as _, GlobalArgs, Local, load_config};
use super::output::{self, clip, table};
use crate::command::output::{out, outln};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Run a request once per item and wait for the results (a progress bar on stderr).
    Run {
        session: String,
        /// The request, with `{field}` placeholders: "Analyse {formula}".
        #[arg(long)]
        request: String,
        /// An item as `field=value[,field=value…]`; repeat for each item.
        #[arg(long = "item")]
        items: Vec<String>,
        /// A CSV file (header row = field names) instead of --item; `-` reads stdin.
        #[arg(long, conflicts_with = "items")]
        csv: Option<String>,
        /// All items in order on one branch instead of one branch each.
        #[arg(long)]
        shared: bool,
        /// Items at once (1-16; default 4).
        #[arg(long)]
        concurrency: Option<u32>,
        /// Each item's time budget in seconds (default 120).
        #[arg(long)]
        timeout: Option<u32>,
        /// Start from this checkpoint (default: a new one at the default branch's head).
        #[arg(long)]
        checkpoint: Option<String>,
    },
    /// A session's batches with their progress.
    List { session: String },
    /// One batch's items (or, with --csv, its results table as CSV).
    Show {
        session: String,
        batch: String,
        #[arg(long)]
        csv: bool,
    },
    /// Cancel a running batch.
    Cancel { session: String, batch: String },
    /// Carry on with every unfinished batch (after a crash), waiting until they finish. With
    /// the server stopped: a server resumes them itself when it starts.
    Resume,
}

pub async fn run(global: &GlobalArgs, cmd: BatchCommand) -> anyhow::Result<ExitCode> {
    let local = Local::open(global).await?;
    let result = dispatch(global, &local, cmd).await;
    local.close().await;
    result
}

/// Parses `field=value,field=value`.
fn item(text: &str) -> anyhow::Result<Map<String, Value>> {
    let mut out = Map::new();
    for pair in text.split(',') {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--item takes field=value pairs separated by commas, not {pair:?}");
        };
        out.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
    }
    Ok(out)
}

/// Draws `[#####.....] 12/200 done, 1 failed` on stderr, in place.
fn bar(v: &BatchView) {
    const WIDTH: u32 = 30;
    let finished = v.counts.done + v.counts.failed + v.counts.cancelled;
    let filled = (finished * WIDTH)
        .checked_div(v.total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "\r[{}{}] {finished}/{} done, {} failed, {:.1} s",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize),
        v.total,
        v.counts.failed,
        v.elapsed_seconds
    );
    let _ = err.flush();
}

fn print_items(v: &BatchView) {
    let rows: Vec<Vec<String>> = v
        .items
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            vec![
                (i.idx + 1).to_string(),
                clip(&i.request, 40),
                i.status.clone(),
                clip(
                    i.error
                        .as_deref()
                        .or(i.answer.as_deref())
                        .unwrap_or("")
                        .lines()
                        .next()
                        .unwrap_or(""),
                    80,
                ),
            ]
        })
        .collect();
    out!("{}", table(&["#", "REQUEST", "STATUS", "ANSWER"], &rows));
}

async fn agent(global: &GlobalArgs, local: &Local) -> anyhow::Result<Agent> {
    let config = load_config(global)?;
    Agent::from_config(local.manager.clone(), &config)
        .context("the [llm] configuration is not usable")
}

async fn dispatch(
    global: &GlobalArgs,
    local: &Local,
    cmd: BatchCommand,
) -> anyhow::Result<ExitCode> {
    let (m, caller) = (&local.manager, &local.caller);
    match cmd {
        BatchCommand::Run {
            session,
            request,
            items,
            csv,
            shared,
            concurrency,
            timeout,
            checkpoint,
        } => {
            let id = local.session_id(&session).await?;
            let csv = match csv.as_deref() {
                Some("-") => {
                    Some(std::io::read_to_string(std::io::stdin()).context("reading stdin")?)
                }
                Some(path) => {
                    Some(std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?)
                }
                None => None,
            };
            let items = if csv.is_some() {
                None
            } else {
                Some(
                    items
                        .iter()
                        .map(|i| item(i))
                        .collect::<anyhow::Result<Vec<_>>>()?,
                )
            };
            let spec = BatchSpec {
                request,
                items,
                csv,
                mode: shared.then(|| "shared".to_owned()),
                concurrency,
                item_timeout_seconds: timeout,
                checkpoint,
                branch: None,
            };
            let agent = agent(global, local).await?;
            let started = agent.start_batch(caller, &id, &spec).await.cli()?;
            let batch = started.batch.id.clone();
            if !local.json {
                eprintln!("batch {batch}: {} item(s)", started.total);
            }
            let view = loop {
                let v = m.batch(caller, &id, &batch, true).await.cli()?;
                if !local.json {
                    bar(&v);
                }
                if v.finished() {
                    break v;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if local.json {
                output::json(&view)?;
            } else {
                eprintln!();
                print_items(&view);
                outln!(
                    "{} done, {} failed, {} cancelled of {} in {:.1} s (`kiln batch show {} {batch} --csv` for the table)",
                    view.counts.done,
                    view.counts.failed,
                    view.counts.cancelled,
                    view.total,
                    view.elapsed_seconds,
                    id
                );
            }
            return Ok(if view.counts.failed > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            });
        }
        BatchCommand::List { session } => {
            let id = local.session_id(&session).await?;
            let all = m.batches(caller, &id).await.cli()?;
            if local.json {
                output::json(&all)?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|b| {
                    vec![
                        b.batch.id.clone(),
                        b.batch.status.clone(),
                        format!(
                            "{}/{}",
                            b.counts.done + b.counts.failed + b.counts.cancelled,
                            b.total
                        ),
                        b.counts.failed.to_string(),
                        clip(&b.batch.request, 40),
                        b.batch.created_at.clone(),
                    ]
                })
                .collect();
            out!(
                "{}",
                table(
                    &["ID", "STATUS", "FINISHED", "FAILED", "REQUEST", "CREATED"],
                    &rows
                )
            );
        }
        BatchCommand::Show {
            session,
            batch,
            csv,
        } => {
            let id = local.session_id(&session).await?;
            let v = m.batch(caller, &id, &batch, true).await.cli()?;
            if csv {
                out!("{}", v.to_csv().cli()?);
            } else if local.json {
                output::json(&v)?;
            } else {
                outln!(
                    "batch {} ({}): {} of {} finished, {} failed",
                    v.batch.id,
                    v.batch.status,
                    v.counts.done + v.counts.failed + v.counts.cancelled,
                    v.total,
                    v.counts.failed
                );
                print_items(&v);
            }
        }
        BatchCommand::Cancel { session, batch } => {
            let id = local.session_id(&session).await?;
            let v = m
                .cancel_batch(caller, &id, &batch)
                .await
                .cli()
                .with_context(|| format!("could not cancel batch {batch}"))?;
            outln!(
                "cancelled {} ({} item(s) will not run)",
                v.batch.id,
                v.counts.cancelled
            );
        }
        BatchCommand::Resume => {
            // A running server resumes batches itself at start and is running their items
            // now: putting those back to pending would run them twice.
            let config = super::context::load_config(global)?;
            let _lock = kiln_session::ServeLock::acquire(&config.storage.data_dir).cli()?;
            let agent = agent(global, local).await?;
            let left = m.resume_batches().await.cli()?;
            if left.is_empty() {
                outln!("no unfinished batches");
            }
            for (who, b) in left {
                eprintln!("resuming batch {} in session {}", b.id, b.session_id);
                agent.run_batch(&who, &b).await;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
