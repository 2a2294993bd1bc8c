//! Pool benchmarks.
//!
//! - `pool_throughput`: trivial prompts on 4 simulated servers with zero execution time, one
//!   prompt in flight per server, driven directly by `comfy-client` and through the pool.
//!   Before it, side by side in interleaved rounds (figures, not criterion groups): the
//!   pool/direct throughput ratio and the p50 latency difference at equal concurrency on 4
//!   zero-time servers, on 4 servers taking 4 ms per prompt, and on 64 zero-time servers;
//!   then the ratio with zero-gap dispatch (`queue_ahead(1)`: one more prompt waiting in each
//!   busy server's own queue) on 4 servers at 0 and 4 ms per prompt.
//! - `scheduler`: one dispatch (`pop_for` of the freed server, then a push to keep the depth)
//!   in an [`InMemoryQueue`] holding 100,000 jobs for 64 servers; and the whole engine
//!   (enqueue → queue → dispatch → attempt → completion) for 100,000 jobs on 64 instant
//!   in-process servers.
//! - Memory per queued job, measured with a counting allocator, printed before the groups.

use std::alloc::System;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use benches::record_figure;
use benches::runtime;
use benches::workflow::trivial;
use comfy_client::{Client, RunOptions};
use comfy_sim::{SimCluster, SimConfig};
use criterion::{Criterion, Throughput, criterion_group};
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, Constraint, EventSink, InMemoryQueue, InputFile,
    JobKey, JobOptions, JobQueue, Pool, QueueEntry, ServerBackend, ServerConfig, ServerId,
    ServerView, ShutdownMode, WorkflowHash,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SERVERS: usize = 4;
const BATCH: usize = 200;
const QUEUED: usize = 100_000;

