//! [`Monitor`]: counters over the pool's event stream, the way a service would export them.

use std::collections::BTreeMap;
use std::sync::Arc;

use comfy_pool::{JobEventKind, Pool, PoolEvent, ServerState, WorkflowEvent};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

/// Counts of what the pool reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Jobs completed.
    pub completed: u64,
    /// Jobs failed for good.
    pub failed: u64,
    /// Jobs cancelled.
    pub cancelled: u64,
    /// Retries scheduled.
    pub retries: u64,
    /// Probation probes dispatched.
    pub probes: u64,
    /// (server, workflow) blocks.
    pub blocks: u64,
    /// Unblocks, by reason.
    pub unblocks: BTreeMap<String, u64>,
    /// Server state changes, by `server → state`.
    pub server_changes: BTreeMap<String, u64>,
    /// Events missed by a lagging subscriber.
    pub missed: u64,
}

/// A callback for notable events (blocks, unblocks, server state changes).
pub type Notable = Box<dyn Fn(&PoolEvent) + Send + Sync>;

/// Subscribes to a pool and keeps [`Counters`]; calls `notable` for blocks, unblocks and
/// server state changes. Stops when dropped.
#[derive(Debug)]
pub struct Monitor {
    counters: Arc<Mutex<Counters>>,
    task: JoinHandle<()>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Monitor {
    /// Starts counting.
    pub fn start(pool: &Pool, notable: Notable) -> Self {
        let counters = Arc::new(Mutex::new(Counters::default()));
        let shared = Arc::clone(&counters);
        let mut events = pool.subscribe();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let is_notable = count(&mut shared.lock(), &event);
                if is_notable {
                    notable(&event);
                }
            }
        });
        Self { counters, task }
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        self.counters.lock().clone()
    }
}

/// Counts one event; returns whether it is notable.
fn count(c: &mut Counters, event: &PoolEvent) -> bool {
    match event {
        PoolEvent::Job(job) => {
            match &job.kind {
                JobEventKind::Completed { .. } => c.completed += 1,
                JobEventKind::Failed {
                    will_retry: false, ..
                } => c.failed += 1,
                JobEventKind::Cancelled => c.cancelled += 1,
                JobEventKind::Retrying { .. } => c.retries += 1,
                JobEventKind::Started { probe: true, .. } => c.probes += 1,
                _ => {}
            }
            false
        }
        PoolEvent::Workflow(WorkflowEvent::Blocked { .. }) => {
            c.blocks += 1;
            true
        }
        PoolEvent::Workflow(WorkflowEvent::Unblocked { reason, .. }) => {
            *c.unblocks.entry(reason.to_string()).or_default() += 1;
            true
        }
        PoolEvent::Server { server, state, .. } => {
            if *state != ServerState::Connecting {
                *c.server_changes
                    .entry(format!("{server} → {state}"))
                    .or_default() += 1;
            }
            true
        }
        PoolEvent::Lagged { missed } => {
            c.missed += missed;
            false
        }
        _ => false,
    }
}
