//! The watcher of one job: a task per live job that follows its event stream and does what
//! the service owes a job — phases for the gauges, the latest preview, the dispatch latency —
//! and, when it ends, the metrics, the copied outputs and the webhook.

use std::sync::Arc;

use pool_core::{JobEventKind, JobHandle, JobRecord, JobState, RunEvent};
use tokio::time::Instant;

use crate::state::AppState;
use crate::tracker::{Phase, Preview, RecentJob};
use crate::views::{JobView, segment};

/// Follows `handle` until its job ends or the pool lets go of it. `submitted` is when this
/// process accepted it (`None` for a job taken over from the store).
pub(crate) async fn watch(state: Arc<AppState>, handle: JobHandle, submitted: Option<Instant>) {
    let id = handle.id().to_string();
    let mut events = handle.events_after(0);
    let mut dispatched = false;
    let mut ended = false;
    while let Some(event) = events.recv().await {
        match &event.kind {
            JobEventKind::Queued { .. } | JobEventKind::Retrying { .. } => {
                state.tracker.set_phase(&id, Phase::Queued);
            }
            JobEventKind::Started { .. } => {
                state.tracker.set_phase(&id, Phase::Running);
                if !dispatched {
                    dispatched = true;
                    let latency = match submitted {
                        Some(at) => at.elapsed(),
                        None => event
                            .at
                            .saturating_duration_since(handle.record().created_at),
                    };
                    state.metrics.dispatched(latency);
                }
            }
            JobEventKind::Run(RunEvent::Preview { format, image, .. }) if !image.is_empty() => {
                state.tracker.set_preview(
                    &id,
                    Preview {
                        seq: event.seq,
                        format: *format,
                        image: image.clone(),
                    },
                );
            }
            kind if kind.is_terminal() => ended = true,
            _ => {}
        }
    }
    let record = handle.record();
    if !ended && !record.state.is_terminal() {
        // The pool detached (shutdown): the job goes on under the next start.
        state.tracker.finish(&id, None);
        return;
    }
    finish(&state, &record).await;
}

/// What the service does once for every job that ended.
pub(crate) async fn finish(state: &AppState, record: &JobRecord) {
    let id = record.id.to_string();
    state.metrics.ended(record);
    if record.state == JobState::Completed {
        state.outputs.keep(record, &state.fleet).await;
    }
    let view = JobView::of(record, false);
    let thumbnail = view
        .outputs
        .iter()
        .find(|o| o.filename.ends_with(".png") || o.filename.ends_with(".jpg"))
        .map(|o| o.url.clone());
    state.tracker.finish(
        &id,
        Some(RecentJob {
            id: id.clone(),
            tenant: record.tenant().unwrap_or_default().to_owned(),
            state: view.state.clone(),
            server: view.server.clone(),
            error: view.error.as_ref().map(|e| e.code.clone()),
            message: view.error.as_ref().map(|e| e.message.clone()),
            thumbnail,
            ended_at: record.updated_at.to_string(),
        }),
    );
    if let Err(error) = state.webhooks.job_ended(record).await {
        tracing::warn!(job = %id, %error, "cannot queue the job's webhook");
    }
    state.feed.job_finished(&id);
}

/// The URL of a job's preview image of event `seq`.
pub(crate) fn preview_url(job: &str, seq: u64) -> String {
    format!("/v1/jobs/{}/preview?seq={seq}", segment(job))
}
