//! Metric tracks at 1M points: appending a 10,000-point batch to a track already holding 1M,
//! reading a 1,000-point page at a random index and by step range, and the stats of the whole
//! track (100 batches) — the store's side of the notebook's track routes.
//!
//! `cargo bench -p kiln-db --bench tracks`; `KILN_BENCH_POINTS=100000` picks the size.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kiln_db::{Db, DbOptions, NewSession, Point, TRACK_CHUNK};
use kiln_types::SessionType;
use tokio::runtime::Runtime;

const BATCH: usize = 10_000;
const PAGE: u64 = 1_000;

fn points(from: usize, n: usize) -> Vec<Point> {
    (from..from + n)
        .map(|i| {
            [
                ("step".to_owned(), i as f64),
                ("epoch".to_owned(), (i / 1000) as f64),
                ("value".to_owned(), 1.0 / (1.0 + i as f64)),
            ]
            .into()
        })
        .collect()
}

/// A cheap deterministic sequence for the read offsets.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

fn tracks(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let total: usize = std::env::var("KILN_BENCH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let (db, session) = rt.block_on(async {
        let db = Db::open(&dir.path().join("kiln.db"), &DbOptions::default())
            .await
            .unwrap();
        let user = db.create_user("bench", true, b"h").await.unwrap().id;
        let s = db
            .create_session(
                NewSession {
                    owner_id: user.clone(),
                    name: "tracks".into(),
                    description: String::new(),
                    session_type: SessionType::Interactive,
                    project: None,
                    tags: vec![],
                    metadata: serde_json::json!({}),
                    config: Default::default(),
                    template: None,
                    folder: "/".into(),
                },
                &user,
            )
            .await
            .unwrap();
        (db, s.id)
    });
    let start = Instant::now();
    let mut batches = Vec::new();
    rt.block_on(async {
        for from in (0..total).step_by(BATCH) {
            let b = db
                .append_track_batch(&session, "loss", &points(from, BATCH), "bench")
                .await
                .unwrap();
            batches.push(b.batch);
        }
    });
    let filled = start.elapsed();
    eprintln!(
        "filled {total} points in {} batches of {BATCH}: {filled:?} ({:.0} points/s)",
        batches.len(),
        total as f64 / filled.as_secs_f64()
    );

    let mut g = c.benchmark_group("tracks_1m");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    let mut from = total;
    g.bench_function("append_10k_batch", |b| {
        b.iter(|| {
            rt.block_on(db.append_track_batch(&session, "extra", &points(from, BATCH), "bench"))
                .unwrap();
            from += BATCH;
        })
    });
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    g.bench_function("read_1k_by_index", |b| {
        b.iter(|| {
            let offset = next(&mut seed) % (total as u64 - PAGE);
            // What the notebook's read does: the batches the page spans, their chunks.
            let mut got = 0;
            let mut at = offset;
            while got < PAGE {
                let batch = batches[(at / BATCH as u64) as usize];
                let within = at % BATCH as u64;
                let last = ((within + PAGE - got).min(BATCH as u64) - 1) / TRACK_CHUNK as u64;
                let pts = rt
                    .block_on(db.track_points(
                        &session,
                        batch,
                        (within / TRACK_CHUNK as u64) as i64,
                        last as i64,
                        None,
                    ))
                    .unwrap();
                let taken = pts
                    .iter()
                    .filter(|(i, _)| *i >= within)
                    .take((PAGE - got) as usize)
                    .count() as u64;
                got += taken;
                at += taken;
            }
        })
    });
    g.bench_function("read_1k_by_step", |b| {
        b.iter(|| {
            let lo = (next(&mut seed) % (total as u64 - PAGE)) as f64;
            let hi = lo + PAGE as f64 - 1.0;
            let mut got = 0;
            // The batches' step ranges are known from their rows; here they follow the index.
            let first = lo as usize / BATCH;
            let last = hi as usize / BATCH;
            for &batch in &batches[first..=last.min(batches.len() - 1)] {
                let pts = rt
                    .block_on(db.track_points(
                        &session,
                        batch,
                        0,
                        (BATCH / TRACK_CHUNK) as i64,
                        Some((lo, hi)),
                    ))
                    .unwrap();
                got += pts
                    .iter()
                    .filter(|(_, p)| p["step"] >= lo && p["step"] <= hi)
                    .count();
            }
            assert_eq!(got, PAGE as usize);
        })
    });
    g.bench_function("stats_100_batches", |b| {
        b.iter(|| {
            let rows = rt.block_on(db.track_batches(&session, &batches)).unwrap();
            assert_eq!(rows.len(), batches.len());
        })
    });
    g.finish();
}

criterion_group!(benches, tracks);
criterion_main!(benches);
