//! `kiln bench search`: issue 5's search measurements. Generates a corpus (nodes spread over
//! sessions, in ten projects, one formula in every fifth message), builds the tantivy index
//! and, in the same run, SQLite FTS5 over the same texts; then times single-term, phrase,
//! prefix, filtered and fuzzy queries through `SessionManager::search_sessions` (the whole path a
//! user's request takes: permissions, filters, index, branches per hit) and the FTS5
//! equivalents, and how long a new message takes to become searchable. One JSON object.
//!
//! `--no-fts5` times Kiln alone (FTS5's queries take about a second each at 1M nodes).
//!
//! `--hot N` adds the skewed case of issue 13 (item 11): one session holding N of the nodes,
//! every one mentioning the same word, searched for that word (`skewed`) while the rest stay
//! spread thinly (`single_term`).

use std::time::Instant;

use anyhow::{bail, ensure};
use clap::Args;
use kiln_session::{CreateSession, NewNode, SearchParams};
use kiln_types::NodeKind;
use serde_json::json;

use super::super::context::{self, Cli as _, GlobalArgs};
use super::log;
use super::textgen::{SplitMix64, VOCABULARY};

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Nodes in the corpus.
    #[arg(long, default_value_t = 1_000_000)]
    pub nodes: usize,
    /// Sessions they are spread over.
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Timed runs of each query kind.
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Nodes (of `--nodes`) in one extra session, each mentioning the word `kimberlite`.
    #[arg(long, default_value_t = 0)]
    pub hot: usize,
    /// Skip SQLite FTS5 (its build and queries): time Kiln's search alone.
    #[arg(long)]
    pub no_fts5: bool,
}

/// The word every node of the hot session mentions (not in the generated vocabulary).
const HOT_WORD: &str = "kimberlite";

/// A query kind: its name, the Kiln search, and the FTS5 query with its project and kind.
type QueryCase = (
    &'static str,
    SearchParams,
    String,
    Option<&'static str>,
    Option<&'static str>,
);

const FORMULAS: [&str; 8] = [
    "LiFePO4", "LiCoO2", "CsPbI3", "LiMn2O4", "NaCl", "MgO", "BaTiO3", "SrTiO3",
];

fn text(rng: &mut SplitMix64, words: &[&str], i: usize) -> String {
    let n = 8 + (rng.next_u64() % 13) as usize;
    let mut t: Vec<&str> = (0..n)
        .map(|_| words[(rng.next_u64() % words.len() as u64) as usize])
        .collect();
    if i.is_multiple_of(5) {
        t.push(FORMULAS[(rng.next_u64() % FORMULAS.len() as u64) as usize]);
    }
    t.join(" ")
}

fn percentiles(mut v: Vec<f64>) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "max_ms": at(1.0), "runs": v.len()})
}

