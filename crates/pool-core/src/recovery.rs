//! Taking up a store's jobs at start: every unfinished job comes back, in its original order.
//!
//! - Queued (or waiting out a backoff): queued again.
//! - Running on a server that is no longer configured: queued again (the attempt counts as
//!   withdrawn).
//! - Running on server S under prompt P: once S answers its health check, the pool
//!   re-attaches to P ([`ServerBackend::follow`](crate::ServerBackend::follow)): finished in
//!   S's history → its result is taken (a success, or a failure that goes through the normal
//!   retry rules); still queued or running → followed to its end; absent → lost, run again,
//!   never counted done. S silent for the recovery wait → lost too.
//! - The failover blocks the store remembers are restored, so a restart does not learn them
//!   again by failing.
//!
//! Finished jobs are purged from the store in the background, by age and count.

use std::sync::Arc;
use std::time::Duration;

use pool_failover::{FailureClass, ServerId};
use tokio::time::Instant;

use crate::attempt::{self, AttemptDone, AttemptEnd, AttemptMode, AttemptTask};
use crate::engine::{Engine, Settings, Timer};
use crate::job::{Job, JobCell};
use crate::{
    AttemptFailure, AttemptOutcome, AttemptRequest, Error, JobKey, JobRecord, JobState, JobStore,
    StoreError, Timestamp, Transition, seed,
};

/// How often finished jobs are purged from the store.
const PURGE_EVERY: Duration = Duration::from_secs(600);

impl Engine {
    /// Restores stored blocks into the failover strategy (those still running, their end
    /// moved from the wall clock to this process's clock).
    pub(crate) fn restore_blocks(&mut self, blocks: Vec<crate::StoredBlock>) {
        let now = Instant::now();
        let wall = Timestamp::now();
        for block in blocks {
            let Some(until) = block.until else { continue };
            let until = now + until.saturating_duration_since(wall);
            let events = self.shared.strategy.restore_block(
                &block.server,
                &block.hash,
                block.class,
                block.failures,
                block.blocked_count,
                until,
                now,
            );
            self.publish_failover(&events);
        }
    }

    /// Restores the store's blocks and takes up its unfinished jobs.
    pub(crate) async fn recover(&mut self, store: &dyn JobStore) {
        let blocks = patiently("read the failover blocks", || store.blocks()).await;
        self.restore_blocks(blocks);
        let records = patiently("read the unfinished jobs", || store.unfinished()).await;
        for record in records {
            if self.defers_to_lease(&record) {
                continue;
            }
            let record = match attach_inputs(store, record).await {
                Ok(record) => record,
                Err((record, error)) => {
                    tracing::error!(job = %record.id, %error, "comfy-pool: a recovered job lost its input files");
                    self.adopt(record, Some(Error::Store(error)));
                    continue;
                }
            };
            self.adopt(record, None);
        }
    }

    /// Makes a stored job live again (or ends it at once with `failed`).
    pub(crate) fn adopt(&mut self, record: JobRecord, failed: Option<Error>) {
        let key = self.shared.registry.lock().next_key();
        let spec = Arc::clone(&record.spec);
        let requirements = crate::capability::requirements_of_spec(&spec);
        self.verdicts.needs.add_spec(&spec, &requirements);
        let route = crate::variants::route_key(&spec);
        self.variant_sets.add(route, &spec);
        let variant = record.attempts.last().map_or(0, |a| a.variant);
        let created = record.created_at;
        let state = record.state;
        let current = record.current();
        let cell = Arc::new(JobCell::new(key, record));
        if let Some(fleet) = &self.fleet {
            // Another process may have accepted the job: its copy there follows the run.
            cell.relay_to(crate::relay::Relay::new(Arc::clone(&fleet.link)));
        }
        self.shared.registry.lock().insert(Arc::clone(&cell));
        let now = Instant::now();
        let age = Timestamp::now().saturating_duration_since(created);
        let enqueued_at = now.checked_sub(age).unwrap_or(now);
        let constraint = self.constraint_for(&spec.options, &[]);
        let deadlines = spec.options.deadlines;
        let job = Job {
            cell,
            seeded: spec
                .variants()
                .iter()
                .map(|v| seed::needs_seeding(&v.workflow))
                .collect(),
            route,
            variant,
            spec,
            constraint,
            enqueued_at,
            first_dispatch: None,
            attempt_started: now,
            avoid: Vec::new(),
            stop: None,
            timers: Vec::new(),
        };
        self.jobs.insert(key, Box::new(job));
        if let Some(error) = failed {
            self.finish(key, Err(error));
            return;
        }
        if let Some(limit) = deadlines.start {
            self.add_timer(enqueued_at + limit, Timer::StartDeadline(key));
        }
        if let Some(limit) = deadlines.total {
            self.add_timer(enqueued_at + limit, Timer::TotalDeadline(key));
        }
        match (state, current) {
            (JobState::Running, Some(current)) if self.server(&current.server).is_some() => {
                self.resumes.entry(current.server).or_default().push(key);
                let wait = self.settings.recovery_wait;
                self.add_timer(now + wait, Timer::ResumeDeadline(key));
            }
            (JobState::Running, Some(current)) => {
                // Its server is no longer in the pool: the attempt is withdrawn.
                let ended = Transition::AttemptEnded {
                    attempt: current.attempt,
                    outcome: AttemptOutcome::Withdrawn,
                    reason: Some(format!(
                        "server {} is no longer in the pool",
                        current.server
                    )),
                    duration: Duration::ZERO,
                };
                self.transition(key, &ended, Vec::new());
                self.place(key);
            }
            _ => self.place(key),
        }
    }

