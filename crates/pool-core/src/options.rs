//! [`JobOptions`]: how one job is scheduled, retried and bounded in time.

use std::sync::Arc;
use std::time::Duration;

use pool_failover::ServerId;
use serde::{Deserialize, Serialize};

use crate::{Backoff, InputFile, JobId};

/// Which outputs of a finished job to keep in its [`JobOutput`](crate::JobOutput).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "keep", content = "nodes", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutputSelection {
    /// Every output node's output (the default).
    #[default]
    All,
    /// Only the outputs of these node ids.
    Nodes(Vec<String>),
}

impl OutputSelection {
    /// Whether the output of `node` is kept.
    pub fn includes(&self, node: &str) -> bool {
        match self {
            Self::All => true,
            Self::Nodes(nodes) => nodes.iter().any(|n| n == node),
        }
    }
}

/// The deadlines of a job. `None` means no deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Deadlines {
    /// From enqueue until a prompt of the job starts executing on a server (the wait in the
    /// pool's queue and in the server's own queue both count).
    #[serde(rename = "start_ms", with = "crate::time::millis::option", default)]
    pub start: Option<Duration>,
    /// The longest silence of an executing attempt (no event from the server); past it the
    /// attempt is interrupted and counts as stuck. Uploads and the wait in the server's own
    /// queue are not silence.
    #[serde(
        rename = "between_events_ms",
        with = "crate::time::millis::option",
        default
    )]
    pub between_events: Option<Duration>,
    /// From enqueue to the end of the job, over all attempts; no attempt starts past it.
    #[serde(rename = "total_ms", with = "crate::time::millis::option", default)]
    pub total: Option<Duration>,
}

/// Hard and soft server filters of a job.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct Placement {
    pub(crate) preferred: Vec<ServerId>,
    pub(crate) required: Vec<ServerId>,
    pub(crate) excluded: Vec<ServerId>,
    pub(crate) tags: Vec<String>,
}

impl Placement {
    pub(crate) fn is_empty(&self) -> bool {
        self.preferred.is_empty()
            && self.required.is_empty()
            && self.excluded.is_empty()
            && self.tags.is_empty()
    }
}

/// How one job is scheduled, retried and bounded in time; the argument of
/// [`Pool::enqueue`](crate::Pool::enqueue).
///
/// Built with chained setters from [`JobOptions::new`] (or the pool's default options):
///
/// ```
/// use std::time::Duration;
/// use pool_core::JobOptions;
///
/// let options = JobOptions::new()
///     .priority(10)
///     .job_id("render-42")
///     .tenant("team-a")
///     .max_attempts(5)
///     .prefer_server("gpu-1")
///     .require_tag("sdxl")
///     .total_deadline(Duration::from_secs(600));
/// assert_eq!(options.get_priority(), 10);
/// ```
///
/// Serializable (job records carry them), input files by reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobOptions {
    pub(crate) priority: i32,
    pub(crate) job_id: Option<JobId>,
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) placement: Option<Box<Placement>>,
    pub(crate) deadlines: Deadlines,
    pub(crate) tenant: Option<Arc<str>>,
    pub(crate) metadata: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    pub(crate) inputs: Option<Arc<[InputFile]>>,
    pub(crate) outputs: OutputSelection,
    pub(crate) auto_seed: bool,
    pub(crate) wait_for_capable: bool,
}

impl Default for JobOptions {
    fn default() -> Self {
        Self {
            priority: 0,
            job_id: None,
            max_attempts: 3,
            backoff: Backoff::default(),
            placement: None,
            deadlines: Deadlines::default(),
            tenant: None,
            metadata: None,
            inputs: None,
            outputs: OutputSelection::All,
            auto_seed: true,
            wait_for_capable: false,
        }
    }
}

impl JobOptions {
    /// Default options: priority 0, 3 attempts, default backoff, no filters, no deadlines,
    /// auto-seed on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Higher runs first; FIFO within a priority. Default 0; negative values are allowed.
    #[must_use]
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// The caller's id for the job. Enqueuing the same id again while the pool still knows the
    /// job returns a handle to the existing job instead of a second job.
    #[must_use]
    pub fn job_id(mut self, id: impl Into<JobId>) -> Self {
        self.job_id = Some(id.into());
        self
    }

