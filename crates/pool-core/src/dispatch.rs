//! Placing jobs on servers: a new or retried job looks for a free server (or waits in the
//! queue); a freed server looks for a queued job. Both paths end in [`Engine::start`].

use std::sync::Arc;

use pool_failover::{AllBlockedDecision, ServerBlock, ServerId};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::attempt::{self, AttemptMode, AttemptTask};
use crate::command::NewJob;
use crate::engine::{Engine, Timer};
use crate::job::Job;
use crate::variants::{self, Reach};
use crate::{
    AttemptOutcome, AttemptRecord, AttemptRequest, Constraint, Error, Ineligible, JobEventKind,
    JobKey, JobState, QueueEntry, Timestamp, Transition, seed,
};

impl Engine {
    pub(crate) fn on_enqueue(&mut self, new: NewJob) {
        let key = new.cell.key;
        self.verdicts.needs.add_spec(&new.spec, &new.requirements);
        let route = variants::route_key(&new.spec);
        self.variant_sets.add(route, &new.spec);
        let constraint = self.constraint_for(&new.spec.options, &[]);
        // Acceptance is the record's first version; its first event says so.
        new.cell.announce(&self.shared.events);
        let deadlines = new.spec.options.deadlines;
        let enqueued_at = new.enqueued_at;
        let job = Job {
            cell: new.cell,
            spec: new.spec,
            seeded: new.seeded,
            route,
            variant: 0,
            constraint,
            enqueued_at,
            first_dispatch: None,
            attempt_started: enqueued_at,
            avoid: Vec::new(),
            stop: None,
            timers: Vec::new(),
        };
        self.jobs.insert(key, Box::new(job));
        if let Some(limit) = deadlines.start {
            self.add_timer(enqueued_at + limit, Timer::StartDeadline(key));
        }
        if let Some(limit) = deadlines.total {
            self.add_timer(enqueued_at + limit, Timer::TotalDeadline(key));
        }
        self.place(key);
    }

    pub(crate) fn constraint_for(
        &mut self,
        options: &crate::JobOptions,
        avoid: &[ServerId],
    ) -> Arc<Constraint> {
        let constraint = match options.placement() {
            None if avoid.is_empty() => Constraint::default(),
            None => Constraint::new(Vec::new(), avoid.to_vec(), Vec::new()),
            Some(p) => {
                let mut excluded = p.excluded.clone();
                excluded.extend_from_slice(avoid);
                Constraint::new(p.required.clone(), excluded, p.tags.clone())
            }
        };
        self.intern(constraint)
    }

