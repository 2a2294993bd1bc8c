//! [`Quarantine`]: a custom [`FailoverStrategy`] written in the example: the smart strategy,
//! plus a server-wide circuit breaker.
//!
//! One workflow failing on a server says little about the server; *several different*
//! workflows failing there within a short window say the server itself is sick (a bad driver,
//! a full disk). `Quarantine` then keeps every workflow off that server for a while, and
//! otherwise delegates everything to [`SmartStrategy`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use comfy_pool::{
    AllBlocked, AllBlockedDecision, Claim, FailoverEvent, FailoverStrategy, FailureClass,
    PairStatus, ServerId, SmartStrategy, WorkflowHash,
};
use parking_lot::Mutex;
use tokio::time::Instant;

/// One quarantine of a server, for the demo's checks and report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineSpan {
    /// The server.
    pub server: ServerId,
    /// When it started.
    pub from: Instant,
    /// When it ends.
    pub until: Instant,
}

#[derive(Debug, Default)]
struct State {
    /// Recent failures per server: (when, which workflow).
    failures: HashMap<ServerId, Vec<(Instant, WorkflowHash)>>,
    /// Servers in quarantine, until when.
    quarantined: HashMap<ServerId, Instant>,
    history: Vec<QuarantineSpan>,
}

/// The smart strategy plus a server-wide quarantine after failures of `distinct` different
/// workflows within `window`.
#[derive(Debug)]
pub struct Quarantine {
    inner: SmartStrategy,
    distinct: usize,
    window: Duration,
    length: Duration,
    state: Mutex<State>,
}

impl Quarantine {
    /// Wraps `inner`: `distinct` different workflows failing on a server within `window`
    /// quarantine it for `length`.
    pub fn new(inner: SmartStrategy, distinct: usize, window: Duration, length: Duration) -> Self {
        Self {
            inner,
            distinct: distinct.max(1),
            window,
            length,
            state: Mutex::new(State::default()),
        }
    }

    /// Every quarantine so far.
    pub fn history(&self) -> Vec<QuarantineSpan> {
        self.state.lock().history.clone()
    }

    fn in_quarantine(&self, server: &ServerId, now: Instant) -> bool {
        self.state
            .lock()
            .quarantined
            .get(server)
            .is_some_and(|until| now < *until)
    }
}

impl FailoverStrategy for Quarantine {
    fn is_allowed(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> bool {
        !self.in_quarantine(server, now) && self.inner.is_allowed(server, hash, now)
    }

    fn claim(&self, server: &ServerId, hash: &WorkflowHash, now: Instant) -> Claim {
        if self.in_quarantine(server, now) {
            return Claim::denied();
        }
        self.inner.claim(server, hash, now)
    }

    fn record_failure(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        if class == FailureClass::Execution {
            let mut state = self.state.lock();
            let recent = state.failures.entry(server.clone()).or_default();
            recent.retain(|(at, _)| now.saturating_duration_since(*at) <= self.window);
            recent.push((now, *hash));
            let distinct: HashSet<&WorkflowHash> = recent.iter().map(|(_, h)| h).collect();
            if distinct.len() >= self.distinct {
                recent.clear();
                let until = now + self.length;
                state.quarantined.insert(server.clone(), until);
                state.history.push(QuarantineSpan {
                    server: server.clone(),
                    from: now,
                    until,
                });
            }
        }
        self.inner.record_failure(server, hash, class, now)
    }

    fn record_success(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        now: Instant,
    ) -> Vec<FailoverEvent> {
        self.inner.record_success(server, hash, now)
    }

    fn poll_events(&self, now: Instant) -> Vec<FailoverEvent> {
        self.inner.poll_events(now)
    }

    fn next_deadline(&self) -> Option<Instant> {
        // Wake the pool when a quarantine ends too, so waiting jobs are dispatched at once.
        let now = Instant::now();
        let quarantine = self
            .state
            .lock()
            .quarantined
            .values()
            .copied()
            .filter(|until| *until > now)
            .min();
        match (self.inner.next_deadline(), quarantine) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn reset_workflow(&self, hash: &WorkflowHash) -> Vec<FailoverEvent> {
        self.inner.reset_workflow(hash)
    }

    fn reset_server(&self, server: &ServerId) -> Vec<FailoverEvent> {
        let mut state = self.state.lock();
        state.quarantined.remove(server);
        state.failures.remove(server);
        drop(state);
        self.inner.reset_server(server)
    }

    fn reset_all(&self) -> Vec<FailoverEvent> {
        let mut state = self.state.lock();
        state.quarantined.clear();
        state.failures.clear();
        drop(state);
        self.inner.reset_all()
    }

    fn snapshot(&self, now: Instant) -> Vec<PairStatus> {
        self.inner.snapshot(now)
    }

    fn on_all_blocked(
        &self,
        candidates: &[ServerId],
        hash: &WorkflowHash,
        now: Instant,
    ) -> AllBlocked {
        let open: Vec<ServerId> = candidates
            .iter()
            .filter(|s| !self.in_quarantine(s, now))
            .cloned()
            .collect();
        if open.is_empty() {
            // Every candidate is quarantined: wait for the first to come out.
            let state = self.state.lock();
            let first = candidates
                .iter()
                .filter_map(|s| state.quarantined.get(s).map(|until| (s.clone(), *until)))
                .min_by_key(|(_, until)| *until);
            if let Some((server, until)) = first {
                return AllBlocked::new(AllBlockedDecision::Wait { server, until });
            }
        }
        self.inner.on_all_blocked(&open, hash, now)
    }
}
