//! Workflow variants on simulated servers of different catalogs: a job runs the first variant
//! that a capable, unblocked server can run now; failures block (server, variant hash) pairs,
//! so a variant blocked on a server is skipped there and used elsewhere; the fail-fast error
//! lists what each server lacks for every variant; a stored job of variants is taken up
//! again; bad variants are typed errors naming their index.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use comfy_sim::{SimConfig, SimServer};
use parking_lot::Mutex;
use pool_core::{
    Backoff, Error, FailoverEvent, FailoverStrategy, FailureClass, Ineligible, JobEventKind,
    JobOptions, MemoryStore, Pool, PoolEvent, PoolEvents, RunEvent, ServerConfig, ServerId,
    ShutdownMode, WorkflowHash,
};
use serde_json::{Value, json};
use support::chain;
use tokio::time::Instant;

/// chain(n) with an ImageBlur before the save: needs a server with `ImageBlur`.
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

fn hash(workflow: &Value) -> WorkflowHash {
    WorkflowHash::of(workflow).unwrap()
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

/// A pool of `s0`, `s1`, … (one prompt at a time each).
fn pool_of(sims: &[&SimServer]) -> pool_core::PoolBuilder {
    Pool::builder()
        .servers(sims.iter().enumerate().map(|(i, s)| {
            ServerConfig::new(s.url())
                .id(format!("s{i}"))
                .max_concurrent(1)
        }))
        .health_check_interval(Some(Duration::from_millis(200)))
        .offline_backoff(Duration::from_millis(20), Duration::from_millis(200))
}

/// Waits until the server accepted a prompt of job `id`.
async fn wait_accepted(events: &mut PoolEvents, id: &str) {
    loop {
        if let Some(PoolEvent::Job(e)) = events.recv().await
            && e.job.as_str() == id
            && matches!(e.kind, JobEventKind::Run(RunEvent::Accepted { .. }))
        {
            return;
        }
    }
}

/// Blocks a pair for good after any failure; records what it was told, per pair.
#[derive(Debug, Default)]
struct Recording {
    blocked: Mutex<HashSet<(ServerId, WorkflowHash)>>,
    failures: Mutex<Vec<(ServerId, WorkflowHash)>>,
    successes: Mutex<Vec<(ServerId, WorkflowHash)>>,
}

impl FailoverStrategy for Recording {
    fn is_allowed(&self, server: &ServerId, hash: &WorkflowHash, _now: Instant) -> bool {
        !self.blocked.lock().contains(&(server.clone(), *hash))
    }

    fn record_failure(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        class: FailureClass,
        _now: Instant,
    ) -> Vec<FailoverEvent> {
        if class != FailureClass::Cancelled {
            self.blocked.lock().insert((server.clone(), *hash));
            self.failures.lock().push((server.clone(), *hash));
        }
        Vec::new()
    }

    fn record_success(
        &self,
        server: &ServerId,
        hash: &WorkflowHash,
        _now: Instant,
    ) -> Vec<FailoverEvent> {
        self.successes.lock().push((server.clone(), *hash));
        Vec::new()
    }
}

#[tokio::test]
async fn the_first_variant_runs_where_it_can_and_the_second_on_a_server_free_now() {
    let no_blur = SimServer::start(SimConfig::default().without_node("ImageBlur"))
        .await
        .unwrap();
    let full = SimServer::start(SimConfig::default()).await.unwrap();
    let pool = pool_of(&[&no_blur, &full]).build().unwrap();
    pool.ready().await;
    let (v0, v1) = (blurred(1), chain(2));
    let (h0, h1) = (hash(&v0), hash(&v1));

    // Both servers free: the preferred variant, on the only server that has ImageBlur.
    let job = pool
        .enqueue_variants([v0.clone(), v1.clone()], JobOptions::new().max_attempts(1))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!((output.variant, output.hash), (0, Some(h0)));
    assert_eq!(output.server.as_str(), "s1");
    let record = job.record();
    assert_eq!(record.spec.variants().len(), 2);
    assert_eq!(record.variant_ran(), Some((0, h0)));
    assert_eq!(
        (record.attempts[0].variant, record.attempts[0].hash),
        (0, Some(h0))
    );

    // s1 busy with a prompt that hangs: the second variant runs on s0 now.
    full.faults().set_hang(true);
    let mut events = pool.subscribe();
    let busy = pool
        .enqueue(
            chain(3),
            JobOptions::new().job_id("busy").require_server("s1"),
        )
        .await
        .unwrap();
    wait_accepted(&mut events, "busy").await;
    let job = pool
        .enqueue_variants([v0, v1], JobOptions::new().max_attempts(1))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!((output.variant, output.hash), (1, Some(h1)));
    assert_eq!(output.server.as_str(), "s0");
    assert_eq!(job.record().attempts.len(), 1);
    assert_eq!(
        received_with(&no_blur, "ImageBlur"),
        0,
        "s0 lacks ImageBlur"
    );
    full.faults().set_hang(false);
    busy.result().await.unwrap();
}

#[tokio::test]
async fn a_variant_blocked_on_a_server_is_skipped_there_and_used_elsewhere() {
    let a = SimServer::start(SimConfig::default()).await.unwrap();
    let b = SimServer::start(SimConfig::default()).await.unwrap();
    // ImageBlur fails at run time on s0 only.
    a.faults().fail_class("ImageBlur");
    let strategy = Arc::new(Recording::default());
    let pool = pool_of(&[&a, &b])
        .strategy(strategy.clone())
        .build()
        .unwrap();
    pool.ready().await;
    let (v0, v1) = (blurred(1), chain(1));
    let (h0, h1) = (hash(&v0), hash(&v1));
    let (s0, s1) = (ServerId::from("s0"), ServerId::from("s1"));
    let on_s0 = || {
        JobOptions::new()
            .require_server("s0")
            .max_attempts(2)
            .backoff(Backoff::none())
    };

    // On s0 the first variant fails, which blocks (s0, its hash) only: the retry runs the
    // second variant there.
    let job = pool
        .enqueue_variants([v0.clone(), v1.clone()], on_s0())
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!((output.variant, output.hash), (1, Some(h1)));
    let attempts = job.record().attempts;
    let ran: Vec<(usize, Option<WorkflowHash>)> =
        attempts.iter().map(|a| (a.variant, a.hash)).collect();
    assert_eq!(ran, vec![(0, Some(h0)), (1, Some(h1))]);
    assert_eq!(*strategy.failures.lock(), vec![(s0.clone(), h0)]);
    assert!(strategy.successes.lock().contains(&(s0.clone(), h1)));

    // Anywhere: s1 runs the first variant (it is blocked only on s0).
    let job = pool
        .enqueue_variants([v0.clone(), v1.clone()], JobOptions::new().max_attempts(1))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert_eq!((output.variant, output.server.clone()), (0, s1.clone()));
    assert!(strategy.successes.lock().contains(&(s1, h0)));

    // On s0 again: the blocked variant is skipped without an attempt.
    let job = pool.enqueue_variants([v0, v1], on_s0()).await.unwrap();
    let output = job.result().await.unwrap();
    assert_eq!((output.variant, &output.server), (1, &s0));
    assert_eq!(job.record().attempts.len(), 1);
    assert_eq!(strategy.failures.lock().len(), 1, "no new failure");
    assert_eq!(received_with(&a, "ImageBlur"), 1, "only the first attempt");
}

#[tokio::test]
async fn a_job_no_server_can_run_fails_at_once_with_what_each_lacks_per_variant() {
    let a = SimServer::start(
        SimConfig::default()
            .without_node("ImageBlur")
            .models("checkpoints", &[]),
    )
    .await
    .unwrap();
    let pool = pool_of(&[&a]).build().unwrap();
    pool.ready().await;
    let err = pool
        .enqueue_variants(
            [blurred(1), with_checkpoint("sd15.safetensors")],
            JobOptions::new(),
        )
        .await
        .unwrap()
        .result()
        .await
        .unwrap_err();
    let Error::NoEligibleServer { per_server } = &err else {
        panic!("{err}");
    };
    let [(server, Ineligible::Lacks { missing })] = per_server.as_slice() else {
        panic!("{per_server:?}");
    };
    assert_eq!(server.as_str(), "s0");
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].starts_with("variant 0: ") && missing[0].contains("ImageBlur"));
    assert!(missing[1].starts_with("variant 1: ") && missing[1].contains("sd15.safetensors"));
    assert_eq!(a.stats().received.len(), 0);
}

