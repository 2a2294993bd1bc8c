//! What the engine does when an attempt ends, a job is cancelled, a timer fires or the pool
//! shuts down; and the one place where a job ends ([`Engine::finish`]).

use std::sync::Arc;

use pool_failover::FailureClass;
use tokio::time::Instant;

use crate::attempt::{AttemptDone, AttemptEnd};
use crate::cleanup::Cleanup;
use crate::engine::{Engine, Phase, StopReason, Timer};
use crate::{
    AttemptError, AttemptFailure, AttemptOutcome, AttemptRecord, DeadlineKind, Error, JobEventKind,
    JobKey, JobOutput, JobTimings, ShutdownMode,
};

impl Engine {
    pub(crate) fn on_attempt_done(&mut self, done: AttemptDone) {
        let now = Instant::now();
        let AttemptDone {
            key,
            server,
            prompt_id,
            started,
            seeds,
            end,
        } = done;
        let cleanup = end.may_leave_prompt();
        if let Some(s) = self.server_mut(&server) {
            s.in_flight = s.in_flight.saturating_sub(1);
            match &end {
                AttemptEnd::Finished(Ok(_)) => s.completed += 1,
                AttemptEnd::Finished(Err(_)) | AttemptEnd::Stopped(StopReason::ServerOffline) => {
                    s.failed += 1;
                }
                AttemptEnd::Stopped(_) => {}
            }
        }
        if cleanup {
            self.clean_up(&server, prompt_id.clone());
        }
        let strategy = Arc::clone(&self.shared.strategy);
        let Some(job) = self.jobs.get_mut(&key) else {
            self.after_slot_freed(&server);
            return;
        };
        job.phase = Phase::Backoff;
        let hash = job.hash;
        let outcome = match &end {
            AttemptEnd::Finished(Ok(_)) => AttemptOutcome::Succeeded,
            AttemptEnd::Finished(Err(f)) => AttemptOutcome::Failed(f.class),
            AttemptEnd::Stopped(StopReason::Cancel) => AttemptOutcome::Cancelled,
            AttemptEnd::Stopped(StopReason::Withdraw) => AttemptOutcome::Withdrawn,
            AttemptEnd::Stopped(StopReason::Deadline(_)) => AttemptOutcome::TimedOut,
            AttemptEnd::Stopped(StopReason::ServerOffline) => {
                AttemptOutcome::Failed(FailureClass::ServerDown)
            }
        };
        let attempt = u32::try_from(job.attempts.len() + 1).unwrap_or(u32::MAX);
        job.attempts.push(AttemptRecord {
            attempt,
            server: server.clone(),
            prompt_id: prompt_id.clone(),
            duration: now.saturating_duration_since(started),
            outcome,
        });
        // What the job's record says wins over how the attempt ended: a cancel, then a
        // deadline that ran out while it ran.
        let verdict = if job.cancel_requested {
            Some(Error::Cancelled)
        } else {
            job.deadline_hit.map(Error::DeadlineExceeded)
        };
        if let Some(error) = verdict {
            let events = match &end {
                AttemptEnd::Finished(Ok(_)) => strategy.record_success(&server, &hash, now),
                // Frees a probe slot; blocks nothing.
                _ => strategy.record_failure(&server, &hash, FailureClass::Cancelled, now),
            };
            self.announce(&events);
            self.finish(key, Err(error));
            self.act_on(events);
            self.after_slot_freed(&server);
            return;
        }
        match end {
            AttemptEnd::Finished(Ok(output)) => {
                self.note_server_success(&server);
                let Some(job) = self.jobs.get_mut(&key) else {
                    return;
                };
                let events = strategy.record_success(&server, &hash, now);
                let timings = JobTimings {
                    queue_wait: job
                        .first_dispatch
                        .map(|t| t.saturating_duration_since(job.enqueued_at))
                        .unwrap_or_default(),
                    total: now.saturating_duration_since(job.enqueued_at),
                    attempts: job.attempts.clone(),
                    nodes: output.nodes,
                };
                let mut outputs = output.outputs;
                outputs.retain(|node, _| job.options.outputs.includes(node));
                let result = JobOutput {
                    job: job.shared.id.clone(),
                    server: server.clone(),
                    prompt_id,
                    outputs,
                    seeds,
                    metadata: job.options.metadata.clone(),
                    timings,
                };
                self.announce(&events);
                self.finish(key, Ok(Arc::new(result)));
                self.act_on(events);
            }
            AttemptEnd::Finished(Err(failure)) => self.on_failure(key, &server, failure),
            AttemptEnd::Stopped(StopReason::ServerOffline) => {
                let reason = self
                    .server(&server)
                    .and_then(|s| s.last_error.clone())
                    .unwrap_or_else(|| "unreachable".to_owned());
                let failure = AttemptFailure::new(
                    FailureClass::ServerDown,
                    format!("the server went offline: {reason}"),
                );
                self.on_failure(key, &server, failure);
            }
            AttemptEnd::Stopped(reason) => {
                // Frees a probe slot; blocks nothing.
                let events = strategy.record_failure(&server, &hash, FailureClass::Cancelled, now);
                match reason {
                    StopReason::Withdraw => {
                        if let Some(job) = self.jobs.get_mut(&key) {
                            job.counted_attempts = job.counted_attempts.saturating_sub(1);
                        }
                        self.place(key);
                    }
                    // A cancel or a deadline is on the record before the attempt is stopped
                    // for it (handled above); these only guard the invariant.
                    StopReason::Deadline(kind) => {
                        self.finish(key, Err(Error::DeadlineExceeded(kind)));
                    }
                    StopReason::Cancel | StopReason::ServerOffline => {
                        self.finish(key, Err(Error::Cancelled));
                    }
                }
                self.publish_failover(events);
            }
        }
        self.after_slot_freed(&server);
    }

