//! Following prompts: [`Client::run`] (submit, then follow), and its two halves
//! [`Client::submit`] and [`Client::follow`]; [`Client::run_inline`] and
//! [`Client::follow_inline`] do the same in the caller's task.

mod buffer;
mod driver;
mod execution;
mod inline;
mod options;
mod outlet;
mod output;
mod poll;
mod seen;
mod submitted;
mod ws_output;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, oneshot};
use tokio::time::{Instant, timeout};

pub use execution::{CancelHandle, Execution};
pub use inline::InlineRun;
pub use options::RunOptions;
pub use output::{Dropped, NodeTiming, RunOutput, Timings};
pub use submitted::Submitted;
pub use ws_output::WsOutput;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::event::{ConnectionState, Event};
use crate::types::PromptBody;
use driver::{Driver, Origin};
use execution::CancelFlag;
use outlet::Outlet;
use seen::Seen;
use ws_output::ws_output_nodes;

/// A subscription to the websocket, opened before the prompt is followed.
struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    /// The socket was up once subscribed.
    up: bool,
}

/// The prompt a driver follows, and what is known of it.
struct Target {
    prompt_id: String,
    number: Option<f64>,
    origin: Origin,
    submitted_at: Instant,
    accepted_at: Instant,
    /// Its `SaveImageWebsocket` nodes (`None`: its workflow is not known yet).
    ws_nodes: Option<HashSet<String>>,
}

impl Client {
    /// Runs one workflow: subscribes to the websocket (waiting for its first connection at
    /// most [`RunOptions::connect_wait`]; a socket that is reconnecting is not waited for),
    /// [submits](Self::submit) the prompt with its own prompt id, and
    /// [follows](Self::follow) it: returns an [`Execution`] that streams the prompt's
    /// events and resolves to its [`RunOutput`].
    ///
    /// The workflow is taken as an `Arc` (a plain [`Value`] converts) and serialized in
    /// place, so callers that run one workflow many times share it instead of copying it.
    /// Its `SaveImageWebsocket` nodes are noted: their images are kept in
    /// [`RunOutput::ws_outputs`].
    ///
    /// While the websocket is up it is the source of the event stream: a prompt that
    /// finishes before its events were read still streams them all, in order, once.
    /// While it is down, the run follows the prompt by polling `/queue` and `/history`.
    /// A run ends within the limits documented on [`RunOptions`](RunOptions#limits).
    ///
    /// Errors here are the submission's (for example [`Error::Validation`]); failures
    /// during the run come from [`Execution::wait`].
    pub async fn run(
        &self,
        workflow: impl Into<Arc<Value>>,
        options: RunOptions,
    ) -> Result<Execution> {
        let (subscription, target) = self.submit_to_follow(workflow.into(), &options).await?;
        Ok(self.start(subscription, options, target))
    }

    /// The submission of [`run`](Self::run) and of [`run_inline`](Self::run_inline):
    /// subscribes, then submits; what the driver then follows.
    async fn submit_to_follow(
        &self,
        workflow: Arc<Value>,
        options: &RunOptions,
    ) -> Result<(Subscription, Target)> {
        if !workflow.is_object() {
            return Err(Error::InvalidInput(
                "the workflow must be a JSON object of nodes".into(),
            ));
        }
        let subscription = self.subscribe_for(options).await;
        let submitted = self.submit(&workflow, options).await?;
        let target = Target {
            prompt_id: submitted.prompt_id,
            number: submitted.number,
            origin: Origin::Submitted,
            submitted_at: submitted.submitted_at,
            accepted_at: submitted.accepted_at,
            ws_nodes: Some(ws_output_nodes(&workflow)),
        };
        Ok((subscription, target))
    }

    /// `POST /prompt` of `workflow` with the prompt options of `options` (its prompt id, a
    /// random uuid if none, `front`, `number`, `extra_data`) and this client's id as
    /// `client_id`: the first half of [`run`](Self::run). Follow the prompt with
    /// [`follow`](Self::follow). A `400` becomes [`Error::Validation`].
    pub async fn submit(&self, workflow: &Value, options: &RunOptions) -> Result<Submitted> {
        let prompt_id = options
            .prompt_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let body = PromptBody {
            prompt: workflow,
            client_id: self.client_id(),
            prompt_id: Some(&prompt_id),
            front: options.front,
            number: options.number,
            extra_data: options.extra_data.as_ref(),
        };
        let submitted_at = Instant::now();
        let accepted = self.submit_body(&body).await?;
        if accepted.prompt_id != prompt_id {
            tracing::warn!(
                expected = %prompt_id,
                got = %accepted.prompt_id,
                "comfy-client: the server ignored the caller's prompt id"
            );
        }
        Ok(Submitted {
            prompt_id: accepted.prompt_id,
            number: accepted.number,
            node_errors: accepted.node_errors,
            submitted_at,
            accepted_at: Instant::now(),
        })
    }

