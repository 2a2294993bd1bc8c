//! [`EventSink`] and [`EventSource`]: the run events of one attempt, from its backend to the
//! attempt's task.
//!
//! One queue under a lock, with the reader's waker beside it: an attempt's few events pass
//! through a queue that stays a handful long, and a new attempt allocates nothing until its
//! first event (a general-purpose channel allocates a block of 32 events up front, over 4 KB
//! per attempt).

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::RunEvent;

/// Unread events of one attempt beyond which expendable ones are dropped.
const SINK_BACKLOG: usize = 4096;

/// Where a backend sends the [`RunEvent`]s of one attempt. Sending never blocks; events
/// sent after the attempt ended are dropped, and so are progress events and previews while
/// the pool has more than a few thousand of this attempt's events still to read (a flooding
/// server cannot grow the pool's memory through it).
#[derive(Debug)]
pub struct EventSink {
    queue: Arc<Mutex<Queue>>,
    done: Arc<Notify>,
}

/// The receiving side of an [`EventSink`].
#[derive(Debug)]
pub struct EventSource {
    queue: Arc<Mutex<Queue>>,
    done: Arc<Notify>,
}

/// What the sinks and the source of one attempt share.
#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<RunEvent>,
    /// The source's task, waiting for an event.
    waker: Option<Waker>,
    /// Sinks alive: the stream ends once none is and every event was read.
    sinks: usize,
    /// The source is gone: events are dropped as they come.
    closed: bool,
}

impl Queue {
    /// Wakes the waiting source, outside the lock.
    fn wake(mut guard: parking_lot::MutexGuard<'_, Self>) {
        let waker = guard.waker.take();
        drop(guard);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl EventSink {
    /// A sink and the receiver of what is sent to it (for tests of a backend).
    pub fn channel() -> (Self, EventSource) {
        let queue = Arc::new(Mutex::new(Queue {
            sinks: 1,
            ..Queue::default()
        }));
        let done = Arc::new(Notify::new());
        (
            Self {
                queue: Arc::clone(&queue),
                done: Arc::clone(&done),
            },
            EventSource { queue, done },
        )
    }

    /// Tells the pool that the server is done executing the attempt's prompt (ComfyUI's
    /// `execution_success`) while the backend still wraps up (reads outputs, reports): the
    /// server's slot takes its next prompt at once, so the server does not idle for the
    /// rest of this attempt. Call it only once the server executes nothing more of the
    /// prompt; the attempt's result still decides the job.
    pub fn prompt_done(&self) {
        self.done.notify_one();
    }

    /// Reports one event.
    pub fn emit(&self, event: RunEvent) {
        let mut queue = self.queue.lock();
        if queue.closed || (event.is_expendable() && queue.events.len() >= SINK_BACKLOG) {
            return;
        }
        queue.events.push_back(event);
        Queue::wake(queue);
    }
}

impl Clone for EventSink {
    fn clone(&self) -> Self {
        self.queue.lock().sinks += 1;
        Self {
            queue: Arc::clone(&self.queue),
            done: Arc::clone(&self.done),
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        let mut queue = self.queue.lock();
        queue.sinks = queue.sinks.saturating_sub(1);
        if queue.sinks == 0 {
            // The source's wait ends: nothing more can come.
            Queue::wake(queue);
        }
    }
}

impl EventSource {
    /// The next event; `None` once every sink is gone and everything was read.
    pub async fn recv(&mut self) -> Option<RunEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next event, or a wake-up of `cx` once there is one (or once every sink is
    /// gone). Takes nothing when pending, so a `recv` given up loses nothing.
    fn poll_recv(&self, cx: &Context<'_>) -> Poll<Option<RunEvent>> {
        let mut queue = self.queue.lock();
        if let Some(event) = queue.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if queue.sinks == 0 {
            return Poll::Ready(None);
        }
        match &mut queue.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// The next event if one is ready now.
    pub fn try_recv(&mut self) -> Option<RunEvent> {
        self.queue.lock().events.pop_front()
    }

    /// Resolves once a sink said [`prompt_done`](EventSink::prompt_done) (at once if it
    /// did already).
    pub async fn prompt_done(&self) {
        self.done.notified().await;
    }

    /// The signal behind [`prompt_done`](Self::prompt_done), to wait on beside `recv`.
    pub(crate) fn done_signal(&self) -> Arc<Notify> {
        Arc::clone(&self.done)
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        let unread = std::mem::take(&mut queue.events);
        queue.waker = None;
        drop(queue);
        // Dropped outside the lock: an event may hold a large output.
        drop(unread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: usize) -> RunEvent {
        RunEvent::Node {
            node: n.to_string(),
        }
    }

    fn progress() -> RunEvent {
        RunEvent::Progress {
            node: None,
            value: 1,
            max: 2,
        }
    }

    #[tokio::test]
    async fn events_arrive_in_order_and_the_stream_ends_with_the_last_sink() {
        let (sink, mut source) = EventSink::channel();
        let second = sink.clone();
        sink.emit(node(1));
        second.emit(node(2));
        drop(sink);
        assert_eq!(source.recv().await, Some(node(1)));
        second.emit(node(3));
        assert_eq!(source.try_recv(), Some(node(2)));
        assert_eq!(source.recv().await, Some(node(3)));
        assert_eq!(source.try_recv(), None);
        let reader = tokio::spawn(async move { source.recv().await });
        tokio::task::yield_now().await;
        // The waiting reader is woken by the last sink going.
        drop(second);
        assert_eq!(reader.await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_waiting_reader_is_woken_by_an_event() {
        let (sink, mut source) = EventSink::channel();
        let reader = tokio::spawn(async move { source.recv().await });
        tokio::task::yield_now().await;
        sink.emit(node(7));
        assert_eq!(reader.await.unwrap(), Some(node(7)));
    }

    #[test]
    fn a_full_backlog_drops_progress_but_keeps_the_rest() {
        let (sink, mut source) = EventSink::channel();
        for n in 0..SINK_BACKLOG {
            sink.emit(node(n));
        }
        sink.emit(progress());
        sink.emit(node(SINK_BACKLOG));
        let mut read = Vec::new();
        while let Some(event) = source.try_recv() {
            read.push(event);
        }
        assert_eq!(read.len(), SINK_BACKLOG + 1);
        assert_eq!(read.last(), Some(&node(SINK_BACKLOG)));
        assert!(!read.iter().any(RunEvent::is_expendable));
        // Room again: progress gets through.
        sink.emit(progress());
        assert_eq!(source.try_recv(), Some(progress()));
    }

    #[test]
    fn events_sent_after_the_source_is_gone_are_dropped() {
        let (sink, source) = EventSink::channel();
        sink.emit(node(1));
        drop(source);
        sink.emit(node(2));
        assert!(sink.queue.lock().events.is_empty());
    }
}
