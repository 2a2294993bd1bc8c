//! Job event streams: the bounded log each job keeps for late and resuming subscribers, and
//! the bounded buffer of each subscriber ([`JobEvents`]), with an explicit lag signal.
//!
//! Nothing here ever waits for a reader. A full buffer makes room: progress events and
//! previews go first, then the oldest events; the reader then gets one
//! [`JobEventKind::Lagged`] before the next event. The terminal event is never dropped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::Stream;
use parking_lot::Mutex;

use crate::{JobEvent, JobEventKind, JobId, Timestamp};

/// How many events, and how many bytes of them, one subscriber may have unread.
const SUBSCRIBER_EVENTS: usize = 1024;
const SUBSCRIBER_BYTES: usize = 8 << 20;
/// How many events, and how many bytes of them, a job keeps for late subscribers.
const LOG_EVENTS: usize = 512;
const LOG_BYTES: usize = 4 << 20;

/// The room a log makes at its first event (the events of a short run: a 3-node prompt has
/// 9 after its acceptance).
const FIRST_ROOM: usize = 16;

/// A bounded queue of events that makes room by dropping expendable events first.
#[derive(Debug, Default)]
struct Bounded {
    events: VecDeque<JobEvent>,
    bytes: usize,
}

impl Bounded {
    /// Adds `event`, dropping events beyond the limits; returns the seq of the first event
    /// dropped and how many were.
    fn push(&mut self, event: JobEvent, max_events: usize, max_bytes: usize) -> (Option<u64>, u64) {
        let mut first = None;
        let mut dropped = 0;
        let weight = event.kind.weight();
        while !self.events.is_empty()
            && (self.events.len() >= max_events || self.bytes + weight > max_bytes)
        {
            if event.kind.is_expendable() {
                return (Some(event.seq), 1);
            }
            let victim = self
                .events
                .iter()
                .position(|e| e.kind.is_expendable())
                .unwrap_or(0);
            if let Some(old) = self.events.remove(victim) {
                self.bytes -= old.kind.weight();
                first = Some(first.map_or(old.seq, |f: u64| f.min(old.seq)));
                dropped += 1;
            }
        }
        self.bytes += weight;
        if self.events.len() == self.events.capacity() {
            // Room for the few events of a run at once, then doubling (a job's log starts
            // with its first stored event: its dispatch).
            let more = self.events.len().max(FIRST_ROOM);
            self.events.reserve_exact(more);
        }
        self.events.push_back(event);
        (first, dropped)
    }

    fn pop(&mut self) -> Option<JobEvent> {
        let event = self.events.pop_front()?;
        self.bytes -= event.kind.weight();
        Some(event)
    }
}

#[derive(Debug, Default)]
struct Buffer {
    queue: Bounded,
    missed: u64,
    missed_from: u64,
    closed: bool,
    reader_gone: bool,
    waker: Option<Waker>,
}

/// The writer's side of one subscriber.
#[derive(Debug, Default)]
struct Feed(Arc<Mutex<Buffer>>);

impl Feed {
    /// Delivers an event; `false` once the reader is gone.
    fn send(&self, event: JobEvent) -> bool {
        let mut buf = self.0.lock();
        if buf.reader_gone {
            return false;
        }
        let (first, dropped) = buf.queue.push(event, SUBSCRIBER_EVENTS, SUBSCRIBER_BYTES);
        if let Some(first) = first {
            if buf.missed == 0 || first < buf.missed_from {
                buf.missed_from = first;
            }
            buf.missed += dropped;
        }
        if let Some(waker) = buf.waker.take() {
            waker.wake();
        }
        true
    }

    /// Marks a gap in a replay, in place: `missed` events from `from` on are not kept.
    fn gap(&self, job: &JobId, from: u64, missed: u64) {
        let lag = JobEvent::new(
            job.clone(),
            from,
            Timestamp::now(),
            JobEventKind::Lagged { missed },
        );
        self.send(lag);
    }

    fn close(&self) {
        let mut buf = self.0.lock();
        buf.closed = true;
        if let Some(waker) = buf.waker.take() {
            waker.wake();
        }
    }
}

/// The event stream of one job ([`JobHandle::events`](crate::JobHandle::events)); also a
/// [`Stream`]. Ends after the job's terminal event.
///
/// Unread events are buffered up to 1,024 events or 8 MiB of previews; beyond that progress
/// events and previews are dropped first and the next read returns a
/// [`JobEventKind::Lagged`] saying how many events were missed (the terminal event is never
/// dropped). Every other event carries the job's `seq`, so gaps are visible too.
#[derive(Debug)]
pub struct JobEvents {
    job: JobId,
    buf: Arc<Mutex<Buffer>>,
}

