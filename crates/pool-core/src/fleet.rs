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
    /// An event of a job, for its subscribers in other processes (progress thinned out,
    /// previews without their bytes, outputs left to the record).
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

/// The coordination of several pool processes (see the module docs).
#[async_trait]
pub trait Fleet: Send + Sync + std::fmt::Debug + 'static {
    /// This process's id (unique per run of a process).
    fn process(&self) -> &str;

    /// Renews this process's presence and the leases it holds, takes free or expired leases
    /// up to its fair share of `servers` (`ceil(servers / live processes)`), gives up leases
    /// beyond it, and returns the servers it holds now (each until `ttl` from now, unless
    /// renewed). Called every heartbeat.
    async fn lease(&self, servers: &[ServerId], ttl: Duration)
    -> Result<Vec<ServerId>, StoreError>;

    /// Gives up every lease and leaves the fleet (a clean shutdown).
    async fn leave(&self) -> Result<(), StoreError>;

    /// Tells every other process (best effort: a notice may be lost; the periodic resync is
    /// the safety net).
    async fn notify(&self, notice: &FleetNotice) -> Result<(), StoreError>;

    /// The notices of the other processes, from now on.
    async fn notices(&self) -> Result<mpsc::Receiver<FleetNotice>, StoreError>;
}
