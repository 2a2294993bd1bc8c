//! Capability-aware routing on simulated servers of different catalogs: a server that lacks a
//! node class or a model file never receives the job; a workflow nobody can run fails at once
//! with what each server lacks (or waits for a capable server); capabilities are read again
//! after a restart; a rejection that names what the server lacks counts as its lack whatever
//! the wording; recovery asks ComfyUI's Jobs API where the server offers it.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use comfy_sim::{ComfyVersion, SimConfig, SimServer};
use pool_core::{
    AttemptFailure, AttemptOutput, AttemptRequest, Error, EventSink, FailureClass, Ineligible,
    InputFile, JobOptions, MemoryStore, Pool, Rejected, ServerBackend, ServerConfig, ShutdownMode,
};
use serde_json::{Value, json};
use support::chain;

/// chain(n) with an ImageBlur before the save.
fn blurred(inverts: usize) -> Value {
    let mut wf = chain(inverts);
    let last = wf["2"]["inputs"]["images"][0].clone();
    wf["90"] = json!({"class_type": "ImageBlur", "inputs": {"image": [last, 0], "blur_radius": 1, "sigma": 1.0}});
    wf["2"]["inputs"]["images"] = json!(["90", 0]);
    wf
}

/// A checkpoint loader's VAE decoding an empty latent: needs `checkpoints/ckpt`.
fn with_checkpoint(ckpt: &str) -> Value {
    json!({
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "3": {"class_type": "VAEDecode", "inputs": {"samples": ["2", 0], "vae": ["1", 2]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "c"}}
    })
}

fn received_with(sim: &SimServer, class: &str) -> usize {
    sim.stats()
        .received
        .iter()
        .filter(|r| {
            r.prompt
                .as_object()
                .is_some_and(|nodes| nodes.values().any(|n| n["class_type"] == class))
        })
        .count()
}

fn pool_of(sims: &[&SimServer]) -> pool_core::PoolBuilder {
    Pool::builder()
        .servers(
            sims.iter()
                .enumerate()
                .map(|(i, s)| ServerConfig::new(s.url()).id(format!("s{i}"))),
        )
        .health_check_interval(Some(Duration::from_millis(200)))
        .offline_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

#[tokio::test]
async fn servers_that_lack_a_class_or_a_model_never_receive_the_job() {
    let no_blur = SimServer::start(SimConfig::default().without_node("ImageBlur"))
        .await
        .unwrap();
    let no_ckpt = SimServer::start(SimConfig::default().models("checkpoints", &[]))
        .await
        .unwrap();
    let full = SimServer::start(SimConfig::default()).await.unwrap();
    let pool = pool_of(&[&no_blur, &no_ckpt, &full]).build().unwrap();
    pool.ready().await;
    let mut jobs = Vec::new();
    for i in 0..12 {
        let workflow = if i % 2 == 0 {
            blurred(i % 3)
        } else {
            with_checkpoint("sd15.safetensors")
        };
        jobs.push(
            pool.enqueue(workflow, JobOptions::new().max_attempts(1))
                .await
                .unwrap(),
        );
    }
    for job in &jobs {
        let output = job.result().await.unwrap();
        assert_eq!(output.timings.attempts.len(), 1, "no wasted attempt");
    }
    assert_eq!(
        received_with(&no_blur, "ImageBlur"),
        0,
        "s0 lacks ImageBlur"
    );
    assert_eq!(
        received_with(&no_ckpt, "CheckpointLoaderSimple"),
        0,
        "s1 lacks the checkpoint"
    );
    assert!(
        no_blur.stats().prompts_executed + no_ckpt.stats().prompts_executed > 0,
        "servers still run what they can"
    );
    assert_eq!(no_blur.stats().prompts_rejected, 0);
    assert_eq!(no_ckpt.stats().prompts_rejected, 0);
}

#[tokio::test]
async fn a_workflow_nobody_can_run_fails_at_once_with_what_each_server_lacks() {
    let a = SimServer::start(SimConfig::default().without_node("ImageBlur"))
        .await
        .unwrap();
    let b = SimServer::start(
        SimConfig::default()
            .without_node("ImageBlur")
            .models("checkpoints", &[]),
    )
    .await
    .unwrap();
    let pool = pool_of(&[&a, &b]).build().unwrap();
    pool.ready().await;
    let mut workflow = with_checkpoint("sd15.safetensors");
    workflow["5"] = json!({"class_type": "ImageBlur", "inputs": {"image": ["3", 0], "blur_radius": 1, "sigma": 1.0}});
    workflow["4"]["inputs"]["images"] = json!(["5", 0]);
    let err = pool
        .enqueue(workflow, JobOptions::new())
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    let Error::NoEligibleServer { per_server } = &err else {
        panic!("{err}");
    };
    let lacks = |id: &str| match per_server.iter().find(|(s, _)| s.as_str() == id) {
        Some((_, Ineligible::Lacks { missing })) => missing.clone(),
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(lacks("s0"), ["node class ImageBlur"]);
    assert_eq!(
        lacks("s1"),
        [
            "node class ImageBlur",
            "model file sd15.safetensors (ckpt_name of CheckpointLoaderSimple)"
        ]
    );
    assert!(err.to_string().contains("node class ImageBlur"), "{err}");
    assert_eq!(a.stats().prompts_received + b.stats().prompts_received, 0);
}

#[tokio::test]
async fn a_job_may_wait_for_a_capable_server_to_join() {
    let lacking = SimServer::start(SimConfig::default().without_node("ImageBlur"))
        .await
        .unwrap();
    let pool = pool_of(&[&lacking]).build().unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(blurred(0), JobOptions::new().wait_for_capable(true))
        .await
        .unwrap();
    let mut events = job.events();
    assert!(events.recv().await.is_some(), "queued");
    assert!(job.try_result().is_none(), "waits instead of failing");
    let capable = SimServer::start(SimConfig::default()).await.unwrap();
    pool.add_server(ServerConfig::new(capable.url()).id("new"))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "new");
    assert_eq!(received_with(&lacking, "ImageBlur"), 0);
}

#[tokio::test]
async fn a_restart_that_installs_the_node_is_noticed() {
    // The class is hidden (as if its custom node pack were missing) until a restart.
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    sim.faults().reject_class("ImageBlur");
    let pool = pool_of(&[&sim]).capabilities_refresh(None).build().unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(blurred(1), JobOptions::new().wait_for_capable(true))
        .await
        .unwrap();
    tokio::task::yield_now().await;
    assert!(job.try_result().is_none());
    sim.faults().clear();
    sim.crash_and_restart().await.unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), job.result())
        .await
        .expect("the new capabilities were not read after the restart")
        .unwrap();
    assert_eq!(output.timings.attempts.len(), 1);
}

