//! The engine: one task that owns the queue, the servers' slots and every live job, so that
//! no free slot is ever given twice, and the only writer of job records and events.
//! Everything else talks to it through [`Command`]s.
//!
//! Handling a command may free a server or block a workflow somewhere; what follows from
//! that (filling the server, re-deciding the queued jobs of the workflow) is put on a work
//! list and done after the command, not by recursion.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pool_failover::{FailoverEvent, FailoverStrategy, ServerId};
use rustc_hash::FxHashMap;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::command::Command;
use crate::job::Job;
use crate::registry::Registry;
use crate::servers::Server;
use crate::{
    Constraint, JobEventKind, JobKey, JobQueue, PoolEvent, ShutdownMode, Timestamp, Transition,
    WorkflowEvent,
};

/// State shared by the engine and every `Pool` / `JobHandle`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Mutex<Registry>,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    pub(crate) strategy: Arc<dyn FailoverStrategy>,
    /// Turns true once every initial server answered its first health check.
    pub(crate) ready: tokio::sync::watch::Sender<bool>,
    /// Where jobs are persisted, if anywhere.
    pub(crate) store: Option<Arc<dyn crate::JobStore>>,
    /// The fleet of pool processes this one belongs to, if any.
    pub(crate) fleet: Option<Arc<crate::fleet_link::FleetLink>>,
    /// Turns true once the jobs of the store were taken up again (at once without a store):
    /// new jobs are accepted after them, so the recovered ones keep their place.
    pub(crate) recovered: tokio::sync::watch::Sender<bool>,
}

/// Why a running attempt is stopped. The job's record (its cancel flag and expired
/// deadline) decides what happens next; the reason only says why the attempt was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The caller cancelled the job, or a cancelling shutdown did.
    Cancel,
    /// A deadline of the job ran out.
    Deadline(crate::DeadlineKind),
    /// The server left the pool: the job goes back to the queue.
    Withdraw,
    /// This process lost the server's lease (fleet): a prompt the server accepted stays
    /// there for the next holder (the attempt ends as [`Detach`](Self::Detach)); one it did
    /// not accept goes back to the queue (as [`Withdraw`](Self::Withdraw)). A submission
    /// under way is waited for first, so that the answer decides.
    LeaseLost,
    /// The server went offline: the attempt counts as a server-down failure.
    ServerOffline,
    /// The pool detaches: the prompt stays on its server, the job unfinished.
    Detach,
}

/// Timers of live jobs and servers; stale ones are ignored when they fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Retry(JobKey),
    StartDeadline(JobKey),
    TotalDeadline(JobKey),
    /// A server's outlier ejection ends (stale if it was ejected again meanwhile).
    EjectionEnds(ServerKey),
    /// A recovered job still waits for its server to come back to re-attach to its prompt.
    ResumeDeadline(JobKey),
    /// A server's capabilities are due to be read again.
    CapsRefresh(ServerKey),
    /// A free server looks again for a queued-ahead prompt to take back (one that was not
    /// worth a pull yet, behind a prompt just started).
    PullCheck(ServerKey),
}

/// A server's number in the engine's timers: no other server of the pool ever has it.
pub(crate) type ServerKey = u64;

/// What follows from a command, done after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Work {
    /// Give queued work to a server that may have a free slot.
    Fill(ServerId),
    /// A workflow got blocked somewhere: its queued jobs may now be blocked everywhere.
    Recheck(WorkflowHash),
}

/// Settings of the engine that the builder decides.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) health_interval: Option<Duration>,
    /// How long one health check may take.
    pub(crate) health_timeout: Duration,
    pub(crate) offline_backoff: (Duration, Duration),
    pub(crate) cleanup: crate::cleanup::CleanupSettings,
    pub(crate) ejection: crate::OutlierEjection,
    /// How long a recovered job waits for its server to answer before its prompt counts as
    /// lost (and the job runs again elsewhere).
    pub(crate) recovery_wait: Duration,
    /// How long finished jobs stay in the store (with a store).
    pub(crate) retain_for: Duration,
    /// How many finished jobs stay in the store at most (with a store).
    pub(crate) retain_count: u64,
    /// How often servers' capabilities are read again (besides online, restart and lack).
    pub(crate) capabilities_refresh: Option<Duration>,
    /// Whether capabilities are read and consulted at all.
    pub(crate) capability_routing: bool,
    /// Prompts each busy server is given beyond its `max_concurrent` (see `ahead`).
    pub(crate) queue_ahead: usize,
}

