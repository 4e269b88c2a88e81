//! `kiln bench tree`: per-operation cost at several history lengths on one branch, through
//! the SessionManager — a quick complement to the criterion benches.

use std::future::Future;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use clap::Args;
use kiln_session::{BranchFrom, Caller, CreateSession, EventInput, MessageInput, SessionManager};
use kiln_types::{Role, StateEvent};
use serde_json::json;

use super::super::context::{self, Cli as _, GlobalArgs};
use super::super::output::table;
use super::log;
use super::textgen::generate_turns;

#[derive(Debug, Args)]
pub struct TreeArgs {
    /// History lengths (nodes on the branch), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    pub sizes: Vec<usize>,
    /// Timed repetitions of each operation at each size.
    #[arg(long, default_value_t = 200)]
    pub iterations: usize,
    /// One node in this many is a state event (a material or a discovery).
    #[arg(long, default_value_t = 10)]
    pub event_every: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// The operations measured, in the order printed.
const OPS: [&str; 7] = [
    "append",
    "read last 50",
    "fork",
    "checkpoint",
    "restore",
    "state at head",
    "state at old checkpoint",
];

/// Timings of one operation: median and mean in microseconds.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median_us: f64,
    mean_us: f64,
}

pub async fn run(global: &GlobalArgs, args: TreeArgs) -> anyhow::Result<()> {
    ensure!(
        !args.sizes.is_empty(),
        "--sizes must name at least one size"
    );
    ensure!(
        args.sizes.iter().all(|&s| (10..=10_000_000).contains(&s)),
        "each size must be between 10 and 10000000"
    );
    ensure!(args.iterations >= 1, "--iterations must be at least 1");
    ensure!(args.event_every >= 2, "--event-every must be at least 2");
    // Without --data-dir, work in a private temporary directory and remove it afterwards.
    let mut global = global.clone();
    let scratch = match &global.data_dir {
        Some(_) => None,
        None => {
            let dir = std::env::temp_dir().join(format!("kiln-bench-tree-{}", std::process::id()));
            global.data_dir = Some(dir.clone());
            Some(dir)
        }
    };
    let result = measure(&global, &args).await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let rows = result?;
    if global.json {
        let results: serde_json::Map<String, serde_json::Value> = OPS
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let per_size: serde_json::Map<String, serde_json::Value> = args
                    .sizes
                    .iter()
                    .zip(&rows)
                    .map(|(size, r)| {
                        (
                            size.to_string(),
                            json!({"median_us": r[i].median_us, "mean_us": r[i].mean_us}),
                        )
                    })
                    .collect();
                (op.to_string(), per_size.into())
            })
            .collect();
        println!(
            "{}",
            json!({"sizes": args.sizes, "iterations": args.iterations,
                   "event_every": args.event_every, "results": results})
        );
        return Ok(());
    }
    let mut headers = vec!["operation (median µs)".to_string()];
    headers.extend(args.sizes.iter().map(|s| format!("{s} nodes")));
    headers.push("largest / smallest".into());
    let body: Vec<Vec<String>> = OPS
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut row = vec![op.to_string()];
            row.extend(rows.iter().map(|r| format!("{:.1}", r[i].median_us)));
            let (first, last) = (rows[0][i].median_us, rows[rows.len() - 1][i].median_us);
            row.push(format!("{:.2}×", last / first.max(1e-9)));
            row
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    print!("{}", table(&headers, &body));
    Ok(())
}

async fn measure(global: &GlobalArgs, args: &TreeArgs) -> anyhow::Result<Vec<Vec<Timing>>> {
    let (_, manager) = context::open(global).await?;
    let caller = manager.local_caller(None).await.cli()?;
    let mut all = Vec::new();
    for &size in &args.sizes {
        let r = one_size(&manager, &caller, size, args).await;
        match r {
            Ok(t) => all.push(t),
            Err(e) => {
                manager.close().await;
                return Err(e.context(format!("at {size} nodes")));
            }
        }
    }
    manager.close().await;
    Ok(all)
}

