//! Scheduling on fake servers: priorities, FIFO, tenants, constraints, filters, and no
//! stranded deep jobs.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pool_core::{
    Error, FailoverEvent, FailoverStrategy, FailureClass, Ineligible, JobHandle, JobOptions, Pool,
    ServerId,
};
use support::{Fake, Step, workflow};
use tokio::time::Instant;
use workflow_hash::WorkflowHash;

/// A pool whose one server is held busy by a gated first job.
async fn busy_pool(fake: &std::sync::Arc<Fake>) -> (Pool, JobHandle) {
    let pool = Pool::builder().server(fake.config()).build().unwrap();
    pool.ready().await;
    let mut starts = fake.watch_starts();
    let blocker = pool
        .enqueue(workflow("blocker"), JobOptions::new().job_id("blocker"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    (pool, blocker)
}

#[tokio::test]
async fn higher_priority_first_then_fifo() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let (pool, _blocker) = busy_pool(&a).await;
    let plan = [
        ("p0-1", 0),
        ("p5-1", 5),
        ("p0-2", 0),
        ("p9-1", 9),
        ("p5-2", 5),
        ("m1-1", -1),
    ];
    let mut handles = Vec::new();
    for (id, prio) in plan {
        handles.push(
            pool.enqueue(workflow(id), JobOptions::new().job_id(id).priority(prio))
                .await
                .unwrap(),
        );
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.queued, 6);
    assert_eq!(stats.running, 1);
    assert_eq!(stats.queued_by_priority, [(9, 1), (5, 2), (0, 2), (-1, 1)]);
    a.open(100);
    for h in &handles {
        h.result().await.unwrap();
    }
    assert_eq!(
        a.jobs_run(),
        ["blocker", "p9-1", "p5-1", "p5-2", "p0-1", "p0-2", "m1-1"]
    );
}

#[tokio::test]
async fn tenants_of_one_priority_take_turns() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let (pool, _blocker) = busy_pool(&a).await;
    let mut handles = Vec::new();
    for i in 0..4 {
        let id = format!("big-{i}");
        handles.push(
            pool.enqueue(workflow("w"), JobOptions::new().job_id(id).tenant("big"))
                .await
                .unwrap(),
        );
    }
    for i in 0..2 {
        let id = format!("small-{i}");
        handles.push(
            pool.enqueue(workflow("w"), JobOptions::new().job_id(id).tenant("small"))
                .await
                .unwrap(),
        );
    }
    pool.stats().await.unwrap();
    a.open(100);
    for h in &handles {
        h.result().await.unwrap();
    }
    assert_eq!(
        a.jobs_run(),
        [
            "blocker", "big-0", "small-0", "big-1", "small-1", "big-2", "big-3"
        ]
    );
}

#[tokio::test]
async fn a_deep_job_runs_on_an_idle_server_the_head_jobs_cannot_use() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let b = Fake::new("b");
    let pool = Pool::builder()
        .servers([a.config(), b.config().tag("small")])
        .build()
        .unwrap();
    pool.ready().await;
    // Fill a, then queue many jobs that only a can run, then one that b can run.
    let mut starts = a.watch_starts();
    let first = pool
        .enqueue(workflow("w"), JobOptions::new().require_server("a"))
        .await
        .unwrap();
    starts.recv().await.unwrap();
    let mut head = Vec::new();
    for _ in 0..50 {
        head.push(
            pool.enqueue(
                workflow("w"),
                JobOptions::new().priority(10).require_server("a"),
            )
            .await
            .unwrap(),
        );
    }
    let deep = pool
        .enqueue(workflow("w"), JobOptions::new().require_tag("small"))
        .await
        .unwrap();
    let output = deep.result().await.unwrap();
    assert_eq!(output.server.as_str(), "b");
    assert_eq!(pool.stats().await.unwrap().queued, 50);
    a.open(1000);
    first.result().await.unwrap();
    for h in head {
        assert_eq!(h.result().await.unwrap().server.as_str(), "a");
    }
}

#[tokio::test]
async fn the_most_constrained_job_goes_first_on_a_scarce_server() {
    let a = Fake::scripted("a", |_| Step::Gated);
    let b = Fake::scripted("b", |_| Step::Gated);
    let pool = Pool::builder()
        .servers([a.config(), b.config()])
        .build()
        .unwrap();
    pool.ready().await;
    let mut starts_a = a.watch_starts();
    let mut starts_b = b.watch_starts();
    let _hold_a = pool
        .enqueue(workflow("w"), JobOptions::new().require_server("a"))
        .await
        .unwrap();
    let _hold_b = pool
        .enqueue(workflow("w"), JobOptions::new().require_server("b"))
        .await
        .unwrap();
    starts_a.recv().await.unwrap();
    starts_b.recv().await.unwrap();
    let free = pool
        .enqueue(workflow("w"), JobOptions::new().job_id("free"))
        .await
        .unwrap();
    let only_a = pool
        .enqueue(
            workflow("w"),
            JobOptions::new().job_id("only-a").require_server("a"),
        )
        .await
        .unwrap();
    pool.stats().await.unwrap();
    a.open(1);
    // a frees first: the job that can only run on a takes it, the free job waits for b.
    let (job, _) = starts_a.recv().await.unwrap();
    assert_eq!(job, "only-a");
    b.open(10);
    a.open(10);
    assert_eq!(free.result().await.unwrap().server.as_str(), "b");
    only_a.result().await.unwrap();
}

