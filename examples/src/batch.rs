//! The `batch` example: run workflow files through a pool, report each job (as JSON lines
//! with `--json`) and a summary.

use std::path::PathBuf;
use std::time::Duration;

use comfy_pool::prelude::*;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::progress::Bars;
use crate::{
    Console, DemoError, EventLog, Fleet, HostsArg, JobBook, Result, Workflow, describe, setup,
    timeline,
};

/// Options of the `batch` example.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(
    name = "batch",
    about = "Run ComfyUI workflow files through a pool of servers.",
    long_about = "Run ComfyUI API-format workflow files through a pool of servers with hash-based \
                  failover. Without --hosts (or COMFY_HOSTS), two simulated ComfyUI servers are \
                  started in this process, so the command works without any setup."
)]
pub struct BatchArgs {
    /// Servers to use (without: two simulated servers in this process).
    #[command(flatten)]
    pub hosts: HostsArg,
    /// Submit every workflow this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Print one JSON object per finished job, then a `{"summary": ...}` line.
    #[arg(long)]
    pub json: bool,
    /// API-format workflow files.
    #[arg(required = true, value_name = "WORKFLOW.json")]
    pub workflows: Vec<PathBuf>,
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Jobs submitted.
    pub submitted: usize,
    /// Jobs completed.
    pub completed: usize,
    /// Jobs failed.
    pub failed: usize,
    /// Jobs cancelled.
    pub cancelled: usize,
}

impl BatchSummary {
    /// Whether every submitted job reached a terminal state.
    pub fn all_finished(&self) -> bool {
        self.completed + self.failed + self.cancelled == self.submitted
    }
}

/// Runs the batch.
///
/// # Errors
///
/// An unreadable workflow file, a refused job, or no server online.
pub async fn run(args: &BatchArgs, console: &Console) -> Result<BatchSummary> {
    let workflows = args
        .workflows
        .iter()
        .map(|path| Workflow::from_file(path))
        .collect::<Result<Vec<_>>>()?;
    let fleet = match args.hosts.urls()? {
        Some(urls) => Fleet::real(urls),
        None => setup::sim_fleet(&["sim-1", "sim-2"], Duration::ZERO).await?,
    };
    if !args.json {
        console.line(fleet.describe());
    }
    let pool = setup::pool(&fleet, Arc::new(SmartStrategy::builder().build()?), 1)?;
    let book = JobBook::new();
    let log = EventLog::start(&pool, book.clone(), None);
    setup::wait_ready(&pool, &log).await?;

    let bars = (!args.json).then(|| Bars::new(console));
    let total = workflows.len() * args.repeat;
    let bar = bars.as_ref().map(|b| b.bar(total as u64, "jobs"));
    let mut running = JoinSet::new();
    for _ in 0..args.repeat {
        for workflow in &workflows {
            let job = book.enqueue(&pool, workflow, JobOptions::new())?;
            let (name, hash) = (workflow.name.clone(), workflow.hash);
            running.spawn(async move {
                let result = job.result().await;
                (job.id().to_string(), name, hash, result)
            });
        }
    }
    let mut summary = BatchSummary {
        submitted: total,
        ..BatchSummary::default()
    };
    while let Some(finished) = running.join_next().await {
        let Ok((id, name, hash, result)) = finished else {
            continue;
        };
        let (status, server, attempts, error) = match &result {
            Ok(output) => {
                summary.completed += 1;
                (
                    "completed",
                    Some(output.server.to_string()),
                    output.timings.attempts.len(),
                    None,
                )
            }
            Err(error) if error.is_cancelled() => {
                summary.cancelled += 1;
                ("cancelled", None, 0, Some(error.to_string()))
            }
            Err(error) => {
                summary.failed += 1;
                (
                    "failed",
                    None,
                    error.attempts().len(),
                    Some(error.to_string()),
                )
            }
        };
        if args.json {
            let line = json!({
                "job_id": id, "workflow": name, "hash": hash.to_string(), "status": status,
                "server": server, "attempts": attempts, "error": error,
            });
            console.line(line);
        } else {
            if let Some(bar) = &bar {
                bar.inc(1);
            }
            let place = server.map_or_else(
                || describe::first_line(error.as_deref().unwrap_or("")),
                |s| format!("on {s}"),
            );
            console.line(format!("{status:>9}  {name}  {place}"));
        }
    }
    drop(bar);
    drop(bars);
    pool.shutdown(ShutdownMode::Drain).await;
    let blocks: Vec<Value> = timeline::blocks(&log.snapshot())
        .iter()
        .map(|b| json!({"server": b.server, "hash": b.hash.to_string(), "class": b.class.as_str()}))
        .collect();
    if args.json {
        console.line(json!({"summary": {
            "submitted": summary.submitted, "completed": summary.completed,
            "failed": summary.failed, "cancelled": summary.cancelled, "blocks": blocks,
        }}));
    } else {
        console.line(format!(
            "{} submitted, {} completed, {} failed, {} cancelled, {} blocks",
            summary.submitted,
            summary.completed,
            summary.failed,
            summary.cancelled,
            blocks.len()
        ));
    }
    if summary.all_finished() {
        Ok(summary)
    } else {
        Err(DemoError::Timeout("every job to finish".into()))
    }
}
