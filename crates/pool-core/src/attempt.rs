//! The task that runs one attempt: uploads, run, event forwarding, the between-events and
//! total deadlines, and stopping on request. It reports back with one [`AttemptDone`].

use std::sync::Arc;

use pool_failover::{FailureClass, ServerId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::engine::{Command, StopReason};
use crate::handle::JobShared;
use crate::{
    AttemptFailure, AttemptOutput, AttemptRequest, BackendEvent, EventSink, InputFile,
    JobEventKind, JobKey, PoolEvent, SeedAssignment, ServerBackend,
};

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum AttemptEnd {
    Finished(Result<AttemptOutput, AttemptFailure>),
    Stopped(StopReason),
    TimedOut,
}

/// The report of one attempt to the engine.
#[derive(Debug)]
pub(crate) struct AttemptDone {
    pub(crate) key: JobKey,
    pub(crate) server: ServerId,
    pub(crate) prompt_id: String,
    pub(crate) started: Instant,
    pub(crate) seeds: Vec<SeedAssignment>,
    pub(crate) end: AttemptEnd,
}

pub(crate) struct AttemptTask {
    pub(crate) key: JobKey,
    pub(crate) server: ServerId,
    pub(crate) backend: Arc<dyn ServerBackend>,
    pub(crate) request: AttemptRequest,
    pub(crate) inputs: Option<Arc<[InputFile]>>,
    pub(crate) seeds: Vec<SeedAssignment>,
    pub(crate) shared: Arc<JobShared>,
    pub(crate) events: broadcast::Sender<PoolEvent>,
    pub(crate) between_events: Option<std::time::Duration>,
    pub(crate) total_deadline: Option<Instant>,
    pub(crate) stop: oneshot::Receiver<StopReason>,
    pub(crate) done: mpsc::WeakUnboundedSender<Command>,
}

pub(crate) async fn run(task: AttemptTask) {
    let AttemptTask {
        key,
        server,
        backend,
        request,
        inputs,
        seeds,
        shared,
        events,
        between_events,
        total_deadline,
        mut stop,
        done,
    } = task;
    // Hold a sender for the whole attempt so its report cannot be lost.
    let Some(done) = done.upgrade() else { return };
    let started = Instant::now();
    let prompt_id = request.prompt_id.clone();
    let outputs = request.outputs.clone();
    let (sink, mut rx) = EventSink::channel();
    let work = {
        let backend = Arc::clone(&backend);
        async move {
            for file in inputs.iter().flat_map(|files| files.iter()) {
                backend.upload(file).await?;
            }
            backend.run(request, sink).await
        }
    };
    tokio::pin!(work);
    let far = started + std::time::Duration::from_secs(86_400 * 365);
    let idle = tokio::time::sleep_until(between_events.map_or(far, |d| started + d));
    tokio::pin!(idle);
    let total = tokio::time::sleep_until(total_deadline.unwrap_or(far));
    tokio::pin!(total);
    let forward = |event: BackendEvent| {
        if let Some(kind) = translate(event, &server, &prompt_id, &outputs) {
            shared.emit(kind, &events);
        }
    };
    let end = loop {
        tokio::select! {
            biased;
            reason = &mut stop => {
                let reason = reason.unwrap_or(StopReason::Cancel);
                let _ = backend.cancel(&prompt_id).await;
                break AttemptEnd::Stopped(reason);
            }
            Some(event) = rx.recv() => {
                forward(event);
                if let Some(limit) = between_events {
                    idle.as_mut().reset(Instant::now() + limit);
                }
            }
            result = &mut work => {
                while let Ok(event) = rx.try_recv() {
                    forward(event);
                }
                break AttemptEnd::Finished(result);
            }
            () = &mut idle, if between_events.is_some() => {
                let _ = backend.cancel(&prompt_id).await;
                let limit = between_events.unwrap_or_default();
                break AttemptEnd::Finished(Err(AttemptFailure::new(
                    FailureClass::Stuck,
                    format!("no event from the server for {limit:?}; interrupted"),
                )));
            }
            () = &mut total, if total_deadline.is_some() => {
                let _ = backend.cancel(&prompt_id).await;
                break AttemptEnd::TimedOut;
            }
        }
    };
    let report = AttemptDone {
        key,
        server,
        prompt_id,
        started,
        seeds,
        end,
    };
    let _ = done.send(Command::AttemptDone(Box::new(report)));
}

fn translate(
    event: BackendEvent,
    server: &ServerId,
    prompt_id: &str,
    outputs: &crate::OutputSelection,
) -> Option<JobEventKind> {
    Some(match event {
        BackendEvent::Accepted => JobEventKind::Accepted {
            server: server.clone(),
            prompt_id: prompt_id.to_owned(),
        },
        BackendEvent::Started => JobEventKind::Executing {
            server: server.clone(),
        },
        BackendEvent::Executing { node } => JobEventKind::Node { node },
        BackendEvent::Progress { node, value, max } => JobEventKind::Progress { node, value, max },
        BackendEvent::Preview {
            node,
            format,
            image,
            metadata,
        } => JobEventKind::Preview {
            node,
            format,
            image,
            metadata,
        },
        BackendEvent::Output { node, data } => {
            if !outputs.includes(&node) {
                return None;
            }
            JobEventKind::Output { node, data }
        }
        _ => return None,
    })
}
