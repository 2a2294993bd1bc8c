//! What to do when every candidate server is blocked for a workflow.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, FailoverEvent, FailureClass, ServerId};

/// The policy for a workflow that is blocked on every candidate server.
///
/// Whatever the policy, the answer is explicit: never a silent wait without an end.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AllBlockedPolicy {
    /// Wait until the earliest instant at which a candidate may take work again.
    #[default]
    WaitForEarliest,
    /// Let the candidate whose last failure is the oldest take one probe job now, ending its
    /// block early. Falls back to waiting when every candidate already has a probe in flight.
    ProbeLeastRecentlyFailed,
    /// Fail the job with an error that lists, per server, why and until when it is blocked.
    FailFast,
}

/// The answer of [`FailoverStrategy::on_all_blocked`](crate::FailoverStrategy::on_all_blocked).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AllBlockedDecision {
    /// A candidate may take work after all (a block ended meanwhile): claim it as usual.
    Proceed {
        /// The first candidate, in the given order, that may take work.
        server: ServerId,
    },
    /// Nothing may run now: ask again at `until`, when `server` may take work.
    Wait {
        /// The candidate that frees up first.
        server: ServerId,
        /// When it does.
        until: Instant,
    },
    /// The probe slot of `server` was taken for this job: dispatch it there now, without
    /// claiming again, and report its outcome with `record_success` / `record_failure`.
    Probe {
        /// The server to probe.
        server: ServerId,
    },
    /// Give up: the error says, per server, why and until when it is blocked.
    Fail(Error),
}

/// A decision plus the events it produced (e.g. the forced probe's `Unblocked` and `Probing`).
#[derive(Debug, Clone, PartialEq)]
#[must_use = "the events must be published and the decision acted upon"]
#[non_exhaustive]
pub struct AllBlocked {
    /// What to do.
    pub decision: AllBlockedDecision,
    /// Events to publish, in order.
    pub events: Vec<FailoverEvent>,
}

impl AllBlocked {
    /// A decision that produced no event.
    pub fn new(decision: AllBlockedDecision) -> Self {
        Self {
            decision,
            events: Vec::new(),
        }
    }

    /// A decision with the events it produced.
    pub fn with_events(decision: AllBlockedDecision, events: Vec<FailoverEvent>) -> Self {
        Self { decision, events }
    }
}

/// Why one server refuses a workflow, for [`Error::AllServersBlocked`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerBlock {
    /// The server.
    pub server: ServerId,
    /// The class of the last failure on this server, when known.
    pub class: Option<FailureClass>,
    /// Consecutive failures of the workflow on this server.
    pub failures: u32,
    /// Whether a probe job is in flight (the block ends with its outcome).
    pub probing: bool,
    /// When the server may take the workflow again, when known.
    pub until: Option<Instant>,
    /// How long that is from the moment of the decision.
    pub remaining: Option<Duration>,
}

impl ServerBlock {
    /// A reason with only the server known (for strategies that track nothing more).
    pub fn unknown(server: ServerId) -> Self {
        Self {
            server,
            class: None,
            failures: 0,
            probing: false,
            until: None,
            remaining: None,
        }
    }

    /// A full reason.
    pub fn new(
        server: ServerId,
        class: Option<FailureClass>,
        failures: u32,
        probing: bool,
        until: Option<Instant>,
        now: Instant,
    ) -> Self {
        let remaining = until.map(|until| until.saturating_duration_since(now));
        Self {
            server,
            class,
            failures,
            probing,
            until,
            remaining,
        }
    }
}

impl fmt::Display for ServerBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.server)?;
        if let Some(class) = self.class {
            write!(f, "{class}, ")?;
        }
        let plural = if self.failures == 1 { "" } else { "s" };
        write!(f, "{} failure{plural}, ", self.failures)?;
        match (self.probing, self.remaining) {
            (true, Some(left)) => write!(
                f,
                "probe in flight, at most {:.1}s more)",
                left.as_secs_f64()
            ),
            (true, None) => f.write_str("probe in flight)"),
            (false, Some(left)) => write!(f, "blocked for {:.1}s more)", left.as_secs_f64()),
            (false, None) => f.write_str("blocked)"),
        }
    }
}
