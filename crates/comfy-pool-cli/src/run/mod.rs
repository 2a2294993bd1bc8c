//! `comfy-pool run`: workflow files through a pool of ComfyUI servers, one job per file and
//! repeat, reported per job and summed up.

mod fleet;
mod plan;
mod progress;
mod report;
mod store;

use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use comfy_pool::{
    AllBlockedPolicy, AttemptError, JobEventKind, JobHandle, JobOptions, JobOutput, JobRecord,
    Pool, PoolEvent, ServerState, ShutdownMode, WorkflowEvent,
};
use futures_util::{StreamExt, TryStreamExt};
use tokio::task::JoinSet;

pub use fleet::{Fleet, PoolSettings, RETAIN_FINISHED, SIMULATED_SERVERS, build_pool};
pub use plan::{JobSpec, Plan, SEED_INPUTS, vary_seeds};
pub use report::{Block, JobReport, Outcome, RunSummary};
pub use store::{DEFAULT_STORE, MEMORY_STORE, RunStore};

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
    /// Zero-gap dispatch: prompts each busy server is given beyond `--max-concurrent`, to
    /// wait in its own queue so it starts the next one the moment the current one ends (a
    /// waiting prompt is taken back for a server that frees with nothing to do).
    #[arg(long, default_value_t = 1)]
    pub queue_ahead: u32,
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
    /// Where jobs are kept: `sqlite:PATH` (`?synchronous=normal`: no wait for the disk, safe
    /// against a crash of the process but not of the machine), `postgres://USER@HOST/DB`,
    /// or `memory` (nothing survives the process). With a durable store, running the same command again after a
    /// crash or an interrupt reports the jobs that finished, follows those that were running
    /// and runs the rest; nothing runs twice.
    #[arg(long, value_name = "URL", default_value = DEFAULT_STORE)]
    pub store: String,
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
            queue_ahead: 1,
            repeat: 1,
            vary_seed: false,
            on_all_blocked: OnAllBlocked::Fail,
            json: false,
            store: DEFAULT_STORE.to_owned(),
            workflows: Vec::new(),
        }
    }
}

impl RunArgs {
    /// The pool settings these arguments ask for.
    pub fn pool_settings(&self) -> PoolSettings {
        PoolSettings {
            max_concurrent: usize::try_from(self.max_concurrent).unwrap_or(usize::MAX),
            queue_ahead: usize::try_from(self.queue_ahead).unwrap_or(usize::MAX),
            all_blocked: self.on_all_blocked.into(),
            retain_finished: RETAIN_FINISHED,
        }
    }
}

/// Runs `comfy-pool run`: reads every workflow file, starts or connects to the servers,
/// enqueues every job, writes each finished job and then the summary to `out` (JSON lines
/// with `--json`; otherwise text, with a progress bar on standard error when it is a
/// terminal), and returns the summary.
///
/// Jobs live in the store `--store` names ([`RunStore`]). Job ids are stable (`<file
/// stem>-<repeat>`), so on a durable store a second run of the same command line reports each
/// job once: a job that finished before is reported from its stored record (not run again), a
/// job that was queued or running when the earlier process ended is taken up by the pool's
/// recovery (its prompt followed where it runs), and a job never accepted is enqueued.
///
/// When `interrupt` completes (the binary passes SIGINT / SIGTERM): with the `memory` store,
/// every job still queued or running is cancelled and reported `cancelled`; with a durable
/// store, the pool detaches from them (they stay in the store, prompts keep running) and they
/// are reported `interrupted`, for the same command to take up again.
///
/// # Errors
///
/// Before any job is enqueued: [`Error::Read`], [`Error::Workflow`] (naming the file),
/// [`Error::Usage`] (a bad host list), [`Error::Store`], [`Error::JobIdConflict`] (a job id
/// stored with another workflow), [`Error::Sim`], [`Error::Pool`] (the pool's
/// configuration), [`Error::NoServerOnline`]; [`Error::Refused`] when the pool refuses a
/// file's job (the jobs already enqueued are cancelled, or left in a durable store);
/// [`Error::Io`] when writing fails. A job that fails is not an error: it is reported and
/// counted.
pub async fn run(
    args: &RunArgs,
    out: &mut (dyn Write + Send),
    interrupt: impl Future<Output = ()>,
) -> Result<RunSummary> {
    let plan = Plan::new(&args.workflows, args.repeat, args.vary_seed)?;
    let hosts = args.hosts.urls()?;
    let store = RunStore::open(&args.store).await?;
    store.check_ids(&plan).await?;
    let fleet = Fleet::from_hosts(hosts).await?;
    let settings = PoolSettings {
        retain_finished: plan.jobs.len().max(RETAIN_FINISHED),
        ..args.pool_settings()
    };
    let pool = build_pool(&fleet, &settings, &store)?;
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
            Ok(handles) => {
                let stop = Stop {
                    pool: &pool,
                    durable: store.durable().is_some(),
                };
                collect(args, out, &plan, &handles, events, interrupt, stop).await
            }
            Err(error) => Err(error),
        },
        Some(Err(error)) => Err(error),
        // Interrupted before anything was enqueued: every job counts as cancelled, or as
        // interrupted when a durable store keeps those an earlier run accepted.
        None if store.durable().is_some() => Ok(RunSummary {
            submitted: plan.jobs.len(),
            interrupted: plan.jobs.len(),
            ..RunSummary::default()
        }),
        None => Ok(RunSummary {
            submitted: plan.jobs.len(),
            cancelled: plan.jobs.len(),
            ..RunSummary::default()
        }),
    };
    // The plan's jobs have ended; with a durable store, the jobs of other command lines that
    // the pool took up stay there for their own re-run (and so do this one's after an error).
    let mode = if store.durable().is_some() {
        ShutdownMode::Detach
    } else {
        ShutdownMode::Cancel
    };
    pool.shutdown(mode).await;
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