pub async fn run(global: &GlobalArgs, args: SearchArgs) -> anyhow::Result<()> {
    ensure!(
        args.sessions >= 1 && args.nodes >= args.sessions + args.hot,
        "need nodes >= sessions + hot, sessions >= 1"
    );
    ensure!(args.queries >= 1, "--queries must be at least 1");
    let config = context::load_config(global)?;
    if config.db_path().exists() {
        bail!(
            "{} exists: bench search needs a fresh --data-dir",
            config.db_path().display()
        );
    }
    let (_, mgr) = context::open(global).await?;
    let caller = mgr.local_caller(None).await.cli()?;
    let words: Vec<&str> = VOCABULARY.split_whitespace().collect();
    let mut rng = SplitMix64::new(args.seed);

    log(&format!(
        "writing {} nodes over {} sessions",
        args.nodes, args.sessions
    ));
    let start = Instant::now();
    let spread = args.nodes - args.hot;
    let per = spread / args.sessions;
    let mut written = 0usize;
    for s in 0..args.sessions {
        let session = mgr
            .create_session(
                &caller,
                CreateSession {
                    name: format!("study {s}"),
                    project: Some(format!("p{}", s % 10)),
                    ..Default::default()
                },
            )
            .await
            .cli()?;
        let count = if s + 1 == args.sessions {
            spread - written
        } else {
            per
        };
        let mut i = 0;
        while i < count {
            let batch: Vec<NewNode> = (i..(i + 32).min(count))
                .map(|j| {
                    let kind = if j % 2 == 0 {
                        NodeKind::User
                    } else {
                        NodeKind::Assistant
                    };
                    NewNode::message(
                        kind,
                        Some(caller.user_id.clone()),
                        text(&mut rng, &words, j),
                    )
                })
                .collect();
            i += batch.len();
            mgr.append_nodes(&caller, &session.id, "main", batch, None)
                .await
                .cli()?;
        }
        written += count;
        if s % 500 == 0 {
            log(&format!("{written} nodes"));
        }
    }
    if args.hot > 0 {
        log(&format!(
            "one session of {} nodes mentioning {HOT_WORD}",
            args.hot
        ));
        let hot = mgr
            .create_session(
                &caller,
                CreateSession {
                    name: "hot".into(),
                    project: Some("p0".into()),
                    ..Default::default()
                },
            )
            .await
            .cli()?;
        let mut i = 0;
        while i < args.hot {
            let batch: Vec<NewNode> = (i..(i + 32).min(args.hot))
                .map(|j| {
                    NewNode::message(
                        NodeKind::User,
                        Some(caller.user_id.clone()),
                        format!("{HOT_WORD} {}", text(&mut rng, &words, j)),
                    )
                })
                .collect();
            i += batch.len();
            mgr.append_nodes(&caller, &hot.id, "main", batch, None)
                .await
                .cli()?;
        }
    }
    let write_s = start.elapsed().as_secs_f64();

    log("building the tantivy index");
    let start = Instant::now();
    let indexed = mgr.reindex(|_, _| {}).await.cli()?;
    let index_s = start.elapsed().as_secs_f64();
    let fts_build_s = if args.no_fts5 {
        None
    } else {
        log("building SQLite FTS5 over the same texts");
        Some(mgr.db().fts5_build().await?.as_secs_f64())
    };

    let mut kinds: Vec<QueryCase> = vec![
        (
            "single_term",
            params("perovskite", None),
            "perovskite".into(),
            None,
            None,
        ),
        (
            "phrase",
            params("\"band gap\"", None),
            "\"band gap\"".into(),
            None,
            None,
        ),
        (
            "filtered",
            SearchParams {
                kind: Some("user".into()),
                ..params("anneal", Some("p3"))
            },
            "anneal".into(),
            Some("p3"),
            Some("user"),
        ),
        (
            "prefix",
            params("perov*", None),
            "perov*".into(),
            None,
            None,
        ),
        // FTS5 has no typo tolerance; its nearest is a prefix query.
        (
            "fuzzy",
            params("perovskte", None),
            "perovsk*".into(),
            None,
            None,
        ),
    ];
    if args.hot > 0 {
        // One session holds every match.
        kinds.push((
            "skewed",
            params(HOT_WORD, None),
            HOT_WORD.into(),
            None,
            None,
        ));
    }
    let mut results = serde_json::Map::new();
    for (name, p, fts_q, project, kind) in kinds {
        log(&format!("{name}: {} runs each", args.queries));
        let mut kiln_ms = Vec::new();
        let mut sessions_found = 0;
        for _ in 0..args.queries {
            let t = Instant::now();
            let page = mgr.search_sessions(&caller, p.clone()).await.cli()?;
            kiln_ms.push(t.elapsed().as_secs_f64() * 1e3);
            sessions_found = page.items.len();
        }
        let mut fts_ms = Vec::new();
        let mut fts_rows = 0;
        for _ in 0..if args.no_fts5 { 0 } else { args.queries } {
            let t = Instant::now();
            fts_rows = mgr
                .db()
                .fts5_query(&caller.user_id, &fts_q, project, kind, 50)
                .await?;
            fts_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        results.insert(
            name.into(),
            json!({"kiln": percentiles(kiln_ms), "kiln_sessions_on_page": sessions_found,
                   "fts5": (!fts_ms.is_empty()).then(|| percentiles(fts_ms)),
                   "fts5_rows": fts_rows, "fts5_query": fts_q}),
        );
    }

    // Freshness: a new message, then the first search that finds it.
    let probe = mgr
        .create_session(
            &caller,
            CreateSession {
                name: "probe".into(),
                ..Default::default()
            },
        )
        .await
        .cli()?;
    let t = Instant::now();
    mgr.append_nodes(
        &caller,
        &probe.id,
        "main",
        vec![NewNode::message(NodeKind::User, None, "xenotime monazite")],
        None,
    )
    .await
    .cli()?;
    let found = mgr
        .search_sessions(&caller, params("xenotime", None))
        .await
        .cli()?;
    let visible_ms = t.elapsed().as_secs_f64() * 1e3;
    ensure!(found.items.len() == 1, "the new message was not found");
    if fts_build_s.is_some() {
        mgr.db().fts5_drop().await?;
    }
    mgr.close().await;

    let out = json!({
        "system": "kiln search (tantivy) vs SQLite FTS5, same corpus, same run",
        "nodes": args.nodes, "sessions": args.sessions, "seed": args.seed, "hot": args.hot,
        "write_s": write_s,
        "index_s": index_s, "index_nodes_per_s": indexed as f64 / index_s,
        "fts5_build_s": fts_build_s,
        "fts5_nodes_per_s": fts_build_s.map(|s| args.nodes as f64 / s),
        "queries": results,
        "visible_after_write_ms": visible_ms,
        "how": "kiln = SessionManager::search_sessions (readable sessions in SQL, tantivy, \
                branches per hit, 10 sessions x 5 hits); fts5 = MATCH joined to sessions for \
                the same permission and project filters, ORDER BY rank LIMIT 50, with snippet()",
    });
    if global.json {
        println!("{out}");
    } else {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

fn params(q: &str, project: Option<&str>) -> SearchParams {
    SearchParams {
        q: q.into(),
        project: project.map(str::to_string),
        ..Default::default()
    }
}
