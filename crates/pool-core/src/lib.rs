//! `pool-core`: the comfy-pool engine. A [`Pool`] takes ComfyUI workflows, routes each to a
//! server with the failover strategy (per server and workflow hash), runs it with
//! `comfy-client`, retries elsewhere when it fails, and reports everything as events.
//!
//! - [`Pool::enqueue`] validates a workflow, hashes it once and returns a [`JobHandle`]
//!   (id, event stream, awaitable result, cancel). [`JobOptions`] set priority, tenant,
//!   caller id (idempotent), attempts and backoff, server filters, deadlines, inputs to
//!   upload, outputs to keep and auto-seed.
//! - One scheduler task owns the [`JobQueue`] and every server's slots: highest priority
//!   first, tenants in turn, constrained jobs first, FIFO otherwise; a job that a free server
//!   can run is never stranded behind jobs that cannot.
//! - Failures are classified into a [`FailureClass`] (in one place, for `comfy-client`
//!   errors), told to the strategy, and retried elsewhere while attempts and servers remain;
//!   the final [`Error`] says per attempt or per server what went wrong.
//! - [`ServerBackend`] is the seam to the transport: [`ComfyBackend`] speaks ComfyUI, and
//!   tests or other transports plug in their own.
//! - Every change is a [`PoolEvent`] on a broadcast channel ([`Pool::subscribe`]), and every
//!   job ends with exactly one terminal event, shutdown included.
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use pool_core::{
//!     AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, JobOptions, Pool,
//!     ServerBackend, ServerConfig, ShutdownMode,
//! };
//!
//! /// A stand-in server that finishes every workflow at once.
//! struct Instant;
//!
//! #[async_trait]
//! impl ServerBackend for Instant {
//!     async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
//!         Ok(AttemptOutput::default())
//!     }
//!     async fn health(&self) -> Result<(), AttemptFailure> { Ok(()) }
//!     async fn upload(&self, _: &InputFile) -> Result<(), AttemptFailure> { Ok(()) }
//!     async fn cancel(&self, _: &str) -> Result<(), AttemptFailure> { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> pool_core::Result<()> {
//! // Real servers: ServerConfig::new("http://127.0.0.1:8188").id("gpu-1")
//! let pool = Pool::builder()
//!     .server(ServerConfig::with_backend("local", Arc::new(Instant)))
//!     .build()?;
//! let workflow = serde_json::json!({
//!     "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
//!     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "demo"}}
//! });
//! let job = pool.enqueue(workflow, JobOptions::new().priority(5)).await?;
//! let output = job.result().await?;
//! assert_eq!(output.server.as_str(), "local");
//! pool.shutdown(ShutdownMode::Drain).await;
//! # Ok(())
//! # }
//! ```

pub use backend::{
    AttemptFailure, AttemptOutput, AttemptRequest, NodeTiming, Rejected, ServerBackend,
};
pub use backoff::Backoff;
pub use blob::Blob;
pub use builder::PoolBuilder;
pub use capability::Fit;
pub use cleanup::CleanupOutcome;
pub use comfy_backend::ComfyBackend;
pub use ejection::OutlierEjection;
pub use error::{AttemptError, BlockInfo, DeadlineKind, Error, Ineligible, Result};
pub use events::{
    JobEvent, JobEventKind, PoolEvent, PreviewFormat, RunEvent, ServerState, WorkflowEvent,
};
pub use fleet::{Fleet, FleetNotice, Lease};
pub use handle::{JobHandle, JobStatus};
pub use ids::{JobId, JobKey};
pub use input::InputFile;
pub use memory_queue::InMemoryQueue;
pub use memory_store::{MemoryStore, referenced_blobs};
pub use options::{Deadlines, JobOptions, OutputSelection};
pub use output::{AttemptOutcome, AttemptRecord, JobOutput, JobTimings, SeedAssignment, WsImage};
pub use pool::{BlockReset, Pool, PoolEvents, ShutdownMode};
pub use pool_failover::{FailoverEvent, FailoverStrategy, FailureClass, ServerId};
pub use queue::{Constraint, JobQueue, QueueEntry, ServerView};
pub use record::{CurrentAttempt, JobRecord, JobSpec, JobState, Variant};
pub use server::ServerConfig;
pub use sink::{EventSink, EventSource};
pub use stats::{PoolStats, ServerStats};
pub use store::{JobPage, JobQuery, JobStore, StoreError, StoredBlock, chain_steps};
pub use stream::JobEvents;
pub use time::{Timestamp, TimestampError};
pub use transition::Transition;
pub use workflow_hash::WorkflowHash;

mod ahead;
mod attempt;
mod backend;
mod backoff;
mod blob;
mod builder;
mod capability;
mod classify;
mod cleanup;
mod comfy_backend;
mod command;
mod dispatch;
mod ejection;
mod engine;
mod error;
mod events;
mod fleet;
mod fleet_link;
mod handle;
mod health;
mod ids;
mod input;
mod job;
mod memory_queue;
mod memory_store;
mod mirror;
mod options;
mod outcome;
mod output;
mod persist;
mod pool;
mod queue;
mod record;
mod recovery;
mod registry;
mod relay;
mod seed;
#[cfg(test)]
mod serde_props;
mod server;
mod servers;
mod sink;
mod stats;
mod store;
mod stream;
mod takeover;
mod time;
mod transition;
mod variants;