/// How many enqueues are in flight at once: with a durable store, each returns once its
/// record is committed, and concurrent ones share a commit.
const ENQUEUES_AT_ONCE: usize = 64;

/// Enqueues every job of the plan (started in plan order, a few at a time); the handles in
/// plan order. A job already in the store gives a handle to the stored job.
async fn enqueue(pool: &Pool, plan: &Plan) -> Result<Vec<JobHandle>> {
    futures_util::stream::iter(&plan.jobs)
        .map(|spec| async move {
            let options = JobOptions::new().job_id(spec.id.as_str());
            pool.enqueue(Arc::clone(&spec.workflow), options)
                .await
                .map_err(|source| match source {
                    comfy_pool::Error::JobIdConflict { id } => Error::JobIdConflict {
                        id,
                        file: spec.file.clone(),
                    },
                    source => Error::Refused {
                        file: spec.file.clone(),
                        source,
                    },
                })
        })
        .buffered(ENQUEUES_AT_ONCE)
        .try_collect()
        .await
}

/// What an interrupt does to the jobs of a run.
#[derive(Debug, Clone, Copy)]
struct Stop<'a> {
    pool: &'a Pool,
    /// Detach (the jobs stay in a durable store) rather than cancel them.
    durable: bool,
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
    /// Its record at the end (for a job that ended in an earlier run, all there is).
    record: JobRecord,
}

/// Waits for every job, reporting each as it ends; cancels them all on `interrupt`.
async fn collect(
    args: &RunArgs,
    out: &mut (dyn Write + Send),
    plan: &Plan,
    handles: &[JobHandle],
    mut events: comfy_pool::PoolEvents,
    interrupt: std::pin::Pin<&mut impl Future<Output = ()>>,
    stop: Stop<'_>,
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
                if stop.durable {
                    stop.pool.shutdown(ShutdownMode::Detach).await;
                } else {
                    handles.iter().for_each(JobHandle::cancel);
                }
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
    let result = job.result().await;
    Watched {
        index,
        attempts,
        server,
        retried,
        result,
        record: job.record(),
    }
}

/// The report of a finished job. A failed job's error is the pool's final error, preceded by
/// the failures of its earlier attempts when that error does not list them (say, no server
/// was left after a failure).
fn report(spec: &JobSpec, watched: Watched) -> JobReport {
    // A job that ended in an earlier run sent no event here: its record tells.
    let last = watched.record.attempts.last();
    let attempts = watched.attempts.max(last.map_or(0, |a| a.attempt));
    let watched_server = watched
        .server
        .or_else(|| last.map(|a| a.server.to_string()));
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
            watched_server,
            attempts,
            Some(error.to_string()),
        ),
        Err(comfy_pool::Error::Detached) => (
            Outcome::Interrupted,
            watched_server,
            attempts,
            Some(INTERRUPTED.to_owned()),
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
                watched_server,
                count(error.attempts().len()),
                Some(text),
            )
        }
    };
    // Attempts withdrawn from a server (a prompt taken back before it started, a server
    // that left) ran nothing and are not counted, as the pool does not count them against
    // `max_attempts`.
    let withdrawn = watched
        .record
        .attempts
        .iter()
        .filter(|a| !a.outcome.counts())
        .count();
    JobReport {
        job_id: spec.id.clone(),
        workflow: spec.file.clone(),
        hash: spec.hash,
        status,
        server,
        attempts: attempts.saturating_sub(u32::try_from(withdrawn).unwrap_or(u32::MAX)),
        error,
    }
}

/// The error of a job left in a durable store by an interrupt.
const INTERRUPTED: &str =
    "interrupted; the job stays in the store: run the same command again to take it up";

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
