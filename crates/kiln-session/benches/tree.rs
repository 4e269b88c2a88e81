//! Hot paths of the conversation tree at 1k, 10k and 100k nodes on one branch: append, read the
//! last 50, fork, checkpoint, restore, state at head and at an old checkpoint.
//!
//! `cargo bench -p kiln-session --bench tree`; `KILN_BENCH_SIZES=1000,10000` picks sizes.
//! `KILN_BENCH_CPU=1` reports the CPU time the whole process (every thread, including sqlx's
//! SQLite worker) spends per operation instead of wall time: on a machine shared with other
//! work, wall time mostly measures waiting for a core.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kiln_db::NewNode;
use kiln_session::{BranchFrom, Caller, Config, CreateSession, SessionManager};
use kiln_types::{NodeKind, StateEvent};
use serde_json::json;
use tokio::runtime::Runtime;

struct Fixture {
    _dir: tempfile::TempDir,
    mgr: SessionManager,
    caller: Caller,
    session: String,
}

/// The node at position `i` of a realistic history: turns of a user question and an answer,
/// with a tool call and result every fifth turn and a state event every third.
fn node(i: usize) -> NewNode {
    match i % 10 {
        0 | 4 => NewNode::message(
            NodeKind::User,
            None,
            format!("question {i} about LiFePO4 doping"),
        ),
        1 | 5 => NewNode::message(
            NodeKind::Assistant,
            None,
            format!(
                "answer {i}: the olivine structure keeps Li diffusion one-dimensional; {}",
                "x".repeat(200)
            ),
        ),
        2 => NewNode::message(NodeKind::ToolCall, None, "call")
            .with_data(json!({"tool": "materials_analyzer", "args": {"formula": "LiFePO4"}})),
        3 => NewNode::message(NodeKind::ToolResult, None, "{\"valid\": true}"),
        6 => NewNode::event(
            StateEvent::Material {
                formula: format!("LiFe{}Mn{}PO4", i % 7, i % 5),
                data: None,
            },
            None,
        ),
        7 => NewNode::event(
            StateEvent::ContextPin {
                key: format!("k{}", i % 13),
                value: json!(i),
            },
            None,
        ),
        8 => NewNode::event(
            StateEvent::ToolState {
                tool: "bayesian_optimizer".into(),
                state: json!({"experiments": i, "best": 0.5}),
            },
            None,
        ),
        _ => NewNode::message(NodeKind::Note, None, format!("note {i}")),
    }
}

async fn build(size: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.storage.data_dir = dir.path().to_path_buf();
    let mgr = SessionManager::open(&config).await.unwrap();
    let (u, _) = mgr.add_user("bench", true).await.unwrap();
    let caller: Caller = u.into();
    let session = mgr
        .create_session(
            &caller,
            CreateSession {
                name: "bench".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id;
    let mut i = 0;
    while i < size {
        // A small first batch puts the `old` checkpoint early in the history.
        let n = (size - i).min(if i == 0 { 100 } else { 1000 });
        let batch = (i..i + n).map(node).collect();
        mgr.append_nodes(&caller, &session, "main", batch, None)
            .await
            .unwrap();
        if i == 0 {
            mgr.create_checkpoint(&caller, &session, "old", None, None)
                .await
                .unwrap();
        }
        i += n;
    }
    mgr.create_branch(&caller, &session, "restore-target", None)
        .await
        .unwrap();
    mgr.create_checkpoint(&caller, &session, "recent", None, None)
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        mgr,
        caller,
        session,
    }
}

/// Returns the CPU time used so far by every live thread of this process (Linux schedstat).
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Times `iters` runs of `op`: wall time, or process CPU time with `KILN_BENCH_CPU=1`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    let cpu = std::env::var("KILN_BENCH_CPU").is_ok_and(|v| v == "1");
    let (wall, start) = (Instant::now(), if cpu { cpu_time() } else { None });
    for _ in 0..iters {
        std::hint::black_box(rt.block_on(op()));
    }
    match (start, cpu_time()) {
        (Some(a), Some(b)) if cpu => b.saturating_sub(a),
        _ => wall.elapsed(),
    }
}

fn sizes() -> Vec<usize> {
    std::env::var("KILN_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 10_000, 100_000])
}

fn tree(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let counter = AtomicU64::new(0);
    let fresh = |stem: &str| format!("{stem}-{}", counter.fetch_add(1, Ordering::Relaxed));
    let mut g = c.benchmark_group("tree");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    for size in sizes() {
        let f = rt.block_on(build(size));
        let (m, a, s) = (&f.mgr, &f.caller, f.session.as_str());
        g.bench_function(BenchmarkId::new("append_turn", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || async {
                    let turn = vec![
                        NewNode::message(NodeKind::User, None, "What limits the rate?"),
                        NewNode::message(NodeKind::Assistant, None, "Li diffusion along b."),
                    ];
                    m.append_nodes(a, s, "main", turn, None).await.unwrap()
                })
            })
        });
        g.bench_function(BenchmarkId::new("read_last_50", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || async {
                    m.messages(a, s, "main", Some(50), None).await.unwrap()
                })
            })
        });
        g.bench_function(BenchmarkId::new("fork", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || {
                    let name = fresh("fork");
                    async move {
                        let from = Some(BranchFrom::Branch("main".into()));
                        m.create_branch(a, s, &name, from).await.unwrap()
                    }
                })
            })
        });
        g.bench_function(BenchmarkId::new("checkpoint", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || {
                    let name = fresh("cp");
                    async move { m.create_checkpoint(a, s, &name, None, None).await.unwrap() }
                })
            })
        });
        g.bench_function(BenchmarkId::new("restore", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || async {
                    m.restore(a, s, "recent", Some("restore-target"))
                        .await
                        .unwrap()
                })
            })
        });
        g.bench_function(BenchmarkId::new("state_at_head", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || async {
                    m.state(a, s, "main", None).await.unwrap()
                })
            })
        });
        g.bench_function(BenchmarkId::new("state_at_old_checkpoint", size), |b| {
            b.iter_custom(|n| {
                timed(&rt, n, || async {
                    m.state(a, s, "main", Some("old")).await.unwrap()
                })
            })
        });
        rt.block_on(f.mgr.close());
    }
    g.finish();
}

criterion_group!(benches, tree);
criterion_main!(benches);
