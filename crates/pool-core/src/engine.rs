//! The engine: one task that owns the queue, the servers' slots and every live job, so that
//! no free slot is ever given twice. Everything else talks to it through [`Command`]s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use pool_failover::{FailoverEvent, FailoverStrategy, ServerId};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::attempt::AttemptDone;
use crate::handle::JobShared;
use crate::registry::Registry;
use crate::servers::Server;
use crate::{
    AttemptError, AttemptFailure, AttemptRecord, Constraint, JobOptions, JobQueue, PoolEvent,
    PoolStats, Result, ServerConfig, ShutdownMode,
};

/// State shared by the engine and every `Pool` / `JobHandle`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) registry: Mutex<Registry>,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    pub(crate) strategy: Arc<dyn FailoverStrategy>,
    /// Turns true once every initial server answered its first health check.
    pub(crate) ready: tokio::sync::watch::Sender<bool>,
}

/// A job handed to the engine by `enqueue`.
#[derive(Debug)]
pub(crate) struct NewJob {
    pub(crate) shared: Arc<JobShared>,
    pub(crate) workflow: Arc<Value>,
    pub(crate) hash: WorkflowHash,
    pub(crate) seeded: bool,
    pub(crate) options: JobOptions,
    pub(crate) enqueued_at: Instant,
}

/// Why a running attempt is stopped. The job's own record (its cancel flag and deadline)
/// decides what happens next; the reason only says why the attempt was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The caller cancelled the job, or a cancelling shutdown did.
    Cancel,
    /// A deadline of the job ran out.
    Deadline(crate::DeadlineKind),
    /// The server left the pool: the job goes back to the queue.
    Withdraw,
    /// The server went offline: the attempt counts as a server-down failure.
    ServerOffline,
}

/// What the engine is told.
#[derive(Debug)]
pub(crate) enum Command {
    Enqueue(Box<NewJob>),
    Cancel(crate::JobKey),
    AttemptDone(Box<AttemptDone>),
    /// The running attempt's prompt started executing on its server.
    Executing {
        key: crate::JobKey,
        attempt: u32,
    },
    /// The first try of a server-side clean-up ended (the slot it held is free again).
    CleanupSettled(ServerId),
    Health {
        server: ServerId,
        result: std::result::Result<(), AttemptFailure>,
    },
    AddServer(Box<ServerConfig>, oneshot::Sender<Result<()>>),
    RemoveServer {
        server: ServerId,
        drain: bool,
        reply: oneshot::Sender<Result<()>>,
    },
    Stats(oneshot::Sender<PoolStats>),
    Shutdown(ShutdownMode, oneshot::Sender<()>),
}

/// Where a live job is.
#[derive(Debug)]
pub(crate) enum Phase {
    Queued,
    Backoff,
    Running {
        server: ServerId,
        /// The attempt number.
        attempt: u32,
        /// Stops the attempt; taken by the first stop request.
        stop: Option<oneshot::Sender<StopReason>>,
    },
}

/// A live job, as the engine keeps it.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) shared: Arc<JobShared>,
    pub(crate) workflow: Arc<Value>,
    pub(crate) hash: WorkflowHash,
    pub(crate) seeded: bool,
    pub(crate) options: JobOptions,
    pub(crate) constraint: Arc<Constraint>,
    pub(crate) enqueued_at: Instant,
    pub(crate) first_dispatch: Option<Instant>,
    pub(crate) attempts: Vec<AttemptRecord>,
    pub(crate) errors: Vec<AttemptError>,
    pub(crate) avoid: Vec<ServerId>,
    pub(crate) counted_attempts: u32,
    pub(crate) phase: Phase,
    /// The caller (or a cancelling shutdown) cancelled the job: whatever happens next, the
    /// job ends cancelled.
    pub(crate) cancel_requested: bool,
    /// A deadline of the job ran out while an attempt was running: the job ends with it.
    pub(crate) deadline_hit: Option<crate::DeadlineKind>,
    /// Some attempt's prompt started executing on a server (the start deadline is met).
    pub(crate) executed: bool,
    /// Keys of this job's timers, removed when it ends so memory stays bounded.
    pub(crate) timers: Vec<(Instant, u64)>,
}

