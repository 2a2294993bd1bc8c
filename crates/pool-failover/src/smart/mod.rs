//! [`SmartStrategy`]: per-(server, hash) failure tracking with escalation and probation.

mod all_blocked;
mod builder;
mod clock;
mod entry;
mod ops;
mod table;
mod trait_impl;

use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::Instant;

pub use self::builder::SmartStrategyBuilder;
use self::clock::{Clock, duration_ticks};
use self::entry::State;
use self::ops::{Ctx, Inner};
use self::table::{ServerTable, Table};
use crate::{PairState, PairStatus, Result, SmartConfig};

/// The smart failover strategy: blocks a (server, workflow-hash) pair after failures, with an
/// escalating, jittered cooldown, a probation probe after it, and class-aware rules.
///
/// * [`Execution`](crate::FailureClass::Execution) and [`Stuck`](crate::FailureClass::Stuck)
///   failures count; `max_failures_before_block` consecutive ones (each within
///   `failure_window` of the previous) block the pair for the next cooldown step.
/// * [`ServerLacksResource`](crate::FailureClass::ServerLacksResource) blocks at once for the
///   resource cooldown step.
/// * `WorkflowInvalid`, `ServerDown` and `Cancelled` block nothing (a probe that ends so frees
///   its slot).
/// * When a cooldown ends the pair is on probation: the first [`claim`] becomes its probe and
///   every other claim is denied until it reports. Success clears the pair; failure blocks it
///   again for the next, longer step.
/// * A failure reported while the pair is already blocked (a job dispatched before the block)
///   is counted but neither extends nor escalates the block.
/// * Entries vanish after a success, and after a quiet `failure_window` once their block
///   ended, so the table never grows without bound.
///
/// See [`SmartConfig`] for the cooldown rule. [`is_allowed`] is O(1), takes a shared lock and
/// never allocates; with nothing tracked it takes no lock at all. It does not hash server names
/// (a [`ServerId`](crate::ServerId) carries a digest of its name) nor convert instants, and a
/// tracked pair costs one cache line of table memory (about 85 bytes per pair in all).
///
/// [`claim`]: crate::FailoverStrategy::claim
/// [`is_allowed`]: crate::FailoverStrategy::is_allowed
///
/// ```
/// use pool_failover::{FailoverStrategy, FailureClass, ServerId, SmartConfig, SmartStrategy};
/// use tokio::time::Instant;
/// use workflow_hash::WorkflowHash;
///
/// let strategy = SmartStrategy::new(SmartConfig::production())?;
/// let (gpu, hash, now) = (ServerId::from("gpu-1"), WorkflowHash::from_bytes([3; 32]), Instant::now());
/// let events = strategy.record_failure(&gpu, &hash, FailureClass::Execution, now);
/// assert_eq!(events.len(), 1); // Blocked
/// assert!(!strategy.is_allowed(&gpu, &hash, now));
/// assert!(strategy.is_allowed(&ServerId::from("gpu-2"), &hash, now));
/// # Ok::<(), pool_failover::Error>(())
/// ```
#[derive(Debug)]
pub struct SmartStrategy {
    config: SmartConfig,
    clock: Clock,
    window: u64,
    probe_timeout: u64,
    /// Tracked pairs, mirrored outside the lock for the lock-free empty fast path.
    tracked: AtomicUsize,
    inner: RwLock<Inner>,
}

impl SmartStrategy {
    /// A strategy with the given configuration.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if a value is out of range.
    pub fn new(config: SmartConfig) -> Result<Self> {
        Self::with_epoch(config, Instant::now())
    }

    /// Like [`new`](Self::new), but with the instant the strategy counts time from given
    /// explicitly (instants more than an hour before it are treated as equal to it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`](crate::Error::InvalidConfig) if a value is out of range.
    pub fn with_epoch(config: SmartConfig, epoch: Instant) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            clock: Clock::new(epoch),
            window: duration_ticks(config.failure_window),
            probe_timeout: duration_ticks(config.probe_timeout),
            tracked: AtomicUsize::new(0),
            inner: RwLock::new(Inner {
                table: Table::default(),
                rng: SmallRng::seed_from_u64(config.seed),
            }),
            config,
        })
    }

    /// A builder starting from [`SmartConfig::default`].
    pub fn builder() -> SmartStrategyBuilder {
        SmartStrategyBuilder::new(SmartConfig::default())
    }

    /// The configuration in force.
    pub fn config(&self) -> &SmartConfig {
        &self.config
    }

    /// The number of tracked pairs (blocked, on probation, probing or counting failures).
    pub fn len(&self) -> usize {
        self.tracked.load(Ordering::Acquire)
    }

    /// Whether no pair is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts of tracked pairs by state at `now`.
    pub fn stats(&self, now: Instant) -> SmartStats {
        let inner = self.inner.read();
        let mut stats = SmartStats {
            servers: inner.table.server_count(),
            ..SmartStats::default()
        };
        for (_, entry) in inner.table.servers().flat_map(ServerTable::entries) {
            stats.tracked += 1;
            if entry.blocked_at(now) {
                stats.blocked += 1;
            } else if entry.probing_at(now) {
                stats.probing += 1;
            } else if entry.state == State::Watching {
                stats.watching += 1;
            } else {
                stats.probation += 1;
            }
        }
        stats
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            config: &self.config,
            clock: self.clock,
            window: self.window,
            probe_timeout: self.probe_timeout,
        }
    }

    /// Runs `f` under the write lock and republishes the tracked count.
    fn write<T>(&self, f: impl FnOnce(&Ctx<'_>, &mut Inner) -> T) -> T {
        let mut inner = self.inner.write();
        let out = f(&self.ctx(), &mut inner);
        self.tracked.store(inner.table.len(), Ordering::Release);
        out
    }

    fn status(
        &self,
        server: &crate::ServerId,
        hash: &workflow_hash::WorkflowHash,
        entry: &entry::Entry,
        now: Instant,
    ) -> PairStatus {
        let state = if entry.blocked_at(now) {
            PairState::Blocked { until: entry.until }
        } else if entry.probing_at(now) {
            PairState::Probing {
                deadline: entry.until,
            }
        } else if entry.state == State::Watching {
            PairState::Watching
        } else {
            PairState::Probation
        };
        PairStatus {
            server: server.clone(),
            hash: *hash,
            state,
            consecutive_failures: entry.failures,
            blocked_count: u32::from(entry.blocked_count),
            last_class: entry.class(),
            last_failure: self.clock.instant(entry.last_failure),
        }
    }
}

/// Counts of tracked pairs by state, from [`SmartStrategy::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SmartStats {
    /// Servers with at least one tracked pair.
    pub servers: usize,
    /// Tracked pairs.
    pub tracked: usize,
    /// Pairs in their cooldown.
    pub blocked: usize,
    /// Pairs whose cooldown ended, waiting for a probe.
    pub probation: usize,
    /// Pairs with a probe in flight.
    pub probing: usize,
    /// Pairs counting failures below the threshold.
    pub watching: usize,
}
