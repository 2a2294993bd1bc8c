//! The state transitions of the smart strategy, run under its write lock.

use rand::Rng;
use rand::rngs::SmallRng;
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use super::clock::{Clock, Moment, duration_ticks};
use super::entry::{Entry, State};
use super::table::Table;
use crate::{FailoverEvent, FailureClass, ServerId, SmartConfig, UnblockReason};

/// The mutable state behind the lock.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) table: Table,
    pub(super) rng: SmallRng,
}

/// Read-only context of one operation.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a SmartConfig,
    pub(super) clock: Clock,
    pub(super) window: u64,
    pub(super) probe_timeout: u64,
}

impl Ctx<'_> {
    fn unblocked(server: &ServerId, hash: &WorkflowHash, reason: UnblockReason) -> FailoverEvent {
        FailoverEvent::Unblocked {
            server: server.clone(),
            hash: *hash,
            reason,
        }
    }

    /// Reports the expiry of a block whose cooldown has ended by `now`.
    fn settle(
        server: &ServerId,
        hash: &WorkflowHash,
        entry: &mut Entry,
        now: Moment,
        events: &mut Vec<FailoverEvent>,
    ) {
        if entry.state == State::Blocked && now.at >= entry.until {
            entry.state = State::Probation;
            events.push(Self::unblocked(server, hash, UnblockReason::Expired));
        }
    }

    /// Blocks the pair for the next step of its escalation.
    #[allow(clippy::too_many_arguments)]
    fn block(
        &self,
        rng: &mut SmallRng,
        server: &ServerId,
        hash: &WorkflowHash,
        entry: &mut Entry,
        class: FailureClass,
        now: Moment,
        events: &mut Vec<FailoverEvent>,
    ) {
        let base = if class.blocks_immediately() {
            self.config.resource_cooldown
        } else {
            self.config.cooldown
        };
        let nominal = self
            .config
            .nominal_step(base, u32::from(entry.blocked_count));
        let factor = 1.0 + rng.random::<f64>() * self.config.jitter;
        let jittered = std::time::Duration::try_from_secs_f64(nominal.as_secs_f64() * factor)
            .unwrap_or(nominal)
            .max(nominal);
        entry.blocked_count = entry.blocked_count.saturating_add(1);
        entry.until = self.clock.after(now, duration_ticks(jittered));
        entry.state = State::Blocked;
        events.push(FailoverEvent::Blocked {
            server: server.clone(),
            hash: *hash,
            class,
            failures: entry.failures,
            blocked_count: u32::from(entry.blocked_count),
            until: entry.until,
        });
    }

    /// Starts a probe on the pair.
    fn start_probe(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        entry: &mut Entry,
        now: Moment,
        events: &mut Vec<FailoverEvent>,
    ) {
        entry.state = State::Probing;
        entry.until = self.clock.after(now, self.probe_timeout);
        events.push(FailoverEvent::Probing {
            server: server.clone(),
            hash: *hash,
        });
    }

    pub(super) fn record_failure(
        &self,
        inner: &mut Inner,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        now: Moment,
    ) -> Vec<FailoverEvent> {
        let mut events = Vec::new();
        let Inner { table, rng } = inner;
        if !class.affects_pair() {
            // Nothing learned about the pair; a probe that ended this way frees its slot.
            if let Some(entry) = table.get_mut(server, hash) {
                Self::settle(server, hash, entry, now, &mut events);
                if entry.state == State::Probing {
                    entry.state = State::Probation;
                }
            }
            return events;
        }
        let entry = table.get_or_insert(server, hash, || Entry::new(now));
        Self::settle(server, hash, entry, now, &mut events);
        match entry.state {
            State::Blocked => {
                // A job dispatched before the block failed too: same incident, same block.
                entry.count_failure(class, now.tick);
            }
            State::Watching => {
                if now.tick.saturating_sub(entry.last_failure) >= self.window {
                    entry.failures = 0;
                }
                entry.count_failure(class, now.tick);
                if class.blocks_immediately()
                    || entry.failures >= self.config.max_failures_before_block
                {
                    self.block(rng, server, hash, entry, class, now, &mut events);
                }
            }
            State::Probation | State::Probing => {
                entry.count_failure(class, now.tick);
                self.block(rng, server, hash, entry, class, now, &mut events);
            }
        }
        let wake = entry.wake(self.window, &self.clock);
        table.note_wake(server, wake);
        events
    }

    /// Restores a remembered block (see `FailoverStrategy::restore_block`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn restore(
        &self,
        inner: &mut Inner,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        failures: u32,
        blocked_count: u32,
        until: Instant,
        now: Moment,
    ) -> Vec<FailoverEvent> {
        let entry = inner.table.get_or_insert(server, hash, || Entry::new(now));
        entry.count_failure(class, now.tick);
        entry.failures = failures.max(1);
        entry.blocked_count = u16::try_from(blocked_count.max(1)).unwrap_or(u16::MAX);
        entry.state = State::Blocked;
        // On the tick grid, so the expiry converts back exactly; never before now.
        entry.until = self.clock.instant(self.clock.tick(until.max(now.at)));
        let events = vec![FailoverEvent::Blocked {
            server: server.clone(),
            hash: *hash,
            class,
            failures: entry.failures,
            blocked_count: u32::from(entry.blocked_count),
            until: entry.until,
        }];
        let wake = entry.wake(self.window, &self.clock);
        inner.table.note_wake(server, wake);
        events
    }

    pub(super) fn record_success(
        inner: &mut Inner,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Moment,
    ) -> Vec<FailoverEvent> {
        let mut events = Vec::new();
        if let Some(mut entry) = inner.table.remove(server, hash) {
            Self::settle(server, hash, &mut entry, now, &mut events);
            if entry.block_unmatched() {
                events.push(Self::unblocked(server, hash, UnblockReason::Success));
            }
        }
        events
    }

    /// Whether a claim needs the write lock (it may change the entry).
    pub(super) fn claim_mutates(entry: &Entry, now: Instant) -> bool {
        match entry.state {
            State::Watching => false,
            State::Blocked | State::Probing => now >= entry.until,
            State::Probation => true,
        }
    }

    pub(super) fn claim(
        &self,
        inner: &mut Inner,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Moment,
    ) -> crate::Claim {
        let Some(entry) = inner.table.get_mut(server, hash) else {
            return crate::Claim::granted();
        };
        let mut events = Vec::new();
        Self::settle(server, hash, entry, now, &mut events);
        let kind = match entry.state {
            State::Watching => crate::ClaimKind::Granted,
            State::Blocked => crate::ClaimKind::Denied,
            State::Probing if now.at < entry.until => crate::ClaimKind::Denied,
            State::Probation | State::Probing => {
                self.start_probe(server, hash, entry, now, &mut events);
                crate::ClaimKind::Probe
            }
        };
        let wake = entry.wake(self.window, &self.clock);
        inner.table.note_wake(server, wake);
        crate::Claim::with_events(kind, events)
    }

    pub(super) fn poll(&self, inner: &mut Inner, now: Moment) -> Vec<FailoverEvent> {
        let mut events = Vec::new();
        let (window, clock) = (self.window, &self.clock);
        inner.table.sweep(now.tick, |server, hash, entry| {
            Self::settle(server, hash, entry, now, &mut events);
            let wake = entry.wake(window, clock);
            (wake > now.tick).then_some(wake)
        });
        events
    }

    /// Forces a probe on a blocked pair (the all-blocked policy), ending its block early.
    pub(super) fn force_probe(
        &self,
        inner: &mut Inner,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Moment,
    ) -> Vec<FailoverEvent> {
        let mut events = Vec::new();
        if let Some(entry) = inner.table.get_mut(server, hash) {
            Self::settle(server, hash, entry, now, &mut events);
            if entry.block_unmatched() {
                events.push(Self::unblocked(server, hash, UnblockReason::ForcedProbe));
            }
            self.start_probe(server, hash, entry, now, &mut events);
            let wake = entry.wake(self.window, &self.clock);
            inner.table.note_wake(server, wake);
        }
        events
    }

    /// `Unblocked { Reset }` for each removed entry whose block was still unmatched.
    pub(super) fn reset_events<'e>(
        server: &ServerId,
        removed: impl IntoIterator<Item = (&'e WorkflowHash, &'e Entry)>,
        events: &mut Vec<FailoverEvent>,
    ) {
        for (hash, entry) in removed {
            if entry.block_unmatched() {
                events.push(Self::unblocked(server, hash, UnblockReason::Reset));
            }
        }
    }
}