impl JobEvents {
    /// The next event; `None` after the terminal event (or once the pool detached from the
    /// job).
    pub async fn recv(&mut self) -> Option<JobEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        let mut buf = self.buf.lock();
        if buf.missed > 0 {
            let missed = std::mem::take(&mut buf.missed);
            let event = JobEvent::new(
                self.job.clone(),
                buf.missed_from,
                Timestamp::now(),
                JobEventKind::Lagged { missed },
            );
            return Poll::Ready(Some(event));
        }
        if let Some(event) = buf.queue.pop() {
            return Poll::Ready(Some(event));
        }
        if buf.closed {
            return Poll::Ready(None);
        }
        buf.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Stream for JobEvents {
    type Item = JobEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        self.poll_recv(cx)
    }
}

impl Drop for JobEvents {
    fn drop(&mut self) {
        let mut buf = self.buf.lock();
        buf.reader_gone = true;
        buf.queue = Bounded::default();
    }
}

/// The stream of one job as the pool keeps it: its recent events (for late and resuming
/// subscribers) and its live subscribers. The job's first event, its acceptance (`Queued`,
/// `seq` 1, at the record's creation), is not stored: it is rebuilt from the record, so a
/// job that waits in the queue with nobody watching costs no log at all.
#[derive(Debug, Default)]
pub(crate) struct EventLog(Option<Box<LogState>>);

#[derive(Debug, Default)]
struct LogState {
    recent: Bounded,
    subscribers: Vec<Feed>,
}

impl EventLog {
    /// Delivers an event to the live subscribers and, with `keep`, to the recent log.
    pub(crate) fn push(&mut self, event: JobEvent, keep: bool) {
        if let Some(state) = &mut self.0 {
            state.subscribers.retain(|feed| feed.send(event.clone()));
        }
        if keep {
            let state = self.0.get_or_insert_with(Box::default);
            state.recent.push(event, LOG_EVENTS, LOG_BYTES);
        }
    }

