//! Client overhead per trivial prompt against a local `comfy-sim` with zero execution
//! time: one `run` at a time (latency) and 16 runs in flight (throughput); and the parsing
//! of the websocket text frames of one recorded run of ComfyUI 0.3.64 (every frame of
//! `ws-01-success`, the client's share of every message a pool receives).

use std::time::Duration;

use comfy_client::{Client, Event, RunOptions};
use comfy_sim::{SimConfig, SimServer};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn trivial() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "bench"}}
    })
}

async fn run_once(client: &Client, workflow: Value) {
    let exec = client
        .run(workflow, RunOptions::default())
        .await
        .unwrap_or_else(|e| panic!("submit failed: {e}"));
    if let Err(e) = exec.wait().await {
        panic!("run failed: {e}");
    }
}

fn bench_client(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let (sim, client) = rt.block_on(async {
        let sim = SimServer::start(SimConfig::default())
            .await
            .unwrap_or_else(|e| panic!("sim: {e}"));
        let client = Client::builder(sim.url())
            .build()
            .unwrap_or_else(|e| panic!("client: {e}"));
        assert!(client.wait_connected(Duration::from_secs(5)).await);
        (sim, client)
    });

    let mut group = c.benchmark_group("client_run");
    group.sample_size(30);
    group.throughput(Throughput::Elements(1));
    group.bench_function("sequential", |b| {
        b.to_async(&rt).iter(|| run_once(&client, trivial()));
    });
    group.throughput(Throughput::Elements(16));
    group.bench_function("concurrent_16", |b| {
        b.to_async(&rt).iter(|| async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let client = client.clone();
                set.spawn(async move { run_once(&client, trivial()).await });
            }
            while let Some(done) = set.join_next().await {
                done.unwrap_or_else(|e| panic!("task: {e}"));
            }
        });
    });
    group.finish();
    drop(client);
    drop(sim);
}

/// The text frames the server sent in a recorded successful run.
fn recorded_frames() -> Vec<String> {
    const RUN: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/comfy-client/tests/fixtures/transcripts/ws-01-success.jsonl"
    ));
    RUN.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|row| row["dir"] == "in" && row["frame"] == "text")
        .filter_map(|row| row["raw"].as_str().map(str::to_owned))
        .collect()
}

fn bench_events(c: &mut Criterion) {
    let frames = recorded_frames();
    assert!(frames.len() >= 10, "{} frames", frames.len());
    let mut group = c.benchmark_group("client_events");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("parse_text_one_run", |b| {
        b.iter(|| {
            for frame in &frames {
                let event = Event::parse_text(frame).unwrap_or_else(|e| panic!("parse: {e}"));
                std::hint::black_box(event);
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench_client, bench_events);
criterion_main!(benches);
