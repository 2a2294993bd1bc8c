//! Where a run's driver hands the prompt's events: the bounded buffer read through an
//! [`Execution`](super::Execution) (the driver runs in a task of its own), or a callback
//! of an [`InlineRun`](super::InlineRun) (the driver runs in the caller's task).

use crate::event::Event;

/// The driver's side of the event stream.
pub(crate) trait Outlet: Send {
    /// Hands on one event of the run, without waiting.
    fn send(&mut self, event: Event);

    /// The run missed `count` events upstream (its subscription to the websocket lagged).
    fn note_missed(&mut self, count: u64);

    /// Events dropped on the way to the reader, and events the run missed upstream, so far.
    fn losses(&self) -> (u64, u64);
}

/// Events go straight to a callback, in the driver's task: nothing is buffered, so nothing
/// is dropped on the way; events missed upstream reach it as one [`Event::Lagged`].
pub(crate) struct Callback<F> {
    on_event: F,
    missed: u64,
}

impl<F: FnMut(Event) + Send> Callback<F> {
    pub(crate) fn new(on_event: F) -> Self {
        Self {
            on_event,
            missed: 0,
        }
    }
}

impl<F: FnMut(Event) + Send> Outlet for Callback<F> {
    fn send(&mut self, event: Event) {
        (self.on_event)(event);
    }

    fn note_missed(&mut self, count: u64) {
        self.missed += count;
        (self.on_event)(Event::Lagged { skipped: count });
    }

    fn losses(&self) -> (u64, u64) {
        (0, self.missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ExecutionStart;

    #[test]
    fn a_callback_gets_every_event_and_a_lagged_for_what_the_run_missed() {
        let mut got = Vec::new();
        {
            let mut outlet = Callback::new(|event| got.push(event));
            outlet.send(Event::ExecutionStart(ExecutionStart::default()));
            outlet.note_missed(3);
            outlet.note_missed(2);
            assert_eq!(outlet.losses(), (0, 5));
        }
        assert_eq!(
            got,
            [
                Event::ExecutionStart(ExecutionStart::default()),
                Event::Lagged { skipped: 3 },
                Event::Lagged { skipped: 2 },
            ]
        );
    }
}
