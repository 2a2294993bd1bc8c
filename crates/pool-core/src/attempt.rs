//! The task that runs one attempt: uploads, run, event forwarding, the between-events
//! deadline, and stopping on request. It reports back with one [`AttemptDone`] and never
//! waits on the server to stop: interrupting the prompt there is the engine's background
//! clean-up (see `cleanup`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use pool_failover::{FailureClass, ServerId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

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
    /// Whether the server may hold a prompt of the attempt (false: stopped before the
    /// write-ahead settled, or its prompt was taken back from the server's queue before it
    /// started), so that it must be cleaned up there.
    pub(crate) submitted: bool,
    /// The attempt freed its server's slot before it ended (`Command::SlotFreed`).
    pub(crate) slot_freed: bool,
    /// It followed a prompt submitted before (recovery): that prompt being gone says
    /// nothing about the server (it may never have been submitted).
    pub(crate) followed: bool,
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
    /// Whether the prompt is known to have started executing: for a followed attempt,
    /// whether the store recorded it executing (a prompt that never started and is gone
    /// from the server ran nothing: it is withdrawn, not counted lost); `false` for a run.
    pub(crate) started: bool,
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
    /// Asks the attempt to take its prompt back while it still waits in the server's queue
    /// (queue-ahead); `None` when the pool does not queue ahead.
    pub(crate) pull: Option<oneshot::Receiver<()>>,
    pub(crate) done: mpsc::WeakUnboundedSender<Command>,
}

