//! [`FailoverEvent`]: what changed in the strategy's view of a (server, hash) pair.

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::{FailureClass, ServerId};

/// A change the pool should publish: a pair was blocked, is being probed, or was unblocked.
///
/// Every [`Blocked`](Self::Blocked) event of a pair is followed by exactly one
/// [`Unblocked`](Self::Unblocked) event of that pair before the next `Blocked` of it, whatever
/// ends the block (expiry, a success, a reset or a forced probe).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailoverEvent {
    /// The workflow will not be routed to the server until `until` (inclusive of the whole span).
    Blocked {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// The class of the failure that caused the block.
        class: FailureClass,
        /// Consecutive failures of this pair when it was blocked.
        failures: u32,
        /// How many times this pair has been blocked in a row (1 for the first block); the
        /// cooldown escalates with it.
        blocked_count: u32,
        /// When the block ends and the pair goes on probation.
        until: Instant,
    },
    /// One job was allowed to try the pair after its cooldown (the probation probe).
    Probing {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
    },
    /// The block of the pair ended.
    Unblocked {
        /// The server.
        server: ServerId,
        /// The workflow's structural hash.
        hash: WorkflowHash,
        /// Why it ended.
        reason: UnblockReason,
    },
}

impl FailoverEvent {
    /// The server the event is about.
    pub fn server(&self) -> &ServerId {
        match self {
            Self::Blocked { server, .. }
            | Self::Probing { server, .. }
            | Self::Unblocked { server, .. } => server,
        }
    }

    /// The workflow hash the event is about.
    pub fn hash(&self) -> &WorkflowHash {
        match self {
            Self::Blocked { hash, .. }
            | Self::Probing { hash, .. }
            | Self::Unblocked { hash, .. } => hash,
        }
    }
}

/// Why a block ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnblockReason {
    /// The cooldown elapsed; the pair is on probation (one job may try it).
    Expired,
    /// A job of this workflow succeeded on the server.
    Success,
    /// The pair was reset by hand (one workflow, one server, or everything).
    Reset,
    /// Every candidate server was blocked and [`AllBlockedPolicy::ProbeLeastRecentlyFailed`]
    /// let this pair take a probe before its cooldown ended.
    ///
    /// [`AllBlockedPolicy::ProbeLeastRecentlyFailed`]: crate::AllBlockedPolicy::ProbeLeastRecentlyFailed
    ForcedProbe,
}

impl UnblockReason {
    /// A short, stable, snake_case name (the same as its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Success => "success",
            Self::Reset => "reset",
            Self::ForcedProbe => "forced_probe",
        }
    }
}

impl std::fmt::Display for UnblockReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