#[tokio::test]
async fn hard_filters_and_preferences_route_jobs() {
    let a = Fake::new("a");
    let b = Fake::new("b");
    let c = Fake::new("c");
    let pool = Pool::builder()
        .servers([
            a.config().tag("gpu"),
            b.config().tag("gpu").tag("xl"),
            c.config(),
        ])
        .build()
        .unwrap();
    pool.ready().await;
    let on = |options: JobOptions| {
        let pool = pool.clone();
        async move {
            let job = pool.enqueue(workflow("w"), options).await.unwrap();
            job.result().await.map(|o| o.server.as_str().to_owned())
        }
    };
    assert_eq!(on(JobOptions::new().require_tag("xl")).await.unwrap(), "b");
    assert_eq!(
        on(JobOptions::new().require_server("c")).await.unwrap(),
        "c"
    );
    assert_eq!(on(JobOptions::new().prefer_server("c")).await.unwrap(), "c");
    assert_eq!(
        on(JobOptions::new().require_tag("gpu").exclude_server("b"))
            .await
            .unwrap(),
        "a"
    );
    let err = on(JobOptions::new().require_tag("tpu")).await.unwrap_err();
    let Error::NoEligibleServer { per_server } = &err else {
        panic!("{err}")
    };
    assert_eq!(per_server.len(), 3);
    assert!(
        per_server
            .iter()
            .all(|(_, why)| matches!(why, Ineligible::MissingTags(t) if t == &["tpu"]))
    );
    assert!(err.to_string().contains("lacks tags tpu"), "{err}");
    let err = on(JobOptions::new().require_server("zzz"))
        .await
        .unwrap_err();
    assert!(err.is_no_eligible_server());
}

#[tokio::test]
async fn a_server_never_gets_more_than_its_slots() {
    let a = Fake::scripted("a", |_| Step::Sleep(std::time::Duration::from_millis(1)));
    let b = Fake::scripted("b", |_| Step::Sleep(std::time::Duration::from_millis(1)));
    let pool = Pool::builder()
        .servers([a.config().max_concurrent(2), b.config()])
        .build()
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..60 {
        let wf = workflow(&format!("{}", i % 3));
        handles.push(pool.enqueue(wf, JobOptions::new()).await.unwrap());
    }
    for h in handles {
        h.result().await.unwrap();
    }
    assert_eq!(a.run_count() + b.run_count(), 60);
    assert!(a.max_running.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    assert_eq!(b.max_running.load(std::sync::atomic::Ordering::SeqCst), 1);
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.completed, 60);
    assert_eq!(
        stats.server("a").unwrap().completed + stats.server("b").unwrap().completed,
        60
    );
}

/// Allows every server everything, and counts how often it was asked.
#[derive(Debug, Default)]
struct CountingAsks(AtomicUsize);

impl FailoverStrategy for CountingAsks {
    fn is_allowed(&self, _: &ServerId, _: &WorkflowHash, _: Instant) -> bool {
        self.0.fetch_add(1, Ordering::SeqCst);
        true
    }

    fn record_failure(
        &self,
        _: &ServerId,
        _: &WorkflowHash,
        _: FailureClass,
        _: Instant,
    ) -> Vec<FailoverEvent> {
        Vec::new()
    }

    fn record_success(&self, _: &ServerId, _: &WorkflowHash, _: Instant) -> Vec<FailoverEvent> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_job_queued_while_every_server_is_busy_asks_about_one_server_not_all() {
    const SERVERS: usize = 16;
    const QUEUED: usize = 40;
    let fakes: Vec<_> = (0..SERVERS)
        .map(|i| Fake::scripted(&format!("s{i}"), |_| Step::Gated))
        .collect();
    let strategy = Arc::new(CountingAsks::default());
    let pool = Pool::builder()
        .servers(fakes.iter().map(Fake::config))
        .strategy(Arc::clone(&strategy) as Arc<dyn FailoverStrategy>)
        .build()
        .unwrap();
    pool.ready().await;
    let mut handles = Vec::new();
    for i in 0..SERVERS {
        let job = pool.enqueue(workflow(&format!("busy-{i}")), JobOptions::new());
        handles.push(job.await.unwrap());
    }
    assert_eq!(pool.stats().await.unwrap().running, SERVERS);
    let before = strategy.0.load(Ordering::SeqCst);
    for i in 0..QUEUED {
        let job = pool.enqueue(workflow(&format!("queued-{i}")), JobOptions::new());
        handles.push(job.await.unwrap());
    }
    let stats = pool.stats().await.unwrap();
    assert_eq!(stats.queued, QUEUED);
    // One question per queued job (the first server may run it; the busy rest are not
    // asked), not one per server: 640 questions before.
    let asked = strategy.0.load(Ordering::SeqCst) - before;
    assert!(
        asked <= 2 * QUEUED,
        "{asked} questions for {QUEUED} jobs queued on {SERVERS} busy servers"
    );
    for fake in &fakes {
        fake.open(QUEUED + 1);
    }
    for h in &handles {
        h.result().await.unwrap();
    }
    let runs: usize = fakes.iter().map(|f| f.run_count()).sum();
    assert_eq!(runs, SERVERS + QUEUED);
    for fake in &fakes {
        assert_eq!(fake.max_running.load(Ordering::SeqCst), 1);
    }
}
