//! Fleet coordination benchmarks (`pool-store`'s `PgFleet` on the run's PostgreSQL,
//! `test_infra::pg_url`, a fresh database).
//!
//! Three members, each on a connection pool of its own, share 64 servers (settled at
//! 22/21/21 before measuring):
//! - `fleet/lease_round_trip`: one heartbeat (`Fleet::lease`: renew, count, rebalance, return
//!   the leases), the members taking turns.
//! - `fleet/three_heartbeats_at_once`: the three members' heartbeats concurrently.
//! - `fleet/notice_to_another_process`: `Fleet::notify` from one member until the next
//!   member's feed yields it.
//!
//! And three pools as one fleet (each with its own `PostgresStore` and `PgFleet` on one new
//! database, in this process) on four zero-time comfy-sim servers of two slots each:
//! - `fleet_claimed_jobs_per_s`: 3,000 trivial jobs enqueued at once, a third through each
//!   pool, until every handle has its result; each job is claimed (the compare-and-set of
//!   its dispatch) by whichever pool holds a free server first. Jobs/s over three runs.
//! - `fleet_dispatch_added_p50_us`: one job at a time on idle servers, enqueue until some
//!   pool of the fleet reports it `Started`, p50, minus the same on one in-memory pool (no
//!   store, no fleet) on the same servers: the latency PostgreSQL adds to a dispatch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::record_figure;
use benches::runtime;
use benches::workflow::trivial;
use comfy_sim::{SimCluster, SimConfig};
use criterion::{Criterion, criterion_group};
use pool_core::{
    Fleet, FleetNotice, JobEventKind, JobOptions, JobStore, Pool, PoolEvent, ServerConfig,
    ServerId, ShutdownMode,
};
use pool_store::{PgFleet, PostgresStore};
use tokio::sync::mpsc;

const SERVERS: usize = 64;
const MEMBERS: usize = 3;
const TTL: Duration = Duration::from_secs(600);

/// Three members on a new database, settled at their fair shares.
async fn fleet(servers: &[ServerId]) -> Vec<PgFleet> {
    let url = test_infra::new_pg_database().await;
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        let member = PgFleet::connect(&url, format!("bench-{i}"))
            .await
            .unwrap_or_else(|e| panic!("join: {e}"));
        members.push(member);
    }
    for _ in 0..3 {
        for member in &members {
            member
                .lease(servers, TTL)
                .await
                .unwrap_or_else(|e| panic!("lease: {e}"));
        }
    }
    members
}

fn benches(c: &mut Criterion) {
    let rt = runtime();
    let servers: Vec<ServerId> = (0..SERVERS)
        .map(|i| ServerId::new(format!("gpu-{i:02}")))
        .collect();
    let members = rt.block_on(fleet(&servers));
    let mut group = c.benchmark_group("fleet");

    let mut turn = 0usize;
    group.bench_function("lease_round_trip", |b| {
        b.iter(|| {
            let member = &members[turn % MEMBERS];
            turn += 1;
            let held = rt
                .block_on(member.lease(&servers, TTL))
                .unwrap_or_else(|e| panic!("lease: {e}"));
            assert!(held.len() >= SERVERS / MEMBERS, "{}", held.len());
        });
    });

    group.bench_function("three_heartbeats_at_once", |b| {
        b.iter(|| {
            rt.block_on(futures_util::future::try_join_all(
                members.iter().map(|m| m.lease(&servers, TTL)),
            ))
            .unwrap_or_else(|e| panic!("lease: {e}"))
        });
    });

    let mut feed = rt
        .block_on(members[1].notices())
        .unwrap_or_else(|e| panic!("notices: {e}"));
    let notice = FleetNotice::Accepted {
        job: "job-1".into(),
    };
    group.bench_function("notice_to_another_process", |b| {
        b.iter(|| {
            rt.block_on(async {
                members[0]
                    .notify(&notice)
                    .await
                    .unwrap_or_else(|e| panic!("notify: {e}"));
                feed.recv().await
            })
        });
    });
    group.finish();

    rt.block_on(async {
        for member in &members {
            member
                .leave()
                .await
                .unwrap_or_else(|e| panic!("leave: {e}"));
        }
    });
}

/// Simulated servers under the pools.
const SIMS: usize = 4;
/// Prompts each of them may hold.
const SLOTS: usize = 2;
/// Jobs per throughput run.
const CLAIMED: usize = 3_000;
/// Throughput runs measured.
const RUNS: usize = 3;
/// Dispatch latency samples, after as many to warm up.
const SAMPLES: usize = 300;
/// The lease time of the pools (heartbeats every third of it).
const POOL_TTL: Duration = Duration::from_secs(3);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// Three pools as one fleet on a new database, each server leased by one of them.
async fn fleet_pools(servers: &[ServerConfig]) -> Vec<Pool> {
    let url = test_infra::new_pg_database().await;
    let mut pools = Vec::new();
    for i in 0..MEMBERS {
        let store: Arc<dyn JobStore> = Arc::new(
            PostgresStore::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("store: {e}")),
        );
        let fleet: Arc<dyn Fleet> = Arc::new(
            PgFleet::connect(&url, format!("bench-pool-{i}"))
                .await
                .unwrap_or_else(|e| panic!("join: {e}")),
        );
        let pool = Pool::builder()
            .servers(servers.iter().cloned())
            .store(store)
            .fleet(fleet)
            .lease_ttl(POOL_TTL)
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        pool.ready().await;
        pools.push(pool);
    }
    // Two heartbeats for the leases to settle at their fair shares (2/1/1).
    tokio::time::sleep(POOL_TTL).await;
    pools
}