/// Counters of finished jobs.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) completed: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
}

/// The engine task's state.
pub(crate) struct Engine {
    pub(crate) shared: Arc<Shared>,
    pub(crate) commands: mpsc::WeakUnboundedSender<Command>,
    pub(crate) settings: Settings,
    pub(crate) servers: Vec<Server>,
    /// The last [`ServerKey`] given out.
    pub(crate) server_seq: ServerKey,
    pub(crate) queue: Box<dyn JobQueue>,
    pub(crate) jobs: FxHashMap<JobKey, Box<Job>>,
    pub(crate) timers: BTreeMap<(Instant, u64), Timer>,
    pub(crate) timer_seq: u64,
    pub(crate) constraints: HashMap<Constraint, Arc<Constraint>>,
    pub(crate) work: VecDeque<Work>,
    /// Writes every transition to the store, if the pool has one.
    pub(crate) persister: Option<crate::persist::Persister>,
    /// Recovered jobs waiting for their server (by id) to re-attach to their prompt there.
    pub(crate) resumes: HashMap<ServerId, Vec<JobKey>>,
    /// Which servers lack what workflows need.
    pub(crate) verdicts: crate::capability::Verdicts,
    /// The variant hashes behind the queue's routing keys of jobs of several variants.
    pub(crate) variant_sets: crate::variants::VariantSets,
    /// Failures judged once the server's capabilities are read again: rejections that name
    /// something the last read did not show missing.
    pub(crate) parked: Vec<(ServerId, JobKey, crate::AttemptFailure)>,
    pub(crate) ready_pending: Option<HashSet<ServerId>>,
    pub(crate) shutdown: Option<ShutdownMode>,
    pub(crate) shutdown_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    pub(crate) totals: Totals,
    /// The fleet this process belongs to, if any (see `takeover`, `mirror`).
    pub(crate) fleet: Option<crate::takeover::FleetState>,
    /// Prompts waiting in their servers' queues, and pulls in progress (queue-ahead).
    pub(crate) ahead: crate::ahead::Ahead,
}

impl Engine {
    pub(crate) fn new(
        shared: Arc<Shared>,
        commands: mpsc::WeakUnboundedSender<Command>,
        settings: Settings,
        queue: Box<dyn JobQueue>,
    ) -> Self {
        Self {
            shared,
            commands,
            settings,
            servers: Vec::new(),
            server_seq: 0,
            queue,
            jobs: FxHashMap::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            constraints: HashMap::new(),
            work: VecDeque::new(),
            persister: None,
            resumes: HashMap::new(),
            verdicts: crate::capability::Verdicts::default(),
            variant_sets: crate::variants::VariantSets::default(),
            parked: Vec::new(),
            ready_pending: Some(HashSet::new()),
            shutdown: None,
            shutdown_waiters: Vec::new(),
            totals: Totals::default(),
            fleet: None,
            ahead: crate::ahead::Ahead::default(),
        }
    }

