//! What the engine is told ([`Command`]), and the small typed handle through which handles
//! and tasks tell it ([`EngineLink`]).

use std::sync::Arc;

use pool_failover::ServerId;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::attempt::AttemptDone;
use crate::job::JobCell;
use crate::{
    AttemptFailure, Error, JobKey, JobSpec, PoolStats, Result, RunEvent, ServerConfig, ShutdownMode,
};

/// A job accepted by `enqueue`, handed to the engine.
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) cell: Arc<JobCell>,
    pub(crate) spec: Arc<JobSpec>,
    /// Per variant, whether it has inputs to auto-seed.
    pub(crate) seeded: Vec<bool>,
    /// Per variant, what its workflow needs of a server.
    pub(crate) requirements: Vec<Arc<comfy_caps::Requirements>>,
    pub(crate) enqueued_at: Instant,
}

/// What the engine is told.
#[derive(Debug)]
pub(crate) enum Command {
    Enqueue(Box<NewJob>),
    Cancel(JobKey),
    /// What the running attempt `attempt` of a job reported.
    Run {
        key: JobKey,
        attempt: u32,
        event: RunEvent,
    },
    AttemptDone(Box<AttemptDone>),
    /// A running attempt's prompt is done executing on its server: the slot is free
    /// before the attempt ends (its `AttemptDone` then says `slot_freed`).
    SlotFreed(ServerId),
    /// The first try of a server-side clean-up ended (the slot it held is free again).
    CleanupSettled(ServerId),
    /// The attempt `attempt` of a job could not take its queued-ahead prompt back (it
    /// started on its server).
    PullRefused {
        key: JobKey,
        attempt: u32,
    },
    Health {
        server: ServerId,
        result: std::result::Result<(), AttemptFailure>,
        /// The check followed a sign of change from the backend (a socket that dropped or
        /// reopened: maybe a restart with other nodes or models).
        hinted: bool,
    },
    /// A server's capabilities were read (or could not be).
    Capabilities {
        server: ServerId,
        result: std::result::Result<Option<Arc<comfy_caps::Capabilities>>, AttemptFailure>,
    },
    AddServer(Box<ServerConfig>, oneshot::Sender<Result<()>>),
    RemoveServer {
        server: ServerId,
        drain: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    Stats(oneshot::Sender<PoolStats>),
    /// Ends blocks by hand; answers how many ended.
    ResetBlocks(crate::BlockReset, oneshot::Sender<usize>),
    /// Which servers can run a workflow (by what they are known to have).
    Fit {
        hash: workflow_hash::WorkflowHash,
        requirements: Arc<comfy_caps::Requirements>,
        reply: oneshot::Sender<Vec<(ServerId, crate::Fit)>>,
    },
    Shutdown(ShutdownMode, oneshot::Sender<()>),
    /// What the fleet side learnt (leases, other processes' notices, the resync).
    Fleet(Box<crate::fleet_link::FleetInput>),
}

/// The way to the engine: typed requests over its command channel. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct EngineLink {
    tx: mpsc::UnboundedSender<Command>,
}

impl EngineLink {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Command>) -> Self {
        Self { tx }
    }

    /// Hands a job to the engine; `false` if the engine has stopped.
    pub(crate) fn enqueue(&self, job: NewJob) -> bool {
        self.tx.send(Command::Enqueue(Box::new(job))).is_ok()
    }

    /// Asks the engine to cancel a job (a no-op once it stopped).
    pub(crate) fn cancel(&self, key: JobKey) {
        let _ = self.tx.send(Command::Cancel(key));
    }

    /// A snapshot of the pool.
    pub(crate) async fn stats(&self) -> Result<PoolStats> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(tx))?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Adds a server.
    pub(crate) async fn add_server(&self, config: ServerConfig) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::AddServer(Box::new(config), tx))?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Removes (or drains) a server.
    pub(crate) async fn remove_server(&self, server: ServerId, drain: bool) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::RemoveServer {
            server,
            drain,
            reply,
        })?;
        rx.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Ends blocks by hand.
    pub(crate) async fn reset_blocks(&self, scope: crate::BlockReset) -> Result<usize> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ResetBlocks(scope, reply))?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Which servers can run a workflow.
    pub(crate) async fn fit(
        &self,
        hash: workflow_hash::WorkflowHash,
        requirements: Arc<comfy_caps::Requirements>,
    ) -> Result<Vec<(ServerId, crate::Fit)>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Fit {
            hash,
            requirements,
            reply,
        })?;
        rx.await.map_err(|_| Error::ShuttingDown)
    }

    /// Shuts the engine down; returns once it has (at once if it already stopped).
    pub(crate) async fn shutdown(&self, mode: ShutdownMode) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(mode, tx)).is_ok() {
            let _ = rx.await;
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        self.tx.send(command).map_err(|_| Error::ShuttingDown)
    }
}
