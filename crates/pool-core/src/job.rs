//! A job as the pool holds it: the [`JobCell`] shared by the engine and every handle (the
//! record, the one place the job's truth lives, and its event stream), and the engine's own
//! bookkeeping for a live job ([`Job`]).

use std::sync::Arc;

use parking_lot::Mutex;
use pool_failover::ServerId;
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::time::Instant;

use crate::engine::StopReason;
use crate::relay::Relay;
use crate::stream::{EventLog, JobEvents};
use crate::{
    Constraint, Error, JobEvent, JobEventKind, JobId, JobKey, JobOutput, JobRecord, JobSpec,
    PoolEvent, RunEvent, Timestamp, Transition,
};

/// The shared state of one job. Only the engine writes it, one [`Transition`] at a time,
/// emitting the events that go with it under the same lock, so a reader never sees a record
/// and a stream that disagree.
#[derive(Debug)]
pub(crate) struct JobCell {
    pub(crate) id: JobId,
    pub(crate) key: JobKey,
    inner: Mutex<Inner>,
    done: Notify,
}

#[derive(Debug)]
struct Inner {
    record: JobRecord,
    log: EventLog,
    /// The pool detached from the job (it goes on under the next pool on its store).
    detached: bool,
    /// The job's end waiting for the store (its terminal events, numbered): not given out
    /// yet while not empty.
    pending: Vec<JobEvent>,
    /// With a fleet, for a job taken up from the store: its events told to the others.
    relay: Option<Relay>,
}

impl JobCell {
    pub(crate) fn new(key: JobKey, record: JobRecord) -> Self {
        Self {
            id: record.id.clone(),
            key,
            inner: Mutex::new(Inner {
                log: EventLog::default(),
                record,
                detached: false,
                pending: Vec::new(),
                relay: None,
            }),
            done: Notify::new(),
        }
    }

    /// A copy of the record.
    pub(crate) fn record(&self) -> JobRecord {
        self.inner.lock().record.clone()
    }

