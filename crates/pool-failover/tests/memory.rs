//! Heap cost per tracked pair, and allocation-free routing checks, measured with a counting
//! global allocator. The counter sees every thread, so this binary has no test harness
//! (`harness = false`): its `main` is the only thread, and nothing else allocates meanwhile.

use std::alloc::System;

use pool_failover::{FailoverStrategy, FailureClass, ServerId, SmartStrategy};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn hash_of(n: u32) -> WorkflowHash {
    let mut bytes = [0u8; 32];
    // Spread the counter like a digest would be spread.
    let mixed = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    bytes[..8].copy_from_slice(&mixed.to_le_bytes());
    bytes[8..12].copy_from_slice(&n.to_le_bytes());
    WorkflowHash::from_bytes(bytes)
}

fn main() {
    pairs_cost_at_most_96_bytes_and_checks_never_allocate();
    println!("memory: ok");
}

fn pairs_cost_at_most_96_bytes_and_checks_never_allocate() {
    const PAIRS: u32 = 100_000;
    let servers: Vec<ServerId> = (0..64)
        .map(|i| ServerId::from(format!("server-{i}")))
        .collect();
    let strategy = SmartStrategy::builder()
        .build()
        .expect("the default settings are valid");
    let now = Instant::now();

    let region = Region::new(GLOBAL);
    for n in 0..PAIRS {
        let server = &servers[n as usize % servers.len()];
        let _ = strategy.record_failure(server, &hash_of(n), FailureClass::Execution, now);
    }
    let change = region.change();
    assert_eq!(strategy.len(), PAIRS as usize);
    let live = change.bytes_allocated as i64 - change.bytes_deallocated as i64;
    let per_pair = live as f64 / f64::from(PAIRS);
    println!("{per_pair:.1} bytes per tracked pair ({live} bytes for {PAIRS} pairs)");
    assert!(per_pair <= 96.0, "{per_pair:.1} bytes per pair");

    let region = Region::new(GLOBAL);
    let mut allowed = 0usize;
    for n in 0..10_000 {
        let server = &servers[n as usize % servers.len()];
        allowed += usize::from(strategy.is_allowed(server, &hash_of(n), now));
        allowed += usize::from(strategy.is_allowed(server, &hash_of(n + PAIRS), now));
        allowed += strategy
            .first_allowed(&servers, &hash_of(n), now)
            .unwrap_or(0);
        allowed += usize::from(
            strategy
                .claim(server, &hash_of(n + PAIRS), now)
                .is_granted(),
        );
    }
    let change = region.change();
    assert_eq!(change.allocations, 0, "routing checks allocated");
    assert!(allowed > 0);
}
