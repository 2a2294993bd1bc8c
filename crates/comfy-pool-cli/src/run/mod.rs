//! `comfy-pool run`: workflow files through a pool of ComfyUI servers, one job per file and
//! repeat, reported per job and summed up.

mod fleet;
mod plan;
mod progress;
mod report;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use comfy_pool::{
    AllBlockedPolicy, AttemptError, JobEventKind, JobHandle, JobOptions, JobOutput, Pool,
    PoolEvent, ServerState, ShutdownMode, WorkflowEvent,
};
use tokio::task::JoinSet;

pub use fleet::{Fleet, PoolSettings, SIMULATED_SERVERS, build_pool};
pub use plan::{JobSpec, Plan, SEED_INPUTS, vary_seeds};
pub use report::{Block, JobReport, Outcome, RunSummary};

use crate::error::{Error, Result};
use crate::hosts::HostsArg;
use progress::Progress;

/// What to do with a job whose workflow is blocked on every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnAllBlocked {
    /// Fail the job at once, saying per server why and until when it is blocked.
    #[default]
    Fail,
    /// Wait until the first block ends (a minute or more with the default cooldowns).
    Wait,
    /// Send the job at once as the probe of the server that failed longest ago.
    Probe,
}

impl From<OnAllBlocked> for AllBlockedPolicy {
    fn from(choice: OnAllBlocked) -> Self {
        match choice {
            OnAllBlocked::Fail => Self::FailFast,
            OnAllBlocked::Wait => Self::WaitForEarliest,
            OnAllBlocked::Probe => Self::ProbeLeastRecentlyFailed,
        }
    }
}

/// The arguments of `comfy-pool run`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RunArgs {
    /// ComfyUI servers (without: two simulated servers in this process).
    #[command(flatten)]
    pub hosts: HostsArg,
    /// Prompts each server runs at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_concurrent: u32,
    /// Submit every workflow this many times (job ids `<file stem>-1` .. `-N`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Give repeat N the file's `seed` / `noise_seed` values plus N-1 (deterministic; `-1`
    /// seeds are randomised by the pool either way).
    #[arg(long)]
    pub vary_seed: bool,
    /// What a job does when its workflow is blocked on every server.
    #[arg(long, value_enum, default_value_t = OnAllBlocked::Fail)]
    pub on_all_blocked: OnAllBlocked,
    /// Print one JSON object per finished job, then a `{"summary": ...}` line.
    #[arg(long)]
    pub json: bool,
    /// API-format workflow files.
    #[arg(required = true, value_name = "WORKFLOW.json")]
    pub workflows: Vec<PathBuf>,
}

impl Default for RunArgs {
    /// The defaults of the command line, with no workflow.
    fn default() -> Self {
        Self {
            hosts: HostsArg::default(),
            max_concurrent: 1,
            repeat: 1,
            vary_seed: false,
            on_all_blocked: OnAllBlocked::Fail,
            json: false,
            workflows: Vec::new(),
        }
    }
}

impl RunArgs {
    /// The pool settings these arguments ask for.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_concurrent: usize::try_from(self.max_concurrent).unwrap_or(usize::MAX),
            all_blocked: self.on_all_blocked.into(),
        }
    }
}

