//! [`PoolStats`]: a snapshot of the pool for monitoring.

use pool_failover::{PairStatus, ServerId};

use crate::ServerState;

/// One server's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// The server.
    pub id: ServerId,
    /// Its state.
    pub state: ServerState,
    /// Attempts running on it now.
    pub in_flight: usize,
    /// Its slot count.
    pub max_concurrent: usize,
    /// Attempts that succeeded on it.
    pub completed: u64,
    /// Attempts that failed on it (cancellations not counted).
    pub failed: u64,
    /// The last error that took it offline, if any.
    pub last_error: Option<String>,
}

/// A snapshot of the pool ([`Pool::stats`](crate::Pool::stats)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PoolStats {
    /// Jobs waiting in the queue for a server.
    pub queued: usize,
    /// Jobs waiting for their retry backoff to end.
    pub retry_wait: usize,
    /// Jobs running on a server.
    pub running: usize,
    /// Queued jobs per priority, highest first.
    pub queued_by_priority: Vec<(i32, usize)>,
    /// Jobs that completed since the pool started.
    pub completed: u64,
    /// Jobs that failed for good since the pool started.
    pub failed: u64,
    /// Jobs cancelled since the pool started.
    pub cancelled: u64,
    /// Per server.
    pub servers: Vec<ServerStats>,
    /// (server, workflow) pairs the strategy tracks, blocked or not.
    pub blocks: Vec<PairStatus>,
}

impl PoolStats {
    /// The stats of one server.
    pub fn server(&self, id: &str) -> Option<&ServerStats> {
        self.servers.iter().find(|s| s.id.as_str() == id)
    }

    /// Jobs accepted and not finished.
    pub fn live(&self) -> usize {
        self.queued + self.retry_wait + self.running
    }
}
