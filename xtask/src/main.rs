//! Project automation for comfy-pool, run as `cargo xtask <command>` from anywhere in the tree.
//!
//! Every command prints the commands it runs before running them, so what CI does can be
//! repeated by hand.

mod bench;
mod ci;
mod command;
mod demo;
mod deps;
mod hash;
mod pg;
mod serve;
mod sim;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Project automation for comfy-pool.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Everything CI checks: lint (fmt, clippy, docs) then the full test suite.
    Ci,
    /// `cargo fmt --check`, clippy with warnings denied, and `cargo doc` with warnings denied.
    Lint,
    /// The full test suite: every crate's unit, integration and doc tests, against a
    /// PostgreSQL cluster started for the run. As root, first installs the Debian packages the
    /// tests need when missing (see `deps`).
    Test,
    /// Install the Debian packages the tests need when missing (postgresql, chromium,
    /// chromium-driver): apt-get as root, otherwise print the command.
    Deps,
    /// Start a throwaway PostgreSQL cluster for development, print its URL, and keep it until
    /// Ctrl-C (which stops it and removes its directory).
    Pg,
    /// Print the structural hash of each workflow file, like `sha256sum` (stdin for none or `-`).
    Hash {
        /// API-format workflow JSON files.
        files: Vec<String>,
    },
    /// Run a demo: `basic` (default), `advanced` or `multitenant`, on simulated servers unless
    /// `--hosts URL,URL` (or `COMFY_HOSTS`) names real ones.
    Demo {
        /// The demo's name first (optional), then its options (`--hosts`, `--verbose`, ...).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "NAME] [ARGS"
        )]
        args: Vec<String>,
    },
    /// Run the criterion benches and print the table of figures against their targets.
    Bench {
        /// Short warm-up and measurement, for CI-sized machines.
        #[arg(long)]
        quick: bool,
        /// Print the table from the last results without running the benches.
        #[arg(long)]
        report_only: bool,
        /// Only these bench targets (`hash`, `failover`, `sim`, `client`, `pool`, `caps`, `server`).
        benches: Vec<String>,
    },
    /// Start the HTTP service (`comfy-pool serve --demo`) on three in-process simulated
    /// servers and a fresh SQLite store (`target/comfy-pool-demo.db`); prints `url:`,
    /// `admin-key:` and two `tenant-key:` lines once it listens.
    Serve {
        /// Options for `comfy-pool serve` (`--listen ADDR`, `--store URL`, `--config FILE`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start simulated ComfyUI servers on consecutive ports (Ctrl-C stops them).
    Sim {
        /// How many servers to start.
        #[arg(long, default_value_t = 3)]
        count: u16,
        /// Address of the first server; the others take the following ports.
        #[arg(long, default_value = "127.0.0.1:8188")]
        listen: String,
        /// Further options for every server (see `cargo run -p comfy-sim -- --help`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Ci => ci::lint().and_then(|()| ci::test()),
        Task::Lint => ci::lint(),
        Task::Test => ci::test(),
        Task::Deps => deps::ensure(&deps::ALL),
        Task::Pg => pg::run(),
        Task::Hash { files } => hash::run(&files),
        Task::Demo { args } => demo::run(&args),
        Task::Bench {
            quick,
            report_only,
            benches,
        } => bench::run(&bench::Options {
            quick,
            report_only,
            benches,
        }),
        Task::Serve { args } => serve::run(&args),
        Task::Sim {
            count,
            listen,
            extra,
        } => sim::run(count, &listen, &extra),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
