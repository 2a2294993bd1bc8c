//! `comfy-pool`: run ComfyUI workflows across a fleet of ComfyUI servers, with hash-based
//! failover routing.
//!
//! Every workflow gets a deterministic *structural* hash ([`WorkflowHash`]: node classes,
//! wiring and model files; not prompts, seeds or sizes). Failures are tracked per
//! (server, workflow hash): a workflow that fails on server A is routed around A for a
//! cooldown while every other workflow keeps using A. When the cooldown ends, one job probes
//! the pair; success clears it, failure blocks it again for longer ([`SmartStrategy`],
//! tuned by [`SmartConfig`]).
//!
//! The main type is [`Pool`] (cheap to clone, an `Arc` inside), built with
//! [`Pool::builder`]. [`Pool::enqueue`] returns a [`JobHandle`]: its id, its
//! [events](JobHandle::events), its awaitable [result](JobHandle::result) and
//! [cancel](JobHandle::cancel). Everything the pool does is a [`PoolEvent`] on
//! [`Pool::subscribe`].
//!
//! This crate is a facade: it re-exports the engine (`pool-core`), the failover strategies
//! ([`failover`]), the structural hash ([`hash`]) and the ComfyUI client ([`client`]);
//! [`prelude`] holds the common types. With the `sim` feature, [`sim`] re-exports the
//! simulated ComfyUI server used by the demos and tests.
//!
//! ```
//! use std::time::Duration;
//! use comfy_pool::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let gpu_a = comfy_sim::SimServer::start(comfy_sim::SimConfig::default()).await?;
//! # let gpu_b = comfy_sim::SimServer::start(comfy_sim::SimConfig::default()).await?;
//! # let (url_a, url_b) = (gpu_a.url(), gpu_b.url());
//! // A workflow that fails on a server is kept off it for 60 s, then probed once.
//! let strategy = SmartStrategy::builder().config(SmartConfig::production()).build()?;
//! let pool = Pool::builder()
//!     .server(ServerConfig::new(url_a).id("gpu-a")) // e.g. "http://10.0.0.5:8188"
//!     .server(ServerConfig::new(url_b).id("gpu-b").max_concurrent(2))
//!     .strategy(Arc::new(strategy))
//!     .build()?;
//!
//! let workflow = serde_json::json!({
//!     "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
//!     "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
//!     "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "demo"}}
//! });
//! let hash = WorkflowHash::of(&workflow)?;
//! let job = pool.enqueue(workflow, JobOptions::new().priority(5).max_attempts(3)).await?;
//! let output = job.result().await?;
//! println!("workflow {} ran on {} as prompt {}", hash.short(), output.server, output.prompt_id);
//! assert!(output.outputs.contains_key("3"));
//!
//! pool.shutdown(ShutdownMode::Drain).await;
//! # Ok(())
//! # }
//! ```

pub use pool_core::{
    AttemptError, AttemptFailure, AttemptOutcome, AttemptOutput, AttemptRecord, AttemptRequest,
    Backoff, Blob, BlockInfo, CleanupOutcome, ComfyBackend, Constraint, CurrentAttempt,
    DeadlineKind, Deadlines, Error, EventSink, EventSource, Fit, InMemoryQueue, Ineligible,
    InputFile, JobEvent, JobEventKind, JobEvents, JobHandle, JobId, JobKey, JobOptions, JobOutput,
    JobQueue, JobRecord, JobSpec, JobState, JobStatus, JobTimings, NodeTiming, OutlierEjection,
    OutputSelection, Pool, PoolBuilder, PoolEvent, PoolEvents, PoolStats, PreviewFormat,
    QueueEntry, Result, RunEvent, SeedAssignment, ServerBackend, ServerConfig, ServerState,
    ServerStats, ServerView, ShutdownMode, Timestamp, Transition, Variant, WorkflowEvent, WsImage,
};
pub use pool_failover::{
    AllBlocked, AllBlockedDecision, AllBlockedPolicy, Claim, ClaimKind, FailoverEvent,
    FailoverStrategy, FailureClass, NoopStrategy, PairState, PairStatus, ServerBlock, ServerId,
    SmartConfig, SmartStats, SmartStrategy, SmartStrategyBuilder, UnblockReason,
};
pub use workflow_hash::{ShortHash, WorkflowHash};

/// The ComfyUI client crate (`comfy-client`): the whole HTTP API, the `/ws` event stream and
/// [`Client::run`](comfy_client::Client::run) for one server without a pool.
pub use comfy_client as client;
/// The client of one ComfyUI server (see [`client`]).
pub use comfy_client::Client;
/// The failover crate (`pool-failover`): the [`FailoverStrategy`] trait and its strategies.
pub use pool_failover as failover;
/// The structural hash crate (`workflow-hash`): [`WorkflowHash`], the canonical text that is
/// hashed and [`diff`](workflow_hash::diff), which explains why two workflows hash differently.
pub use workflow_hash as hash;

/// The simulated ComfyUI server (`comfy-sim`, feature `sim`): protocol-faithful, in-process,
/// with scriptable faults, for tests and demos without a GPU.
#[cfg(feature = "sim")]
pub use comfy_sim as sim;

/// The types most programs need: `use comfy_pool::prelude::*;`.
pub mod prelude {
    pub use std::sync::Arc;

    pub use crate::{
        AllBlockedPolicy, Backoff, Client, Error, FailoverEvent, FailoverStrategy, FailureClass,
        JobEvent, JobEventKind, JobHandle, JobOptions, JobOutput, JobRecord, JobState, JobStatus,
        Pool, PoolBuilder, PoolEvent, RunEvent, ServerConfig, ServerId, ServerState, ShutdownMode,
        SmartConfig, SmartStrategy, UnblockReason, WorkflowEvent, WorkflowHash,
    };
}

/// The Markdown documents of `docs/`, compiled as doctests so that every Rust block in them
/// stays correct.
#[cfg(doctest)]
mod docs {
    #[doc = include_str!("../../../README.md")]
    struct Readme;

    #[doc = include_str!("../../../docs/hash-routing-guide.md")]
    struct Guide;

    #[doc = include_str!("../../../docs/hash-routing-architecture.md")]
    struct Architecture;

    #[doc = include_str!("../../../docs/quickstart.md")]
    struct Quickstart;
}
