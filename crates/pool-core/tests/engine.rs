//! The life of one job on fake servers: events, retries, fail-fast, exhaustion, inputs and
//! seeds.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;

use pool_core::{
    Backoff, Error, FailureClass, InputFile, JobEventKind, JobOptions, OutputSelection, Pool,
    PoolEvent, ShutdownMode,
};
use pool_failover::{NoopStrategy, SmartConfig, SmartStrategy};
use serde_json::json;
use support::{Fake, Step, collect_job, names, workflow};

fn fast() -> JobOptions {
    JobOptions::new().backoff(Backoff::none())
}

#[tokio::test]
async fn a_job_runs_and_reports_its_events_in_order() {
    let a = Fake::new("a");
    let pool = Pool::builder().server(a.config()).build().unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("x"), JobOptions::new().metadata("user", "ann"))
        .await
        .unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    assert_eq!(
        names(&kinds),
        [
            "queued",
            "started",
            "accepted",
            "executing",
            "node",
            "progress",
            "output",
            "completed"
        ]
    );
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "a");
    assert_eq!(output.outputs.len(), 1);
    assert_eq!(output.metadata.as_ref().unwrap()["user"], json!("ann"));
    assert_eq!(output.timings.attempts.len(), 1);
    assert_eq!(
        output.prompt_id,
        a.runs.lock()[0].1,
        "the pool chose the prompt id it submitted"
    );
    // A late subscriber sees the terminal event only.
    let late = support::job_events(&job).await;
    assert_eq!(names(&late), ["completed"]);
    pool.shutdown(ShutdownMode::Drain).await;
}

#[tokio::test]
async fn invalid_workflows_are_refused_with_a_typed_error() {
    let pool = Pool::builder()
        .server(Fake::new("a").config())
        .build()
        .unwrap();
    for bad in [
        json!([1, 2]),
        json!({}),
        json!({"1": 5}),
        json!({"1": {"inputs": {}}}),
    ] {
        let err = pool
            .enqueue(bad.clone(), JobOptions::new())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidWorkflow(_)), "{bad}: {err}");
        assert!(err.is_workflow_invalid());
    }
}

#[tokio::test]
async fn a_failed_attempt_is_retried_on_another_server() {
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::Execution));
    let b = Fake::new("b");
    let pool = Pool::builder()
        .server(a.config().weight(10))
        .server(b.config())
        .strategy(Arc::new(NoopStrategy))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("x"), fast().prefer_server("a"))
        .await
        .unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    let n = names(&kinds);
    assert_eq!(n.iter().filter(|k| **k == "started").count(), 2, "{n:?}");
    assert!(
        n.contains(&"attempt_failed") && n.contains(&"retrying"),
        "{n:?}"
    );
    assert_eq!(n.last(), Some(&"completed"));
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    let servers: Vec<&str> = output
        .timings
        .attempts
        .iter()
        .map(|a| a.server.as_str())
        .collect();
    assert_eq!(servers, ["a", "b"]);
    assert_eq!(a.run_count(), 1);
}

#[tokio::test]
async fn workflow_invalid_fails_fast_without_retry() {
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::WorkflowInvalid));
    let b = Fake::new("b");
    let pool = Pool::builder()
        .server(a.config())
        .server(b.config().weight(0))
        .build()
        .unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(workflow("x"), fast().require_server("a"))
        .await
        .unwrap();
    let err = job.result().await.unwrap_err();
    assert!(
        matches!(&err, Error::WorkflowRejected { server, .. } if server.as_str() == "a"),
        "{err}"
    );
    assert!(err.is_workflow_invalid());
    assert_eq!(a.run_count() + b.run_count(), 1);
}

#[tokio::test]
async fn attempts_run_out_with_every_attempt_listed() {
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::Execution));
    let b = Fake::scripted("b", |_| Step::Fail(FailureClass::Execution));
    let pool = Pool::builder()
        .servers([a.config(), b.config()])
        .strategy(Arc::new(NoopStrategy))
        .build()
        .unwrap();
    let job = pool
        .enqueue(workflow("x"), fast().max_attempts(3))
        .await
        .unwrap();
    let err = job.result().await.unwrap_err();
    let attempts = err.attempts();
    assert_eq!(attempts.len(), 3, "{err}");
    assert!(attempts.iter().all(|a| a.class == FailureClass::Execution));
    // Retries move to the other server while there is one.
    assert_ne!(attempts[0].server, attempts[1].server);
    assert_eq!(a.run_count() + b.run_count(), 3);
}

