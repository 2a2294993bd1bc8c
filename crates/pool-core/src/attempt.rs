//! The task that runs one attempt: uploads, run, event forwarding, the between-events
//! deadline, and stopping on request. It reports back with one [`AttemptDone`] and never
//! waits on the server to stop: interrupting the prompt there is the engine's background
//! clean-up (see `cleanup`).

use std::sync::Arc;
use std::time::Duration;

use pool_failover::{FailureClass, ServerId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::command::Command;
use crate::engine::StopReason;
use crate::{
    AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, JobKey, RunEvent,
    ServerBackend,
};

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    Finished(Result<AttemptOutput, AttemptFailure>),
    Stopped(StopReason),
}

impl AttemptEnd {
    /// Whether the attempt's prompt may still be queued or running on its server, so that
    /// the pool must delete or interrupt it there: the attempt was cut short, or it failed
    /// in a way that says nothing certain about the prompt (the server was unreachable, the
    /// submission timed out, the run stalled).
    pub(crate) fn may_leave_prompt(&self) -> bool {
        match self {
            // A detaching pool leaves the prompt running on purpose.
            Self::Stopped(StopReason::Detach) => false,
            Self::Stopped(_) => true,
            Self::Finished(Ok(_)) => false,
            Self::Finished(Err(f)) => {
                matches!(f.class, FailureClass::ServerDown | FailureClass::Stuck)
            }
        }
    }
}

/// The report of one attempt to the engine.
#[derive(Debug)]
pub(crate) struct AttemptDone {
    pub(crate) key: JobKey,
    pub(crate) attempt: u32,
    pub(crate) server: ServerId,
    pub(crate) prompt_id: String,
    pub(crate) end: AttemptEnd,
    /// Whether anything reached the server (false: stopped before the write-ahead settled,
    /// so there is no prompt to clean up).
    pub(crate) submitted: bool,
    /// The attempt freed its server's slot before it ended (`Command::SlotFreed`).
    pub(crate) slot_freed: bool,
}

/// What an attempt does on its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptMode {
    /// Upload the inputs and submit the prompt.
    Run,
    /// Re-attach to a prompt submitted before (recovery after a restart).
    Follow,
}

/// Why an attempt stopped, once its submission (if under way) settled: a lost lease
/// leaves a prompt the server accepted to the next holder, and withdraws one it did not.
fn settled(reason: StopReason, accepted: bool) -> StopReason {
    match reason {
        StopReason::LeaseLost if accepted => StopReason::Detach,
        StopReason::LeaseLost => StopReason::Withdraw,
        other => other,
    }
}

pub(crate) struct AttemptTask {
    pub(crate) key: JobKey,
    pub(crate) mode: AttemptMode,
    /// Whether the server is known to have the prompt: `false` for a new run, and for a
    /// followed attempt whose acceptance was never recorded (its submission may not have
    /// reached the server; absent there, it is withdrawn rather than counted lost).
    pub(crate) confirmed: bool,
    /// Resolves once the attempt's dispatch (its prompt id) is durable: nothing is sent to
    /// the server before (write-ahead). `None` without a store.
    pub(crate) durable: Option<oneshot::Receiver<()>>,
    pub(crate) attempt: u32,
    pub(crate) server: ServerId,
    pub(crate) backend: Arc<dyn ServerBackend>,
    pub(crate) request: AttemptRequest,
    pub(crate) inputs: Option<Arc<[InputFile]>>,
    pub(crate) between_events: Option<Duration>,
    pub(crate) stop: oneshot::Receiver<StopReason>,
    pub(crate) done: mpsc::WeakUnboundedSender<Command>,
}

