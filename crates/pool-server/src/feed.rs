//! [`Feed`]: the pool-wide event stream of the service (`GET /v1/events`, the dashboard):
//! the pool's events — previews as URLs, never bytes — and the service's own (block resets,
//! finished jobs), each serialized once for every subscriber.

use std::sync::Arc;

use pool_core::{JobEvent, JobEventKind, Pool, PoolEvent, RunEvent};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::watch::preview_url;

/// How many events a slow subscriber may fall behind before it is told it lagged.
const CAPACITY: usize = 4096;

/// One event, ready to send: its SSE event name and JSON data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedEvent {
    pub(crate) name: &'static str,
    pub(crate) data: String,
}

/// The pool-wide stream.
#[derive(Debug)]
pub(crate) struct Feed {
    tx: broadcast::Sender<Arc<FeedEvent>>,
}

/// The JSON of a job event, with a preview's bytes replaced by its URL; and its SSE name.
pub(crate) fn job_event(event: &JobEvent) -> (String, Value) {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let JobEventKind::Run(RunEvent::Preview { .. }) = &event.kind
        && let Some(map) = value.as_object_mut()
    {
        map.remove("image");
        map.insert(
            "url".into(),
            Value::String(preview_url(event.job.as_str(), event.seq)),
        );
    }
    let name = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("event")
        .to_owned();
    (name, value)
}

fn pool_event(event: &PoolEvent) -> Option<FeedEvent> {
    let (name, value) = match event {
        PoolEvent::Job(job) => ("job", job_event(job).1),
        PoolEvent::Ready { .. } => ("ready", serde_json::to_value(event).ok()?),
        PoolEvent::Server { .. } => ("server", serde_json::to_value(event).ok()?),
        PoolEvent::Cleanup { .. } => ("cleanup", serde_json::to_value(event).ok()?),
        PoolEvent::Workflow(_) => ("workflow", serde_json::to_value(event).ok()?),
        PoolEvent::Lagged { .. } => ("lagged", serde_json::to_value(event).ok()?),
        _ => ("event", serde_json::to_value(event).ok()?),
    };
    Some(FeedEvent {
        name,
        data: value.to_string(),
    })
}

impl Feed {
    pub(crate) fn new() -> Self {
        Self {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// A subscriber from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<FeedEvent>> {
        self.tx.subscribe()
    }

    fn send(&self, event: FeedEvent) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Tells subscribers that a job's end was handled (the recent list has it).
    pub(crate) fn job_finished(&self, id: &str) {
        self.send(FeedEvent {
            name: "finished",
            data: serde_json::json!({ "job": id }).to_string(),
        });
    }

    /// Forwards the pool's events until `stop`.
    pub(crate) async fn forward(self: Arc<Self>, pool: Pool, stop: CancellationToken) {
        let mut events = pool.subscribe();
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => event,
            };
            let Some(event) = event else { return };
            if let Some(event) = pool_event(&event) {
                self.send(event);
            }
        }
    }
}