    /// Reads the record in place.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&JobRecord) -> R) -> R {
        f(&self.inner.lock().record)
    }

    /// Applies `transition` and emits `events` (in order) to the job's stream and the
    /// pool's channel; returns the record after it (for the store) when `snapshot` is asked,
    /// or `None` if the transition changed nothing. A terminal transition ends the stream and
    /// wakes the waiters.
    pub(crate) fn transition(
        &self,
        transition: &Transition,
        events: Vec<JobEventKind>,
        pool: &broadcast::Sender<PoolEvent>,
        snapshot: bool,
    ) -> Option<JobRecord> {
        let mut inner = self.inner.lock();
        if !inner.record.apply(transition, Timestamp::now()) {
            return None;
        }
        for kind in events {
            Self::publish(&mut inner, &self.id, kind, pool);
        }
        let record = snapshot.then(|| inner.record.clone());
        if inner.record.state.is_terminal() {
            inner.log.close();
            drop(inner);
            self.done.notify_waiters();
        }
        record
    }

    /// Applies a terminal transition whose events wait for the store: readers see the final
    /// state, but the outcome is not given out (nor the terminal events sent) until
    /// [`publish_terminal`](Self::publish_terminal). The events are numbered now, so the
    /// record stored is the final one. Returns it.
    pub(crate) fn settle_terminal(
        &self,
        transition: &Transition,
        events: Vec<JobEventKind>,
    ) -> Option<JobRecord> {
        let mut inner = self.inner.lock();
        if !inner.record.apply(transition, Timestamp::now()) {
            return None;
        }
        for kind in events {
            let event = Self::number(&mut inner, &self.id, kind);
            inner.pending.push(event);
        }
        Some(inner.record.clone())
    }

    /// The job's end is durable: its terminal events go out, its waiters wake.
    pub(crate) fn publish_terminal(&self, pool: &broadcast::Sender<PoolEvent>) {
        let mut inner = self.inner.lock();
        for event in std::mem::take(&mut inner.pending) {
            to_pool(pool, &event);
            inner.log.push(event, true);
        }
        inner.log.close();
        drop(inner);
        self.done.notify_waiters();
    }

    /// Announces the job's acceptance to the pool's subscribers: its `Queued`, event 1,
    /// stamped with the record's creation. The record counts it from its creation (another
    /// process taking the job up numbers on from it), and the job's own subscribers get it
    /// rebuilt from the record (see `view`).
    pub(crate) fn announce(&self, pool: &broadcast::Sender<PoolEvent>) {
        let inner = self.inner.lock();
        if inner.record.last_seq != 1 || inner.record.state.is_terminal() || inner.detached {
            return;
        }
        to_pool(pool, &acceptance(&inner.record));
    }

    /// Emits one event that changes nothing in the record (what a running prompt reports).
    pub(crate) fn emit(&self, kind: JobEventKind, pool: &broadcast::Sender<PoolEvent>) {
        let mut inner = self.inner.lock();
        if inner.record.state.is_terminal() || inner.detached {
            return;
        }
        Self::publish(&mut inner, &self.id, kind, pool);
    }

    fn publish(
        inner: &mut Inner,
        id: &JobId,
        kind: JobEventKind,
        pool: &broadcast::Sender<PoolEvent>,
    ) {
        let event = Self::number(inner, id, kind);
        if let Some(relay) = &mut inner.relay {
            relay.pass(&event);
        }
        to_pool(pool, &event);
        inner.log.push(event, true);
    }

    /// From now on the job's events are told to the other processes of the fleet (see
    /// `relay`).
    pub(crate) fn relay_to(&self, relay: Relay) {
        self.inner.lock().relay = Some(relay);
    }

    /// An event of this job told by the process that runs it: added to the stream under its
    /// own `seq` if it is newer than every event here and the copy has not ended.
    pub(crate) fn relayed(&self, event: JobEvent, pool: &broadcast::Sender<PoolEvent>) {
        let mut inner = self.inner.lock();
        let closed = inner.record.state.is_terminal() || inner.detached;
        if closed || event.kind.is_terminal() || event.seq <= inner.record.last_seq {
            return;
        }
        inner.record.last_seq = event.seq;
        to_pool(pool, &event);
        inner.log.push(event, true);
    }

    /// Gives an event its `seq` (the record's next: the acceptance is event 1 from the
    /// record's creation, see [`announce`](Self::announce)) and the time.
    fn number(inner: &mut Inner, id: &JobId, kind: JobEventKind) -> JobEvent {
        let seq = inner.record.last_seq + 1;
        inner.record.last_seq = seq;
        JobEvent::new(id.clone(), seq, Timestamp::now(), kind)
    }

    /// The job was never accepted (the store refused it, or the pool stopped): it ends with
    /// `error` for whoever holds it already.
    pub(crate) fn refuse(&self, error: Error, pool: &broadcast::Sender<PoolEvent>) {
        let terminal = JobEventKind::Failed {
            error: error.clone(),
            will_retry: false,
        };
        self.transition(
            &Transition::Finished {
                outcome: Err(error),
            },
            vec![terminal],
            pool,
            false,
        );
    }

    /// The pool let go of the job without ending it: its stream ends, its waiters learn it.
    pub(crate) fn detach(&self) {
        let mut inner = self.inner.lock();
        if inner.record.state.is_terminal() {
            return;
        }
        inner.detached = true;
        inner.log.close();
        drop(inner);
        self.done.notify_waiters();
    }

    /// The job ended elsewhere (another pool process ran it): the stored `record`, terminal,
    /// replaces this copy, and its terminal event goes out. A copy that ended already keeps
    /// its end, unless that end waits for the store (the store refused it: the stored one
    /// wins).
    pub(crate) fn end_as(&self, record: JobRecord, pool: &broadcast::Sender<PoolEvent>) {
        let Some(outcome) = record.outcome() else {
            return;
        };
        let mut inner = self.inner.lock();
        if inner.record.state.is_terminal() && inner.pending.is_empty() {
            return;
        }
        inner.pending.clear();
        // The end takes the number the stored end has (the process that ended the job
        // numbered it last), so the numbers agree at every process; unless this copy has
        // numbered past it.
        let here = inner.record.last_seq;
        let last_seq = if record.last_seq > here {
            record.last_seq - 1
        } else {
            here
        };
        inner.record = record;
        inner.record.last_seq = last_seq;
        inner.detached = false;
        let kind = match outcome {
            Ok(output) => JobEventKind::Completed { output },
            Err(Error::Cancelled) => JobEventKind::Cancelled,
            Err(error) => JobEventKind::Failed {
                error,
                will_retry: false,
            },
        };
        Self::publish(&mut inner, &self.id, kind, pool);
        inner.log.close();
        drop(inner);
        self.done.notify_waiters();
    }

    /// The job's outcome once it ended (or [`Error::Detached`]).
    pub(crate) fn outcome(&self) -> Option<crate::Result<Arc<JobOutput>>> {
        let inner = self.inner.lock();
        if !inner.pending.is_empty() {
            return None;
        }
        inner
            .record
            .outcome()
            .or_else(|| inner.detached.then_some(Err(Error::Detached)))
    }

    /// Waits for the job's outcome.
    pub(crate) async fn wait(&self) -> crate::Result<Arc<JobOutput>> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            notified.await;
        }
    }

    /// The job's events after `after` (0: all that are kept), then live ones.
    pub(crate) fn subscribe(&self, after: u64) -> JobEvents {
        let mut inner = self.inner.lock();
        let (first, last, closed) = Self::view(&inner);
        inner.log.subscribe(&self.id, first, after, last, closed)
    }

    /// Whether someone reads the job's event stream.
    pub(crate) fn watched(&self) -> bool {
        self.inner.lock().log.watched()
    }

    /// The events that say where the job stands now, then live ones.
    pub(crate) fn subscribe_current(&self) -> JobEvents {
        let mut inner = self.inner.lock();
        let (first, _, closed) = Self::view(&inner);
        inner.log.subscribe_current(&self.id, first, closed)
    }

    /// The first event (rebuilt from the record), the last `seq`, and whether the stream
    /// has ended.
    fn view(inner: &Inner) -> (Option<JobEvent>, u64, bool) {
        let record = &inner.record;
        let first = (record.last_seq >= 1).then(|| acceptance(record));
        let closed = (record.state.is_terminal() && inner.pending.is_empty()) || inner.detached;
        (first, record.last_seq, closed)
    }
}

