//! Shared code of the comfy-pool demos (`cargo xtask demo [basic|advanced|multitenant]`) and
//! the `batch` example: each demo is a library function here, called by a thin example
//! `main` and by the tests in `tests/`. `batch` is `comfy-pool run` (the `comfy-pool-cli`
//! crate) printing to a [`Console`].
//!
//! - [`Fleet`]: simulated ComfyUI servers started in-process (default), or real ones from
//!   `--hosts URL,URL` / `COMFY_HOSTS` ([`HostsArg`]).
//! - [`Workflow`]: the workflows of `examples/workflows/` with their structural hashes.
//! - [`EventLog`], [`JobBook`] and [`timeline`]: what the pool did, recorded, so that every
//!   demo can *check* its claims ([`Checks`]) instead of only printing them.
//! - [`Console`], [`Table`], [`describe`], [`metrics`] and [`progress`]: the output.
//!
//! ```no_run
//! # async fn demo() -> examples::Result<()> {
//! let console = examples::Console::stdout();
//! let args = examples::basic::BasicArgs::default();
//! let checks = examples::basic::run(&args, &console).await?;
//! assert!(checks > 0);
//! # Ok(())
//! # }
//! ```

pub use checks::Checks;
pub use comfy_pool_cli::hosts::{HostsArg, parse_hosts, server_name};
pub use console::Console;
pub use error::{DemoError, Result, report};
pub use event_log::{EventLog, Logged};
pub use fleet::{Fleet, FleetServer};
pub use jobs::{JobBook, JobInfo};
pub use table::Table;
pub use workflows::{LIBRARY, Workflow};

pub mod advanced;
pub mod basic;
pub mod batch;
pub mod describe;
pub mod metrics;
pub mod monitor;
pub mod multitenant;
pub mod progress;
pub mod setup;
pub mod timeline;
pub mod workload;

mod checks;
mod console;
mod error;
mod event_log;
mod fleet;
mod jobs;
mod table;
mod workflows;