/// `jobs` prompts, one in flight per server, each server driven by its own client; the
/// time of the whole batch and each prompt's latency (`run` to its result).
async fn direct(clients: &[Client], jobs: usize) -> (Duration, Vec<Duration>) {
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let servers = clients.len();
    for (s, client) in clients.iter().enumerate() {
        let client = client.clone();
        set.spawn(async move {
            let mut latencies = Vec::new();
            for i in (s..jobs).step_by(servers) {
                let began = Instant::now();
                let exec = client.run(trivial(i), RunOptions::default()).await;
                let exec = exec.unwrap_or_else(|e| panic!("submit: {e}"));
                exec.wait().await.unwrap_or_else(|e| panic!("run: {e}"));
                latencies.push(began.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(jobs);
    while let Some(done) = set.join_next().await {
        latencies.extend(done.unwrap_or_else(|e| panic!("task: {e}")));
    }
    (start.elapsed(), latencies)
}

/// `jobs` prompts through the pool (one slot per server), all enqueued at once by one task
/// on the runtime. The direct side's callers are tasks too: a caller on the thread that
/// blocks on the runtime would be woken from outside it (a futex wake) at every job's end,
/// which cost the pool's side about 25 µs of CPU per job here and no service pays.
async fn pooled(pool: &Pool, jobs: usize) -> Duration {
    let start = Instant::now();
    let pool = pool.clone();
    let caller = tokio::spawn(async move {
        let mut handles = Vec::with_capacity(jobs);
        for i in 0..jobs {
            let job = pool.enqueue(trivial(i), JobOptions::new()).await;
            handles.push(job.unwrap_or_else(|e| panic!("enqueue: {e}")));
        }
        for h in handles {
            h.result().await.unwrap_or_else(|e| panic!("job: {e}"));
        }
    });
    caller.await.unwrap_or_else(|e| panic!("caller: {e}"));
    start.elapsed()
}

/// `jobs` prompts through the pool by `callers` callers, each enqueueing its next job when
/// the last one ended (the concurrency of [`direct`]); each job's latency (enqueue to result).
async fn pooled_closed_loop(pool: &Pool, callers: usize, jobs: usize) -> Vec<Duration> {
    let mut set = tokio::task::JoinSet::new();
    for c in 0..callers {
        let pool = pool.clone();
        set.spawn(async move {
            let mut latencies = Vec::new();
            for i in (c..jobs).step_by(callers) {
                let began = Instant::now();
                let job = pool.enqueue(trivial(i), JobOptions::new()).await;
                let job = job.unwrap_or_else(|e| panic!("enqueue: {e}"));
                job.result().await.unwrap_or_else(|e| panic!("job: {e}"));
                latencies.push(began.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(jobs);
    while let Some(done) = set.join_next().await {
        latencies.extend(done.unwrap_or_else(|e| panic!("task: {e}")));
    }
    latencies
}

/// The median of some values.
fn median<T: PartialOrd + Copy>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

/// Simulated servers, one client each (socket open), and a pool over the same servers.
struct Rig {
    cluster: SimCluster,
    clients: Vec<Client>,
    pool: Pool,
}

impl Rig {
    async fn start(servers: usize, exec_time: Duration, queue_ahead: usize) -> Self {
        // The per-prompt time on the one node that takes time.
        let config = SimConfig::default().node_exec_time("ImageInvert", exec_time);
        let cluster = SimCluster::start(servers, config)
            .await
            .unwrap_or_else(|e| panic!("sim: {e}"));
        let mut clients = Vec::new();
        for url in cluster.urls() {
            let client = Client::builder(url)
                .build()
                .unwrap_or_else(|e| panic!("client: {e}"));
            assert!(client.wait_connected(Duration::from_secs(5)).await);
            clients.push(client);
        }
        let configs = cluster
            .urls()
            .into_iter()
            .enumerate()
            .map(|(i, url)| ServerConfig::new(url).id(format!("s{i}")));
        let pool = Pool::builder()
            .servers(configs)
            .queue_ahead(queue_ahead)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        let rig = Self {
            cluster,
            clients,
            pool,
        };
        // Warm up: connections and websockets.
        pooled(&rig.pool, 4 * servers).await;
        direct(&rig.clients, 4 * servers).await;
        rig
    }

    async fn stop(self) {
        self.pool.shutdown(ShutdownMode::Drain).await;
        drop(self.clients);
        drop(self.cluster);
    }
}

/// Interleaved rounds of the direct client and the pool on the same servers: the median
/// ratio of their throughputs (batch of `jobs`, all queued at once in the pool), and the
/// median latencies at equal concurrency (one job per server, closed loop), recorded as
/// figures named after `tag`.
fn side_by_side(rt: &tokio::runtime::Runtime, rig: &Rig, tag: &str, what: &str, jobs: usize) {
    // Ten, as the figures the targets compare with were measured (medians of 10 rounds).
    const ROUNDS: usize = 10;
    let servers = rig.clients.len();
    let mut ratios = Vec::new();
    let (mut direct_lat, mut pool_lat) = (Vec::new(), Vec::new());
    let (mut direct_per_s, mut pool_per_s) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (d, lat) = rt.block_on(direct(&rig.clients, jobs));
        direct_lat.extend(lat);
        let p = rt.block_on(pooled(&rig.pool, jobs));
        pool_lat.extend(rt.block_on(pooled_closed_loop(&rig.pool, servers, jobs)));
        ratios.push(d.as_secs_f64() / p.as_secs_f64());
        direct_per_s.push(jobs as f64 / d.as_secs_f64());
        pool_per_s.push(jobs as f64 / p.as_secs_f64());
    }
    let ratio = median(&mut ratios);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (direct_p50, pool_p50) = (us(median(&mut direct_lat)), us(median(&mut pool_lat)));
    println!(
        "{what}: direct {:.0} jobs/s, pool {:.0} jobs/s (medians of {ROUNDS}); p50 direct {direct_p50:.0} µs, pool {pool_p50:.0} µs",
        median(&mut direct_per_s),
        median(&mut pool_per_s),
    );
    let name = |figure: &str| format!("{figure}{tag}");
    record_figure(
        &name("pool_vs_direct_ratio"),
        &format!("pool throughput / direct client throughput, {what} (median of interleaved runs)"),
        ratio,
        "",
    );
    record_figure(
        &name("pool_p50_minus_direct_us"),
        &format!("pool p50 latency minus direct p50 latency, {what}"),
        pool_p50 - direct_p50,
        "µs",
    );
}

fn bench_throughput(c: &mut Criterion) {
    let rt = runtime();
    // The side-by-side figures for the report: zero-time and 4 ms servers, and many servers.
    for (servers, exec_ms, ahead, tag, jobs) in [
        (64, 0, 0, "_64", 640),
        (SERVERS, 4, 1, "_ahead_4ms", BATCH),
        (SERVERS, 0, 1, "_ahead", BATCH),
        (SERVERS, 4, 0, "_4ms", BATCH),
        (SERVERS, 0, 0, "", BATCH),
    ] {
        let rig = rt.block_on(Rig::start(servers, Duration::from_millis(exec_ms), ahead));
        let what = match ahead {
            0 => format!("{servers} sims x1 slot, {exec_ms} ms per prompt"),
            n => format!("{servers} sims x1 slot, {exec_ms} ms per prompt, queue_ahead({n})"),
        };
        side_by_side(&rt, &rig, tag, &what, jobs);
        if servers != SERVERS || exec_ms != 0 || ahead != 0 {
            rt.block_on(rig.stop());
            continue;
        }
        let mut group = c.benchmark_group("pool_throughput");
        group.sample_size(10);
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function("direct_client_4x1", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let clients = rig.clients.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += direct(&clients, BATCH).await.0;
                    }
                    total
                }
            });
        });
        group.bench_function("pool_4x1", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let pool = rig.pool.clone();
                async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += pooled(&pool, BATCH).await;
                    }
                    total
                }
            });
        });
        group.finish();
        rt.block_on(rig.stop());
    }
}

