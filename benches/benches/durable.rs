//! The pool with a durable store (`pool-store`'s SQLite store).
//!
//! - `durable/pool_enqueue_sqlite_64_callers`: 1,024 jobs (7-node workflow) through
//!   `Pool::enqueue` by 64 concurrent callers on an SQLite file (WAL, `synchronous = FULL`);
//!   each enqueue returns once its record is committed, concurrent ones sharing a commit.
//!   The one server never finishes a prompt, so acceptance alone is measured. Jobs/s.
//! - `durable/pool_memory_4x1`, `durable/pool_sqlite_4x1`: 200 trivial prompts on 4 simulated
//!   servers with zero execution time, one prompt in flight per server and one waiting in
//!   its queue (`queue_ahead(1)`), all enqueued at once,
//!   through a pool without a store and through one keeping every transition in an SQLite
//!   file (the write-ahead of each prompt id before its POST, the terminal state before its
//!   event).
//!   Their throughput ratio over interleaved runs is recorded as
//!   `pool_sqlite_vs_memory_ratio`; the same with `synchronous = NORMAL` (interleaved with
//!   them) as `pool_sqlite_normal_vs_memory_ratio`. Where the time goes: the CPU time of
//!   the store's writer thread per job (`pool_sqlite_writer_cpu_per_job`) and the cores
//!   busy while the SQLite pool runs (`pool_sqlite_cores_used`), both printed beside the
//!   in-memory pool's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use benches::cpu::ThreadCpu;
use benches::record_figure;
use benches::runtime;
use benches::workflow::{golden, trivial};
use comfy_sim::{SimCluster, SimConfig};
use criterion::{Criterion, Throughput, criterion_group};
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, JobOptions, JobStore,
    Pool, ServerBackend, ServerConfig, ShutdownMode,
};
use pool_store::{SqliteStore, Synchronous};
use serde_json::Value;

const CALLERS: usize = 64;
const ENQUEUED: usize = 1024;
const SERVERS: usize = 4;
const BATCH: usize = 200;
const INTERLEAVED: usize = 5;

async fn sqlite(path: std::path::PathBuf) -> Arc<SqliteStore> {
    sqlite_with(path, Synchronous::Full).await
}

async fn sqlite_with(path: std::path::PathBuf, synchronous: Synchronous) -> Arc<SqliteStore> {
    let store = SqliteStore::open_with(path, synchronous)
        .await
        .unwrap_or_else(|e| panic!("open: {e}"));
    Arc::new(store)
}

/// A server that never finishes a prompt: the queue keeps what is enqueued.
struct Never;

#[async_trait]
impl ServerBackend for Never {
    async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
        std::future::pending().await
    }
    async fn health(&self) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn upload(&self, _: &InputFile) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn cancel(&self, _: &str) -> Result<(), AttemptFailure> {
        Ok(())
    }
}

/// `ENQUEUED` enqueues, `CALLERS` at a time; the wall time.
async fn enqueue_all(pool: &Pool, workflow: &Arc<Value>) -> Duration {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for caller in 0..CALLERS {
        let (pool, workflow) = (pool.clone(), Arc::clone(workflow));
        set.spawn(async move {
            for _ in (caller..ENQUEUED).step_by(CALLERS) {
                let options = JobOptions::new().tenant("acme");
                pool.enqueue(Arc::clone(&workflow), options)
                    .await
                    .unwrap_or_else(|e| panic!("enqueue: {e}"));
            }
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap_or_else(|e| panic!("caller: {e}"));
    }
    start.elapsed()
}

fn bench_enqueue(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let pool = rt.block_on(async {
        let pool = Pool::builder()
            .server(ServerConfig::with_backend("never", Arc::new(Never)))
            .store(sqlite(dir.join("enqueue.db")).await as Arc<dyn JobStore>)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        pool.ready().await;
        pool
    });
    let workflow = Arc::new(golden("real/simple-txt2img.json"));
    let mut group = c.benchmark_group("durable");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ENQUEUED as u64));
    group.bench_function(format!("pool_enqueue_sqlite_{CALLERS}_callers"), |b| {
        b.to_async(rt).iter_custom(|iters| {
            let (pool, workflow) = (pool.clone(), Arc::clone(&workflow));
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += enqueue_all(&pool, &workflow).await;
                }
                total
            }
        });
    });
    group.finish();
    rt.block_on(pool.shutdown(ShutdownMode::Detach));
}

/// `BATCH` prompts through the pool (one slot per server), enqueued at once as a batch is
/// (`comfy-pool run` has 64 enqueues in flight): one after the other, each enqueue would
/// wait for its own commit on the durable pool.
async fn pooled(pool: &Pool) -> Duration {
    let start = Instant::now();
    let enqueues = (0..BATCH).map(|i| pool.enqueue(trivial(i), JobOptions::new()));
    let handles = futures_util::future::join_all(enqueues).await;
    for h in handles {
        let h = h.unwrap_or_else(|e| panic!("enqueue: {e}"));
        h.result().await.unwrap_or_else(|e| panic!("job: {e}"));
    }
    start.elapsed()
}

/// Time taken by a pool's batches, and the CPU time spent meanwhile.
#[derive(Default)]
struct Spent {
    wall: Duration,
    /// Every thread of the process (the pool's, the simulators', the store's writer).
    cpu: Duration,
    /// The SQLite store's writer threads.
    writer: Duration,
}

