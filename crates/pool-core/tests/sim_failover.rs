//! Failure classification and failover against simulated ComfyUI servers: a server that
//! lacks a node or a model, run-time errors, and validation errors that fail fast. Capability
//! routing is off here, so lacks are learnt from the servers' rejections (see
//! `capabilities.rs` for routing that never sends them).
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use comfy_sim::{SimCluster, SimConfig, Stats};
use pool_core::{Backoff, Error, FailureClass, JobOptions, PoolEvent, WorkflowEvent};
use serde_json::{Value, json};
use support::{chain, sim_pool};

fn options() -> JobOptions {
    JobOptions::new().backoff(Backoff::none())
}

fn received_for(stats: &Stats, workflow: &Value) -> u64 {
    let classes: Vec<&str> = workflow
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["class_type"].as_str().unwrap())
        .collect();
    stats.for_classes(classes).received
}

fn sd_workflow() -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": -1, "steps": 2, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "sd"}}
    })
}

#[tokio::test]
async fn a_server_without_a_node_class_is_routed_around_for_that_workflow_only() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    let (s0, s1) = (&cluster.servers()[0], &cluster.servers()[1]);
    s0.faults().reject_class("ImageInvert");
    let pool = sim_pool(&cluster.urls())
        .capability_routing(false)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let inverted = chain(1);
    let first = pool
        .enqueue(inverted.clone(), options().prefer_server("s0"))
        .await
        .unwrap();
    let output = first.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    let attempt = &output.timings.attempts[0];
    assert_eq!(attempt.server.as_str(), "s0");
    assert_eq!(
        attempt.outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::ServerLacksResource)
    );
    // Blocked on s0 for this workflow: later ones go straight to s1 …
    for _ in 0..3 {
        let job = pool
            .enqueue(inverted.clone(), options().prefer_server("s0"))
            .await
            .unwrap();
        assert_eq!(job.result().await.unwrap().server.as_str(), "s1");
    }
    assert_eq!(received_for(&s0.stats(), &inverted), 1);
    // … while other workflows keep running on s0.
    let plain = pool
        .enqueue(chain(0), options().require_server("s0"))
        .await
        .unwrap();
    assert_eq!(plain.result().await.unwrap().server.as_str(), "s0");
    let mut blocked = None;
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Workflow(WorkflowEvent::Blocked { server, class, .. }) = event {
            blocked = Some((server.to_string(), class));
        }
    }
    assert_eq!(
        blocked,
        Some(("s0".to_owned(), FailureClass::ServerLacksResource))
    );
    assert_eq!(s1.stats().prompts_executed, 4);
}

#[tokio::test]
async fn a_missing_model_moves_the_job_to_a_server_that_has_it() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    cluster.servers()[0]
        .faults()
        .remove_model("sd15.safetensors");
    let pool = sim_pool(&cluster.urls())
        .capability_routing(false)
        .build()
        .unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(sd_workflow(), options().prefer_server("s0"))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    assert_eq!(
        output.timings.attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::ServerLacksResource)
    );
    assert_eq!(output.seeds.len(), 1, "the -1 seed was replaced");
}

#[tokio::test]
async fn run_time_errors_are_retried_elsewhere() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    cluster.servers()[0].faults().fail_class("ImageInvert");
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(chain(2), options().prefer_server("s0"))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "s1");
    assert_eq!(
        output.timings.attempts[0].outcome,
        pool_core::AttemptOutcome::Failed(FailureClass::Execution)
    );
    assert_eq!(cluster.servers()[0].stats().prompts_failed, 1);
}

#[tokio::test]
async fn validation_errors_fail_fast_with_comfyui_details() {
    let cluster = SimCluster::start(2, SimConfig::default()).await.unwrap();
    let pool = sim_pool(&cluster.urls()).build().unwrap();
    pool.ready().await;
    let mut missing_input = chain(1);
    missing_input["2"]["inputs"]
        .as_object_mut()
        .unwrap()
        .remove("images");
    let mut no_outputs = chain(1);
    no_outputs.as_object_mut().unwrap().remove("2");
    let mut out_of_range = chain(1);
    out_of_range["1"]["inputs"]["width"] = json!(-5);
    for (workflow, kind) in [
        (missing_input, "required_input_missing"),
        (no_outputs, "prompt_no_outputs"),
        (out_of_range, "value_smaller_than_min"),
    ] {
        let job = pool.enqueue(workflow, options()).await.unwrap();
        let err = job.result().await.unwrap_err();
        assert!(
            matches!(&err, Error::WorkflowRejected { reason, .. } if reason.contains(kind)),
            "{kind}: {err}"
        );
    }
    let received: u64 = cluster
        .servers()
        .iter()
        .map(|s| s.stats().prompts_received)
        .sum();
    assert_eq!(
        received, 3,
        "each invalid workflow was sent once, never retried"
    );
}