pub(crate) async fn run(task: AttemptTask) {
    let AttemptTask {
        key,
        mode,
        confirmed,
        started,
        durable,
        attempt,
        server,
        backend,
        request,
        inputs,
        between_events,
        mut stop,
        pull,
        done,
    } = task;
    // Hold a sender for the whole attempt so its report cannot be lost.
    let Some(done) = done.upgrade() else { return };
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
                followed: mode == AttemptMode::Follow,
            };
            let _ = done.send(Command::AttemptDone(Box::new(report)));
            return;
        }
    }
    let (sink, mut rx) = EventSink::channel();
    // Boxed, as the deadlines below are made only when needed: a task's future that stays
    // under a kilobyte is served from the allocator's per-thread cache, one over it is not.
    let mut work = {
        let backend = Arc::clone(&backend);
        Box::pin(async move {
            if mode == AttemptMode::Follow {
                return backend.follow(request, sink).await;
            }
            for file in inputs.iter().flat_map(|files| files.iter()) {
                backend.upload(file).await?;
            }
            backend.run(request, sink).await
        })
    };
    // The between-events deadline runs only while the prompt executes (from its first event
    // after `Accepted`): uploads and the wait in the server's own queue are not silence.
    let mut idle = Deadline::default();
    let mut executing = false;
    let mut slot_freed = false;
    // Whether the server has the prompt (it accepted it, or it was there before).
    let mut accepted = confirmed;
    // A lost lease or a detach that waits for the submission under way to be answered:
    // stopping at once could leave a prompt arriving after the job was queued again, or a
    // record naming a prompt that never arrives.
    let mut settling: Option<StopReason> = None;
    // ... for a bounded time: a server (or backend) that never answers the submission does
    // not hold a shutdown or a lease change for longer.
    let mut settle_by = Deadline::default();
    let done_signal = rx.done_signal();
    // One wait for the whole attempt (the signal comes once): made afresh in every turn of
    // the loop, it would join and leave the signal's waiters at every event.
    let prompt_done = done_signal.notified();
    tokio::pin!(prompt_done);
    let mut pull = Pull::new(pull);
    // Its prompt was taken back from the server's queue before it started (queue-ahead): it
    // never runs there, nothing is left to clean up, and the job is placed again (withdrawn).
    let mut pulled_back = false;
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
                    settle_by.set(Instant::now() + SETTLE_BOUND);
                    continue;
                }
                break AttemptEnd::Stopped(settled(reason, accepted));
            }
            // No answer in time: the prompt may or may not reach the server; it is left to
            // whoever takes the job up next (as if accepted), who finds it there (and follows
            // it) or not (and queues the job again).
            () = settle_by.wait(), if settling.is_some() => {
                let reason = settling.unwrap_or(StopReason::Detach);
                break AttemptEnd::Stopped(settled(reason, true));
            }
            // The server is done with the prompt: its slot takes the next one before the
            // events still on their way and the result are handled.
            () = &mut prompt_done, if !slot_freed => {
                slot_freed = true;
                let _ = done.send(Command::SlotFreed(server.clone()));
            }
            step = pull.next() => match step {
                PullStep::Asked => {
                    if !pull.on_asked(executing, accepted, &backend, &prompt_id) {
                        let _ = done.send(Command::PullRefused { key, attempt });
                    }
                }
                PullStep::Answer(Ok(true)) => {
                    pulled_back = true;
                    break AttemptEnd::Stopped(StopReason::Withdraw);
                }
                PullStep::Answer(Ok(false)) => {
                    let _ = done.send(Command::PullRefused { key, attempt });
                }
                PullStep::Answer(Err(failure)) => break AttemptEnd::Finished(Err(failure)),
            },
            Some(event) = rx.recv() => {
                let is_acceptance = matches!(event, RunEvent::Accepted { .. });
                if !executing && !is_acceptance {
                    executing = true;
                    if !matches!(event, RunEvent::Executing) {
                        // A backend that skipped the start: say it for it.
                        let _ = done.send(Command::Run { key, attempt, event: RunEvent::Executing });
                    }
                }
                let _ = done.send(Command::Run { key, attempt, event });
                if is_acceptance {
                    accepted = true;
                    if let Some(reason) = settling {
                        break AttemptEnd::Stopped(settled(reason, true));
                    }
                    pull.on_accepted(&backend, &prompt_id);
                }
                if executing && let Some(limit) = between_events {
                    idle.set(Instant::now() + limit);
                }
            }
            result = &mut work => {
                while let Some(event) = rx.try_recv() {
                    accepted |= matches!(event, RunEvent::Accepted { .. });
                    let _ = done.send(Command::Run { key, attempt, event });
                }
                // A run that failed while its prompt was being taken back (the prompt left the
                // queue: "lost") ends as the server's answer to the pull says.
                if result.is_err()
                    && pull.is_withdrawing()
                    && matches!(pull.next().await, PullStep::Answer(Ok(true)))
                {
                    pulled_back = true;
                    break AttemptEnd::Stopped(StopReason::Withdraw);
                }
                if let Some(reason) = settling
                    && result.is_err()
                {
                    // The submission failed: the server has nothing.
                    break AttemptEnd::Stopped(settled(reason, accepted));
                }
                if mode == AttemptMode::Follow
                    && (!confirmed || !(started || executing))
                    && let Err(failure) = &result
                    && failure.class == FailureClass::ServerDown
                {
                    // Not found on the server, and it never ran there: a submission never
                    // confirmed never arrived (its process stopped or died while sending
                    // it); one confirmed but never started was taken out of the server's
                    // queue before it ran (a pull-back whose end a crash kept from the
                    // store, or a server restart). The job goes back to the queue, the
                    // attempt does not count against `max_attempts`, and the server is not
                    // taken for broken.
                    break AttemptEnd::Stopped(StopReason::Withdraw);
                }
                break AttemptEnd::Finished(result);
            }
            () = idle.wait(), if executing && between_events.is_some() => {
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
        submitted: !pulled_back,
        slot_freed,
        followed: mode == AttemptMode::Follow,
    };
    let _ = done.send(Command::AttemptDone(Box::new(report)));
}

/// A deadline made when it is first set (an attempt without one holds no timer).
#[derive(Default)]
struct Deadline(Option<Pin<Box<Sleep>>>);

impl Deadline {
    fn set(&mut self, at: Instant) {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().reset(at),
            None => self.0 = Some(Box::pin(tokio::time::sleep_until(at))),
        }
    }

    /// Resolves when the deadline passes; never before it is set.
    async fn wait(&mut self) {
        match &mut self.0 {
            Some(sleep) => sleep.as_mut().await,
            None => std::future::pending().await,
        }
    }
}