/// Runs `comfy-pool run`: reads every workflow file, starts or connects to the servers,
/// enqueues every job, writes each finished job and then the summary to `out` (JSON lines
/// with `--json`; otherwise text, with a progress bar on standard error when it is a
/// terminal), and returns the summary.
///
/// When `interrupt` completes (the binary passes SIGINT / SIGTERM), every job still queued or
/// running is cancelled; the run then ends normally with those jobs `cancelled`.
///
/// # Errors
///
/// Before any job is enqueued: [`Error::Read`], [`Error::Workflow`] (naming the file),
/// [`Error::Usage`] (a bad host list), [`Error::Sim`], [`Error::Pool`] (the pool's
/// configuration), [`Error::NoServerOnline`]; [`Error::Refused`] when the pool refuses a
/// file's job (the jobs already enqueued are cancelled); [`Error::Io`] when writing fails.
/// A job that fails is not an error: it is reported and counted.
pub async fn run(
    args: &RunArgs,
    out: &mut (dyn Write + Send),
    interrupt: impl Future<Output = ()>,
) -> Result<RunSummary> {
    let plan = Plan::new(&args.workflows, args.repeat, args.vary_seed)?;
    let fleet = Fleet::from_hosts(args.hosts.urls()?).await?;
    let pool = build_pool(&fleet, &args.pool_settings())?;
    let events = pool.subscribe();
    if !args.json {
        line(out, &fleet.describe())?;
    }
    tokio::pin!(interrupt);
    let ready = tokio::select! {
        online = wait_online(&pool) => Some(online),
        () = &mut interrupt => None,
    };
    let summary = match ready {
        Some(Ok(())) => match enqueue(&pool, &plan).await {
            Ok(handles) => collect(args, out, &plan, &handles, events, interrupt).await,
            Err(error) => Err(error),
        },
        Some(Err(error)) => Err(error),
        // Interrupted before anything was enqueued: every job counts as cancelled.
        None => Ok(RunSummary {
            submitted: plan.jobs.len(),
            cancelled: plan.jobs.len(),
            ..RunSummary::default()
        }),
    };
    pool.shutdown(ShutdownMode::Cancel).await;
    drop(fleet);
    let summary = summary?;
    if args.json {
        line(out, &summary.to_json())?;
    } else {
        for text in summary.lines(|hash| plan.files_with(hash)) {
            line(out, &text)?;
        }
    }
    out.flush().map_err(Error::output)?;
    Ok(summary)
}

/// Waits for every server's first health check; fails when none is online.
async fn wait_online(pool: &Pool) -> Result<()> {
    pool.ready().await;
    let stats = pool.stats().await?;
    if stats.servers.iter().any(|s| s.state == ServerState::Online) {
        return Ok(());
    }
    let why: Vec<String> = stats
        .servers
        .iter()
        .map(|s| match &s.last_error {
            Some(error) => format!("{}: {error}", s.id),
            None => format!("{}: {}", s.id, s.state),
        })
        .collect();
    Err(Error::NoServerOnline(why.join("; ")))
}

