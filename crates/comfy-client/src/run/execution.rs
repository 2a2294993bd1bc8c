//! `Execution`: the handle of one running prompt.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{Notify, oneshot};

use super::RunOutput;
use super::buffer;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::event::Event;

/// Shared between the handle and the driver: cancellation was requested.
#[derive(Debug, Default)]
pub(crate) struct CancelFlag {
    requested: AtomicBool,
    notify: Notify,
}

impl CancelFlag {
    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.is_requested() {
                return;
            }
            notified.await;
        }
    }

    fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// Cancels one run; cheap to clone, usable while another task awaits the result.
#[derive(Debug, Clone)]
pub struct CancelHandle {
    client: Client,
    prompt_id: String,
    flag: Arc<CancelFlag>,
}

impl CancelHandle {
    pub(crate) fn new(client: Client, prompt_id: String, flag: Arc<CancelFlag>) -> Self {
        Self {
            client,
            prompt_id,
            flag,
        }
    }

    /// Cancels the run: removes the prompt from the queue if it is still waiting and
    /// interrupts it if it is running (only this prompt). The run then ends with
    /// [`Error::Cancelled`], unless it had already finished. Errors are those of the
    /// HTTP calls.
    pub async fn cancel(&self) -> Result<()> {
        self.flag.request();
        let id = self.prompt_id.as_str();
        let deleted = self.client.delete_from_queue(&[id]).await;
        let interrupted = self.client.interrupt(Some(id)).await;
        deleted.and(interrupted)
    }
}

/// One followed prompt ([`Client::run`](crate::Client::run) or
/// [`Client::follow`](crate::Client::follow)): its events as a [`Stream`] and its final
/// result.
///
/// Read events with [`next_event`](Self::next_event) (or as a stream) until `None`, then
/// take the result with [`wait`](Self::wait) (or `.await` the execution). Events of the
/// prompt only are delivered (progress and binary previews included), plus the
/// connection events (`Connected`, `Disconnected`, `Reconnecting`, and [`Event::Lagged`]
/// when events were lost). Events are buffered until read, up to
/// [`RunOptions::event_buffer`](crate::RunOptions::event_buffer) of them and a quarter of
/// [`RunOptions::memory_limit`](crate::RunOptions::memory_limit) in bytes: when the
/// buffer is full, progress events and previews are dropped first, the run's last message
/// never is (unless it alone exceeds the byte bound), and the next read returns
/// `Lagged { skipped }` before the events that remain (`skipped` also counts events the
/// run itself missed because its subscription to the websocket lagged). The result of
/// [`wait`](Self::wait) does not depend on what was read or dropped; `wait` drops the
/// unread events. Dropping the execution stops following the prompt on this side; it
/// does not cancel it on the server (use [`cancel`](Self::cancel)).
#[derive(Debug)]
pub struct Execution {
    prompt_id: String,
    number: Option<f64>,
    events: buffer::Receiver,
    result: oneshot::Receiver<Result<RunOutput>>,
    cancel: CancelHandle,
}

impl Execution {
    pub(crate) fn new(
        client: Client,
        prompt_id: String,
        number: Option<f64>,
        events: buffer::Receiver,
        result: oneshot::Receiver<Result<RunOutput>>,
        flag: Arc<CancelFlag>,
    ) -> Self {
        let cancel = CancelHandle::new(client, prompt_id.clone(), flag);
        Self {
            prompt_id,
            number,
            events,
            result,
            cancel,
        }
    }

    /// The prompt id the run was submitted with (or follows).
    pub fn prompt_id(&self) -> &str {
        &self.prompt_id
    }

    /// The queue number the server gave the prompt (`None` for a followed prompt).
    pub fn number(&self) -> Option<f64> {
        self.number
    }

    /// The next event of the prompt, or `None` once the run ended and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.events.poll_recv(cx)).await
    }

    /// The events as a stream (same as using the execution itself as a [`Stream`]).
    pub fn events(&mut self) -> impl Stream<Item = Event> + '_ {
        futures_util::stream::poll_fn(move |cx| self.events.poll_recv(cx))
    }

    /// Cancels the run (see [`CancelHandle::cancel`]).
    pub async fn cancel(&self) -> Result<()> {
        self.cancel.cancel().await
    }

    /// A handle that cancels this run from elsewhere.
    pub fn cancel_handle(&self) -> CancelHandle {
        self.cancel.clone()
    }

    /// Waits for the end of the run: its outputs, or why it failed.
    pub async fn wait(self) -> Result<RunOutput> {
        let Self {
            result, prompt_id, ..
        } = self;
        result.await.unwrap_or(Err(Error::Lost { prompt_id }))
    }
}

impl Stream for Execution {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(cx)
    }
}

impl IntoFuture for Execution {
    type Output = Result<RunOutput>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<RunOutput>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.wait())
    }
}
