//! Benchmarks of `workflow-hash`: golden rows and synthetic workflows (500 nodes = 92 KB of
//! JSON), from a parsed value and from text.

use std::hint::black_box;

use benches::workflow::{golden_text, synthetic_workflow};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use workflow_hash::WorkflowHash;

fn bench_hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("hash_value");
    for name in ["real/simple-txt2img.json", "real/T2I-anime-nova-xl.json"] {
        let value: Value = serde_json::from_str(&golden_text(name)).expect("golden row parses");
        group.bench_function(name, |b| b.iter(|| WorkflowHash::of(black_box(&value))));
    }
    for nodes in [50, 500] {
        let value = synthetic_workflow(nodes);
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_with_input(BenchmarkId::new("synthetic", nodes), &value, |b, v| {
            b.iter(|| WorkflowHash::of(black_box(v)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("hash_text");
    for name in ["real/simple-txt2img.json", "real/T2I-anime-nova-xl.json"] {
        let text = golden_text(name);
        group.bench_function(name, |b| b.iter(|| WorkflowHash::of_json(black_box(&text))));
    }
    let text = synthetic_workflow(500).to_string();
    group.bench_function("synthetic/500", |b| {
        b.iter(|| WorkflowHash::of_json(black_box(&text)));
    });
    group.finish();

    let value = synthetic_workflow(50);
    c.bench_function("canonical_json/synthetic/50", |b| {
        b.iter(|| workflow_hash::canonical_json(black_box(&value)));
    });
}

criterion_group!(benches, bench_hash);
criterion_main!(benches);
