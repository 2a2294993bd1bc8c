//! What the engine does when a running prompt reports, an attempt ends, a job is cancelled,
//! a timer fires or the pool shuts down; and the one place where a job ends
//! ([`Engine::finish`]).

use std::sync::Arc;

use pool_failover::{FailureClass, ServerId};
use tokio::time::Instant;

use crate::attempt::{AttemptDone, AttemptEnd};
use crate::cleanup::Cleanup;
use crate::engine::{Engine, StopReason, Timer, Work};
use crate::{
    AttemptError, AttemptFailure, AttemptOutcome, DeadlineKind, Error, JobEventKind, JobKey,
    JobOutput, JobState, JobTimings, RunEvent, ShutdownMode, Transition,
};

impl Engine {
    /// A running prompt reported something: the record notes acceptance and the start of
    /// execution; everything goes to the job's stream.
    pub(crate) fn on_run_event(&mut self, key: JobKey, attempt: u32, event: RunEvent) {
        if matches!(event, RunEvent::Executing) {
            // It no longer waits in its server's queue: no pull can take it back.
            self.ahead_executing(key, attempt);
        }
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        let current = job
            .cell
            .read(|r| r.state == JobState::Running && r.attempts.len() == attempt as usize);
        if !current {
            return;
        }
        if let RunEvent::Output { node, .. } = &event
            && !job.spec.options.outputs.includes(node)
        {
            return;
        }
        let transition = match &event {
            RunEvent::Accepted { .. } => Some(Transition::PromptSubmitted { attempt }),
            RunEvent::Executing => Some(Transition::ExecutionStarted { attempt }),
            _ => None,
        };
        let kind = JobEventKind::Run(event);
        match transition {
            Some(transition) => self.transition(key, &transition, vec![kind]),
            None => job.cell.emit(kind, &self.shared.events),
        }
    }