/// Enqueues every job of the plan, in order.
async fn enqueue(pool: &Pool, plan: &Plan) -> Result<Vec<JobHandle>> {
    let mut handles = Vec::with_capacity(plan.jobs.len());
    for spec in &plan.jobs {
        let options = JobOptions::new().job_id(spec.id.as_str());
        let handle = pool
            .enqueue(Arc::clone(&spec.workflow), options)
            .await
            .map_err(|source| Error::Refused {
                file: spec.file.clone(),
                source,
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

/// What one job's watcher saw.
#[derive(Debug)]
struct Watched {
    /// The job's index in the plan.
    index: usize,
    /// The highest attempt number started.
    attempts: u32,
    /// The server of the last attempt.
    server: Option<String>,
    /// Why each retried attempt failed.
    retried: Vec<AttemptError>,
    /// How the job ended.
    result: comfy_pool::Result<Arc<JobOutput>>,
}

/// Waits for every job, reporting each as it ends; cancels them all on `interrupt`.
async fn collect(
    args: &RunArgs,
    out: &mut (dyn Write + Send),
    plan: &Plan,
    handles: &[JobHandle],
    mut events: comfy_pool::PoolEvents,
    interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<RunSummary> {
    let mut running = JoinSet::new();
    for (index, job) in handles.iter().enumerate() {
        running.spawn(watch(index, job.clone()));
    }
    let mut summary = RunSummary {
        submitted: handles.len(),
        ..RunSummary::default()
    };
    let progress = (!args.json).then(|| Progress::new(handles.len()));
    let mut interrupt = interrupt;
    let (mut interrupted, mut events_open) = (false, true);
    loop {
        tokio::select! {
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                handles.iter().for_each(JobHandle::cancel);
            }
            event = events.recv(), if events_open => match event {
                Some(PoolEvent::Workflow(WorkflowEvent::Blocked { server, hash, class, .. })) => {
                    summary.blocks.push(Block { server: server.to_string(), hash, class });
                }
                Some(_) => {}
                None => events_open = false,
            },
            finished = running.join_next() => {
                let Some(finished) = finished else { break };
                let Ok(watched) = finished else { continue };
                let Some(spec) = plan.jobs.get(watched.index) else { continue };
                let report = report(spec, watched);
                if args.json {
                    line(out, &report.to_json())?;
                } else if let Some(progress) = &progress {
                    progress.line(out, &report.line())?;
                }
                summary.record(report);
            }
        }
    }
    // A block is announced before the job that caused it ends: whatever is left is ready.
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Workflow(WorkflowEvent::Blocked {
            server,
            hash,
            class,
            ..
        }) = event
        {
            summary.blocks.push(Block {
                server: server.to_string(),
                hash,
                class,
            });
        }
    }
    Ok(summary)
}

/// Follows one job's events to its end: its attempts, where the last ran, why retried ones
/// failed.
async fn watch(index: usize, job: JobHandle) -> Watched {
    let mut events = job.events();
    let (mut attempts, mut server, mut retried) = (0, None, Vec::new());
    while let Some(event) = events.recv().await {
        match event.kind {
            JobEventKind::Started {
                server: on,
                attempt,
                ..
            } => {
                attempts = attempts.max(attempt);
                server = Some(on.to_string());
            }
            JobEventKind::Retrying { cause, .. } => retried.push(cause),
            _ => {}
        }
    }
    Watched {
        index,
        attempts,
        server,
        retried,
        result: job.result().await,
    }
}

/// The report of a finished job. A failed job's error is the pool's final error, preceded by
/// the failures of its earlier attempts when that error does not list them (say, no server
/// was left after a failure).
fn report(spec: &JobSpec, watched: Watched) -> JobReport {
    let attempts = watched.attempts;
    let count = |n: usize| attempts.max(u32::try_from(n).unwrap_or(u32::MAX));
    let (status, server, attempts, error) = match watched.result {
        Ok(output) => (
            Outcome::Completed,
            Some(output.server.to_string()),
            count(output.timings.attempts.len()),
            None,
        ),
        Err(error) if error.is_cancelled() => (
            Outcome::Cancelled,
            watched.server,
            attempts,
            Some(error.to_string()),
        ),
        Err(error) => {
            let mut text = error.to_string();
            if error.attempts().is_empty() && !watched.retried.is_empty() {
                let earlier: Vec<String> =
                    watched.retried.iter().map(ToString::to_string).collect();
                text = format!("{}; then {text}", earlier.join("; "));
            }
            (
                Outcome::Failed,
                watched.server,
                count(error.attempts().len()),
                Some(text),
            )
        }
    };
    JobReport {
        job_id: spec.id.clone(),
        workflow: spec.file.clone(),
        hash: spec.hash,
        status,
        server,
        attempts,
        error,
    }
}

fn line(out: &mut (dyn Write + Send), text: &dyn std::fmt::Display) -> Result<()> {
    writeln!(out, "{text}").map_err(Error::output)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::RunArgs;

    #[derive(Debug, Parser)]
    struct Command {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn the_default_arguments_are_those_of_the_command_line() {
        let parsed = Command::try_parse_from(["run", "a.json"]).unwrap().run;
        let expected = RunArgs {
            workflows: vec!["a.json".into()],
            hosts: parsed.hosts.clone(),
            ..RunArgs::default()
        };
        assert_eq!(parsed, expected);
    }
}