    /// Whether a live subscriber (one whose reader is still there) follows the stream.
    pub(crate) fn watched(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|s| s.subscribers.iter().any(|feed| !feed.0.lock().reader_gone))
    }

    /// Ends the stream (after the terminal event, or when the pool detaches): subscribers
    /// finish reading, and only the state changes are kept for later ones.
    pub(crate) fn close(&mut self) {
        let Some(state) = &mut self.0 else {
            return;
        };
        for feed in state.subscribers.drain(..) {
            feed.close();
        }
        let recent = &mut state.recent;
        recent.events.retain(|e| !e.kind.is_expendable());
        recent.events.shrink_to_fit();
        recent.bytes = recent.events.iter().map(|e| e.kind.weight()).sum();
    }

    /// The job's events as far as they are known: `first` (rebuilt from the record) and the
    /// recent ones.
    fn known(&self, first: Option<JobEvent>) -> Vec<JobEvent> {
        let recent = self.0.iter().flat_map(|s| s.recent.events.iter().cloned());
        first.into_iter().chain(recent).collect()
    }

    /// A subscriber that first gets the events that say where the job stands now (its
    /// terminal event once it ended; the `Started` of the running attempt and its
    /// `Accepted` / `Executing`; or its `Queued`), then the live ones.
    pub(crate) fn subscribe_current(
        &mut self,
        job: &JobId,
        first: Option<JobEvent>,
        closed: bool,
    ) -> JobEvents {
        let events = self.known(first);
        let from = if closed {
            events.len().saturating_sub(1)
        } else {
            events
                .iter()
                .rposition(|e| matches!(e.kind, JobEventKind::Started { .. }))
                .or_else(|| {
                    events
                        .iter()
                        .position(|e| matches!(e.kind, JobEventKind::Queued { .. }))
                })
                .unwrap_or(events.len())
        };
        let replay = events.into_iter().skip(from).enumerate().filter(|(i, e)| {
            *i == 0
                || matches!(
                    e.kind,
                    JobEventKind::Run(
                        crate::RunEvent::Accepted { .. } | crate::RunEvent::Executing
                    )
                )
        });
        let feed = Feed::default();
        for (_, event) in replay {
            feed.send(event);
        }
        self.attach(job, feed, closed)
    }

    /// A subscriber that first gets the known events after `after` (0: from the start), then
    /// the live ones. Events no longer kept are reported as lags in place.
    pub(crate) fn subscribe(
        &mut self,
        job: &JobId,
        first: Option<JobEvent>,
        after: u64,
        last_seq: u64,
        closed: bool,
    ) -> JobEvents {
        let feed = Feed::default();
        let mut expected = after + 1;
        for event in self.known(first).into_iter().filter(|e| e.seq > after) {
            if event.seq > expected {
                feed.gap(job, expected, event.seq - expected);
            }
            expected = event.seq + 1;
            feed.send(event);
        }
        if expected <= last_seq {
            feed.gap(job, expected, last_seq + 1 - expected);
        }
        self.attach(job, feed, closed)
    }

    fn attach(&mut self, job: &JobId, feed: Feed, closed: bool) -> JobEvents {
        let buf = Arc::clone(&feed.0);
        if closed {
            feed.close();
        } else {
            self.0
                .get_or_insert_with(Box::default)
                .subscribers
                .push(feed);
        }
        JobEvents {
            job: job.clone(),
            buf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunEvent;

    fn progress(value: u64) -> JobEventKind {
        JobEventKind::Run(RunEvent::Progress {
            node: None,
            value,
            max: 10,
        })
    }

    fn drain(events: &mut JobEvents) -> Vec<(u64, String)> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(e)) = events.poll_recv(&mut cx) {
            let name = match e.kind {
                JobEventKind::Lagged { missed } => format!("lagged {missed}"),
                JobEventKind::Run(_) => "progress".to_owned(),
                other => format!("{other:?}"),
            };
            out.push((e.seq, name));
        }
        out
    }

    /// A job's stream as its cell keeps it: `seq` from 1, the first event not stored.
    struct Job {
        id: JobId,
        log: EventLog,
        last: u64,
        closed: bool,
    }

    impl Job {
        fn new() -> Self {
            Self {
                id: JobId::from("j"),
                log: EventLog::default(),
                last: 0,
                closed: false,
            }
        }
        fn first(&self) -> Option<JobEvent> {
            (self.last >= 1).then(|| {
                JobEvent::new(
                    self.id.clone(),
                    1,
                    Timestamp::EPOCH,
                    JobEventKind::Queued { priority: 0 },
                )
            })
        }
        fn emit(&mut self, kind: JobEventKind) {
            self.last += 1;
            let event = JobEvent::new(self.id.clone(), self.last, Timestamp::EPOCH, kind);
            self.log.push(event, self.last > 1);
        }
        fn close(&mut self) {
            self.closed = true;
            self.log.close();
        }
        fn subscribe(&mut self, after: u64) -> JobEvents {
            let first = self.first();
            self.log
                .subscribe(&self.id, first, after, self.last, self.closed)
        }
    }

    #[test]
    fn a_log_makes_room_for_sixteen_events_then_doubles() {
        let mut log = Bounded::default();
        let mut capacities = Vec::new();
        for seq in 1..=18 {
            let event = JobEvent::new(JobId::from("j"), seq, Timestamp::EPOCH, progress(seq));
            log.push(event, LOG_EVENTS, LOG_BYTES);
            capacities.push(log.events.capacity());
        }
        assert_eq!(capacities[..16], [16; 16]);
        assert_eq!(capacities[16..], [32, 32]);
    }

    #[test]
    fn a_queued_job_with_nobody_watching_keeps_no_log() {
        let mut job = Job::new();
        job.emit(JobEventKind::Queued { priority: 0 });
        assert!(job.log.0.is_none());
        assert_eq!(
            drain(&mut job.subscribe(0)).len(),
            1,
            "rebuilt from the record"
        );
    }

    #[test]
    fn a_slow_subscriber_loses_progress_first_and_is_told_so() {
        let mut job = Job::new();
        let mut sub = job.subscribe(0);
        job.emit(JobEventKind::Queued { priority: 0 });
        for i in 0..(SUBSCRIBER_EVENTS as u64 + 10) {
            job.emit(progress(i));
        }
        job.emit(JobEventKind::Cancelled);
        job.close();
        let got = drain(&mut sub);
        // The newest progress events are dropped first, then the terminal event evicts the
        // oldest progress event to get in.
        assert_eq!(got[0], (2, "lagged 12".to_owned()), "{:?}", &got[..3]);
        assert_eq!(got[1], (1, "Queued { priority: 0 }".to_owned()));
        assert_eq!(got.last().map(|e| e.1.as_str()), Some("Cancelled"));
        assert_eq!(got.len(), SUBSCRIBER_EVENTS + 1);
    }

    #[test]
    fn late_subscribers_replay_what_is_kept_and_resume_after_a_seq() {
        let mut job = Job::new();
        job.emit(JobEventKind::Queued { priority: 0 });
        for i in 0..3 {
            job.emit(progress(i));
        }
        let mut from_start = job.subscribe(0);
        let mut resumed = job.subscribe(3);
        job.emit(JobEventKind::Cancelled);
        job.close();
        let seqs = |v: Vec<(u64, String)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(seqs(drain(&mut from_start)), [1, 2, 3, 4, 5]);
        assert_eq!(seqs(drain(&mut resumed)), [4, 5]);
        // After the end, only the state changes are kept, in no more room than they take
        // (a finished job stays in memory for a while).
        let kept = &job.log.0.as_ref().map(|s| &s.recent.events);
        assert_eq!(kept.map(|e| (e.len(), e.capacity())), Some((1, 1)));
        let mut late = job.subscribe(0);
        assert_eq!(
            drain(&mut late),
            [
                (1, "Queued { priority: 0 }".to_owned()),
                (2, "lagged 3".to_owned()),
                (5, "Cancelled".to_owned())
            ]
        );
    }
}
