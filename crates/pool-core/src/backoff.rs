//! [`Backoff`]: the delay before a retry.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with jitter: attempt `n` (1 for the first retry) waits
/// `min(initial × factor^(n-1), max)`, then a random part of it of up to `jitter` is removed.
///
/// ```
/// use std::time::Duration;
/// use pool_core::Backoff;
///
/// let b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2)).jitter(0.0);
/// assert_eq!(b.delay(1), Duration::from_millis(100));
/// assert_eq!(b.delay(3), Duration::from_millis(400));
/// assert_eq!(b.delay(30), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Backoff {
    #[serde(rename = "initial_ms", with = "crate::time::millis")]
    initial: Duration,
    #[serde(rename = "max_ms", with = "crate::time::millis")]
    max: Duration,
    factor: f64,
    jitter: f64,
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 10 s, 20 % jitter.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// Doubling from `initial` up to `max`, 20 % jitter.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            ..Self::default()
        }
    }

    /// No delay at all.
    pub fn none() -> Self {
        Self {
            initial: Duration::ZERO,
            max: Duration::ZERO,
            factor: 1.0,
            jitter: 0.0,
        }
    }

    /// The growth factor per retry (at least 1).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            1.0
        };
        self
    }

    /// The fraction of the delay that may be removed at random (0 to 1).
    #[must_use]
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The delay before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let exp = i32::try_from(retry.saturating_sub(1))
            .unwrap_or(i32::MAX)
            .min(64);
        let base = self.initial.as_secs_f64() * self.factor.powi(exp);
        let capped = base.min(self.max.as_secs_f64());
        let cut = if self.jitter > 0.0 {
            rand::rng().random_range(0.0..=self.jitter)
        } else {
            0.0
        };
        Duration::try_from_secs_f64(capped * (1.0 - cut)).unwrap_or(self.max)
    }
}
