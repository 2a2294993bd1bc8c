//! Test support: a scriptable in-process backend and small helpers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod gated;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, EventSink, FailureClass, InputFile,
    JobEventKind, JobHandle, PoolEvent, PoolEvents, RunEvent, ServerBackend, ServerConfig,
};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// What one run does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Succeeds at once.
    Ok,
    /// Fails with this class.
    Fail(FailureClass),
    /// Never ends (until cancelled).
    Hang,
    /// Waits for the backend's gate to open (one permit per run), then succeeds.
    Gated,
    /// Sleeps (tokio time), then succeeds.
    Sleep(Duration),
    /// Waits for the gate like `Gated`, then fails with this class.
    GatedFail(FailureClass),
    /// Sleeps (tokio time), then fails with this class.
    SleepFail(Duration, FailureClass),
    /// Waits this long in the server's own queue (after `Accepted`, before `Started`), then
    /// succeeds.
    Queued(Duration),
    /// The submission takes `answer` (before `Accepted`: the server has not answered the
    /// POST yet; it fails as `ServerDown` if the fake was made unhealthy meanwhile), then
    /// the prompt runs for `run` and succeeds.
    Submitting { answer: Duration, run: Duration },
}

type Script = Box<dyn FnMut(&AttemptRequest) -> Step + Send>;
type FollowScript = Box<dyn FnMut(&str) -> Step + Send>;

/// A fake server.
pub struct Fake {
    pub name: String,
    healthy: AtomicBool,
    script: Mutex<Script>,
    /// (job id, prompt id, class types of the workflow) of every run, in order.
    pub runs: Mutex<Vec<(String, String, Value)>>,
    pub cancels: Mutex<Vec<String>>,
    pub uploads: Mutex<Vec<String>>,
    /// (name, bytes) of every upload, in order.
    pub uploaded: Mutex<Vec<(String, Vec<u8>)>>,
    /// While set, `cancel` never answers (a frozen server).
    pub cancel_frozen: AtomicBool,
    /// While set, the health check never answers (HTTP frozen, as a hung server's).
    pub health_frozen: AtomicBool,
    running: AtomicUsize,
    pub max_running: AtomicUsize,
    gate: Arc<tokio::sync::Semaphore>,
    started: Mutex<Option<mpsc::UnboundedSender<(String, String)>>>,
    pub health_checks: AtomicUsize,
    pub health_changed: Notify,
    /// Prompt ids the pool re-attached to (`follow`), in order.
    pub follows: Mutex<Vec<String>>,
    /// What a re-attached prompt does: by default a prompt this fake ran succeeds at once
    /// and any other is lost.
    follow_script: Mutex<Option<FollowScript>>,
}

impl Fake {
    pub fn new(name: &str) -> Arc<Self> {
        Self::scripted(name, |_| Step::Ok)
    }

    pub fn scripted(
        name: &str,
        script: impl FnMut(&AttemptRequest) -> Step + Send + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            healthy: AtomicBool::new(true),
            script: Mutex::new(Box::new(script)),
            runs: Mutex::new(Vec::new()),
            cancels: Mutex::new(Vec::new()),
            uploads: Mutex::new(Vec::new()),
            uploaded: Mutex::new(Vec::new()),
            cancel_frozen: AtomicBool::new(false),
            health_frozen: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            max_running: AtomicUsize::new(0),
            gate: Arc::new(tokio::sync::Semaphore::new(0)),
            started: Mutex::new(None),
            health_checks: AtomicUsize::new(0),
            health_changed: Notify::new(),
            follows: Mutex::new(Vec::new()),
            follow_script: Mutex::new(None),
        })
    }

    pub fn config(self: &Arc<Self>) -> ServerConfig {
        ServerConfig::with_backend(
            self.name.as_str(),
            Arc::clone(self) as Arc<dyn ServerBackend>,
        )
    }

    pub fn set_script(&self, script: impl FnMut(&AttemptRequest) -> Step + Send + 'static) {
        *self.script.lock() = Box::new(script);
    }

    /// Sets what re-attached prompts do.
    pub fn set_follow(&self, script: impl FnMut(&str) -> Step + Send + 'static) {
        *self.follow_script.lock() = Some(Box::new(script));
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
    }

    /// Lets `n` gated runs finish.
    pub fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }

    /// A channel that receives (job id, prompt id) when a run starts.
    pub fn watch_starts(&self) -> mpsc::UnboundedReceiver<(String, String)> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.started.lock() = Some(tx);
        rx
    }

    pub fn run_count(&self) -> usize {
        self.runs.lock().len()
    }

    pub fn jobs_run(&self) -> Vec<String> {
        self.runs
            .lock()
            .iter()
            .map(|(job, _, _)| job.clone())
            .collect()
    }
}

struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ServerBackend for Fake {
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        if !self.healthy.load(Ordering::SeqCst) {
            return Err(AttemptFailure::new(
                FailureClass::ServerDown,
                "connection refused",
            ));
        }
        let step = (self.script.lock())(&request);
        self.runs.lock().push((
            request.job.to_string(),
            request.prompt_id.clone(),
            (*request.workflow).clone(),
        ));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let _guard = Running(&self.running);
        if let Some(tx) = self.started.lock().as_ref() {
            let _ = tx.send((request.job.to_string(), request.prompt_id.clone()));
        }
        if let Step::Submitting { answer, .. } = step {
            tokio::time::sleep(answer).await;
            if !self.healthy.load(Ordering::SeqCst) {
                return Err(AttemptFailure::new(
                    FailureClass::ServerDown,
                    "connection reset",
                ));
            }
        }
        events.emit(RunEvent::Accepted {
            prompt_id: request.prompt_id.clone(),
        });
        if let Step::Queued(wait) = step {
            tokio::time::sleep(wait).await;
        }
        events.emit(RunEvent::Executing);
        events.emit(RunEvent::Node { node: "1".into() });
        events.emit(RunEvent::Progress {
            node: Some("1".into()),
            value: 1,
            max: 2,
        });
        match step {
            Step::Ok | Step::Queued(_) => {}
            Step::Submitting { run, .. } => tokio::time::sleep(run).await,
            Step::GatedFail(class) => {
                let permit = self.gate.acquire().await.expect("gate open");
                permit.forget();
                return Err(AttemptFailure::new(
                    class,
                    format!("{} failed it", self.name),
                ));
            }
            Step::SleepFail(d, class) => {
                tokio::time::sleep(d).await;
                return Err(AttemptFailure::new(
                    class,
                    format!("{} failed it", self.name),
                ));
            }
            Step::Fail(class) => {
                return Err(AttemptFailure::new(
                    class,
                    format!("{} failed it", self.name),
                ));
            }
            Step::Hang => std::future::pending::<()>().await,
            Step::Gated => {
                let permit = self.gate.acquire().await.expect("gate open");
                permit.forget();
            }
            Step::Sleep(d) => tokio::time::sleep(d).await,
        }
        let data = json!({"images": [{"filename": format!("{}.png", request.prompt_id), "subfolder": "", "type": "output"}]});
        events.emit(RunEvent::Output {
            node: "2".into(),
            data: data.clone(),
        });
        let mut outputs = serde_json::Map::new();
        outputs.insert("2".into(), data);
        Ok(AttemptOutput::new(outputs))
    }

    async fn follow(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        self.follows.lock().push(request.prompt_id.clone());
        let known = self
            .runs
            .lock()
            .iter()
            .any(|(_, p, _)| *p == request.prompt_id);
        let step = match self.follow_script.lock().as_mut() {
            Some(script) => script(&request.prompt_id),
            None if known => Step::Ok,
            None => Step::Fail(FailureClass::ServerDown),
        };
        match step {
            Step::Fail(class) => {
                return Err(AttemptFailure::new(
                    class,
                    format!("prompt {} lost", request.prompt_id),
                ));
            }
            Step::Hang => std::future::pending::<()>().await,
            Step::Sleep(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        let data = json!({"images": [{"filename": format!("{}.png", request.prompt_id), "subfolder": "", "type": "output"}]});
        events.emit(RunEvent::Output {
            node: "2".into(),
            data: data.clone(),
        });
        let mut outputs = serde_json::Map::new();
        outputs.insert("2".into(), data);
        Ok(AttemptOutput::new(outputs))
    }

    async fn health(&self) -> Result<(), AttemptFailure> {
        self.health_checks.fetch_add(1, Ordering::SeqCst);
        self.health_changed.notify_waiters();
        if self.health_frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(AttemptFailure::new(
                FailureClass::ServerDown,
                "connection refused",
            ))
        }
    }

    async fn upload(&self, file: &InputFile) -> Result<(), AttemptFailure> {
        self.uploads.lock().push(file.name.clone());
        self.uploaded.lock().push((
            file.name.clone(),
            file.bytes().map(|b| b.to_vec()).unwrap_or_default(),
        ));
        Ok(())
    }

    async fn cancel(&self, prompt_id: &str) -> Result<(), AttemptFailure> {
        if self.cancel_frozen.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.cancels.lock().push(prompt_id.to_owned());
        Ok(())
    }
}