    /// How many attempts at most (at least 1; default 3).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The delay between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn placement_mut(&mut self) -> &mut Placement {
        self.placement.get_or_insert_with(Default::default)
    }

    /// Prefers `server` (soft): preferred servers are used first, others when they are busy,
    /// offline or blocked.
    #[must_use]
    pub fn prefer_server(mut self, server: impl Into<ServerId>) -> Self {
        self.placement_mut().preferred.push(server.into());
        self
    }

    /// Runs only on `server` (hard; several calls allow several servers).
    #[must_use]
    pub fn require_server(mut self, server: impl Into<ServerId>) -> Self {
        self.placement_mut().required.push(server.into());
        self
    }

    /// Never runs on `server` (hard).
    #[must_use]
    pub fn exclude_server(mut self, server: impl Into<ServerId>) -> Self {
        self.placement_mut().excluded.push(server.into());
        self
    }

    /// Runs only on servers that carry `tag` (hard; all required tags must be present).
    #[must_use]
    pub fn require_tag(mut self, tag: impl Into<String>) -> Self {
        self.placement_mut().tags.push(tag.into());
        self
    }

    /// All deadlines at once.
    #[must_use]
    pub fn deadlines(mut self, deadlines: Deadlines) -> Self {
        self.deadlines = deadlines;
        self
    }

    /// Fails the job if no server took it within `limit` of enqueueing.
    #[must_use]
    pub fn start_deadline(mut self, limit: Duration) -> Self {
        self.deadlines.start = Some(limit);
        self
    }

    /// Interrupts an attempt (class stuck) after `limit` without any event from its server.
    #[must_use]
    pub fn between_events_deadline(mut self, limit: Duration) -> Self {
        self.deadlines.between_events = Some(limit);
        self
    }

    /// Fails the job if it has not finished within `limit` of enqueueing.
    #[must_use]
    pub fn total_deadline(mut self, limit: Duration) -> Self {
        self.deadlines.total = Some(limit);
        self
    }

    /// The tenant the job belongs to; tenants of one priority are served round-robin.
    #[must_use]
    pub fn tenant(mut self, tenant: impl AsRef<str>) -> Self {
        self.tenant = Some(Arc::from(tenant.as_ref()));
        self
    }

    /// Free-form metadata, returned in the job's output.
    #[must_use]
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let map = self.metadata.get_or_insert_with(Default::default);
        Arc::make_mut(map).insert(key.into(), value.into());
        self
    }

    /// Files to upload to the chosen server before each attempt.
    #[must_use]
    pub fn input(mut self, file: InputFile) -> Self {
        let mut files: Vec<InputFile> = self
            .inputs
            .as_deref()
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        files.push(file);
        self.inputs = Some(files.into());
        self
    }

    /// Which outputs to keep (default: all).
    #[must_use]
    pub fn outputs(mut self, outputs: OutputSelection) -> Self {
        self.outputs = outputs;
        self
    }

    /// Whether a `seed` / `noise_seed` input of `-1` gets a random seed on each attempt
    /// (default: on). The seeds used are recorded in the output.
    #[must_use]
    pub fn auto_seed(mut self, on: bool) -> Self {
        self.auto_seed = on;
        self
    }

    /// When every server is known to lack what the workflow needs (a node class, a model
    /// file), wait in the queue for a capable server to join (or for one to install it)
    /// instead of failing at once with what each server lacks (default: fail at once).
    #[must_use]
    pub fn wait_for_capable(mut self, wait: bool) -> Self {
        self.wait_for_capable = wait;
        self
    }

    /// The priority.
    pub fn get_priority(&self) -> i32 {
        self.priority
    }

    /// The caller's job id, if any.
    pub fn get_job_id(&self) -> Option<&JobId> {
        self.job_id.as_ref()
    }

    /// The maximum number of attempts.
    pub fn get_max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The tenant, if any.
    pub fn get_tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }

    /// The deadlines.
    pub fn get_deadlines(&self) -> Deadlines {
        self.deadlines
    }

    pub(crate) fn placement(&self) -> Option<&Placement> {
        self.placement.as_deref().filter(|p| !p.is_empty())
    }
}
