//! [`SmartConfig`]: the tuning of the smart strategy, with presets.

use std::time::Duration;

use crate::{AllBlockedPolicy, Error, Result};

/// The longest duration any setting may take.
const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// The tuning of [`SmartStrategy`](crate::SmartStrategy).
///
/// The defaults are those of the TypeScript SDK comfyui-node (a 60 s cooldown after one
/// failure), plus escalation, a failure window, probation and class-aware blocking.
///
/// # Cooldown rule
///
/// The `n`-th block in a row of a pair (`n` = 0 for the first) lasts
/// `min(base × cooldown_multiplier^n, max(max_cooldown, base)) × (1 + u × jitter)` with `u` drawn
/// uniformly from `[0, 1)` by an RNG seeded with `seed`. Jitter therefore only ever
/// *lengthens* a block: a block is never shorter than its nominal step and never longer than
/// the step plus `jitter` of it. `base` is [`cooldown`](Self::cooldown), or
/// [`resource_cooldown`](Self::resource_cooldown) for
/// [`ServerLacksResource`](crate::FailureClass::ServerLacksResource). A success resets `n`;
/// so does a quiet [`failure_window`](Self::failure_window) after the block ends.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SmartConfig {
    /// The first cooldown after execution failures. Default 60 s.
    pub cooldown: Duration,
    /// Consecutive counted failures (within the window) that block the pair. Default 1.
    pub max_failures_before_block: u32,
    /// Failures older than this are forgotten; an entry quiet for this long after its last
    /// failure or block end is dropped (escalation included). Default 10 min.
    pub failure_window: Duration,
    /// Each block in a row lasts this much longer than the one before. Default 2.0.
    pub cooldown_multiplier: f64,
    /// The longest nominal block (before jitter); resource blocks are capped at the larger of
    /// this and `resource_cooldown`. Default 30 min.
    pub max_cooldown: Duration,
    /// The fraction of a block added at random, in `[0, 1]`. Default 0.1.
    pub jitter: f64,
    /// The first cooldown when the server lacks a resource (node class, model). Default 10 min.
    pub resource_cooldown: Duration,
    /// How long a probe may hold the probe slot without reporting back before another job
    /// may probe. Default 30 min.
    pub probe_timeout: Duration,
    /// What to answer when every candidate server is blocked. Default wait for the earliest.
    pub all_blocked: AllBlockedPolicy,
    /// Seed of the jitter RNG, so runs are reproducible. Default 0.
    pub seed: u64,
}

impl Default for SmartConfig {
    fn default() -> Self {
        Self::production()
    }
}

impl SmartConfig {
    /// Development: 30 s cooldown after 3 consecutive failures, so a flaky local box is not
    /// blocked at the first hiccup.
    pub fn development() -> Self {
        Self {
            cooldown: Duration::from_secs(30),
            max_failures_before_block: 3,
            ..Self::production()
        }
    }

    /// Production (the default): 60 s cooldown after 1 failure.
    pub fn production() -> Self {
        Self {
            cooldown: Duration::from_secs(60),
            max_failures_before_block: 1,
            failure_window: Duration::from_secs(600),
            cooldown_multiplier: 2.0,
            max_cooldown: Duration::from_secs(1800),
            jitter: 0.1,
            resource_cooldown: Duration::from_secs(600),
            probe_timeout: Duration::from_secs(1800),
            all_blocked: AllBlockedPolicy::WaitForEarliest,
            seed: 0,
        }
    }

    /// High availability: 120 s cooldown after 1 failure, so a failing pair stays out longer.
    pub fn high_availability() -> Self {
        Self {
            cooldown: Duration::from_secs(120),
            ..Self::production()
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.cooldown.is_zero() {
            return bad("cooldown", "must be greater than zero");
        }
        if self.max_failures_before_block == 0 {
            return bad("max_failures_before_block", "must be at least 1");
        }
        if self.failure_window.is_zero() {
            return bad("failure_window", "must be greater than zero");
        }
        if !self.cooldown_multiplier.is_finite() || self.cooldown_multiplier < 1.0 {
            return bad(
                "cooldown_multiplier",
                "must be a finite number of at least 1",
            );
        }
        if !self.jitter.is_finite() || !(0.0..=1.0).contains(&self.jitter) {
            return bad("jitter", "must be between 0 and 1");
        }
        if self.resource_cooldown.is_zero() {
            return bad("resource_cooldown", "must be greater than zero");
        }
        if self.max_cooldown < self.cooldown {
            return bad("max_cooldown", "must be at least cooldown");
        }
        if self.probe_timeout.is_zero() {
            return bad("probe_timeout", "must be greater than zero");
        }
        let durations = [
            ("cooldown", self.cooldown),
            ("failure_window", self.failure_window),
            ("max_cooldown", self.max_cooldown),
            ("resource_cooldown", self.resource_cooldown),
            ("probe_timeout", self.probe_timeout),
        ];
        if let Some((field, _)) = durations.into_iter().find(|(_, d)| *d > MAX_DURATION) {
            return bad(field, "must be at most 365 days");
        }
        Ok(())
    }

    /// The nominal length (before jitter) of block number `n` (0-based) from `base`.
    pub(crate) fn nominal_step(&self, base: Duration, n: u32) -> Duration {
        let exponent = i32::try_from(n.min(1024)).unwrap_or(1024);
        let secs = base.as_secs_f64() * self.cooldown_multiplier.powi(exponent);
        let cap = self.max_cooldown.max(base);
        let capped = secs.min(cap.as_secs_f64());
        Duration::try_from_secs_f64(capped).unwrap_or(cap)
    }
}