    fn after_slot_freed(&mut self, server: &pool_failover::ServerId) {
        self.retire_if_idle(server);
        self.fill_server(server);
    }

    /// Removes an abandoned prompt from its server in the background; its slot stays taken
    /// until the first try settles.
    fn clean_up(&mut self, id: &pool_failover::ServerId, prompt_id: String) {
        let settings = self.settings.cleanup;
        let Some(server) = self.server_mut(id) else {
            return;
        };
        server.cleaning += 1;
        let cleanup = Cleanup {
            server: id.clone(),
            backend: Arc::clone(&server.backend),
            prompt_id,
            settings,
        };
        cleanup.spawn(&self.commands, self.shared.events.clone());
    }

    fn on_failure(
        &mut self,
        key: JobKey,
        server: &pool_failover::ServerId,
        failure: AttemptFailure,
    ) {
        let now = Instant::now();
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        let hash = job.hash;
        let attempt = u32::try_from(job.attempts.len()).unwrap_or(u32::MAX);
        let error = AttemptError {
            attempt,
            server: server.clone(),
            class: failure.class,
            reason: failure.reason.clone(),
        };
        job.errors.push(error.clone());
        let class = failure.class;
        let events = self
            .shared
            .strategy
            .record_failure(server, &hash, class, now);
        self.announce(&events);
        self.note_server_failure(server, class, &failure.reason);
        if class == FailureClass::ServerDown {
            self.server_down(server, &failure.reason);
        }
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        let final_error = match class {
            FailureClass::WorkflowInvalid => Some(Error::WorkflowRejected {
                server: server.clone(),
                reason: failure.reason,
            }),
            FailureClass::Cancelled => Some(Error::Cancelled),
            _ if job.counted_attempts >= job.options.max_attempts
                || self.shutdown == Some(ShutdownMode::Cancel) =>
            {
                Some(Error::AttemptsExhausted {
                    attempts: job.errors.clone(),
                })
            }
            _ => None,
        };
        if let Some(error) = final_error {
            self.finish(key, Err(error));
            self.act_on(events);
            return;
        }
        if !job.avoid.contains(server) {
            job.avoid.push(server.clone());
        }
        let options = job.options.clone();
        let avoid = job.avoid.clone();
        let constraint = self.constraint_for(&options, &avoid);
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        job.constraint = constraint;
        // A server that lacks what the workflow needs says nothing against the others: move
        // at once. Other failures back off.
        let delay = if class == FailureClass::ServerLacksResource {
            std::time::Duration::ZERO
        } else {
            options.backoff.delay(job.counted_attempts)
        };
        job.phase = Phase::Backoff;
        let next = attempt + 1;
        job.shared.emit(
            JobEventKind::Failed {
                error: Error::AttemptFailed(error.clone()),
                will_retry: true,
            },
            &self.shared.events,
        );
        job.shared.emit(
            JobEventKind::Retrying {
                attempt: next,
                delay,
                cause: error,
            },
            &self.shared.events,
        );
        self.act_on(events);
        if delay.is_zero() {
            self.place(key);
        } else {
            self.add_timer(now + delay, Timer::Retry(key));
        }
    }

