//! A server's slot is free as soon as its prompt is done executing (`EventSink::prompt_done`),
//! before the attempt wraps up: the next job starts there at once, no server ever executes
//! more than `max_concurrent` prompts, no job runs twice, and the slot is not counted free
//! twice when the attempt then ends. On simulated servers the same holds end to end, and no
//! run asks `/history` for outputs the socket delivered.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use comfy_sim::{SimCluster, SimConfig};
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, EventSink, InputFile, JobOptions, Pool,
    RunEvent, ServerBackend, ServerConfig, ShutdownMode,
};
use support::{chain, sim_pool};
use tokio::sync::{Semaphore, mpsc};

/// A server that executes a prompt, says it is done, then holds the attempt's end until the
/// test lets it go (the time a backend spends reading outputs and reporting).
struct Tail {
    executing: AtomicUsize,
    max_executing: AtomicUsize,
    /// Each attempt's end waits for one permit.
    ends: Semaphore,
    /// The job id when a run starts.
    started: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl ServerBackend for Tail {
    async fn run(
        &self,
        request: AttemptRequest,
        events: EventSink,
    ) -> Result<AttemptOutput, AttemptFailure> {
        let now = self.executing.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_executing.fetch_max(now, Ordering::SeqCst);
        let _ = self.started.send(request.job.to_string());
        events.emit(RunEvent::Accepted {
            prompt_id: request.prompt_id.clone(),
        });
        events.emit(RunEvent::Executing);
        self.executing.fetch_sub(1, Ordering::SeqCst);
        events.prompt_done();
        let permit = self.ends.acquire().await.unwrap();
        permit.forget();
        Ok(AttemptOutput::default())
    }
    async fn health(&self) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn upload(&self, _: &InputFile) -> Result<(), AttemptFailure> {
        Ok(())
    }
    async fn cancel(&self, _: &str) -> Result<(), AttemptFailure> {
        Ok(())
    }
}

#[tokio::test]
async fn the_next_job_starts_when_the_prompt_is_done_not_when_the_attempt_ends() {
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let tail = Arc::new(Tail {
        executing: AtomicUsize::new(0),
        max_executing: AtomicUsize::new(0),
        ends: Semaphore::new(0),
        started: started_tx,
    });
    let pool = Pool::builder()
        .server(ServerConfig::with_backend(
            "tail",
            Arc::clone(&tail) as Arc<dyn ServerBackend>,
        ))
        .build()
        .unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for _ in 0..3 {
        handles.push(pool.enqueue(chain(1), JobOptions::new()).await.unwrap());
    }
    // Every job starts while the attempts before it are still held at their end.
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(started.recv().await.unwrap());
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.running, 3, "{stats:?}");
    assert_eq!(stats.completed, 0);
    assert_eq!(stats.server("tail").unwrap().in_flight, 0, "{stats:?}");
    tail.ends.add_permits(3);
    for h in &handles {
        h.result().await.unwrap();
    }
    // Each job ran once, and the slot was not freed twice: the next job starts normally.
    let mut ids: Vec<String> = handles.iter().map(|h| h.id().to_string()).collect();
    ids.sort();
    order.sort();
    assert_eq!(order, ids);
    assert!(started.try_recv().is_err());
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.server("tail").unwrap().in_flight, 0, "{stats:?}");
    assert_eq!(stats.completed, 3);
    let job = pool.enqueue(chain(1), JobOptions::new()).await.unwrap();
    assert_eq!(started.recv().await.unwrap(), job.id().to_string());
    tail.ends.add_permits(1);
    job.result().await.unwrap();
    assert_eq!(tail.max_executing.load(Ordering::SeqCst), 1);
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn simulated_servers_run_each_job_once_one_prompt_at_a_time_without_history() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for i in 0..40 {
        handles.push(pool.enqueue(chain(i % 3), JobOptions::new()).await.unwrap());
    }
    for h in &handles {
        let output = h.result().await.unwrap();
        let images = output.outputs["2"]["images"].as_array().unwrap();
        assert_eq!(images.len(), 1, "{:?}", output.outputs);
    }
    let stats: Vec<_> = cluster.servers().iter().map(|s| s.stats()).collect();
    let executed: u64 = stats.iter().map(|s| s.prompts_executed).sum();
    let received: u64 = stats.iter().map(|s| s.prompts_received).sum();
    assert_eq!((executed, received), (40, 40));
    for s in &stats {
        assert_eq!(s.max_prompts_held, 1, "{s:?}");
        assert_eq!(s.requests("GET /history/{prompt_id}"), 0, "{s:?}");
    }
    let pool_stats = pool.stats().await.unwrap();
    assert!(pool_stats.servers.iter().all(|s| s.in_flight == 0));
    pool.shutdown(ShutdownMode::Drain).await;
}