    /// Re-attaches to the prompts of recovered jobs that ran on `id`, now that it answers.
    pub(crate) fn resume_on(&mut self, id: &ServerId) {
        let Some(keys) = self.resumes.remove(id) else {
            return;
        };
        for key in keys {
            self.resume(key, id);
        }
    }

    fn resume(&mut self, key: JobKey, id: &ServerId) {
        let Some(server) = self.servers.iter_mut().find(|s| s.id == *id) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        let Some(current) = job.cell.read(JobRecord::current) else {
            return;
        };
        let (confirmed, started) = job.cell.read(|r| {
            r.attempts.last().map_or((false, false), |a| {
                (a.submitted_at.is_some(), a.executing_at.is_some())
            })
        });
        // A real prompt on the server: it holds a slot whatever the pool's count says.
        server.in_flight += 1;
        let backend = Arc::clone(&server.backend);
        let now = Instant::now();
        job.attempt_started = now;
        job.first_dispatch.get_or_insert(now);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        job.stop = Some(stop_tx);
        let request = AttemptRequest {
            job: job.cell.id.clone(),
            attempt: current.attempt,
            prompt_id: current.prompt_id,
            workflow: Arc::clone(
                &job.spec
                    .variant(job.variant)
                    .unwrap_or_else(|| job.spec.first())
                    .workflow,
            ),
            outputs: job.spec.options.outputs.clone(),
        };
        let task = AttemptTask {
            key,
            mode: AttemptMode::Follow,
            confirmed,
            started,
            durable: None,
            attempt: current.attempt,
            server: id.clone(),
            backend,
            request,
            inputs: None,
            between_events: job.spec.options.deadlines.between_events,
            stop: stop_rx,
            pull: None,
            done: self.commands.clone(),
        };
        tokio::spawn(attempt::run(task));
    }

    /// A recovered job's server stayed silent for the recovery wait: its prompt counts as
    /// lost (cleaned up should the server come back) and the job goes on elsewhere.
    pub(crate) fn resume_timed_out(&mut self, key: JobKey) {
        let Some((server, keys)) = self
            .resumes
            .iter_mut()
            .find(|(_, keys)| keys.contains(&key))
        else {
            return;
        };
        keys.retain(|k| *k != key);
        let server = server.clone();
        let Some(current) = self
            .jobs
            .get(&key)
            .and_then(|job| job.cell.read(JobRecord::current))
        else {
            return;
        };
        if let Some(s) = self.server_mut(&server) {
            s.in_flight += 1;
        }
        let wait = self.settings.recovery_wait;
        let failure = AttemptFailure::new(
            FailureClass::ServerDown,
            format!("the server did not answer within {wait:?} after the restart; prompt lost"),
        );
        self.on_attempt_done(AttemptDone {
            key,
            attempt: current.attempt,
            server,
            prompt_id: current.prompt_id,
            end: AttemptEnd::Finished(Err(failure)),
            submitted: true,
            slot_freed: false,
            followed: true,
        });
    }

    /// Lets go of recovered jobs still waiting for their server (a detaching shutdown).
    pub(crate) fn detach_resumes(&mut self) {
        for (_, keys) in self.resumes.drain() {
            for key in keys {
                if let Some(job) = self.jobs.remove(&key) {
                    for timer in &job.timers {
                        self.timers.remove(timer);
                    }
                    job.cell.detach();
                }
            }
        }
    }
}

/// Gives recovered input files their bytes back from the store.
pub(crate) async fn attach_inputs(
    store: &dyn JobStore,
    mut record: JobRecord,
) -> Result<JobRecord, (JobRecord, String)> {
    let Some(files) = record.spec.options.inputs.clone() else {
        return Ok(record);
    };
    let mut attached = Vec::with_capacity(files.len());
    for file in files.iter() {
        let key = file.content.key();
        let bytes = match store.get_blob(&key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err((
                    record,
                    format!("input file {} ({key}) is not in the store", file.name),
                ));
            }
            Err(error) => return Err((record, error.to_string())),
        };
        let Some(content) = file.content.attach(bytes) else {
            return Err((
                record,
                format!("input file {} does not match its stored bytes", file.name),
            ));
        };
        let mut file = file.clone();
        file.content = content;
        attached.push(file);
    }
    let mut spec = (*record.spec).clone();
    spec.options.inputs = Some(attached.into());
    record.spec = Arc::new(spec);
    Ok(record)
}

/// Runs a store read until it answers: a pool cannot start without its store.
async fn patiently<T, F, Fut>(what: &str, read: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut pause = Duration::from_millis(100);
    loop {
        match read().await {
            Ok(value) => return value,
            Err(error) => {
                tracing::error!(%error, "comfy-pool: cannot {what} from the job store; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Purges finished jobs from the store every ten minutes while the pool runs.
pub(crate) fn spawn_purge(
    store: &Arc<dyn JobStore>,
    settings: &Settings,
    engine: tokio::sync::mpsc::WeakUnboundedSender<crate::command::Command>,
) {
    let store = Arc::clone(store);
    let (retain_for, keep) = (settings.retain_for, settings.retain_count);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            if engine.upgrade().is_none() {
                return;
            }
            let before = Timestamp::from_millis(
                Timestamp::now()
                    .as_millis()
                    .saturating_sub(u64::try_from(retain_for.as_millis()).unwrap_or(u64::MAX)),
            );
            match store.purge(before, keep).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(jobs = n, "comfy-pool: purged finished jobs"),
                Err(error) => tracing::warn!(%error, "comfy-pool: purging finished jobs failed"),
            }
        }
    });
}