    /// Records the cancel on the job (it wins over every later transition) and stops what
    /// the job is doing now.
    pub(crate) fn on_cancel(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        job.cancel_requested = true;
        match &mut job.phase {
            Phase::Queued => {
                self.queue.remove(key);
                self.finish(key, Err(Error::Cancelled));
            }
            Phase::Backoff => self.finish(key, Err(Error::Cancelled)),
            Phase::Running { stop, .. } => {
                // Without a stop signal left, the attempt is ending already; its report
                // finds the cancel on the record.
                if let Some(stop) = stop.take() {
                    let _ = stop.send(StopReason::Cancel);
                }
            }
        }
    }

    /// The running attempt's prompt started executing: the start deadline is met.
    pub(crate) fn on_executing(&mut self, key: JobKey, attempt: u32) {
        if let Some(job) = self.jobs.get_mut(&key)
            && matches!(job.phase, Phase::Running { attempt: a, .. } if a == attempt)
        {
            job.executed = true;
        }
    }

    /// A deadline of the job ran out: a job waiting ends at once; a running one is stopped
    /// and ends when its attempt reports.
    fn deadline_expired(&mut self, key: JobKey, kind: DeadlineKind) {
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        if job.deadline_hit.is_some() {
            return;
        }
        job.deadline_hit = Some(kind);
        match &mut job.phase {
            Phase::Running { stop, .. } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(StopReason::Deadline(kind));
                }
            }
            Phase::Queued | Phase::Backoff => {
                self.queue.remove(key);
                self.finish(key, Err(Error::DeadlineExceeded(kind)));
            }
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Retry(key) => {
                if self
                    .jobs
                    .get(&key)
                    .is_some_and(|j| matches!(j.phase, Phase::Backoff))
                {
                    self.place(key);
                }
            }
            Timer::StartDeadline(key) => {
                // Met once a prompt of the job started executing on a server (the wait in
                // the server's own queue counts).
                if self.jobs.get(&key).is_some_and(|job| !job.executed) {
                    self.deadline_expired(key, DeadlineKind::Start);
                }
            }
            Timer::TotalDeadline(key) => self.deadline_expired(key, DeadlineKind::Total),
            Timer::EjectionEnds(server) => self.on_ejection_ends(server),
        }
    }

    /// Ends a live job: its one terminal event, its outcome, the registry's retention.
    pub(crate) fn finish(&mut self, key: JobKey, outcome: crate::Result<Arc<JobOutput>>) {
        let Some(job) = self.jobs.remove(&key) else {
            return;
        };
        for timer in &job.timers {
            self.timers.remove(timer);
        }
        match &outcome {
            Ok(_) => self.totals.completed += 1,
            Err(Error::Cancelled) => self.totals.cancelled += 1,
            Err(_) => self.totals.failed += 1,
        }
        if job.shared.finish(outcome, &self.shared.events) {
            self.shared.registry.lock().finished(&job.shared.id);
        }
    }

    pub(crate) fn begin_shutdown(
        &mut self,
        mode: ShutdownMode,
        reply: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        self.shared.registry.lock().closed = true;
        if let Some(reply) = reply {
            self.shutdown_waiters.push(reply);
        }
        if self.shutdown != Some(ShutdownMode::Cancel) {
            self.shutdown = Some(mode);
        }
        if mode == ShutdownMode::Cancel {
            for entry in self.queue.drain() {
                self.finish(entry.key, Err(Error::Cancelled));
            }
            let keys: Vec<JobKey> = self.jobs.keys().copied().collect();
            for key in keys {
                self.on_cancel(key);
            }
        }
    }

    /// Shut down, every job ended, and every clean-up's first try settled (so that a
    /// cancelling shutdown has asked the servers to stop its prompts before it returns).
    pub(crate) fn is_done(&self) -> bool {
        self.shutdown.is_some()
            && self.jobs.is_empty()
            && self.servers.iter().all(|s| s.cleaning == 0)
    }

    pub(crate) fn finish_shutdown(&mut self) {
        self.shared.ready.send_replace(true);
        for server in &self.servers {
            server.health_task.abort();
        }
        for waiter in self.shutdown_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}