#[tokio::test]
async fn bad_variants_are_typed_errors_naming_their_index() {
    let sim = SimServer::start(SimConfig::default()).await.unwrap();
    let pool = pool_of(&[&sim]).build().unwrap();
    let err = pool
        .enqueue_variants([chain(1), json!({"1": {"inputs": {}}})], JobOptions::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::InvalidVariant { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("variant 1"), "{err}");
    let none: [Value; 0] = [];
    let err = pool
        .enqueue_variants(none, JobOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoVariants), "{err}");
    let err = pool
        .enqueue_variants([json!(5)], JobOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidWorkflow(_)), "{err}");
    assert_eq!(sim.stats().received.len(), 0);
}

#[tokio::test]
async fn a_stored_job_of_variants_is_taken_up_again_with_the_variant_it_ran() {
    let sim = SimServer::start(SimConfig::default().without_node("ImageBlur"))
        .await
        .unwrap();
    sim.faults().set_hang(true);
    let store = Arc::new(MemoryStore::default());
    let first = pool_of(&[&sim]).store(store.clone()).build().unwrap();
    first.ready().await;
    let mut events = first.subscribe();
    let (v0, v1) = (blurred(1), chain(1));
    let h1 = hash(&v1);
    let options = |id: &str| JobOptions::new().job_id(id).max_attempts(1);
    first
        .enqueue_variants([v0.clone(), v1.clone()], options("running"))
        .await
        .unwrap();
    wait_accepted(&mut events, "running").await;
    first
        .enqueue_variants([v0, v1], options("queued"))
        .await
        .unwrap();
    first.shutdown(ShutdownMode::Detach).await;

    // The prompt on the server goes on; the next pool follows it and runs the queued job.
    sim.faults().set_hang(false);
    let second = pool_of(&[&sim]).store(store.clone()).build().unwrap();
    second.ready().await;
    for id in ["running", "queued"] {
        let output = second.job(id).unwrap().result().await.unwrap();
        assert_eq!((output.variant, output.hash), (1, Some(h1)), "{id}");
        let record = second.record(id).unwrap();
        assert_eq!(record.spec.variants().len(), 2, "{id}");
        assert_eq!(record.attempts.len(), 1, "{id}: followed, not run again");
    }
    assert_eq!(sim.stats().received.len(), 2);
    assert_eq!(received_with(&sim, "ImageBlur"), 0);
}