/// `CLAIMED` jobs enqueued at once, in turn through each pool, until every handle has its
/// result: the wall time.
async fn claim_all(pools: &[Pool], first: usize) -> Duration {
    let start = Instant::now();
    let enqueues =
        (0..CLAIMED).map(|i| pools[i % pools.len()].enqueue(trivial(first + i), JobOptions::new()));
    let handles = futures_util::future::join_all(enqueues).await;
    for h in handles {
        let h = h.unwrap_or_else(|e| panic!("enqueue: {e}"));
        h.result().await.unwrap_or_else(|e| panic!("job: {e}"));
    }
    start.elapsed()
}

/// Every pool's `Started` events as (job id, when), on one channel.
fn started_events(pools: &[Pool]) -> mpsc::UnboundedReceiver<(String, Instant)> {
    let (tx, rx) = mpsc::unbounded_channel();
    for pool in pools {
        let mut events = pool.subscribe();
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let PoolEvent::Job(event) = event
                    && matches!(event.kind, JobEventKind::Started { .. })
                    && tx.send((event.job.to_string(), Instant::now())).is_err()
                {
                    break;
                }
            }
        });
    }
    rx
}

/// Enqueue → `Started` (in whichever pool dispatches), one job at a time on idle servers:
/// the sorted samples after a warm-up.
async fn dispatch_latencies(pools: &[Pool], first: usize) -> Vec<Duration> {
    let mut started = started_events(pools);
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..2 * SAMPLES {
        let begun = Instant::now();
        let handle = pools[i % pools.len()]
            .enqueue(trivial(first + i), JobOptions::new())
            .await
            .unwrap_or_else(|e| panic!("enqueue: {e}"));
        let id = handle.id().to_string();
        let at = loop {
            match started.recv().await {
                Some((job, at)) if job == id => break at,
                Some(_) => {}
                None => panic!("the pools stopped"),
            }
        };
        handle.result().await.unwrap_or_else(|e| panic!("job: {e}"));
        if i >= SAMPLES {
            samples.push(at - begun);
        }
    }
    samples.sort();
    samples
}

/// The fleet's figures: claimed jobs/s, and the dispatch latency PostgreSQL adds.
fn fleet_figures(rt: &tokio::runtime::Runtime) {
    let cluster = rt.block_on(async {
        SimCluster::start(SIMS, SimConfig::default())
            .await
            .unwrap_or_else(|e| panic!("sim: {e}"))
    });
    let servers: Vec<ServerConfig> = cluster
        .urls()
        .into_iter()
        .enumerate()
        .map(|(i, url)| {
            ServerConfig::new(url)
                .id(format!("sim-{i}"))
                .max_concurrent(SLOTS)
        })
        .collect();
    let (fleet, memory) = rt.block_on(async {
        let fleet = fleet_pools(&servers).await;
        let memory = Pool::builder()
            .servers(servers.iter().cloned())
            .build()
            .unwrap_or_else(|e| panic!("pool: {e}"));
        memory.ready().await;
        (fleet, memory)
    });

    // Warm up (connections, websockets, the database's pages), then measure.
    rt.block_on(claim_all(&fleet, 0));
    let mut total = Duration::ZERO;
    for run in 1..=RUNS {
        total += rt.block_on(claim_all(&fleet, run * CLAIMED));
    }
    let per_s = (RUNS * CLAIMED) as f64 / total.as_secs_f64();
    let alone = rt.block_on(claim_all(std::slice::from_ref(&memory), 0));
    println!(
        "fleet of three pools: {per_s:.0} claimed jobs/s; one in-memory pool on the same \
         servers: {:.0} jobs/s",
        CLAIMED as f64 / alone.as_secs_f64()
    );
    record_figure(
        "fleet_claimed_jobs_per_s",
        "fleet: claimed jobs/s, three pools on PostgreSQL, 4 zero-time sims",
        per_s,
        "jobs/s",
    );

    let offset = (RUNS + 1) * CLAIMED;
    let in_fleet = rt.block_on(dispatch_latencies(&fleet, offset));
    let alone = rt.block_on(dispatch_latencies(std::slice::from_ref(&memory), offset));
    let (fleet_p50, memory_p50) = (percentile(&in_fleet, 0.5), percentile(&alone, 0.5));
    println!(
        "enqueue -> started: fleet p50 {fleet_p50:?} p99 {:?}; in-memory pool p50 \
         {memory_p50:?} p99 {:?}",
        percentile(&in_fleet, 0.99),
        percentile(&alone, 0.99)
    );
    record_figure(
        "fleet_dispatch_added_p50_us",
        "fleet: enqueue -> started p50 minus the in-memory pool's",
        fleet_p50.saturating_sub(memory_p50).as_secs_f64() * 1e6,
        "µs",
    );

    rt.block_on(async {
        for pool in fleet.iter().chain([&memory]) {
            pool.shutdown(ShutdownMode::Drain).await;
        }
    });
    drop(cluster);
}

criterion_group!(fleet_benches, benches);

fn main() {
    fleet_benches();
    fleet_figures(&runtime());
    Criterion::default().configure_from_args().final_summary();
}
