//! [`NoopStrategy`]: never blocks anything.

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::{FailoverEvent, FailoverStrategy, FailureClass, ServerId};

/// A strategy that never blocks: every server may always take every workflow.
///
/// Useful to turn failover off, or as a baseline in tests.
///
/// ```
/// use pool_failover::{FailoverStrategy, FailureClass, NoopStrategy, ServerId};
/// use tokio::time::Instant;
/// use workflow_hash::WorkflowHash;
///
/// let (gpu, hash, now) = (ServerId::from("gpu-1"), WorkflowHash::from_bytes([1; 32]), Instant::now());
/// let _ = NoopStrategy.record_failure(&gpu, &hash, FailureClass::ServerLacksResource, now);
/// assert!(NoopStrategy.is_allowed(&gpu, &hash, now));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoopStrategy;

impl FailoverStrategy for NoopStrategy {
    fn is_allowed(&self, _server: &ServerId, _hash: &WorkflowHash, _now: Instant) -> bool {
        true
    }

    fn record_failure(
        &self,
        _server: &ServerId,
        _hash: &WorkflowHash,
        _class: FailureClass,
        _now: Instant,
    ) -> Vec<FailoverEvent> {
        Vec::new()
    }

    fn record_success(
        &self,
        _server: &ServerId,
        _hash: &WorkflowHash,
        _now: Instant,
    ) -> Vec<FailoverEvent> {
        Vec::new()
    }
}
