//! [`Pool`]: the handle users hold.

use std::sync::Arc;

use pool_failover::{FailoverStrategy, ServerId};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::command::{EngineLink, NewJob};
use crate::engine::Shared;
use crate::job::JobCell;
use crate::{
    Error, JobHandle, JobId, JobOptions, JobRecord, JobSpec, PoolBuilder, PoolEvent, PoolStats,
    Result, ServerConfig, Timestamp, Variant, seed,
};

/// Which blocks [`Pool::reset_blocks`] ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockReset {
    /// One (server, workflow) pair.
    Pair(ServerId, WorkflowHash),
    /// One workflow on every server.
    Workflow(WorkflowHash),
    /// Every workflow on one server.
    Server(ServerId),
    /// Everything.
    All,
}

/// How [`Pool::shutdown`] treats accepted work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ShutdownMode {
    /// Accept nothing new; run every accepted job (queued and running) to its end.
    Drain,
    /// Accept nothing new; cancel queued jobs and interrupt running ones.
    Cancel,
    /// Accept nothing new and stop at once, leaving every unfinished job as it is: queued jobs
    /// stay queued and running prompts keep running on their servers. With a durable store,
    /// the next pool on the same store takes them up again (re-attaching to the running
    /// prompts); for rolling restarts. Their handles here end with
    /// [`Error::Detached`](crate::Error::Detached), without a terminal event.
    Detach,
}

/// A pool of ComfyUI servers: takes workflows, routes them with the failover strategy, runs
/// them, retries elsewhere, and reports everything as events.
///
/// Cheap to clone (an `Arc` inside): every clone drives the same pool. Built with
/// [`Pool::builder`]; must be built inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: EngineLink,
    shared: Arc<Shared>,
    default_options: JobOptions,
}

