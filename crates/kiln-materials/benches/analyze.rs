//! Throughput of parse + full analysis on the cross-check compound list (formulas per second).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_materials::{analyze, parse, similar_str};

const COMPOUNDS: &str = include_str!("../../../scripts/data/compounds.txt");

fn formulas() -> Vec<&'static str> {
    COMPOUNDS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn bench(c: &mut Criterion) {
    let list = formulas();
    let mut g = c.benchmark_group("compounds");
    g.throughput(Throughput::Elements(list.len() as u64));
    g.bench_function("parse_list", |b| {
        b.iter(|| {
            for f in &list {
                let _ = black_box(parse(black_box(f)));
            }
        })
    });
    g.bench_function("analyze_list", |b| {
        b.iter(|| {
            for f in &list {
                let _ = black_box(analyze(black_box(f)));
            }
        })
    });
    g.finish();
    c.bench_function("similar_LiFePO4", |b| {
        b.iter(|| similar_str(black_box("LiFePO4"), 10))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