    /// Places a live job that is in no queue: on a free server now, in the queue, or — when
    /// no server can ever take it — fails it with the reason per server.
    pub(crate) fn place(&mut self, key: JobKey) {
        let now = Instant::now();
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        // The record wins over placement: a cancelled job or one out of time is not
        // dispatched again (a re-placement after a withdrawal or a retry included).
        let ended = job.ended_by_record(now);
        if let Some(error) = ended {
            self.finish(key, Err(error));
            return;
        }
        let (spec, constraint) = (Arc::clone(&job.spec), Arc::clone(&job.constraint));
        let wait_for_capable = job.spec.options.wait_for_capable;
        let preferred: &[ServerId] = job.spec.options.placement().map_or(&[], |p| &p.preferred);
        let strategy = &self.shared.strategy;
        let verdicts = &mut self.verdicts;
        let ahead = self.settings.queue_ahead;
        // Whether some server that admits the job does not lack what it needs (a candidate),
        // whether one lacks it, and whether a candidate may run it (no block).
        let (mut any_candidate, mut lacking, mut any_allowed) = (false, false, false);
        // (busy, variant, not preferred, load, server): a free server first (a busy one
        // only holds the job in its queue), then the first variant, then placement.
        let mut best: Option<(u8, usize, u8, f64, usize)> = None;
        for (i, server) in self.servers.iter().enumerate() {
            if !server.is_member() {
                continue;
            }
            let busy = if server.has_free_slot() {
                Some(0)
            } else if server.has_ahead_slot(ahead) {
                Some(1)
            } else {
                None
            };
            if busy.is_none() && any_allowed {
                // Takes nothing now, and another server already may run the job: asking
                // whether this one admits it, lacks what it needs or blocks it would change
                // nothing (with every server busy, each queued job would ask every server).
                continue;
            }
            if !constraint.admits(&server.view()) {
                continue;
            }
            let variant = match variants::reach(verdicts, strategy.as_ref(), server, &spec, now) {
                // Lacks what every variant needs: never a candidate.
                Reach::Lacks => {
                    lacking = true;
                    continue;
                }
                Reach::Blocked => {
                    any_candidate = true;
                    continue;
                }
                Reach::Runs(variant) => variant,
            };
            any_candidate = true;
            any_allowed = true;
            let Some(busy) = busy else {
                continue;
            };
            #[allow(clippy::cast_precision_loss)]
            let load = (server.in_flight as f64 + 1.0) / f64::from(server.weight);
            let rank = (
                busy,
                variant,
                u8::from(!preferred.contains(&server.id)),
                load,
                i,
            );
            let order = |r: &(u8, usize, u8, f64, usize)| (r.0, r.1, r.2);
            if best.is_none_or(|b| {
                order(&rank) < order(&b) || (order(&rank) == order(&b) && rank.3 < b.3)
            }) {
                best = Some(rank);
            }
        }
        if !any_candidate {
            if lacking && wait_for_capable {
                // Waits for a server that can run it (one that joins, or installs it).
                self.enqueue_entry(key);
            } else if lacking {
                let error = self.lacking_error(key);
                self.finish(key, Err(error));
            } else if job.avoid.is_empty() {
                let per_server = self.ineligible(key, None);
                self.finish(key, Err(Error::NoEligibleServer { per_server }));
            } else {
                // Moving away from servers that failed is a preference: with no other server
                // left, the job may go back to them.
                let spec = Arc::clone(&job.spec);
                let constraint = self.constraint_for(&spec.options, &[]);
                if let Some(job) = self.jobs.get_mut(&key) {
                    job.avoid.clear();
                    job.constraint = constraint;
                }
                self.place(key);
            }
            return;
        }
        if let Some((_, variant, _, _, at)) = best
            && let Some(id) = self.servers.get(at).map(|s| s.id.clone())
        {
            let hash = spec
                .variant(variant)
                .map_or_else(|| spec.hash(), |v| v.hash);
            let claim = self.shared.strategy.claim(&id, &hash, now);
            self.publish_failover(&claim.events);
            if claim.is_granted() {
                self.start(key, &id, claim.is_probe(), variant);
                return;
            }
        }
        if !any_allowed {
            // The policy decides for the first variant some candidate does not lack.
            let Some((variant, hash, candidates)) = self.blocked_variant(&spec, &constraint) else {
                self.enqueue_entry(key);
                return;
            };
            let decision = self.shared.strategy.on_all_blocked(&candidates, &hash, now);
            self.publish_failover(&decision.events);
            match decision.decision {
                AllBlockedDecision::Proceed { server } if self.has_free_slot(&server) => {
                    let claim = self.shared.strategy.claim(&server, &hash, now);
                    self.publish_failover(&claim.events);
                    if claim.is_granted() {
                        self.start(key, &server, claim.is_probe(), variant);
                        return;
                    }
                }
                AllBlockedDecision::Probe { server } if self.has_free_slot(&server) => {
                    self.start(key, &server, true, variant);
                    return;
                }
                AllBlockedDecision::Fail(error) => {
                    let per_server = self.ineligible(key, Some(error.blocked_servers()));
                    self.finish(key, Err(Error::NoEligibleServer { per_server }));
                    return;
                }
                AllBlockedDecision::Probe { server } => {
                    // The probe slot was taken for this job but its server is busy: give the
                    // slot back (the pair stays on probation) so that whichever job reaches
                    // the server first probes it, instead of holding the slot until its
                    // timeout.
                    self.enqueue_entry(key);
                    let released = self.shared.strategy.record_failure(
                        &server,
                        &hash,
                        pool_failover::FailureClass::Cancelled,
                        now,
                    );
                    self.publish_failover(&released);
                    return;
                }
                // Wait, or a decision this version does not know: the queue holds the job
                // until a block ends (an `Unblocked` event refills the server).
                _ => {}
            }
            self.enqueue_entry(key);
            return;
        }
        self.enqueue_entry(key);
    }