    pub(crate) fn on_attempt_done(&mut self, done: AttemptDone) {
        let now = Instant::now();
        let AttemptDone {
            key,
            attempt,
            server,
            prompt_id,
            end,
            submitted,
            slot_freed,
            followed,
        } = done;
        self.ahead_settled(key, attempt);
        self.ahead.ended(
            key,
            attempt,
            &server,
            matches!(end, AttemptEnd::Finished(Ok(_))),
        );
        let cleanup = submitted && end.may_leave_prompt();
        if let Some(s) = self.server_mut(&server) {
            if !slot_freed {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
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
        job.stop = None;
        // Blocks are per (server, hash of the variant that ran).
        let hash = job.ran_hash();
        let duration = now.saturating_duration_since(job.attempt_started);
        // A rejection that names what the server is known to lack is the server's lack.
        let end = match end {
            AttemptEnd::Finished(Err(failure)) => {
                AttemptEnd::Finished(Err(self.reclassify(&server, &hash, failure)))
            }
            other => other,
        };
        if matches!(end, AttemptEnd::Stopped(StopReason::Detach)) {
            // The prompt stays on its server; the next pool on the store follows it.
            let job = self.jobs.remove(&key);
            if let Some(job) = job {
                self.drop_timers(&job.timers);
                self.let_go(Arc::clone(&job.cell));
            }
            self.after_slot_freed(&server);
            return;
        }
        let (outcome, reason) = match &end {
            AttemptEnd::Finished(Ok(_)) => (AttemptOutcome::Succeeded, None),
            AttemptEnd::Finished(Err(f)) => {
                (AttemptOutcome::Failed(f.class), Some(f.reason.clone()))
            }
            AttemptEnd::Stopped(StopReason::Cancel | StopReason::Detach) => {
                (AttemptOutcome::Cancelled, None)
            }
            // The attempt task reports a lost lease as `Withdraw` or `Detach`, and a prompt
            // taken back from its server's queue as `Withdraw`.
            AttemptEnd::Stopped(StopReason::Withdraw | StopReason::LeaseLost) => {
                (AttemptOutcome::Withdrawn, None)
            }
            AttemptEnd::Stopped(StopReason::Deadline(_)) => (AttemptOutcome::TimedOut, None),
            AttemptEnd::Stopped(StopReason::ServerOffline) => {
                let why = self
                    .server(&server)
                    .and_then(|s| s.last_error.clone())
                    .unwrap_or_else(|| "unreachable".to_owned());
                (
                    AttemptOutcome::Failed(FailureClass::ServerDown),
                    Some(format!("the server went offline: {why}")),
                )
            }
        };
        let ended = Transition::AttemptEnded {
            attempt,
            outcome,
            reason: reason.clone(),
            duration,
        };
        self.transition(key, &ended, Vec::new());
        let Some(job) = self.jobs.get(&key) else {
            self.after_slot_freed(&server);
            return;
        };
        // What the job's record says wins over how the attempt ended: a cancel, then a
        // deadline that ran out while it ran.
        let (cancelled, expired) = job.cell.read(|r| (r.cancel_requested, r.deadline_expired));
        let verdict = if cancelled {
            Some(Error::Cancelled)
        } else {
            expired.map(Error::DeadlineExceeded)
        };
        if let Some(error) = verdict {
            let events = match &end {
                AttemptEnd::Finished(Ok(_)) => strategy.record_success(&server, &hash, now),
                // Frees a probe slot; blocks nothing.
                _ => strategy.record_failure(&server, &hash, FailureClass::Cancelled, now),
            };
            self.publish_failover(&events);
            self.finish(key, Err(error));
            self.after_slot_freed(&server);
            return;
        }
        match end {
            AttemptEnd::Finished(Ok(output)) => {
                self.note_server_success(&server);
                let events = strategy.record_success(&server, &hash, now);
                self.publish_failover(&events);
                let Some(job) = self.jobs.get(&key) else {
                    return;
                };
                let attempts = job.cell.read(|r| r.attempts.clone());
                let seeds = attempts.last().map(|a| a.seeds.clone()).unwrap_or_default();
                let timings = JobTimings {
                    queue_wait: job
                        .first_dispatch
                        .map(|t| t.saturating_duration_since(job.enqueued_at))
                        .unwrap_or_default(),
                    total: now.saturating_duration_since(job.enqueued_at),
                    attempts,
                    nodes: output.nodes,
                };
                let options = &job.spec.options;
                let mut outputs = output.outputs;
                outputs.retain(|node, _| options.outputs.includes(node));
                let mut ws_images = output.ws_images;
                ws_images.retain(|image| options.outputs.includes(&image.node));
                let result = JobOutput {
                    job: job.cell.id.clone(),
                    server: server.clone(),
                    prompt_id,
                    variant: job.variant,
                    hash: Some(job.ran_hash()),
                    outputs,
                    ws_images,
                    seeds,
                    metadata: options.metadata.clone(),
                    timings,
                };
                self.finish(key, Ok(Arc::new(result)));
            }
            AttemptEnd::Finished(Err(failure)) => {
                // A recovered prompt the server does not have (never submitted before the
                // restart, or lost with the server's own restart) is not a sign that the
                // server is down now: taking it offline would stop, and run again
                // elsewhere, every other prompt it still runs.
                let of_server = !(followed && failure.class == FailureClass::ServerDown);
                if !self.park(key, &server, &failure) {
                    self.on_failure_of(key, &server, failure, of_server);
                }
            }
            AttemptEnd::Stopped(StopReason::ServerOffline) => {
                let reason = reason.unwrap_or_default();
                self.on_failure(
                    key,
                    &server,
                    AttemptFailure::new(FailureClass::ServerDown, reason),
                );
            }
            AttemptEnd::Stopped(reason) => {
                // Frees a probe slot; blocks nothing.
                let events = strategy.record_failure(&server, &hash, FailureClass::Cancelled, now);
                self.publish_failover(&events);
                match reason {
                    StopReason::Withdraw | StopReason::LeaseLost => self.place(key),
                    // A cancel or a deadline is on the record before the attempt is stopped
                    // for it (handled above); these only guard the invariant.
                    StopReason::Deadline(kind) => {
                        self.finish(key, Err(Error::DeadlineExceeded(kind)));
                    }
                    StopReason::Cancel | StopReason::ServerOffline | StopReason::Detach => {
                        self.finish(key, Err(Error::Cancelled));
                    }
                }
            }
        }
        self.after_slot_freed(&server);
    }

    /// A running attempt's prompt is done executing on `server`: its slot is free for the
    /// next job while the attempt wraps up.
    pub(crate) fn on_slot_freed(&mut self, server: &ServerId) {
        if let Some(s) = self.server_mut(server) {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.after_slot_freed(server);
    }

    fn after_slot_freed(&mut self, server: &ServerId) {
        self.retire_if_idle(server);
        self.work.push_back(Work::Fill(server.clone()));
    }

    /// Removes an abandoned prompt from its server in the background; its slot stays taken
    /// until the first try settles.
    fn clean_up(&mut self, id: &ServerId, prompt_id: String) {
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

    pub(crate) fn on_failure(&mut self, key: JobKey, server: &ServerId, failure: AttemptFailure) {
        self.on_failure_of(key, server, failure, true);
    }

    /// A failed attempt: retried or final. `of_server`: the failure says something about
    /// the server (it counts towards its ejection, and a server-down failure takes it
    /// offline).
    fn on_failure_of(
        &mut self,
        key: JobKey,
        server: &ServerId,
        failure: AttemptFailure,
        of_server: bool,
    ) {
        let now = Instant::now();
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        let hash = job.ran_hash();
        let (attempt, counted, errors) = job.cell.read(|r| {
            (
                u32::try_from(r.attempts.len()).unwrap_or(u32::MAX),
                r.counted_attempts(),
                r.attempt_errors(),
            )
        });
        let class = failure.class;
        let error = AttemptError {
            attempt,
            server: server.clone(),
            class,
            reason: failure.reason.clone(),
        };
        let events = self
            .shared
            .strategy
            .record_failure(server, &hash, class, now);
        self.publish_failover(&events);
        if of_server {
            self.note_server_failure(server, class, &failure.reason);
            if class == FailureClass::ServerDown {
                self.server_down(server, &failure.reason);
            }
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
            _ if counted >= job.spec.options.max_attempts
                || self.shutdown == Some(ShutdownMode::Cancel) =>
            {
                Some(Error::AttemptsExhausted { attempts: errors })
            }
            _ => None,
        };
        if let Some(error) = final_error {
            self.finish(key, Err(error));
            return;
        }
        if !job.avoid.contains(server) {
            job.avoid.push(server.clone());
        }
        let spec = Arc::clone(&job.spec);
        let avoid = job.avoid.clone();
        let constraint = self.constraint_for(&spec.options, &avoid);
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        job.constraint = constraint;
        // A server that lacks what the workflow needs says nothing against the others: move
        // at once. Other failures back off.
        let delay = if class == FailureClass::ServerLacksResource {
            std::time::Duration::ZERO
        } else {
            spec.options.backoff.delay(counted)
        };
        let events = vec![
            JobEventKind::Failed {
                error: Error::AttemptFailed(error.clone()),
                will_retry: true,
            },
            JobEventKind::Retrying {
                attempt: attempt + 1,
                delay,
                cause: error,
            },
        ];
        self.transition(key, &Transition::RetryScheduled { delay }, events);
        if delay.is_zero() {
            self.place(key);
        } else {
            self.add_timer(now + delay, Timer::Retry(key));
        }
    }

    /// Records the cancel on the job (it wins over every later transition) and stops what
    /// the job is doing now.
    pub(crate) fn on_cancel(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        let state = job.state();
        self.transition(key, &Transition::CancelRequested, Vec::new());
        if self.unpark(key) {
            self.finish(key, Err(Error::Cancelled));
            return;
        }
        match state {
            JobState::Running => {
                // Without a stop signal left, the attempt is ending already; its report
                // finds the cancel on the record.
                if let Some(stop) = self.jobs.get_mut(&key).and_then(|j| j.stop.take()) {
                    let _ = stop.send(StopReason::Cancel);
                }
            }
            _ => {
                self.queue.remove(key);
                self.finish(key, Err(Error::Cancelled));
            }
        }
    }

    /// A deadline of the job ran out: a job waiting ends at once; a running one is stopped
    /// and ends when its attempt reports.
    fn deadline_expired(&mut self, key: JobKey, kind: DeadlineKind) {
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        let (state, expired) = job.cell.read(|r| (r.state, r.deadline_expired));
        if expired.is_some() {
            return;
        }
        if self.unpark(key) {
            self.finish(key, Err(Error::DeadlineExceeded(kind)));
            return;
        }
        if state == JobState::Running {
            self.transition(key, &Transition::DeadlineExpired { kind }, Vec::new());
            if let Some(stop) = self.jobs.get_mut(&key).and_then(|j| j.stop.take()) {
                let _ = stop.send(StopReason::Deadline(kind));
            }
        } else {
            self.queue.remove(key);
            self.finish(key, Err(Error::DeadlineExceeded(kind)));
        }
    }

    pub(crate) fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::Retry(key) => {
                if self
                    .jobs
                    .get(&key)
                    .is_some_and(|j| j.state() == JobState::RetryWait)
                {
                    self.place(key);
                }
            }
            Timer::StartDeadline(key) => {
                // Met once a prompt of the job started executing on a server (the wait in
                // the server's own queue counts).
                if self
                    .jobs
                    .get(&key)
                    .is_some_and(|job| !job.cell.read(crate::JobRecord::executed))
                {
                    self.deadline_expired(key, DeadlineKind::Start);
                }
            }
            Timer::TotalDeadline(key) => self.deadline_expired(key, DeadlineKind::Total),
            Timer::EjectionEnds(server) => self.on_ejection_ends(server),
            Timer::ResumeDeadline(key) => self.resume_timed_out(key),
            Timer::CapsRefresh(server) => self.on_caps_refresh(server),
            Timer::PullCheck(server) => self.on_pull_check(server),
        }
    }

    fn drop_timers(&mut self, timers: &[(Instant, u64)]) {
        for timer in timers {
            self.timers.remove(timer);
        }
    }

    /// Ends a live job: its record's terminal transition with its one terminal event, and
    /// the registry's retention.
    pub(crate) fn finish(&mut self, key: JobKey, outcome: crate::Result<Arc<JobOutput>>) {
        let Some(job) = self.jobs.remove(&key) else {
            return;
        };
        self.drop_timers(&job.timers);
        self.verdicts.needs.remove_spec(&job.spec);
        self.variant_sets.remove(&job.route);
        match &outcome {
            Ok(_) => self.totals.completed += 1,
            Err(Error::Cancelled) => self.totals.cancelled += 1,
            Err(_) => self.totals.failed += 1,
        }
        let terminal = match &outcome {
            Ok(output) => JobEventKind::Completed {
                output: Arc::clone(output),
            },
            Err(Error::Cancelled) => JobEventKind::Cancelled,
            Err(error) => JobEventKind::Failed {
                error: error.clone(),
                will_retry: false,
            },
        };
        let transition = Transition::Finished { outcome };
        match &self.persister {
            // The terminal state is durable before the terminal event goes out.
            Some(persister) => {
                if let Some(record) = job.cell.settle_terminal(&transition, vec![terminal]) {
                    persister.write(crate::persist::Write::Terminal {
                        record: Box::new(record),
                        transition,
                        cell: Arc::clone(&job.cell),
                    });
                }
            }
            None => {
                job.cell
                    .transition(&transition, vec![terminal], &self.shared.events, false);
            }
        }
        // The guard goes at the end of this statement: the evicted jobs are freed after it.
        let evicted = self.shared.registry.lock().finished(&job.cell.id);
        drop(evicted);
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
        // Escalation only: drain < detach < cancel.
        let rank = |m: Option<ShutdownMode>| match m {
            None => 0,
            Some(ShutdownMode::Drain) => 1,
            Some(ShutdownMode::Detach) => 2,
            Some(_) => 3,
        };
        if rank(Some(mode)) > rank(self.shutdown) {
            self.shutdown = Some(mode);
        }
        match self.shutdown {
            Some(ShutdownMode::Cancel) => {
                for entry in self.queue.drain() {
                    self.on_cancel(entry.key);
                }
                let keys: Vec<JobKey> = self.jobs.keys().copied().collect();
                for key in keys {
                    self.on_cancel(key);
                }
            }
            Some(ShutdownMode::Detach) => {
                self.detach_resumes();
                self.queue.drain();
                let keys: Vec<JobKey> = self.jobs.keys().copied().collect();
                for key in keys {
                    // A job whose failure waits to be judged has no attempt left to stop.
                    let running = self
                        .jobs
                        .get(&key)
                        .is_some_and(|j| j.state() == JobState::Running)
                        && !self.unpark(key);
                    if running {
                        if let Some(stop) = self.jobs.get_mut(&key).and_then(|j| j.stop.take()) {
                            let _ = stop.send(StopReason::Detach);
                        }
                    } else if let Some(job) = self.jobs.remove(&key) {
                        self.drop_timers(&job.timers);
                        job.cell.detach();
                    }
                }
            }
            _ => {}
        }
    }

    /// Shut down, every job ended (or detached), and every clean-up's first try settled (so
    /// that a cancelling shutdown has asked the servers to stop its prompts before it
    /// returns).
    pub(crate) fn is_done(&self) -> bool {
        self.shutdown.is_some()
            && self.jobs.is_empty()
            && self.servers.iter().all(|s| s.cleaning == 0)
    }

    pub(crate) fn finish_shutdown(&mut self) {
        self.shared.recovered.send_replace(true);
        self.shared.ready.send_replace(true);
        for server in &self.servers {
            server.health_task.abort();
        }
        for waiter in self.shutdown_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}
