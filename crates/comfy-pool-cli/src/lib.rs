//! `comfy-pool-cli`: the `comfy-pool` command line, and the library behind it so that
//! programs and tests can run its commands in-process.
//!
//! | command | what it does | exit status |
//! |---|---|---|
//! | `comfy-pool run [--hosts URL,URL] [--store URL] [--max-concurrent N] [--queue-ahead N] [--repeat N] [--vary-seed] [--json] WORKFLOW.json...` | every file × repeat as a job on a pool, kept in a store ([`run`]) | 0 every job completed or failed, 1 some cancelled or interrupted, 2 bad input / store / no server |
//! | `comfy-pool hash [FILE...]` | structural hashes, like `sha256sum` ([`hash`]) | 1 when a file failed |
//! | `comfy-pool diff A.json B.json [--json]` | why two workflows hash differently ([`diff`]) | 0 equal, 1 different, 2 error |
//! | `comfy-pool sim [--count N] [--listen ADDR] [...]` | simulated ComfyUI servers, `url: URL` per server on stdout ([`sim`]) | 0 after SIGINT / SIGTERM |
//! | `comfy-pool serve --config comfy-pool.toml [--demo] [--listen ADDR] [--store URL]` | the pool as an HTTP service, `url: URL` on stdout once listening ([`serve`]) | 0 after SIGINT / SIGTERM, 2 bad configuration |
//! | `comfy-pool keys new --tenant NAME \| list \| revoke ID [--config FILE \| --store URL]` | tenants' API keys in the service's store ([`keys`]) | 2 on error |
//!
//! `run` without `--hosts` (or `COMFY_HOSTS`) starts two simulated servers in its own
//! process, so it works with nothing installed. Its job ids are `<file stem>-<repeat>`,
//! stable across runs of the same command line, and `--vary-seed` derives each repeat's
//! seeds from its number ([`run::Plan::new`]); [`run::build_pool`] is the one place a pool
//! is built. Its jobs live in `--store` ([`run::RunStore`]; an SQLite file by default), so
//! the same command run again after a crash reports each job once and runs nothing twice.
//!
//! Every command is a function over its parsed arguments and a writer, so it can be called
//! without spawning a process:
//!
//! ```
//! use clap::Parser;
//! use comfy_pool_cli::diff::Comparison;
//! use comfy_pool_cli::workflow::WorkflowFile;
//! use comfy_pool_cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["comfy-pool", "run", "--repeat", "3", "--vary-seed", "a.json"])?;
//! let Command::Run(args) = cli.command else { unreachable!() };
//! assert_eq!((args.repeat, args.vary_seed), (3, true));
//!
//! let old = serde_json::json!({
//!     "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64}},
//!     "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}
//! });
//! let mut new = old.clone();
//! new["1"]["inputs"]["width"] = 512.into(); // a size: same hash
//! new["2"]["class_type"] = "PreviewImage".into(); // another node class: another hash
//! let comparison = Comparison::of(
//!     &WorkflowFile::new("old.json", old)?,
//!     &WorkflowFile::new("new.json", new)?,
//! )?;
//! assert!(!comparison.is_equal());
//! assert_eq!(comparison.differences.len(), 1);
//! assert_eq!(comparison.to_json()["differences"][0]["kind"], "class_changed");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use cli::{Cli, Command, EXIT_INCOMPLETE, EXIT_TROUBLE};
pub use error::{Error, Result};

pub mod diff;
pub mod hash;
pub mod hosts;
pub mod keys;
pub mod run;
pub mod serve;
pub mod sim;
pub mod workflow;

mod cli;
mod error;
mod signal;