impl Pool {
    /// A builder with no servers and the default settings.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::new()
    }

    pub(crate) fn from_parts(
        engine: EngineLink,
        shared: Arc<Shared>,
        default_options: JobOptions,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                shared,
                default_options,
            }),
        }
    }

    /// The default job options given to the builder (start from these for
    /// [`enqueue`](Self::enqueue)).
    pub fn default_options(&self) -> JobOptions {
        self.inner.default_options.clone()
    }

    /// Accepts a workflow (an API-format object of nodes) and returns the handle of its job.
    /// The structural hash is computed here, once.
    ///
    /// With a caller job id that the pool still knows, returns a handle to that job instead
    /// (idempotent enqueue).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWorkflow`] if the workflow is not an object of nodes with a
    /// `class_type` each; [`Error::ShuttingDown`] after [`shutdown`](Self::shutdown).
    pub async fn enqueue(
        &self,
        workflow: impl Into<Arc<Value>>,
        options: JobOptions,
    ) -> Result<JobHandle> {
        self.enqueue_variants([workflow], options).await
    }

    /// Accepts a job of several workflow variants (per GPU class, per model quantisation…),
    /// in order of preference, and returns its handle. Each is validated and hashed here,
    /// once. At each dispatch the job runs the first variant that a server can run now: one
    /// that does not lack what the variant needs and on which the variant is not blocked;
    /// its attempts and result say which variant ran ([`JobOutput::variant`](crate::JobOutput)).
    /// A job of one variant is exactly [`enqueue`](Self::enqueue).
    ///
    /// With a caller job id that the pool still knows, returns a handle to that job instead,
    /// if it has the same variants (by hash).
    ///
    /// # Errors
    ///
    /// [`Error::NoVariants`] for no variant; [`Error::InvalidVariant`] naming the first
    /// variant that is not an object of nodes with a `class_type` each
    /// ([`Error::InvalidWorkflow`] for a job of one); [`Error::ShuttingDown`] after
    /// [`shutdown`](Self::shutdown).
    pub async fn enqueue_variants<W: Into<Arc<Value>>>(
        &self,
        variants: impl IntoIterator<Item = W>,
        options: JobOptions,
    ) -> Result<JobHandle> {
        let workflows: Vec<Arc<Value>> = variants.into_iter().map(Into::into).collect();
        let variants = checked_variants(workflows)?;
        let mut options = options;
        let variants: Vec<Variant> = match options.inputs.clone().filter(|f| !f.is_empty()) {
            Some(files) => {
                let mut renamed = Vec::new();
                let variants = variants
                    .into_iter()
                    .map(|v| {
                        let mut copy = (*v.workflow).clone();
                        renamed = crate::input::content_addressed(&files, &mut copy);
                        Variant::new(Arc::new(copy), v.hash)
                    })
                    .collect();
                options.inputs = Some(renamed.into());
                variants
            }
            None => variants,
        };
        let hashes: Vec<WorkflowHash> = variants.iter().map(|v| v.hash).collect();
        let seeded = variants
            .iter()
            .map(|v| seed::needs_seeding(&v.workflow))
            .collect();
        let shared = &self.inner.shared;
        if shared.store.is_some() {
            // Recovered jobs keep their place ahead of new ones, and their ids are known.
            let mut recovered = shared.recovered.subscribe();
            let _ = recovered.wait_for(|done| *done).await;
        }
        let (cell, record) = {
            let mut registry = shared.registry.lock();
            if registry.closed {
                return Err(Error::ShuttingDown);
            }
            if let Some(id) = &options.job_id
                && let Some(existing) = registry.get(id.as_str())
            {
                return self.existing(Arc::clone(existing), &hashes);
            }
            let key = registry.next_key();
            let id = options.job_id.clone().unwrap_or_else(JobId::random);
            let spec = Arc::new(JobSpec::with_variants(variants, options)?);
            let record = JobRecord::new(id, spec, Timestamp::now());
            let cell = Arc::new(JobCell::new(key, record.clone()));
            // Known at once, so a concurrent enqueue of the same id gets this job.
            registry.insert(Arc::clone(&cell));
            (cell, record)
        };
        if let Some(store) = &shared.store {
            match accept(store.as_ref(), &record).await {
                Ok(None) => {
                    if let Some(fleet) = &shared.fleet {
                        fleet.tell(crate::FleetNotice::Accepted {
                            job: record.id.clone(),
                        });
                    }
                }
                Ok(Some(stored)) => {
                    shared.registry.lock().remove(&record.id);
                    cell.detach();
                    // Stored before (by an earlier run, or another process): that job.
                    let key = cell.key;
                    return self.existing(Arc::new(JobCell::new(key, stored)), &hashes);
                }
                Err(error) => {
                    shared.registry.lock().remove(&record.id);
                    let error = Error::Store(error.to_string());
                    cell.refuse(error.clone(), &shared.events);
                    return Err(error);
                }
            }
        }
        let job = NewJob {
            cell: Arc::clone(&cell),
            spec: Arc::clone(&record.spec),
            seeded,
            requirements: crate::capability::requirements_of_spec(&record.spec),
            enqueued_at: Instant::now(),
        };
        if !self.inner.engine.enqueue(job) {
            shared.registry.lock().remove(&record.id);
            cell.refuse(Error::ShuttingDown, &shared.events);
            return Err(Error::ShuttingDown);
        }
        Ok(JobHandle::new(cell, self.inner.engine.clone()))
    }

    /// The handle of a job enqueued before under the same id, if it runs the same
    /// workflow variants.
    fn existing(&self, cell: Arc<JobCell>, hashes: &[WorkflowHash]) -> Result<JobHandle> {
        if !cell.read(|r| r.spec.hashes().eq(hashes.iter().copied())) {
            return Err(Error::JobIdConflict {
                id: cell.id.to_string(),
            });
        }
        Ok(JobHandle::new(cell, self.inner.engine.clone()))
    }

    /// Waits until every server given to the builder has answered its first health check
    /// (online or not) and, with a store, the store's unfinished jobs were taken up again
    /// (so [`job`](Self::job) finds them): the moment of the [`PoolEvent::Ready`] event,
    /// without the race of subscribing too late. Returns at once if that moment has passed or
    /// the pool stopped.
    pub async fn ready(&self) {
        let mut recovered = self.inner.shared.recovered.subscribe();
        let _ = recovered.wait_for(|done| *done).await;
        let mut rx = self.inner.shared.ready.subscribe();
        let _ = rx.wait_for(|ready| *ready).await;
    }

    /// The handle of a job the pool knows (live, or finished and still retained).
    pub fn job(&self, id: &str) -> Option<JobHandle> {
        let registry = self.inner.shared.registry.lock();
        registry
            .get(id)
            .map(|cell| JobHandle::new(Arc::clone(cell), self.inner.engine.clone()))
    }

    /// The record of a job the pool knows (live, or finished and still retained).
    pub fn record(&self, id: &str) -> Option<JobRecord> {
        let cell = self.inner.shared.registry.lock().get(id).map(Arc::clone);
        cell.map(|cell| cell.record())
    }

    /// Cancels a job by id; returns whether the pool knows it.
    pub fn cancel(&self, id: &str) -> bool {
        self.job(id).map(|job| job.cancel()).is_some()
    }

    /// Subscribes to every event of the pool from now on.
    pub fn subscribe(&self) -> PoolEvents {
        PoolEvents {
            rx: self.inner.shared.events.subscribe(),
        }
    }

    /// Which servers can run `workflow`, by what each is known to have (its node classes and
    /// the model files its loaders offer, from `/object_info`): a server that lacks something
    /// never receives the workflow ("lacks": not until its capabilities change), unlike a
    /// block ("not now").
    ///
    /// # Errors
    ///
    /// [`Error::InvalidWorkflow`] for a workflow that is not an object of nodes;
    /// [`Error::ShuttingDown`] once the pool has stopped.
    pub async fn fit(&self, workflow: &Value) -> Result<Vec<(ServerId, crate::Fit)>> {
        let hash = checked_hash(workflow)?;
        let requirements = Arc::new(crate::capability::requirements_of(workflow));
        self.inner.engine.fit(hash, requirements).await
    }

    /// Ends blocks by hand: of one (server, workflow) pair, of one workflow everywhere, of
    /// every workflow on one server, or all. Each ended block is an `Unblocked` event with
    /// reason `reset`, is forgotten by the store (a restart does not bring it back), and the
    /// servers take the work again at once. Returns how many blocks ended.
    ///
    /// # Errors
    ///
    /// [`Error::ShuttingDown`] once the pool has stopped.
    pub async fn reset_blocks(&self, scope: crate::BlockReset) -> Result<usize> {
        self.inner.engine.reset_blocks(scope).await
    }

    /// The failover strategy (to inspect blocks; reset them with
    /// [`reset_blocks`](Self::reset_blocks), which goes through the pool).
    pub fn strategy(&self) -> &Arc<dyn FailoverStrategy> {
        &self.inner.shared.strategy
    }

    /// A snapshot of queue depths, per-server counters and current blocks.
    ///
    /// # Errors
    ///
    /// [`Error::ShuttingDown`] once the pool has stopped.
    pub async fn stats(&self) -> Result<PoolStats> {
        self.inner.engine.stats().await
    }

    /// Adds a server while the pool runs.
    ///
    /// # Errors
    ///
    /// [`Error::DuplicateServer`], [`Error::Config`], or [`Error::ShuttingDown`].
    pub async fn add_server(&self, server: ServerConfig) -> Result<()> {
        self.inner.engine.add_server(server).await
    }

    /// Removes a server at once: it takes no new work and its running jobs are interrupted
    /// and queued again (the attempt does not count against them).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownServer`] or [`Error::ShuttingDown`].
    pub async fn remove_server(&self, id: impl Into<ServerId>) -> Result<()> {
        self.inner.engine.remove_server(id.into(), false).await
    }

    /// Drains a server: it takes no new work and leaves the pool once its running jobs end.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownServer`] or [`Error::ShuttingDown`].
    pub async fn drain_server(&self, id: impl Into<ServerId>) -> Result<()> {
        self.inner.engine.remove_server(id.into(), true).await
    }

    /// Stops accepting jobs and, per `mode`, runs, cancels or leaves the accepted ones;
    /// returns once every accepted job has ended (each with exactly one terminal event) or,
    /// with [`ShutdownMode::Detach`], been let go. Calling it again escalates (`Drain`, then
    /// `Detach`, then `Cancel`).
    pub async fn shutdown(&self, mode: ShutdownMode) {
        self.inner.shared.registry.lock().closed = true;
        self.inner.engine.shutdown(mode).await;
    }
}

