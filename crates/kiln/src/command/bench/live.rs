//! `kiln bench live`: server-sent event fan-out (issue 16) — N watchers on one session's
//! `GET /v1/sessions/{id}/events/stream` over loopback HTTP, then writes one at a time; for each
//! write, the time until every watcher has received it (the slowest watcher), and the median
//! watcher's time.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Args;
use kiln_agent::Agent;
use serde_json::json;

use super::super::context::{self, GlobalArgs};
use super::log;

#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Watchers of the one session.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Timed writes (each waits until every watcher has it).
    #[arg(long, default_value_t = 20)]
    pub writes: usize,
}

pub async fn run(global: &GlobalArgs, args: LiveArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=10_000).contains(&args.watchers),
        "--watchers must be between 1 and 10000"
    );
    ensure!(
        (1..=10_000).contains(&args.writes),
        "--writes must be between 1 and 10000"
    );
    let mut global = global.clone();
    let scratch = match &global.data_dir {
        Some(_) => None,
        None => {
            let dir = std::env::temp_dir().join(format!("kiln-bench-live-{}", std::process::id()));
            global.data_dir = Some(dir.clone());
            Some(dir)
        }
    };
    let result = measure(&global, &args).await;
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let (all, median) = result?;
    let pct = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    if global.json {
        println!(
            "{}",
            json!({
                "watchers": args.watchers, "writes": args.writes,
                "all_watchers_ms": {"p50": pct(&all, 0.5), "p95": pct(&all, 0.95), "max": pct(&all, 1.0)},
                "median_watcher_ms": {"p50": pct(&median, 0.5)},
            })
        );
    } else {
        println!(
            "{} watchers, {} writes: every watcher has a write after {:.1} ms (p50), {:.1} ms (p95), {:.1} ms (max); the median watcher after {:.1} ms (p50)",
            args.watchers,
            args.writes,
            pct(&all, 0.5),
            pct(&all, 0.95),
            pct(&all, 1.0),
            pct(&median, 0.5)
        );
    }
    Ok(())
}

/// Per write: the slowest and the median watcher's delay, in ms, each list sorted.
async fn measure(global: &GlobalArgs, args: &LiveArgs) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let (config, mgr) = context::open(global).await?;
    let (_, token) = mgr
        .add_user("bench", true)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let agent = Agent::from_config(mgr.clone(), &config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut server = config.server.clone();
    server.max_connections = server.max_connections.max(args.watchers + 64);
    let state = kiln_server::AppState::new(agent, server.max_body_bytes)
        .with_server_config(&server)
        .with_public_url(base.clone());
    let srv = tokio::spawn(kiln_server::serve(listener, state, std::future::pending()));
    let http = reqwest::Client::new();
    let s: serde_json::Value = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&token)
        .json(&json!({"name": "fan-out"}))
        .send()
        .await?
        .json()
        .await?;
    let id = s["id"].as_str().context("no session id")?.to_owned();
    log(&format!("starting {} watchers", args.watchers));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut tasks = Vec::new();
    for _ in 0..args.watchers {
        let (http, url, token, tx, ready) = (
            http.clone(),
            format!("{base}/v1/sessions/{id}/events/stream?max_seconds=3600"),
            token.clone(),
            tx.clone(),
            ready_tx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let Ok(mut resp) = http.get(url).bearer_auth(token).send().await else {
                return;
            };
            let mut buf = String::new();
            let mut snapshot = false;
            while let Ok(Some(chunk)) = resp.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(cut) = buf.find("\n\n") {
                    let block: String = buf.drain(..cut + 2).collect();
                    if !snapshot && block.contains("event: snapshot") {
                        snapshot = true;
                        let _ = ready.send(());
                    }
                    // Each write says `fanout <n>`; report the first time this watcher sees it.
                    let mut rest = block.as_str();
                    while let Some(at) = rest.find("fanout ") {
                        let digits: String = rest[at + 7..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        if let Ok(n) = digits.parse() {
                            let _ = tx.send((n, Instant::now()));
                        }
                        rest = &rest[at + 7..];
                    }
                }
            }
        }));
    }
    for _ in 0..args.watchers {
        tokio::time::timeout(Duration::from_secs(60), ready_rx.recv())
            .await
            .context("watchers did not all connect within 60 s")?;
    }
    log(&format!("{} watchers connected; writing", args.watchers));
    let (mut all, mut median) = (Vec::new(), Vec::new());
    for n in 0..args.writes {
        let t0 = Instant::now();
        let r = http
            .post(format!("{base}/v1/sessions/{id}/branches/main/messages"))
            .bearer_auth(&token)
            .json(&json!({"role": "user", "content": format!("fanout {n}")}))
            .send()
            .await?;
        ensure!(r.status().is_success(), "the write failed: {}", r.status());
        let mut seen: Vec<f64> = Vec::with_capacity(args.watchers);
        while seen.len() < args.watchers {
            let (m, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("not every watcher saw the write within 30 s")?
                .context("the watchers stopped")?;
            if m == n {
                seen.push(at.duration_since(t0).as_secs_f64() * 1000.0);
            }
        }
        seen.sort_by(f64::total_cmp);
        all.push(seen[seen.len() - 1]);
        median.push(seen[seen.len() / 2]);
        // Writes spaced out so each is measured from a quiet start.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for t in tasks {
        t.abort();
    }
    srv.abort();
    all.sort_by(f64::total_cmp);
    median.sort_by(f64::total_cmp);
    Ok((all, median))
}