async fn one_size(
    m: &SessionManager,
    caller: &Caller,
    size: usize,
    args: &TreeArgs,
) -> anyhow::Result<Vec<Timing>> {
    let s = m
        .create_session(
            caller,
            CreateSession {
                name: format!("bench tree {size}"),
                ..Default::default()
            },
        )
        .await
        .cli()?;
    let id = s.id.as_str();
    let main = s.default_branch.as_str();
    let texts = generate_turns(args.seed, 512);
    log(&format!("filling a branch with {size} nodes"));
    let start = Instant::now();
    for i in 0..size {
        if i % args.event_every == args.event_every - 1 {
            m.append_event(caller, id, main, event_input(i))
                .await
                .cli()?;
        } else {
            let (u, a) = &texts[i % texts.len()];
            let (role, text) = if i % 2 == 0 {
                (Role::User, u)
            } else {
                (Role::Assistant, a)
            };
            message(m, caller, id, main, role, text).await?;
        }
        if i + 1 == size / 10 {
            m.create_checkpoint(caller, id, "old", Some(main), None)
                .await
                .cli()?;
        }
    }
    log(&format!(
        "filled in {:.1} s; timing {} iterations per operation",
        start.elapsed().as_secs_f64(),
        args.iterations
    ));
    m.create_checkpoint(caller, id, "tip", Some(main), None)
        .await
        .cli()?;
    m.create_branch(caller, id, "restore-target", None)
        .await
        .cli()?;
    let n = args.iterations;
    let mut out = Vec::new();
    out.push(
        time(n, |_| async {
            message(m, caller, id, main, Role::User, "one more question").await
        })
        .await?,
    );
    out.push(
        time(n, |_| async {
            let p = m.messages(caller, id, main, Some(50), None).await.cli()?;
            // Short histories hold fewer than 50 messages.
            ensure!(
                p.items.len() == 50 || (size < 100 && !p.items.is_empty()),
                "read returned {} messages",
                p.items.len()
            );
            Ok(())
        })
        .await?,
    );
    out.push(
        time(n, |i| async move {
            m.create_branch(
                caller,
                id,
                &format!("fork-{i}"),
                Some(BranchFrom::Branch(main.into())),
            )
            .await
            .cli()
            .map(drop)
        })
        .await?,
    );
    out.push(
        time(n, |i| async move {
            m.create_checkpoint(caller, id, &format!("cp-{i}"), Some(main), None)
                .await
                .cli()
                .map(drop)
        })
        .await?,
    );
    out.push(
        time(n, |i| async move {
            let cp = if i % 2 == 0 { "old" } else { "tip" };
            m.restore(caller, id, cp, Some("restore-target"))
                .await
                .cli()
                .map(drop)
        })
        .await?,
    );
    out.push(
        time(n, |_| async {
            m.state(caller, id, main, None).await.cli().map(drop)
        })
        .await?,
    );
    out.push(
        time(n, |_| async {
            let st = m.state(caller, id, main, Some("old")).await.cli()?;
            ensure!(
                size / 10 < args.event_every || !st.materials.is_empty(),
                "the old checkpoint has no materials"
            );
            Ok(())
        })
        .await?,
    );
    Ok(out)
}

/// Runs `op` a few times untimed (statement caches, pool connections), then `n` times,
/// timing each call. Calls are numbered so named objects stay unique.
async fn time<F, Fut>(n: usize, mut op: F) -> anyhow::Result<Timing>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in n..n + (n / 10).clamp(1, 10) {
        op(i).await?;
    }
    let mut us = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        op(i).await?;
        us.push(start.elapsed().as_secs_f64() * 1e6);
    }
    us.sort_by(f64::total_cmp);
    let mean_us = us.iter().sum::<f64>() / n as f64;
    Ok(Timing {
        median_us: us[n / 2],
        mean_us,
    })
}

async fn message(
    m: &SessionManager,
    caller: &Caller,
    id: &str,
    branch: &str,
    role: Role,
    text: &str,
) -> anyhow::Result<()> {
    m.append_message(
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
    .context("append failed")
    .map(drop)
}

/// A state event for node `i`: mostly materials, sometimes a discovery. Ids and formulas
/// cycle through small sets, so the research state has the same size at every history
/// length and the timings show the cost of history alone.
fn event_input(i: usize) -> EventInput {
    const FORMULAS: [&str; 10] = [
        "CsPbI3",
        "CH3NH3PbI3",
        "CsPbBr3",
        "CsSnI3",
        "BaTiO3",
        "SrTiO3",
        "LiFePO4",
        "NaCl",
        "Fe2O3",
        "ZnO",
    ];
    let formula = FORMULAS[(i / 10) % FORMULAS.len()].to_string();
    let event = if i.is_multiple_of(7) {
        StateEvent::Discovery {
            id: Some(format!("finding-{}", i % 20)),
            discovery_type: "observation".into(),
            description: format!("finding {i}"),
            materials: vec![formula],
            evidence: vec![],
            confidence: Some(0.5),
            source: Default::default(),
        }
    } else {
        StateEvent::Material {
            formula,
            data: None,
        }
    };
    EventInput {
        event,
        expected_head: None,
    }
}
