//! Durable job store benchmarks (`pool-store`).
//!
//! - `store/sqlite_insert_64_callers`: durable enqueue — 1,024 jobs (7-node workflow) inserted
//!   by 64 concurrent callers into a SQLite file (WAL, `synchronous = FULL`); group commit lets
//!   them share fsyncs. Throughput in jobs/s.
//! - `store/sqlite_update_64_callers`: 1,024 write-ahead transitions, 64 callers each advancing
//!   its own job.
//! - `store/postgres_*`: the same against the run's PostgreSQL (`test_infra::pg_url`).
//! - Bytes on disk per finished job (SQLite): 2,000 jobs run to completion (five transitions
//!   each), the file measured after close, less an empty store's file; printed before the
//!   groups and recorded as `store_bytes_per_finished_job`. Their results repeat their
//!   attempts in their timings, as the pool's results do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::record_figure;
use benches::runtime;
use benches::workflow::golden;
use criterion::{Criterion, Throughput, criterion_group};
use pool_core::{
    AttemptOutcome, AttemptRecord, JobOptions, JobOutput, JobRecord, JobSpec, JobStore, Timestamp,
    Transition, WorkflowHash,
};
use pool_store::{PostgresStore, SqliteStore};
use serde_json::json;

const CALLERS: usize = 64;
const BATCH: usize = 1024;
const FINISHED: usize = 2000;

/// `n` jobs accepted now, ids unique across calls.
fn jobs(spec: &Arc<JobSpec>, n: usize, prefix: &str) -> Vec<JobRecord> {
    let now = Timestamp::now();
    (0..n)
        .map(|i| JobRecord::new(format!("{prefix}-{i}").into(), Arc::clone(spec), now))
        .collect()
}

fn spec() -> Arc<JobSpec> {
    let workflow = golden("real/simple-txt2img.json");
    let hash = WorkflowHash::of(&workflow).unwrap_or_else(|e| panic!("hash: {e}"));
    Arc::new(JobSpec::new(
        Arc::new(workflow),
        hash,
        JobOptions::new().tenant("acme").metadata("user", "bench"),
    ))
}

/// Runs `op` on every item, `CALLERS` tasks at a time; the wall time.
async fn concurrently<T, F, Fut>(items: Vec<T>, op: F) -> Duration
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let mut chunks: Vec<Vec<T>> = (0..CALLERS).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        chunks[i % CALLERS].push(item);
    }
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for chunk in chunks {
        let op = op.clone();
        set.spawn(async move {
            for item in chunk {
                op(item).await;
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap_or_else(|e| panic!("task: {e}"));
    }
    start.elapsed()
}

async fn insert_all(store: &Arc<dyn JobStore>, records: Vec<JobRecord>) -> Duration {
    let store = Arc::clone(store);
    concurrently(records, move |record| {
        let store = Arc::clone(&store);
        async move {
            store
                .insert(&record)
                .await
                .unwrap_or_else(|e| panic!("insert: {e}"));
        }
    })
    .await
}

/// `BATCH` updates: each caller advances its own job `BATCH / CALLERS` times.
async fn update_all(store: &Arc<dyn JobStore>, records: &mut [JobRecord]) -> Duration {
    let per_caller = BATCH / CALLERS;
    let owned: Vec<JobRecord> = records.to_vec();
    let store = Arc::clone(store);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let elapsed = concurrently(owned, move |mut record| {
        let (store, tx) = (Arc::clone(&store), tx.clone());
        async move {
            for _ in 0..per_caller {
                let t = Transition::PromptSubmitted { attempt: 1 };
                record.apply(&t, Timestamp::now());
                store
                    .update(&record, &t)
                    .await
                    .unwrap_or_else(|e| panic!("update: {e}"));
            }
            let _ = tx.send(record);
        }
    })
    .await;
    rx.close();
    let mut advanced = Vec::new();
    while let Some(record) = rx.recv().await {
        advanced.push(record);
    }
    for record in records.iter_mut() {
        if let Some(new) = advanced.iter().find(|r| r.id == record.id) {
            *record = new.clone();
        }
    }
    elapsed
}

fn dispatched() -> Transition {
    let attempt = serde_json::from_value(json!({
        "attempt": 1, "server": "gpu-1", "prompt_id": "6f1c0a52-3c2e-4a43-9a8e-5b1f0f0d2f11",
        "started_at": Timestamp::now().as_millis(), "duration_ms": 0.0,
        "outcome": {"status": "running"},
    }))
    .unwrap_or_else(|e| panic!("attempt: {e}"));
    Transition::Dispatched { attempt }
}

/// A successful end, its timings repeating the job's `attempts` as the pool's results do.
fn completed(id: &str, attempts: &[AttemptRecord]) -> Transition {
    let attempts = serde_json::to_value(attempts).unwrap_or_else(|e| panic!("attempts: {e}"));
    let output: JobOutput = serde_json::from_value(json!({
        "job": id, "server": "gpu-1", "prompt_id": "6f1c0a52-3c2e-4a43-9a8e-5b1f0f0d2f11",
        "outputs": {"9": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}]}},
        "seeds": [{"node": "3", "input": "seed", "value": 156680208700286_u64}],
        "metadata": {"user": "bench"},
        "timings": {"queue_wait_ms": 12.5, "total_ms": 2300.0, "attempts": attempts, "nodes": [
            {"node": "4", "duration_ms": 0.0, "cached": true},
            {"node": "3", "duration_ms": 2100.0, "cached": false},
            {"node": "8", "duration_ms": 150.0, "cached": false},
            {"node": "9", "duration_ms": 40.0, "cached": false}
        ]},
    }))
    .unwrap_or_else(|e| panic!("output: {e}"));
    Transition::Finished {
        outcome: Ok(Arc::new(output)),
    }
}

