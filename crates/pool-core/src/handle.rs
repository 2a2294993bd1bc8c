//! [`JobHandle`]: the caller's grip on one job; [`JobEvents`]: its event stream.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use parking_lot::Mutex;
use pool_failover::ServerId;
use tokio::sync::{Notify, broadcast, mpsc};

use crate::engine::Command;
use crate::{Error, JobEvent, JobEventKind, JobId, JobKey, JobOutput, PoolEvent, Result};

/// Where a job stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobStatus {
    /// Waiting for a server (or for its retry backoff to end).
    Queued,
    /// Running on a server.
    Running {
        /// The server.
        server: ServerId,
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// Finished successfully.
    Completed,
    /// Failed for good.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

type Outcome = Result<Arc<JobOutput>>;

#[derive(Debug)]
struct JobState {
    status: JobStatus,
    prompt_id: Option<String>,
    outcome: Option<Outcome>,
    subscribers: Vec<mpsc::UnboundedSender<JobEvent>>,
}

/// The state of one job shared by the engine, its attempt task and its handles.
#[derive(Debug)]
pub(crate) struct JobShared {
    pub(crate) id: JobId,
    pub(crate) key: JobKey,
    priority: i32,
    state: Mutex<JobState>,
    done: Notify,
}

impl JobShared {
    pub(crate) fn new(id: JobId, key: JobKey, priority: i32) -> Self {
        Self {
            id,
            key,
            priority,
            state: Mutex::new(JobState {
                status: JobStatus::Queued,
                prompt_id: None,
                outcome: None,
                subscribers: Vec::new(),
            }),
            done: Notify::new(),
        }
    }

    /// Publishes one event of this job to its subscribers and the pool's channel, in order.
    pub(crate) fn emit(&self, kind: JobEventKind, events: &broadcast::Sender<PoolEvent>) {
        let mut state = self.state.lock();
        if state.outcome.is_some() {
            return;
        }
        match &kind {
            JobEventKind::Started {
                server, attempt, ..
            } => {
                state.status = JobStatus::Running {
                    server: server.clone(),
                    attempt: *attempt,
                };
                state.prompt_id = None;
            }
            JobEventKind::Accepted { prompt_id, .. } => state.prompt_id = Some(prompt_id.clone()),
            JobEventKind::Retrying { .. } => state.status = JobStatus::Queued,
            _ => {}
        }
        self.send(&mut state, kind, events);
    }

    /// Ends the job: stores its outcome and publishes its terminal event. Only the first call
    /// has an effect; returns whether it was the first.
    pub(crate) fn finish(&self, outcome: Outcome, events: &broadcast::Sender<PoolEvent>) -> bool {
        let mut state = self.state.lock();
        if state.outcome.is_some() {
            return false;
        }
        let (status, kind) = terminal(&outcome);
        state.status = status;
        state.outcome = Some(outcome);
        self.send(&mut state, kind, events);
        state.subscribers.clear();
        drop(state);
        self.done.notify_waiters();
        true
    }

    fn send(
        &self,
        state: &mut JobState,
        kind: JobEventKind,
        events: &broadcast::Sender<PoolEvent>,
    ) {
        let event = JobEvent {
            job: self.id.clone(),
            kind,
        };
        state
            .subscribers
            .retain(|tx| tx.send(event.clone()).is_ok());
        let _ = events.send(PoolEvent::Job(event));
    }

    fn status(&self) -> JobStatus {
        self.state.lock().status.clone()
    }

    fn outcome(&self) -> Option<Outcome> {
        self.state.lock().outcome.clone()
    }

    fn subscribe(&self) -> mpsc::UnboundedReceiver<JobEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut state = self.state.lock();
        let replay = |kind| JobEvent {
            job: self.id.clone(),
            kind,
        };
        if let Some(outcome) = &state.outcome {
            let _ = tx.send(replay(terminal(outcome).1));
            return rx;
        }
        match &state.status {
            JobStatus::Running { server, attempt } => {
                let _ = tx.send(replay(JobEventKind::Started {
                    server: server.clone(),
                    attempt: *attempt,
                    probe: false,
                }));
                if let Some(prompt_id) = &state.prompt_id {
                    let _ = tx.send(replay(JobEventKind::Accepted {
                        server: server.clone(),
                        prompt_id: prompt_id.clone(),
                    }));
                }
            }
            _ => {
                let _ = tx.send(replay(JobEventKind::Queued {
                    priority: self.priority,
                }));
            }
        }
        state.subscribers.push(tx);
        rx
    }
}

fn terminal(outcome: &Outcome) -> (JobStatus, JobEventKind) {
    match outcome {
        Ok(output) => (
            JobStatus::Completed,
            JobEventKind::Completed {
                output: Arc::clone(output),
            },
        ),
        Err(Error::Cancelled) => (JobStatus::Cancelled, JobEventKind::Cancelled),
        Err(error) => (
            JobStatus::Failed,
            JobEventKind::Failed {
                error: error.clone(),
                will_retry: false,
            },
        ),
    }
}

/// The caller's handle on one job: its id, status, event stream, result and cancel.
///
/// Cheap to clone (an `Arc` inside); every clone and every handle returned for the same job
/// id sees the same job.
#[derive(Debug, Clone)]
pub struct JobHandle {
    shared: Arc<JobShared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl JobHandle {
    pub(crate) fn new(shared: Arc<JobShared>, commands: mpsc::UnboundedSender<Command>) -> Self {
        Self { shared, commands }
    }

    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.shared.id
    }

    /// Where the job stands now.
    pub fn status(&self) -> JobStatus {
        self.shared.status()
    }

    /// The job's events from now on. The stream starts with the job's current state
    /// (`Queued`, or `Started`/`Accepted` if it runs, or its terminal event if it ended) and
    /// ends after the terminal event. Events are buffered until read.
    pub fn events(&self) -> JobEvents {
        JobEvents {
            rx: self.shared.subscribe(),
        }
    }

    /// Waits for the job to end: its output, or why it failed or was cancelled.
    ///
    /// # Errors
    ///
    /// The job's final error ([`Error::Cancelled`] if it was cancelled).
    pub async fn result(&self) -> Result<Arc<JobOutput>> {
        loop {
            let notified = self.shared.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(outcome) = self.shared.outcome() {
                return outcome;
            }
            notified.await;
        }
    }

    /// The job's outcome if it has ended.
    pub fn try_result(&self) -> Option<Result<Arc<JobOutput>>> {
        self.shared.outcome()
    }

    /// Asks the pool to cancel the job: a queued job is dropped, a running one is interrupted
    /// on its server (and deleted from the server's queue). Ends with a `Cancelled` event
    /// unless the job ended first.
    pub fn cancel(&self) {
        let _ = self.commands.send(Command::Cancel(self.shared.key));
    }
}

/// The event stream of one job ([`JobHandle::events`]); also a [`Stream`].
#[derive(Debug)]
pub struct JobEvents {
    rx: mpsc::UnboundedReceiver<JobEvent>,
}

impl JobEvents {
    /// The next event; `None` after the terminal event.
    pub async fn recv(&mut self) -> Option<JobEvent> {
        self.rx.recv().await
    }
}

impl Stream for JobEvents {
    type Item = JobEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<JobEvent>> {
        self.rx.poll_recv(cx)
    }
}
