//! One tracked (server, hash) pair: a compact state machine on integer ticks.

use crate::FailureClass;

/// Where the pair stands (see [`PairState`](crate::PairState) for the public view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum State {
    /// Counting failures below the threshold; takes work.
    Watching,
    /// Takes no work before `until`; at `until` the cooldown expires (probation).
    Blocked,
    /// Cooldown over and reported: the next claim becomes the probe.
    Probation,
    /// A probe holds the slot until it reports or `until` (the probe deadline) passes.
    Probing,
}

/// The per-pair record: 24 bytes, times in nanoseconds since the strategy's epoch.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Blocked: end of the cooldown; Probing: probe deadline; Probation: end of the last
    /// cooldown or probe deadline; Watching: unused (0).
    pub(super) until: u64,
    /// When the last counted failure was recorded.
    pub(super) last_failure: u64,
    /// Consecutive counted failures still remembered.
    pub(super) failures: u32,
    /// Blocks in a row since the last success (drives escalation).
    pub(super) blocked_count: u16,
    pub(super) state: State,
    /// [`FailureClass`] of the last counted failure.
    class: u8,
}

impl Entry {
    /// A fresh entry with no failure yet, created at tick `now`.
    pub(super) fn new(now: u64) -> Self {
        Self {
            until: 0,
            last_failure: now,
            failures: 0,
            blocked_count: 0,
            state: State::Watching,
            class: FailureClass::Execution.to_u8(),
        }
    }

    /// Whether the pair may take (or claim) work at tick `now`.
    #[inline]
    pub(super) fn allows(&self, now: u64) -> bool {
        match self.state {
            State::Watching | State::Probation => true,
            State::Blocked | State::Probing => now >= self.until,
        }
    }

    /// Whether the pair is blocked and its expiry has not been reported yet (so a `Blocked`
    /// event waits for its `Unblocked`).
    pub(super) fn block_unmatched(&self) -> bool {
        self.state == State::Blocked
    }

    /// Whether the cooldown is still running at `now`.
    pub(super) fn blocked_at(&self, now: u64) -> bool {
        self.state == State::Blocked && now < self.until
    }

    /// Whether a probe holds the slot at `now`.
    pub(super) fn probing_at(&self, now: u64) -> bool {
        self.state == State::Probing && now < self.until
    }

    /// The next tick at which the poller has work with this entry: report the expiry of a
    /// block, or drop the entry after a quiet failure window.
    pub(super) fn wake(&self, window: u64) -> u64 {
        match self.state {
            State::Blocked => self.until,
            State::Watching => self.last_failure.saturating_add(window),
            State::Probation | State::Probing => {
                self.until.max(self.last_failure).saturating_add(window)
            }
        }
    }

    /// The class of the last counted failure.
    pub(super) fn class(&self) -> FailureClass {
        FailureClass::from_u8(self.class)
    }

    /// Counts one failure of `class` at `now`.
    pub(super) fn count_failure(&mut self, class: FailureClass, now: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        self.class = class.to_u8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_is_compact() {
        assert!(std::mem::size_of::<Entry>() <= 24);
    }

    #[test]
    fn blocked_entry_allows_only_from_its_end() {
        let mut entry = Entry::new(0);
        entry.state = State::Blocked;
        entry.until = 100;
        assert!(!entry.allows(99));
        assert!(entry.allows(100));
        assert_eq!(entry.wake(50), 100);
    }

    #[test]
    fn watching_entry_wakes_after_the_window() {
        let entry = Entry::new(10);
        assert!(entry.allows(10));
        assert_eq!(entry.wake(50), 60);
    }
}
