//! Exponential reconnect backoff with jitter.

use std::time::Duration;

use rand::Rng;

/// Delays `initial * 2^n`, capped at `max`, each drawn uniformly from `[d/2, d]`.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            attempt: 0,
        }
    }

    /// Back to the first delay (after a successful connection).
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The next delay.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(30));
        self.attempt = self.attempt.saturating_add(1);
        let full = self.initial.saturating_mul(factor).min(self.max);
        let half = full / 2;
        let jitter_ns = u64::try_from((full - half).as_nanos()).unwrap_or(u64::MAX);
        let extra = if jitter_ns == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ns)
        };
        half + Duration::from_nanos(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_stay_within_jitter_bounds() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let expected_full = [100u64, 200, 400, 800, 1000, 1000, 1000];
        for full in expected_full {
            let d = b.next_delay();
            let full = Duration::from_millis(full);
            assert!(
                d >= full / 2 && d <= full,
                "{d:?} outside [{:?}, {full:?}]",
                full / 2
            );
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