/// A server whose first `/object_info` read claims a node class it then turns out to lack,
/// and whose rejection of it is worded in a way no classification rule knows.
#[derive(Debug, Default)]
struct OddWording {
    reads: std::sync::atomic::AtomicUsize,
    runs: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl ServerBackend for OddWording {
    async fn run(&self, _: AttemptRequest, _: EventSink) -> Result<AttemptOutput, AttemptFailure> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let text = "unknown_thing: we cannot do Frobnicate here";
        Err(
            AttemptFailure::new(FailureClass::WorkflowInvalid, text).with_rejections(vec![
                Rejected::new(Some("Frobnicate".into()), None, None, Some(text.into())),
            ]),
        )
    }
    async fn capabilities(&self) -> Result<Option<comfy_caps::Capabilities>, AttemptFailure> {
        let first = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        let info: &[u8] = if first {
            br#"{"Frobnicate": {"input": {}}, "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}}}"#
        } else {
            br#"{"SaveImage": {"input": {"required": {"images": ["IMAGE"]}}}}"#
        };
        Ok(Some(
            comfy_caps::Capabilities::from_object_info(info).unwrap(),
        ))
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
async fn a_rejection_naming_what_the_server_lacks_is_its_lack_whatever_the_wording() {
    let odd = Arc::new(OddWording::default());
    let good = support::Fake::new("good");
    let pool = Pool::builder()
        .server(ServerConfig::with_backend("odd", odd.clone()))
        .server(good.config())
        .build()
        .unwrap();
    pool.ready().await;
    let workflow = json!({
        "1": {"class_type": "Frobnicate", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "f"}}
    });
    // The first read said odd had Frobnicate: the job goes there and is refused in words no
    // rule knows; the pool reads odd's capabilities again, sees the lack, and moves on
    // (an invalid workflow would have failed at once).
    let job = pool
        .enqueue(
            workflow.clone(),
            JobOptions::new().max_attempts(2).prefer_server("odd"),
        )
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "good");
    assert_eq!(
        output.timings.attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::WorkflowInvalid),
        "as the server answered"
    );
    let err = &job.record().attempt_errors()[0];
    assert_eq!(err.class, FailureClass::WorkflowInvalid);
    // And odd never gets the workflow again.
    let again = pool
        .enqueue(workflow, JobOptions::new().prefer_server("odd"))
        .await
        .unwrap();
    assert_eq!(again.result().await.unwrap().server.as_str(), "good");
    assert_eq!(odd.runs.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn recovery_asks_the_jobs_api_where_the_server_offers_it() {
    let sim = SimServer::start(
        SimConfig::default()
            .version(ComfyVersion::V0_8)
            .exec_time(Duration::from_millis(20)),
    )
    .await
    .unwrap();
    sim.faults().set_hang(true);
    let store = Arc::new(MemoryStore::default());
    let first = pool_of(&[&sim]).store(store.clone()).build().unwrap();
    first.ready().await;
    let mut events = first.subscribe();
    let job = first
        .enqueue(chain(1), JobOptions::new().job_id("j"))
        .await
        .unwrap();
    // Wait until the prompt is on the server, then let go of it.
    loop {
        if let Some(pool_core::PoolEvent::Job(e)) = events.recv().await
            && matches!(
                e.kind,
                pool_core::JobEventKind::Run(pool_core::RunEvent::Accepted { .. })
            )
        {
            break;
        }
    }
    drop(job);
    first.shutdown(ShutdownMode::Detach).await;
    // The server restarts: its queue (and the prompt) is gone.
    sim.faults().set_hang(false);
    sim.crash_and_restart().await.unwrap();
    sim.reset_stats();
    let second = pool_of(&[&sim]).store(store.clone()).build().unwrap();
    second.ready().await;
    let output = second.job("j").unwrap().result().await.unwrap();
    let record = second.record("j").unwrap();
    assert_eq!(record.attempts.len(), 2, "the lost prompt ran again");
    assert_eq!(output.prompt_id, record.attempts[1].prompt_id);
    let asked_jobs_api = sim
        .stats()
        .http_requests
        .keys()
        .any(|route| route.starts_with("GET /jobs/"));
    assert!(asked_jobs_api, "{:?}", sim.stats().http_requests);
}
