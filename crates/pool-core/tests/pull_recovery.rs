//! A prompt taken back from a busy server's queue (queue-ahead) when the pool process dies
//! before the attempt's withdrawn end is in the store: the store still says the prompt was
//! accepted there, the server no longer has it. A pool started on that store must run the
//! job again without counting the attempt that ran nothing against `max_attempts`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use pool_core::{
    AttemptFailure, AttemptOutcome, AttemptOutput, AttemptRequest, EventSink, FailureClass,
    InputFile, JobOptions, JobOutput, JobQuery, JobRecord, JobState, JobStore, MemoryStore, Pool,
    RunEvent, ServerBackend, ServerConfig,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

fn workflow() -> Value {
    json!({
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}
    })
}

/// What a SIGKILL right after the server deleted a prompt leaves: the store's records at
/// that moment.
#[derive(Default)]
struct Kill {
    records: Mutex<Option<Vec<JobRecord>>>,
    taken: Notify,
}

/// A fake server. First life (`runs: false`): job "long" executes forever and any other
/// prompt waits in its queue forever; `withdraw` takes a waiting prompt out and, with a
/// `kill`, records the store as it is at that moment. Second life (`runs: true`): every
/// prompt runs at once. Following a prompt it does not have says it is lost.
struct Server {
    healthy: AtomicBool,
    runs: bool,
    queued: Mutex<HashSet<String>>,
    kill: Option<(Arc<MemoryStore>, Arc<Kill>)>,
}

impl Server {
    fn new(healthy: bool, runs: bool, kill: Option<(Arc<MemoryStore>, Arc<Kill>)>) -> Arc<Self> {
        Arc::new(Self {
            healthy: AtomicBool::new(healthy),
            runs,
            queued: Mutex::new(HashSet::new()),
            kill,
        })
    }

    fn config(self: &Arc<Self>, id: &str) -> ServerConfig {
        ServerConfig::with_backend(id, Arc::clone(self) as Arc<dyn ServerBackend>)
    }
}

#[async_trait]
impl ServerBackend for Server {
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        self.queued.lock().insert(request.prompt_id.clone());
        events.emit(RunEvent::Accepted {
            prompt_id: request.prompt_id.clone(),
        });
        if self.runs {
            events.emit(RunEvent::Executing);
            let mut outputs = serde_json::Map::new();
            outputs.insert(
                "2".into(),
                json!({"images": [{"filename": request.prompt_id}]}),
            );
            return Ok(AttemptOutput::new(outputs));
        }
        if request.job.as_str() == "long" {
            events.emit(RunEvent::Executing);
        }
        std::future::pending().await
    }

    async fn follow(
        &self,
        request: AttemptRequest,
        _events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        if self.queued.lock().contains(&request.prompt_id) || request.job.as_str() == "long" {
            return std::future::pending().await;
        }
        Err(AttemptFailure::new(
            FailureClass::ServerDown,
            format!(
                "prompt {} is in neither the queue nor the history: lost",
                request.prompt_id
            ),
        ))
    }

    async fn health(&self) -> Result<(), AttemptFailure> {
        if self.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(AttemptFailure::new(
                FailureClass::ServerDown,
                "connection refused",
            ))
        }
    }

    async fn upload(&self, _file: &InputFile) -> Result<(), AttemptFailure> {
        Ok(())
    }

    async fn cancel(&self, _prompt_id: &str) -> Result<(), AttemptFailure> {
        Ok(())
    }

    async fn withdraw(&self, prompt_id: &str) -> Result<bool, AttemptFailure> {
        let taken = self.queued.lock().remove(prompt_id);
        if let Some((store, kill)) = &self.kill {
            let page = store.list(&JobQuery::new(100)).await.unwrap();
            kill.records.lock().get_or_insert(page.jobs);
            kill.taken.notify_one();
        }
        Ok(taken)
    }
}

/// A pool with queue-ahead over servers `a` and `b` on `store`, once ready.
async fn pool_on(a: &Arc<Server>, b: &Arc<Server>, store: Arc<MemoryStore>) -> Pool {
    let pool = Pool::builder()
        .server(a.config("a"))
        .server(b.config("b"))
        .store(store)
        .queue_ahead(1)
        .health_check_interval(Some(Duration::from_secs(1)))
        .build()
        .unwrap();
    pool.ready().await;
    pool
}

/// Job "waits" (with `max_attempts`) is queued ahead on busy server `a` while `b` is down;
/// `b` comes up, the pool takes "waits" back from `a`, and the process dies the moment `a`
/// deleted it. A second pool on what the store held then finishes the job: its result,
/// and its record.
async fn taken_back_then_killed(
    max_attempts: u32,
) -> (pool_core::Result<Arc<JobOutput>>, JobRecord) {
    let store = Arc::new(MemoryStore::default());
    let kill = Arc::new(Kill::default());
    let a = Server::new(true, false, Some((Arc::clone(&store), Arc::clone(&kill))));
    let b = Server::new(false, false, None);
    let first = pool_on(&a, &b, store.clone()).await;
    let options = JobOptions::new().job_id("long").require_server("a");
    first.enqueue(workflow(), options).await.unwrap();
    // The clock is paused: this lets the pool settle ("long" executing on a).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let options = JobOptions::new().job_id("waits").max_attempts(max_attempts);
    first.enqueue(workflow(), options).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = store.get("waits").await.unwrap().unwrap();
    assert_eq!(waiting.state, JobState::Running);
    assert_eq!(waiting.attempts[0].server.as_str(), "a");
    assert!(
        waiting.attempts[0].submitted_at.is_some(),
        "queued ahead on a: {waiting:?}"
    );

    b.healthy.store(true, Ordering::SeqCst);
    kill.taken.notified().await;
    let records = kill.records.lock().take().unwrap();
    drop(first);
    let stored = records.iter().find(|r| r.id.as_str() == "waits").unwrap();
    assert_eq!(
        stored.state,
        JobState::Running,
        "the kill came before the end was stored"
    );

    let survivor = Arc::new(MemoryStore::default());
    for record in &records {
        survivor.insert(record).await.unwrap();
    }
    let a = Server::new(true, true, None);
    let b = Server::new(true, true, None);
    let second = pool_on(&a, &b, survivor.clone()).await;
    let result = second.job("waits").unwrap().result().await;
    let record = survivor.get("waits").await.unwrap().unwrap();
    (result, record)
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_only_prompt_was_taken_back_does_not_exhaust_one_attempt() {
    let (result, record) = taken_back_then_killed(1).await;
    assert!(
        result.is_ok(),
        "failed although nothing ran: {result:?} {record:?}"
    );
    assert_eq!(record.state, JobState::Completed);
}

#[tokio::test(start_paused = true)]
async fn the_prompt_taken_back_is_withdrawn_and_the_job_counts_one_attempt() {
    let (result, record) = taken_back_then_killed(3).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(record.counted_attempts(), 1, "{:?}", record.attempts);
    assert!(
        matches!(record.attempts[0].outcome, AttemptOutcome::Withdrawn),
        "the attempt that ran nothing: {:?}",
        record.attempts[0]
    );
    assert!(
        record
            .attempts
            .last()
            .is_some_and(|a| a.outcome == AttemptOutcome::Succeeded),
        "{:?}",
        record.attempts
    );
}
