//! [`SmartStrategyBuilder`]: field-by-field construction of a [`SmartStrategy`].

use std::time::Duration;

use tokio::time::Instant;

use super::SmartStrategy;
use crate::{AllBlockedPolicy, Result, SmartConfig};

/// Builds a [`SmartStrategy`], starting from a [`SmartConfig`] (a preset or the default).
///
/// ```
/// use std::time::Duration;
/// use pool_failover::{AllBlockedPolicy, SmartConfig, SmartStrategy, SmartStrategyBuilder};
///
/// let strategy = SmartStrategyBuilder::new(SmartConfig::development())
///     .failure_window(Duration::from_secs(120))
///     .all_blocked(AllBlockedPolicy::FailFast)
///     .seed(7)
///     .build()?;
/// assert_eq!(strategy.config().max_failures_before_block, 3);
///
/// assert!(SmartStrategy::builder().jitter(2.0).build().is_err());
/// # Ok::<(), pool_failover::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct SmartStrategyBuilder {
    config: SmartConfig,
    epoch: Option<Instant>,
}

impl From<SmartConfig> for SmartStrategyBuilder {
    fn from(config: SmartConfig) -> Self {
        Self::new(config)
    }
}

impl SmartStrategyBuilder {
    /// A builder starting from `config`.
    pub fn new(config: SmartConfig) -> Self {
        Self {
            config,
            epoch: None,
        }
    }

    /// Replaces the whole configuration (e.g. with a preset).
    pub fn config(mut self, config: SmartConfig) -> Self {
        self.config = config;
        self
    }

    /// See [`SmartConfig::cooldown`].
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.config.cooldown = cooldown;
        self
    }

    /// See [`SmartConfig::max_failures_before_block`].
    pub fn max_failures_before_block(mut self, failures: u32) -> Self {
        self.config.max_failures_before_block = failures;
        self
    }

    /// See [`SmartConfig::failure_window`].
    pub fn failure_window(mut self, window: Duration) -> Self {
        self.config.failure_window = window;
        self
    }

    /// See [`SmartConfig::cooldown_multiplier`].
    pub fn cooldown_multiplier(mut self, multiplier: f64) -> Self {
        self.config.cooldown_multiplier = multiplier;
        self
    }

    /// See [`SmartConfig::max_cooldown`].
    pub fn max_cooldown(mut self, max: Duration) -> Self {
        self.config.max_cooldown = max;
        self
    }

    /// See [`SmartConfig::jitter`].
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.config.jitter = jitter;
        self
    }

    /// See [`SmartConfig::resource_cooldown`].
    pub fn resource_cooldown(mut self, cooldown: Duration) -> Self {
        self.config.resource_cooldown = cooldown;
        self
    }

    /// See [`SmartConfig::probe_timeout`].
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.config.probe_timeout = timeout;
        self
    }

    /// See [`SmartConfig::all_blocked`].
    pub fn all_blocked(mut self, policy: AllBlockedPolicy) -> Self {
        self.config.all_blocked = policy;
        self
    }

    /// See [`SmartConfig::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// See [`SmartStrategy::with_epoch`]; defaults to the moment `build` runs.
    pub fn epoch(mut self, epoch: Instant) -> Self {
        self.epoch = Some(epoch);
        self
    }

    /// Validates the configuration and builds the strategy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) naming the first bad field.
    pub fn build(self) -> Result<SmartStrategy> {
        SmartStrategy::with_epoch(self.config, self.epoch.unwrap_or_else(Instant::now))
    }
}
