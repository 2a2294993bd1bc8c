//! Racing cancels, seeded and bounded: 12,000 jobs on fake servers that hang, fail every
//! prompt (as a broken server would with 5xx), fail slowly, or freeze on the clean-up, while
//! servers are removed and added again; every job is cancelled at a random moment. No job
//! can succeed, and each has attempts to spare, so a job that does not end cancelled is a
//! lost cancel: there must be none, and every job ends exactly once.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pool_core::{Error, FailureClass, JobOptions, OutlierEjection, Pool, PoolEvent, ShutdownMode};
use pool_failover::NoopStrategy;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::{Fake, Step, workflow};

const JOBS: usize = 12_000;

fn server(name: &str, seed: u64) -> Arc<Fake> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let fake = Fake::scripted(name, move |_| match rng.random_range(0..6) {
        0 => Step::Hang,
        1 => Step::Fail(FailureClass::ServerDown),
        2 => Step::Fail(FailureClass::Execution),
        3 => Step::SleepFail(
            Duration::from_micros(rng.random_range(50..2000)),
            FailureClass::Stuck,
        ),
        4 => Step::Queued(Duration::from_secs(3600)),
        _ => Step::SleepFail(Duration::from_micros(200), FailureClass::Execution),
    });
    if seed.is_multiple_of(2) {
        fake.cancel_frozen.store(true, Ordering::SeqCst);
    }
    fake
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_cancels_always_win_and_every_job_ends_once() {
    let servers: Vec<Arc<Fake>> = (0..4).map(|i| server(&format!("s{i}"), i)).collect();
    let pool = Pool::builder()
        .servers(servers.iter().map(|s| s.config().max_concurrent(4)))
        .strategy(Arc::new(NoopStrategy))
        .health_check_interval(Some(Duration::from_millis(50)))
        .offline_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .cleanup_limits(Duration::from_millis(20), Duration::from_millis(100))
        .outlier_ejection(
            OutlierEjection::default()
                .base_time(Duration::from_millis(20))
                .max_time(Duration::from_millis(100)),
        )
        .event_capacity(1 << 22)
        .build()
        .unwrap();
    let mut events = pool.subscribe();
    pool.ready().await;

    // Servers leave and come back while jobs run on them.
    let churn = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(99);
            for round in 0..40u64 {
                tokio::time::sleep(Duration::from_millis(rng.random_range(5..30))).await;
                let name = format!("s{}", round % 4);
                if pool.remove_server(name.as_str()).await.is_ok() {
                    // Wait until it has left (its attempts reported), then add it again.
                    while pool.stats().await.is_ok_and(|s| s.server(&name).is_some()) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    let _ = pool
                        .add_server(server(&name, 100 + round).config().max_concurrent(4))
                        .await;
                }
            }
        })
    };

    let mut rng = SmallRng::seed_from_u64(7);
    let mut handles = Vec::with_capacity(JOBS);
    let mut cancels = Vec::new();
    for i in 0..JOBS {
        let job = pool
            .enqueue(
                workflow(&format!("w{}", i % 7)),
                JobOptions::new()
                    .max_attempts(1_000_000)
                    .backoff(pool_core::Backoff::none()),
            )
            .await
            .unwrap();
        // Cancel at once, after a moment, or later from another task.
        match rng.random_range(0..4) {
            0 => job.cancel(),
            1 => {
                tokio::task::yield_now().await;
                job.cancel();
            }
            _ => {
                let job = job.clone();
                let wait = Duration::from_micros(rng.random_range(0..20_000));
                cancels.push(tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    job.cancel();
                }));
            }
        }
        handles.push(job);
    }
    for cancel in cancels {
        cancel.await.unwrap();
    }
    let mut outcomes: HashMap<&'static str, usize> = HashMap::new();
    for job in &handles {
        let result = tokio::time::timeout(Duration::from_secs(60), job.result())
            .await
            .expect("a cancelled job is still running");
        let kind = match result {
            Err(Error::Cancelled) => "cancelled",
            Ok(_) => "completed",
            Err(_) => "failed",
        };
        *outcomes.entry(kind).or_default() += 1;
    }
    churn.await.unwrap();
    assert_eq!(
        outcomes.get("cancelled").copied().unwrap_or(0),
        JOBS,
        "lost cancels: {outcomes:?}"
    );
    pool.shutdown(ShutdownMode::Drain).await;

    let mut terminal: HashMap<pool_core::JobId, usize> = HashMap::new();
    while let Some(event) = events.try_recv() {
        match event {
            PoolEvent::Job(e) if e.kind.is_terminal() => *terminal.entry(e.job).or_default() += 1,
            PoolEvent::Lagged { missed } => panic!("lagged by {missed}"),
            _ => {}
        }
    }
    assert_eq!(terminal.len(), JOBS);
    assert!(terminal.values().all(|n| *n == 1), "a job ended twice");
    let stats = pool.stats().await;
    assert!(stats.is_err(), "the pool stopped after the drain");
}
