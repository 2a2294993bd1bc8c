//! An async client for [ComfyUI](https://github.com/comfyanonymous/ComfyUI) servers: the
//! whole HTTP API as typed calls, the `/ws` event stream as typed [`Event`]s with
//! automatic reconnection, and [`Client::run`] to follow one prompt from submission to
//! its outputs, robust to stalled sockets and server restarts. `run` is
//! [`Client::submit`] then [`Client::follow`]; `follow` alone re-attaches to a prompt
//! already on the server (after a restart of the caller, say).
//!
//! A run ends with its outputs or a typed error whatever the server does, and keeps at
//! most [`RunOptions::memory_limit`] bytes of what it sent: see the limits on
//! [`RunOptions`](RunOptions#limits). Credentials (in the URL, or set on the builder) are
//! sent as a header marked sensitive and never appear in a log line, an error or a
//! `Debug` output.
//!
//! The main type is [`Client`] (cheap to clone, an `Arc` inside), built with
//! [`Client::builder`]. Every failure is one [`Error`] with predicates
//! ([`Error::is_retryable`], [`Error::is_validation`], ...) and the ComfyUI details
//! ([`Error::validation`], [`Error::execution`]).
//!
//! ```no_run
//! use comfy_client::{Client, Event, RunOptions};
//! use std::time::Duration;
//!
//! # async fn demo() -> comfy_client::Result<()> {
//! let client = Client::builder("http://127.0.0.1:8188/")
//!     .request_timeout(Duration::from_secs(30))
//!     .build()?;
//! let workflow = serde_json::json!({
//!     "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
//!     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "demo"}}
//! });
//! let mut run = client
//!     .run(workflow, RunOptions::default().total_timeout(Duration::from_secs(600)))
//!     .await?;
//! while let Some(event) = run.next_event().await {
//!     if let Event::Progress(p) = event {
//!         println!("node {:?}: {}/{}", p.node, p.value, p.max);
//!     }
//! }
//! let output = run.wait().await?;
//! for (node, image) in output.images() {
//!     let bytes = client.download(&image).await?;
//!     println!("node {node}: {} ({} bytes)", image.filename, bytes.len());
//! }
//! # Ok(())
//! # }
//! ```

pub use auth::Auth;
pub use builder::ClientBuilder;
pub use client::Client;
pub use error::{BoxError, Deadline, Error, Result};
pub use event::{
    ConnectionState, Event, EventStream, ExecInfo, Executed, Executing, ExecutionCached,
    ExecutionError, ExecutionInterrupted, ExecutionStart, ExecutionSuccess, ImageFormat,
    NodeProgress, NodeText, Notification, Preview, PreviewMetadata, Progress, ProgressState,
    QueueStatus, Status, UnknownBinary, UnknownMessage,
};
pub use run::{
    CancelHandle, Dropped, Execution, InlineRun, NodeTiming, RunOptions, RunOutput, Submitted,
    Timings, WsOutput,
};
pub use types::{
    Device, Features, FreeRequest, History, HistoryEntry, HistoryStatus, ImageRef, NodeInfo,
    NodeInputs, NodeOutput, PromptInfo, PromptRequest, PromptResponse, Queue, QueueItem,
    SystemInfo, SystemStats, Upload, UploadResponse,
};
pub use types::{
    Job, JobList, JobSort, JobStatus, JobWorkflow, JobsQuery, Pagination, PreviewOutput, SortOrder,
};
pub use validation::{ExecutionFailure, NodeErrors, PromptError, ValidationError};

mod api;
mod auth;
mod builder;
mod client;
mod endpoint;
mod error;
mod event;
mod http;
mod jobs;
mod run;
mod setters;
mod types;
mod validation;
mod ws;
