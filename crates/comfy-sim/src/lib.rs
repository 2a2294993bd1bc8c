//! `comfy-sim`: a protocol-faithful simulated ComfyUI server with scriptable faults.
//!
//! Tests, benchmarks and demos need ComfyUI servers that behave like the real one, answer in
//! microseconds on loopback, and fail on purpose. [`SimServer`] is such a server: it speaks the
//! HTTP routes (also under `/api`) and the `/ws` event stream exactly as recorded from a real
//! ComfyUI 0.3.64 (message order, error shapes, binary preview frames, caching, history), or
//! as ComfyUI 0.8 with [`SimConfig::version`] (the Jobs API, `create_time`; see
//! [`ComfyVersion`]); it runs one prompt at a time from an in-memory queue, and takes faults
//! through [`Faults`]: run-time failures by class or model, rejections (in the wording of
//! either era, [`RejectionStyle`]), hangs, crashes with restart on the same port, dropped
//! sockets, refused connections, HTTP 500s (per method and route), frozen HTTP routes,
//! garbage `/history` and `/queue` answers ([`Garbage`]), websocket floods ([`WsFlood`]),
//! delays and seeded random chaos. [`Stats`] counts what it received, per route and per
//! workflow, and the most prompts it held at once; `GET /sim/stats` (the sim's own route,
//! not ComfyUI's) shows the prompt counters to another process as JSON.
//!
//! It answers with its own wire JSON and shares no types with the client crates, so a serde
//! mistake cannot hide on both sides.
//!
//! Deliberate differences from the real server, all in the client's favour of determinism or
//! of the sim's own bounds:
//! an interrupt also cuts a node's execution time short (ComfyUI only stops at node boundaries
//! and progress steps); the history entry is written just before `execution_success` is sent
//! (ComfyUI writes it just after); a link to a missing node is reported on the node holding
//! the link; `/upload/mask` stores the mask like `/upload/image`; JSON bodies are compact;
//! validation and planning take prompts of any depth (ComfyUI recurses and fails deep
//! chains), and a cycle passes validation and runs each of its nodes once; `progress_state`
//! carries the 64 most recently started nodes (ComfyUI sends all of them, quadratic in the
//! length of a prompt); a JSON body nested deeper than 128 levels is refused like invalid
//! JSON (500).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> comfy_sim::Result<()> {
//! use comfy_sim::{SimConfig, SimServer};
//!
//! let sim = SimServer::start(SimConfig::default()).await?;
//! assert!(sim.url().starts_with("http://127.0.0.1:"));
//! sim.faults().fail_class("ImageInvert"); // prompts with ImageInvert now fail at run time
//! assert_eq!(sim.stats().prompts_received, 0);
//! sim.crash_and_restart().await?; // queue and history lost, same port
//! # Ok(())
//! # }
//! ```

pub use crate::args::SimArgs;
pub use crate::catalog::NodeCatalog;
pub use crate::cluster::SimCluster;
pub use crate::config::SimConfig;
pub use crate::error::{Error, Result};
pub use crate::faults::{FaultSettings, Faults, Garbage, RejectionStyle, WsFlood};
pub use crate::server::SimServer;
pub use crate::stats::{ReceivedPrompt, Stats, WorkflowCounts};
pub use crate::version::ComfyVersion;

mod args;
mod catalog;
mod cluster;
mod config;
mod error;
mod faults;
mod files;
mod hub;
mod jobs;
mod life;
mod plan;
mod png;
mod routes;
mod run;
mod server;
mod shared;
mod stats;
mod validate;
mod values;
mod version;
mod ws;
