//! [`Workload`]: a stream of jobs from several tenants for a fixed time, with a bounded
//! number in flight, and what became of each ([`JobRecord`], [`TenantReport`]).

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_pool::{Backoff, JobOptions, Pool};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::metrics::{Latencies, ms};
use crate::{JobBook, Result, Table, Workflow, describe};

/// One tenant of a workload.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantSpec {
    /// Its name.
    pub name: String,
    /// The priority of its jobs.
    pub priority: i32,
    /// Its share of the jobs, relative to the other tenants.
    pub weight: u32,
    /// Its own workflows, used in turn (empty: the workload's).
    pub workflows: Vec<Workflow>,
}

impl TenantSpec {
    /// A tenant.
    pub fn new(name: &str, priority: i32, weight: u32) -> Self {
        Self {
            name: name.to_owned(),
            priority,
            weight: weight.max(1),
            workflows: Vec::new(),
        }
    }

    /// The tenant submits these workflows (in turn) instead of the workload's.
    #[must_use]
    pub fn workflows(mut self, workflows: Vec<Workflow>) -> Self {
        self.workflows = workflows;
        self
    }
}

/// What to submit, for how long.
#[derive(Debug, Clone)]
pub struct Workload {
    /// The tenants, served in proportion to their weights.
    pub tenants: Vec<TenantSpec>,
    /// The workflows, used in turn.
    pub workflows: Vec<Workflow>,
    /// How long to keep submitting.
    pub duration: Duration,
    /// Jobs accepted and not finished, at most (keeps the queue deep but bounded).
    pub max_in_flight: usize,
    /// Attempts per job.
    pub max_attempts: u32,
}

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// The tenant.
    pub tenant: String,
    /// The workflow's name.
    pub workflow: String,
    /// Whether it completed.
    pub ok: bool,
    /// The server that ran it, when it completed.
    pub server: Option<String>,
    /// Attempts made.
    pub attempts: usize,
    /// From enqueue to the end.
    pub latency: Duration,
    /// From enqueue to the first dispatch.
    pub queue_wait: Duration,
    /// Why it failed.
    pub error: Option<String>,
}

/// Submits `workload` to `pool` and waits for every job; calls `submitted` and `done` as jobs
/// enter and leave. Returns every job's record and the wall time.
///
/// # Errors
///
/// When the pool refuses a job.
pub async fn drive(
    pool: &Pool,
    book: &JobBook,
    workload: &Workload,
    submitted: impl Fn(&str),
    done: impl Fn(&JobRecord),
) -> Result<(Vec<JobRecord>, Duration)> {
    let turns: Vec<usize> = workload
        .tenants
        .iter()
        .enumerate()
        .flat_map(|(i, t)| std::iter::repeat_n(i, t.weight as usize))
        .collect();
    let mut sent = vec![0usize; workload.tenants.len()];
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut records = Vec::new();
    let mut n = 0usize;
    while started.elapsed() < workload.duration {
        while running.len() < workload.max_in_flight.max(1) {
            let Some((index, tenant)) = turns
                .get(n % turns.len().max(1))
                .and_then(|i| Some((*i, workload.tenants.get(*i)?)))
            else {
                return Ok((records, started.elapsed()));
            };
            let list = if tenant.workflows.is_empty() {
                &workload.workflows
            } else {
                &tenant.workflows
            };
            let turn = sent.get(index).copied().unwrap_or(0);
            if let Some(count) = sent.get_mut(index) {
                *count += 1;
            }
            let Some(workflow) = list.get(turn % list.len().max(1)) else {
                return Ok((records, started.elapsed()));
            };
            n += 1;
            let options = JobOptions::new()
                .tenant(&tenant.name)
                .priority(tenant.priority)
                .max_attempts(workload.max_attempts)
                .backoff(Backoff::new(
                    Duration::from_millis(20),
                    Duration::from_millis(200),
                ));
            let job = book.enqueue(pool, workflow, options).await?;
            submitted(&tenant.name);
            let (tenant, label) = (tenant.name.clone(), workflow.name.clone());
            running.spawn(async move { record(tenant, label, job.result().await) });
        }
        if let Some(Ok(record)) = running.join_next().await {
            done(&record);
            records.push(record);
        }
    }
    while let Some(finished) = running.join_next().await {
        if let Ok(record) = finished {
            done(&record);
            records.push(record);
        }
    }
    Ok((records, started.elapsed()))
}

fn record(
    tenant: String,
    workflow: String,
    result: comfy_pool::Result<std::sync::Arc<comfy_pool::JobOutput>>,
) -> JobRecord {
    match result {
        Ok(output) => JobRecord {
            tenant,
            workflow,
            ok: true,
            server: Some(output.server.to_string()),
            attempts: output.timings.attempts.len(),
            latency: output.timings.total,
            queue_wait: output.timings.queue_wait,
            error: None,
        },
        Err(error) => JobRecord {
            tenant,
            workflow,
            ok: false,
            server: None,
            attempts: error.attempts().len(),
            latency: Duration::ZERO,
            queue_wait: Duration::ZERO,
            error: Some(describe::first_line(&error.to_string())),
        },
    }
}

/// Per-tenant figures.
#[derive(Debug, Clone, Default)]
pub struct TenantReport {
    /// Jobs completed.
    pub completed: usize,
    /// Jobs failed.
    pub failed: usize,
    /// Latencies of completed jobs.
    pub latency: Latencies,
    /// Queue waits of completed jobs.
    pub queue_wait: Latencies,
}

/// Groups records by tenant.
pub fn by_tenant(records: &[JobRecord]) -> BTreeMap<String, TenantReport> {
    let mut tenants: BTreeMap<String, TenantReport> = BTreeMap::new();
    for r in records {
        let t = tenants.entry(r.tenant.clone()).or_default();
        if r.ok {
            t.completed += 1;
            t.latency.push(r.latency);
            t.queue_wait.push(r.queue_wait);
        } else {
            t.failed += 1;
        }
    }
    tenants
}

/// The per-tenant table: jobs, failures, p50/p95 latency, p50 queue wait.
pub fn tenant_table(specs: &[TenantSpec], records: &[JobRecord]) -> Table {
    let reports = by_tenant(records);
    let mut table = Table::new([
        "tenant",
        "priority",
        "completed",
        "failed",
        "p50 latency",
        "p95 latency",
        "p50 queue wait",
    ]);
    for spec in specs {
        let r = reports.get(&spec.name).cloned().unwrap_or_default();
        table.row([
            spec.name.clone(),
            format!("{:+}", spec.priority),
            r.completed.to_string(),
            r.failed.to_string(),
            ms(r.latency.percentile(50.0)),
            ms(r.latency.percentile(95.0)),
            ms(r.queue_wait.percentile(50.0)),
        ]);
    }
    table
}
