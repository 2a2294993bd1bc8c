//! [`PairStatus`]: a monitoring snapshot of one tracked (server, hash) pair.

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::{FailureClass, ServerId};

/// Where a tracked pair stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PairState {
    /// Failures are being counted but the pair is not blocked (below the threshold).
    Watching,
    /// The pair takes no work until `until`.
    Blocked {
        /// When the cooldown ends.
        until: Instant,
    },
    /// The cooldown ended: the next job that claims the pair is its probe.
    Probation,
    /// A probe job is running on the pair; nobody else may take it until it reports back or
    /// `deadline` passes (then a new probe may be claimed).
    Probing {
        /// When the probe slot is given up if the probe never reports.
        deadline: Instant,
    },
}

/// A snapshot of one tracked (server, hash) pair, for monitoring.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PairStatus {
    /// The server.
    pub server: ServerId,
    /// The workflow's structural hash.
    pub hash: WorkflowHash,
    /// Where the pair stands.
    pub state: PairState,
    /// Consecutive failures still remembered (older ones fall out of the failure window).
    pub consecutive_failures: u32,
    /// How many times the pair was blocked in a row since its last success.
    pub blocked_count: u32,
    /// The class of the last failure.
    pub last_class: FailureClass,
    /// When the last failure was recorded.
    pub last_failure: Instant,
}

impl PairStatus {
    /// Whether the pair refuses ordinary work now (blocked, or a probe is in flight).
    pub fn is_blocked(&self) -> bool {
        matches!(
            self.state,
            PairState::Blocked { .. } | PairState::Probing { .. }
        )
    }
}
