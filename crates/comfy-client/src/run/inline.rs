//! [`InlineRun`]: a prompt followed in the caller's task, its events handed to a callback.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::execution::{CancelFlag, CancelHandle};
use super::outlet::Callback;
use super::{RunOptions, RunOutput, Subscription, Target};
use crate::client::Client;
use crate::error::Result;
use crate::event::Event;

impl Client {
    /// [`run`](Self::run) without a task of its own: submits the prompt the same way and
    /// returns an [`InlineRun`], which follows it in the task that awaits
    /// [`InlineRun::drive`] and hands its events to a callback as they arrive.
    ///
    /// For callers that already run a task per prompt (a pool's attempt, a server's request
    /// handler): each event reaches them without a hop through another task and a buffer.
    ///
    /// ```no_run
    /// # async fn demo(client: comfy_client::Client, workflow: serde_json::Value) -> comfy_client::Result<()> {
    /// use comfy_client::{Event, RunOptions};
    ///
    /// let run = client.run_inline(workflow, RunOptions::default()).await?;
    /// println!("queued as {}", run.prompt_id());
    /// let output = run
    ///     .drive(|event| {
    ///         if let Event::Progress(p) = event {
    ///             println!("{}/{}", p.value, p.max);
    ///         }
    ///     })
    ///     .await?;
    /// println!("{} outputs", output.outputs.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run_inline(
        &self,
        workflow: impl Into<Arc<Value>>,
        options: RunOptions,
    ) -> Result<InlineRun> {
        let (subscription, target) = self.submit_to_follow(workflow.into(), &options).await?;
        Ok(InlineRun::new(self, subscription, options, target))
    }

    /// [`follow`](Self::follow) without a task of its own (see
    /// [`run_inline`](Self::run_inline)).
    pub async fn follow_inline(
        &self,
        prompt_id: impl Into<String>,
        options: RunOptions,
    ) -> Result<InlineRun> {
        let (subscription, target) = self.attach_to_follow(prompt_id.into(), &options).await?;
        Ok(InlineRun::new(self, subscription, options, target))
    }
}

/// A prompt submitted (or attached to) by [`Client::run_inline`] or
/// [`Client::follow_inline`], not followed yet: [`drive`](Self::drive) follows it.
///
/// The run keeps the rules of an [`Execution`](crate::Execution): the same events (the
/// prompt's own and the connection's), the same result, the limits of
/// [`RunOptions`](RunOptions#limits). It differs in where it runs and where the events go:
/// there is no task and no event buffer; the callback is called in order, in the awaiting
/// task, and nothing is dropped on the way to it (events the run misses because the
/// callback kept it from reading the websocket in time reach it as one
/// [`Event::Lagged`]). Dropping the run, or the future of `drive`, stops following the
/// prompt on this side; it does not cancel it on the server (use
/// [`cancel_handle`](Self::cancel_handle)).
pub struct InlineRun {
    client: Client,
    subscription: Subscription,
    options: RunOptions,
    target: Target,
    cancel: Arc<CancelFlag>,
}

impl InlineRun {
    fn new(
        client: &Client,
        subscription: Subscription,
        options: RunOptions,
        target: Target,
    ) -> Self {
        Self {
            client: client.clone(),
            subscription,
            options,
            target,
            cancel: Arc::default(),
        }
    }

    /// The prompt id the run was submitted with (or follows).
    pub fn prompt_id(&self) -> &str {
        &self.target.prompt_id
    }

    /// The queue number the server gave the prompt (`None` for a followed prompt).
    pub fn number(&self) -> Option<f64> {
        self.target.number
    }

    /// A handle that cancels the run from elsewhere (see [`CancelHandle::cancel`]): the
    /// run then ends with [`Error::Cancelled`](crate::Error::Cancelled), unless it had
    /// already finished.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle::new(
            self.client.clone(),
            self.target.prompt_id.clone(),
            Arc::clone(&self.cancel),
        )
    }

    /// Follows the prompt to its end, calling `on_event` with each of its events as it
    /// arrives, and returns its outputs or why it failed (as
    /// [`Execution::wait`](crate::Execution::wait)).
    ///
    /// `on_event` runs inside the run: it should hand the event on and return, not block.
    pub async fn drive<F>(self, on_event: F) -> Result<RunOutput>
    where
        F: FnMut(Event) + Send,
    {
        let Self {
            client,
            subscription,
            options,
            target,
            cancel,
        } = self;
        let driver = client.driver(
            subscription,
            options,
            target,
            Callback::new(on_event),
            cancel,
        );
        driver.run_here().await
    }
}

impl fmt::Debug for InlineRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InlineRun")
            .field("prompt_id", &self.target.prompt_id)
            .field("number", &self.target.number)
            .finish_non_exhaustive()
    }
}