/// A job's first event, its acceptance (`Queued`, event 1, at the record's creation), as the
/// record holds it.
fn acceptance(record: &JobRecord) -> JobEvent {
    let priority = record.priority();
    JobEvent::new(
        record.id.clone(),
        1,
        record.created_at,
        JobEventKind::Queued { priority },
    )
}

/// Sends a copy of a job's event to the pool's subscribers, if there are any (without
/// them, the copy would be made only to be dropped).
fn to_pool(pool: &broadcast::Sender<PoolEvent>, event: &JobEvent) {
    if pool.receiver_count() > 0 {
        let _ = pool.send(PoolEvent::Job(for_pool(event.clone())));
    }
}

/// The pool-wide copy of a job event: previews without their bytes (the job's own stream has
/// them), so the pool's channel never holds images.
pub(crate) fn for_pool(mut event: JobEvent) -> JobEvent {
    if let JobEventKind::Run(RunEvent::Preview { image, .. }) = &mut event.kind {
        *image = bytes::Bytes::new();
    }
    event
}

/// A live job, as the engine keeps it besides its cell: what scheduling needs at hand, and
/// the handles of the running attempt and the job's timers.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) cell: Arc<JobCell>,
    /// The cell's spec (fixed at acceptance), at hand without the lock.
    pub(crate) spec: Arc<JobSpec>,
    /// Per variant, whether it has inputs to auto-seed.
    pub(crate) seeded: Vec<bool>,
    /// The key the queue holds it under ([`route_key`](crate::variants::route_key)).
    pub(crate) route: workflow_hash::WorkflowHash,
    /// The variant of its running (or last) attempt.
    pub(crate) variant: usize,
    pub(crate) constraint: Arc<Constraint>,
    pub(crate) enqueued_at: Instant,
    pub(crate) first_dispatch: Option<Instant>,
    /// When the running attempt was dispatched.
    pub(crate) attempt_started: Instant,
    /// Servers a retry moves away from.
    pub(crate) avoid: Vec<ServerId>,
    /// Stops the running attempt; taken by the first stop request.
    pub(crate) stop: Option<oneshot::Sender<StopReason>>,
    /// Keys of this job's timers, removed when it ends so memory stays bounded.
    pub(crate) timers: Vec<(Instant, u64)>,
}

impl Job {
    /// The hash of the variant its running (or last) attempt runs: failures and successes
    /// are recorded against it.
    pub(crate) fn ran_hash(&self) -> workflow_hash::WorkflowHash {
        self.spec
            .variant(self.variant)
            .map_or_else(|| self.spec.hash(), |v| v.hash)
    }

    /// The job's state, from its record.
    pub(crate) fn state(&self) -> crate::JobState {
        self.cell.read(|r| r.state)
    }

    /// The error the job must end with before anything else happens to it, if its record
    /// says so: it was cancelled, or one of its deadlines has run out.
    pub(crate) fn ended_by_record(&self, now: Instant) -> Option<Error> {
        use crate::DeadlineKind;
        let (cancelled, expired, executed) = self
            .cell
            .read(|r| (r.cancel_requested, r.deadline_expired, r.executed()));
        if cancelled {
            return Some(Error::Cancelled);
        }
        if let Some(kind) = expired {
            return Some(Error::DeadlineExceeded(kind));
        }
        let deadlines = self.spec.options.deadlines;
        let past =
            |limit: Option<std::time::Duration>| limit.is_some_and(|l| now >= self.enqueued_at + l);
        if past(deadlines.total) {
            Some(Error::DeadlineExceeded(DeadlineKind::Total))
        } else if !executed && past(deadlines.start) {
            Some(Error::DeadlineExceeded(DeadlineKind::Start))
        } else {
            None
        }
    }
}
