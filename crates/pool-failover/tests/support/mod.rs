//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::Duration;

use pool_failover::{FailoverEvent, ServerId, SmartStrategy, SmartStrategyBuilder, UnblockReason};
use workflow_hash::WorkflowHash;

pub fn hash(n: u8) -> WorkflowHash {
    WorkflowHash::from_bytes([n; 32])
}

pub fn server(name: &str) -> ServerId {
    ServerId::from(name)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A builder without jitter so cooldowns are exact.
pub fn exact() -> SmartStrategyBuilder {
    SmartStrategy::builder().jitter(0.0)
}

pub fn is_blocked(event: &FailoverEvent) -> bool {
    matches!(event, FailoverEvent::Blocked { .. })
}

pub fn unblock_reason(event: &FailoverEvent) -> Option<UnblockReason> {
    match event {
        FailoverEvent::Unblocked { reason, .. } => Some(*reason),
        _ => None,
    }
}

/// The `until` of the only `Blocked` event in `events`.
pub fn blocked_until(events: &[FailoverEvent]) -> tokio::time::Instant {
    let untils: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            FailoverEvent::Blocked { until, .. } => Some(*until),
            _ => None,
        })
        .collect();
    assert_eq!(
        untils.len(),
        1,
        "expected exactly one Blocked event in {events:?}"
    );
    untils[0]
}