#[tokio::test]
async fn retry_waits_for_its_backoff() {
    let a = Fake::scripted("a", |_| Step::Fail(FailureClass::Execution));
    let pool = Pool::builder()
        .server(a.config())
        .strategy(Arc::new(NoopStrategy))
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    let backoff = Backoff::new(
        std::time::Duration::from_millis(30),
        std::time::Duration::from_secs(1),
    )
    .jitter(0.0);
    let job = pool
        .enqueue(
            workflow("x"),
            JobOptions::new().backoff(backoff).max_attempts(2),
        )
        .await
        .unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    let delays: Vec<_> = kinds
        .iter()
        .filter_map(|k| match k {
            JobEventKind::Retrying { delay, attempt, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [(2, std::time::Duration::from_millis(30))]);
    let attempts = &job.result().await.unwrap_err();
    assert_eq!(attempts.attempts().len(), 2);
}

#[tokio::test]
async fn inputs_are_uploaded_and_seeds_are_drawn_per_attempt() {
    let mut first = true;
    let a = Fake::scripted("a", move |_| {
        let step = if first {
            Step::Fail(FailureClass::Execution)
        } else {
            Step::Ok
        };
        first = false;
        step
    });
    let pool = Pool::builder()
        .server(a.config())
        .strategy(Arc::new(NoopStrategy))
        .build()
        .unwrap();
    let mut wf = workflow("seeded");
    wf["4"] = json!({"class_type": "KSampler", "inputs": {"seed": -1, "steps": 20}});
    let options = fast()
        .input(InputFile::new("in.png", vec![1u8, 2, 3]))
        .outputs(OutputSelection::Nodes(vec!["2".into()]));
    let job = pool.enqueue(wf, options).await.unwrap();
    let output = job.result().await.unwrap();
    // Uploaded under a name derived from the bytes (see the hardening tests), once per attempt.
    let uploads = a.uploads.lock().clone();
    assert_eq!(uploads.len(), 2);
    assert_eq!(uploads[0], uploads[1]);
    assert!(
        uploads[0].starts_with("in-") && uploads[0].ends_with(".png"),
        "{uploads:?}"
    );
    let runs = a.runs.lock();
    let seeds: Vec<_> = runs
        .iter()
        .map(|(_, _, wf)| wf["4"]["inputs"]["seed"].clone())
        .collect();
    assert_eq!(seeds.len(), 2);
    assert!(seeds.iter().all(|s| s.as_u64().is_some()), "{seeds:?}");
    assert_ne!(seeds[0], seeds[1], "each attempt draws its own seed");
    assert_eq!(output.seeds.len(), 1);
    assert_eq!(
        json!(output.seeds[0].value),
        seeds[1],
        "the result records the seed that ran"
    );
    assert_eq!(output.outputs.keys().collect::<Vec<_>>(), ["2"]);
}

#[tokio::test]
async fn server_lacking_a_resource_blocks_only_that_workflow_there() {
    let a = Fake::scripted("a", |req| {
        if req.workflow["3"]["class_type"] == "Variantneeds-model" {
            Step::Fail(FailureClass::ServerLacksResource)
        } else {
            Step::Ok
        }
    });
    let b = Fake::new("b");
    let strategy = Arc::new(SmartStrategy::new(SmartConfig::production()).unwrap());
    let pool = Pool::builder()
        .servers([a.config(), b.config()])
        .strategy(strategy)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    let mut all = pool.subscribe();
    pool.ready().await;
    // Default backoff: a server lacking a resource says nothing against the others, so the
    // job moves at once.
    let job = pool
        .enqueue(
            workflow("needs-model"),
            JobOptions::new().prefer_server("a"),
        )
        .await
        .unwrap();
    let kinds = collect_job(&mut events, job.id()).await;
    let delays: Vec<_> = kinds
        .iter()
        .filter_map(|k| match k {
            JobEventKind::Retrying { delay, .. } => Some(*delay),
            _ => None,
        })
        .collect();
    assert_eq!(delays, [std::time::Duration::ZERO]);
    let output = job.result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    // The pair is blocked: a later job of that workflow preferring a goes to b directly,
    // while another workflow still runs on a.
    let again = pool
        .enqueue(workflow("needs-model"), fast().prefer_server("a"))
        .await
        .unwrap();
    assert_eq!(again.result().await.unwrap().server.as_str(), "b");
    let other = pool
        .enqueue(workflow("other"), fast().require_server("a"))
        .await
        .unwrap();
    assert_eq!(other.result().await.unwrap().server.as_str(), "a");
    assert_eq!(a.run_count(), 2, "the blocked workflow ran on a once");
    let mut saw_block = false;
    while let Some(event) = all.try_recv() {
        if let PoolEvent::Workflow(pool_core::WorkflowEvent::Blocked { server, .. }) = event {
            assert_eq!(server.as_str(), "a");
            saw_block = true;
        }
    }
    assert!(saw_block);
    let stats = pool.stats().await.unwrap();
    assert!(
        stats
            .blocks
            .iter()
            .any(|b| b.server.as_str() == "a" && b.is_blocked())
    );
}