impl Spent {
    /// Runs one batch through `pool` and adds what it took.
    fn add(&mut self, rt: &tokio::runtime::Runtime, pool: &Pool) {
        let before = ThreadCpu::now();
        self.wall += rt.block_on(pooled(pool));
        let after = ThreadCpu::now();
        self.cpu += after.since(&before);
        // The thread is named `comfy-pool-store-writer`; Linux keeps 15 bytes of it.
        self.writer += after.named_since("comfy-pool-sto", &before);
    }

    /// Cores busy on average.
    fn cores(&self) -> f64 {
        self.cpu.as_secs_f64() / self.wall.as_secs_f64()
    }
}

fn bench_throughput(c: &mut Criterion, rt: &tokio::runtime::Runtime, dir: &std::path::Path) {
    let (cluster, memory, durable, store, relaxed) = rt.block_on(async {
        let cluster = SimCluster::start(SERVERS, SimConfig::default())
            .await
            .unwrap_or_else(|e| panic!("sim: {e}"));
        let servers = || {
            cluster
                .urls()
                .into_iter()
                .enumerate()
                .map(|(i, url)| ServerConfig::new(url).id(format!("s{i}")))
        };
        // Both with zero-gap dispatch (the recommended setting): the next prompt's
        // write-ahead happens while the server still runs the current one.
        let memory = Pool::builder()
            .queue_ahead(1)
            .servers(servers())
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        let store = sqlite(dir.join("throughput.db")).await;
        let durable = Pool::builder()
            .queue_ahead(1)
            .servers(servers())
            .store(Arc::clone(&store) as Arc<dyn JobStore>)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        let normal = sqlite_with(dir.join("normal.db"), Synchronous::Normal).await;
        let relaxed = Pool::builder()
            .queue_ahead(1)
            .servers(servers())
            .store(normal as Arc<dyn JobStore>)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        // Warm up: connections, websockets, the store's pages.
        pooled(&memory).await;
        pooled(&durable).await;
        pooled(&relaxed).await;
        (cluster, memory, durable, store, relaxed)
    });
    let before = store.write_stats();
    let (mut m, mut d, mut n) = (Spent::default(), Spent::default(), Spent::default());
    for _ in 0..INTERLEAVED {
        m.add(rt, &memory);
        d.add(rt, &durable);
        n.add(rt, &relaxed);
    }
    let per_job = |t: Duration| t.as_secs_f64() * 1e6 / (INTERLEAVED * BATCH) as f64;
    println!(
        "CPU per job (every thread, the simulators' too): in-memory pool {:.0} µs on {:.2} cores; \
         SQLite pool {:.0} µs on {:.2} cores, of which its store's writer thread {:.0} µs",
        per_job(m.cpu),
        m.cores(),
        per_job(d.cpu),
        d.cores(),
        per_job(d.writer)
    );
    record_figure(
        "pool_sqlite_writer_cpu_per_job",
        "SQLite store's writer thread, CPU per job of the pool (synchronous=full)",
        per_job(d.writer),
        "µs",
    );
    record_figure(
        "pool_sqlite_cores_used",
        "cores busy while the SQLite pool runs (of 2)",
        d.cores(),
        "cores",
    );
    let (m, d, n) = (m.wall, d.wall, n.wall);
    let per_s = |t: Duration| (INTERLEAVED * BATCH) as f64 / t.as_secs_f64();
    let after = store.write_stats();
    let jobs = (INTERLEAVED * BATCH) as f64;
    println!(
        "SQLite pool: {:.1} writes, {:.2} job rows written and {:.2} commits per job",
        (after.writes - before.writes) as f64 / jobs,
        (after.job_rows - before.job_rows) as f64 / jobs,
        (after.commits - before.commits) as f64 / jobs
    );
    println!(
        "throughput on {SERVERS} sims x1 slot: in-memory pool {:.0} jobs/s, SQLite pool {:.0} jobs/s, SQLite/memory = {:.1} %",
        per_s(m),
        per_s(d),
        100.0 * per_s(d) / per_s(m)
    );
    record_figure(
        "pool_sqlite_vs_memory_ratio",
        "pool throughput with the SQLite store / in-memory pool (interleaved runs)",
        per_s(d) / per_s(m),
        "",
    );
    println!(
        "SQLite with synchronous=normal: {:.0} jobs/s, {:.1} % of the in-memory pool",
        per_s(n),
        100.0 * per_s(n) / per_s(m)
    );
    record_figure(
        "pool_sqlite_normal_vs_memory_ratio",
        "pool throughput with SQLite at synchronous=normal / in-memory pool (interleaved runs)",
        per_s(n) / per_s(m),
        "",
    );

    let mut group = c.benchmark_group("durable");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, pool) in [("pool_memory_4x1", &memory), ("pool_sqlite_4x1", &durable)] {
        group.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| {
                let pool = pool.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += pooled(&pool).await;
                    }
                    total
                }
            });
        });
    }
    group.finish();
    rt.block_on(async {
        memory.shutdown(ShutdownMode::Drain).await;
        durable.shutdown(ShutdownMode::Drain).await;
        relaxed.shutdown(ShutdownMode::Drain).await;
    });
    drop(cluster);
}

fn bench_durable(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    bench_enqueue(c, &rt, dir.path());
    bench_throughput(c, &rt, dir.path());
}

criterion_group!(benches, bench_durable);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