/// 100,000 queued jobs over 64 servers: 4 priorities, 8 tenants, 512 workflows, one job in
/// ten pinned to one server; 5 % of (server, workflow) pairs blocked.
fn filled_queue() -> (InMemoryQueue, Vec<ServerId>, HashSet<(usize, WorkflowHash)>) {
    let servers: Vec<ServerId> = (0..64)
        .map(|i| ServerId::from(format!("gpu-{i}")))
        .collect();
    let views: Vec<ServerView<'_>> = servers
        .iter()
        .map(|id| ServerView { id, tags: &[] })
        .collect();
    let mut queue = InMemoryQueue::new();
    queue.set_servers(&views);
    let free = Arc::new(Constraint::default());
    let pinned: Vec<Arc<Constraint>> = servers
        .iter()
        .map(|s| Arc::new(Constraint::new(vec![s.clone()], Vec::new(), Vec::new())))
        .collect();
    let tenants: Vec<Arc<str>> = (0..8).map(|t| Arc::from(format!("tenant-{t}"))).collect();
    let hashes: Vec<WorkflowHash> = (0..512u32)
        .map(|h| {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&h.to_be_bytes());
            WorkflowHash::from_bytes(bytes)
        })
        .collect();
    let mut blocked = HashSet::new();
    for (s, _) in servers.iter().enumerate() {
        for (h, hash) in hashes.iter().enumerate() {
            if (s * 31 + h * 17) % 20 == 0 {
                blocked.insert((s, *hash));
            }
        }
    }
    for k in 0..QUEUED {
        let constraint = if k % 10 == 0 {
            Arc::clone(&pinned[k % 64])
        } else {
            Arc::clone(&free)
        };
        queue.push(QueueEntry::new(
            JobKey(k as u64),
            (k % 4) as i32,
            Some(Arc::clone(&tenants[k % 8])),
            hashes[k % 512],
            constraint,
        ));
    }
    (queue, servers, blocked)
}

