//! Records, transitions and blobs for the store tests, built through the public API (and
//! serde, for the types pool-core constructs only itself).

use std::sync::Arc;
use std::time::Duration;

use pool_core::{
    Blob, InputFile, JobOptions, JobOutput, JobRecord, JobSpec, JobStore, StoredBlock, Timestamp,
    Transition, WorkflowHash,
};
use serde_json::{Value, json};

/// A base time for the tests (2025-11-14).
pub const T0: u64 = 1_763_100_000_000;

/// The time `ms` milliseconds after [`T0`].
pub fn at(ms: u64) -> Timestamp {
    Timestamp::from_millis(T0 + ms)
}

/// A seven-node txt2img workflow, varied by `seed`.
pub fn workflow(seed: u64) -> Value {
    json!({
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red fox in the snow", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": seed, "steps": 20, "cfg": 8, "sampler_name": "euler",
              "scheduler": "normal", "denoise": 1, "model": ["4", 0], "positive": ["6", 0],
              "negative": ["7", 0], "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}}
    })
}

/// A job just accepted at `created`, with these options.
pub fn job_with(id: &str, created: Timestamp, options: JobOptions) -> JobRecord {
    let workflow = workflow(created.as_millis());
    let hash = WorkflowHash::of(&workflow).expect("a valid workflow");
    let spec = JobSpec::new(Arc::new(workflow), hash, options);
    JobRecord::new(id.into(), Arc::new(spec), created)
}

/// A job of `tenant` (or none) accepted at `created`.
pub fn job(id: &str, tenant: Option<&str>, created: Timestamp) -> JobRecord {
    let options = match tenant {
        Some(tenant) => JobOptions::new().tenant(tenant).priority(2),
        None => JobOptions::new(),
    };
    job_with(id, created, options)
}

/// A job whose input file holds `bytes`.
pub fn job_with_input(id: &str, created: Timestamp, bytes: &'static [u8]) -> JobRecord {
    job_with(
        id,
        created,
        JobOptions::new().input(InputFile::new("in.png", bytes)),
    )
}

/// The transition that dispatches attempt 1 of a job to `server`.
pub fn dispatched(server: &str, started: Timestamp) -> Transition {
    let attempt = serde_json::from_value(json!({
        "attempt": 1,
        "server": server,
        "prompt_id": format!("prompt-{}", started.as_millis()),
        "started_at": started.as_millis(),
        "duration_ms": 0.0,
        "outcome": {"status": "running"},
    }))
    .expect("an attempt record");
    Transition::Dispatched { attempt }
}

/// A successful end whose result carries a websocket-only image (`ws_image`, if any).
pub fn completed(id: &str, ws_image: Option<&Blob>) -> Transition {
    let images: Vec<Value> = ws_image
        .map(|blob| json!({"node": "9", "format": "png", "image": blob}))
        .into_iter()
        .collect();
    let output: JobOutput = serde_json::from_value(json!({
        "job": id,
        "server": "gpu-1",
        "prompt_id": "prompt-1",
        "outputs": {"9": {"images": [{"filename": "ComfyUI_00001_.png", "subfolder": "", "type": "output"}]}},
        "ws_images": images,
        "seeds": [{"node": "3", "input": "seed", "value": 42}],
        "metadata": null,
        "timings": {"queue_wait_ms": 12.5, "total_ms": 2300.0, "attempts": [], "nodes": []},
    }))
    .expect("a job output");
    Transition::Finished {
        outcome: Ok(Arc::new(output)),
    }
}

/// The transitions of a job that ran once and succeeded.
pub fn a_successful_run(id: &str, from: Timestamp) -> Vec<Transition> {
    vec![
        dispatched("gpu-1", from),
        Transition::PromptSubmitted { attempt: 1 },
        Transition::ExecutionStarted { attempt: 1 },
        Transition::AttemptEnded {
            attempt: 1,
            outcome: pool_core::AttemptOutcome::Succeeded,
            reason: None,
            duration: Duration::from_millis(2300),
        },
        completed(id, None),
    ]
}

/// Applies `transition` at `when` and persists it.
pub async fn advance(
    store: &dyn JobStore,
    record: &mut JobRecord,
    transition: &Transition,
    when: Timestamp,
) {
    assert!(
        record.apply(transition, when),
        "{transition:?} changed nothing"
    );
    store
        .update(record, transition)
        .await
        .unwrap_or_else(|e| panic!("update of {} to version {}: {e}", record.id, record.version));
}

/// A stored failover state.
pub fn block(server: &str, hash: &WorkflowHash, failures: u32, until: Option<u64>) -> StoredBlock {
    serde_json::from_value(json!({
        "server": server,
        "hash": hash,
        "failures": failures,
        "blocked_count": failures / 2,
        "class": "execution",
        "until": until.map(|ms| T0 + ms),
        "updated_at": T0 + 5,
    }))
    .expect("a stored block")
}
