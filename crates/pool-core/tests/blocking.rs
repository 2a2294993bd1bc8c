//! The all-blocked policies and expiry-driven unblocking, on fake servers with paused time.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pool_core::{
    Backoff, Error, FailureClass, Ineligible, JobOptions, Pool, PoolEvent, WorkflowEvent,
};
use pool_failover::{AllBlockedPolicy, ServerId, SmartConfig, SmartStrategy, UnblockReason};
use support::{Fake, Step, workflow};
use tokio::time::Instant;

/// A server that fails the first run and succeeds afterwards.
fn fails_once(name: &str) -> Arc<Fake> {
    let runs = AtomicUsize::new(0);
    Fake::scripted(name, move |_| {
        if runs.fetch_add(1, Ordering::SeqCst) == 0 {
            Step::Fail(FailureClass::Execution)
        } else {
            Step::Ok
        }
    })
}

/// A pool of the single server `fake`, with the smart strategy under `policy`.
fn one_server_pool(fake: &Arc<Fake>, policy: AllBlockedPolicy) -> Pool {
    Pool::builder()
        .server(fake.config())
        .strategy(strategy(policy))
        .build()
        .unwrap()
}

/// Why `server` could not take the job, from a `NoEligibleServer` error's list.
fn reason_for<'a>(per_server: &'a [(ServerId, Ineligible)], server: &str) -> &'a Ineligible {
    &per_server
        .iter()
        .find(|(s, _)| s.as_str() == server)
        .unwrap()
        .1
}

fn strategy(policy: AllBlockedPolicy) -> Arc<SmartStrategy> {
    let mut config = SmartConfig::production();
    config.all_blocked = policy;
    config.jitter = 0.0;
    Arc::new(SmartStrategy::new(config).unwrap())
}

#[tokio::test(start_paused = true)]
async fn blocked_everywhere_waits_for_the_block_to_expire() {
    let a = fails_once("a");
    let pool = one_server_pool(&a, AllBlockedPolicy::WaitForEarliest);
    let mut events = pool.subscribe();
    pool.ready().await;
    let t0 = Instant::now();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().backoff(Backoff::none()))
        .await
        .unwrap();
    let output = job.result().await.unwrap();
    assert!(
        t0.elapsed() >= Duration::from_secs(60),
        "ran again only after the 60 s cooldown"
    );
    assert_eq!(output.timings.attempts.len(), 2);
    let mut seen = Vec::new();
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Workflow(e) = event {
            seen.push(match e {
                WorkflowEvent::Blocked { .. } => "blocked",
                WorkflowEvent::Unblocked {
                    reason: UnblockReason::Expired,
                    ..
                } => "expired",
                WorkflowEvent::Probing { .. } => "probing",
                _ => "other",
            });
        }
    }
    assert_eq!(seen[..3], ["blocked", "expired", "probing"], "{seen:?}");
}

#[tokio::test(start_paused = true)]
async fn fail_fast_says_per_server_why() {
    let a = fails_once("a");
    let b = Fake::new("b");
    let pool = Pool::builder()
        .servers([a.config(), b.config().tag("other")])
        .strategy(strategy(AllBlockedPolicy::FailFast))
        .build()
        .unwrap();
    pool.ready().await;
    let job = pool
        .enqueue(
            workflow("w"),
            JobOptions::new()
                .backoff(Backoff::none())
                .exclude_server("b"),
        )
        .await
        .unwrap();
    let err = job.result().await.unwrap_err();
    let Error::NoEligibleServer { per_server } = &err else {
        panic!("{err}")
    };
    let a_why = reason_for(per_server, "a");
    assert!(
        matches!(a_why, Ineligible::Blocked(block) if block.failures == 1),
        "{err}"
    );
    let b_why = reason_for(per_server, "b");
    assert_eq!(*b_why, Ineligible::Excluded);
    assert_eq!(a.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn probe_policy_tries_the_blocked_server_at_once() {
    let a = fails_once("a");
    let pool = one_server_pool(&a, AllBlockedPolicy::ProbeLeastRecentlyFailed);
    let mut events = pool.subscribe();
    pool.ready().await;
    let t0 = Instant::now();
    let job = pool
        .enqueue(workflow("w"), JobOptions::new().backoff(Backoff::none()))
        .await
        .unwrap();
    job.result().await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    let mut forced = false;
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Workflow(WorkflowEvent::Unblocked {
            reason: UnblockReason::ForcedProbe,
            ..
        }) = event
        {
            forced = true;
        }
    }
    assert!(forced);
}

#[tokio::test(start_paused = true)]
async fn a_probe_of_a_busy_server_runs_when_the_server_frees_up() {
    let failed = AtomicUsize::new(0);
    let a = Fake::scripted("a", move |req| match req.job.as_str() {
        "x" if failed.fetch_add(1, Ordering::SeqCst) == 0 => Step::Fail(FailureClass::Execution),
        "g" => Step::Gated,
        _ => Step::Ok,
    });
    let pool = one_server_pool(&a, AllBlockedPolicy::ProbeLeastRecentlyFailed);
    let mut events = pool.subscribe();
    pool.ready().await;
    let t0 = Instant::now();
    let backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(10)).jitter(0.0);
    let x = pool
        .enqueue(
            workflow("x"),
            JobOptions::new().job_id("x").backoff(backoff),
        )
        .await
        .unwrap();
    let _g = pool
        .enqueue(workflow("g"), JobOptions::new().job_id("g"))
        .await
        .unwrap();
    // x fails, g takes the slot; x's retry finds its only server blocked and busy.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.jobs_run(), ["x", "g"]);
    a.open(1);
    let output = x.result().await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "the probe did not wait for its timeout"
    );
    assert_eq!(output.timings.attempts.len(), 2);
    let mut probed = false;
    while let Some(event) = events.try_recv() {
        if let PoolEvent::Job(e) = event
            && e.job.as_str() == "x"
            && let pool_core::JobEventKind::Started {
                probe, attempt: 2, ..
            } = e.kind
        {
            probed = probe;
        }
    }
    assert!(probed, "the second attempt was the pair's probe");
}
