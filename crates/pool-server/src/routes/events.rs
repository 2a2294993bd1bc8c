//! Server-Sent Events: one job's stream (resumable with `Last-Event-ID`, closed after the
//! terminal event) and the pool-wide stream (admin).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt, stream};
use pool_core::{JobEvent, JobEventKind, JobRecord};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use utoipa::IntoParams;

use crate::api_error::{ApiError, ErrorBody};
use crate::auth::{AdminCaller, Caller};
use crate::feed::job_event;
use crate::routes::jobs::visible_record;
use crate::state::AppState;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The query of a job's event stream.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
pub(crate) struct EventParams {
    /// Resume after this event (the same as the `Last-Event-ID` header, which wins).
    pub after: Option<u64>,
}

fn sse_of(event: &JobEvent) -> Event {
    let (name, value) = job_event(event);
    let sse = Event::default().event(name).data(value.to_string());
    if matches!(event.kind, JobEventKind::Lagged { .. }) {
        // A lag names missed events, not one delivered: it moves no resume point.
        sse
    } else {
        sse.id(event.seq.to_string())
    }
}

/// The one event that stands for a finished job the pool no longer keeps.
fn ended_event(record: &JobRecord) -> Event {
    let view = crate::views::JobView::of(record, false);
    let data = serde_json::json!({
        "job": record.id,
        "seq": record.last_seq,
        "at": record.updated_at,
        "type": view.state,
        "error": view.error,
        "outputs": view.outputs,
    });
    Event::default()
        .event(record.state.as_str())
        .id(record.last_seq.to_string())
        .data(data.to_string())
}

/// How often [`stored_end`] reads a job's record.
const STORE_POLL: Duration = Duration::from_millis(500);

/// The terminal event of a job this process's pool does not know, once its stored record
/// ends (nothing if the service stops first, or the record is gone).
fn stored_end(
    state: Arc<AppState>,
    id: String,
    after: u64,
) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    stream::once(async move {
        loop {
            tokio::select! {
                () = state.stopping.cancelled() => return None,
                () = tokio::time::sleep(STORE_POLL) => {}
            }
            let record = match state.pool.record(&id) {
                Some(record) => Some(record),
                None => state.store.get(&id).await.ok().flatten(),
            };
            match record {
                None => return None,
                Some(record) if record.state.is_terminal() => {
                    return (after < record.last_seq).then(|| ended_event(&record));
                }
                Some(_) => {}
            }
        }
    })
    .filter_map(|event| async move { event.map(Ok) })
}

fn sse_response<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

/// A job's events as Server-Sent Events: `id` is the job's event number (`seq`), `event`
/// the event's type (`queued`, `started`, `progress`, `preview` with a `url`, `completed`,
/// …). Send `Last-Event-ID` to resume after an event; the stream closes after the terminal
/// event.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/events", tag = "jobs",
    params(
        ("id" = String, Path, description = "The job id"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this event"),
        EventParams,
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn job_events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<EventParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let record = visible_record(&state, &caller, &id).await?;
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::BadRequest("Last-Event-ID is not an event number".into()))?,
        None => params.after.unwrap_or(0),
    };
    let Some(handle) = state.pool.job(&id) else {
        // Known only to the store: finished long ago, or not taken over yet.
        if record.state.is_terminal() {
            let events = (after < record.last_seq).then(|| Ok(ended_event(&record)));
            return Ok(sse_response(stream::iter(events)));
        }
        // Unfinished and not in this process's pool: another replica of a fleet accepted
        // it a moment ago or runs it. Its end is followed in the store.
        return Ok(sse_response(stored_end(state, id, after)));
    };
    let events = handle.events_after(after);
    let stopping = state.stopping.clone();
    let stream = stream::unfold((events, stopping), |(mut events, stopping)| async move {
        let event = tokio::select! {
            () = stopping.cancelled() => None,
            event = events.recv() => event,
        }?;
        Some((Ok(sse_of(&event)), (events, stopping)))
    });
    Ok(sse_response(stream))
}

/// Every event of the pool as Server-Sent Events (admin): `job` (each job's events),
/// `server` (state changes), `workflow` (blocks, probes, unblocks), `finished` (a job's end
/// was handled), `ready`, `cleanup`, `lagged`.
#[utoipa::path(
    get, path = "/v1/events", tag = "admin",
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(crate) async fn pool_events(
    State(state): State<Arc<AppState>>,
    _admin: AdminCaller,
) -> Response {
    let stopping = state.stopping.clone();
    let events = BroadcastStream::new(state.feed.subscribe())
        .map(|item| {
            let event = match item {
                Ok(event) => Event::default().event(event.name).data(event.data.as_str()),
                Err(BroadcastStreamRecvError::Lagged(missed)) => Event::default()
                    .event("lagged")
                    .data(serde_json::json!({ "missed": missed }).to_string()),
            };
            Ok::<_, Infallible>(event)
        })
        .take_until(async move { stopping.cancelled().await });
    sse_response(events)
}
