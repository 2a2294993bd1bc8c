//! [`Transition`]: the named changes of a [`JobRecord`], the only way the engine changes one.
//! Each is small and serializable, so a store can persist them one at a time (and a replica
//! can apply them in order).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{
    AttemptOutcome, AttemptRecord, DeadlineKind, Error, JobOutput, JobRecord, JobState, Timestamp,
};

/// One change of a job's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "transition", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Transition {
    /// Dispatched to a server: the attempt, with the prompt id it will be submitted under
    /// (known before the submission: a store commits it first, so that after a crash the
    /// pool knows which prompt to ask the server about).
    Dispatched {
        /// The new attempt ([`AttemptOutcome::Running`]).
        attempt: AttemptRecord,
    },
    /// The server accepted the prompt.
    PromptSubmitted {
        /// The attempt.
        attempt: u32,
    },
    /// The prompt started executing on the server.
    ExecutionStarted {
        /// The attempt.
        attempt: u32,
    },
    /// The attempt ended.
    AttemptEnded {
        /// The attempt.
        attempt: u32,
        /// How.
        outcome: AttemptOutcome,
        /// Why it failed, when it did.
        reason: Option<String>,
        /// From dispatch to its end.
        #[serde(rename = "duration_ms", with = "crate::time::millis")]
        duration: Duration,
    },
    /// The job waits `delay` (zero: none) before it is queued for its next attempt.
    RetryScheduled {
        /// The wait.
        #[serde(rename = "delay_ms", with = "crate::time::millis")]
        delay: Duration,
    },
    /// The job is back in the queue (its backoff is over, or its server left).
    Requeued,
    /// The job was cancelled; it ends cancelled whatever happens next.
    CancelRequested,
    /// A deadline ran out while an attempt ran; the job ends with it.
    DeadlineExpired {
        /// Which.
        kind: DeadlineKind,
    },
    /// The job ended.
    Finished {
        /// Its result (`Err(Cancelled)` for a cancelled job).
        outcome: Result<Arc<JobOutput>, Error>,
    },
}

impl JobRecord {
    /// Applies one transition at wall-clock time `at`: the record's state, attempts, result,
    /// `updated_at` and `version` change. A terminal record takes no further change but a
    /// late cancel flag (harmless) — `false` is returned for a transition that changed
    /// nothing.
    pub fn apply(&mut self, transition: &Transition, at: Timestamp) -> bool {
        if self.state.is_terminal() {
            return false;
        }
        match transition {
            Transition::Dispatched { attempt } => {
                self.attempts.push(attempt.clone());
                self.state = JobState::Running;
            }
            Transition::PromptSubmitted { attempt } => {
                if let Some(a) = self.attempt_mut(*attempt) {
                    a.submitted_at.get_or_insert(at);
                }
            }
            Transition::ExecutionStarted { attempt } => {
                if let Some(a) = self.attempt_mut(*attempt) {
                    a.executing_at.get_or_insert(at);
                }
            }
            Transition::AttemptEnded {
                attempt,
                outcome,
                reason,
                duration,
            } => {
                if let Some(a) = self.attempt_mut(*attempt) {
                    a.outcome = outcome.clone();
                    a.reason.clone_from(reason);
                    a.duration = *duration;
                    a.ended_at = Some(at);
                }
            }
            Transition::RetryScheduled { delay } => {
                self.state = if delay.is_zero() {
                    JobState::Queued
                } else {
                    JobState::RetryWait
                };
            }
            Transition::Requeued => self.state = JobState::Queued,
            Transition::CancelRequested => self.cancel_requested = true,
            Transition::DeadlineExpired { kind } => {
                self.deadline_expired.get_or_insert(*kind);
            }
            Transition::Finished { outcome } => match outcome {
                Ok(output) => {
                    self.state = JobState::Completed;
                    self.result = Some(Arc::clone(output));
                }
                Err(Error::Cancelled) => {
                    self.state = JobState::Cancelled;
                    self.error = Some(Error::Cancelled);
                }
                Err(error) => {
                    self.state = JobState::Failed;
                    self.error = Some(error.clone());
                }
            },
        }
        self.updated_at = at;
        self.version += 1;
        true
    }

    fn attempt_mut(&mut self, attempt: u32) -> Option<&mut AttemptRecord> {
        self.attempts
            .iter_mut()
            .rev()
            .find(|a| a.attempt == attempt)
    }
}