pub(crate) async fn run(task: AttemptTask) {
    let AttemptTask {
        key,
        mode,
        confirmed,
        durable,
        attempt,
        server,
        backend,
        request,
        inputs,
        between_events,
        mut stop,
        done,
    } = task;
    // Hold a sender for the whole attempt so its report cannot be lost.
    let Some(done) = done.upgrade() else { return };
    let started = Instant::now();
    let prompt_id = request.prompt_id.clone();
    if let Some(durable) = durable {
        // Write-ahead: the prompt id is in the store before the server hears of it.
        let stopped = tokio::select! {
            biased;
            reason = &mut stop => Some(reason.unwrap_or(StopReason::Cancel)),
            persisted = durable => persisted.is_err().then_some(StopReason::Detach),
        };
        if let Some(reason) = stopped {
            let report = AttemptDone {
                key,
                attempt,
                server,
                prompt_id,
                // Nothing was sent: nothing for the next holder.
                end: AttemptEnd::Stopped(settled(reason, false)),
                submitted: false,
                slot_freed: false,
            };
            let _ = done.send(Command::AttemptDone(Box::new(report)));
            return;
        }
    }
    let (sink, mut rx) = EventSink::channel();
    let work = {
        let backend = Arc::clone(&backend);
        async move {
            if mode == AttemptMode::Follow {
                return backend.follow(request, sink).await;
            }
            for file in inputs.iter().flat_map(|files| files.iter()) {
                backend.upload(file).await?;
            }
            backend.run(request, sink).await
        }
    };
    tokio::pin!(work);
    // The between-events deadline runs only while the prompt executes (from its first event
    // after `Accepted`): uploads and the wait in the server's own queue are not silence.
    let far = started + Duration::from_secs(86_400 * 365);
    let idle = tokio::time::sleep_until(far);
    tokio::pin!(idle);
    let mut executing = false;
    let mut slot_freed = false;
    // Whether the server has the prompt (it accepted it, or it was there before).
    let mut accepted = confirmed;
    // A lost lease or a detach that waits for the submission under way to be answered:
    // stopping at once could leave a prompt arriving after the job was queued again, or a
    // record naming a prompt that never arrives.
    let mut settling: Option<StopReason> = None;
    let prompt_done = rx.done_signal();
    let end = loop {
        tokio::select! {
            biased;
            reason = &mut stop, if settling.is_none() => {
                let reason = reason.unwrap_or(StopReason::Cancel);
                if mode == AttemptMode::Run
                    && !accepted
                    && matches!(reason, StopReason::LeaseLost | StopReason::Detach)
                {
                    settling = Some(reason);
                    continue;
                }
                break AttemptEnd::Stopped(settled(reason, accepted));
            }
            // The server is done with the prompt: its slot takes the next one before the
            // events still on their way and the result are handled.
            () = prompt_done.notified(), if !slot_freed => {
                slot_freed = true;
                let _ = done.send(Command::SlotFreed(server.clone()));
            }
            Some(event) = rx.recv() => {
                if !executing && !matches!(event, RunEvent::Accepted { .. }) {
                    executing = true;
                    if !matches!(event, RunEvent::Executing) {
                        // A backend that skipped the start: say it for it.
                        let _ = done.send(Command::Run { key, attempt, event: RunEvent::Executing });
                    }
                }
                let was_accepted = matches!(event, RunEvent::Accepted { .. });
                let _ = done.send(Command::Run { key, attempt, event });
                if was_accepted {
                    accepted = true;
                    if let Some(reason) = settling {
                        break AttemptEnd::Stopped(settled(reason, true));
                    }
                }
                if executing && let Some(limit) = between_events {
                    idle.as_mut().reset(Instant::now() + limit);
                }
            }
            result = &mut work => {
                while let Some(event) = rx.try_recv() {
                    accepted |= matches!(event, RunEvent::Accepted { .. });
                    let _ = done.send(Command::Run { key, attempt, event });
                }
                if let Some(reason) = settling
                    && result.is_err()
                {
                    // The submission failed: the server has nothing.
                    break AttemptEnd::Stopped(settled(reason, accepted));
                }
                if mode == AttemptMode::Follow
                    && !confirmed
                    && let Err(failure) = &result
                    && failure.class == FailureClass::ServerDown
                {
                    // A submission never confirmed and not found on the server: it never
                    // arrived (its process stopped or died while sending it). The job goes
                    // back to the queue; the server is not taken for broken.
                    break AttemptEnd::Stopped(StopReason::Withdraw);
                }
                break AttemptEnd::Finished(result);
            }
            () = &mut idle, if executing && between_events.is_some() => {
                let limit = between_events.unwrap_or_default();
                break AttemptEnd::Finished(Err(AttemptFailure::new(
                    FailureClass::Stuck,
                    format!("no event from the server for {limit:?}; interrupted"),
                )));
            }
        }
    };
    let report = AttemptDone {
        key,
        attempt,
        server,
        prompt_id,
        end,
        submitted: true,
        slot_freed,
    };
    let _ = done.send(Command::AttemptDone(Box::new(report)));
}
