//! `EventStream`: a subscriber's view of the broadcast of websocket events.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::Event;

/// A stream of every event of a client's websocket (see [`crate::Client::subscribe`]).
///
/// A subscriber that falls behind by more than the client's event capacity receives
/// [`Event::Lagged`] instead of the events it missed. The stream ends when the client
/// (all its clones) is dropped or the websocket gave up reconnecting.
pub struct EventStream {
    inner: BroadcastStream<Arc<Event>>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<Arc<Event>>) -> Self {
        Self {
            inner: BroadcastStream::new(rx),
        }
    }

    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        futures_util::StreamExt::next(self).await
    }
}

impl Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        Pin::new(&mut self.inner).poll_next(cx).map(|item| {
            item.map(|res| match res {
                Ok(event) => Arc::unwrap_or_clone(event),
                Err(BroadcastStreamRecvError::Lagged(skipped)) => Event::Lagged { skipped },
            })
        })
    }
}