/// A valid workflow; `variant` changes its structure (and so its hash).
pub fn workflow(variant: &str) -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": variant}},
        "3": {"class_type": format!("Variant{variant}"), "inputs": {}}
    })
}

/// Waits for the pool's Ready event; returns (online, total).
pub async fn ready_event(events: &mut PoolEvents) -> (usize, usize) {
    while let Some(event) = events.recv().await {
        if let PoolEvent::Ready { online, total, .. } = event {
            return (online, total);
        }
    }
    panic!("pool closed before ready");
}

/// Every event kind of a job, until its terminal one.
pub async fn job_events(job: &JobHandle) -> Vec<JobEventKind> {
    let mut events = job.events();
    let mut kinds = Vec::new();
    while let Some(event) = events.recv().await {
        kinds.push(event.kind);
    }
    kinds
}

/// A short name per event kind, for order assertions.
pub fn names(kinds: &[JobEventKind]) -> Vec<&'static str> {
    kinds
        .iter()
        .map(|k| match k {
            JobEventKind::Queued { .. } => "queued",
            JobEventKind::Started { .. } => "started",
            JobEventKind::Run(RunEvent::Accepted { .. }) => "accepted",
            JobEventKind::Run(RunEvent::Executing) => "executing",
            JobEventKind::Run(RunEvent::Node { .. }) => "node",
            JobEventKind::Run(RunEvent::Progress { .. }) => "progress",
            JobEventKind::Run(RunEvent::Preview { .. }) => "preview",
            JobEventKind::Run(RunEvent::Output { .. }) => "output",
            JobEventKind::Retrying { .. } => "retrying",
            JobEventKind::Completed { .. } => "completed",
            JobEventKind::Failed {
                will_retry: true, ..
            } => "attempt_failed",
            JobEventKind::Failed { .. } => "failed",
            JobEventKind::Cancelled => "cancelled",
            _ => "other",
        })
        .collect()
}

/// Counts of something per key.
pub fn counts<K: std::hash::Hash + Eq>(items: impl IntoIterator<Item = K>) -> HashMap<K, usize> {
    let mut map = HashMap::new();
    for item in items {
        *map.entry(item).or_insert(0) += 1;
    }
    map
}

/// The events of one job from a pool subscription taken before it was enqueued, until its
/// terminal event.
pub async fn collect_job(events: &mut PoolEvents, job: &pool_core::JobId) -> Vec<JobEventKind> {
    let mut kinds = Vec::new();
    while let Some(event) = events.recv().await {
        match event {
            PoolEvent::Job(e) if e.job == *job => {
                let end = e.kind.is_terminal();
                kinds.push(e.kind);
                if end {
                    break;
                }
            }
            PoolEvent::Lagged { missed } => panic!("lagged by {missed}"),
            _ => {}
        }
    }
    kinds
}

/// EmptyImage → `inverts` × ImageInvert → SaveImage: a valid workflow for the simulator
/// whose structure (and hash) depends on `inverts`.
pub fn chain(inverts: usize) -> Value {
    let mut wf = serde_json::Map::new();
    wf.insert(
        "1".into(),
        json!({"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}),
    );
    let mut last = "1".to_owned();
    for i in 0..inverts {
        let id = format!("{}", 10 + i);
        wf.insert(
            id.clone(),
            json!({"class_type": "ImageInvert", "inputs": {"image": [last, 0]}}),
        );
        last = id;
    }
    wf.insert(
        "2".into(),
        json!({"class_type": "SaveImage", "inputs": {"images": [last, 0], "filename_prefix": "t"}}),
    );
    Value::Object(wf)
}

/// A pool over simulated servers named s0, s1, … with quick health checks.
pub fn sim_pool(urls: &[String]) -> pool_core::PoolBuilder {
    let servers = urls
        .iter()
        .enumerate()
        .map(|(i, url)| ServerConfig::new(url.as_str()).id(format!("s{i}")));
    pool_core::Pool::builder()
        .servers(servers)
        .health_check_interval(Some(Duration::from_millis(200)))
        .offline_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Waits for the end of the server-side clean-up of `prompt_id` (or of the next prompt when
/// `None`); returns the prompt id and whether the server confirmed it.
pub async fn cleaned(events: &mut PoolEvents, prompt_id: Option<&str>) -> (String, bool) {
    while let Some(event) = events.recv().await {
        if let PoolEvent::Cleanup {
            prompt_id: id,
            outcome,
            ..
        } = event
            && prompt_id.is_none_or(|p| p == id)
        {
            return (id, outcome.is_done());
        }
    }
    panic!("pool closed before the clean-up ended");
}