    /// Whether `id` has a free slot (the all-blocked policy's proceed or probe runs now,
    /// never queued ahead).
    fn has_free_slot(&self, id: &ServerId) -> bool {
        self.server(id)
            .is_some_and(super::servers::Server::has_free_slot)
    }

    fn enqueue_entry(&mut self, key: JobKey) {
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        if job.state() != JobState::Queued {
            self.transition(key, &Transition::Requeued, Vec::new());
        }
        let Some(job) = self.jobs.get(&key) else {
            return;
        };
        self.queue.push(QueueEntry::new(
            key,
            job.spec.options.priority,
            job.spec.options.tenant.clone(),
            job.route,
            Arc::clone(&job.constraint),
        ));
    }

    /// Why each member server cannot take the job.
    pub(crate) fn ineligible(
        &self,
        key: JobKey,
        blocks: Option<&[ServerBlock]>,
    ) -> Vec<(ServerId, Ineligible)> {
        let Some(job) = self.jobs.get(&key) else {
            return Vec::new();
        };
        let c = &job.constraint;
        self.servers
            .iter()
            .filter(|s| s.is_member())
            .map(|s| {
                let why = if !c.required.is_empty() && !c.required.contains(&s.id) {
                    Ineligible::NotRequired
                } else if c.excluded.contains(&s.id) {
                    Ineligible::Excluded
                } else if !c.tags.iter().all(|t| s.tags.contains(t)) {
                    let missing = c
                        .tags
                        .iter()
                        .filter(|t| !s.tags.contains(t))
                        .cloned()
                        .collect();
                    Ineligible::MissingTags(missing)
                } else {
                    let block = blocks
                        .and_then(|b| b.iter().find(|b| b.server == s.id))
                        .cloned()
                        .unwrap_or_else(|| ServerBlock::unknown(s.id.clone()));
                    Ineligible::Blocked(block.into())
                };
                (s.id.clone(), why)
            })
            .collect()
    }

    /// Gives queued work to `server` while it has free slots (after re-attaching to the
    /// prompts recovered jobs left there).
    pub(crate) fn fill_server(&mut self, id: &ServerId) {
        if !self.resumes.is_empty() && self.server(id).is_some_and(|s| s.is_online()) {
            self.resume_on(id);
        }
        loop {
            let now = Instant::now();
            let Self {
                servers,
                queue,
                verdicts,
                shared,
                variant_sets,
                ..
            } = self;
            let Some(server) = servers.iter().find(|s| s.id == *id) else {
                return;
            };
            let free = server.has_free_slot();
            if !free && !server.has_ahead_slot(self.settings.queue_ahead) {
                return;
            }
            let strategy = &shared.strategy;
            let (key, caps) = (server.key, &server.caps);
            let Some(entry) = queue.pop_for(server.view(), &mut |route| {
                variant_sets
                    .hashes(route)
                    .iter()
                    .any(|h| strategy.is_allowed(id, h, now) && verdicts.admits(key, caps, h))
            }) else {
                if free {
                    // Nothing queued for it: take back a prompt waiting on a busy server.
                    self.pull_for(id);
                }
                return;
            };
            let chosen = self
                .runnable_variant(entry.key, id, now)
                .and_then(|variant| {
                    let hash = self.jobs.get(&entry.key)?.spec.variant(variant)?.hash;
                    Some((variant, hash))
                });
            let Some((variant, hash)) = chosen else {
                self.queue.push(entry);
                return;
            };
            let claim = self.shared.strategy.claim(id, &hash, now);
            self.publish_failover(&claim.events);
            if !claim.is_granted() {
                self.queue.push(entry);
                return;
            }
            self.start(entry.key, id, claim.is_probe(), variant);
        }
    }

