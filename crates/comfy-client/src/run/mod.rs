//! `Client::run`: one prompt from submission to outputs.

mod buffer;
mod driver;
mod execution;
mod options;
mod output;

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout};

pub use execution::{CancelHandle, Execution};
pub use options::RunOptions;
pub use output::{NodeTiming, RunOutput, Timings};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::event::ConnectionState;
use crate::types::PromptBody;
use driver::Driver;
use execution::CancelFlag;

impl Client {
    /// Runs one workflow: subscribes to the websocket (waiting for its first connection at
    /// most [`RunOptions::connect_wait`]; a socket that is reconnecting is not waited for),
    /// submits the prompt with its own prompt id, and returns an [`Execution`] that streams
    /// the prompt's events and resolves to its [`RunOutput`].
    ///
    /// The workflow is taken as an `Arc` (a plain [`Value`] converts) and serialized in
    /// place, so callers that run one workflow many times share it instead of copying it.
    ///
    /// While the websocket is up it is the source of the event stream: a prompt that
    /// finishes before its events were read still streams them all, in order, once.
    /// While it is down, the run follows the prompt by polling `/queue` and `/history`.
    ///
    /// Errors here are the submission's (for example [`Error::Validation`]); failures
    /// during the run come from [`Execution::wait`].
    pub async fn run(
        &self,
        workflow: impl Into<Arc<Value>>,
        options: RunOptions,
    ) -> Result<Execution> {
        let workflow = workflow.into();
        if !workflow.is_object() {
            return Err(Error::InvalidInput(
                "the workflow must be a JSON object of nodes".into(),
            ));
        }
        let ws = self.ws();
        let rx = ws.subscribe();
        let wait = options
            .connect_wait
            .unwrap_or(self.inner.config.connect_timeout);
        // Wait for the socket's first connection so that no early event is missed. A socket
        // that is reconnecting after a drop is not waited for: the submission tells at once
        // whether the server is there, and the run polls until the socket is back.
        let mut state = ws.watch_state();
        let opened = |s: &ConnectionState| *s != ConnectionState::Connecting;
        let _ = timeout(wait, state.wait_for(opened)).await;
        let ws_up = ws.state() == ConnectionState::Connected;

        let prompt_id = options
            .prompt_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = PromptBody {
            prompt: &workflow,
            client_id: self.client_id(),
            prompt_id: Some(&prompt_id),
            front: options.front,
            number: options.number,
            extra_data: options.extra_data.as_ref(),
        };
        let submitted_at = Instant::now();
        let accepted = self.submit_body(&body).await?;
        let accepted_at = Instant::now();
        if accepted.prompt_id != prompt_id {
            tracing::warn!(
                expected = %prompt_id,
                got = %accepted.prompt_id,
                "comfy-client: the server ignored the caller's prompt id"
            );
        }

        let (events_tx, events_rx) = buffer::channel(options.event_buffer);
        let (result_tx, result_rx) = oneshot::channel();
        let flag = Arc::new(CancelFlag::default());
        let driver = Driver {
            client: self.clone(),
            prompt_id: accepted.prompt_id.clone(),
            options,
            rx,
            events: events_tx,
            cancel: Arc::clone(&flag),
            ws_up,
            submitted_at,
            accepted_at,
        };
        tokio::spawn(driver.run(result_tx));
        Ok(Execution::new(
            self.clone(),
            accepted.prompt_id,
            accepted.number,
            events_rx,
            result_rx,
            flag,
        ))
    }
}
