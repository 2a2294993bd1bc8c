//! Server-side clean-up of prompts the pool no longer follows: a cancelled, timed-out,
//! stalled, withdrawn or abandoned attempt's prompt is deleted from its server's queue and
//! interrupted there, by id, in the background. No job ever waits for it.
//!
//! The first try is bounded by [`CleanupSettings::first_try`]; until it ends, the prompt's
//! server slot stays taken (the prompt may still be running there, and the server must not
//! get more prompts than its `max_concurrent`). When the first try fails, the clean-up is
//! tried again with backoff until [`CleanupSettings::window`] has passed (a server that comes
//! back within it still has the prompt removed), then given up. Each clean-up ends with one
//! [`PoolEvent::Cleanup`].

use std::sync::Arc;
use std::time::Duration;

use pool_failover::ServerId;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::command::Command;
use crate::{PoolEvent, ServerBackend};

/// How the pool removes abandoned prompts from their servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanupSettings {
    /// The bound of one try (the delete and the interrupt together).
    pub(crate) first_try: Duration,
    /// How long failed clean-ups are retried.
    pub(crate) window: Duration,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        Self {
            first_try: Duration::from_secs(5),
            window: Duration::from_secs(60),
        }
    }
}

/// How a clean-up ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CleanupOutcome {
    /// The server confirmed the delete and the interrupt.
    Done {
        /// How many tries it took.
        tries: u32,
    },
    /// The server never confirmed within the clean-up window; the prompt may still run there.
    Failed {
        /// How many tries were made.
        tries: u32,
        /// The last error.
        error: String,
    },
}

impl CleanupOutcome {
    /// Whether the server confirmed the clean-up.
    pub fn is_done(&self) -> bool {
        matches!(self, Self::Done { .. })
    }
}

/// One prompt to remove from one server.
pub(crate) struct Cleanup {
    pub(crate) server: ServerId,
    pub(crate) backend: Arc<dyn ServerBackend>,
    pub(crate) prompt_id: String,
    pub(crate) settings: CleanupSettings,
}

impl Cleanup {
    /// Runs the clean-up in the background; `CleanupSettled` reaches the engine when its
    /// first try ended, the [`PoolEvent::Cleanup`] when it is over.
    pub(crate) fn spawn(
        self,
        commands: &mpsc::WeakUnboundedSender<Command>,
        events: broadcast::Sender<PoolEvent>,
    ) {
        // Holds a sender until the first try is reported, so the slot is always released.
        let settled = commands.upgrade();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut settled = settled;
            let mut tries = 0u32;
            let mut pause = Duration::from_millis(500);
            let outcome = loop {
                tries += 1;
                let result = tokio::time::timeout(
                    self.settings.first_try,
                    self.backend.cancel(&self.prompt_id),
                )
                .await;
                let error = match result {
                    Ok(Ok(())) => None,
                    Ok(Err(failure)) => Some(failure.reason),
                    Err(_) => Some(format!("no answer within {:?}", self.settings.first_try)),
                };
                if let Some(tx) = settled.take() {
                    let _ = tx.send(Command::CleanupSettled(self.server.clone()));
                }
                let Some(error) = error else {
                    break CleanupOutcome::Done { tries };
                };
                if started.elapsed() + pause >= self.settings.window {
                    break CleanupOutcome::Failed { tries, error };
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(10));
            };
            if let CleanupOutcome::Failed { error, .. } = &outcome {
                tracing::warn!(server = %self.server, prompt_id = %self.prompt_id, %error, "comfy-pool: server-side clean-up gave up");
            }
            let _ = events.send(PoolEvent::Cleanup {
                server: self.server,
                prompt_id: self.prompt_id,
                outcome,
                at: crate::Timestamp::now(),
            });
        });
    }
}