    /// Follows a prompt that is already on the server, queued, running or finished,
    /// without submitting it again (as a restarted process does to re-attach to its
    /// prompts): the second half of [`run`](Self::run). The [`Execution`] resolves to the
    /// same result a run of the prompt would have, ends with [`Error::Lost`] once the
    /// server has it in neither its queue nor its history, and keeps the limits of
    /// [`RunOptions`](RunOptions#limits) (whose prompt options are not used here).
    ///
    /// ComfyUI sends a prompt's execution messages only to the websocket whose `clientId`
    /// is the prompt's `client_id`. When this client's id is that one (give a restarted
    /// process the same id with [`ClientBuilder::client_id`](crate::ClientBuilder::client_id)),
    /// `follow` streams the prompt's live events from then on, `SaveImageWebsocket`
    /// images included; otherwise it follows by polling `/queue` and `/history` (every
    /// poll interval), the events stream has no prompt events, the idle deadline does not
    /// apply, and the result is the same. A prompt already finished resolves at once.
    /// Deadlines and [`Timings`] count from the call.
    pub async fn follow(
        &self,
        prompt_id: impl Into<String>,
        options: RunOptions,
    ) -> Result<Execution> {
        let (subscription, target) = self.attach_to_follow(prompt_id.into(), &options).await?;
        Ok(self.start(subscription, options, target))
    }

    /// The start of [`follow`](Self::follow) and of
    /// [`follow_inline`](Self::follow_inline): subscribes; what the driver then follows.
    async fn attach_to_follow(
        &self,
        prompt_id: String,
        options: &RunOptions,
    ) -> Result<(Subscription, Target)> {
        if prompt_id.is_empty() {
            return Err(Error::InvalidInput("the prompt id is empty".into()));
        }
        let subscription = self.subscribe_for(options).await;
        let now = Instant::now();
        let target = Target {
            prompt_id,
            number: None,
            origin: Origin::Following,
            submitted_at: now,
            accepted_at: now,
            ws_nodes: None,
        };
        Ok((subscription, target))
    }

    /// Subscribes to the websocket, waiting for its first connection so that no early
    /// event is missed. A socket that is reconnecting after a drop is not waited for: the
    /// submission tells at once whether the server is there, and the run polls until the
    /// socket is back.
    async fn subscribe_for(&self, options: &RunOptions) -> Subscription {
        let ws = self.ws();
        let rx = ws.subscribe();
        let wait = options
            .connect_wait
            .unwrap_or(self.inner.config.connect_timeout);
        let mut state = ws.watch_state();
        let opened = |s: &ConnectionState| *s != ConnectionState::Connecting;
        let _ = timeout(wait, state.wait_for(opened)).await;
        Subscription {
            rx,
            up: ws.state() == ConnectionState::Connected,
        }
    }

    /// Spawns the driver that follows the target prompt.
    fn start(&self, subscription: Subscription, options: RunOptions, target: Target) -> Execution {
        let (events_tx, events_rx) = buffer::channel(
            options.event_buffer,
            seen::event_share(options.memory_limit),
        );
        let (result_tx, result_rx) = oneshot::channel();
        let flag = Arc::new(CancelFlag::default());
        let (prompt_id, number) = (target.prompt_id.clone(), target.number);
        let driver = self.driver(subscription, options, target, events_tx, Arc::clone(&flag));
        tokio::spawn(driver.run(result_tx));
        Execution::new(self.clone(), prompt_id, number, events_rx, result_rx, flag)
    }

    /// The driver that follows the target prompt and hands its events to `events`.
    fn driver<O: Outlet>(
        &self,
        subscription: Subscription,
        options: RunOptions,
        target: Target,
        events: O,
        cancel: Arc<CancelFlag>,
    ) -> Driver<O> {
        let Target {
            prompt_id,
            number: _,
            origin,
            submitted_at,
            accepted_at,
            ws_nodes,
        } = target;
        Driver {
            client: self.clone(),
            prompt_id,
            seen: Seen::new(options.memory_limit, ws_nodes),
            options,
            rx: subscription.rx,
            events,
            cancel,
            ws_up: subscription.up,
            unbroken: subscription.up && origin == Origin::Submitted,
            origin,
            submitted_at,
            accepted_at,
        }
    }
}