    /// Runs until shut down (or until every handle on the pool is gone). With a store, it
    /// first takes up the store's unfinished jobs and remembered blocks.
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        if let Some(store) = self.shared.store.clone() {
            self.persister = Some(crate::persist::Persister::spawn(
                Arc::clone(&store),
                self.shared.events.clone(),
                self.fleet_tap(),
            ));
            self.recover(store.as_ref()).await;
            self.start_fleet();
            crate::recovery::spawn_purge(&store, &self.settings, self.commands.clone());
        }
        self.shared.recovered.send_replace(true);
        self.drain_work();
        self.flush_loads();
        self.check_ready();
        let sleep = tokio::time::sleep_until(Instant::now() + Duration::from_secs(86_400));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let next = self.next_wakeup();
            if next != armed {
                if let Some(at) = next {
                    sleep.as_mut().reset(at);
                }
                armed = next;
            }
            tokio::select! {
                command = rx.recv() => {
                    let Some(command) = command else {
                        self.leave_queue();
                        self.begin_shutdown(ShutdownMode::Cancel, None);
                        self.drain_work();
                        break;
                    };
                    self.handle(command);
                    // Take what else is waiting before looking at timers again.
                    while let Ok(command) = rx.try_recv() {
                        self.handle(command);
                        if self.is_done() {
                            break;
                        }
                    }
                }
                () = &mut sleep, if armed.is_some() => {
                    armed = None;
                    self.on_timers(Instant::now());
                    self.drain_work();
                }
            }
            self.flush_loads();
            if self.is_done() {
                break;
            }
        }
        if let Some(persister) = &self.persister {
            // Every job's end is durable and told before the shutdown returns.
            persister.flush().await;
        }
        self.leave_fleet().await;
        self.finish_shutdown();
        // Let the attempt tasks of a dropped pool report; nothing waits for them.
        rx.close();
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let timer = self.timers.keys().next().map(|(at, _)| *at);
        let strategy = self.shared.strategy.next_deadline();
        match (timer, strategy) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Enqueue(job) => self.on_enqueue(*job),
            Command::Cancel(key) => self.cancel_anywhere(key),
            Command::Fleet(input) => self.on_fleet(*input),
            Command::Run {
                key,
                attempt,
                event,
            } => self.on_run_event(key, attempt, event),
            Command::AttemptDone(done) => self.on_attempt_done(*done),
            Command::SlotFreed(server) => self.on_slot_freed(&server),
            Command::CleanupSettled(server) => self.on_cleanup_settled(&server),
            Command::PullRefused { key, attempt } => self.on_pull_refused(key, attempt),
            Command::Health {
                server,
                result,
                hinted,
            } => self.on_health(&server, result, hinted),
            Command::Capabilities { server, result } => self.on_capabilities(&server, result),
            Command::AddServer(config, reply) => {
                let _ = reply.send(self.add_server(*config));
            }
            Command::RemoveServer {
                server,
                drain,
                reply,
            } => {
                let _ = reply.send(self.remove_server(&server, drain));
            }
            Command::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Command::ResetBlocks(scope, reply) => {
                let strategy = &self.shared.strategy;
                let events = match scope {
                    crate::BlockReset::Pair(server, hash) => strategy.reset_pair(&server, &hash),
                    crate::BlockReset::Workflow(hash) => strategy.reset_workflow(&hash),
                    crate::BlockReset::Server(server) => strategy.reset_server(&server),
                    crate::BlockReset::All => strategy.reset_all(),
                };
                let ended = events
                    .iter()
                    .filter(|e| matches!(e, FailoverEvent::Unblocked { .. }))
                    .count();
                // Published, forgotten by the store, and the servers take the work again.
                self.publish_failover(&events);
                let _ = reply.send(ended);
            }
            Command::Fit {
                hash,
                requirements,
                reply,
            } => {
                let _ = reply.send(self.fit(hash, &requirements));
            }
            Command::Shutdown(mode, reply) => {
                self.leave_queue();
                self.begin_shutdown(mode, Some(reply));
            }
        }
        self.drain_work();
    }

    /// Does what the last command set in motion, until nothing follows.
    fn drain_work(&mut self) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Fill(server) => self.fill_server(&server),
                Work::Recheck(hash) => self.recheck_blocked_hash(&hash),
            }
        }
    }

    /// Changes a live job's record, emits the events that go with the change, and persists
    /// it (with a store).
    pub(crate) fn transition(
        &self,
        key: JobKey,
        transition: &Transition,
        events: Vec<JobEventKind>,
    ) {
        let _ = self.transition_with(key, transition, events, false);
    }

    /// [`transition`](Self::transition), and with a store the receiver that resolves once the
    /// change is durable (write-ahead).
    pub(crate) fn transition_with(
        &self,
        key: JobKey,
        transition: &Transition,
        events: Vec<JobEventKind>,
        durable: bool,
    ) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let job = self.jobs.get(&key)?;
        let persister = self.persister.as_ref();
        let record =
            job.cell
                .transition(transition, events, &self.shared.events, persister.is_some())?;
        let persister = persister?;
        let (tx, rx) = if durable {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        persister.write(crate::persist::Write::Update {
            cell: Arc::clone(&job.cell),
            record: Box::new(record),
            transition: transition.clone(),
            durable: tx,
        });
        rx
    }

    /// Sets a timer of a live job or a server.
    pub(crate) fn add_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        self.timers.insert(key, timer);
        let job = match timer {
            Timer::Retry(job)
            | Timer::StartDeadline(job)
            | Timer::TotalDeadline(job)
            | Timer::ResumeDeadline(job) => job,
            Timer::EjectionEnds(_) | Timer::CapsRefresh(_) | Timer::PullCheck(_) => return,
        };
        if let Some(job) = self.jobs.get_mut(&job) {
            job.timers.retain(|k| self.timers.contains_key(k));
            job.timers.push(key);
        }
    }

    fn on_timers(&mut self, now: Instant) {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timer = entry.remove();
            self.on_timer(timer);
        }
        if self
            .shared
            .strategy
            .next_deadline()
            .is_some_and(|at| at <= now)
        {
            let events = self.shared.strategy.poll_events(now);
            self.publish_failover(&events);
        }
    }

    /// Publishes strategy events and schedules what they allow: an unblocked pair may take
    /// queued work, a newly blocked hash may now be blocked everywhere. Publishing comes
    /// first, so that `Unblocked` / `Probing` precede the `Started` of the probe they allow.
    pub(crate) fn publish_failover(&mut self, events: &[FailoverEvent]) {
        for event in events {
            let change = WorkflowEvent::from_failover(event);
            self.tell_fleet_block(event, &change);
            let _ = self.shared.events.send(PoolEvent::Workflow(change));
            self.persist_block(event);
            match event {
                FailoverEvent::Unblocked { server, .. } => {
                    self.work.push_back(Work::Fill(server.clone()));
                }
                FailoverEvent::Blocked { hash, .. } => {
                    let work = Work::Recheck(*hash);
                    if !self.work.contains(&work) {
                        self.work.push_back(work);
                    }
                }
                _ => {}
            }
        }
    }

    /// Writes a block (or its end) through to the store, so a restarted pool honours it.
    fn persist_block(&self, event: &FailoverEvent) {
        let Some(persister) = &self.persister else {
            return;
        };
        match event {
            FailoverEvent::Blocked {
                server,
                hash,
                class,
                failures,
                blocked_count,
                until,
            } => {
                let block = crate::StoredBlock {
                    server: server.clone(),
                    hash: *hash,
                    failures: *failures,
                    blocked_count: *blocked_count,
                    class: *class,
                    until: Some(Timestamp::of_instant(*until)),
                    updated_at: Timestamp::now(),
                };
                persister.write(crate::persist::Write::Block(Box::new(block)));
            }
            FailoverEvent::Unblocked { server, hash, .. } => {
                persister.write(crate::persist::Write::Unblock(server.clone(), *hash));
            }
            _ => {}
        }
    }

    pub(crate) fn publish(&self, event: PoolEvent) {
        let _ = self.shared.events.send(event);
    }

    /// A server-state event, stamped now.
    pub(crate) fn publish_server(
        &self,
        server: &ServerId,
        state: crate::ServerState,
        last_error: Option<String>,
    ) {
        self.publish(PoolEvent::Server {
            server: server.clone(),
            state,
            last_error,
            at: Timestamp::now(),
        });
    }

    /// Interns a constraint so that equal constraints share one allocation.
    pub(crate) fn intern(&mut self, constraint: Constraint) -> Arc<Constraint> {
        if let Some(existing) = self.constraints.get(&constraint) {
            return Arc::clone(existing);
        }
        if self.constraints.len() > 4096 {
            self.constraints.retain(|_, arc| Arc::strong_count(arc) > 1);
        }
        let arc = Arc::new(constraint.clone());
        self.constraints.insert(constraint, Arc::clone(&arc));
        arc
    }

    pub(crate) fn check_ready(&mut self) {
        if self.ready_pending.as_ref().is_some_and(HashSet::is_empty) {
            self.ready_pending = None;
            let online = self.servers.iter().filter(|s| s.is_online()).count();
            self.publish(PoolEvent::Ready {
                online,
                total: self.servers.len(),
                at: Timestamp::now(),
            });
            self.shared.ready.send_replace(true);
        }
    }
}
