//! A job as the pool holds it: the [`JobCell`] shared by the engine and every handle (the
//! record, the one place the job's truth lives, and its event stream), and the engine's own
//! bookkeeping for a live job ([`Job`]).

use std::sync::Arc;

use parking_lot::Mutex;
use pool_failover::ServerId;
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::time::Instant;

use crate::engine::StopReason;
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
    /// pool's channel. A terminal transition ends the stream and wakes the waiters.
    pub(crate) fn transition(
        &self,
        transition: &Transition,
        events: Vec<JobEventKind>,
        pool: &broadcast::Sender<PoolEvent>,
    ) {
        let mut inner = self.inner.lock();
        if !inner.record.apply(transition, Timestamp::now()) {
            return;
        }
        for kind in events {
            Self::publish(&mut inner, &self.id, kind, pool);
        }
        if inner.record.state.is_terminal() {
            inner.log.close();
            drop(inner);
            self.done.notify_waiters();
        }
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
        let seq = inner.record.last_seq + 1;
        inner.record.last_seq = seq;
        // The first event is the acceptance, stamped with the record's creation and rebuilt
        // from the record when replayed (see `first_event`), so it is not kept in the log.
        let first = seq == 1 && matches!(kind, JobEventKind::Queued { .. });
        let at = if first {
            inner.record.created_at
        } else {
            Timestamp::now()
        };
        let event = JobEvent::new(id.clone(), seq, at, kind);
        let _ = pool.send(PoolEvent::Job(for_pool(event.clone())));
        inner.log.push(event, !first);
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

    /// The job's outcome once it ended (or [`Error::Detached`]).
    pub(crate) fn outcome(&self) -> Option<crate::Result<Arc<JobOutput>>> {
        let inner = self.inner.lock();
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
        let first = (record.last_seq >= 1).then(|| {
            JobEvent::new(
                record.id.clone(),
                1,
                record.created_at,
                JobEventKind::Queued {
                    priority: record.priority(),
                },
            )
        });
        let closed = record.state.is_terminal() || inner.detached;
        (first, record.last_seq, closed)
    }
}

/// The pool-wide copy of a job event: previews without their bytes (the job's own stream has
/// them), so the pool's channel never holds images.
fn for_pool(mut event: JobEvent) -> JobEvent {
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
    pub(crate) seeded: bool,
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
