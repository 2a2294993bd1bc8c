//! [`ComfyBackend`]: the [`ServerBackend`] over `comfy-client`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use comfy_client::{Client, ConnectionState, Event, ImageFormat, RunOptions, Upload};
use parking_lot::Mutex;
use pool_failover::FailureClass;
use serde_json::{Map, Value};

use crate::classify::classify;
use crate::server::Transport;
use crate::{
    AttemptFailure, AttemptOutput, AttemptRequest, Blob, Error, EventSink, InputFile, NodeTiming,
    PreviewFormat, Result, RunEvent, ServerBackend, ServerConfig, WsImage,
};

/// A ComfyUI server reached with a [`comfy_client::Client`]: submits under the pool's
/// prompt id, follows the run over the websocket (falling back to polling when the socket
/// drops), and classifies every client error (see the table in the crate's `classify`
/// module: validation of a missing node or model → server lacks resource, other validation →
/// workflow invalid, `execution_error` → execution, unreachable or lost prompt → server down,
/// deadlines → stuck).
#[derive(Debug, Clone)]
pub struct ComfyBackend {
    client: Client,
    run_options: RunOptions,
    /// The websocket's state when the last health check started (see `health_hint`).
    checked: Arc<Mutex<Option<ConnectionState>>>,
    /// Whether the server offers the Jobs API, once asked.
    jobs_api: Arc<Mutex<Option<bool>>>,
    /// Whether this process holds the server (see [`ServerBackend::hold`]): the websocket
    /// is opened by health checks, and kept, only while it does.
    held: Arc<AtomicBool>,
}

