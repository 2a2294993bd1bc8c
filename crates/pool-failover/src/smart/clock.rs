//! Converts tokio instants to compact integer ticks (nanoseconds since an epoch) and back.

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

/// A duration in ticks, saturating.
pub(super) fn duration_ticks(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