fn bench_scheduler(c: &mut Criterion) {
    let (mut queue, servers, blocked) = filled_queue();
    let mut group = c.benchmark_group("scheduler");
    group.throughput(Throughput::Elements(1));
    let mut turn = 0usize;
    let mut next_key = QUEUED as u64;
    group.bench_function("dispatch_100k_queued_64_servers", |b| {
        b.iter(|| {
            turn = (turn + 1) % servers.len();
            let view = ServerView {
                id: &servers[turn],
                tags: &[],
            };
            let s = turn;
            let entry = queue.pop_for(view, &mut |h| !blocked.contains(&(s, *h)));
            let entry = entry.unwrap_or_else(|| panic!("a job for server {s}"));
            next_key += 1;
            queue.push(QueueEntry::new(
                JobKey(next_key),
                entry.priority,
                entry.tenant,
                entry.hash,
                entry.constraint,
            ));
        });
    });
    assert_eq!(queue.len(), QUEUED);
    group.finish();

    let rt = runtime();
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    group.throughput(Throughput::Elements(QUEUED as u64));
    let workflow = Arc::new(trivial(0));
    group.bench_function("100k_jobs_64_instant_servers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let workflow = Arc::clone(&workflow);
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let servers = (0..64).map(|i| {
                        ServerConfig::with_backend(format!("gpu-{i}"), Arc::new(Instantly))
                    });
                    let pool = Pool::builder()
                        .servers(servers)
                        .build()
                        .unwrap_or_else(|e| panic!("pool: {e}"));
                    let start = Instant::now();
                    let mut handles = Vec::with_capacity(QUEUED);
                    for i in 0..QUEUED {
                        let options = JobOptions::new()
                            .priority((i % 4) as i32)
                            .tenant(["a", "b", "c"][i % 3]);
                        let job = pool.enqueue(Arc::clone(&workflow), options).await;
                        handles.push(job.unwrap_or_else(|e| panic!("enqueue: {e}")));
                    }
                    for h in handles {
                        h.result().await.unwrap_or_else(|e| panic!("job: {e}"));
                    }
                    total += start.elapsed();
                    pool.shutdown(ShutdownMode::Drain).await;
                }
                total
            }
        });
    });
    group.finish();
}

/// A server that finishes at once, or never (to keep work queued).
struct Instantly;
struct Never;

#[async_trait]
impl ServerBackend for Instantly {
    async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
        Ok(AttemptOutput::default())
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

/// Bytes held per queued job (workflow shared), with a counting allocator.
fn memory_per_queued_job() {
    let rt = runtime();
    rt.block_on(async {
        let pool = Pool::builder()
            .server(ServerConfig::with_backend("never", Arc::new(Never)))
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        let workflow = Arc::new(trivial(0));
        let first = pool.enqueue(Arc::clone(&workflow), JobOptions::new()).await;
        let _first = first.unwrap_or_else(|e| panic!("enqueue: {e}"));
        while pool.stats().await.map(|s| s.running).unwrap_or(0) == 0 {
            tokio::task::yield_now().await;
        }
        let region = Region::new(GLOBAL);
        let mut handles = Vec::with_capacity(QUEUED);
        let before_handles = region.change();
        for i in 0..QUEUED {
            let options = JobOptions::new().tenant(["a", "b", "c"][i % 3]);
            handles.push(pool.enqueue(Arc::clone(&workflow), options).await.unwrap_or_else(|e| panic!("enqueue: {e}")));
        }
        let stats = pool.stats().await.unwrap_or_else(|e| panic!("stats: {e}"));
        assert_eq!(stats.queued, QUEUED);
        let change = region.change();
        let held = (change.bytes_allocated as i64 - change.bytes_deallocated as i64)
            - (before_handles.bytes_allocated as i64 - before_handles.bytes_deallocated as i64);
        let handles_vec = (QUEUED * std::mem::size_of::<pool_core::JobHandle>()) as i64;
        println!(
            "memory per queued job: {} bytes (the caller's JobHandle and Vec slot included), {} bytes without the caller's Vec",
            held / QUEUED as i64,
            (held - handles_vec) / QUEUED as i64
        );
        record_figure(
            "bytes_per_queued_job",
            "memory per queued job (workflow shared, caller's Vec excluded)",
            (held - handles_vec) as f64 / QUEUED as f64,
            "bytes",
        );
        pool.shutdown(ShutdownMode::Cancel).await;
    });
}

criterion_group!(benches, bench_scheduler, bench_throughput);

fn main() {
    memory_per_queued_job();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