/// Bytes on disk per finished job in a SQLite store.
fn bytes_per_finished_job(rt: &tokio::runtime::Runtime) -> f64 {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let size = |path: &std::path::Path| {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = path.as_os_str().to_owned();
                name.push(suffix);
                std::fs::metadata(name).ok().map(|m| m.len())
            })
            .sum::<u64>()
    };
    let empty = dir.path().join("empty.db");
    let full = dir.path().join("full.db");
    rt.block_on(async {
        SqliteStore::open(&empty)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"))
            .close()
            .await;
        let store = SqliteStore::open(&full)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"));
        let store: Arc<dyn JobStore> = Arc::new(store);
        let records = jobs(&spec(), FINISHED, "done");
        insert_all(&store, records.clone()).await;
        let run = Arc::new(move |mut record: JobRecord| {
            let store = Arc::clone(&store);
            async move {
                let id = record.id.to_string();
                let transitions = [
                    dispatched(),
                    Transition::PromptSubmitted { attempt: 1 },
                    Transition::ExecutionStarted { attempt: 1 },
                    Transition::AttemptEnded {
                        attempt: 1,
                        outcome: AttemptOutcome::Succeeded,
                        reason: None,
                        duration: Duration::from_millis(2300),
                    },
                ];
                for t in &transitions {
                    record.apply(t, Timestamp::now());
                    store
                        .update(&record, t)
                        .await
                        .unwrap_or_else(|e| panic!("update: {e}"));
                }
                let end = completed(&id, &record.attempts);
                record.apply(&end, Timestamp::now());
                store
                    .update(&record, &end)
                    .await
                    .unwrap_or_else(|e| panic!("update: {e}"));
            }
        });
        concurrently(records, move |record| run(record)).await;
    });
    // Reopen and close, so the write-ahead log is folded back into the file.
    rt.block_on(async {
        SqliteStore::open(&full)
            .await
            .unwrap_or_else(|e| panic!("open: {e}"))
            .close()
            .await;
    });
    (size(&full) as f64 - size(&empty) as f64) / FINISHED as f64
}

fn bench_backend(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    store: &Arc<dyn JobStore>,
) {
    let spec = spec();
    let mut group = c.benchmark_group("store");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    let mut round = 0usize;
    group.bench_function(format!("{name}_insert_{CALLERS}_callers"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (store, spec) = (Arc::clone(store), Arc::clone(&spec));
            round += 1;
            let prefix = format!("insert-{round}");
            async move {
                let mut total = Duration::ZERO;
                for i in 0..iters {
                    total += insert_all(&store, jobs(&spec, BATCH, &format!("{prefix}-{i}"))).await;
                }
                total
            }
        });
    });
    let mut records = jobs(&spec, CALLERS, "update");
    rt.block_on(async {
        insert_all(store, records.clone()).await;
        for record in &mut records {
            let t = dispatched();
            record.apply(&t, Timestamp::now());
            store
                .update(record, &t)
                .await
                .unwrap_or_else(|e| panic!("update: {e}"));
        }
    });
    group.bench_function(format!("{name}_update_{CALLERS}_callers"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                total += rt.block_on(update_all(store, &mut records));
            }
            total
        });
    });
    group.finish();
}

fn bench_store(c: &mut Criterion) {
    let rt = runtime();
    record_figure(
        "store_bytes_per_finished_job",
        "SQLite bytes on disk per finished job (7-node workflow)",
        bytes_per_finished_job(&rt),
        "bytes",
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let sqlite = rt.block_on(async {
        SqliteStore::open(dir.path().join("bench.db"))
            .await
            .unwrap_or_else(|e| panic!("open: {e}"))
    });
    let sqlite = Arc::new(sqlite);
    let as_job_store: Arc<dyn JobStore> = sqlite.clone();
    bench_backend(c, &rt, "sqlite", &as_job_store);
    let stats = sqlite.write_stats();
    println!(
        "sqlite: {} writes in {} commits ({:.1} writes per commit)",
        stats.writes,
        stats.commits,
        stats.writes as f64 / stats.commits.max(1) as f64
    );

    let url = test_infra::fresh_database(&test_infra::pg_url());
    let postgres = rt.block_on(async {
        PostgresStore::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("connect: {e}"))
    });
    let postgres: Arc<dyn JobStore> = Arc::new(postgres);
    bench_backend(c, &rt, "postgres", &postgres);
}

criterion_group!(benches, bench_store);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
