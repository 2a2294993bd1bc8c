//! One poll of the server about a prompt, as an owned future the driver runs beside the
//! websocket: `/queue` first, then `/history/{id}` once the prompt left the queue (a
//! prompt leaves the queue only after its history entry is written).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use super::ws_output::ws_output_nodes;
use crate::client::Client;
use crate::error::Result;
use crate::types::HistoryEntry;

/// What a poll found.
pub(super) enum Polled {
    /// Still in the queue: executing (`running`) or waiting. `ws_nodes`: the
    /// `SaveImageWebsocket` nodes of its workflow, as the queue shows it.
    Queued {
        running: bool,
        ws_nodes: HashSet<String>,
    },
    /// Left the queue with this history entry; `None`: the server has none (lost).
    Left(Box<Option<HistoryEntry>>),
}

/// A poll in flight.
pub(super) type PollFuture = Pin<Box<dyn Future<Output = Result<Polled>> + Send>>;

/// Starts polling the server about `prompt_id`.
pub(super) fn start(client: &Client, prompt_id: &str) -> PollFuture {
    let client = client.clone();
    let prompt_id = prompt_id.to_owned();
    Box::pin(async move {
        let queue = client.queue().await?;
        let item = queue
            .queue_running
            .iter()
            .chain(&queue.queue_pending)
            .find(|item| item.prompt_id == prompt_id);
        if let Some(item) = item {
            return Ok(Polled::Queued {
                running: queue.is_running(&prompt_id),
                ws_nodes: ws_output_nodes(&item.prompt),
            });
        }
        Ok(Polled::Left(Box::new(client.history(&prompt_id).await?)))
    })
}

/// Resolves with the poll in flight, if any; never while there is none.
pub(super) async fn in_flight(poll: &mut Option<PollFuture>) -> Result<Polled> {
    match poll {
        Some(future) => future.await,
        None => std::future::pending().await,
    }
}
