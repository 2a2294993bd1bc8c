//! Routing-check cost of the smart failover strategy with 64 servers and 100,000 tracked
//! (server, workflow-hash) pairs. Targets: ≤ 50 ns per check, ≤ 2 µs to check 64 servers.

use std::alloc::System;
use std::hint::black_box;

use benches::record_figure;
use criterion::{Criterion, criterion_group};
use pool_failover::{FailoverStrategy, FailureClass, ServerId, SmartStrategy};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SERVERS: usize = 64;
const PAIRS: u32 = 100_000;

fn hash_of(n: u32) -> WorkflowHash {
    let mut bytes = [0u8; 32];
    let mixed = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    bytes[..8].copy_from_slice(&mixed.to_le_bytes());
    bytes[8..12].copy_from_slice(&n.to_le_bytes());
    WorkflowHash::from_bytes(bytes)
}

/// The 64 servers of the benches.
fn servers() -> Vec<ServerId> {
    (0..SERVERS)
        .map(|i| ServerId::from(format!("server-{i}")))
        .collect()
}

/// A smart strategy (production preset) tracking `PAIRS` pairs spread over `servers`.
fn tracking_strategy(servers: &[ServerId], now: Instant) -> SmartStrategy {
    let strategy = SmartStrategy::builder()
        .build()
        .expect("default config is valid");
    for n in 0..PAIRS {
        let _ = strategy.record_failure(
            &servers[n as usize % servers.len()],
            &hash_of(n),
            FailureClass::Execution,
            now,
        );
    }
    strategy
}

fn bench_failover(c: &mut Criterion) {
    let servers = servers();
    let now = Instant::now();
    let strategy = tracking_strategy(&servers, now);
    // One workflow blocked on every server but the last: picking a server checks all 64.
    let hot = hash_of(u32::MAX);
    for server in &servers[..SERVERS - 1] {
        let _ = strategy.record_failure(server, &hot, FailureClass::Execution, now);
    }
    // One workflow blocked everywhere: no server can be picked.
    let dead = hash_of(u32::MAX - 1);
    for server in &servers {
        let _ = strategy.record_failure(server, &dead, FailureClass::Execution, now);
    }

    // Keys are built beforehand, as a pool holds them: a hash assembled from small stores just
    // before the check stalls the wide loads that read it (store forwarding fails), which
    // would add tens of nanoseconds of harness cost to every random-pair iteration.
    let tracked: Vec<WorkflowHash> = (0..PAIRS).map(hash_of).collect();
    let untracked: Vec<WorkflowHash> = (PAIRS..2 * PAIRS).map(hash_of).collect();

    let mut group = c.benchmark_group("failover");
    let mut n = 0usize;
    group.bench_function("is_allowed/blocked_pair", |b| {
        b.iter(|| {
            n = (n + 1) % tracked.len();
            let server = &servers[n % SERVERS];
            black_box(strategy.is_allowed(server, black_box(&tracked[n]), now))
        });
    });
    let warm = hash_of(5);
    group.bench_function("is_allowed/blocked_pair_cached", |b| {
        b.iter(|| black_box(strategy.is_allowed(&servers[5], black_box(&warm), now)));
    });
    group.bench_function("is_allowed/untracked_pair", |b| {
        b.iter(|| {
            n = (n + 1) % untracked.len();
            let server = &servers[n % SERVERS];
            black_box(strategy.is_allowed(server, black_box(&untracked[n]), now))
        });
    });
    // The common case in a pool: the workflow failed nowhere, the first candidate takes it.
    group.bench_function("first_allowed/64_servers_untracked_hash", |b| {
        b.iter(|| {
            n = (n + 1) % untracked.len();
            black_box(strategy.first_allowed(&servers, black_box(&untracked[n]), now))
        });
    });
    group.bench_function("first_allowed/64_servers_last_free", |b| {
        b.iter(|| black_box(strategy.first_allowed(&servers, black_box(&hot), now)));
    });
    group.bench_function("first_allowed/64_servers_all_blocked", |b| {
        b.iter(|| black_box(strategy.first_allowed(&servers, black_box(&dead), now)));
    });
    group.bench_function("claim/untracked_pair", |b| {
        b.iter(|| black_box(strategy.claim(&servers[3], black_box(&untracked[7]), now)));
    });
    group.finish();
}

/// Heap bytes per tracked pair at 100,000 pairs over 64 servers, with a counting allocator.
fn memory_per_tracked_pair() {
    let servers = servers();
    let region = Region::new(GLOBAL);
    let strategy = tracking_strategy(&servers, Instant::now());
    let change = region.change();
    drop(strategy);
    let held = change
        .bytes_allocated
        .saturating_sub(change.bytes_deallocated);
    record_figure(
        "bytes_per_tracked_pair",
        "memory per tracked pair (100,000 pairs, 64 servers)",
        held as f64 / f64::from(PAIRS),
        "bytes",
    );
}

criterion_group!(benches, bench_failover);

fn main() {
    memory_per_tracked_pair();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