impl Job {
    /// The error the job must end with before anything else happens to it, if its record
    /// says so: it was cancelled, or one of its deadlines has run out.
    pub(crate) fn ended_by_record(&self, now: Instant) -> Option<crate::Error> {
        use crate::{DeadlineKind, Error};
        if self.cancel_requested {
            return Some(Error::Cancelled);
        }
        if let Some(kind) = self.deadline_hit {
            return Some(Error::DeadlineExceeded(kind));
        }
        let deadlines = self.options.deadlines;
        let past = |limit: Option<Duration>| limit.is_some_and(|l| now >= self.enqueued_at + l);
        if past(deadlines.total) {
            Some(Error::DeadlineExceeded(DeadlineKind::Total))
        } else if !self.executed && past(deadlines.start) {
            Some(Error::DeadlineExceeded(DeadlineKind::Start))
        } else {
            None
        }
    }
}

/// Timers of live jobs; stale ones are ignored when they fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    Retry(crate::JobKey),
    StartDeadline(crate::JobKey),
    TotalDeadline(crate::JobKey),
    /// A server's outlier ejection ends (stale if it was ejected again meanwhile).
    EjectionEnds(ServerKey),
}

/// A server's slot in the engine's timers: its id's position-independent number.
pub(crate) type ServerKey = u64;

/// Settings of the engine that the builder decides.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) health_interval: Option<Duration>,
    pub(crate) offline_backoff: (Duration, Duration),
    pub(crate) cleanup: crate::cleanup::CleanupSettings,
    pub(crate) ejection: crate::OutlierEjection,
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
    pub(crate) jobs: HashMap<crate::JobKey, Box<Job>>,
    pub(crate) timers: BTreeMap<(Instant, u64), Timer>,
    pub(crate) timer_seq: u64,
    pub(crate) constraints: HashMap<Constraint, Arc<Constraint>>,
    pub(crate) ready_pending: Option<HashSet<ServerId>>,
    pub(crate) shutdown: Option<ShutdownMode>,
    pub(crate) shutdown_waiters: Vec<oneshot::Sender<()>>,
    pub(crate) totals: Totals,
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
            jobs: HashMap::new(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            constraints: HashMap::new(),
            ready_pending: Some(HashSet::new()),
            shutdown: None,
            shutdown_waiters: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// Runs until shut down (or until every handle on the pool is gone).
    pub(crate) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
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
                        self.begin_shutdown(ShutdownMode::Cancel, None);
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
                }
            }
            if self.is_done() {
                break;
            }
        }
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
            Command::Cancel(key) => self.on_cancel(key),
            Command::AttemptDone(done) => self.on_attempt_done(*done),
            Command::Executing { key, attempt } => self.on_executing(key, attempt),
            Command::CleanupSettled(server) => self.on_cleanup_settled(&server),
            Command::Health { server, result } => self.on_health(&server, result),
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
            Command::Shutdown(mode, reply) => self.begin_shutdown(mode, Some(reply)),
        }
    }

    /// Sets a timer of a live job.
    pub(crate) fn add_timer(&mut self, at: Instant, timer: Timer) {
        self.timer_seq += 1;
        let key = (at, self.timer_seq);
        self.timers.insert(key, timer);
        let job = match timer {
            Timer::Retry(job) | Timer::StartDeadline(job) | Timer::TotalDeadline(job) => job,
            Timer::EjectionEnds(_) => return,
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
            self.publish_failover(events);
        }
    }

    /// Publishes strategy events and acts on them: an unblocked pair may take queued work,
    /// a newly blocked hash may now be blocked everywhere.
    pub(crate) fn publish_failover(&mut self, events: Vec<FailoverEvent>) {
        self.announce(&events);
        self.act_on(events);
    }

    /// Sends strategy events to subscribers (before the dispatch they allow, so that
    /// `Unblocked` / `Probing` precede the probe's `Started`).
    pub(crate) fn announce(&self, events: &[FailoverEvent]) {
        for event in events {
            let _ = self.shared.events.send(PoolEvent::Workflow(event.clone()));
        }
    }

    /// Acts on announced strategy events.
    pub(crate) fn act_on(&mut self, events: Vec<FailoverEvent>) {
        let mut fill = Vec::new();
        let mut blocked = Vec::new();
        for event in events {
            match event {
                FailoverEvent::Unblocked { server, .. } => fill.push(server),
                FailoverEvent::Blocked { hash, .. } => blocked.push(hash),
                _ => {}
            }
        }
        for hash in blocked {
            self.recheck_blocked_hash(&hash);
        }
        for server in fill {
            self.fill_server(&server);
        }
    }

    pub(crate) fn publish(&self, event: PoolEvent) {
        let _ = self.shared.events.send(event);
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
            });
            self.shared.ready.send_replace(true);
        }
    }
}
