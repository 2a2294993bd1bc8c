//! [`Cli`]: the command line of `comfy-pool`, its subcommands and their exit codes.

use std::future::Future;
use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use comfy_pool::sim::SimArgs;

use crate::diff::{DiffArgs, diff_files};
use crate::error::{Error, Result};
use crate::hash::{HashArgs, hash_files};
use crate::keys::{KeysArgs, keys};
use crate::run::{RunArgs, run};
use crate::serve::{ServeArgs, serve};
use crate::signal::Shutdown;

/// Run ComfyUI workflows across a fleet of ComfyUI servers with hash-based failover.
#[derive(Debug, Parser)]
#[command(name = "comfy-pool", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Run workflow files on ComfyUI servers, one job per file and repeat.
    ///
    /// Every finished job is reported (with --json: one JSON object per line, then a
    /// `{"summary": ...}` line; otherwise text, with a progress bar on a terminal). Without
    /// --hosts (or COMFY_HOSTS), two simulated servers are started in this process. Job ids
    /// are `<file stem>-<repeat>` (e.g. txt2img-1 .. txt2img-N), the same on every run of
    /// the same command line.
    ///
    /// Jobs are kept in --store (default: comfy-pool.db in the current directory). Running
    /// the same command again after a crash or an interrupt reports the jobs that finished
    /// from the store, follows the prompts that were running and runs only what is left; a
    /// job id stored with a different workflow is an error. SIGINT / SIGTERM leave unfinished
    /// jobs in a durable store (reported `interrupted`); with `--store memory` they are
    /// cancelled.
    ///
    /// Exit status: 0 when every job completed or failed, 1 when some were cancelled or
    /// interrupted (SIGINT, SIGTERM), 2 on bad input, a store that cannot be used, or when no
    /// server is online.
    Run(RunArgs),
    /// Print the structural hash of each workflow file, like sha256sum.
    ///
    /// Reads standard input for `-` or no file. Exit status 1 when any file could not be
    /// hashed (each failure is reported, the other files are still hashed).
    Hash(HashArgs),
    /// Explain why two workflows hash differently, node by node.
    ///
    /// Exit status (like diff): 0 when the hashes are equal, 1 when they differ, 2 on error.
    Diff(DiffArgs),
    /// Start simulated ComfyUI servers and serve until SIGINT or SIGTERM.
    ///
    /// Prints `url: http://127.0.0.1:PORT` on standard output for each server once they all
    /// listen, so another process can start them and read where they are.
    Sim(SimArgs),
    /// Serve the pool as an HTTP service (the /v1 API, SSE, webhooks, metrics, dashboard)
    /// until SIGINT or SIGTERM, then detach from running jobs or drain them, as configured.
    ///
    /// Prints `url: http://HOST:PORT` on standard output once it listens; with --demo (three
    /// simulated servers in this process, an in-memory store unless --store) also
    /// `admin-key: KEY` and `tenant-key: NAME KEY` for two demo tenants.
    ///
    /// Exit status: 0 after SIGINT / SIGTERM, 2 on a bad configuration or when it cannot
    /// start.
    Serve(ServeArgs),
    /// Manage tenants' API keys in the service's store: `new --tenant NAME` prints a new
    /// key once (only its SHA-256 is kept), `list`, `revoke ID`.
    Keys(KeysArgs),
}

/// The exit status of `run` when some job did not reach completed or failed, of `hash`
/// when some file failed, of `diff` when the hashes differ.
pub const EXIT_INCOMPLETE: u8 = 1;
/// The exit status of `run` and `diff` on bad input or trouble (like diff(1)).
pub const EXIT_TROUBLE: u8 = 2;

impl Cli {
    /// Runs the command, printing to standard output and errors to standard error, and
    /// returns the process's exit status.
    pub fn execute(self) -> ExitCode {
        match self.command {
            Command::Hash(args) => {
                let result = hash_files(&args, &mut io::stdout().lock(), &mut io::stderr());
                match result {
                    Ok(0) => ExitCode::SUCCESS,
                    Ok(_) => ExitCode::from(EXIT_INCOMPLETE),
                    Err(error) => fail("hash", &error, EXIT_INCOMPLETE),
                }
            }
            Command::Diff(args) => match diff_files(&args, &mut io::stdout().lock()) {
                Ok(comparison) if comparison.is_equal() => ExitCode::SUCCESS,
                Ok(_) => ExitCode::from(EXIT_INCOMPLETE),
                Err(error) => fail("diff", &error, EXIT_TROUBLE),
            },
            Command::Sim(args) => {
                let served = with_runtime(|mut shutdown| async move {
                    crate::sim::serve(&args, &mut io::stdout(), shutdown.wait()).await
                });
                match served {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => fail("sim", &error, EXIT_INCOMPLETE),
                }
            }
            Command::Serve(args) => {
                let served = with_runtime(|shutdown| async move {
                    serve(&args, &mut io::stdout(), first_of_two(shutdown)).await
                });
                match served {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => fail("serve", &error, EXIT_TROUBLE),
                }
            }
            Command::Keys(args) => {
                let done = with_runtime(|_| async move { keys(&args, &mut io::stdout()).await });
                match done {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(error) => fail("keys", &error, EXIT_TROUBLE),
                }
            }
            Command::Run(args) => {
                let ran = with_runtime(|shutdown| async move {
                    run(&args, &mut io::stdout(), first_of_two(shutdown)).await
                });
                match ran {
                    Ok(summary) if summary.all_done() => ExitCode::SUCCESS,
                    Ok(_) => ExitCode::from(EXIT_INCOMPLETE),
                    Err(error) => fail("run", &error, EXIT_TROUBLE),
                }
            }
        }
    }
}

/// Runs `body` on a multi-threaded runtime with logging (`RUST_LOG`) to standard error and
/// SIGINT / SIGTERM listened for.
fn with_runtime<T, F>(body: impl FnOnce(Shutdown) -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            what: "cannot start the async runtime",
            source,
        })?;
    runtime.block_on(async {
        let shutdown = Shutdown::install().map_err(|source| Error::Io {
            what: "cannot listen for SIGINT and SIGTERM",
            source,
        })?;
        body(shutdown).await
    })
}

/// Completes at the first SIGINT / SIGTERM (so that `run` cancels its jobs and reports
/// them); a second one ends the process at once with status 130.
fn first_of_two(mut shutdown: Shutdown) -> impl Future<Output = ()> + Send + 'static {
    let (first, signalled) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        shutdown.wait().await;
        let _ = first.send(());
        shutdown.wait().await;
        let _ = writeln!(io::stderr(), "comfy-pool: interrupted twice, exiting");
        std::process::exit(130);
    });
    async move {
        if signalled.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn fail(command: &str, error: &Error, status: u8) -> ExitCode {
    let _ = writeln!(io::stderr(), "comfy-pool {command}: {}", error.chain());
    ExitCode::from(status)
}
