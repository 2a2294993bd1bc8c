//! [`Metrics`]: the Prometheus metrics of the service (`GET /metrics`, text format).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `comfy_pool_jobs_total` | counter | `tenant`, `outcome` (completed, failed, cancelled) |
//! | `comfy_pool_attempts_total` | counter | `server`, `class` (a failure class, or `succeeded`, `cancelled`, …) |
//! | `comfy_pool_active_blocks` | gauge | |
//! | `comfy_pool_queue_depth` | gauge | `tenant`, `priority` |
//! | `comfy_pool_running_jobs` | gauge | `tenant` |
//! | `comfy_pool_server_state` | gauge (1 for the current state) | `server`, `state` |
//! | `comfy_pool_server_in_flight` | gauge | `server` |
//! | `comfy_pool_dispatch_latency_seconds` | histogram | |
//! | `comfy_pool_job_duration_seconds` | histogram | `outcome` |
//!
//! The admin's own jobs (without a tenant) are labelled `tenant=""`.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use pool_core::{AttemptOutcome, JobRecord, PoolStats};

use crate::tracker::Tracker;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    tenant: String,
    outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    server: String,
    class: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    tenant: String,
    priority: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabel {
    tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerStateLabels {
    server: String,
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabel {
    server: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

/// Every metric of the service, registered once.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    jobs: Family<JobLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    active_blocks: Gauge,
    queue_depth: Family<QueueLabels, Gauge>,
    running: Family<TenantLabel, Gauge>,
    server_state: Family<ServerStateLabels, Gauge>,
    in_flight: Family<ServerLabel, Gauge>,
    dispatch_latency: Histogram,
    job_duration: Family<OutcomeLabel, Histogram>,
}

const SERVER_STATES: [&str; 6] = [
    "connecting",
    "online",
    "offline",
    "ejected",
    "draining",
    "removed",
];

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let jobs = Family::<JobLabels, Counter>::default();
        registry.register(
            "comfy_pool_jobs",
            "Jobs that ended, by tenant and outcome",
            jobs.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "comfy_pool_attempts",
            "Attempts that ended, by server and failure class (or outcome)",
            attempts.clone(),
        );
        let active_blocks = Gauge::default();
        registry.register(
            "comfy_pool_active_blocks",
            "(server, workflow) pairs blocked or probing now",
            active_blocks.clone(),
        );
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "comfy_pool_queue_depth",
            "Jobs waiting for a server, by tenant and priority",
            queue_depth.clone(),
        );
        let running = Family::<TenantLabel, Gauge>::default();
        registry.register(
            "comfy_pool_running_jobs",
            "Jobs running on a server, by tenant",
            running.clone(),
        );
        let server_state = Family::<ServerStateLabels, Gauge>::default();
        registry.register(
            "comfy_pool_server_state",
            "1 for each server's current state",
            server_state.clone(),
        );
        let in_flight = Family::<ServerLabel, Gauge>::default();
        registry.register(
            "comfy_pool_server_in_flight",
            "Prompts running on each server",
            in_flight.clone(),
        );
        let dispatch_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 20));
        registry.register(
            "comfy_pool_dispatch_latency_seconds",
            "From submission to the first dispatch to a server",
            dispatch_latency.clone(),
        );
        let job_duration = Family::<OutcomeLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.05, 2.0, 16))
        });
        registry.register(
            "comfy_pool_job_duration_seconds",
            "From submission to the end of a job, by outcome",
            job_duration.clone(),
        );
        Self {
            registry,
            jobs,
            attempts,
            active_blocks,
            queue_depth,
            running,
            server_state,
            in_flight,
            dispatch_latency,
            job_duration,
        }
    }

    /// A job was dispatched `latency` after its submission.
    pub(crate) fn dispatched(&self, latency: Duration) {
        self.dispatch_latency.observe(latency.as_secs_f64());
    }

    /// A job ended: its outcome, duration and every attempt.
    pub(crate) fn ended(&self, record: &JobRecord) {
        let outcome = record.state.as_str().to_owned();
        self.jobs
            .get_or_create(&JobLabels {
                tenant: record.tenant().unwrap_or_default().to_owned(),
                outcome: outcome.clone(),
            })
            .inc();
        let duration = record
            .updated_at
            .saturating_duration_since(record.created_at);
        self.job_duration
            .get_or_create(&OutcomeLabel { outcome })
            .observe(duration.as_secs_f64());
        for attempt in &record.attempts {
            let class = match &attempt.outcome {
                AttemptOutcome::Failed(class) => class.to_string(),
                other => serde_json::to_value(other)
                    .ok()
                    .and_then(|v| v.get("status").and_then(|s| s.as_str().map(str::to_owned)))
                    .unwrap_or_else(|| "unknown".into()),
            };
            self.attempts
                .get_or_create(&AttemptLabels {
                    server: attempt.server.to_string(),
                    class,
                })
                .inc();
        }
    }

    /// The metrics in Prometheus text format, with the gauges read from `stats` and
    /// `tracker` now.
    pub(crate) fn render(&self, stats: Option<&PoolStats>, tracker: &Tracker) -> String {
        if let Some(stats) = stats {
            let blocked = stats.blocks.iter().filter(|b| b.is_blocked()).count();
            self.active_blocks
                .set(i64::try_from(blocked).unwrap_or(i64::MAX));
            self.server_state.clear();
            self.in_flight.clear();
            for server in &stats.servers {
                let current = server.state.to_string();
                for state in SERVER_STATES {
                    self.server_state
                        .get_or_create(&ServerStateLabels {
                            server: server.id.to_string(),
                            state: state.to_owned(),
                        })
                        .set(i64::from(state == current));
                }
                self.in_flight
                    .get_or_create(&ServerLabel {
                        server: server.id.to_string(),
                    })
                    .set(i64::try_from(server.in_flight).unwrap_or(i64::MAX));
            }
        }
        self.queue_depth.clear();
        for ((tenant, priority), count) in tracker.queue_depth() {
            self.queue_depth
                .get_or_create(&QueueLabels {
                    tenant,
                    priority: priority.to_string(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        self.running.clear();
        for (tenant, count) in tracker.running() {
            self.running
                .get_or_create(&TenantLabel { tenant })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
