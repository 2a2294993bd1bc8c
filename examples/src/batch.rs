//! The `batch` example: `comfy-pool run` (the `comfy-pool-cli` crate) called as a library,
//! printing to a [`Console`]: workflow files through a pool, each job reported (as JSON lines
//! with `--json`) and a summary.

use std::io::{self, Write};

use comfy_pool_cli::run::{RunArgs, RunSummary};

use crate::{Console, DemoError, Result};

/// Options of the `batch` example: those of `comfy-pool run`.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "batch",
    about = "Run ComfyUI workflow files through a pool of servers.",
    long_about = "Run ComfyUI API-format workflow files through a pool of servers with hash-based \
                  failover (the same as `comfy-pool run`). Without --hosts (or COMFY_HOSTS), two \
                  simulated ComfyUI servers are started in this process, so the command works \
                  without any setup."
)]
pub struct BatchArgs {
    /// The options of `comfy-pool run`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// Runs the batch.
///
/// # Errors
///
/// As [`comfy_pool_cli::run::run`] (an unreadable workflow file, a refused job, no server
/// online); [`DemoError::Timeout`] when some job did not complete or fail.
pub async fn run(args: &BatchArgs, console: &Console) -> Result<RunSummary> {
    let mut out = ConsoleWriter {
        console: console.clone(),
        pending: Vec::new(),
    };
    let summary = comfy_pool_cli::run::run(&args.run, &mut out, std::future::pending()).await?;
    if summary.all_done() {
        Ok(summary)
    } else {
        Err(DemoError::Timeout("every job to finish".into()))
    }
}

/// Hands whole lines written to it to a [`Console`].
struct ConsoleWriter {
    console: Console,
    pending: Vec<u8>,
}

impl Write for ConsoleWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.console
                .line(String::from_utf8_lossy(&line[..end]).into_owned());
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
