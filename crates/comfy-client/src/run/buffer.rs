//! The bounded event buffer between a run's driver and its [`Execution`](super::Execution).
//!
//! The driver must never wait for the reader (it would fall behind the websocket and miss
//! the run's end), so a full buffer makes room instead: a new progress-class event
//! (`progress`, `progress_state`, previews, node texts) is dropped; any other event evicts
//! the oldest buffered progress-class event, or, when there is none, the oldest event.
//! The reader then gets one [`Event::Lagged`] with the number of events dropped since its
//! last read, before the next buffered event. The newest event always gets in, so the
//! run's last message is never lost; the run's result does not depend on the buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use crate::event::Event;

/// A new buffer holding at most `capacity` events (at least one).
pub(crate) fn channel(capacity: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(State {
        queue: VecDeque::new(),
        capacity: capacity.max(1),
        skipped: 0,
        sender_gone: false,
        receiver_gone: false,
        waker: None,
    }));
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

struct State {
    queue: VecDeque<Event>,
    capacity: usize,
    skipped: u64,
    sender_gone: bool,
    receiver_gone: bool,
    waker: Option<Waker>,
}

/// Events whose loss only thins the stream out: they go first when the buffer is full.
fn is_expendable(event: &Event) -> bool {
    matches!(
        event,
        Event::Progress(_) | Event::ProgressState(_) | Event::Preview(_) | Event::Text(_)
    )
}

/// The driver's side; dropping it ends the stream once the buffer is read.
pub(crate) struct Sender(Arc<Mutex<State>>);

impl Sender {
    /// Buffers `event` without waiting, making room by the policy of the module.
    pub(crate) fn send(&self, event: Event) {
        let mut state = self.0.lock();
        if state.receiver_gone {
            return;
        }
        if state.queue.len() >= state.capacity {
            if is_expendable(&event) {
                state.skipped += 1;
                return;
            }
            let victim = state.queue.iter().position(is_expendable).unwrap_or(0);
            state.queue.remove(victim);
            state.skipped += 1;
        }
        state.queue.push_back(event);
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sender_gone = true;
        if let Some(waker) = state.waker.take() {
            waker.wake();
        }
    }
}

/// The [`Execution`](super::Execution)'s side.
pub(crate) struct Receiver(Arc<Mutex<State>>);

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.0.lock();
        f.debug_struct("Receiver")
            .field("buffered", &state.queue.len())
            .field("capacity", &state.capacity)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// The next event: `Lagged` first if events were dropped; `None` once the sender is
    /// gone and everything was read.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut state = self.0.lock();
        if state.skipped > 0 {
            let skipped = std::mem::take(&mut state.skipped);
            return Poll::Ready(Some(Event::Lagged { skipped }));
        }
        if let Some(event) = state.queue.pop_front() {
            return Poll::Ready(Some(event));
        }
        if state.sender_gone {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_gone = true;
        state.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ExecutionStart, ExecutionSuccess, Progress};

    fn start() -> Event {
        Event::ExecutionStart(ExecutionStart::default())
    }

    fn progress(value: f64) -> Event {
        Event::Progress(Progress {
            value,
            ..Progress::default()
        })
    }

    fn success() -> Event {
        Event::ExecutionSuccess(ExecutionSuccess::default())
    }

    fn drain(rx: &mut Receiver) -> Vec<Event> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut out = Vec::new();
        while let Poll::Ready(Some(event)) = rx.poll_recv(&mut cx) {
            out.push(event);
        }
        out
    }

    #[test]
    fn a_full_buffer_drops_progress_first_and_reports_the_gap() {
        let (tx, mut rx) = channel(3);
        tx.send(start());
        tx.send(progress(1.0));
        tx.send(progress(2.0));
        // Full: new progress is dropped, then `success` evicts the oldest progress.
        tx.send(progress(3.0));
        tx.send(success());
        drop(tx);
        assert_eq!(
            drain(&mut rx),
            [
                Event::Lagged { skipped: 2 },
                start(),
                progress(2.0),
                success()
            ]
        );
    }

    #[test]
    fn without_expendable_events_the_oldest_goes_and_the_newest_stays() {
        let (tx, mut rx) = channel(2);
        tx.send(start());
        tx.send(Event::Connected);
        tx.send(success());
        drop(tx);
        assert_eq!(
            drain(&mut rx),
            [Event::Lagged { skipped: 1 }, Event::Connected, success()]
        );
    }

    #[test]
    fn lagged_counts_restart_after_each_report_and_the_stream_ends_after_the_sender() {
        let (tx, mut rx) = channel(1);
        let mut cx = Context::from_waker(Waker::noop());
        tx.send(start());
        tx.send(success());
        assert_eq!(
            rx.poll_recv(&mut cx),
            Poll::Ready(Some(Event::Lagged { skipped: 1 }))
        );
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(Some(success())));
        assert_eq!(rx.poll_recv(&mut cx), Poll::Pending);
        tx.send(progress(1.0));
        tx.send(progress(2.0));
        assert_eq!(
            drain(&mut rx),
            [Event::Lagged { skipped: 1 }, progress(1.0)]
        );
        drop(tx);
        assert_eq!(rx.poll_recv(&mut cx), Poll::Ready(None));
    }
}
