//! Heap cost per tracked pair at its worst (right after the tables grew) and memory given back
//! once pairs stop mattering, measured with a counting global allocator. The counter sees every
//! thread, so this binary has no test harness (`harness = false`): its `main` is the only
//! thread, and nothing else allocates meanwhile.

use std::alloc::System;

use pool_failover::{FailoverStrategy, FailureClass, ServerId, SmartStrategy};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn hash_of(n: u32) -> WorkflowHash {
    let mut bytes = [0u8; 32];
    let mixed = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    bytes[..8].copy_from_slice(&mixed.to_le_bytes());
    bytes[8..12].copy_from_slice(&n.to_le_bytes());
    WorkflowHash::from_bytes(bytes)
}

fn live(region: &Region<'_, System>) -> i64 {
    let change = region.change();
    change.bytes_allocated as i64 - change.bytes_deallocated as i64
}

fn main() {
    pairs_stay_cheap_after_growth_and_memory_returns_after_success();
    println!("memory_resize: ok");
}

fn pairs_stay_cheap_after_growth_and_memory_returns_after_success() {
    const SERVERS: u32 = 64;
    // Just past a doubling of every server's table: the most memory per pair.
    const PAIRS: u32 = SERVERS * 1793;
    let servers: Vec<ServerId> = (0..SERVERS)
        .map(|i| ServerId::from(format!("server-{i}")))
        .collect();
    let server_of = |n: u32| &servers[(n % SERVERS) as usize];
    let strategy = SmartStrategy::builder()
        .build()
        .expect("the default settings are valid");
    let now = Instant::now();

    let region = Region::new(GLOBAL);
    for n in 0..PAIRS {
        let _ = strategy.record_failure(server_of(n), &hash_of(n), FailureClass::Execution, now);
    }
    let full = live(&region);

    // Successes clear all but one pair per server: the tables shrink.
    for n in SERVERS..PAIRS {
        let _ = strategy.record_success(server_of(n), &hash_of(n), now);
    }
    assert_eq!(strategy.len(), SERVERS as usize);
    let left = live(&region);

    // And clearing the last pairs gives everything back.
    for n in 0..SERVERS {
        let _ = strategy.record_success(server_of(n), &hash_of(n), now);
    }
    assert!(strategy.is_empty());
    let end = live(&region);

    // Printing allocates, so only once everything is measured.
    let per_pair = full as f64 / f64::from(PAIRS);
    println!("{per_pair:.1} bytes per pair right after growth, {left} left for {SERVERS} pairs");
    assert!(per_pair <= 160.0, "{per_pair:.1} bytes per pair");
    assert!(left < full / 100, "{left} of {full} bytes still held");
    assert_eq!(end, 0, "bytes still held with nothing tracked");
}