/// How long a lost lease or a detach waits for a submission under way to be answered.
const SETTLE_BOUND: Duration = Duration::from_secs(3);

/// How long one try to take a prompt back may take.
const WITHDRAW_TRY: Duration = Duration::from_secs(5);
/// Tries to take a prompt back before the server counts as not answering.
const WITHDRAW_TRIES: u32 = 3;

/// An attempt's side of a pull (queue-ahead): asked by the engine, the prompt is withdrawn
/// from the server's queue once the server accepted it and unless it started executing.
struct Pull {
    /// The engine's request, until it came.
    ask: Option<oneshot::Receiver<()>>,
    /// Asked before the server accepted the prompt: withdraw once it does.
    deferred: bool,
    /// The withdrawal in progress.
    withdrawing: Option<Withdrawal>,
}

/// A withdrawal in progress: the server's answer, `true` if the prompt was taken back.
type Withdrawal =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, AttemptFailure>> + Send>>;

/// What happened to a pull.
enum PullStep {
    /// The engine asked for the prompt back.
    Asked,
    /// The server's answer to the withdrawal: `true` if the prompt was taken back.
    Answer(Result<bool, AttemptFailure>),
}

impl Pull {
    fn new(ask: Option<oneshot::Receiver<()>>) -> Self {
        Self {
            ask,
            deferred: false,
            withdrawing: None,
        }
    }

    /// The next step: the engine's request, then the server's answer; never resolves when
    /// there is nothing to wait for (an engine that drops its request never asks).
    async fn next(&mut self) -> PullStep {
        if let Some(withdrawing) = self.withdrawing.as_mut() {
            let answer = withdrawing.await;
            self.withdrawing = None;
            return PullStep::Answer(answer);
        }
        let Some(ask) = self.ask.as_mut() else {
            return std::future::pending().await;
        };
        let asked = ask.await.is_ok();
        self.ask = None;
        if asked {
            PullStep::Asked
        } else {
            std::future::pending().await
        }
    }

    /// The engine asked: withdraw now, or once the server accepted the prompt. Returns
    /// false if the pull is refused at once (the prompt started).
    fn on_asked(
        &mut self,
        executing: bool,
        accepted: bool,
        backend: &Arc<dyn ServerBackend>,
        prompt_id: &str,
    ) -> bool {
        if executing {
            return false;
        }
        if accepted {
            self.start(backend, prompt_id);
        } else {
            self.deferred = true;
        }
        true
    }

    /// The server accepted the prompt: a pull asked before starts now.
    fn on_accepted(&mut self, backend: &Arc<dyn ServerBackend>, prompt_id: &str) {
        if std::mem::take(&mut self.deferred) {
            self.start(backend, prompt_id);
        }
    }

    fn start(&mut self, backend: &Arc<dyn ServerBackend>, prompt_id: &str) {
        let backend = Arc::clone(backend);
        let prompt_id = prompt_id.to_owned();
        self.withdrawing = Some(Box::pin(async move {
            let mut pause = Duration::from_millis(200);
            let mut tries = 0;
            loop {
                tries += 1;
                let failure = match tokio::time::timeout(WITHDRAW_TRY, backend.withdraw(&prompt_id))
                    .await
                {
                    Ok(Ok(taken)) => return Ok(taken),
                    Ok(Err(failure)) => failure,
                    Err(_) => AttemptFailure::new(
                        FailureClass::ServerDown,
                        format!(
                            "no answer within {WITHDRAW_TRY:?} to taking prompt {prompt_id} back"
                        ),
                    ),
                };
                if tries >= WITHDRAW_TRIES {
                    // Whether the prompt is still there is unknown: the attempt fails and
                    // the prompt is cleaned up like any abandoned one.
                    return Err(AttemptFailure::new(
                        FailureClass::ServerDown,
                        format!("could not take a queued prompt back: {}", failure.reason),
                    ));
                }
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }));
    }

    fn is_withdrawing(&self) -> bool {
        self.withdrawing.is_some()
    }
}
