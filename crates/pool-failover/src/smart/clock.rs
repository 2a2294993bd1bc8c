//! Converts tokio instants to compact integer ticks (nanoseconds since an epoch) and back.
//!
//! Conversion costs a subtraction of timespecs, so the routing checks never convert: they
//! compare the caller's instant with deadlines kept as instants. Ticks serve the write path.

use std::time::Duration;

use tokio::time::Instant;

/// Maps instants to `u64` nanoseconds since `epoch`; instants before it map to 0.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    epoch: Instant,
}

impl Clock {
    /// An epoch a little before `created`, so instants captured just before the strategy was
    /// built still map to distinct ticks.
    pub(super) fn new(created: Instant) -> Self {
        let epoch = [3600, 60, 1]
            .into_iter()
            .find_map(|secs| created.checked_sub(Duration::from_secs(secs)))
            .unwrap_or(created);
        Self { epoch }
    }

    /// The tick of `instant`.
    #[inline]
    pub(super) fn tick(&self, instant: Instant) -> u64 {
        duration_ticks(instant.saturating_duration_since(self.epoch))
    }

    /// The instant of `tick`.
    pub(super) fn instant(&self, tick: u64) -> Instant {
        let offset = Duration::from_nanos(tick);
        self.epoch
            .checked_add(offset)
            .or_else(|| self.epoch.checked_add(Duration::from_secs(1 << 32)))
            .unwrap_or(self.epoch)
    }
}

/// One moment in both forms the strategy uses: the caller's instant, for comparisons against
/// deadlines, and its tick, for arithmetic on remembered times.
#[derive(Debug, Clone, Copy)]
pub(super) struct Moment {
    pub(super) at: Instant,
    pub(super) tick: u64,
}

impl Clock {
    /// `at` in both forms.
    pub(super) fn moment(&self, at: Instant) -> Moment {
        Moment {
            at,
            tick: self.tick(at),
        }
    }

    /// The instant `ticks` after `moment`, on the tick grid so it converts back exactly.
    pub(super) fn after(&self, moment: Moment, ticks: u64) -> Instant {
        self.instant(moment.tick.saturating_add(ticks))
    }
}

/// A duration in ticks, saturating.
pub(super) fn duration_ticks(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
