//! The bounded event buffer between a run's driver and its [`Execution`](super::Execution).
//!
//! The driver must never wait for the reader (it would fall behind the websocket and miss
//! the run's end), so a full buffer makes room instead. It is full at `capacity` events or
//! at `max_bytes` bytes of events (as estimated by `Event::retained_size`). A new
//! progress-class event (`progress`, `progress_state`, previews, node texts) is then
//! dropped; any other event evicts buffered progress-class events, oldest first, then, when
//! there is none left, the oldest events, until it fits. The reader then gets one
//! [`Event::Lagged`] with the number of events it lost since its last read (the ones
//! dropped here, and the ones the run itself missed because its subscription lagged), before
//! the next buffered event. The newest event always gets in, so the run's last message is
//! never lost, unless one event alone is larger than `max_bytes`; the run's result does not
//! depend on the buffer.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::outlet::Outlet;
use crate::event::Event;

/// A new buffer holding at most `capacity` events (at least one) and `max_bytes` bytes.
pub(crate) fn channel(capacity: usize, max_bytes: usize) -> (Sender, Receiver) {
    let shared = Arc::new(Mutex::new(State {
        expendable: VecDeque::new(),
        kept: VecDeque::new(),
        next_seq: 0,
        capacity: capacity.max(1),
        bytes: 0,
        max_bytes,
        skipped: 0,
        dropped: 0,
        missed: 0,
        sender_gone: false,
        receiver_gone: false,
        waker: None,
    }));
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

/// A buffered event: its place in the stream, the event, its size.
type Slot = (u64, Event, usize);

struct State {
    /// Buffered progress-class events, oldest first.
    expendable: VecDeque<Slot>,
    /// The other buffered events, oldest first.
    kept: VecDeque<Slot>,
    /// The place of the next event in the stream.
    next_seq: u64,
    capacity: usize,
    bytes: usize,
    max_bytes: usize,
    /// Events lost since the reader's last read.
    skipped: u64,
    /// Events dropped here, in all.
    dropped: u64,
    /// Events the run missed upstream, in all.
    missed: u64,
    sender_gone: bool,
    receiver_gone: bool,
    waker: Option<Waker>,
}

impl State {
    fn len(&self) -> usize {
        self.expendable.len() + self.kept.len()
    }

    fn full(&self, size: usize) -> bool {
        self.len() >= self.capacity || self.bytes + size > self.max_bytes
    }

    /// Drops the oldest progress-class event, or the oldest event when there is none.
    fn evict(&mut self) {
        let victim = match self.expendable.pop_front() {
            Some(slot) => Some(slot),
            None => self.kept.pop_front(),
        };
        if let Some((_, _, size)) = victim {
            self.bytes -= size;
        }
        self.drop_one();
    }

    /// The oldest buffered event.
    fn pop(&mut self) -> Option<Event> {
        let from_expendable = match (self.expendable.front(), self.kept.front()) {
            (Some((a, ..)), Some((b, ..))) => a < b,
            (first, _) => first.is_some(),
        };
        let queue = if from_expendable {
            &mut self.expendable
        } else {
            &mut self.kept
        };
        let (_, event, size) = queue.pop_front()?;
        self.bytes -= size;
        Some(event)
    }

    fn clear(&mut self) {
        self.expendable.clear();
        self.kept.clear();
        self.bytes = 0;
    }

    fn drop_one(&mut self) {
        self.skipped += 1;
        self.dropped += 1;
    }

    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
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

impl Outlet for Sender {
    /// Buffers `event` without waiting, making room by the policy of the module.
    fn send(&mut self, event: Event) {
        let mut state = self.0.lock();
        if state.receiver_gone {
            return;
        }
        let size = event.retained_size();
        let expendable = is_expendable(&event);
        if size > state.max_bytes || (expendable && state.full(size)) {
            state.drop_one();
            state.wake();
            return;
        }
        while state.full(size) {
            state.evict();
        }
        state.bytes += size;
        let seq = state.next_seq;
        state.next_seq += 1;
        let slot = (seq, event, size);
        if expendable {
            state.expendable.push_back(slot);
        } else {
            state.kept.push_back(slot);
        }
        state.wake();
    }

    /// Tells the reader that the run missed `count` events upstream (its subscription to
    /// the websocket lagged).
    fn note_missed(&mut self, count: u64) {
        let mut state = self.0.lock();
        state.missed += count;
        if !state.receiver_gone {
            state.skipped += count;
            state.wake();
        }
    }

    /// Events dropped by the buffer, and events the run missed upstream, so far.
    fn losses(&self) -> (u64, u64) {
        let state = self.0.lock();
        (state.dropped, state.missed)
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.sender_gone = true;
        state.wake();
    }
}

/// The [`Execution`](super::Execution)'s side.
pub(crate) struct Receiver(Arc<Mutex<State>>);

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.0.lock();
        f.debug_struct("Receiver")
            .field("buffered", &state.len())
            .field("bytes", &state.bytes)
            .field("capacity", &state.capacity)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// The next event: `Lagged` first if events were lost; `None` once the sender is gone
    /// and everything was read.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        let mut state = self.0.lock();
        if state.skipped > 0 {
            let skipped = std::mem::take(&mut state.skipped);
            return Poll::Ready(Some(Event::Lagged { skipped }));
        }
        if let Some(event) = state.pop() {
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
        state.clear();
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
        let (mut tx, mut rx) = channel(3, usize::MAX);
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
        let (mut tx, mut rx) = channel(2, usize::MAX);
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
        let (mut tx, mut rx) = channel(1, usize::MAX);
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

    fn preview(bytes: usize) -> Event {
        Event::Preview(crate::event::Preview {
            format: crate::event::ImageFormat::Png,
            metadata: None,
            image: bytes::Bytes::from(vec![0u8; bytes]),
            prompt_id: None,
            node_id: None,
        })
    }

    #[test]
    fn bytes_bound_the_buffer_like_the_count_does() {
        let one = preview(1000).retained_size();
        let (mut tx, mut rx) = channel(100, 3 * one);
        for _ in 0..5 {
            tx.send(preview(1000));
        }
        // Three fit; the fourth and fifth are dropped; `success` evicts the oldest preview.
        tx.send(success());
        // Larger than the whole buffer: dropped, nothing evicted for it.
        tx.send(preview(10 * one));
        tx.note_missed(7);
        assert_eq!(tx.losses(), (4, 7));
        drop(tx);
        let got = drain(&mut rx);
        assert_eq!(got[0], Event::Lagged { skipped: 11 });
        assert_eq!(got[1..], [preview(1000), preview(1000), success()]);
    }
}