    /// Dispatches a job's `variant` to a server whose slot the caller checked and claimed
    /// (for that variant's hash).
    pub(crate) fn start(&mut self, key: JobKey, id: &ServerId, probe: bool, variant: usize) {
        let now = Instant::now();
        let Some(server) = self.servers.iter_mut().find(|s| s.id == *id) else {
            return;
        };
        let Some(job) = self.jobs.get_mut(&key) else {
            return;
        };
        server.in_flight += 1;
        let backend = Arc::clone(&server.backend);
        let attempt = job
            .cell
            .read(|r| u32::try_from(r.attempts.len() + 1).unwrap_or(u32::MAX));
        job.first_dispatch.get_or_insert(now);
        job.attempt_started = now;
        let prompt_id = uuid::Uuid::new_v4().to_string();
        job.variant = variant;
        let ran = job
            .spec
            .variant(variant)
            .unwrap_or_else(|| job.spec.first());
        let seeded = job.seeded.get(variant).copied().unwrap_or(false);
        let (workflow, seeds) = if seeded && job.spec.options.auto_seed {
            let (workflow, seeds) = seed::apply(&ran.workflow);
            (Arc::new(workflow), seeds)
        } else {
            (Arc::clone(&ran.workflow), Vec::new())
        };
        let hash = Some(ran.hash);
        let (stop_tx, stop_rx) = oneshot::channel();
        job.stop = Some(stop_tx);
        let pull = (self.settings.queue_ahead > 0).then(oneshot::channel);
        let record = AttemptRecord {
            attempt,
            server: id.clone(),
            prompt_id: prompt_id.clone(),
            variant,
            hash,
            probe,
            seeds,
            started_at: Timestamp::now(),
            submitted_at: None,
            executing_at: None,
            ended_at: None,
            duration: std::time::Duration::ZERO,
            outcome: AttemptOutcome::Running,
            reason: None,
        };
        let request = AttemptRequest {
            job: job.cell.id.clone(),
            attempt,
            prompt_id,
            workflow,
            outputs: job.spec.options.outputs.clone(),
        };
        let inputs = job.spec.options.inputs.clone();
        let between_events = job.spec.options.deadlines.between_events;
        let started = JobEventKind::Started {
            server: id.clone(),
            attempt,
            probe,
        };
        // Write-ahead: the attempt's prompt id is durable before the prompt is submitted.
        let durable = self.transition_with(
            key,
            &Transition::Dispatched { attempt: record },
            vec![started],
            true,
        );
        let task = AttemptTask {
            key,
            mode: AttemptMode::Run,
            confirmed: false,
            started: false,
            durable,
            attempt,
            server: id.clone(),
            backend,
            request,
            inputs,
            between_events,
            stop: stop_rx,
            pull: pull.map(|(tx, rx)| {
                self.ahead.dispatched(key, attempt, id.clone(), tx);
                rx
            }),
            done: self.commands.clone(),
        };
        tokio::spawn(attempt::run(task));
    }

    /// After a hash got blocked somewhere: its queued jobs may now be blocked everywhere, and
    /// the all-blocked policy must decide for them (wait, probe or fail).
    pub(crate) fn recheck_blocked_hash(&mut self, hash: &workflow_hash::WorkflowHash) {
        let routes = self.variant_sets.routes_with(hash);
        let keys = routes.iter().flat_map(|r| self.queue.keys_with_hash(r));
        for key in keys.collect::<Vec<_>>() {
            let now = Instant::now();
            let Some(job) = self.jobs.get(&key) else {
                continue;
            };
            let strategy = &self.shared.strategy;
            let all_blocked = self
                .servers
                .iter()
                .filter(|s| s.is_member() && job.constraint.admits(&s.view()))
                .all(|s| {
                    job.spec
                        .hashes()
                        .all(|h| !strategy.is_allowed(&s.id, &h, now))
                });
            if all_blocked && self.queue.remove(key).is_some() {
                self.place(key);
            }
        }
    }

    /// After a server left: queued jobs that no remaining server admits are placed again
    /// (which fails them with the reasons).
    pub(crate) fn fail_unplaceable_queued(&mut self) {
        let stranded: Vec<JobKey> = self
            .jobs
            .iter()
            .filter(|(_, job)| job.state() == JobState::Queued)
            .filter(|(_, job)| {
                !self
                    .servers
                    .iter()
                    .any(|s| s.is_member() && job.constraint.admits(&s.view()))
            })
            .map(|(key, _)| *key)
            .collect();
        for key in stranded {
            if self.queue.remove(key).is_some() {
                self.place(key);
            }
        }
    }
}
