//! The [`FailoverStrategy`] trait and the answer of a dispatch claim.

use std::fmt;

use tokio::time::Instant;
use workflow_hash::WorkflowHash;

use crate::{
    AllBlocked, AllBlockedDecision, Error, FailoverEvent, FailureClass, PairStatus, ServerBlock,
    ServerId,
};

/// Decides which (server, workflow-hash) pairs may take work, from what happened before.
///
/// The pool stores one as `Arc<dyn FailoverStrategy>`: the trait is object safe, and every
/// method takes `&self` (implementations use interior mutability). Time is always passed in,
/// so tests can run on paused tokio time. Methods that change state return the
/// [`FailoverEvent`]s the pool should publish, in order.
///
/// Only [`is_allowed`](Self::is_allowed), [`record_failure`](Self::record_failure) and
/// [`record_success`](Self::record_success) are required; the rest have defaults fit for a
/// strategy without timers or probes.
///
/// # Example
///
/// A strategy that blocks a pair for good once the server lacks a resource for it:
///
/// ```
/// use std::collections::HashSet;
/// use std::sync::Arc;
///
/// use parking_lot::Mutex;
/// use pool_failover::{FailoverEvent, FailoverStrategy, FailureClass, ServerId};
/// use tokio::time::Instant;
/// use workflow_hash::WorkflowHash;
///
/// #[derive(Debug, Default)]
/// struct NeverAgain(Mutex<HashSet<(ServerId, WorkflowHash)>>);
///
/// impl FailoverStrategy for NeverAgain {
///     fn is_allowed(&self, server: &ServerId, hash: &WorkflowHash, _now: Instant) -> bool {
///         !self.0.lock().contains(&(server.clone(), *hash))
///     }
///
///     fn record_failure(
///         &self,
///         server: &ServerId,
///         hash: &WorkflowHash,
///         class: FailureClass,
///         _now: Instant,
///     ) -> Vec<FailoverEvent> {
///         if class == FailureClass::ServerLacksResource {
///             self.0.lock().insert((server.clone(), *hash));
///         }
///         Vec::new()
///     }
///
///     fn record_success(&self, _: &ServerId, _: &WorkflowHash, _: Instant) -> Vec<FailoverEvent> {
///         Vec::new()
///     }
/// }
///
/// let strategy: Arc<dyn FailoverStrategy> = Arc::new(NeverAgain::default());
/// let (gpu, hash, now) = (ServerId::from("gpu-1"), WorkflowHash::from_bytes([7; 32]), Instant::now());
/// assert!(strategy.is_allowed(&gpu, &hash, now));
/// let _ = strategy.record_failure(&gpu, &hash, FailureClass::ServerLacksResource, now);
/// assert!(!strategy.is_allowed(&gpu, &hash, now));
/// assert!(!strategy.claim(&gpu, &hash, now).is_granted());
/// ```
pub trait FailoverStrategy: Send + Sync + fmt::Debug {
    /// Whether `server` may take a job of workflow `hash` now. O(1) and allocation-free in the
    /// strategies of this crate. A pair on probation answers `true` while its probe slot is
    /// free; use [`claim`](Self::claim) to actually take it.
    fn is_allowed(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> bool;

    /// The index of the first of `candidates` (in the caller's order of preference) that may
    /// take a job of `hash` now, if any.
    fn first_allowed(
        &self,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Instant,
    ) -> Option<usize> {
        candidates
            .iter()
            .position(|server| self.is_allowed(server, hash, now))
    }

    /// Claims a dispatch of `hash` to `server`. On probation, the first claim takes the single
    /// probe slot ([`ClaimKind::Probe`]) and later claims are denied until the probe reports.
    /// Every granted claim must later be answered with `record_success` or `record_failure`
    /// (a cancelled job with [`FailureClass::Cancelled`], which frees a probe slot).
    fn claim(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> Claim {
        if self.is_allowed(server, hash, now) {
            Claim::granted()
        } else {
            Claim::denied()
        }
    }

    /// Records that a job of `hash` failed on `server` with the given class.
    fn record_failure(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        now: Instant,
    ) -> Vec<FailoverEvent>;

    /// Records that a job of `hash` succeeded on `server`: the pair is cleared.
    fn record_success(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Instant,
    ) -> Vec<FailoverEvent>;

    /// The events due by `now` that no call produced yet: blocks whose cooldown expired
    /// (`Unblocked { reason: Expired }`), even if nobody dispatches to the pair. Also drops
    /// entries that stopped mattering. Call it at [`next_deadline`](Self::next_deadline).
    fn poll_events(&self, now: Instant) -> Vec<FailoverEvent> {
        let _ = now;
        Vec::new()
    }

    /// The next instant at which [`poll_events`](Self::poll_events) has something to do, so
    /// the pool can sleep until exactly then. `None` when nothing is pending.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Forgets everything about workflow `hash` on every server.
    fn reset_workflow(&self, hash: &WorkflowHash) -> Vec<FailoverEvent> {
        let _ = hash;
        Vec::new()
    }

    /// Forgets everything about one (server, workflow) pair: a block ends (`Unblocked` with
    /// reason `Reset`).
    fn reset_pair(&self, server: &ServerId, hash: &WorkflowHash) -> Vec<FailoverEvent> {
        let _ = (server, hash);
        Vec::new()
    }

    /// Forgets everything about `server` for every workflow.
    fn reset_server(&self, server: &ServerId) -> Vec<FailoverEvent> {
        let _ = server;
        Vec::new()
    }

    /// Forgets everything.
    fn reset_all(&self) -> Vec<FailoverEvent> {
        Vec::new()
    }

    /// Restores a block the pool remembered from before (a restart, or another process that
    /// held the server): the pair takes no work of `hash` until `until` (then it goes on
    /// probation, as after any block), keeping its failure count and escalation step. Returns
    /// the `Blocked` event of the restored block (an `until` already past expires at the next
    /// poll). Strategies that keep no per-pair state ignore it.
    #[allow(clippy::too_many_arguments)]
    fn restore_block(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        failures: u32,
        blocked_count: u32,
        until: Instant,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        let _ = (server, hash, class, failures, blocked_count, until, now);
        Vec::new()
    }

    /// Every tracked pair and where it stands, for monitoring.
    fn snapshot(&self, now: Instant) -> Vec<PairStatus> {
        let _ = now;
        Vec::new()
    }

    /// What to do when none of `candidates` may take `hash` now (the pool asks after
    /// [`first_allowed`](Self::first_allowed) found none). The default proceeds with an
    /// allowed candidate if one appeared meanwhile and otherwise fails fast.
    fn on_all_blocked(
        &self,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Instant,
    ) -> AllBlocked {
        if candidates.is_empty() {
            return AllBlocked::new(AllBlockedDecision::Fail(Error::NoCandidates {
                hash: *hash,
            }));
        }
        if let Some(server) = candidates
            .iter()
            .find(|server| self.is_allowed(server, hash, now))
        {
            return AllBlocked::new(AllBlockedDecision::Proceed {
                server: server.clone(),
            });
        }
        let servers = candidates
            .iter()
            .cloned()
            .map(ServerBlock::unknown)
            .collect();
        AllBlocked::new(AllBlockedDecision::Fail(Error::AllServersBlocked {
            hash: *hash,
            servers,
        }))
    }
}

/// The answer to [`FailoverStrategy::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a denied claim must not be dispatched and events must be published"]
#[non_exhaustive]
pub struct Claim {
    /// Granted, granted as the probe, or denied.
    pub kind: ClaimKind,
    /// Events to publish, in order (e.g. `Unblocked { Expired }` then `Probing`).
    pub events: Vec<FailoverEvent>,
}

impl Claim {
    /// An ordinary grant, without events.
    pub fn granted() -> Self {
        Self {
            kind: ClaimKind::Granted,
            events: Vec::new(),
        }
    }

    /// The probe slot of a pair on probation, with the events that go with it.
    pub fn probe(events: Vec<FailoverEvent>) -> Self {
        Self {
            kind: ClaimKind::Probe,
            events,
        }
    }

    /// A denial, without events.
    pub fn denied() -> Self {
        Self {
            kind: ClaimKind::Denied,
            events: Vec::new(),
        }
    }

    /// A claim of the given kind with the given events.
    pub fn with_events(kind: ClaimKind, events: Vec<FailoverEvent>) -> Self {
        Self { kind, events }
    }

    /// Whether the job may be dispatched (ordinarily or as the probe).
    pub fn is_granted(&self) -> bool {
        matches!(self.kind, ClaimKind::Granted | ClaimKind::Probe)
    }

    /// Whether the job is the pair's probation probe.
    pub fn is_probe(&self) -> bool {
        self.kind == ClaimKind::Probe
    }
}

/// What kind of answer a [`Claim`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClaimKind {
    /// The pair is not blocked: dispatch as usual.
    Granted,
    /// The pair is on probation and this job took its single probe slot.
    Probe,
    /// The pair is blocked, or its probe slot is taken: do not dispatch.
    Denied,
}
