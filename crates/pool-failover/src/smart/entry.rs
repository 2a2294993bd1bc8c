//! One tracked (server, hash) pair: a compact state machine.
//!
//! The deadline is kept as an [`Instant`] so routing checks compare it with the caller's
//! instant directly; the last failure, needed only when recording, is a tick.

use tokio::time::Instant;

use super::clock::{Clock, Moment};
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

/// The per-pair record: 32 bytes, so it shares one cache line with its workflow hash.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    /// Blocked: end of the cooldown; Probing: probe deadline; Probation: end of the last
    /// cooldown or probe deadline; Watching: unused (creation time).
    pub(super) until: Instant,
    /// Tick of the last counted failure.
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
    /// A fresh entry with no failure yet, created at `now`.
    pub(super) fn new(now: Moment) -> Self {
        Self {
            until: now.at,
            last_failure: now.tick,
            failures: 0,
            blocked_count: 0,
            state: State::Watching,
            class: FailureClass::Execution.to_u8(),
        }
    }

    /// Whether the pair may take (or claim) work at `now`.
    #[inline]
    pub(super) fn allows(&self, now: Instant) -> bool {
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
    pub(super) fn blocked_at(&self, now: Instant) -> bool {
        self.state == State::Blocked && now < self.until
    }

    /// Whether a probe holds the slot at `now`.
    pub(super) fn probing_at(&self, now: Instant) -> bool {
        self.state == State::Probing && now < self.until
    }

    /// The next tick at which the poller has work with this entry: report the expiry of a
    /// block, or drop the entry after a quiet failure window.
    pub(super) fn wake(&self, window: u64, clock: &Clock) -> u64 {
        match self.state {
            State::Blocked => clock.tick(self.until),
            State::Watching => self.last_failure.saturating_add(window),
            State::Probation | State::Probing => clock
                .tick(self.until)
                .max(self.last_failure)
                .saturating_add(window),
        }
    }

    /// The class of the last counted failure.
    pub(super) fn class(&self) -> FailureClass {
        FailureClass::from_u8(self.class)
    }

    /// Counts one failure of `class` at tick `now`.
    pub(super) fn count_failure(&mut self, class: FailureClass, now: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = now;
        self.class = class.to_u8();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entry_and_hash_share_a_cache_line() {
        assert!(
            std::mem::size_of::<Entry>() + std::mem::size_of::<workflow_hash::WorkflowHash>() <= 64
        );
    }

    #[test]
    fn blocked_entry_allows_only_from_its_end() {
        let clock = Clock::new(Instant::now());
        let start = clock.moment(Instant::now());
        let mut entry = Entry::new(start);
        entry.state = State::Blocked;
        entry.until = clock.after(start, 100);
        assert!(!entry.allows(entry.until - Duration::from_nanos(1)));
        assert!(entry.allows(entry.until));
        assert_eq!(entry.wake(50, &clock), start.tick + 100);
    }

    #[test]
    fn watching_entry_wakes_after_the_window() {
        let clock = Clock::new(Instant::now());
        let start = clock.moment(Instant::now());
        let entry = Entry::new(start);
        assert!(entry.allows(start.at));
        assert_eq!(entry.wake(50, &clock), start.tick + 50);
    }
}