impl ComfyBackend {
    /// A backend over `client`. Runs use [`RunOptions`] with a 15 s `unreachable_timeout`
    /// (how long a run waits for a vanished server before it counts as down) and previews
    /// forwarded as events rather than kept.
    pub fn new(client: Client) -> Self {
        let run_options = RunOptions::new()
            .unreachable_timeout(Duration::from_secs(15))
            .collect_previews(false);
        Self {
            client,
            run_options,
            checked: Arc::default(),
            jobs_api: Arc::default(),
            held: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Uses these run options (their prompt id is replaced by the pool's on every run).
    #[must_use]
    pub fn run_options(mut self, options: RunOptions) -> Self {
        self.run_options = options;
        self
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the server offers ComfyUI's Jobs API (asked once; `false` while it cannot be
    /// asked).
    async fn jobs_api(&self) -> bool {
        if let Some(known) = *self.jobs_api.lock() {
            return known;
        }
        match self.client.supports_jobs_api().await {
            Ok(offered) => {
                *self.jobs_api.lock() = Some(offered);
                offered
            }
            Err(_) => false,
        }
    }
}

/// The backend of a configured server.
pub(crate) fn backend_for(config: &ServerConfig) -> Result<Arc<dyn ServerBackend>> {
    match &config.transport {
        Transport::Backend(backend) => Ok(Arc::clone(backend)),
        Transport::Url { url, token } => {
            let mut builder = Client::builder(url.as_str())
                .connect_timeout(Duration::from_secs(5))
                .request_timeout(Duration::from_secs(30));
            if let Some(token) = token {
                builder = builder.bearer_auth(token.as_str());
            }
            let client = builder
                .build()
                .map_err(|e| Error::Config(format!("server {}: {e}", config.id)))?;
            Ok(Arc::new(ComfyBackend::new(client)))
        }
    }
}

fn to_u64(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // Saturating float-to-int conversion is what we want for step counts.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let steps = value.round() as u64;
        steps
    } else {
        0
    }
}

fn translate(event: Event) -> Option<RunEvent> {
    Some(match event {
        Event::ExecutionStart(_) => RunEvent::Executing,
        Event::ExecutionCached(c) => RunEvent::Cached { nodes: c.nodes },
        Event::Executing(e) => RunEvent::Node { node: e.node? },
        Event::Progress(p) => RunEvent::Progress {
            node: p.node,
            value: to_u64(p.value),
            max: to_u64(p.max),
        },
        Event::Executed(e) => RunEvent::Output {
            node: e.node,
            data: Value::Object(e.output.0),
        },
        Event::Preview(p) => RunEvent::Preview {
            node: p.node_id,
            format: preview_format(&p.format),
            image: p.image,
            metadata: p.metadata.and_then(|m| serde_json::to_value(m).ok()),
        },
        _ => return None,
    })
}

/// Follows `run` to its end in the attempt's task, handing its events on as they come.
async fn follow_to_end(
    run: comfy_client::InlineRun,
    events: &EventSink,
) -> std::result::Result<AttemptOutput, AttemptFailure> {
    let output = run
        .drive(|event| {
            if matches!(event, Event::ExecutionSuccess(_)) {
                // The server executes nothing more of the prompt: its slot may take the next.
                events.prompt_done();
            }
            if let Some(event) = translate(event) {
                events.emit(event);
            }
        })
        .await
        .map_err(|e| classify(&e))?;
    let outputs: Map<String, Value> = output
        .outputs
        .into_iter()
        .map(|(node, out)| (node, Value::Object(out.0)))
        .collect();
    let mut nodes: Vec<NodeTiming> = output
        .cached_nodes
        .into_iter()
        .map(|node| NodeTiming::new(node, Duration::ZERO, true))
        .collect();
    nodes.extend(
        output
            .timings
            .nodes
            .into_iter()
            .map(|t| NodeTiming::new(t.node, t.duration, false)),
    );
    let ws_images = output
        .ws_outputs
        .into_iter()
        .map(|image| {
            WsImage::new(
                image.node,
                preview_format(&image.format),
                Blob::new(image.bytes),
            )
        })
        .collect();
    Ok(AttemptOutput::new(outputs)
        .with_nodes(nodes)
        .with_ws_images(ws_images))
}

fn preview_format(format: &ImageFormat) -> PreviewFormat {
    match format {
        ImageFormat::Jpeg => PreviewFormat::Jpeg,
        ImageFormat::Png => PreviewFormat::Png,
        ImageFormat::Code(code) => PreviewFormat::Other(*code),
        _ => PreviewFormat::Other(0),
    }
}

#[async_trait]
impl ServerBackend for ComfyBackend {
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> std::result::Result<AttemptOutput, AttemptFailure> {
        let options = self
            .run_options
            .clone()
            .prompt_id(request.prompt_id.clone());
        let run = self
            .client
            .run_inline(request.workflow, options)
            .await
            .map_err(|e| classify(&e))?;
        events.emit(RunEvent::Accepted {
            prompt_id: run.prompt_id().to_owned(),
        });
        follow_to_end(run, &events).await
    }

    async fn follow(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> std::result::Result<AttemptOutput, AttemptFailure> {
        // Where the server offers the Jobs API (ComfyUI ≥ 0.6), one call tells whether it
        // still knows the prompt; elsewhere following it asks /queue and /history.
        if self.jobs_api().await
            && let Ok(None) = self.client.job(&request.prompt_id).await
        {
            return Err(AttemptFailure::new(
                FailureClass::ServerDown,
                format!(
                    "prompt {} is not on the server (jobs API): lost",
                    request.prompt_id
                ),
            ));
        }
        let options = self
            .run_options
            .clone()
            .prompt_id(request.prompt_id.clone());
        let run = self
            .client
            .follow_inline(request.prompt_id.clone(), options)
            .await
            .map_err(|e| classify(&e))?;
        follow_to_end(run, &events).await
    }
    async fn capabilities(
        &self,
    ) -> std::result::Result<Option<comfy_caps::Capabilities>, AttemptFailure> {
        let bytes = self
            .client
            .object_info_bytes()
            .await
            .map_err(|e| classify(&e))?;
        // Megabytes on servers with many custom nodes: parsed off the async threads.
        let parsed =
            tokio::task::spawn_blocking(move || comfy_caps::Capabilities::from_object_info(&bytes))
                .await
                .map_err(|e| AttemptFailure::new(FailureClass::Execution, e.to_string()))?;
        parsed.map(Some).map_err(|e| {
            AttemptFailure::new(
                FailureClass::Execution,
                format!("unreadable /object_info: {e}"),
            )
        })
    }

    async fn health(&self) -> std::result::Result<(), AttemptFailure> {
        // Opens the socket on the first check while the server is held, so the pool keeps
        // one connection per server it dispatches to.
        let seen = if self.held.load(Ordering::Relaxed) {
            *self.client.watch_connection().borrow()
        } else {
            self.client.connection_state()
        };
        *self.checked.lock() = Some(seen);
        self.client
            .system_stats()
            .await
            .map(|_| ())
            .map_err(|e| AttemptFailure::new(FailureClass::ServerDown, classify(&e).reason))
    }

    /// Resolves once the client's websocket is in another state than at the start of the
    /// last health check (it dropped, reopened, or its first connection failed): a dropped
    /// socket is the first sign of a crashed or restarted server. The socket is opened by
    /// the first health check, so the pool keeps one connection per server.
    async fn health_hint(&self) {
        let checked = *self.checked.lock();
        let Some(seen) = checked else {
            return std::future::pending().await;
        };
        if seen == ConnectionState::Idle || !self.held.load(Ordering::Relaxed) {
            // No socket (the server is not held here): nothing to watch.
            return std::future::pending().await;
        }
        let mut watch = self.client.watch_connection();
        loop {
            if *watch.borrow_and_update() != seen {
                return;
            }
            if watch.changed().await.is_err() {
                // The socket gave up for good: nothing more to tell.
                return std::future::pending().await;
            }
        }
    }

    fn hold(&self, held: bool) {
        let was_held = self.held.swap(held, Ordering::Relaxed);
        if was_held && !held {
            // Let go: its socket closes now (a hint then checks the server once more, over
            // HTTP).
            self.client.close_socket();
        }
    }

    async fn upload(&self, file: &InputFile) -> std::result::Result<(), AttemptFailure> {
        let Some(bytes) = file.bytes() else {
            return Err(AttemptFailure::new(
                FailureClass::WorkflowInvalid,
                format!("the bytes of input file {} are not available", file.name),
            ));
        };
        let upload = Upload::new(file.name.clone(), bytes.clone())
            .subfolder(file.subfolder.clone())
            // The name is content-addressed (see `input`): a file of that name has these bytes.
            .overwrite(true);
        self.client
            .upload_image(upload)
            .await
            .map(|_| ())
            .map_err(|e| classify(&e))
    }

    async fn cancel(&self, prompt_id: &str) -> std::result::Result<(), AttemptFailure> {
        let deleted = self.client.delete_from_queue(&[prompt_id]).await;
        let interrupted = self.client.interrupt(Some(prompt_id)).await;
        deleted.and(interrupted).map_err(|e| classify(&e))
    }

    async fn withdraw(&self, prompt_id: &str) -> std::result::Result<bool, AttemptFailure> {
        // ComfyUI moves a prompt from pending to running, and from running to its history,
        // each under one lock: once it is deleted, absent from the queue read after and then
        // from the history read after that, it never started and never will.
        self.client
            .delete_from_queue(&[prompt_id])
            .await
            .map_err(|e| classify(&e))?;
        let queue = self.client.queue().await.map_err(|e| classify(&e))?;
        if queue.is_running(prompt_id) || queue.is_pending(prompt_id) {
            return Ok(false);
        }
        let history = self
            .client
            .history(prompt_id)
            .await
            .map_err(|e| classify(&e))?;
        Ok(history.is_none())
    }
}
