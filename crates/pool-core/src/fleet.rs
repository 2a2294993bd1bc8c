//! [`Fleet`]: several pool processes over one store and one set of ComfyUI servers.
//!
//! Servers are *leased*: each is held by exactly one live process at a time (renewed by
//! heartbeat, a fair share per live process, rebalanced when processes come and go), and only
//! its holder dispatches to it — so no server gets more prompts than its `max_concurrent`,
//! fleet-wide. Jobs are *claimed*: every process keeps the queued jobs in its own queue and
//! dispatches one to a server it holds by a compare-and-set of the job's record in the store
//! (the write-ahead of the attempt); losing the race costs one round trip. A process that dies
//! stops renewing its leases; whoever takes its servers over re-attaches to their prompts,
//! exactly as a restart does. Processes tell each other what changed through small
//! [`FleetNotice`]s (PostgreSQL's `LISTEN/NOTIFY` in `pool-store`).

use std::time::Duration;

use async_trait::async_trait;
use pool_failover::ServerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::{JobEvent, JobId, JobState, StoreError, WorkflowEvent};

/// What one pool process tells the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetNotice {
    /// A job was accepted (its record is in the store): queue it.
    Accepted {
        /// The job.
        job: JobId,
    },
    /// A job's record changed (it is at `version` now): a process that has it queued drops it
    /// once it left the queue; subscribers elsewhere follow its state.
    Changed {
        /// The job.
        job: JobId,
        /// Its record's version now.
        version: u64,
        /// Its state now.
        state: JobState,
    },
    /// An event of a job, for its copies in other processes (their subscribers see it under
    /// the same `seq`): told by the process running a job it took up from the store, thinned
    /// out (progress and previews at most every 250 ms per job, previews without their
    /// bytes; outputs and the end left to the record).
    Event {
        /// The event.
        event: Box<JobEvent>,
    },
    /// A change of a (server, workflow) pair, for everyone's block view.
    Workflow {
        /// The change.
        event: WorkflowEvent,
    },
    /// A process asks the one running a job to cancel it.
    Cancel {
        /// The job.
        job: JobId,
    },
}

/// A server leased to this process, as [`Fleet::lease`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Lease {
    /// The server.
    pub server: ServerId,
    /// The fencing token of this holding: greater than that of every earlier holder of the
    /// server, unchanged while this process keeps renewing it. A write made on behalf of the
    /// lease can carry it, so that the store refuses writes of a holder that was replaced.
    pub epoch: u64,
}

impl Lease {
    /// A lease of `server` at `epoch`.
    pub fn new(server: ServerId, epoch: u64) -> Self {
        Self { server, epoch }
    }
}

/// The coordination of several pool processes (see the module docs).
#[async_trait]
pub trait Fleet: Send + Sync + std::fmt::Debug + 'static {
    /// This process's id (unique per run of a process).
    fn process(&self) -> &str;

    /// Renews this process's presence and the leases it holds, takes free or expired leases
    /// up to its fair share of `servers`, gives up leases beyond it (and those of servers no
    /// longer in `servers`), and returns the leases it holds now, ordered by server. Called
    /// every heartbeat. The fair share is `servers / live processes`, rounded up for some
    /// processes and down for the others so that the shares add up to the servers (8 servers,
    /// 3 processes: 3/3/2; 4 servers: 2/1/1, where `ceil` for all would leave one process
    /// with nothing).
    ///
    /// Each lease lasts `ttl` from the store's clock at the call, unless renewed; a holder
    /// should count it as valid for `ttl` from just *before* its call, on its own monotonic
    /// clock, and stop dispatching to a server whose lease it could not renew by then.
    /// [`Lease::epoch`] is a fencing token: it grows each time the server is taken (by
    /// another process, or again by this one after it gave the server up).
    ///
    /// # Errors
    ///
    /// [`StoreError::Config`] for a `ttl` under a millisecond; those of the store otherwise
    /// (then the caller holds nothing once its last leases run out).
    async fn lease(&self, servers: &[ServerId], ttl: Duration) -> Result<Vec<Lease>, StoreError>;

    /// Gives up every lease and leaves the fleet (a clean shutdown).
    async fn leave(&self) -> Result<(), StoreError>;

    /// Tells every other process (best effort: a notice may be lost; the periodic resync is
    /// the safety net). The sender does not get its own notice back.
    ///
    /// # Errors
    ///
    /// [`StoreError::Rejected`] for a notice too large for the transport (nothing is sent:
    /// send a smaller one, such as [`FleetNotice::Changed`], instead); those of the store
    /// otherwise.
    async fn notify(&self, notice: &FleetNotice) -> Result<(), StoreError>;

    /// Tells every other process `notices`, in order, as [`notify`](Self::notify) does one
    /// (a transport may send them together: PostgreSQL's sends many in one round trip). A
    /// notice too large is left out and the others go; the error says so.
    ///
    /// # Errors
    ///
    /// Those of [`notify`](Self::notify) (the last one, after every notice was tried).
    async fn notify_all(&self, notices: &[FleetNotice]) -> Result<(), StoreError> {
        let mut result = Ok(());
        for notice in notices {
            if let Err(error) = self.notify(notice).await {
                result = Err(error);
            }
        }
        result
    }

    /// The notices of the other processes, from now on (once this returns), in the order
    /// they were sent. Best effort: notices sent while the transport reconnects, or while the
    /// receiver is full, are lost. The feed ends when the receiver is dropped.
    async fn notices(&self) -> Result<mpsc::Receiver<FleetNotice>, StoreError>;
}

/// A fleet for the crate's unit tests: no leases, nothing heard, and every send of notices
/// recorded (the notices and when).
#[cfg(test)]
pub(crate) mod recording {
    use async_trait::async_trait;
    use parking_lot::Mutex;
    use tokio::time::Instant;

    use super::*;

    /// Records each send of notices.
    #[derive(Debug, Default)]
    pub(crate) struct Recording(Mutex<Vec<(Vec<FleetNotice>, Instant)>>);

    impl Recording {
        /// Each send so far: how many notices, and when.
        pub(crate) fn sends(&self) -> Vec<(usize, Instant)> {
            self.0.lock().iter().map(|(n, at)| (n.len(), *at)).collect()
        }

        /// Every notice sent so far, in order.
        pub(crate) fn notices(&self) -> Vec<FleetNotice> {
            self.0.lock().iter().flat_map(|(n, _)| n.clone()).collect()
        }
    }

    #[async_trait]
    impl Fleet for Recording {
        fn process(&self) -> &str {
            "here"
        }
        async fn lease(&self, _: &[ServerId], _: Duration) -> Result<Vec<Lease>, StoreError> {
            Ok(Vec::new())
        }
        async fn leave(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn notify(&self, notice: &FleetNotice) -> Result<(), StoreError> {
            self.notify_all(std::slice::from_ref(notice)).await
        }
        async fn notify_all(&self, notices: &[FleetNotice]) -> Result<(), StoreError> {
            self.0.lock().push((notices.to_vec(), Instant::now()));
            Ok(())
        }
        async fn notices(&self) -> Result<mpsc::Receiver<FleetNotice>, StoreError> {
            Ok(mpsc::channel(1).1)
        }
    }
}