/// Stores a new job and the bytes of its input files; `Some` with the stored record when its
/// id was taken already.
async fn accept(
    store: &dyn crate::JobStore,
    record: &JobRecord,
) -> std::result::Result<Option<JobRecord>, crate::StoreError> {
    for file in record.spec.options.inputs.iter().flat_map(|f| f.iter()) {
        store.put_blob(&file.content).await?;
    }
    store.insert(record).await
}

/// The hash of `workflow` once it is found to be an object of nodes, each an object with a
/// string `class_type`. Hashing walks the whole workflow and refuses one nested too deep, so
/// the structure is checked in that one walk.
fn checked_hash(workflow: &Value) -> Result<WorkflowHash> {
    let nodes = workflow.as_object().ok_or_else(|| {
        Error::InvalidWorkflow(format!(
            "expected an object of nodes, found {}",
            kind(workflow)
        ))
    })?;
    if nodes.is_empty() {
        return Err(Error::InvalidWorkflow("the workflow has no nodes".into()));
    }
    for (id, node) in nodes {
        let Some(node) = node.as_object() else {
            return Err(Error::InvalidWorkflow(format!(
                "node {id:?} is {}, not an object",
                kind(node)
            )));
        };
        if !node.get("class_type").is_some_and(Value::is_string) {
            return Err(Error::InvalidWorkflow(format!(
                "node {id:?} has no string `class_type`"
            )));
        }
    }
    WorkflowHash::of(workflow).map_err(|e| Error::InvalidWorkflow(e.to_string()))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The pool's event channel for one subscriber ([`Pool::subscribe`]). A subscriber that
/// falls behind gets a [`PoolEvent::Lagged`] saying how many events it missed.
#[derive(Debug)]
pub struct PoolEvents {
    rx: broadcast::Receiver<PoolEvent>,
}

impl PoolEvents {
    /// The next event; `None` once the pool is gone.
    pub async fn recv(&mut self) -> Option<PoolEvent> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(PoolEvent::Lagged { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<PoolEvent> {
        match self.rx.try_recv() {
            Ok(event) => Some(event),
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(PoolEvent::Lagged { missed })
            }
            Err(_) => None,
        }
    }
}

/// Validates and hashes each workflow of a job: the variants, or the error naming the first
/// bad one (every workflow is dropped without recursion then).
fn checked_variants(workflows: Vec<Arc<Value>>) -> Result<Vec<Variant>> {
    let count = workflows.len();
    if count == 0 {
        return Err(Error::NoVariants);
    }
    let mut variants = Vec::with_capacity(count);
    let mut failure = None;
    for (index, workflow) in workflows.into_iter().enumerate() {
        if failure.is_some() {
            crate::input::drop_deep(workflow);
            continue;
        }
        match checked_hash(&workflow) {
            Ok(hash) => variants.push(Variant::new(workflow, hash)),
            Err(error) => {
                // A refused workflow may be nested deeper than a recursive drop can go.
                crate::input::drop_deep(workflow);
                failure = Some(match error {
                    Error::InvalidWorkflow(reason) if count > 1 => {
                        Error::InvalidVariant { index, reason }
                    }
                    other => other,
                });
            }
        }
    }
    match failure {
        Some(error) => {
            for variant in variants {
                crate::input::drop_deep(variant.workflow);
            }
            Err(error)
        }
        None => Ok(variants),
    }
}
